"""Idempotent decision effects: one audit record and one publication per decision.

A decision's effects are an audit record plus messages (outcome, inbox, review case …). The
recorder appends the audit records (the ledger skips ones it already has), publishes the
messages of every decision not yet marked dispatched, and marks them after the broker
acknowledged them. A redelivered batch therefore produces no second audit row and no second
message; only a crash between the acknowledgement and the mark can repeat a message, with the
same ids, so readers can drop it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import DateTime, String, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, mapped_column

from sharinghub.delivery.audit_record import AuditRecord
from sharinghub.delivery.ledger import AuditLedger
from sharinghub.runtime.db import Base, session_factory
from sharinghub.runtime.stage import Output, utcnow


class DispatchRow(Base):
    """A decision whose messages the broker has acknowledged."""

    __tablename__ = "effect_dispatch"

    effect_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    dispatched_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


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
    """Ledger + dispatch log. Blocking (SQL): call from a worker thread."""

    def __init__(self, engine: Engine, ledger: AuditLedger) -> None:
        self._sessions = session_factory(engine)
        self._ledger = ledger

    def prepare(self, effects: Sequence[Effect]) -> Prepared:
        """Append audit records and return the messages not yet dispatched."""
        unique: dict[str, Effect] = {}
        for effect in effects:
            unique.setdefault(effect.key, effect)
        new = self._ledger.append([e.record for e in unique.values()])
        with self._sessions() as session:
            done = set(
                session.scalars(
                    select(DispatchRow.effect_key).where(DispatchRow.effect_key.in_(list(unique)))
                )
            )
        todo = [e for k, e in unique.items() if k not in done]
        return Prepared(
            outputs=[o for e in todo for o in e.outputs],
            keys=[e.key for e in todo],
            new_records=sum(new),
            replays=len(effects) - len(todo),
        )

    def mark_dispatched(self, keys: Sequence[str]) -> None:
        if not keys:
            return
        now = utcnow()
        with self._sessions() as session, session.begin():
            present = set(
                session.scalars(
                    select(DispatchRow.effect_key).where(DispatchRow.effect_key.in_(keys))
                )
            )
            rows = [{"effect_key": k, "dispatched_at": now} for k in keys if k not in present]
            if rows:  # one bulk INSERT, not an ORM object per row: every batch comes here
                session.execute(insert(DispatchRow), rows)
