"""HTML of the governance console: one layout, small helpers, every value escaped.

Pages are plain server-rendered HTML; the stylesheet and the little script are served from
``/static`` so the Content-Security-Policy can forbid inline code and styles.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from functools import cache
from html import escape
from pathlib import Path
from urllib.parse import quote, urlencode

NAV = (
    ("/", "Overview"),
    ("/decisions", "Decisions"),
    ("/charts", "Charts"),
    ("/reviews", "Reviews"),
    ("/chain", "Chain"),
    ("/accounting", "Accounting"),
)

STATIC = Path(__file__).parent / "static"


@cache
def static_text(name: str) -> str:
    """Text of a file under ``static/`` (the stylesheet, the script)."""
    return (STATIC / name).read_text(encoding="utf-8")


def esc(value: object) -> str:
    """HTML-escape any value (None becomes an empty string)."""
    return "" if value is None else escape(str(value), quote=True)


def path_part(value: str) -> str:
    """A value quoted for use as one URL path segment, then HTML-escaped."""
    return esc(quote(value, safe=""))


def when(moment: datetime | None) -> str:
    """``2025-03-04 09:00 UTC`` with the exact instant in a ``<time>`` element."""
    if moment is None:
        return ""
    utc = moment.astimezone(UTC)
    return f'<time datetime="{utc.isoformat()}">{utc:%Y-%m-%d %H:%M} UTC</time>'


def badge(text: str, kind: str | None = None) -> str:
    """A coloured pill; the kind defaults to the text (outcomes have their own colours)."""
    return f'<span class="badge {esc(kind or text)}">{esc(text)}</span>'


def chips(values: Iterable[str], kind: str = "") -> str:
    """Category or field-name chips, or a dash when empty."""
    items = [f'<span class="chip {kind}">{esc(v)}</span>' for v in values]
    return "".join(items) or '<span class="muted">–</span>'


def query_string(params: dict[str, str | None], **changes: str | None) -> str:
    """``?a=1&b=2`` keeping non-empty parameters, with some replaced."""
    merged = {**params, **changes}
    kept = {k: v for k, v in merged.items() if v not in (None, "")}
    return "?" + urlencode(kept) if kept else ""


def select(name: str, label: str, options: Sequence[str], current: str | None) -> str:
    """A labelled ``<select>`` with an "all" choice first."""
    opts = ['<option value="">all</option>']
    for o in options:
        chosen = " selected" if o == current else ""
        opts.append(f'<option value="{esc(o)}"{chosen}>{esc(o)}</option>')
    return f'<label>{esc(label)}<select name="{esc(name)}">{"".join(opts)}</select></label>'


def date_input(name: str, label: str, current: str | None) -> str:
    """A labelled date field."""
    return (
        f'<label>{esc(label)}<input type="date" name="{esc(name)}" value="{esc(current)}"></label>'
    )


def table(
    headers: Sequence[str], rows: Iterable[Sequence[str]], row_classes: Sequence[str] = ()
) -> str:
    """A table of already-rendered cells (cells must be escaped by the caller)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        cls = row_classes[i] if i < len(row_classes) and row_classes[i] else ""
        attr = f' class="{esc(cls)}"' if cls else ""
        body.append(f"<tr{attr}>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>")
    if not body:
        body.append(f'<tr><td colspan="{len(headers)}" class="muted">Nothing to show.</td></tr>')
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def stat(label: str, value: object, kind: str = "") -> str:
    """One number card for the overview."""
    return (
        f'<div class="stat {esc(kind)}"><div class="n">{esc(value)}</div>'
        f'<div class="l">{esc(label)}</div></div>'
    )


def page(title: str, body: str, *, user: str | None, active: str = "") -> str:
    """The full HTML document: header with navigation, the page body, the script."""
    current = ' class="active"'
    links = "".join(
        f'<a href="{href}"{current if href == active else ""}>{esc(text)}</a>' for href, text in NAV
    )
    account = ""
    if user:
        account = (
            f'<span class="user">signed in as {esc(user)}</span>'
            '<form method="post" action="/logout"><button type="submit">Sign out</button></form>'
        )
    nav = f"<nav>{links}</nav>{account}" if user else "<nav></nav>"
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)} · sharinghub governance</title>"
        '<link rel="stylesheet" href="/static/console.css"></head><body>'
        f'<header><div class="brand">sharinghub <span>governance</span></div>{nav}</header>'
        f"<main>{body}</main>"
        '<script src="/static/console.js"></script></body></html>'
    )


def login_page(error: str | None, next_path: str) -> str:
    """The sign-in form (name + token)."""
    problem = f'<p class="error" role="alert">{esc(error)}</p>' if error else ""
    body = (
        '<div class="login card"><h1>Sign in</h1>'
        '<p class="lead">Governance console — read-only view of decisions, reviews and the '
        "audit chain.</p>"
        f'{problem}<form method="post" action="/login">'
        f'<input type="hidden" name="next" value="{esc(next_path)}">'
        '<label for="name">Name</label><input id="name" name="name" autocomplete="username" '
        "required autofocus>"
        '<label for="token">Token</label><input id="token" name="token" type="password" '
        'autocomplete="current-password" required>'
        '<p><button class="primary" type="submit">Sign in</button></p></form></div>'
    )
    return page("Sign in", body, user=None)
