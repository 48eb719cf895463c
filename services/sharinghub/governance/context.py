"""What every console route needs: queries, the verify cache, auth, a clock; and filter parsing."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from starlette.requests import Request

from sharinghub.contracts import Jurisdiction, Outcome, Purpose
from sharinghub.delivery.audit_record import AuditRecord
from sharinghub.governance.auth import Authenticator
from sharinghub.governance.queries import DecisionFilter, GovernanceQueries, VerifyCache
from sharinghub.governance.reports import Period, TotalsBy

FILTER_KEYS = ("purpose", "outcome", "agency", "jurisdiction", "from", "to", "final", "break_glass")
# Fields of an audit record the console never shows: the one-time pseudonym links the
# recipient's copy to the subject and is of no use to a board.
HIDDEN_FIELDS = frozenset({"pseudonym"})


@dataclass
class Console:
    """State shared by the routes of one console app."""

    queries: GovernanceQueries
    verify: VerifyCache
    auth: Authenticator
    clock: Callable[[], datetime]
    page_size: int = 50


def console_of(request: Request) -> Console:
    """The `Console` of the app serving this request."""
    console: Console = request.app.state.console
    return console


def now_utc() -> datetime:
    """The current instant in UTC."""
    return datetime.now(UTC)


def _enum(kind: Any, raw: str | None, label: str, errors: list[str]) -> Any:
    if not raw:
        return None
    try:
        return kind(raw)
    except ValueError:
        errors.append(f"unknown {label}")
        return None


def _day(raw: str | None, label: str, errors: list[str]) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        errors.append(f"{label} must be a date (YYYY-MM-DD)")
        return None


def parse_filter(params: Mapping[str, str]) -> tuple[DecisionFilter, list[str]]:
    """A `DecisionFilter` from query parameters, and what could not be understood."""
    errors: list[str] = []
    agency = (params.get("agency") or "").strip() or None
    f = DecisionFilter(
        purpose=_enum(Purpose, params.get("purpose"), "purpose", errors),
        outcome=_enum(Outcome, params.get("outcome"), "outcome", errors),
        agency=agency[:100] if agency else None,
        jurisdiction=_enum(Jurisdiction, params.get("jurisdiction"), "jurisdiction", errors),
        since=_day(params.get("from"), "from", errors),
        until=_day(params.get("to"), "to", errors),
        final_only=params.get("final") in ("1", "on", "true"),
        break_glass_only=params.get("break_glass") in ("1", "on", "true"),
    )
    return f, errors


def parse_page(params: Mapping[str, str]) -> int:
    """Page number (1 when absent or not a positive integer)."""
    raw = params.get("page", "1")
    return int(raw) if raw.isdigit() and int(raw) > 0 else 1


def parse_by(raw: str | None, errors: list[str]) -> TotalsBy:
    """Grouping for totals and charts."""
    if raw in (None, "", "purpose"):
        return "purpose"
    if raw in ("agency", "requester", "outcome", "jurisdiction"):
        return raw  # type: ignore[return-value]
    errors.append("by must be purpose, agency, requester, outcome or jurisdiction")
    return "purpose"


def parse_period(raw: str | None, errors: list[str], default: Period = "month") -> Period:
    """Period for totals and charts."""
    if raw in (None, ""):
        return default
    if raw in ("day", "week", "month"):
        return raw  # type: ignore[return-value]
    errors.append("period must be day, week or month")
    return default


def auto_period(first: datetime | None, last: datetime | None) -> Period:
    """A period that gives a readable number of bars for this time span."""
    if first is None or last is None:
        return "day"
    days = (last - first).days
    if days <= 45:
        return "day"
    if days <= 7 * 40:
        return "week"
    return "month"


def record_view(seq: int, record: AuditRecord) -> dict[str, Any]:
    """JSON of a record for the API (ids, names and categories only)."""
    content = {k: v for k, v in record.content().items() if k not in HIDDEN_FIELDS}
    return {"seq": seq, **content}
