"""Consent registry on SQLite and PostgreSQL: versions, idempotency, refusals, history."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sharinghub.consent.store import ConsentRegistry
from sharinghub.contracts import (
    ConsentDirective,
    ConsentGranted,
    ConsentRevoked,
    ConsentScope,
    Purpose,
)
from sharinghub.runtime.db import create_engine_for
from sharinghub.runtime.schema import upgrade

pytestmark = pytest.mark.integration
NOW = datetime(2025, 3, 1, tzinfo=UTC)


def grant(
    cid: str,
    subject: str = "subj-1",
    version: int = 1,
    action: str = "grant",
    purposes: list[Purpose] | None = None,
) -> ConsentGranted:
    return ConsentGranted(
        action=action,  # type: ignore[arg-type]
        directive=ConsentDirective(
            consent_id=cid,
            version=version,
            subject_id=subject,
            granted_by="client",
            scope=ConsentScope(
                recipient_agency_ids=["ag-a"],
                purposes=purposes or [Purpose.CONSENT_BASED_SHARING],
                categories_included=["identity"],
                valid_from=datetime(2025, 1, 1, tzinfo=UTC),
            ),
        ),
    )


@pytest.fixture
def registry(database_url: str) -> ConsentRegistry:
    upgrade(database_url)
    return ConsentRegistry(create_engine_for(database_url))


def test_grant_amend_revoke_keeps_every_version(registry: ConsentRegistry) -> None:
    results = registry.apply(
        [
            grant("cd-1"),
            grant("cd-1", version=2, action="amend", purposes=[Purpose.CARE_COORDINATION]),
            ConsentRevoked(
                action="revoke",
                consent_id="cd-1",
                subject_id="subj-1",
                version=3,
                revoked_at=datetime(2025, 2, 1, tzinfo=UTC),
            ),
        ],
        now=NOW,
    )
    assert [r.status for r in results] == ["recorded"] * 3
    history = registry.history("cd-1")
    assert [d.version for d in history] == [1, 2, 3]
    assert history[0].revoked_at is None and history[0].scope.purposes == ["consent_based_sharing"]
    assert history[2].revoked_at is not None
    assert history[2].scope.purposes == ["care_coordination"]  # revocation keeps the scope
    current = registry.current_for_subjects(["subj-1"])["subj-1"]
    assert [(d.consent_id, d.version) for d in current] == [("cd-1", 3)]


def test_replaying_an_event_is_a_no_op(registry: ConsentRegistry) -> None:
    assert registry.apply([grant("cd-2")], now=NOW)[0].status == "recorded"
    assert registry.apply([grant("cd-2")], now=NOW)[0].status == "duplicate"
    assert len(registry.history("cd-2")) == 1


@pytest.mark.parametrize(
    ("events", "code"),
    [
        ([grant("cd-3"), grant("cd-3", purposes=[Purpose.CARE_COORDINATION])], "version_conflict"),
        ([grant("cd-3"), grant("cd-3", version=3, action="amend")], "version_gap"),
        ([grant("cd-3", version=2, action="amend")], "version_gap"),
        ([grant("cd-3"), grant("cd-3", version=2, action="grant")], "wrong_action"),
        (
            [grant("cd-3"), grant("cd-3", subject="subj-9", version=2, action="amend")],
            "subject_mismatch",
        ),
        (
            [
                ConsentRevoked(
                    action="revoke",
                    consent_id="cd-unknown",
                    subject_id="subj-1",
                    version=2,
                    revoked_at=NOW,
                )
            ],
            "unknown_consent",
        ),
    ],
)
def test_history_cannot_be_rewritten(registry: ConsentRegistry, events, code) -> None:  # type: ignore[no-untyped-def]
    results = registry.apply(events, now=NOW)
    assert results[-1].status == "refused"
    assert results[-1].reason_code == code
    if events[0].action == "grant" and results[0].status == "recorded":
        assert [d.version for d in registry.history("cd-3")] == [1]


def test_current_for_subjects_returns_latest_versions_per_subject(
    registry: ConsentRegistry,
) -> None:
    registry.apply(
        [grant("cd-a", "subj-a"), grant("cd-b", "subj-b"), grant("cd-a", "subj-a", 2, "amend")],
        now=NOW,
    )
    current = registry.current_for_subjects(["subj-a", "subj-b", "subj-none"])
    assert [(d.consent_id, d.version) for d in current["subj-a"]] == [("cd-a", 2)]
    assert [(d.consent_id, d.version) for d in current["subj-b"]] == [("cd-b", 1)]
    assert current.get("subj-none", []) == []
