"""Retraction sweep on SQLite and PostgreSQL: who is owed a notice, and only once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sharinghub.consent import retractions as retractions_module
from sharinghub.consent.retractions import RetractionStore, SweepConflict
from sharinghub.consent.store import ConsentRegistry
from sharinghub.contracts import (
    ConsentDirective,
    ConsentGranted,
    ConsentRevoked,
    ConsentScope,
    Purpose,
)
from sharinghub.runtime.db import create_engine_for, session_factory
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


def test_a_delivery_committed_after_the_notice_gets_a_notice_of_its_own(
    stores: tuple[ConsentRegistry, RetractionStore],
) -> None:
    registry, retractions = stores
    registry.apply([grant("cd-late", "subj-l")], now=T0)
    retractions.record_deliveries([("cd-late", "req-early", "ag-a", T0)])
    registry.apply([revoke("cd-late", "subj-l", T0 + timedelta(hours=1))], now=T0)
    [first] = retractions.due(T0 + timedelta(hours=2))
    retractions.mark_published([first.notice.retraction_id], T0 + timedelta(hours=2))

    # The gate stamped this delivery before the notice was issued, but its transaction
    # committed after the sweep had read the deliveries (the race a time rule misses).
    retractions.record_deliveries([("cd-late", "req-late", "ag-a", T0 + timedelta(minutes=90))])
    [follow_up] = retractions.due(T0 + timedelta(hours=3))
    assert follow_up.notice.request_ids == ["req-late"]
    assert follow_up.notice.retraction_id == f"{first.notice.retraction_id}-2"
    assert follow_up.recipient_agency_id == "ag-a"

    retractions.mark_published([follow_up.notice.retraction_id], T0 + timedelta(hours=3))
    assert retractions.due(T0 + timedelta(hours=4)) == []
    assert len(retractions.unacknowledged()) == 2


def test_one_notice_can_list_hundreds_of_deliveries(
    stores: tuple[ConsentRegistry, RetractionStore],
) -> None:
    registry, retractions = stores
    registry.apply([grant("cd-many", "subj-m")], now=T0)
    ids = [f"req-nightly-batch-{i:04d}-{'x' * 60}" for i in range(300)]  # ~24,000 characters
    retractions.record_deliveries([("cd-many", rid, "ag-b", T0) for rid in ids])
    registry.apply([revoke("cd-many", "subj-m", T0 + timedelta(hours=1))], now=T0)

    [notice] = retractions.due(T0 + timedelta(hours=2))
    assert notice.notice.request_ids == sorted(ids)
    retractions.mark_published([notice.notice.retraction_id], T0 + timedelta(hours=2))
    assert retractions.due(T0 + timedelta(hours=3)) == []


def test_the_migration_marks_deliveries_covered_by_notices_already_sent(database_url: str) -> None:
    from alembic import command
    from sqlalchemy import text

    from sharinghub.runtime.schema import alembic_config

    command.upgrade(alembic_config(database_url), "0003")
    engine = create_engine_for(database_url)
    with engine.begin() as conn:
        for rid in ("req-1", "req-2", "req-3"):
            conn.execute(
                text("INSERT INTO consent_deliveries VALUES ('cd-m', :rid, 'ag-a', :at)"),
                {"rid": rid, "at": T0},
            )
        conn.execute(
            text(
                "INSERT INTO retractions (retraction_id, consent_id, recipient_agency_id,"
                " request_ids, issued_at, published_at) VALUES"
                " ('rtr-cd-m-v2-ag-a', 'cd-m', 'ag-a', 'req-1,req-2', :at, :at)"
            ),
            {"at": T0 + timedelta(hours=1)},
        )
    upgrade(database_url)
    with engine.connect() as conn:
        covered = dict(
            conn.execute(
                text("SELECT request_id, retraction_id FROM consent_deliveries ORDER BY request_id")
            ).all()
        )
    engine.dispose()
    assert covered == {"req-1": "rtr-cd-m-v2-ag-a", "req-2": "rtr-cd-m-v2-ag-a", "req-3": None}


def test_deliveries_beyond_the_notice_limit_go_out_as_several_notices(
    stores: tuple[ConsentRegistry, RetractionStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retractions_module, "NOTICE_MAX_REQUESTS", 100)
    registry, retractions = stores
    registry.apply([grant("cd-split", "subj-s")], now=T0)
    ids = [f"req-{i:03d}" for i in range(250)]
    retractions.record_deliveries([("cd-split", rid, "ag-a", T0) for rid in ids])
    registry.apply([revoke("cd-split", "subj-s", T0 + timedelta(hours=1))], now=T0)

    due = retractions.due(T0 + timedelta(hours=2))
    assert [len(p.notice.request_ids) for p in due] == [100, 100, 50]
    assert [p.notice.retraction_id for p in due] == [
        "rtr-cd-split-v2-ag-a",
        "rtr-cd-split-v2-ag-a-2",
        "rtr-cd-split-v2-ag-a-3",
    ]
    assert sorted(r for p in due for r in p.notice.request_ids) == ids


def test_a_recorded_notice_is_still_sent_after_the_consent_is_amended_back_into_force(
    stores: tuple[ConsentRegistry, RetractionStore],
) -> None:
    registry, retractions = stores
    registry.apply([grant("cd-again", "subj-g")], now=T0)
    retractions.record_deliveries([("cd-again", "req-1", "ag-a", T0)])
    revoked_at = T0 + timedelta(hours=1)
    registry.apply([revoke("cd-again", "subj-g", revoked_at)], now=T0)
    [recorded] = retractions.due(T0 + timedelta(hours=2))  # then, say, the broker was down

    first_grant = grant("cd-again", "subj-g")
    amended = first_grant.model_copy(  # an amendment that puts the consent back in force
        update={
            "action": "amend",
            "directive": first_grant.directive.model_copy(update={"version": 3}),
        }
    )
    [applied] = registry.apply([amended], now=T0 + timedelta(hours=3))
    assert applied.status == "recorded"
    [owed] = retractions.due(T0 + timedelta(hours=4))
    assert owed.notice.retraction_id == recorded.notice.retraction_id
    assert owed.notice.request_ids == ["req-1"]
    assert owed.notice.revoked_at == revoked_at  # the revocation it was issued for


def test_a_sweeper_does_not_record_deliveries_another_one_covered(
    stores: tuple[ConsentRegistry, RetractionStore], database_url: str
) -> None:
    registry, retractions = stores
    registry.apply([grant("cd-two", "subj-t")], now=T0)
    retractions.record_deliveries([("cd-two", "req-1", "ag-a", T0)])
    registry.apply([revoke("cd-two", "subj-t", T0 + timedelta(hours=1))], now=T0)
    [first] = retractions.due(T0 + timedelta(hours=2))

    # what a second sweeper would record for deliveries it read before the first committed
    revoked = grant("cd-two", "subj-t").directive.model_copy(update={"version": 2})
    engine = create_engine_for(database_url)
    with pytest.raises(SweepConflict), session_factory(engine)() as session, session.begin():
        retractions._record(session, revoked, "ag-a", ["req-1"], T0 + timedelta(hours=2))
    engine.dispose()
    assert [p.notice.retraction_id for p in retractions.due(T0 + timedelta(hours=3))] == [
        first.notice.retraction_id  # recorded once, still unpublished; no second notice
    ]
