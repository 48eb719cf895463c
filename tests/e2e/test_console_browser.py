"""The governance console in a real headless Chromium (Debian's, no downloaded browsers).

Starts the console on a free loopback port over a seeded SQLite hub database, signs in
through the login page, uses the filters, checks the charts and saves screenshots under
``test-artifacts/`` for a person to look at.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sharinghub.delivery.ledger import AuditLedger
from sharinghub.governance.app import ConsoleServer, create_console_app
from sharinghub.runtime.db import create_engine_for
from sharinghub.runtime.schema import upgrade
from tests.integration.test_governance_console import NOW, TOKENS, seed_retractions, seed_reviews
from tests.integration.test_governance_reports import seed_records

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
IN_CI = os.environ.get("CI", "").lower() == "true"


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (required in CI)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def console_url(
    tmp_path_factory: pytest.TempPathFactory, examples: list[dict[str, Any]]
) -> Iterator[str]:
    url = f"sqlite:///{tmp_path_factory.mktemp('console') / 'hub.db'}"
    upgrade(url)
    engine = create_engine_for(url)
    AuditLedger(engine).append(seed_records(examples))
    seed_reviews(engine, examples, NOW)
    seed_retractions(engine, NOW)
    app = create_console_app(engine, TOKENS, clock=lambda: NOW, page_size=15)
    with ConsoleServer(app, port=0) as server:
        yield server.url
    engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} not installed (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    pg = context.new_page()
    try:
        yield pg
    finally:
        context.close()


def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"console-{name}.png"), full_page=True)


def _login(page: Any, base: str, next_path: str = "/") -> None:
    page.goto(base + next_path)
    assert "/login" in page.url
    page.fill("#name", "board")
    page.fill("#token", TOKENS["board"])
    page.click("button[type=submit]")
    page.wait_for_url(lambda u: "/login" not in u)


def test_unauthenticated_requests_are_refused(console_url: str, page: Any) -> None:
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(console_url + "/api/decisions", timeout=5)  # noqa: S310 - loopback
    assert refused.value.code == 401
    page.goto(console_url + "/reviews")
    assert page.url.startswith(console_url + "/login")
    page.fill("#name", "board")
    page.fill("#token", "not-the-token")
    page.click("button[type=submit]")
    assert page.locator("p.error").inner_text() == "Name or token not recognised."
    _shot(page, "login-refused")


def test_board_member_signs_in_filters_and_reads_charts(console_url: str, page: Any) -> None:
    _login(page, console_url, "/")
    assert page.locator(".stat").count() == 6
    assert page.locator(".stat.ok").inner_text().startswith("intact")
    _shot(page, "overview")

    page.goto(console_url + "/decisions")
    assert page.locator("tbody tr").count() == 15  # one page
    # The select submits the form by itself (console.js): no button press.
    page.select_option("select[name=purpose]", "court_order")
    page.wait_for_url("**purpose=court_order**")
    rows = page.locator("tbody tr")
    assert rows.count() == 3
    assert all("court_order" in rows.nth(i).inner_text() for i in range(3))
    page.select_option("select[name=outcome]", "delivered")
    page.wait_for_url("**outcome=delivered**")
    assert page.locator("tbody tr").count() == 2  # ex-06 and the reviewer's us-court decision
    _shot(page, "decisions-filtered")

    page.goto(console_url + "/decisions?agency=ag-harlow-high&final=1")
    assert page.locator("tbody tr").count() == 4
    page.click("tbody tr >> nth=0 >> a")
    assert page.locator("h1").inner_text().startswith("Request")
    assert page.locator("dl.kv").count() >= 1
    _shot(page, "decision-detail")

    page.goto(console_url + "/charts?period=day&from=2025-03-01")
    bars = page.locator("svg.chart rect.bar")
    assert bars.count() > 10
    assert page.locator("svg.chart").count() == 2
    heights = [float(bars.nth(i).get_attribute("height")) for i in range(bars.count())]
    assert all(h > 0 for h in heights)
    assert page.locator(".legend li").count() >= 4
    _shot(page, "charts-purpose")
    page.select_option("select[name=by]", "agency")
    page.wait_for_url("**by=agency**")
    keys = {
        page.locator("svg.chart rect.bar").nth(i).get_attribute("data-key")
        for i in range(page.locator("svg.chart rect.bar").count())
    }
    assert "ag-harlow-police" in keys
    _shot(page, "charts-agency")


def test_reviews_chain_and_accounting(console_url: str, page: Any) -> None:
    _login(page, console_url, "/reviews")
    overdue = page.locator("tr.overdue")
    assert overdue.count() == 1
    assert "overdue by 6.0 h" in overdue.inner_text()
    assert "open 3.2 h" in page.content()
    assert "Unacknowledged retractions (1)" in page.content()
    _shot(page, "reviews")

    page.goto(console_url + "/chain")
    assert "chain intact" in page.locator(".card").inner_text()
    _shot(page, "chain")

    page.goto(console_url + "/accounting")
    page.fill("input[name=subject]", "subj-us-acct-0001")
    page.click("button.primary")
    page.wait_for_url("**subject=subj-us-acct-0001**")
    assert page.locator("h2", has_text="Disclosures (2)").count() == 1
    _shot(page, "accounting")

    page.click("button:has-text('Sign out')")
    page.wait_for_url("**/login")
    page.goto(console_url + "/decisions")
    assert "/login" in page.url
