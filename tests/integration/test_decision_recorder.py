"""The decision recorder on SQLite and PostgreSQL: one transaction for a batch's audit records
and the writes that join it, idempotent replays, and dispatch marks that stop re-publication."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial

import pytest
from sqlalchemy import Connection, Engine, func, select

from sharinghub.consent.retractions import ConsentDeliveryRow, record_deliveries_on
from sharinghub.contracts import Purpose, ReviewCase, ReviewRequirement
from sharinghub.delivery import recorder as recorder_module
from sharinghub.delivery.ledger import AuditLedger
from sharinghub.delivery.recorder import WRITTEN_KEPT_S, DecisionRecorder, Effect
from sharinghub.policy.reviews import ReviewCaseRow, ReviewStore, open_cases_on
from sharinghub.runtime.db import create_engine_for
from sharinghub.runtime.schema import upgrade
from sharinghub.runtime.stage import Output
from tests.integration.test_audit_ledger import make_records

pytestmark = pytest.mark.integration
NOW = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)


@pytest.fixture
def engine(database_url: str) -> Engine:
    upgrade(database_url)
    return create_engine_for(database_url)


def effects(n: int, prefix: str = "req") -> list[Effect]:
    return [
        Effect(r, [Output(topic="sharinghub.outcomes.v1", value=r.request_id.encode())])
        for r in make_records(n, prefix=prefix)
    ]


def count(engine: Engine, table: type) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def case(case_id: str) -> ReviewCase:
    return ReviewCase(
        case_id=case_id,
        request_id="req-000001",
        kind="retrospective_review",
        requester_agency_id="ag-a",
        recipient_agency_id="ag-b",
        purpose=Purpose.MEDICAL_EMERGENCY,
        jurisdiction="us_baseline",
        requirement=ReviewRequirement(question="Confirm the emergency.", max_categories=[]),
        opened_at=NOW,
        due_at=NOW + timedelta(hours=72),
    )


def test_records_and_joined_writes_land_together(engine: Engine) -> None:
    recorder = DecisionRecorder(engine, AuditLedger(engine))
    deliveries = [("cd-1", "req-000001", "ag-b", NOW), ("cd-2", "req-000001", "ag-b", NOW)]
    writes = [
        partial(record_deliveries_on, rows=deliveries),
        partial(open_cases_on, cases=[(case("rr-1"), b'{"request": {}}', {})]),
    ]
    prepared = recorder.prepare(effects(5), writes=writes)
    assert prepared.new_records == 5 and len(prepared.outputs) == 5
    assert count(engine, ConsentDeliveryRow) == 2
    stored = ReviewStore(engine).list_cases()
    assert [(c.case_id, status) for c, status in stored] == [("rr-1", "open")]
    # replayed: the same writes again change nothing
    again = recorder.prepare(effects(5), writes=writes)
    assert again.new_records == 0
    assert again.outputs == []  # the first batch is still sending them
    assert count(engine, ConsentDeliveryRow) == 2 and count(engine, ReviewCaseRow) == 1
    assert AuditLedger(engine).verify().rows_checked == 5


def test_released_effects_are_sent_by_the_replay(engine: Engine) -> None:
    recorder = DecisionRecorder(engine, AuditLedger(engine))
    first = recorder.prepare(effects(3))
    assert recorder.prepare(effects(3)).outputs == []  # claimed by the batch in flight
    recorder.release(first.keys)  # that batch was abandoned before the broker took it
    replay = recorder.prepare(effects(3))
    assert [o.value for o in replay.outputs] == [o.value for o in first.outputs]
    assert replay.new_records == 0  # audited once


def test_a_failing_write_leaves_no_audit_record_behind(engine: Engine) -> None:
    recorder = DecisionRecorder(engine, AuditLedger(engine))

    def broken(conn: Connection) -> None:
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        recorder.prepare(effects(3), writes=[partial(record_deliveries_on, rows=[]), broken])
    assert AuditLedger(engine).head() is None
    assert recorder.prepare(effects(3)).new_records == 3  # the retry starts clean


def test_marked_effects_are_not_published_again(engine: Engine) -> None:
    recorder = DecisionRecorder(engine, AuditLedger(engine))
    first = recorder.prepare(effects(4))
    recorder.mark_dispatched(first.keys)
    recorder.mark_dispatched(first.keys)  # a repeated mark is harmless
    mixed = recorder.prepare([*effects(4), *effects(2, prefix="new")])
    assert [o.value for o in mixed.outputs] == [b"new-000000", b"new-000001"]
    assert mixed.replays == 4


def test_opening_a_case_twice_keeps_the_first(engine: Engine) -> None:
    store = ReviewStore(engine)
    store.open_cases([(case("rr-7"), b'{"first": true}', {})])
    store.open_cases([(case("rr-7"), b'{"second": true}', {"traceparent": "x"})])
    with engine.connect() as conn:
        rows = conn.execute(select(ReviewCaseRow.envelope_json)).scalars().all()
    assert rows == ['{"first": true}']


def test_marks_reach_the_database_with_the_next_batch_or_a_flush(engine: Engine) -> None:
    def another_process() -> DecisionRecorder:
        return DecisionRecorder(engine, AuditLedger(engine))

    recorder = another_process()
    first = recorder.prepare(effects(2))
    recorder.mark_dispatched(first.keys)
    assert len(another_process().prepare(effects(2)).outputs) == 2  # not written yet
    # this process knows at once, and the next batch's transaction writes them
    assert recorder.prepare(effects(2)).outputs == []
    assert another_process().prepare(effects(2)).outputs == []
    later = recorder.prepare(effects(1, prefix="later"))
    recorder.mark_dispatched(later.keys)
    assert recorder.flush() == 1 and recorder.flush() == 0
    assert another_process().prepare(effects(1, prefix="later")).outputs == []


def test_marks_written_with_the_next_batch_are_forgotten_by_a_later_flush(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under steady load each batch's marks go out with the next batch's transaction, so a
    flush finds nothing to write; it must still let old marks go (a soak grew by them)."""
    clock = [1_000.0]
    monkeypatch.setattr(recorder_module.time, "monotonic", lambda: clock[0])
    recorder = DecisionRecorder(engine, AuditLedger(engine))
    for n in range(5):
        prepared = recorder.prepare(effects(3, prefix=f"steady{n}"))
        recorder.mark_dispatched(prepared.keys)
    recorder.prepare(effects(1, prefix="last"))  # writes the previous batch's marks
    assert recorder.flush() == 0  # nothing pending
    assert recorder.keys_held == 16  # 15 written lately, 1 claimed
    clock[0] += WRITTEN_KEPT_S + 1
    assert recorder.flush() == 0
    assert recorder.keys_held == 1  # the claim of the batch still being sent
    # forgotten in memory, still on file: a replay is not published again
    replay = DecisionRecorder(engine, AuditLedger(engine)).prepare(effects(3, prefix="steady0"))
    assert replay.outputs == []
