"""JSON (and CSV) API of the governance console, behind the same authentication as the pages."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from sharinghub.governance import reports
from sharinghub.governance.context import (
    console_of,
    parse_by,
    parse_filter,
    parse_page,
    parse_period,
    record_view,
)


def json_response(content: Any, status_code: int = 200) -> Response:
    """orjson-encoded JSON response (handles datetimes and dataclasses)."""
    return Response(
        orjson.dumps(content, option=orjson.OPT_INDENT_2),
        status_code=status_code,
        media_type="application/json",
    )


def _bad(errors: list[str]) -> Response:
    return json_response({"error": "bad request", "details": errors}, 400)


def _export(request: Request, report: Any, csv_text: str, name: str) -> Response:
    fmt = request.query_params.get("format", "json")
    if fmt == "csv":
        return Response(
            csv_text,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    if fmt != "json":
        return _bad(["format must be csv or json"])
    return json_response(reports.as_json_ready(report))


def api_decisions(request: Request) -> Response:
    """Matching decisions, newest first: ``{total, page, page_size, items}``."""
    c = console_of(request)
    f, errors = parse_filter(request.query_params)
    if errors:
        return _bad(errors)
    page = parse_page(request.query_params)
    found, total = c.queries.decisions(f, page=page, page_size=c.page_size)
    items = [record_view(seq, r) for seq, r in found]
    return json_response({"total": total, "page": page, "page_size": c.page_size, "items": items})


def api_totals(request: Request) -> Response:
    """Final decisions counted per period and group (``by``, ``period``, filters)."""
    c = console_of(request)
    f, errors = parse_filter(request.query_params)
    by = parse_by(request.query_params.get("by"), errors)
    period = parse_period(request.query_params.get("period"), errors)
    if errors:
        return _bad(errors)
    report = reports.totals(c.queries.summaries(f), by, period)
    return _export(request, report, reports.totals_csv(report), f"totals-{by}-{period}")


def api_verify(request: Request) -> Response:
    """The (briefly cached) result of verifying the audit chain."""
    c = console_of(request)
    report, checked_at, took = c.verify.get()
    return json_response(
        {**report.__dict__, "checked_at": checked_at, "took_ms": round(took * 1000, 1)}
    )


def api_reviews(request: Request) -> Response:
    """Undecided review cases with their age and whether they are overdue."""
    c = console_of(request)
    items = c.queries.open_reviews(c.clock())
    return json_response(
        [
            {
                **i.case.model_dump(mode="json"),
                "status": i.status,
                "age_hours": round(i.age_hours, 2),
                "overdue": i.overdue,
                "break_glass": i.break_glass,
            }
            for i in items
        ]
    )


def api_accounting(request: Request) -> Response:
    """Accounting of disclosures for one subject (``format=json|csv``)."""
    c = console_of(request)
    subject = str(request.path_params["subject_id"])[:128]
    report = reports.accounting_of_disclosures(
        subject, c.queries.subject_records(subject), as_of=c.clock()
    )
    return _export(request, report, reports.accounting_csv(report), "accounting")


def api_ferpa(request: Request) -> Response:
    """The FERPA disclosure log (``format=json|csv``)."""
    c = console_of(request)
    log = reports.ferpa_log(c.queries.ferpa_records())
    return _export(request, log, reports.ferpa_csv(log), "ferpa-disclosure-log")


def api_retractions(request: Request) -> Response:
    """Retraction notices not yet acknowledged by their recipient."""
    c = console_of(request)
    return json_response(reports.as_json_ready(c.queries.open_retractions(c.clock())))
