"""The governance console over a seeded ledger and review store (SQLite and PostgreSQL).

Review cases are opened with envelopes built from the example scenarios, so the database
holds real (fictional) field values; no page or API response may show any of them.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, text
from starlette.testclient import TestClient

from sharinghub.consent.retractions import RetractionRow
from sharinghub.contracts import (
    DataCategory,
    Envelope,
    ReviewCase,
    ReviewDecision,
    ReviewRequirement,
)
from sharinghub.delivery.ledger import AuditLedger
from sharinghub.governance.app import create_console_app
from sharinghub.governance.auth import COOKIE_NAME, TokenConfigError, parse_tokens
from sharinghub.policy.reviews import ReviewStore
from sharinghub.runtime.db import create_engine_for, session_factory
from sharinghub.runtime.schema import upgrade
from tests.integration.test_governance_reports import seed_records
from tests.support.examples import request_of

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
TOKENS = {"board": "board-token-4f9a1c", "auditor": "auditor-token-77e2"}
BEARER = {"Authorization": f"Bearer {TOKENS['board']}"}


def _example(examples: list[dict[str, Any]], prefix: str) -> dict[str, Any]:
    return next(e for e in examples if e["id"].startswith(prefix))


def seed_reviews(engine: Engine, examples: list[dict[str, Any]], now: datetime) -> None:
    """A pending case (3.2 h old), an overdue retrospective one, and a decided one."""
    store = ReviewStore(engine)
    cases = []
    for prefix, kind, case_id, request_id, opened, due in [
        ("ex-12", "pending_review", "pr-ex12", "ex-12-duty-to-warn-no-named-victim-audit",
         now - timedelta(hours=3.2), now + timedelta(hours=20)),
        ("ex-03", "retrospective_review", "rr-us-warn", "us-warn",
         now - timedelta(hours=30), now - timedelta(hours=6)),
        ("ex-10", "retrospective_review", "rr-done", "ex-10-part2-medical-emergency-audit",
         now - timedelta(hours=50), now - timedelta(hours=26)),
    ]:  # fmt: skip
        request = request_of(_example(examples, prefix))
        envelope = Envelope(request=request, received_at=opened)
        case = ReviewCase(
            case_id=case_id,
            request_id=request_id,
            kind=kind,  # type: ignore[arg-type]
            requester_agency_id=request.requester.agency_id,
            recipient_agency_id=request.recipient.agency_id,
            purpose=request.purpose,
            jurisdiction=request.jurisdiction,
            requirement=ReviewRequirement(
                question="Is the threat serious and the victim identifiable?",
                missing_facts=["identifiable_victim"] if kind == "pending_review" else [],
                max_categories=[DataCategory.IDENTITY, DataCategory.RISK_ASSESSMENT],
            ),
            opened_at=opened,
            due_at=due,
        )
        cases.append((case, envelope, {}))
    store.open_cases(cases)
    store.record_decision(
        ReviewDecision(
            case_id="rr-done",
            request_id="ex-10-part2-medical-emergency-audit",
            decision="approve",
            categories=[DataCategory.IDENTITY],
            reviewer_id="rev-0007",
            reason="Emergency confirmed.",
            decided_at=now - timedelta(hours=27),
        ),
        "decided",
    )


def seed_retractions(engine: Engine, now: datetime) -> None:
    """One retraction waiting for its recipient's acknowledgement, one acknowledged."""
    common = {"consent_id": "cd-acct-1", "recipient_agency_id": "ag-harlow-homes"}
    with session_factory(engine)() as session, session.begin():
        session.add(
            RetractionRow(
                retraction_id="rtr-cd-acct-1-v3-ag-harlow-homes",
                request_ids="uk-consent,us-consent",
                issued_at=now - timedelta(hours=5),
                published_at=now - timedelta(hours=5),
                **common,
            )
        )
        session.add(
            RetractionRow(
                retraction_id="rtr-acked",
                request_ids="us-consent",
                issued_at=now - timedelta(hours=50),
                published_at=now - timedelta(hours=50),
                acknowledged_at=now - timedelta(hours=40),
                acknowledged_by="dpo-0001",
                **common,
            )
        )


@pytest.fixture
def engine(database_url: str, examples: list[dict[str, Any]]) -> Iterator[Engine]:
    upgrade(database_url)
    eng = create_engine_for(database_url)
    AuditLedger(eng).append(seed_records(examples))
    seed_reviews(eng, examples, NOW)
    seed_retractions(eng, NOW)
    try:
        yield eng
    finally:
        eng.dispose()


def make_client(engine: Engine, **kwargs: Any) -> TestClient:
    app = create_console_app(engine, TOKENS, clock=lambda: NOW, **kwargs)
    return TestClient(app, follow_redirects=False)


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    with make_client(engine, page_size=10) as c:
        yield c


def _rows(html: str) -> list[str]:
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return re.findall(r"<tr[^>]*>.*?</tr>", body, re.S)


# -- authentication -------------------------------------------------------------------------


def test_api_refuses_requests_without_a_valid_token(client: TestClient) -> None:
    for path in (
        "/api/decisions",
        "/api/totals",
        "/api/verify",
        "/api/reviews",
        "/api/retractions",
    ):
        r = client.get(path)
        assert r.status_code == 401, path
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert "items" not in r.text
    assert (
        client.get("/api/decisions", headers={"Authorization": "Bearer wrong"}).status_code == 401
    )
    assert client.get("/api/decisions", headers={"Authorization": "Bearer "}).status_code == 401
    other = {"Authorization": f"Bearer {TOKENS['board']}x"}
    assert client.get("/api/decisions", headers=other).status_code == 401


def test_pages_redirect_strangers_to_login(client: TestClient) -> None:
    r = client.get("/decisions?purpose=court_order")
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=/decisions%3Fpurpose%3Dcourt_order"
    login = client.get("/login")
    assert login.status_code == 200 and 'type="password"' in login.text


def test_bearer_and_basic_credentials_are_accepted(client: TestClient) -> None:
    assert client.get("/api/decisions", headers=BEARER).status_code == 200
    basic = base64.b64encode(f"auditor:{TOKENS['auditor']}".encode()).decode()
    assert client.get("/api/verify", headers={"Authorization": f"Basic {basic}"}).status_code == 200
    crossed = base64.b64encode(f"auditor:{TOKENS['board']}".encode()).decode()
    r = client.get("/api/verify", headers={"Authorization": f"Basic {crossed}"})
    assert r.status_code == 401  # a token is only valid with its own name


def test_browser_login_sets_an_httponly_cookie(client: TestClient) -> None:
    bad = client.post("/login", data={"name": "board", "token": "guess", "next": "/reviews"})
    assert bad.status_code == 401 and "not recognised" in bad.text
    assert COOKIE_NAME not in bad.cookies
    ok = client.post("/login", data={"name": "board", "token": TOKENS["board"], "next": "/reviews"})
    assert ok.status_code == 303 and ok.headers["location"] == "/reviews"
    cookie = ok.headers["set-cookie"]
    assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower()
    assert TOKENS["board"] not in cookie
    page = client.get("/reviews")
    assert page.status_code == 200 and "signed in as board" in page.text
    forged = client.cookies[COOKIE_NAME].replace("board", "auditor")
    client.cookies.clear()
    client.cookies.set(COOKIE_NAME, forged)
    assert client.get("/reviews").status_code == 303  # a forged cookie is refused
    out = client.post("/logout")
    assert out.status_code == 303


def test_login_never_redirects_off_site(client: TestClient) -> None:
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        r = client.post("/login", data={"name": "board", "token": TOKENS["board"], "next": target})
        assert r.headers["location"] == "/"


def test_token_configuration_is_parsed_strictly() -> None:
    assert parse_tokens("board:abc, auditor:d:e ,") == {"board": "abc", "auditor": "d:e"}
    for bad in ("board", "board:", "bo ard:secret-1", "a:secret-1,a:secret-2"):
        with pytest.raises(TokenConfigError) as info:
            parse_tokens(bad)
        assert "secret" not in str(info.value)  # a token never appears in an error


def test_security_headers(client: TestClient) -> None:
    r = client.get("/", headers=BEARER)
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["cache-control"] == "no-store"


# -- pages ----------------------------------------------------------------------------------


def test_every_page_renders(client: TestClient) -> None:
    expectations = {
        "/": "Oldest open reviews",
        "/decisions": "sch-uk",
        "/decisions/us-court": "Decision 2",
        "/charts": 'class="bar"',
        "/reviews": "rr-us-warn",
        "/chain": "chain intact",
        "/accounting?subject=subj-us-acct-0001": "us-warn",
    }
    for path, marker in expectations.items():
        r = client.get(path, headers=BEARER)
        assert r.status_code == 200, path
        assert marker in r.text, path
        assert "<!doctype html>" in r.text


def test_decisions_filter_by_purpose_outcome_agency_and_period(client: TestClient) -> None:
    html = client.get("/decisions?purpose=court_order", headers=BEARER).text
    rows = _rows(html)
    assert len(rows) == 3 and all("court_order" in r for r in rows)
    rows = _rows(client.get("/decisions?outcome=denied", headers=BEARER).text)
    assert rows and all('badge denied"' in r for r in rows)
    assert not any('badge delivered"' in r for r in rows)
    rows = _rows(client.get("/decisions?agency=ag-harlow-high", headers=BEARER).text)
    assert len(rows) == 4 and all("ag-harlow-high" in r for r in rows)
    rows = _rows(client.get("/decisions?from=2025-03-06&to=2025-03-06", headers=BEARER).text)
    assert rows and all("2025-03-06" in r for r in rows)
    html = client.get("/decisions?purpose=nonsense", headers=BEARER).text
    assert "unknown purpose" in html


def test_decisions_are_paginated(client: TestClient) -> None:
    first = client.get("/decisions", headers=BEARER).text
    assert len(_rows(first)) == 10 and "Older →" in first
    second = client.get("/decisions?page=2", headers=BEARER).text
    assert "← Newer" in second
    assert set(_rows(first)).isdisjoint(_rows(second))


def test_api_decisions_filters_and_rejects_bad_values(client: TestClient) -> None:
    data = client.get("/api/decisions?outcome=denied&final=1", headers=BEARER).json()
    assert data["total"] >= 3 and all(i["outcome"] == "denied" for i in data["items"])
    assert all("pseudonym" not in i for i in data["items"])
    assert client.get("/api/decisions?outcome=maybe", headers=BEARER).status_code == 400
    assert client.get("/api/decisions?from=yesterday", headers=BEARER).status_code == 400


def test_charts_draw_bars_per_group(client: TestClient) -> None:
    html = client.get("/charts?by=agency&period=day", headers=BEARER).text
    assert html.count('<svg class="chart"') == 2
    bars = re.findall(r'<rect class="bar" data-key="([^"]+)"', html)
    assert bars and "ag-harlow-police" in bars
    purpose = client.get("/charts?period=week&from=2025-03-01", headers=BEARER).text
    assert 'data-key="duty_to_warn"' in purpose and "2025-W10" in purpose
    # 2018 to 2025 in days would be thousands of bars: the chart falls back to months.
    long = client.get("/charts?period=day", headers=BEARER).text
    assert "Too many days" in long and "2018-05 · duty_to_warn: 1" in long
    totals = client.get("/api/totals?by=outcome&period=month", headers=BEARER).json()
    assert totals["by_key"]["delivered"] > 0
    csv_text = client.get("/api/totals?by=purpose&format=csv", headers=BEARER).text
    assert csv_text.splitlines()[0] == "period,key,count"


def test_reviews_show_age_and_overdue(client: TestClient) -> None:
    html = client.get("/reviews", headers=BEARER).text
    assert "open 3.2 h" in html and "open 30.0 h" in html
    overdue = [r for r in _rows(html.split("retrospective review", 1)[1]) if "rr-us-warn" in r]
    assert overdue and 'class="overdue"' in overdue[0] and "overdue by 6.0 h" in overdue[0]
    assert "break-glass" in overdue[0]
    assert "rr-done" not in html  # decided cases are not waiting
    retractions = html.split("Unacknowledged retractions (1)", 1)[1]
    assert "rtr-cd-acct-1-v3-ag-harlow-homes" in retractions and "open 5.0 h" in retractions
    assert "rtr-acked" not in html
    api = client.get("/api/reviews", headers=BEARER).json()
    assert {i["case_id"]: i["overdue"] for i in api} == {"pr-ex12": False, "rr-us-warn": True}
    open_retractions = client.get("/api/retractions", headers=BEARER).json()
    assert [r["retraction_id"] for r in open_retractions] == ["rtr-cd-acct-1-v3-ag-harlow-homes"]
    assert open_retractions[0]["request_ids"] == ["uk-consent", "us-consent"]


def test_accounting_page_and_exports(client: TestClient) -> None:
    html = client.get("/accounting?subject=subj-us-acct-0001", headers=BEARER).text
    assert "164.528" in html and "us-court" in html
    assert "under an authorization" in html  # us-consent listed as excluded, with why
    csv_text = client.get("/api/accounting/subj-us-acct-0001?format=csv", headers=BEARER).text
    assert csv_text.splitlines()[0].startswith("date,request_id,regime")
    assert len(csv_text.splitlines()) == 3
    data = client.get("/api/accounting/subj-uk-acct-0002", headers=BEARER).json()
    assert data["regimes"] == ["uk_england"] and len(data["entries"]) == 3


def test_chain_status_reports_tampering(engine: Engine) -> None:
    with make_client(engine, verify_ttl_s=0) as c:
        assert c.get("/api/verify", headers=BEARER).json()["ok"] is True
        with engine.begin() as conn:
            conn.execute(text("UPDATE audit_ledger SET reason_code = 'P.tampered' WHERE seq = 5"))
        report = c.get("/api/verify", headers=BEARER).json()
        assert report["ok"] is False and report["first_bad_seq"] == 5
        html = c.get("/chain", headers=BEARER).text
        assert "CHAIN BROKEN" in html and "row 5" in html
        assert "TAMPERED" in c.get("/", headers=BEARER).text


def test_chain_result_is_cached_briefly(engine: Engine) -> None:
    with make_client(engine, verify_ttl_s=3600) as c:
        assert c.get("/api/verify", headers=BEARER).json()["ok"] is True
        with engine.begin() as conn:
            conn.execute(text("UPDATE audit_ledger SET reason_code = 'P.tampered' WHERE seq = 5"))
        assert c.get("/api/verify", headers=BEARER).json()["ok"] is True  # cached


# -- no values ------------------------------------------------------------------------------


def _values(examples: list[dict[str, Any]]) -> set[str]:
    out = set()
    for ex in examples:
        out.add(ex["stated_reason"])
        for field in ex["record"]["fields"]:
            value = str(field["value"])
            if len(value) >= 6:
                out.add(value)
    return out


def test_no_field_value_or_stated_reason_appears_anywhere(
    client: TestClient, examples: list[dict[str, Any]]
) -> None:
    paths = [
        "/",
        "/decisions",
        "/decisions?page=2",
        "/decisions?page=3",
        "/charts",
        "/charts?by=agency",
        "/reviews",
        "/chain",
        "/api/decisions",
        "/api/reviews",
        "/api/ferpa",
        "/api/totals",
        "/api/retractions",
    ]
    for ex in examples:
        paths.append(f"/decisions/{ex['id']}-audit")
        paths.append(f"/accounting?subject={ex['record']['subject_id']}")
        paths.append(f"/api/accounting/{ex['record']['subject_id']}")
    values = _values(examples)
    assert len(values) > 50
    names_seen = False
    for path in paths:
        body = client.get(path, headers=BEARER).text
        leaked = [v for v in values if v in body]
        assert not leaked, f"{path} shows a record value"
        names_seen |= "full_name" in body
    assert names_seen  # field names are shown, values never
