"""Review cases (SQL): pending requests wait here, with their envelope, for a person to decide."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple, cast

from sqlalchemy import Connection, DateTime, String, Table, Text, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, mapped_column

from sharinghub.contracts import Envelope, ReviewCase, ReviewDecision
from sharinghub.runtime.db import Base, insert_new, session_factory


class ReviewCaseRow(Base):
    """One review case; `status` moves open → decided (or awaiting_facts → decided)."""

    __tablename__ = "review_cases"

    case_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(128), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32), index=True)
    case_json: Mapped[str] = mapped_column(Text)
    envelope_json: Mapped[str] = mapped_column(Text)
    trace_headers: Mapped[str] = mapped_column(Text, default="{}")
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    decision_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    escalated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class FoundCase(NamedTuple):
    """A stored review case as the policy stage reads it back."""

    case: ReviewCase
    envelope: Envelope
    trace_headers: dict[str, str]
    status: str
    decision: ReviewDecision | None


CaseToOpen = tuple[ReviewCase, Envelope | bytes, dict[str, str]]
"""A case, its envelope (or the envelope's JSON as a stage serialised it) and the trace
context an approval resumes."""

_CASES = cast(Table, ReviewCaseRow.__table__)


def open_cases_on(conn: Connection, cases: Sequence[CaseToOpen]) -> None:
    """`ReviewStore.open_cases` within the caller's transaction on `conn`."""
    insert_new(
        conn,
        _CASES,
        [
            {
                "case_id": case.case_id,
                "request_id": case.request_id,
                "kind": case.kind,
                "status": "open",
                "case_json": case.model_dump_json(),
                "envelope_json": envelope.decode()
                if isinstance(envelope, bytes)
                else envelope.model_dump_json(),
                "trace_headers": json.dumps(headers),
                "opened_at": case.opened_at,
                "due_at": case.due_at,
            }
            for case, envelope, headers in cases
        ],
    )


class ReviewStore:
    """Open, fetch and close review cases. Opening the same case twice is a no-op."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._sessions = session_factory(engine)

    def open_cases(self, cases: Sequence[CaseToOpen]) -> None:
        """Open these cases in one transaction; a case already open is left as it is."""
        with self._engine.begin() as conn:
            open_cases_on(conn, cases)

    def get(self, case_id: str) -> FoundCase | None:
        """The case, its envelope, trace headers, status and decision (if decided), or None."""
        with self._sessions() as session:
            row = session.get(ReviewCaseRow, case_id)
            if row is None:
                return None
            return FoundCase(
                ReviewCase.model_validate_json(row.case_json),
                Envelope.model_validate_json(row.envelope_json),
                json.loads(row.trace_headers or "{}"),
                row.status,
                ReviewDecision.model_validate_json(row.decision_json)
                if row.decision_json
                else None,
            )

    def record_decision(self, decision: ReviewDecision, status: str) -> None:
        with self._sessions() as session, session.begin():
            row = session.get(ReviewCaseRow, decision.case_id)
            if row is None:
                return
            row.status = status
            row.decided_at = decision.decided_at
            row.decision_json = decision.model_dump_json()

    def overdue(self, now: datetime) -> list[ReviewCase]:
        """Open cases past their due time that have not been escalated yet."""
        with self._sessions() as session:
            rows = session.scalars(
                select(ReviewCaseRow)
                .where(ReviewCaseRow.status != "decided")
                .where(ReviewCaseRow.due_at < now)
                .where(ReviewCaseRow.escalated_at.is_(None))
                .order_by(ReviewCaseRow.due_at)
            ).all()
            return [ReviewCase.model_validate_json(r.case_json) for r in rows]

    def mark_escalated(self, case_ids: Sequence[str], now: datetime) -> None:
        with self._sessions() as session, session.begin():
            for row in session.scalars(
                select(ReviewCaseRow).where(ReviewCaseRow.case_id.in_(list(case_ids)))
            ):
                row.escalated_at = row.escalated_at or now

    def list_cases(self, status: str | None = None) -> list[tuple[ReviewCase, str]]:
        with self._sessions() as session:
            q = select(ReviewCaseRow).order_by(ReviewCaseRow.opened_at)
            if status:
                q = q.where(ReviewCaseRow.status == status)
            return [
                (ReviewCase.model_validate_json(r.case_json), r.status) for r in session.scalars(q)
            ]
