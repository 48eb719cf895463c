"""Retraction sweep on SQLite and PostgreSQL: who is owed a notice, and only once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sharinghub.consent.retractions import RetractionStore
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
T0 = datetime(2025, 3, 1, tzinfo=UTC)


def grant(cid: str, subject: str) -> ConsentGranted:
    return ConsentGranted(
        action="grant",
        directive=ConsentDirective(
            consent_id=cid,
            version=1,
            subject_id=subject,
            granted_by="client",
            scope=ConsentScope(
                recipient_agency_ids=["ag-a", "ag-b"],
                purposes=[Purpose.CONSENT_BASED_SHARING],
                categories_included=["identity"],
                valid_from=datetime(2025, 1, 1, tzinfo=UTC),
            ),
        ),
    )


def revoke(cid: str, subject: str, at: datetime) -> ConsentRevoked:
    return ConsentRevoked(
        action="revoke", consent_id=cid, subject_id=subject, version=2, revoked_at=at
    )


@pytest.fixture
def stores(database_url: str) -> tuple[ConsentRegistry, RetractionStore]:
    upgrade(database_url)
    engine = create_engine_for(database_url)
    return ConsentRegistry(engine), RetractionStore(engine)


def test_a_notice_per_recipient_of_a_revoked_consent_and_only_once(
    stores: tuple[ConsentRegistry, RetractionStore],
) -> None:
    registry, retractions = stores
    registry.apply([grant("cd-r", "subj-r"), grant("cd-kept", "subj-k")], now=T0)
    retractions.record_deliveries(
        [
            ("cd-r", "req-1", "ag-a", T0),
            ("cd-r", "req-2", "ag-a", T0 + timedelta(minutes=1)),
            ("cd-r", "req-3", "ag-b", T0),
            ("cd-kept", "req-4", "ag-a", T0),
        ]
    )
    assert retractions.due(T0 + timedelta(hours=1)) == []

    registry.apply([revoke("cd-r", "subj-r", T0 + timedelta(hours=2))], now=T0)
    assert retractions.due(T0 + timedelta(hours=1)) == []  # revocation not yet in force

    due = retractions.due(T0 + timedelta(hours=3))
    assert [(p.recipient_agency_id, p.notice.request_ids) for p in due] == [
        ("ag-a", ["req-1", "req-2"]),
        ("ag-b", ["req-3"]),
    ]
    assert all(p.notice.consent_id == "cd-r" for p in due)
    # not published yet (say, a crash): the same notices are owed again, same identifiers
    again = retractions.due(T0 + timedelta(hours=4))
    assert [p.notice.retraction_id for p in again] == [p.notice.retraction_id for p in due]

    retractions.mark_published([p.notice.retraction_id for p in due], T0 + timedelta(hours=4))
    assert retractions.due(T0 + timedelta(hours=5)) == []
    assert {r.recipient_agency_id for r in retractions.unacknowledged()} == {"ag-a", "ag-b"}
