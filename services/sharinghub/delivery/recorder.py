"""Idempotent decision effects: one audit record and one publication per decision.

A decision's effects are an audit record plus messages (outcome, inbox, review case …). The
recorder appends the audit records (the ledger skips ones it already has), publishes the
messages of every decision not yet marked dispatched, and marks them after the broker
acknowledged them. A redelivered batch therefore produces no second audit row and no second
message; only a crash between the acknowledgement and the mark can repeat a message, with the
same ids, so readers can drop it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

from sqlalchemy import Connection, DateTime, String, Table, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, mapped_column

from sharinghub.delivery.audit_record import AuditRecord
from sharinghub.delivery.ledger import AuditLedger
from sharinghub.runtime.db import Base, insert_new
from sharinghub.runtime.stage import Output, utcnow


class DispatchRow(Base):
    """A decision whose messages the broker has acknowledged."""

    __tablename__ = "effect_dispatch"

    effect_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    dispatched_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


_DISPATCH = cast(Table, DispatchRow.__table__)
MARKS_FLUSH_S = 2.0
"""Dispatch marks held in memory are written at least this often."""
WRITTEN_KEPT_S = 30.0
"""…and remembered this long after, beyond any transaction that started before the write."""
Write = Callable[[Connection], None]
"""A write that joins the recorder's transaction (see `DecisionRecorder.prepare`)."""


@dataclass
class Effect:
    """The audit record and messages of one decision about one request."""

    record: AuditRecord
    outputs: list[Output] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.record.request_id}#{self.record.decision_seq}"


@dataclass
class Prepared:
    """What to publish now, and which effects to mark dispatched afterwards."""

    outputs: list[Output]
    keys: list[str]
    new_records: int
    replays: int


class DecisionRecorder:
    """Ledger + dispatch log. Blocking (SQL): call `prepare` and `flush` from a worker thread.

    Effects `prepare` hands out are *claimed* until `mark_dispatched` or `release`: a batch
    processed while an earlier one is still being acknowledged (see `pipeline`) must not send
    an effect again that the earlier batch is sending. Every caller of `prepare` therefore
    marks or releases the keys it got, whatever happens.

    Dispatch marks are kept in memory first and written with the next batch's transaction
    (or by `flush`: periodically, before partitions are handed to another process, and at
    shutdown), so marking costs no write transaction of its own. A mark is only consulted when
    a batch comes again, and within this process the memory answers; a crash loses the marks
    not yet written, and with them the protection of batches not yet committed (their replay
    may repeat a message, with the same ids) — the same window as before the mark is written.
    """

    def __init__(self, engine: Engine, ledger: AuditLedger) -> None:
        self._engine = engine
        self._ledger = ledger
        self._claimed: set[str] = set()
        self._dispatched: dict[str, datetime] = {}  # acknowledged, not yet written
        # Written lately: a transaction that started before the write may not see it yet.
        self._written: dict[str, float] = {}
        self._lock = threading.Lock()

    def prepare(self, effects: Sequence[Effect], *, writes: Sequence[Write] = ()) -> Prepared:
        """Append audit records and return the messages not yet dispatched.

        One transaction: the ledger append (which takes the chain's lock), then `writes` (the
        batch's other effects that must be on file before anything is published: consent
        deliveries, review cases), the pending dispatch marks, then the look-up of what was
        already dispatched. Only replays are looked up: an effect is marked dispatched only
        after a `prepare` recorded its audit record, so one whose record this append added
        cannot have been.
        """
        unique: dict[str, Effect] = {}
        for effect in effects:
            unique.setdefault(effect.key, effect)
        with self._engine.connect() as conn:
            new = self._ledger.append_on(conn, [e.record for e in unique.values()])
            for write in writes:
                write(conn)
            marks = self._write_marks(conn)
            replayed = [key for key, added in zip(unique, new, strict=True) if not added]
            done = (
                set(
                    conn.scalars(
                        select(_DISPATCH.c.effect_key).where(_DISPATCH.c.effect_key.in_(replayed))
                    )
                )
                if replayed
                else set()
            )
            conn.commit()
        with self._lock:
            self._written_now(marks)
            done.update(k for k in unique if k in self._dispatched or k in self._written)
            todo = [e for k, e in unique.items() if k not in done and k not in self._claimed]
            self._claimed.update(e.key for e in todo)
        return Prepared(
            outputs=[o for e in todo for o in e.outputs],
            keys=[e.key for e in todo],
            new_records=sum(new),
            replays=len(effects) - len(todo),
        )

    def mark_dispatched(self, keys: Sequence[str]) -> None:
        """Note that the broker acknowledged these effects' messages (written later)."""
        now = utcnow()
        with self._lock:
            for key in keys:
                self._dispatched[key] = now
            self._claimed.difference_update(keys)

    def release(self, keys: Sequence[str]) -> None:
        """Give up claims on effects whose messages were not all acknowledged (their batch is
        processed again and sends them)."""
        with self._lock:
            self._claimed.difference_update(keys)

    def flush(self) -> int:
        """Write the dispatch marks still held in memory, and forget marks written long
        enough ago that every transaction sees them; returns how many marks were written."""
        with self._lock:
            pending = bool(self._dispatched)
        marks: dict[str, datetime] = {}
        if pending:
            with self._engine.connect() as conn:
                marks = self._write_marks(conn)
                conn.commit()
        with self._lock:
            self._written_now(marks)
            # Also when nothing was pending: under steady load every batch's marks go out
            # with the next batch's transaction, and this is the only place they are let go.
            horizon = time.monotonic() - WRITTEN_KEPT_S
            for key in [k for k, at in self._written.items() if at < horizon]:
                del self._written[key]
        return len(marks)

    @property
    def keys_held(self) -> int:
        """Effect keys held in memory (claimed, acknowledged or lately written): bounded by
        the effects of the last `WRITTEN_KEPT_S` seconds once `flush` runs regularly."""
        with self._lock:
            return len(self._claimed) + len(self._dispatched) + len(self._written)

    def _written_now(self, marks: dict[str, datetime]) -> None:
        # (under the lock) a key marked again meanwhile stays to be written
        now = time.monotonic()
        for key, at in marks.items():
            if self._dispatched.get(key) is at:
                del self._dispatched[key]
            self._written[key] = now

    async def flush_in_thread(self) -> None:
        """`flush` off the event loop (a service's drained hook)."""
        await asyncio.to_thread(self.flush)

    def _write_marks(self, conn: Connection) -> dict[str, datetime]:
        with self._lock:
            marks = dict(self._dispatched)
        insert_new(
            conn, _DISPATCH, [{"effect_key": k, "dispatched_at": at} for k, at in marks.items()]
        )
        return marks
