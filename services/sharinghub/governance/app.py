"""The governance console: a read-only ASGI app, and ways to serve it.

`create_console_app(engine, tokens)` builds the app; `serve(...)` runs it in the foreground;
`ConsoleServer` runs it on a background thread (for `sharinghub up` and browser tests).
Unauthenticated requests get 401 (``/api/…``) or a redirect to ``/login`` (pages).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from urllib.parse import quote

import uvicorn
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sharinghub.governance import api, pages, templates
from sharinghub.governance.auth import COOKIE_NAME, SESSION_TTL_S, Authenticator
from sharinghub.governance.context import Console, now_utc
from sharinghub.governance.queries import GovernanceQueries, VerifyCache

PUBLIC_PATHS = frozenset({"/login", "/healthz", "/static/console.css", "/static/console.js"})
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}
FAILED_LOGIN_DELAY_S = 0.5


class AuthGate:
    """ASGI middleware: identify the user, refuse strangers, add security headers."""

    def __init__(self, app: ASGIApp, auth: Authenticator) -> None:
        self.app = app
        self.auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        path: str = scope["path"]
        if path in PUBLIC_PATHS:
            await self.app(scope, receive, send_with_headers)
            return
        request = Request(scope)
        header = request.headers.get("authorization")
        cookie = request.cookies.get(COOKIE_NAME)
        user = None
        if header:
            user = self.auth.check_authorization(header)
        elif cookie:
            user = self.auth.check_session(cookie)
        if user is None:
            refusal: Response
            if path.startswith("/api/"):
                refusal = api.json_response({"error": "authentication required"}, 401)
                refusal.headers["www-authenticate"] = 'Bearer realm="sharinghub-governance"'
            else:
                target = path + (f"?{request.url.query}" if request.url.query else "")
                refusal = RedirectResponse(f"/login?next={quote(target)}", status_code=303)
            await refusal(scope, receive, send_with_headers)
            return
        scope.setdefault("state", {})["user"] = user
        await self.app(scope, receive, send_with_headers)


def _safe_next(raw: str | None) -> str:
    # Only a path on this site: "//host" or "https://…" would be an open redirect.
    if raw and raw.startswith("/") and not raw.startswith("//") and "\\" not in raw:
        return raw
    return "/"


async def login_form(request: Request) -> Response:
    """The sign-in page."""
    return HTMLResponse(templates.login_page(None, _safe_next(request.query_params.get("next"))))


async def login_submit(request: Request) -> Response:
    """Check name + token; on success set the HttpOnly session cookie and go on."""
    console: Console = request.app.state.console
    form = await request.form()
    name, token = str(form.get("name") or ""), str(form.get("token") or "")
    next_path = _safe_next(str(form.get("next") or "/"))
    user = console.auth.check_password(name, token) if console.auth.configured else None
    if user is None:
        await asyncio.sleep(FAILED_LOGIN_DELAY_S)  # slows guessing; never says which part failed
        message = (
            "Name or token not recognised."
            if console.auth.configured
            else "No governance tokens are configured (SHARINGHUB_GOVERNANCE_TOKENS)."
        )
        return HTMLResponse(templates.login_page(message, next_path), status_code=401)
    response = RedirectResponse(next_path, status_code=303)
    response.set_cookie(
        COOKIE_NAME,
        console.auth.issue_session(user),
        max_age=SESSION_TTL_S,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


async def logout(request: Request) -> Response:
    """Forget the session cookie."""
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="strict")
    return response


async def static_css(request: Request) -> Response:
    """The console's stylesheet."""
    return Response(templates.static_text("console.css"), media_type="text/css")


async def static_js(request: Request) -> Response:
    """The console's script."""
    return Response(templates.static_text("console.js"), media_type="text/javascript")


async def healthz(request: Request) -> Response:
    """Liveness probe (no data)."""
    return PlainTextResponse("ok")


def create_console_app(
    engine: Engine,
    tokens: Mapping[str, str],
    *,
    verify_ttl_s: float = 30.0,
    clock: Callable[[], datetime] = now_utc,
    page_size: int = 50,
    session_secret: bytes | None = None,
) -> ASGIApp:
    """The read-only governance console for the hub's database behind ``engine``.

    ``tokens`` maps a name to its token (see `auth.parse_tokens`); with none, nobody can
    sign in. Page handlers are synchronous, so Starlette runs them (and their SQL) in its
    thread pool, off the event loop.
    """
    auth = Authenticator(tokens, secret=session_secret)
    queries = GovernanceQueries(engine)
    routes = [
        Route("/", pages.overview),
        Route("/decisions", pages.decisions),
        Route("/decisions/{request_id}", pages.decision_detail),
        Route("/charts", pages.charts_page),
        Route("/reviews", pages.reviews_page),
        Route("/chain", pages.chain_page),
        Route("/accounting", pages.accounting_page),
        Route("/api/decisions", api.api_decisions),
        Route("/api/totals", api.api_totals),
        Route("/api/verify", api.api_verify),
        Route("/api/reviews", api.api_reviews),
        Route("/api/ferpa", api.api_ferpa),
        Route("/api/retractions", api.api_retractions),
        Route("/api/accounting/{subject_id}", api.api_accounting),
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login_submit, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/static/console.css", static_css),
        Route("/static/console.js", static_js),
        Route("/healthz", healthz),
    ]
    app = Starlette(routes=routes)
    app.state.console = Console(
        queries=queries,
        verify=VerifyCache(queries.ledger, ttl_s=verify_ttl_s),
        auth=auth,
        clock=clock,
        page_size=page_size,
    )
    return AuthGate(app, auth)


def serve(
    engine: Engine,
    tokens: Mapping[str, str],
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    log_level: str = "info",
) -> None:
    """Run the console in the foreground until interrupted.

    Access logs are off: request lines carry subject ids of accounting look-ups.
    """
    if not tokens:
        raise ValueError("no governance tokens configured; set SHARINGHUB_GOVERNANCE_TOKENS")
    app = create_console_app(engine, tokens)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)


class ConsoleServer:
    """The console on a background thread (daemon); ``port=0`` picks a free port."""

    def __init__(self, app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> None:
        config = uvicorn.Config(
            app, host=host, port=port, log_level="warning", access_log=False, lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, name="governance-console", daemon=True
        )
        self.host = host
        self.port = port

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:40123``."""
        return f"http://{self.host}:{self.port}"

    def start(self, timeout_s: float = 10.0) -> ConsoleServer:
        """Start serving; returns once the socket listens (raises if it does not)."""
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("governance console did not start")
            time.sleep(0.02)
        sockets = [s for srv in self._server.servers for s in srv.sockets]
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Ask the server to exit and wait for its thread."""
        self._server.should_exit = True
        self._thread.join(timeout_s)

    def __enter__(self) -> ConsoleServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
