"""Stage stamps: the gate's chain check refuses anything incomplete, altered or re-ordered."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from sharinghub.contracts import ConsentAssessment, DataCategory, Envelope, Stage
from sharinghub.runtime.stamps import StageKeys, stamp, verify_chain
from tests.support.examples import request_of

NOW = datetime(2025, 3, 4, tzinfo=UTC)


@pytest.fixture
def keys(tmp_path: Path) -> StageKeys:
    StageKeys.generate(tmp_path / "keys.json")
    return StageKeys.load(tmp_path / "keys.json")


@pytest.fixture
def envelope(examples) -> Envelope:  # type: ignore[no-untyped-def]
    return Envelope(
        request=request_of(examples[0]),
        received_at=NOW,
        consent=ConsentAssessment(assessed_at=NOW),
    )


def test_a_stamped_envelope_verifies(keys: StageKeys, envelope: Envelope) -> None:
    stamped = stamp(envelope, Stage.CONSENT, keys, "t")
    assert verify_chain(stamped, keys, (Stage.CONSENT,)) is None


def test_missing_stage_is_refused(keys: StageKeys, envelope: Envelope) -> None:
    stamped = stamp(envelope, Stage.CONSENT, keys, "t")
    problem = verify_chain(stamped, keys, (Stage.CONSENT, Stage.POLICY))
    assert problem is not None and "expected" in problem


def test_changed_request_content_is_refused(keys: StageKeys, envelope: Envelope) -> None:
    stamped = stamp(envelope, Stage.CONSENT, keys, "t")
    tampered_request = stamped.request.model_copy(
        update={"requested_categories": [DataCategory.IDENTITY]}
    )
    tampered = stamped.model_copy(update={"request": tampered_request})
    assert "does not match" in (verify_chain(tampered, keys, (Stage.CONSENT,)) or "")


def test_a_stamp_made_with_another_key_is_refused(
    keys: StageKeys, envelope: Envelope, tmp_path: Path
) -> None:
    StageKeys.generate(tmp_path / "other.json")
    other = StageKeys.load(tmp_path / "other.json")
    forged = stamp(envelope, Stage.CONSENT, other, "t")
    assert verify_chain(forged, keys, (Stage.CONSENT,)) is not None


def test_keys_file_missing_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="sharinghub keys init"):
        StageKeys.load(tmp_path / "absent.json")
