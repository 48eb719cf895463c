"""The audit ledger: an append-only, hash-chained SQL table of audit records.

Each row carries a gap-free ``seq``, the previous row's hash and its own hash
``sha256(prev_hash || canonical JSON of the record incl. seq)``. Changing, deleting,
inserting or reordering any row breaks the chain at that row, and `AuditLedger.verify`
names it. The class offers no update or delete.

Writers serialise on one lock per database, so several processes appending at once still
build one chain: PostgreSQL takes a transaction-scoped advisory lock, SQLite starts the
transaction with ``BEGIN IMMEDIATE`` (its database-wide write lock, waited for through the
busy timeout `create_engine_for` sets).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from pydantic import ValidationError
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Connection,
    DateTime,
    Engine,
    Integer,
    Select,
    String,
    Table,
    UniqueConstraint,
    bindparam,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from sharinghub.delivery.audit_record import (
    GENESIS_HASH,
    AuditRecord,
    Checkpoint,
    content_hash,
    row_hash,
    sign_checkpoint,
)
from sharinghub.runtime.db import Base

# Any fixed signed 64-bit number works; this one is ASCII "SHAUDIT" followed by 0x01.
_PG_LOCK_KEY = 0x5348_4155_4449_5401
_VERIFY_CHUNK = 1000
_KEY_LOOKUP_CHUNK = 400  # keeps IN (...) lists under SQLite's bound-parameter limit

_Json = JSON().with_variant(JSONB(), "postgresql")


class AuditLedgerRow(Base):
    """One audit record plus its place in the chain. Every record field has its own column."""

    __tablename__ = "audit_ledger"
    __table_args__ = (UniqueConstraint("request_id", "decision_seq", name="uq_audit_decision"),)

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    prev_hash: Mapped[str] = mapped_column(String(64))
    row_hash: Mapped[str] = mapped_column(String(64))

    request_id: Mapped[str] = mapped_column(String(128))
    decision_seq: Mapped[int] = mapped_column(Integer)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    stage: Mapped[str] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(32), index=True)
    final: Mapped[bool] = mapped_column(Boolean)
    reason_code: Mapped[str] = mapped_column(String(200))
    requester_agency_id: Mapped[str] = mapped_column(String(100), index=True)
    requester_agency_type: Mapped[str] = mapped_column(String(64))
    recipient_agency_id: Mapped[str] = mapped_column(String(100), index=True)
    recipient_agency_type: Mapped[str] = mapped_column(String(64))
    purpose: Mapped[str] = mapped_column(String(64))
    jurisdiction: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[str] = mapped_column(String(128), index=True)
    subject_ref_hash: Mapped[str] = mapped_column(String(64))
    pack_id: Mapped[str | None] = mapped_column(String(100))
    pack_version: Mapped[str | None] = mapped_column(String(200))
    consents_used: Mapped[list[Any]] = mapped_column(_Json)
    facts: Mapped[dict[str, Any]] = mapped_column(_Json)
    allowed_categories: Mapped[list[Any]] = mapped_column(_Json)
    withheld_categories: Mapped[list[Any]] = mapped_column(_Json)
    withheld_field_names: Mapped[list[Any]] = mapped_column(_Json)
    delivered_field_names: Mapped[list[Any]] = mapped_column(_Json)
    obligations: Mapped[list[Any]] = mapped_column(_Json)
    reviewer_id: Mapped[str | None] = mapped_column(String(100))
    break_glass: Mapped[bool] = mapped_column(Boolean)
    break_glass_declared_by: Mapped[str | None] = mapped_column(String(100))
    pseudonym: Mapped[str | None] = mapped_column(String(128))
    payload_digest: Mapped[str | None] = mapped_column(String(64))
    manifest: Mapped[list[Any]] = mapped_column(_Json)
    trace_id: Mapped[str | None] = mapped_column(String(64))


_T = cast(Table, AuditLedgerRow.__table__)
_RECORD_COLUMNS = tuple(AuditRecord.model_fields)
_ROW_COLUMNS = (_T.c.seq, _T.c.prev_hash, _T.c.row_hash, *(_T.c[n] for n in _RECORD_COLUMNS))


def create_ledger_table(engine: Engine) -> None:
    """Create the ``audit_ledger`` table if missing (tests, dev; production uses Alembic)."""
    Base.metadata.create_all(engine, tables=[_T])


@dataclass(frozen=True)
class VerifyReport:
    """Result of walking the chain. ``problem`` names a seq and what is wrong, never a value."""

    ok: bool
    rows_checked: int
    head_seq: int
    head_hash: str
    first_bad_seq: int | None = None
    problem: str | None = None


class AuditLedger:
    """Append-only, tamper-evident store of audit records (one per decision)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def append(self, records: Sequence[AuditRecord]) -> list[bool]:
        """Append a batch in one transaction; returns, per record, whether it was new.

        Idempotent: a record whose ``(request_id, decision_seq)`` is already stored (or
        earlier in the same batch) is skipped and reported ``False``.
        """
        if not records:
            return []
        with self._engine.connect() as conn:
            added = self.append_on(conn, records)
            conn.commit()
        return added

    def append_on(self, conn: Connection, records: Sequence[AuditRecord]) -> list[bool]:
        """`append` as the first statements of the caller's transaction on `conn`, which
        then holds the chain's lock until it commits (other writes may join it)."""
        self._lock_chain(conn)
        if not records:
            return []
        present = self._present_keys(conn, {(r.request_id, r.decision_seq) for r in records})
        head = self._head(conn)
        seq, prev = head if head else (0, GENESIS_HASH)
        rows: list[dict[str, Any]] = []
        added: list[bool] = []
        for record in records:
            key = (record.request_id, record.decision_seq)
            if key in present:
                added.append(False)
                continue
            present.add(key)
            seq += 1
            content = record.content()
            digest = content_hash(prev, seq, content)
            # the timestamp keeps its column type, so the ledger can be queried by time
            columns = {**content, "recorded_at": record.recorded_at}
            rows.append({**columns, "seq": seq, "prev_hash": prev, "row_hash": digest})
            prev = digest
            added.append(True)
        if rows:
            conn.execute(insert(_T), rows)
        return added

    def verify(self, until_seq: int | None = None) -> VerifyReport:
        """Walk the chain in seq order (streamed) and recompute every hash.

        Stops at the first bad row: a missing seq ("seq gap after 16"), a broken link ("row 17
        prev_hash does not match row 16") or content that does not hash to the stored hash
        ("row 17 content does not match its hash"). ``until_seq`` stops after that row.
        """
        expected_seq, prev = 1, GENESIS_HASH  # rows 1..expected_seq-1 verified so far

        def bad(seq: int, problem: str) -> VerifyReport:
            good = expected_seq - 1
            return VerifyReport(False, good, good, prev, seq, problem)

        query = select(*_ROW_COLUMNS).order_by(_T.c.seq)
        if until_seq is not None:
            query = query.where(_T.c.seq <= until_seq)
        with self._engine.connect() as conn:
            # yield_per streams (server-side cursor on PostgreSQL): memory stays flat.
            result = conn.execution_options(yield_per=_VERIFY_CHUNK).execute(query)
            for row in result:
                if row.seq != expected_seq:
                    return bad(expected_seq, f"seq gap after {expected_seq - 1}")
                if row.prev_hash != prev:
                    return bad(row.seq, f"row {row.seq} prev_hash does not match row {row.seq - 1}")
                record = _record_or_none(row._mapping)
                if record is None:
                    return bad(row.seq, f"row {row.seq} content is not a valid audit record")
                if row_hash(prev, row.seq, record) != row.row_hash:
                    return bad(row.seq, f"row {row.seq} content does not match its hash")
                expected_seq, prev = expected_seq + 1, row.row_hash
        if until_seq is not None and expected_seq - 1 != until_seq:
            return bad(expected_seq, f"ledger ends at row {expected_seq - 1}, before {until_seq}")
        return VerifyReport(True, expected_seq - 1, expected_seq - 1, prev)

    def head(self) -> tuple[int, str] | None:
        """``(seq, row_hash)`` of the last row, or None for an empty ledger."""
        with self._engine.connect() as conn:
            return self._head(conn)

    def checkpoint(self, key: bytes, key_id: str) -> Checkpoint:
        """Sign the current head so an outside party can later check nothing before it changed."""
        seq, head_hash = self.head() or (0, GENESIS_HASH)
        return sign_checkpoint(seq, head_hash, key, key_id)

    def holds_checkpoint(self, checkpoint: Checkpoint) -> bool:
        """True if rows 1..checkpoint.seq still verify and hash to the checkpoint's head.

        Check the signature first with `verify_checkpoint`; this checks the ledger.
        """
        report = self.verify(until_seq=checkpoint.seq)
        return report.ok and report.head_hash == checkpoint.head_hash

    def records_for_subject(self, subject_id: str) -> list[AuditRecord]:
        """Every record about one subject, oldest first (for "who saw my data?" reports)."""
        query = select(*_ROW_COLUMNS).where(_T.c.subject_id == subject_id).order_by(_T.c.seq)
        with self._engine.connect() as conn:
            return [_record(row._mapping) for row in conn.execute(query)]

    def exists(self, request_id: str, decision_seq: int) -> bool:
        """True if the decision ``(request_id, decision_seq)`` is already recorded."""
        query = select(func.count()).where(
            _T.c.request_id == request_id, _T.c.decision_seq == decision_seq
        )
        with self._engine.connect() as conn:
            return bool(conn.execute(query).scalar_one())

    # -- internals ------------------------------------------------------------------------

    def _lock_chain(self, conn: Connection) -> None:
        dialect = conn.dialect.name
        if dialect == "sqlite":
            # pysqlite would begin lazily (deferred) at the first write; we need the write
            # lock before reading the head, or two writers could both extend the same head.
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        elif dialect == "postgresql":
            # READ COMMITTED: the head read after the lock must see the previous holder's rows.
            conn.execution_options(isolation_level="READ COMMITTED")
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        else:  # pragma: no cover - only the two supported backends
            raise ValueError(
                f"the audit ledger supports SQLite and PostgreSQL, not {dialect}: "
                "set DATABASE_URL to one of them"
            )

    @staticmethod
    def _head(conn: Connection) -> tuple[int, str] | None:
        query = select(_T.c.seq, _T.c.row_hash).order_by(_T.c.seq.desc()).limit(1)
        row = conn.execute(query).first()
        return (row.seq, row.row_hash) if row else None

    @staticmethod
    def _present_keys(conn: Connection, keys: Iterable[tuple[str, int]]) -> set[tuple[str, int]]:
        wanted = set(keys)
        ids = sorted({request_id for request_id, _ in wanted})
        found: set[tuple[str, int]] = set()
        for query in _lookup_queries(conn.dialect.name, ids):
            found.update((r.request_id, r.decision_seq) for r in conn.execute(query))
        return found & wanted


def _lookup_queries(dialect: str, ids: list[str]) -> Iterator[Select[tuple[str, int]]]:
    """Queries finding the stored decisions of these request ids through the unique index."""
    columns = select(_T.c.request_id, _T.c.decision_seq)
    if dialect == "postgresql":
        # One array parameter joined via unnest: psycopg prepares repeated statements, and
        # PostgreSQL's generic plan for a long `IN ($1, …)` list scanned the whole table.
        wanted = func.unnest(bindparam("ids", ids, type_=ARRAY(String))).table_valued("id")
        wanted = wanted.render_derived()
        yield columns.join(wanted, _T.c.request_id == wanted.c.id)
        return
    for i in range(0, len(ids), _KEY_LOOKUP_CHUNK):
        yield columns.where(_T.c.request_id.in_(ids[i : i + _KEY_LOOKUP_CHUNK]))


def _record(mapping: Any) -> AuditRecord:
    values = {name: mapping[name] for name in _RECORD_COLUMNS}
    recorded_at: datetime = values["recorded_at"]
    # SQLite returns naive datetimes (stored as UTC from `append`'s aware value): re-attach UTC.
    if recorded_at.tzinfo is None:
        values["recorded_at"] = recorded_at.replace(tzinfo=UTC)
    return AuditRecord.model_validate(values)


def _record_or_none(mapping: Any) -> AuditRecord | None:
    # A tampered row may not even be a valid record; the error text could quote the
    # tampered value, so it is dropped and only "not valid" is reported.
    try:
        return _record(mapping)
    except (ValidationError, TypeError, ValueError):
        return None
