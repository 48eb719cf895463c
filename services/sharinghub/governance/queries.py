"""Read-only SQL access for governance: ledger searches, summaries and open review cases.

The one adapter of the governance package: reports and the console get records from here
and never write. Rows become `AuditRecord`s again so every consumer sees the same contract.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Engine, Select, Table, and_, func, or_, select, true
from sqlalchemy.sql.elements import ColumnElement

from sharinghub.consent.retractions import RetractionStore
from sharinghub.contracts import AgencyType, Jurisdiction, Outcome, Purpose, ReviewCase
from sharinghub.delivery.audit_record import AuditRecord
from sharinghub.delivery.ledger import AuditLedger, AuditLedgerRow, VerifyReport
from sharinghub.policy.reviews import ReviewStore
from sharinghub.runtime.db import stored_utc

_T = cast(Table, AuditLedgerRow.__table__)
_RECORD_COLUMNS = tuple(AuditRecord.model_fields)
_STREAM_CHUNK = 2000


@dataclass(frozen=True)
class DecisionFilter:
    """Search criteria for decisions; ``agency`` matches the requester or the recipient."""

    purpose: Purpose | None = None
    outcome: Outcome | None = None
    agency: str | None = None
    jurisdiction: Jurisdiction | None = None
    since: date | None = None
    until: date | None = None
    final_only: bool = False
    subject_id: str | None = None
    break_glass_only: bool = False

    def clauses(self) -> list[ColumnElement[bool]]:
        """SQL conditions of this filter (all must hold)."""
        c: list[ColumnElement[bool]] = []
        if self.purpose is not None:
            c.append(_T.c.purpose == self.purpose.value)
        if self.outcome is not None:
            c.append(_T.c.outcome == self.outcome.value)
        if self.agency:
            c.append(
                or_(
                    _T.c.requester_agency_id == self.agency, _T.c.recipient_agency_id == self.agency
                )
            )
        if self.jurisdiction is not None:
            c.append(_T.c.jurisdiction == self.jurisdiction.value)
        if self.since is not None:
            c.append(_T.c.recorded_at >= _day_start(self.since))
        if self.until is not None:
            # ``until`` is inclusive: everything before the next day's midnight (UTC).
            c.append(_T.c.recorded_at < _day_start(self.until + timedelta(days=1)))
        if self.final_only:
            c.append(_T.c.final == true())
        if self.subject_id:
            c.append(_T.c.subject_id == self.subject_id)
        if self.break_glass_only:
            c.append(_T.c.break_glass == true())
        return c


def _day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


_utc = stored_utc


def record_of(mapping: Any) -> AuditRecord:
    """The `AuditRecord` stored in one ledger row."""
    values = {name: mapping[name] for name in _RECORD_COLUMNS}
    values["recorded_at"] = _utc(values["recorded_at"])
    return AuditRecord.model_validate(values)


@dataclass(frozen=True)
class DecisionSummary:
    """The few columns totals and charts need (cheaper than whole records)."""

    recorded_at: datetime
    outcome: Outcome
    purpose: Purpose
    recipient_agency_id: str
    requester_agency_id: str
    jurisdiction: Jurisdiction
    final: bool


@dataclass(frozen=True)
class ReviewItem:
    """An undecided review case, with its age, for the board (no envelope, no values)."""

    case: ReviewCase
    status: str
    age_hours: float
    overdue: bool
    break_glass: bool


@dataclass(frozen=True)
class OpenRetraction:
    """A retraction notice a recipient has not acknowledged yet (ids and times only)."""

    retraction_id: str
    consent_id: str
    recipient_agency_id: str
    request_ids: tuple[str, ...]
    issued_at: datetime
    published_at: datetime | None
    age_hours: float


class GovernanceQueries:
    """Read-only queries over ``audit_ledger`` and ``review_cases``."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.ledger = AuditLedger(engine)

    def _where(self, query: Select[Any], f: DecisionFilter) -> Select[Any]:
        clauses = f.clauses()
        return query.where(and_(true(), *clauses)) if clauses else query

    def decisions(
        self, f: DecisionFilter, *, page: int = 1, page_size: int = 50
    ) -> tuple[list[tuple[int, AuditRecord]], int]:
        """One page of matching decisions, newest first, and the number of matches."""
        page = max(page, 1)
        count = self._where(select(func.count()).select_from(_T), f)
        rows = (
            self._where(select(_T), f)
            .order_by(_T.c.seq.desc())
            .offset((page - 1) * page_size)
            .limit(page_size)
        )
        with self._engine.connect() as conn:
            total = int(conn.execute(count).scalar_one())
            found = [(int(r.seq), record_of(r._mapping)) for r in conn.execute(rows)]
        return found, total

    def request_decisions(self, request_id: str) -> list[tuple[int, AuditRecord]]:
        """Every decision recorded for one request, in order."""
        query = select(_T).where(_T.c.request_id == request_id).order_by(_T.c.seq)
        with self._engine.connect() as conn:
            return [(int(r.seq), record_of(r._mapping)) for r in conn.execute(query)]

    def summaries(self, f: DecisionFilter) -> Iterator[DecisionSummary]:
        """Stream the summary columns of matching decisions, oldest first."""
        cols = (
            _T.c.recorded_at,
            _T.c.outcome,
            _T.c.purpose,
            _T.c.recipient_agency_id,
            _T.c.requester_agency_id,
            _T.c.jurisdiction,
            _T.c.final,
        )
        query = self._where(select(*cols), f).order_by(_T.c.seq)
        with self._engine.connect() as conn:
            result = conn.execution_options(yield_per=_STREAM_CHUNK).execute(query)
            for r in result:
                yield DecisionSummary(
                    _utc(r.recorded_at),
                    Outcome(r.outcome),
                    Purpose(r.purpose),
                    r.recipient_agency_id,
                    r.requester_agency_id,
                    Jurisdiction(r.jurisdiction),
                    bool(r.final),
                )

    def agencies(self) -> list[str]:
        """Every agency id that appears as requester or recipient, sorted."""
        query = select(_T.c.requester_agency_id).union(select(_T.c.recipient_agency_id))
        with self._engine.connect() as conn:
            return sorted({str(v) for v in conn.execute(query).scalars()})

    def subject_records(self, subject_id: str) -> list[AuditRecord]:
        """Every record about one subject, oldest first."""
        return self.ledger.records_for_subject(subject_id)

    def ferpa_records(self) -> list[AuditRecord]:
        """Final deliveries disclosed by schools under ``us_baseline``, oldest first."""
        query = (
            select(_T)
            .where(
                _T.c.requester_agency_type == AgencyType.SCHOOL.value,
                _T.c.jurisdiction == Jurisdiction.US_BASELINE.value,
                _T.c.outcome == Outcome.DELIVERED.value,
                _T.c.final == true(),
            )
            .order_by(_T.c.seq)
        )
        with self._engine.connect() as conn:
            return [record_of(r._mapping) for r in conn.execute(query)]

    def break_glass_requests(self, request_ids: list[str]) -> set[str]:
        """Which of these requests were declared break-glass in the ledger."""
        if not request_ids:
            return set()
        query = select(_T.c.request_id).where(
            _T.c.request_id.in_(request_ids[:500]), _T.c.break_glass == true()
        )
        with self._engine.connect() as conn:
            return {str(v) for v in conn.execute(query).scalars()}

    def counts(self) -> dict[str, int]:
        """Final decisions per outcome, plus ``all`` (every decision row)."""
        query = (
            select(_T.c.outcome, func.count()).where(_T.c.final == true()).group_by(_T.c.outcome)
        )
        everything = select(func.count()).select_from(_T)
        with self._engine.connect() as conn:
            out = {str(k): int(n) for k, n in conn.execute(query)}
            out["all"] = int(conn.execute(everything).scalar_one())
        return out

    def open_retractions(self, now: datetime) -> list[OpenRetraction]:
        """Unacknowledged retraction notices, oldest first."""
        return open_retractions(self._engine, now)

    def open_reviews(self, now: datetime) -> list[ReviewItem]:
        """Undecided review cases (pending and retrospective), oldest first."""
        cases = [(c, s) for c, s in ReviewStore(self._engine).list_cases() if s != "decided"]
        glass = self.break_glass_requests([c.request_id for c, _ in cases])
        return [
            ReviewItem(
                case=c,
                status=s,
                age_hours=(now - c.opened_at).total_seconds() / 3600,
                overdue=now > c.due_at,
                break_glass=c.request_id in glass,
            )
            for c, s in cases
        ]


def open_retractions(engine: Engine, now: datetime) -> list[OpenRetraction]:
    """Unacknowledged retraction notices, oldest first."""
    out = []
    for row in RetractionStore(engine).unacknowledged():
        issued = _utc(row.issued_at)
        out.append(
            OpenRetraction(
                retraction_id=row.retraction_id,
                consent_id=row.consent_id,
                recipient_agency_id=row.recipient_agency_id,
                request_ids=tuple(r for r in row.request_ids.split(",") if r),
                issued_at=issued,
                published_at=_utc(row.published_at) if row.published_at else None,
                age_hours=(now - issued).total_seconds() / 3600,
            )
        )
    return out


class VerifyCache:
    """`AuditLedger.verify()` at most once per ``ttl_s``.

    `get` waits for a fresh result; `peek` never waits: it returns the last result (or None)
    and, if that is stale, starts one refresh in the background. A long ledger walk thus
    slows the chain page, not every page that shows the chain's status.
    """

    def __init__(self, ledger: AuditLedger, ttl_s: float = 30.0) -> None:
        self._ledger = ledger
        self.ttl_s = ttl_s
        self._lock = threading.Lock()  # one walk at a time
        self._result: tuple[VerifyReport, datetime, float, float] | None = None

    def _fresh(self) -> bool:
        return self._result is not None and time.monotonic() - self._result[3] <= self.ttl_s

    def _refresh(self) -> None:
        with self._lock:
            if self._fresh():
                return
            started = time.monotonic()
            report = self._ledger.verify()
            took = time.monotonic() - started
            self._result = (report, datetime.now(UTC), took, time.monotonic())

    def get(self) -> tuple[VerifyReport, datetime, float]:
        """(report, when it was computed, seconds the walk took), at most ``ttl_s`` old."""
        self._refresh()
        assert self._result is not None
        report, at, took, _ = self._result
        return report, at, took

    def peek(self, first_wait_s: float = 2.0) -> tuple[VerifyReport, datetime, float] | None:
        """The last result without waiting long; a stale one triggers a background refresh.

        Before any result exists it waits up to ``first_wait_s`` for the first walk.
        """
        if not self._fresh() and not self._lock.locked():
            worker = threading.Thread(target=self._refresh, name="verify-refresh", daemon=True)
            worker.start()
            if self._result is None:
                worker.join(first_wait_s)
        if self._result is None:
            return None
        report, at, took, _ = self._result
        return report, at, took
