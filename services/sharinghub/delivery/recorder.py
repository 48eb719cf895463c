"""Idempotent decision effects: one audit record and one publication per decision.

A decision's effects are an audit record plus messages (outcome, inbox, review case …). The
recorder appends the audit records (the ledger skips ones it already has), publishes the
messages of every decision not yet marked dispatched, and marks them after the broker
acknowledged them. A redelivered batch therefore produces no second audit row and no second
message; only a crash between the acknowledgement and the mark can repeat a message, with the
same ids, so readers can drop it.
"""

from __future__ import annotations

import threading
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
    """Ledger + dispatch log. Blocking (SQL): call from a worker thread.

    Effects `prepare` hands out are *claimed* until `mark_dispatched` or `release`: a batch
    processed while an earlier one is still being acknowledged (see `pipeline`) must not send
    an effect again that the earlier batch is sending. Every caller of `prepare` therefore
    marks or releases the keys it got, whatever happens.
    """

    def __init__(self, engine: Engine, ledger: AuditLedger) -> None:
        self._engine = engine
        self._ledger = ledger
        self._claimed: set[str] = set()
        self._lock = threading.Lock()

    def prepare(self, effects: Sequence[Effect], *, writes: Sequence[Write] = ()) -> Prepared:
        """Append audit records and return the messages not yet dispatched.

        One transaction: the ledger append (which takes the chain's lock), then `writes` (the
        batch's other effects that must be on file before anything is published: consent
        deliveries, review cases), then the look-up of what was already dispatched.
        """
        unique: dict[str, Effect] = {}
        for effect in effects:
            unique.setdefault(effect.key, effect)
        with self._engine.connect() as conn:
            new = self._ledger.append_on(conn, [e.record for e in unique.values()])
            for write in writes:
                write(conn)
            done = (
                set(
                    conn.scalars(
                        select(_DISPATCH.c.effect_key).where(
                            _DISPATCH.c.effect_key.in_(list(unique))
                        )
                    )
                )
                if unique
                else set()
            )
            conn.commit()
        with self._lock:
            todo = [e for k, e in unique.items() if k not in done and k not in self._claimed]
            self._claimed.update(e.key for e in todo)
        return Prepared(
            outputs=[o for e in todo for o in e.outputs],
            keys=[e.key for e in todo],
            new_records=sum(new),
            replays=len(effects) - len(todo),
        )

    def mark_dispatched(self, keys: Sequence[str]) -> None:
        """Note that the broker acknowledged these effects' messages (one statement)."""
        if not keys:
            return
        now = utcnow()
        with self._engine.begin() as conn:
            insert_new(conn, _DISPATCH, [{"effect_key": k, "dispatched_at": now} for k in keys])
        self.release(keys)

    def release(self, keys: Sequence[str]) -> None:
        """Give up claims on effects whose messages were not all acknowledged (their batch is
        processed again and sends them)."""
        with self._lock:
            self._claimed.difference_update(keys)
