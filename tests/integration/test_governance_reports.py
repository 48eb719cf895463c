"""Governance reports on a real ledger, on SQLite and on PostgreSQL (`database_url`).

The ledger is filled with fictional `AuditRecord`s built here: one per example scenario
(outcomes as the examples expect) plus hand-made records whose accounting, FERPA and totals
results are known in advance.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from sharinghub.contracts import (
    AgencyType,
    ConsentRef,
    DataCategory,
    Jurisdiction,
    Obligation,
    Outcome,
    Purpose,
    Stage,
)
from sharinghub.delivery.audit_record import AuditRecord, subject_ref_hash
from sharinghub.delivery.ledger import AuditLedger
from sharinghub.governance import reports
from sharinghub.governance.cli import register
from sharinghub.governance.queries import DecisionFilter, GovernanceQueries
from sharinghub.runtime.db import create_engine_for
from sharinghub.runtime.schema import upgrade

KEY = b"governance-test-key"
T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)  # a Monday
AS_OF = datetime(2025, 6, 1, tzinfo=UTC)
US_SUBJECT = "subj-us-acct-0001"
UK_SUBJECT = "subj-uk-acct-0002"
STUDENT = "subj-us-stud-0003"


def record(
    request_id: str,
    *,
    at: datetime,
    purpose: Purpose,
    outcome: Outcome = Outcome.DELIVERED,
    jurisdiction: Jurisdiction = Jurisdiction.US_BASELINE,
    subject: str = US_SUBJECT,
    requester: tuple[str, AgencyType] = ("ag-harlow-clinic", AgencyType.MENTAL_HEALTH),
    recipient: tuple[str, AgencyType] = ("ag-harlow-police", AgencyType.POLICE),
    categories: tuple[DataCategory, ...] = (DataCategory.IDENTITY, DataCategory.RISK_ASSESSMENT),
    field_names: tuple[str, ...] = ("full_name", "threat_assessment"),
    final: bool = True,
    decision_seq: int = 1,
    obligations: tuple[Obligation, ...] = (),
    consents: tuple[ConsentRef, ...] = (),
    break_glass: bool = False,
) -> AuditRecord:
    """One fictional audit record; only delivered records carry categories and field names."""
    delivered = outcome is Outcome.DELIVERED
    return AuditRecord(
        request_id=request_id,
        decision_seq=decision_seq,
        recorded_at=at,
        stage=Stage.DELIVERY if delivered else Stage.POLICY,
        outcome=outcome,
        final=final,
        reason_code=f"P.{purpose.value}.{'ok' if delivered else outcome.value}",
        requester_agency_id=requester[0],
        requester_agency_type=requester[1],
        recipient_agency_id=recipient[0],
        recipient_agency_type=recipient[1],
        purpose=purpose,
        jurisdiction=jurisdiction,
        subject_id=subject,
        subject_ref_hash=subject_ref_hash(subject, KEY),
        pack_id=jurisdiction.value,
        pack_version="1.0.0+abc123",
        consents_used=list(consents),
        facts={"emergency": break_glass, "subject_is_minor": False},
        allowed_categories=list(categories) if delivered else [],
        withheld_categories=[] if delivered else list(categories),
        delivered_field_names=list(field_names) if delivered else [],
        withheld_field_names=[] if delivered else list(field_names),
        obligations=list(obligations),
        break_glass=break_glass,
        break_glass_declared_by="prac-0042" if break_glass else None,
        payload_digest=("ab" * 32) if delivered else None,
    )


def example_records(examples: list[dict[str, Any]]) -> list[AuditRecord]:
    """One final record per example scenario, with the example's expected outcome."""
    out = []
    for i, ex in enumerate(examples):
        expected = ex["expected"]
        outcome = Outcome(expected["outcome"])
        allowed = [DataCategory(c) for c in expected.get("allowed_categories", [])]
        fields = ex["record"]["fields"]
        delivered = [f["name"] for f in fields if f["category"] in {c.value for c in allowed}]
        withheld = [f["name"] for f in fields if f["name"] not in delivered]
        base = record(
            f"{ex['id']}-audit",
            at=T0 + timedelta(days=i % 10, hours=i),
            purpose=Purpose(ex["purpose"]),
            outcome=outcome,
            jurisdiction=Jurisdiction(ex["jurisdiction"]),
            subject=ex["record"]["subject_id"],
            requester=(ex["requester"]["agency_id"], AgencyType(ex["requester"]["agency_type"])),
            recipient=(ex["recipient"]["agency_id"], AgencyType(ex["recipient"]["agency_type"])),
            categories=tuple(allowed),
            obligations=tuple(Obligation(o) for o in expected.get("obligations", [])),
        )
        out.append(
            base.model_copy(
                update={
                    "delivered_field_names": delivered if outcome is Outcome.DELIVERED else [],
                    "withheld_field_names": withheld,
                    "final": outcome is not Outcome.PENDING_REVIEW,
                }
            )
        )
    return out


def accounting_records() -> list[AuditRecord]:
    """Records of the US and UK accounting subjects (see the tests for what each proves)."""
    uk = Jurisdiction.UK_ENGLAND
    cd = (ConsentRef(consent_id="cd-acct-1", version=2),)
    client = ("ag-subject", AgencyType.DATA_SUBJECT)
    ward = ("ag-harlow-general", AgencyType.HEALTH)
    court = ("ag-harlow-court", AgencyType.COURT)
    housing = ("ag-harlow-homes", AgencyType.HOUSING)
    return [
        record("us-treat", at=T0, purpose=Purpose.TREATMENT_CONTINUITY, recipient=ward),
        record("us-own", at=T0 + timedelta(hours=1), purpose=Purpose.CLIENT_OWN_REQUEST,
               recipient=client),
        record("us-consent", at=T0 + timedelta(hours=2), purpose=Purpose.CONSENT_BASED_SHARING,
               recipient=housing, consents=cd),
        record("us-warn", at=T0 + timedelta(days=1), purpose=Purpose.DUTY_TO_WARN,
               obligations=(Obligation.RETROSPECTIVE_REVIEW,), break_glass=True),
        # A court order first waits for a reviewer (interim), then is delivered: one entry.
        record("us-court", at=T0 + timedelta(days=2), purpose=Purpose.COURT_ORDER,
               outcome=Outcome.PENDING_REVIEW, final=False, recipient=court),
        record("us-court", at=T0 + timedelta(days=2, hours=3), purpose=Purpose.COURT_ORDER,
               recipient=court, decision_seq=2),
        record("us-subpoena", at=T0 + timedelta(days=3), purpose=Purpose.SUBPOENA,
               outcome=Outcome.DENIED, recipient=court),
        record("us-old", at=datetime(2018, 5, 1, tzinfo=UTC), purpose=Purpose.DUTY_TO_WARN),
        record("uk-consent", at=T0, purpose=Purpose.CONSENT_BASED_SHARING, jurisdiction=uk,
               subject=UK_SUBJECT, recipient=housing, consents=cd),
        record("uk-own", at=T0 + timedelta(hours=1), purpose=Purpose.CLIENT_OWN_REQUEST,
               jurisdiction=uk, subject=UK_SUBJECT, recipient=client),
        record("uk-treat", at=T0 + timedelta(hours=2), purpose=Purpose.TREATMENT_CONTINUITY,
               jurisdiction=uk, subject=UK_SUBJECT, recipient=ward),
        record("uk-denied", at=T0 + timedelta(hours=3), purpose=Purpose.LAW_ENFORCEMENT_REQUEST,
               outcome=Outcome.DENIED, jurisdiction=uk, subject=UK_SUBJECT),
    ]  # fmt: skip


def ferpa_records() -> list[AuditRecord]:
    """School disclosures: two belong in the FERPA log, three do not."""
    school = ("ag-harlow-high", AgencyType.SCHOOL)
    cps = ("ag-harlow-cps", AgencyType.CHILD_PROTECTIVE_SERVICES)
    edu = (DataCategory.IDENTITY, DataCategory.EDUCATION)
    notice = (Obligation.REDISCLOSURE_NOTICE_FERPA,)
    return [
        record("sch-safeguard", at=T0 + timedelta(days=4), purpose=Purpose.CHILD_SAFEGUARDING,
               subject=STUDENT, requester=school, recipient=cps, categories=edu,
               obligations=notice),
        record("sch-consent", at=T0 + timedelta(days=5), purpose=Purpose.CONSENT_BASED_SHARING,
               subject=STUDENT, requester=school, recipient=cps, categories=edu),
        record("sch-denied", at=T0 + timedelta(days=5), purpose=Purpose.LAW_ENFORCEMENT_REQUEST,
               outcome=Outcome.DENIED, subject=STUDENT, requester=school),
        record("sch-uk", at=T0 + timedelta(days=6), purpose=Purpose.CHILD_SAFEGUARDING,
               jurisdiction=Jurisdiction.UK_ENGLAND, subject=STUDENT, requester=school,
               recipient=cps),
    ]  # fmt: skip


def seed_records(examples: list[dict[str, Any]]) -> list[AuditRecord]:
    """Everything the governance tests put in the ledger."""
    return [*example_records(examples), *accounting_records(), *ferpa_records()]


@pytest.fixture
def engine(database_url: str, examples: list[dict[str, Any]]) -> Iterator[Engine]:
    upgrade(database_url)
    eng = create_engine_for(database_url)
    AuditLedger(eng).append(seed_records(examples))
    try:
        yield eng
    finally:
        eng.dispose()


@pytest.fixture
def queries(engine: Engine) -> GovernanceQueries:
    return GovernanceQueries(engine)


# -- accounting -----------------------------------------------------------------------------


def test_us_accounting_applies_hipaa_exclusions_and_counts_final_deliveries_once(
    queries: GovernanceQueries,
) -> None:
    report = reports.accounting_of_disclosures(
        US_SUBJECT, queries.subject_records(US_SUBJECT), as_of=AS_OF
    )
    assert report.regimes == ("us_baseline",)
    assert "164.528" in report.legal_basis[0]
    assert [e.request_id for e in report.entries] == ["us-warn", "us-court"]
    warn, court = report.entries
    assert warn.recipient_agency_id == "ag-harlow-police"
    assert warn.purpose == "duty_to_warn"
    assert warn.categories == ("identity", "risk_assessment")
    assert warn.basis == "P.duty_to_warn.ok"
    assert warn.pack == "us_baseline 1.0.0+abc123"
    assert warn.break_glass is True
    assert court.date == T0 + timedelta(days=2, hours=3)  # the reviewer's final decision
    excluded = {x.request_id: x.reason for x in report.excluded}
    assert set(excluded) == {"us-treat", "us-own", "us-consent", "us-old"}
    assert excluded["us-treat"].startswith("treatment")
    assert excluded["us-own"].startswith("to the individual")
    assert excluded["us-consent"].startswith("under an authorization")
    assert excluded["us-old"].startswith("older than six years")
    assert report.hipaa_window_start == datetime(2019, 6, 1, tzinfo=UTC)


def test_uk_accounting_lists_every_recipient(queries: GovernanceQueries) -> None:
    report = reports.accounting_of_disclosures(
        UK_SUBJECT, queries.subject_records(UK_SUBJECT), as_of=AS_OF
    )
    assert report.regimes == ("uk_england",)
    assert "Art. 15(1)(c)" in report.legal_basis[0]
    assert [e.request_id for e in report.entries] == ["uk-consent", "uk-own", "uk-treat"]
    assert report.excluded == ()
    assert report.hipaa_window_start is None
    assert report.entries[0].consents == ("cd-acct-1@v2",)


def test_accounting_of_an_unknown_subject_is_empty(queries: GovernanceQueries) -> None:
    report = reports.accounting_of_disclosures(
        "subj-nobody", queries.subject_records("subj-nobody")
    )
    assert report.entries == () and report.excluded == () and report.regimes == ()


def test_accounting_exports_as_csv_and_json(queries: GovernanceQueries) -> None:
    report = reports.accounting_of_disclosures(
        US_SUBJECT, queries.subject_records(US_SUBJECT), as_of=AS_OF
    )
    rows = list(csv.DictReader(io.StringIO(reports.accounting_csv(report))))
    assert [r["request_id"] for r in rows] == ["us-warn", "us-court"]
    assert rows[0]["categories"] == "identity;risk_assessment"
    assert rows[0]["date"] == (T0 + timedelta(days=1)).isoformat()
    data = json.loads(reports.to_json(report))
    assert data["subject_id"] == US_SUBJECT
    assert [e["request_id"] for e in data["entries"]] == ["us-warn", "us-court"]
    assert len(data["excluded"]) == 4


# -- FERPA ----------------------------------------------------------------------------------


def test_ferpa_log_holds_us_school_deliveries_only(queries: GovernanceQueries) -> None:
    log = reports.ferpa_log(queries.ferpa_records())
    assert [e.request_id for e in log] == ["sch-safeguard", "sch-consent"]
    safeguard, consent = log
    assert safeguard.school_agency_id == "ag-harlow-high"
    assert safeguard.legitimate_interest == "child_safeguarding"
    assert safeguard.redisclosure_notice is True
    assert safeguard.recording_required is True and safeguard.exemption is None
    assert consent.recording_required is False
    assert consent.exemption is not None and "99.32(d)(3)" in consent.exemption
    rows = list(csv.DictReader(io.StringIO(reports.ferpa_csv(log))))
    assert [r["request_id"] for r in rows] == ["sch-safeguard", "sch-consent"]
    assert rows[0]["redisclosure_notice"] == "yes"


# -- totals ---------------------------------------------------------------------------------


def _final_summaries(queries: GovernanceQueries) -> list[Any]:
    return list(queries.summaries(DecisionFilter(final_only=True)))


def test_totals_by_outcome_count_final_decisions_only(
    queries: GovernanceQueries, examples: list[dict[str, Any]]
) -> None:
    seeded = seed_records(examples)
    report = reports.totals(queries.summaries(DecisionFilter()), "outcome", "month")
    expected: dict[str, int] = {}
    for r in seeded:
        if r.final:
            month = f"{r.recorded_at.year}-{r.recorded_at.month:02d}"
            expected[f"{month}|{r.outcome.value}"] = (
                expected.get(f"{month}|{r.outcome.value}", 0) + 1
            )
    assert {f"{row.period}|{row.key}": row.count for row in report.rows} == expected
    assert report.total == sum(r.final for r in seeded)
    # The interim pending_review of us-court is not counted; ex-12's final one is absent too.
    assert report.by_key.get("pending_review", 0) == 0


def test_totals_by_purpose_per_day_and_week(queries: GovernanceQueries) -> None:
    summaries = [s for s in _final_summaries(queries) if s.recorded_at >= T0]
    by_day = reports.totals(summaries, "purpose", "day")
    day_rows = {(r.period, r.key): r.count for r in by_day.rows}
    assert day_rows[("2025-03-06", "subpoena")] >= 1  # us-subpoena, T0 + 3 days
    weeks = reports.totals(summaries, "purpose", "week")
    assert {r.period for r in weeks.rows} <= {"2025-W10", "2025-W11", "2025-W12"}
    assert weeks.total == by_day.total == len(summaries)


def test_totals_by_agency_use_the_recipient(queries: GovernanceQueries) -> None:
    report = reports.totals(_final_summaries(queries), "agency", "month")
    assert report.by_key["ag-harlow-cps"] == 3  # sch-safeguard, sch-consent, sch-uk
    assert "ag-harlow-high" not in report.by_key  # the school only ever discloses
    csv_rows = list(csv.DictReader(io.StringIO(reports.totals_csv(report))))
    assert sum(int(r["count"]) for r in csv_rows) == report.total


def test_totals_with_only_refusals(queries: GovernanceQueries) -> None:
    report = reports.totals(
        _final_summaries(queries), "purpose", "month", outcomes=reports.REFUSAL_OUTCOMES
    )
    assert report.by_key["subpoena"] == 2  # us-subpoena and ex-05
    assert report.by_key["invalid_client_dissatisfied"] == 1  # ex-07


# -- decisions search -----------------------------------------------------------------------


def test_decision_search_filters_and_pages(queries: GovernanceQueries) -> None:
    f = DecisionFilter(purpose=Purpose.COURT_ORDER)
    found, total = queries.decisions(f)
    assert total == 3  # ex-06 + us-court twice
    assert {r.purpose for _, r in found} == {Purpose.COURT_ORDER}
    found, total = queries.decisions(DecisionFilter(agency="ag-harlow-high"))
    assert total == 4
    page1, total = queries.decisions(DecisionFilter(), page=1, page_size=5)
    page2, _ = queries.decisions(DecisionFilter(), page=2, page_size=5)
    assert len(page1) == len(page2) == 5
    assert page1[-1][0] > page2[0][0]  # newest first, no overlap
    day = (T0 + timedelta(days=3)).date()
    found, _ = queries.decisions(DecisionFilter(since=day, until=day, final_only=True))
    assert "us-subpoena" in {r.request_id for _, r in found}
    assert all(r.recorded_at.date() == day for _, r in found)


# -- CLI ------------------------------------------------------------------------------------


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_cli_reports(
    engine: Engine,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert _cli(["report", "accounting", UK_SUBJECT, "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [e["request_id"] for e in data["entries"]] == ["uk-consent", "uk-own", "uk-treat"]
    assert _cli(["report", "ferpa", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["request_id"] for r in rows] == ["sch-safeguard", "sch-consent"]
    assert _cli(["report", "totals", "--by", "outcome", "--period", "week", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {r["key"] for r in rows} >= {"delivered", "denied", "rejected_invalid"}
    assert all(r["period"].startswith(("2025-W", "2018-W")) for r in rows)
