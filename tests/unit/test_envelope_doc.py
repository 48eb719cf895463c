"""Envelopes as parsed documents: clear refusals, section validation, and stamps that mean
the same whether made or checked on a document or on an `Envelope` model."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from sharinghub.consent.domain import assess_consent
from sharinghub.contracts import (
    ConsentAssessment,
    Envelope,
    Outcome,
    PolicyDecision,
    SharingRequest,
    Stage,
)
from sharinghub.policy.engine import PolicyEngine
from sharinghub.redaction.app import redact_all
from sharinghub.runtime import envelope_doc
from sharinghub.runtime.codec import InvalidMessage, encode
from sharinghub.runtime.stamps import StageKeys, stamp, stamp_doc, verify_chain, verify_doc
from tests.support.examples import request_of

NOW = datetime(2025, 3, 4, 9, 30, 15, 123456, tzinfo=UTC)
CHAIN = (Stage.CONSENT, Stage.POLICY, Stage.REDACTION)


@pytest.fixture
def keys(tmp_path: Path) -> StageKeys:
    StageKeys.generate(tmp_path / "keys.json")
    return StageKeys.load(tmp_path / "keys.json")


def delivered_doc(examples: list[dict], keys: StageKeys) -> dict:  # type: ignore[type-arg]
    """A fully stamped envelope document of the first example the policy delivers."""
    engine = PolicyEngine.load()
    for ex in examples:
        request = request_of(ex)
        consent = assess_consent(request, [], assessed_at=NOW)
        decision = engine.decide(request, consent, now=NOW)
        if decision.outcome is Outcome.DELIVERED:
            break
    else:  # pragma: no cover - the shared examples always deliver some
        pytest.fail("no delivered example")
    doc = stamp_doc(envelope_doc.new(request, NOW, consent), Stage.CONSENT, keys, "t")
    doc = stamp_doc(envelope_doc.with_section(doc, "policy", decision), Stage.POLICY, keys, "t")
    (result,) = redact_all([(request, decision)], NOW)
    doc = envelope_doc.with_section(doc, "redaction", result)
    return stamp_doc(doc, Stage.REDACTION, keys, "t")


def test_a_document_is_exactly_the_envelope_contract(examples, keys: StageKeys) -> None:  # type: ignore[no-untyped-def]
    doc = delivered_doc(examples, keys)
    raw = envelope_doc.serialise(doc)
    model = Envelope.model_validate_json(raw)  # the wire format is the contract's
    assert orjson.loads(encode(model)) == doc  # and pydantic writes the same document back
    assert verify_chain(model, keys, CHAIN) is None


def test_dump_is_the_json_of_the_model(examples) -> None:  # type: ignore[no-untyped-def]
    # Stamps hash the JSON value of a section: pydantic's two ways of writing it must agree.
    for ex in examples:
        request = request_of(ex)
        consent = assess_consent(request, [], assessed_at=NOW)
        for model in (request, consent):
            assert envelope_doc.dump(model) == orjson.loads(model.model_dump_json())


def test_a_model_stamped_chain_verifies_as_a_document_and_back(examples, keys: StageKeys) -> None:  # type: ignore[no-untyped-def]
    doc = delivered_doc(examples, keys)
    model = Envelope.model_validate(doc)
    resumed = stamp(model.model_copy(update={"stamps": model.stamps[:1]}), Stage.POLICY, keys, "t")
    assert verify_doc(orjson.loads(encode(resumed)), keys, (Stage.CONSENT, Stage.POLICY)) is None


@pytest.mark.parametrize(
    ("section", "path", "value"),
    [
        ("request", ("purpose",), "court_order"),
        ("consent", ("minor_self_consent",), True),
        ("policy", ("allowed_categories",), ["identity", "substance_use_part2"]),
        ("redaction", ("payload", "subject_ref"), "subj-someone-else"),
    ],
)
def test_any_changed_section_is_refused(  # type: ignore[no-untyped-def]
    examples, keys: StageKeys, section: str, path: tuple[str, ...], value: object
) -> None:
    doc = orjson.loads(envelope_doc.serialise(delivered_doc(examples, keys)))
    target = doc[section]
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    problem = verify_doc(doc, keys, CHAIN)
    assert problem is not None and "does not match" in problem


def test_reordered_missing_or_malformed_stamps_are_refused(examples, keys: StageKeys) -> None:  # type: ignore[no-untyped-def]
    doc = delivered_doc(examples, keys)
    stamps = doc["stamps"]
    assert "expected" in (verify_doc({**doc, "stamps": stamps[::-1]}, keys, CHAIN) or "")
    assert "expected" in (verify_doc({**doc, "stamps": stamps[:2]}, keys, CHAIN) or "")
    broken = [{**stamps[0], "mac": 7}, *stamps[1:]]
    assert "well-formed" in (verify_doc({**doc, "stamps": broken}, keys, CHAIN) or "")
    assert "well-formed" in (verify_doc({**doc, "stamps": "x"}, keys, CHAIN) or "")
    forged = [{**stamps[0], "stage": "Dolores Quintero"}, *stamps[1:]]
    problem = verify_doc({**doc, "stamps": forged}, keys, CHAIN) or ""
    assert "expected" in problem and "Dolores" not in problem  # no value is echoed


@pytest.mark.parametrize(
    ("raw", "code", "says"),
    [
        (None, "empty_message", "no value"),
        (b"{not json", "malformed_json", "not valid JSON"),
        (b"[1, 2]", "schema_violation", "JSON object"),
        (b'{"stamps": []}', "schema_violation", "request: field required"),
        (b'{"request": {"request_id": "r-1"}, "extra": 1}', "schema_violation", "extra"),
        (b'{"request": {}, "schema_version": "2"}', "schema_violation", "schema_version"),
        (b'{"request": {}, "stamps": {}}', "schema_violation", "stamps"),
    ],
)
def test_a_document_that_is_no_envelope_is_refused_clearly(
    raw: bytes | None, code: str, says: str
) -> None:
    with pytest.raises(InvalidMessage) as caught:
        envelope_doc.parse(raw, max_bytes=10_000)
    assert caught.value.reason_code == code
    assert says in caught.value.reason


def test_oversize_is_refused_with_the_request_id() -> None:
    raw = b'{"request": {"request_id": "req-big"}, "pad": "' + b"x" * 2000 + b'"}'
    with pytest.raises(InvalidMessage) as caught:
        envelope_doc.parse(raw, max_bytes=1000)
    assert caught.value.reason_code == "oversize" and caught.value.request_id == "req-big"


def test_an_invalid_section_names_its_path_never_its_value(examples, keys: StageKeys) -> None:  # type: ignore[no-untyped-def]
    doc = delivered_doc(examples, keys)
    bad = {**doc, "request": {**doc["request"], "purpose": "Dolores Quintero"}}
    with pytest.raises(InvalidMessage) as caught:
        envelope_doc.section(bad, "request", SharingRequest)
    assert caught.value.reason.startswith("request.purpose")
    assert "Dolores" not in caught.value.reason
    assert caught.value.request_id == doc["request"]["request_id"]
    with pytest.raises(InvalidMessage, match="policy: field required"):
        envelope_doc.section({**doc, "policy": None}, "policy", PolicyDecision)
    assert envelope_doc.section(doc, "consent", ConsentAssessment).assessed_at == NOW


def test_received_at_must_be_an_aware_time(examples, keys: StageKeys) -> None:  # type: ignore[no-untyped-def]
    doc = delivered_doc(examples, keys)
    assert envelope_doc.received_at(doc) == NOW
    for value in ("2025-03-04T09:30:15", "yesterday", 7):
        with pytest.raises(InvalidMessage, match="received_at"):
            envelope_doc.received_at({**doc, "received_at": value})


@pytest.mark.parametrize(
    ("request_id", "kept"),
    [
        ("req-2025-03-04-0001", True),
        ("ag.east:01-x", True),
        ("-leading-dash", True),  # logged and keyed by, not validated: the contract refuses it
        ("x" * 128, True),
        ("rëq-1", True),  # letters of other alphabets are alphanumeric too
        ("١٢٣", True),  # and so are other digits
        ("req-1\n", False),  # a whole-string match: no line end slips through
        ("", False),
        ("x" * 129, False),
        ("req 1", False),
        ("req_1", True),
        ("req/1", False),
        ('req"1', False),
        ("rëq 1", False),
        (12, False),
        (None, False),
    ],
)
def test_a_request_id_is_quoted_in_a_refusal_only_when_it_is_safe_to(
    request_id: object, kept: bool
) -> None:
    doc = {"request": {"request_id": request_id}}
    assert envelope_doc.request_id_of(doc) == (request_id if kept else None)
