"""HTML pages of the governance console (read-only). Every value shown is escaped."""

from __future__ import annotations

import json
from datetime import datetime

from starlette.requests import Request
from starlette.responses import HTMLResponse

from sharinghub.contracts import Jurisdiction, Outcome, Purpose
from sharinghub.delivery.audit_record import AuditRecord
from sharinghub.delivery.ledger import VerifyReport
from sharinghub.governance import charts, reports
from sharinghub.governance import templates as t
from sharinghub.governance.context import (
    FILTER_KEYS,
    auto_period,
    console_of,
    parse_by,
    parse_filter,
    parse_page,
    parse_period,
)
from sharinghub.governance.queries import DecisionSummary, OpenRetraction, ReviewItem

MAX_BARS = 120


def _retractions(items: list[OpenRetraction]) -> str:
    rows = [
        [
            f'<span class="mono">{t.esc(r.retraction_id)}</span>',
            f'<span class="mono">{t.esc(r.consent_id)}</span>',
            f'<span class="mono">{t.esc(r.recipient_agency_id)}</span>',
            "".join(
                f'<a class="mono" href="/decisions/{t.path_part(q)}">{t.esc(q)}</a><br>'
                for q in r.request_ids[:5]
            )
            + (
                f'<span class="muted">+{len(r.request_ids) - 5} more</span>'
                if len(r.request_ids) > 5
                else ""
            ),
            t.when(r.issued_at),
            t.when(r.published_at) if r.published_at else t.badge("not yet sent", "warn"),
            f'<span class="nowrap">open {r.age_hours:.1f} h</span>',
        ]
        for r in items
    ]
    return (
        f"<h2>Unacknowledged retractions ({len(items)})</h2>"
        '<p class="muted">Notices asking a recipient to stop using data delivered under a '
        "consent since withdrawn, not yet acknowledged by the recipient.</p>"
        + t.table(["Retraction", "Consent", "Recipient", "Requests", "Issued", "Sent", "Age"], rows)
    )


def _html(request: Request, title: str, body: str, active: str) -> HTMLResponse:
    user = getattr(request.state, "user", None)
    return HTMLResponse(t.page(title, body, user=user, active=active))


def _errors(errors: list[str]) -> str:
    return "".join(f'<p class="error" role="alert">{t.esc(e)}</p>' for e in errors)


def _agencies(r: AuditRecord) -> str:
    return (
        f'<span class="mono">{t.esc(r.requester_agency_id)}</span> '
        f'<span class="muted">({t.esc(r.requester_agency_type.value)})</span> →<br>'
        f'<span class="mono">{t.esc(r.recipient_agency_id)}</span> '
        f'<span class="muted">({t.esc(r.recipient_agency_type.value)})</span>'
    )


def _age(item: ReviewItem, now: datetime) -> str:
    due_h = (item.case.due_at - now).total_seconds() / 3600
    due = (
        t.badge(f"overdue by {-due_h:.1f} h", "bad")
        if item.overdue
        else f'<span class="muted nowrap">due in {due_h:.1f} h</span>'
    )
    return f'<span class="nowrap">open {item.age_hours:.1f} h</span><br>{due}'


# -- overview ---------------------------------------------------------------------------


def _chain_stat(report: VerifyReport | None) -> str:
    if report is None:
        return t.stat("audit chain (being checked)", "…")
    return t.stat(
        "audit chain", "intact" if report.ok else "TAMPERED", "ok" if report.ok else "bad"
    )


def overview(request: Request) -> HTMLResponse:
    """Headline numbers, the chain status, the oldest open reviews."""
    c = console_of(request)
    now = c.clock()
    counts = c.queries.counts()
    reviews = c.queries.open_reviews(now)
    overdue = sum(i.overdue for i in reviews)
    verified = c.verify.peek()
    refused = counts.get(Outcome.DENIED.value, 0) + counts.get(Outcome.REJECTED_INVALID.value, 0)
    cards = "".join(
        [
            t.stat("decisions recorded", counts["all"]),
            t.stat("disclosures (final, delivered)", counts.get(Outcome.DELIVERED.value, 0)),
            t.stat("refusals (denied, rejected)", refused),
            t.stat("open reviews", len(reviews)),
            t.stat("overdue reviews", overdue, "bad" if overdue else ""),
            _chain_stat(verified[0] if verified else None),
        ]
    )
    oldest = _review_table(reviews[:5], now)
    checked = f" (checked {t.when(verified[1])})" if verified else " (check running)"
    body = (
        '<h1>Overview</h1><p class="lead">What the hub decided, what is waiting for a person, '
        f"and whether the audit record is intact{checked}.</p>"
        f'<div class="cards">{cards}</div>'
        f'<h2>Oldest open reviews</h2>{oldest}<p><a href="/reviews">All open reviews →</a></p>'
        f"{_retractions(c.queries.open_retractions(now))}"
    )
    return _html(request, "Overview", body, "/")


# -- decisions --------------------------------------------------------------------------


def _filter_form(params: dict[str, str | None], agencies: list[str], extra: str = "") -> str:
    final = " checked" if params.get("final") else ""
    glass = " checked" if params.get("break_glass") else ""
    return (
        '<form class="filters" method="get">'
        + t.select("purpose", "Purpose", [p.value for p in Purpose], params.get("purpose"))
        + t.select("outcome", "Outcome", [o.value for o in Outcome], params.get("outcome"))
        + t.select("agency", "Agency", agencies, params.get("agency"))
        + t.select(
            "jurisdiction",
            "Jurisdiction",
            [j.value for j in Jurisdiction],
            params.get("jurisdiction"),
        )
        + t.date_input("from", "From", params.get("from"))
        + t.date_input("to", "To", params.get("to"))
        + extra
        + f'<label><span><input type="checkbox" name="final" value="1"{final}> final only</span>'
        + f'<span><input type="checkbox" name="break_glass" value="1"{glass}> break-glass</span>'
        + '</label><button class="primary" type="submit">Apply</button>'
        + '<a class="button secondary" href="?">Reset</a></form>'
    )


def decisions(request: Request) -> HTMLResponse:
    """Searchable, paginated list of decisions, newest first."""
    c = console_of(request)
    params = {k: request.query_params.get(k) for k in FILTER_KEYS}
    f, errors = parse_filter(request.query_params)
    page = parse_page(request.query_params)
    found, total = c.queries.decisions(f, page=page, page_size=c.page_size)
    rows = []
    for seq, r in found:
        flags = t.badge("break-glass", "bad") if r.break_glass else ""
        final = "" if r.final else '<br><span class="muted">interim</span>'
        rows.append(
            [
                t.when(r.recorded_at),
                f'<a class="mono" href="/decisions/{t.path_part(r.request_id)}">'
                f"{t.esc(r.request_id)}</a>"
                f'<br><span class="muted">#{seq} · decision {r.decision_seq}</span>',
                t.esc(r.purpose.value),
                _agencies(r),
                t.badge(r.outcome.value) + final + " " + flags,
                f'<code>{t.esc(r.reason_code)}</code><br><span class="muted">'
                f"{t.esc(r.jurisdiction.value)}</span>",
                t.chips(c.value for c in r.allowed_categories)
                + t.chips((c.value for c in r.withheld_categories), "withheld")
                if r.withheld_categories
                else t.chips(c.value for c in r.allowed_categories),
            ]
        )
    first = (page - 1) * c.page_size + 1 if total else 0
    last = min(page * c.page_size, total)
    pager = f'<div class="pager"><span class="muted">Showing {first}–{last} of {total}</span>'
    if page > 1:
        newer = t.query_string(params, page=str(page - 1))
        pager += f'<a class="button secondary" href="{newer}">← Newer</a>'
    if last < total:
        older = t.query_string(params, page=str(page + 1))
        pager += f'<a class="button secondary" href="{older}">Older →</a>'
    pager += "</div>"
    body = (
        '<h1>Decisions</h1><p class="lead">Every decision in the audit ledger. Categories struck '
        "through were withheld. Agency matches the requester or the recipient.</p>"
        + _errors(errors)
        + _filter_form(params, c.queries.agencies())
        + t.table(
            ["When", "Request", "Purpose", "From → to", "Outcome", "Reason", "Categories"], rows
        )
        + pager
    )
    return _html(request, "Decisions", body, "/decisions")


def decision_detail(request: Request) -> HTMLResponse:
    """Every decision on one request: basis, categories, field names, chain position."""
    c = console_of(request)
    request_id = str(request.path_params["request_id"])
    found = c.queries.request_decisions(request_id)
    parts = [f'<h1>Request <span class="mono">{t.esc(request_id)}</span></h1>']
    if not found:
        parts.append('<p class="muted">No decision recorded for this request.</p>')
    for seq, r in found:
        consents = ", ".join(f"{x.consent_id} v{x.version}" for x in r.consents_used)
        facts = ", ".join(
            f"{k}={json.dumps(v)}" for k, v in sorted(r.facts.items()) if v is not None
        )
        manifest = t.table(
            ["Field name", "Category", "Action", "Rule"],
            [
                [
                    f"<code>{t.esc(m.field_name)}</code>",
                    t.esc(m.category.value),
                    t.esc(m.action),
                    f"<code>{t.esc(m.rule)}</code>",
                ]
                for m in r.manifest
            ],
        )
        items = [
            ("Recorded", t.when(r.recorded_at)),
            ("Outcome", t.badge(r.outcome.value) + (" final" if r.final else " interim")),
            ("Stage / reason", f"{t.esc(r.stage.value)} · <code>{t.esc(r.reason_code)}</code>"),
            ("Purpose", t.esc(r.purpose.value)),
            ("From → to", _agencies(r)),
            (
                "Jurisdiction / pack",
                t.esc(f"{r.jurisdiction.value} · {r.pack_id or '–'} {r.pack_version or ''}"),
            ),
            (
                "Subject",
                f'<a class="mono" href="/accounting?subject={t.path_part(r.subject_id)}">'
                f"{t.esc(r.subject_id)}</a>",
            ),
            ("Consents relied on", t.esc(consents or "–")),
            ("Facts asserted", f'<span class="mono">{t.esc(facts or "–")}</span>'),
            ("Allowed categories", t.chips(x.value for x in r.allowed_categories)),
            ("Withheld categories", t.chips((x.value for x in r.withheld_categories), "withheld")),
            ("Delivered field names", t.chips(r.delivered_field_names)),
            ("Withheld field names", t.chips(r.withheld_field_names, "withheld")),
            ("Obligations", t.chips(o.value for o in r.obligations)),
            ("Reviewer", t.esc(r.reviewer_id or "–")),
            (
                "Break-glass",
                t.esc(f"declared by {r.break_glass_declared_by}") if r.break_glass else "no",
            ),
            ("Payload digest", f"<code>{t.esc(r.payload_digest or '–')}</code>"),
            ("Ledger row", f"#{seq}"),
        ]
        dl = "".join(f"<dt>{t.esc(k)}</dt><dd>{v}</dd>" for k, v in items)
        parts.append(
            f'<div class="card"><h2>Decision {r.decision_seq}</h2><dl class="kv">{dl}</dl>'
            + (f"<h2>Redaction manifest</h2>{manifest}" if r.manifest else "")
            + "</div>"
        )
    return _html(request, f"Request {request_id}", "".join(parts), "/decisions")


# -- charts -----------------------------------------------------------------------------


def _chart_card(
    title: str,
    summaries: list[DecisionSummary],
    outcomes: frozenset[Outcome],
    labels: list[str],
    colours: dict[str, str],
    by: reports.TotalsBy,
    period: reports.Period,
) -> str:
    report = reports.totals(summaries, by, period, outcomes=outcomes)
    series = charts.series_of(report, labels, colours)
    svg = charts.stacked_bars(labels, series, title=f"{title} per {period} by {by}")
    return (
        f'<div class="card"><h2>{t.esc(title)} <span class="muted">({report.total}) per '
        f"{t.esc(period)}, by {t.esc(by)}</span></h2>{svg}{charts.legend(series)}</div>"
    )


def _labels(
    summaries: list[DecisionSummary], period: reports.Period
) -> tuple[list[str], reports.Period]:
    """Period labels spanning the decisions, coarsened when there would be too many bars."""
    if not summaries:
        return [], period
    first = min(s.recorded_at for s in summaries)
    last = max(s.recorded_at for s in summaries)
    coarser: dict[str, reports.Period] = {"day": "week", "week": "month"}
    labels = reports.period_labels(first, last, period)
    while len(labels) > MAX_BARS and period in coarser:
        period = coarser[period]
        labels = reports.period_labels(first, last, period)
    return labels[-MAX_BARS:], period


def charts_page(request: Request) -> HTMLResponse:
    """Disclosures and refusals over time, stacked by purpose or agency."""
    c = console_of(request)
    params = {k: request.query_params.get(k) for k in (*FILTER_KEYS, "by", "period")}
    f, errors = parse_filter(request.query_params)
    by = parse_by(request.query_params.get("by"), errors)
    summaries = [s for s in c.queries.summaries(f) if s.final]
    raw_period = request.query_params.get("period")
    wanted = (
        auto_period(
            min((s.recorded_at for s in summaries), default=None),
            max((s.recorded_at for s in summaries), default=None),
        )
        if raw_period in (None, "", "auto")
        else parse_period(raw_period, errors)
    )
    labels, period = _labels(summaries, wanted)
    note = (
        f'<p class="muted">Too many {t.esc(wanted)}s for one chart: showing {t.esc(period)}s.</p>'
        if period != wanted
        else ""
    )
    extra = t.select("by", "Group by", ["agency", "requester", "jurisdiction"], params.get("by"))
    extra = extra.replace(">all<", ">purpose<")
    extra += t.select("period", "Period", ["day", "week", "month"], params.get("period")).replace(
        ">all<", ">auto<"
    )
    colours = charts.colour_map(list(reports.totals(summaries, by, period).by_key))
    delivered = frozenset({Outcome.DELIVERED})
    body = (
        '<h1>Charts</h1><p class="lead">Final decisions over time. Disclosures are deliveries; '
        "refusals are denials and rejected requests. Hover a bar for its count.</p>"
        + _errors(errors)
        + _filter_form(params, c.queries.agencies(), extra)
        + note
        + _chart_card("Disclosures", summaries, delivered, labels, colours, by, period)
        + _chart_card("Refusals", summaries, reports.REFUSAL_OUTCOMES, labels, colours, by, period)
        + _totals_table(summaries, by)
    )
    return _html(request, "Charts", body, "/charts")


def _totals_table(summaries: list[DecisionSummary], by: reports.TotalsBy) -> str:
    keys: dict[str, dict[str, int]] = {}
    for s in summaries:
        row = keys.setdefault(reports.group_key(s, by), {o.value: 0 for o in Outcome})
        row[s.outcome.value] += 1
    rows = [
        [t.esc(k)]
        + [str(v[o.value]) if v[o.value] else '<span class="muted">0</span>' for o in Outcome]
        for k, v in sorted(keys.items(), key=lambda kv: -sum(kv[1].values()))
    ]
    return "<h2>Totals</h2>" + t.table([by, *(o.value for o in Outcome)], rows)


# -- reviews ----------------------------------------------------------------------------


def _review_table(items: list[ReviewItem], now: datetime) -> str:
    rows, classes = [], []
    for i in items:
        kind = (
            t.badge("retrospective", "warn")
            if i.case.kind == "retrospective_review"
            else t.badge("pending review", "muted")
        )
        if i.break_glass:
            kind += " " + t.badge("break-glass", "bad")
        missing = t.chips(i.case.requirement.missing_facts)
        rows.append(
            [
                f'<span class="mono">{t.esc(i.case.case_id)}</span><br>'
                f'<a class="mono" href="/decisions/{t.path_part(i.case.request_id)}">'
                f"{t.esc(i.case.request_id)}</a>",
                kind + f'<br><span class="muted">{t.esc(i.status)}</span>',
                t.esc(i.case.purpose.value)
                + f'<br><span class="muted">{t.esc(i.case.jurisdiction.value)}</span>',
                f'<span class="mono">{t.esc(i.case.requester_agency_id)}</span> →<br>'
                f'<span class="mono">{t.esc(i.case.recipient_agency_id)}</span>',
                t.when(i.case.opened_at),
                _age(i, now),
                t.esc(i.case.requirement.question)
                + (f"<br>missing facts: {missing}" if i.case.requirement.missing_facts else ""),
                t.chips(x.value for x in i.case.requirement.max_categories),
            ]
        )
        classes.append("overdue" if i.overdue else "")
    headers = [
        "Case / request",
        "Kind",
        "Purpose",
        "From → to",
        "Opened",
        "Age",
        "Question",
        "At most",
    ]
    return t.table(headers, rows, classes)


def reviews_page(request: Request) -> HTMLResponse:
    """Undecided review cases, split into pending decisions and retrospective reviews."""
    c = console_of(request)
    now = c.clock()
    items = c.queries.open_reviews(now)
    pending = [i for i in items if i.case.kind == "pending_review"]
    retro = [i for i in items if i.case.kind == "retrospective_review"]
    overdue = sum(i.overdue for i in items)
    body = (
        '<h1>Reviews</h1><p class="lead">Cases waiting for a person, oldest first. '
        f"{len(items)} open, {overdue} overdue (highlighted).</p>"
        f"<h2>Break-glass and urgent disclosures awaiting retrospective review ({len(retro)})</h2>"
        + _review_table(retro, now)
        + f"<h2>Requests pending a reviewer's decision ({len(pending)})</h2>"
        + _review_table(pending, now)
        + _retractions(c.queries.open_retractions(now))
    )
    return _html(request, "Reviews", body, "/reviews")


# -- chain ------------------------------------------------------------------------------


def chain_page(request: Request) -> HTMLResponse:
    """Result of recomputing the audit ledger's hash chain (cached briefly)."""
    c = console_of(request)
    report, checked_at, took = c.verify.get()
    status = (
        t.badge("chain intact", "ok")
        if report.ok
        else t.badge("CHAIN BROKEN — possible tampering", "bad")
    )
    items = [
        ("Status", status),
        ("Rows verified", str(report.rows_checked)),
        ("Head", f"#{report.head_seq} <code>{t.esc(report.head_hash)}</code>"),
        ("Checked", f"{t.when(checked_at)} in {took * 1000:.0f} ms"),
    ]
    if not report.ok:
        items += [
            ("First bad row", f"#{report.first_bad_seq}"),
            ("Problem", t.esc(report.problem)),
        ]
    dl = "".join(f"<dt>{t.esc(k)}</dt><dd>{v}</dd>" for k, v in items)
    body = (
        '<h1>Audit chain</h1><p class="lead">Every ledger row carries the hash of the row before '
        "it; recomputing them shows whether any row was changed, removed, inserted or reordered. "
        f"The result is reused for up to {c.verify.ttl_s:.0f} s.</p>"
        f'<div class="card"><dl class="kv">{dl}</dl></div>'
        '<p class="muted">The same check from a terminal: <code>sharinghub audit verify</code>.</p>'
    )
    return _html(request, "Chain", body, "/chain")


# -- accounting -------------------------------------------------------------------------


def accounting_page(request: Request) -> HTMLResponse:
    """Accounting of disclosures for one subject (HIPAA 164.528 / UK GDPR Art. 15(1)(c))."""
    c = console_of(request)
    subject = (request.query_params.get("subject") or "").strip()[:128]
    form = (
        '<form class="filters" method="get"><label>Subject id<input name="subject" '
        f'value="{t.esc(subject)}" placeholder="subj-…" required></label>'
        '<button class="primary" type="submit">Show accounting</button></form>'
    )
    body = (
        '<h1>Accounting of disclosures</h1><p class="lead">Who received a subject\'s data, '
        "when, why, which categories and on what basis. US records follow HIPAA 164.528 "
        "(six years; not treatment, not to the client, not under an authorization); English "
        "records follow UK GDPR Art. 15(1)(c), which lists every recipient.</p>" + form
    )
    if subject:
        report = reports.accounting_of_disclosures(
            subject, c.queries.subject_records(subject), as_of=c.clock()
        )
        body += _accounting(report)
    return _html(request, "Accounting", body, "/accounting")


def _accounting(report: reports.AccountingReport) -> str:
    quoted = t.esc(report.subject_id)
    in_path = t.path_part(report.subject_id)
    regime = ", ".join(report.legal_basis) or "no disclosures recorded"
    window = (
        f" HIPAA window from {t.when(report.hipaa_window_start)}."
        if report.hipaa_window_start
        else ""
    )
    entries = t.table(
        ["Date", "Request", "Regime", "Recipient", "Purpose", "Categories", "Basis", "Consents"],
        [
            [
                t.when(e.date),
                f'<a class="mono" href="/decisions/{t.path_part(e.request_id)}">'
                f"{t.esc(e.request_id)}</a>",
                t.esc(e.regime),
                f'<span class="mono">{t.esc(e.recipient_agency_id)}</span> '
                f'<span class="muted">({t.esc(e.recipient_agency_type)})</span>',
                t.esc(e.purpose) + (" " + t.badge("break-glass", "bad") if e.break_glass else ""),
                t.chips(e.categories),
                f'<code>{t.esc(e.basis)}</code><br><span class="muted">{t.esc(e.pack)}</span>',
                t.esc(", ".join(e.consents) or "–"),
            ]
            for e in report.entries
        ],
    )
    excluded = t.table(
        ["Date", "Request", "Purpose", "Excluded as"],
        [
            [
                t.when(x.date),
                f'<span class="mono">{t.esc(x.request_id)}</span>',
                t.esc(x.purpose),
                t.esc(x.reason),
            ]
            for x in report.excluded
        ],
    )
    return (
        f'<div class="card"><h2>Subject <span class="mono">{quoted}</span></h2>'
        f"<p>Regime: {t.esc(regime)}.{window}</p>"
        f'<p><a class="button secondary" href="/api/accounting/{in_path}?format=csv">CSV</a> '
        f'<a class="button secondary" href="/api/accounting/{in_path}?format=json">JSON</a></p>'
        f"<h2>Disclosures ({len(report.entries)})</h2>{entries}"
        f"<h2>Left out of the HIPAA accounting ({len(report.excluded)})</h2>{excluded}</div>"
    )
