"""The audit ledger's storage contract, run on SQLite and on PostgreSQL.

`LedgerContract` is the one suite; `TestSQLiteLedger` and `TestPostgresLedger` differ only
in the database URL they provide. Tampering is done with plain SQL, as an insider with
database access would do it, and `verify()` must name the first bad row.
"""

from __future__ import annotations

import multiprocessing
import os
import secrets
import threading
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from faker import Faker
from sqlalchemy import Engine, create_engine, text

from sharinghub.contracts import (
    AgencyType,
    ConsentRef,
    DataCategory,
    Jurisdiction,
    ManifestEntry,
    Obligation,
    Outcome,
    Purpose,
    Stage,
)
from sharinghub.delivery.audit_record import (
    GENESIS_HASH,
    AuditRecord,
    row_hash,
    subject_ref_hash,
    verify_checkpoint,
)
from sharinghub.delivery.ledger import AuditLedger, AuditLedgerRow, create_ledger_table
from sharinghub.runtime.db import create_engine_for

PG_URL = os.environ.get(
    "SHARINGHUB_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
SUBJECT_KEY = b"test-subject-key"
CHECKPOINT_KEY = b"test-checkpoint-key"


# -- fictional records ----------------------------------------------------------------------


def make_records(n: int, *, prefix: str = "req", seed: int = 7) -> list[AuditRecord]:
    """``n`` distinct, valid, fictional audit records (deterministic for a given seed)."""
    fake = Faker()
    fake.seed_instance(seed)
    subjects = [f"subj-{fake.bothify('??-####').lower()}" for _ in range(5)]
    start = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)
    records = []
    for i in range(n):
        subject = subjects[i % len(subjects)]
        delivered = i % 3 != 0
        records.append(
            AuditRecord(
                request_id=f"{prefix}-{i:06d}",
                decision_seq=1,
                recorded_at=start + timedelta(seconds=i, microseconds=i * 7),
                stage=Stage.DELIVERY if delivered else Stage.POLICY,
                outcome=Outcome.DELIVERED if delivered else Outcome.DENIED,
                final=True,
                reason_code="P.consent_based_sharing.consented" if delivered else "P.consent.none",
                requester_agency_id="ag-eastmere-social-services",
                requester_agency_type=AgencyType.SOCIAL_SERVICES,
                recipient_agency_id="ag-eastmere-homes-association",
                recipient_agency_type=AgencyType.HOUSING,
                purpose=Purpose.CONSENT_BASED_SHARING,
                jurisdiction=Jurisdiction.UK_ENGLAND,
                subject_id=subject,
                subject_ref_hash=subject_ref_hash(subject, SUBJECT_KEY),
                pack_id="uk_england",
                pack_version="1.0.0+sha256:abc",
                consents_used=[ConsentRef(consent_id=f"cd-{i}", version=1 + i % 2)],
                facts={"threat_imminent": None, "subject_is_minor": False},
                allowed_categories=[DataCategory.IDENTITY, DataCategory.HOUSING]
                if delivered
                else [],
                withheld_categories=[DataCategory.MENTAL_HEALTH],
                withheld_field_names=["diagnosis"],
                delivered_field_names=["full_name", "tenancy_status"] if delivered else [],
                obligations=[Obligation.NOTIFY_CLIENT] if delivered else [],
                payload_digest=fake.sha256() if delivered else None,
                manifest=[
                    ManifestEntry(
                        field_name="diagnosis",
                        category=DataCategory.MENTAL_HEALTH,
                        action="removed",
                        rule="S1.not_allowed",
                    )
                ],
                trace_id=fake.hexify("^" * 32),
            )
        )
    return records


# -- backends -------------------------------------------------------------------------------


def _postgres_database() -> Iterator[str]:
    """Create a throw-away database ``sharinghub_test_<random>``; drop it afterwards."""
    admin_url = PG_URL.rsplit("/", 1)[0] + "/postgres"
    admin = create_engine(
        admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
    )
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any connect failure means "no PostgreSQL here"
        admin.dispose()
        reason = f"PostgreSQL unreachable at {admin_url} ({type(exc).__name__})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI must run the PostgreSQL suite")
        pytest.skip(reason)
    name = f"sharinghub_test_{secrets.token_hex(6)}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    yield from _postgres_database()


# -- the suite ------------------------------------------------------------------------------


class LedgerContract:
    """Behaviour every backend must show. Subclasses provide the ``url`` fixture."""

    @pytest.fixture
    def url(self) -> str:
        raise TypeError("a backend subclass provides the database url")

    @pytest.fixture
    def engine(self, url: str) -> Iterator[Engine]:
        engine = create_engine_for(url)
        create_ledger_table(engine)
        yield engine
        AuditLedgerRow.__table__.drop(engine)
        engine.dispose()

    @pytest.fixture
    def ledger(self, engine: Engine) -> AuditLedger:
        return AuditLedger(engine)

    @staticmethod
    def sql(engine: Engine, statement: str, **params: Any) -> None:
        with engine.begin() as conn:
            conn.execute(text(statement), params)

    # -- appending ------------------------------------------------------------------------

    def test_empty_ledger_verifies(self, ledger: AuditLedger) -> None:
        report = ledger.verify()
        assert report.ok
        assert (report.rows_checked, report.head_hash) == (0, GENESIS_HASH)
        assert ledger.head() is None

    def test_appended_records_chain_and_read_back_unchanged(self, ledger: AuditLedger) -> None:
        records = make_records(30)
        assert ledger.append(records) == [True] * 30

        report = ledger.verify()
        assert report.ok, report.problem
        assert report.rows_checked == 30
        assert ledger.head() == (30, report.head_hash)
        # The chain is the documented formula, recomputable by an outsider.
        prev = GENESIS_HASH
        for seq, record in enumerate(records, start=1):
            prev = row_hash(prev, seq, record)
        assert prev == report.head_hash

        subject = records[0].subject_id
        mine = ledger.records_for_subject(subject)
        assert mine == [r for r in records if r.subject_id == subject]
        assert ledger.exists(records[4].request_id, 1)
        assert not ledger.exists(records[4].request_id, 2)

    def test_timestamps_in_other_offsets_are_stored_as_the_same_instant(
        self, ledger: AuditLedger
    ) -> None:
        record = make_records(1)[0]
        shifted = record.model_copy(
            update={"recorded_at": record.recorded_at.astimezone(timezone(timedelta(hours=5)))}
        )
        # model_copy skips validation; revalidate as a caller constructing it would.
        shifted = AuditRecord.model_validate(shifted.model_dump())
        ledger.append([shifted])
        assert ledger.records_for_subject(record.subject_id) == [record]
        assert ledger.verify().ok

    def test_replaying_the_same_records_stores_each_once(self, ledger: AuditLedger) -> None:
        records = make_records(20)
        assert ledger.append(records) == [True] * 20
        for _ in range(3):
            assert ledger.append(records) == [False] * 20
        # A batch that mixes old and new, and repeats a new one, adds only the new one once.
        later = records[0].model_copy(update={"decision_seq": 2, "stage": Stage.REVIEW})
        assert ledger.append([records[1], later, later]) == [False, True, False]
        report = ledger.verify()
        assert report.ok
        assert report.rows_checked == 21

    def test_concurrent_threads_build_one_chain(self, ledger: AuditLedger) -> None:
        shared = make_records(10, prefix="shared")  # every thread also replays these
        errors: list[BaseException] = []

        def writer(n: int) -> None:
            try:
                own = make_records(40, prefix=f"t{n}", seed=n)
                for i in range(0, 40, 10):
                    ledger.append([*own[i : i + 10], *shared[i // 4 : i // 4 + 3]])
            except BaseException as exc:  # surfaced by the assertion below
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        report = ledger.verify()
        assert report.ok, report.problem
        distinct_shared = {
            r.request_id for i in range(0, 40, 10) for r in shared[i // 4 : i // 4 + 3]
        }
        assert report.rows_checked == 4 * 40 + len(distinct_shared)

    def test_concurrent_processes_build_one_chain(self, url: str, ledger: AuditLedger) -> None:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=3, mp_context=ctx) as pool:
            added = list(pool.map(_append_from_process, [url] * 3, range(3)))
        # Each process replays a shared batch: exactly one of them stored it.
        assert sum(added) == 3 * 50 + 10
        report = ledger.verify()
        assert report.ok, report.problem
        assert report.rows_checked == 3 * 50 + 10

    # -- tampering ------------------------------------------------------------------------

    @pytest.mark.parametrize(
        ("column", "value"),
        [
            ("outcome", "delivered"),  # record 17 (index 15) was denied
            ("withheld_categories", "[]"),
            ("recorded_at", "2025-03-04 09:30:00"),
            ("subject_id", "subj-someone-else"),
            ("row_hash", "f" * 64),
        ],
    )
    def test_an_edited_row_is_named(
        self, engine: Engine, ledger: AuditLedger, column: str, value: str
    ) -> None:
        ledger.append(make_records(30))
        cast = _json_cast(engine, column)
        edit = f"UPDATE audit_ledger SET {column} = (:v){cast} WHERE seq = 16"  # noqa: S608 - fixed names
        self.sql(engine, edit, v=value)

        report = ledger.verify()
        assert not report.ok
        assert report.first_bad_seq == 16
        assert report.problem == "row 16 content does not match its hash"
        assert report.rows_checked == 15

    def test_an_edit_that_makes_the_row_invalid_is_named_without_the_value(
        self, engine: Engine, ledger: AuditLedger
    ) -> None:
        ledger.append(make_records(30))
        self.sql(engine, "UPDATE audit_ledger SET stage = :v WHERE seq = 3", v="forged-stage-x")
        report = ledger.verify()
        assert (report.ok, report.first_bad_seq) == (False, 3)
        assert report.problem == "row 3 content is not a valid audit record"
        assert "forged" not in (report.problem or "")

    def test_a_deleted_row_is_named(self, engine: Engine, ledger: AuditLedger) -> None:
        ledger.append(make_records(30))
        self.sql(engine, "DELETE FROM audit_ledger WHERE seq = 17")
        report = ledger.verify()
        assert (report.ok, report.first_bad_seq) == (False, 17)
        assert report.problem == "seq gap after 16"

    def test_a_forged_row_inserted_in_the_middle_is_found(
        self, engine: Engine, ledger: AuditLedger
    ) -> None:
        ledger.append(make_records(30))
        # A careful forger: shifts rows 17.. up by one and inserts a row at 17 whose
        # prev_hash and row_hash are computed correctly. Row 18 (the old 17) no longer links.
        self.sql(engine, "UPDATE audit_ledger SET seq = -seq WHERE seq >= 17")
        self.sql(engine, "UPDATE audit_ledger SET seq = 1 - seq WHERE seq < 0")
        forged = make_records(1, prefix="forged")[0]
        prev = _row_hash_at(engine, 16)
        values = _columns_for_sql(forged)
        values.update(seq=17, prev_hash=prev, row_hash=row_hash(prev, 17, forged))
        _insert_raw(engine, values)

        report = ledger.verify()
        assert (report.ok, report.first_bad_seq) == (False, 18)
        assert report.problem == "row 18 prev_hash does not match row 17"

    def test_a_forged_row_appended_with_a_made_up_link_is_named(
        self, engine: Engine, ledger: AuditLedger
    ) -> None:
        ledger.append(make_records(30))
        forged = make_records(1, prefix="forged")[0]
        values = _columns_for_sql(forged)
        values.update(seq=31, prev_hash="a" * 64, row_hash=row_hash("a" * 64, 31, forged))
        _insert_raw(engine, values)
        report = ledger.verify()
        assert (report.ok, report.first_bad_seq) == (False, 31)
        assert report.problem == "row 31 prev_hash does not match row 30"

    def test_two_rows_with_swapped_contents_are_named(
        self, engine: Engine, ledger: AuditLedger
    ) -> None:
        records = make_records(30)
        ledger.append(records)
        # Swap every record column of rows 5 and 9; seq and the hash columns stay put.
        a, b = _columns_for_sql(records[4]), _columns_for_sql(records[8])
        self.sql(engine, "UPDATE audit_ledger SET request_id = 'tmp' WHERE seq = 9")  # unique key
        _update_raw(engine, 5, b)
        _update_raw(engine, 9, a)
        report = ledger.verify()
        assert (report.ok, report.first_bad_seq) == (False, 5)
        assert report.problem == "row 5 content does not match its hash"

    def test_two_reordered_rows_are_named(self, engine: Engine, ledger: AuditLedger) -> None:
        ledger.append(make_records(30))
        # Whole rows (hashes included) change places: a reorder.
        self.sql(engine, "UPDATE audit_ledger SET seq = -1 WHERE seq = 5")
        self.sql(engine, "UPDATE audit_ledger SET seq = 5 WHERE seq = 9")
        self.sql(engine, "UPDATE audit_ledger SET seq = 9 WHERE seq = -1")
        report = ledger.verify()
        assert (report.ok, report.first_bad_seq) == (False, 5)
        assert report.problem == "row 5 prev_hash does not match row 4"

    def test_verify_streams_past_chunk_boundaries(
        self, engine: Engine, ledger: AuditLedger
    ) -> None:
        records = make_records(2500)
        for i in range(0, 2500, 500):
            ledger.append(records[i : i + 500])
        assert ledger.verify().rows_checked == 2500
        self.sql(engine, "UPDATE audit_ledger SET reason_code = 'x' WHERE seq = 2101")
        report = ledger.verify()
        assert (report.first_bad_seq, report.rows_checked) == (2101, 2100)

    # -- checkpoints ----------------------------------------------------------------------

    def test_a_checkpoint_is_signed_and_held_by_the_ledger(
        self, engine: Engine, ledger: AuditLedger
    ) -> None:
        records = make_records(40)
        ledger.append(records[:20])
        cp = ledger.checkpoint(CHECKPOINT_KEY, "board-2025")
        assert (cp.seq, cp.key_id) == (20, "board-2025")
        assert verify_checkpoint(cp, CHECKPOINT_KEY)
        assert not verify_checkpoint(cp, b"another key")
        assert not verify_checkpoint(cp.model_copy(update={"seq": 19}), CHECKPOINT_KEY)
        assert not verify_checkpoint(cp.model_copy(update={"head_hash": "0" * 64}), CHECKPOINT_KEY)

        ledger.append(records[20:])
        assert ledger.holds_checkpoint(cp)  # later appends do not disturb the prefix

        self.sql(engine, "UPDATE audit_ledger SET outcome = 'denied' WHERE seq = 2")
        assert not ledger.holds_checkpoint(cp)

    def test_a_checkpoint_reveals_a_truncated_tail(
        self, engine: Engine, ledger: AuditLedger
    ) -> None:
        ledger.append(make_records(20))
        cp = ledger.checkpoint(CHECKPOINT_KEY, "board-2025")
        # Deleting the newest rows leaves a chain that verifies on its own …
        self.sql(engine, "DELETE FROM audit_ledger WHERE seq >= 18")
        assert ledger.verify().ok
        # … but no longer reaches the head the board holds.
        assert not ledger.holds_checkpoint(cp)
        assert ledger.verify(until_seq=cp.seq).problem == "ledger ends at row 17, before 20"


class TestSQLiteLedger(LedgerContract):
    @pytest.fixture
    def url(self, tmp_path: Any) -> str:
        return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.mark.integration
class TestPostgresLedger(LedgerContract):
    @pytest.fixture
    def url(self, postgres_url: str) -> str:
        return postgres_url


# -- helpers (module level so spawned processes can import them) ----------------------------


def _append_from_process(url: str, n: int) -> int:
    engine = create_engine_for(url)
    try:
        ledger = AuditLedger(engine)
        own = make_records(50, prefix=f"p{n}", seed=100 + n)
        shared = make_records(10, prefix="shared")
        added = 0
        for i in range(0, 50, 10):
            added += sum(ledger.append([*own[i : i + 10], *shared]))
        return added
    finally:
        engine.dispose()


def _is_pg(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def _row_hash_at(engine: Engine, seq: int) -> str:
    with engine.connect() as conn:
        return str(
            conn.execute(
                text("SELECT row_hash FROM audit_ledger WHERE seq = :s"), {"s": seq}
            ).scalar_one()
        )


def _columns_for_sql(record: AuditRecord) -> dict[str, Any]:
    values = record.content()
    values["recorded_at"] = record.recorded_at.replace(tzinfo=None)  # stored as UTC
    for key, value in values.items():
        if isinstance(value, list | dict):
            values[key] = orjson.dumps(value).decode()
    return values


def _json_cast(engine: Engine, column: str) -> str:
    json_columns = {
        c.name for c in AuditLedgerRow.__table__.columns if c.type.__class__.__name__ == "JSON"
    }
    if column in json_columns and _is_pg(engine):
        return "::jsonb"
    if column == "recorded_at" and _is_pg(engine):
        return " AT TIME ZONE 'UTC'"
    return ""


def _insert_raw(engine: Engine, values: dict[str, Any]) -> None:
    names = ", ".join(values)
    params = ", ".join(f"(:{k}){_json_cast(engine, k)}" for k in values)
    with engine.begin() as conn:
        # Column names come from the table definition, never from input.
        insert = f"INSERT INTO audit_ledger ({names}) VALUES ({params})"  # noqa: S608
        conn.execute(text(insert), values)


def _update_raw(engine: Engine, seq: int, values: dict[str, Any]) -> None:
    sets = ", ".join(f"{k} = (:{k}){_json_cast(engine, k)}" for k in values)
    with engine.begin() as conn:
        update = f"UPDATE audit_ledger SET {sets} WHERE seq = :seq_"  # noqa: S608 - fixed names
        conn.execute(text(update), {**values, "seq_": seq})
