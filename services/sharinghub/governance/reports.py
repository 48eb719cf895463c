"""Governance reports built from audit records: accounting of disclosures, FERPA log, totals.

Pure functions over `AuditRecord`s (no SQL, no web): the adapters in `queries` fetch the
records, the CLI and the console render what is built here. A report names ids, purposes,
categories and rule ids — never a field value, a person's name or a stated reason, because
the audit record holds none.

Only a *final* decision with outcome ``delivered`` is a disclosure. A first ``pending_review``
decision followed by a reviewer's approval counts once (the reviewer's final decision).
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, Protocol

import orjson

from sharinghub.contracts import AgencyType, Jurisdiction, Obligation, Outcome, Purpose
from sharinghub.delivery.audit_record import AuditRecord

Period = Literal["day", "week", "month"]
TotalsBy = Literal["purpose", "agency", "requester", "outcome", "jurisdiction"]

REGIME_TEXT: dict[Jurisdiction, str] = {
    Jurisdiction.US_BASELINE: "HIPAA 45 CFR 164.528 accounting of disclosures",
    Jurisdiction.UK_ENGLAND: "UK GDPR Art. 15(1)(c) recipients of personal data",
}
HIPAA_LOOKBACK_YEARS = 6
CONSENT_BASED_PURPOSES: frozenset[Purpose] = frozenset(
    {Purpose.CONSENT_BASED_SHARING, Purpose.CARE_COORDINATION}
)
REFUSAL_OUTCOMES: frozenset[Outcome] = frozenset({Outcome.DENIED, Outcome.REJECTED_INVALID})


def is_disclosure(record: AuditRecord) -> bool:
    """True if the record is a request's final decision and data was delivered."""
    return record.final and record.outcome is Outcome.DELIVERED


def hipaa_exclusion(purpose: Purpose) -> str | None:
    """Why HIPAA 164.528(a)(1) leaves a disclosure for this purpose out of the accounting.

    Only the exclusions the domain guide (§5.4) names are applied: treatment, disclosures to
    the individual, and disclosures under an authorization (the consent-based purposes).
    """
    if purpose is Purpose.TREATMENT_CONTINUITY:
        return "treatment (164.528(a)(1)(i))"
    if purpose is Purpose.CLIENT_OWN_REQUEST:
        return "to the individual (164.528(a)(1)(ii))"
    if purpose in CONSENT_BASED_PURPOSES:
        return "under an authorization (164.528(a)(1)(iv))"
    return None


def _consent_refs(record: AuditRecord) -> tuple[str, ...]:
    return tuple(f"{c.consent_id}@v{c.version}" for c in record.consents_used)


@dataclass(frozen=True)
class DisclosureEntry:
    """One disclosure as a data subject is told about it (HIPAA 164.528(b), Art. 15(1))."""

    date: datetime
    request_id: str
    regime: str
    recipient_agency_id: str
    recipient_agency_type: str
    discloser_agency_id: str
    purpose: str
    categories: tuple[str, ...]
    basis: str
    pack: str
    consents: tuple[str, ...]
    break_glass: bool

    @classmethod
    def of(cls, record: AuditRecord) -> DisclosureEntry:
        """The entry describing one delivered, final audit record."""
        return cls(
            date=record.recorded_at,
            request_id=record.request_id,
            regime=record.jurisdiction.value,
            recipient_agency_id=record.recipient_agency_id,
            recipient_agency_type=record.recipient_agency_type.value,
            discloser_agency_id=record.requester_agency_id,
            purpose=record.purpose.value,
            categories=tuple(c.value for c in record.allowed_categories),
            basis=record.reason_code,
            pack=" ".join(p for p in (record.pack_id, record.pack_version) if p),
            consents=_consent_refs(record),
            break_glass=record.break_glass,
        )


@dataclass(frozen=True)
class ExcludedDisclosure:
    """A disclosure left out of a HIPAA accounting, and the exclusion that applies."""

    date: datetime
    request_id: str
    purpose: str
    reason: str


@dataclass(frozen=True)
class AccountingReport:
    """Accounting of disclosures for one subject, per the regime(s) its records fall under."""

    subject_id: str
    generated_at: datetime
    regimes: tuple[str, ...]
    legal_basis: tuple[str, ...]
    hipaa_window_start: datetime | None
    entries: tuple[DisclosureEntry, ...]
    excluded: tuple[ExcludedDisclosure, ...] = field(default_factory=tuple)


def _years_before(moment: datetime, years: int) -> datetime:
    try:
        return moment.replace(year=moment.year - years)
    except ValueError:  # 29 February in a non-leap target year
        return moment.replace(year=moment.year - years, day=28)


def accounting_of_disclosures(
    subject_id: str, records: Iterable[AuditRecord], *, as_of: datetime | None = None
) -> AccountingReport:
    """Who received this subject's data, when, why, which categories and on what basis.

    ``us_baseline`` records follow HIPAA 164.528: the six years before ``as_of`` and without
    treatment, to-the-client and authorized (consent-based) disclosures. ``uk_england``
    records follow UK GDPR Art. 15(1)(c), which lists every recipient, so nothing is
    excluded. Records of other subjects are ignored.
    """
    now = (as_of or datetime.now(UTC)).astimezone(UTC)
    window_start = _years_before(now, HIPAA_LOOKBACK_YEARS)
    entries: list[DisclosureEntry] = []
    excluded: list[ExcludedDisclosure] = []
    regimes: set[Jurisdiction] = set()
    for record in records:
        if record.subject_id != subject_id or not is_disclosure(record):
            continue
        regimes.add(record.jurisdiction)
        if record.jurisdiction is Jurisdiction.US_BASELINE:
            reason = hipaa_exclusion(record.purpose)
            if reason is None and record.recorded_at < window_start:
                reason = "older than six years (164.528(a))"
            if reason is not None:
                excluded.append(
                    ExcludedDisclosure(
                        record.recorded_at, record.request_id, record.purpose.value, reason
                    )
                )
                continue
        entries.append(DisclosureEntry.of(record))
    ordered = sorted(regimes, key=lambda j: j.value)
    return AccountingReport(
        subject_id=subject_id,
        generated_at=now,
        regimes=tuple(j.value for j in ordered),
        legal_basis=tuple(REGIME_TEXT[j] for j in ordered),
        hipaa_window_start=window_start if Jurisdiction.US_BASELINE in regimes else None,
        entries=tuple(sorted(entries, key=lambda e: e.date)),
        excluded=tuple(sorted(excluded, key=lambda e: e.date)),
    )


@dataclass(frozen=True)
class FerpaLogEntry:
    """One disclosure from a school's education records (34 CFR 99.32 record of disclosure)."""

    date: datetime
    request_id: str
    student_subject_id: str
    school_agency_id: str
    recipient_agency_id: str
    recipient_agency_type: str
    legitimate_interest: str
    categories: tuple[str, ...]
    basis: str
    redisclosure_notice: bool
    recording_required: bool
    exemption: str | None


def ferpa_exemption(purpose: Purpose, recipient_type: AgencyType) -> str | None:
    """The 99.32(d) exemption from recording, if one applies (the entry is still listed)."""
    if purpose is Purpose.CLIENT_OWN_REQUEST or recipient_type is AgencyType.DATA_SUBJECT:
        return "to the parent or eligible student (99.32(d)(1))"
    if purpose in CONSENT_BASED_PURPOSES:
        return "with written consent (99.32(d)(3))"
    return None


def ferpa_log(records: Iterable[AuditRecord]) -> list[FerpaLogEntry]:
    """Deliveries disclosed by a ``school`` under ``us_baseline``, oldest first."""
    log: list[FerpaLogEntry] = []
    for r in records:
        if not is_disclosure(r) or r.jurisdiction is not Jurisdiction.US_BASELINE:
            continue
        if r.requester_agency_type is not AgencyType.SCHOOL:
            continue
        exemption = ferpa_exemption(r.purpose, r.recipient_agency_type)
        log.append(
            FerpaLogEntry(
                date=r.recorded_at,
                request_id=r.request_id,
                student_subject_id=r.subject_id,
                school_agency_id=r.requester_agency_id,
                recipient_agency_id=r.recipient_agency_id,
                recipient_agency_type=r.recipient_agency_type.value,
                legitimate_interest=r.purpose.value,
                categories=tuple(c.value for c in r.allowed_categories),
                basis=r.reason_code,
                redisclosure_notice=Obligation.REDISCLOSURE_NOTICE_FERPA in r.obligations,
                recording_required=exemption is None,
                exemption=exemption,
            )
        )
    return sorted(log, key=lambda e: e.date)


# -- totals -----------------------------------------------------------------------------


class DecisionLike(Protocol):
    """What totals need of a decision (an `AuditRecord` or a lighter summary row)."""

    @property
    def recorded_at(self) -> datetime: ...
    @property
    def outcome(self) -> Outcome: ...
    @property
    def purpose(self) -> Purpose: ...
    @property
    def recipient_agency_id(self) -> str: ...
    @property
    def requester_agency_id(self) -> str: ...
    @property
    def jurisdiction(self) -> Jurisdiction: ...
    @property
    def final(self) -> bool: ...


def period_key(moment: datetime, period: Period) -> str:
    """Label of the UTC day (``2025-03-04``), ISO week (``2025-W10``) or month (``2025-03``)."""
    day = moment.astimezone(UTC).date()
    if period == "day":
        return day.isoformat()
    if period == "week":
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{day.year}-{day.month:02d}"


def _period_start(day: date, period: Period) -> date:
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    return day


def _next_period(day: date, period: Period) -> date:
    if period == "day":
        return day + timedelta(days=1)
    if period == "week":
        return day + timedelta(days=7)
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def period_labels(first: datetime, last: datetime, period: Period) -> list[str]:
    """Every period label from ``first`` to ``last`` inclusive, gaps included (for charts)."""
    day = _period_start(first.astimezone(UTC).date(), period)
    end = last.astimezone(UTC).date()
    labels: list[str] = []
    while day <= end:
        labels.append(period_key(datetime(day.year, day.month, day.day, tzinfo=UTC), period))
        day = _next_period(day, period)
    return labels


def group_key(decision: DecisionLike, by: TotalsBy) -> str:
    """The value a decision is grouped under; ``agency`` means the recipient agency."""
    if by == "purpose":
        return decision.purpose.value
    if by == "agency":
        return decision.recipient_agency_id
    if by == "requester":
        return decision.requester_agency_id
    if by == "jurisdiction":
        return decision.jurisdiction.value
    return decision.outcome.value


@dataclass(frozen=True)
class TotalsRow:
    """Count of final decisions in one period for one group."""

    period: str
    key: str
    count: int


@dataclass(frozen=True)
class TotalsReport:
    """Final decisions counted by group and period."""

    by: str
    period: str
    rows: tuple[TotalsRow, ...]
    by_key: dict[str, int]
    total: int


def totals(
    decisions: Iterable[DecisionLike],
    by: TotalsBy = "purpose",
    period: Period = "month",
    *,
    outcomes: frozenset[Outcome] | None = None,
) -> TotalsReport:
    """Count final decisions (optionally only some outcomes) per period and group."""
    counts: Counter[tuple[str, str]] = Counter()
    for d in decisions:
        if not d.final or (outcomes is not None and d.outcome not in outcomes):
            continue
        counts[(period_key(d.recorded_at, period), group_key(d, by))] += 1
    rows = tuple(TotalsRow(p, k, n) for (p, k), n in sorted(counts.items()))
    by_key: Counter[str] = Counter()
    for row in rows:
        by_key[row.key] += row.count
    return TotalsReport(
        by=by,
        period=period,
        rows=rows,
        by_key=dict(by_key.most_common()),
        total=sum(by_key.values()),
    )


# -- export -----------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def as_json_ready(report: Any) -> Any:
    """A dataclass report (or a list of them) as plain JSON types."""
    if isinstance(report, list):
        return [as_json_ready(r) for r in report]
    return _plain(asdict(report))


def to_json(report: Any) -> str:
    """Indented JSON text of a report."""
    return orjson.dumps(as_json_ready(report), option=orjson.OPT_INDENT_2).decode()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, tuple | list):
        return ";".join(str(v) for v in value)
    return str(value)


def _safe_csv_cell(text: str) -> str:
    # A cell starting with = + - @ is run as a formula by spreadsheet programs (CSV injection).
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def rows_to_csv(rows: Sequence[Any]) -> str:
    """CSV (header + one line per dataclass row); lists are joined with ``;``."""
    buf = io.StringIO()
    if not rows:
        return ""
    names = list(asdict(rows[0]))
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(names)
    for row in rows:
        values = asdict(row)
        writer.writerow([_safe_csv_cell(_cell(values[n])) for n in names])
    return buf.getvalue()


def accounting_csv(report: AccountingReport) -> str:
    """The accounting's disclosures as CSV (regime per line; exclusions are in the JSON)."""
    return rows_to_csv(report.entries) or ",".join(DisclosureEntry.__dataclass_fields__) + "\n"


def ferpa_csv(log: Sequence[FerpaLogEntry]) -> str:
    """The FERPA disclosure log as CSV."""
    return rows_to_csv(log) or ",".join(FerpaLogEntry.__dataclass_fields__) + "\n"


def totals_csv(report: TotalsReport) -> str:
    """Totals as CSV: ``period,key,count``."""
    return rows_to_csv(report.rows) or "period,key,count\n"
