"""HTML of the governance console: one layout, small helpers, every value escaped.

Pages are plain server-rendered HTML; the stylesheet and the little script are served from
``/static`` so the Content-Security-Policy can forbid inline code and styles.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from html import escape
from urllib.parse import quote, urlencode

NAV = (
    ("/", "Overview"),
    ("/decisions", "Decisions"),
    ("/charts", "Charts"),
    ("/reviews", "Reviews"),
    ("/chain", "Chain"),
    ("/accounting", "Accounting"),
)

CSS = """
:root{--ink:#1d2733;--muted:#5b6570;--line:#dde2e7;--bg:#f4f6f8;--card:#fff;--accent:#2f6db5;
--ok:#2e7d4f;--okbg:#e3f3e8;--bad:#b3261e;--badbg:#fbe4e2;--warn:#8a5a00;--warnbg:#fdf0d5}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);
background:var(--bg)}
header{background:#1d2733;color:#fff;display:flex;align-items:center;gap:24px;padding:0 24px;height:52px}
header .brand{font-weight:600;letter-spacing:.2px}
header .brand span{color:#9fb3c8;font-weight:400}
header nav{display:flex;gap:4px;flex:1}
header nav a{color:#c9d4df;text-decoration:none;padding:6px 10px;border-radius:6px}
header nav a:hover{background:#2c3a4a;color:#fff}
header nav a.active{background:#3a4b5e;color:#fff}
header form{margin:0}
header .user{color:#9fb3c8;font-size:13px}
header button{background:none;border:1px solid #50637a;color:#c9d4df;border-radius:6px;padding:3px 10px;
cursor:pointer}
main{max-width:1240px;margin:0 auto;padding:20px 24px 48px}
h1{font-size:22px;margin:4px 0 4px}
h2{font-size:16px;margin:24px 0 8px}
p.lead{color:var(--muted);margin:0 0 16px}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:16px 18px;margin:0 0 16px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:12px;margin-bottom:16px}
.stat{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:12px 16px}
.stat .n{font-size:26px;font-weight:600}
.stat .l{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.4px}
.stat.bad{border-color:#e8b4b0;background:var(--badbg)}
.stat.ok{border-color:#b5dcc2;background:var(--okbg)}
table{width:100%;border-collapse:collapse;background:var(--card)}
th,td{text-align:left;padding:7px 9px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:12px;color:var(--muted);text-transform:uppercase;letter-spacing:.3px;background:#fafbfc}
tr.overdue td{background:var(--badbg)}
td.num{text-align:right;font-variant-numeric:tabular-nums}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}
.badge{display:inline-block;border-radius:999px;padding:1px 9px;font-size:12px;font-weight:600;white-space:nowrap}
.badge.delivered{background:var(--okbg);color:var(--ok)}
.badge.denied,.badge.rejected_invalid,.badge.bad{background:var(--badbg);color:var(--bad)}
.badge.pending_review,.badge.warn{background:var(--warnbg);color:var(--warn)}
.badge.ok{background:var(--okbg);color:var(--ok)}
.badge.muted{background:#eceff2;color:var(--muted)}
.chip{display:inline-block;background:#eef2f7;border-radius:4px;padding:0 6px;margin:1px 2px 1px 0;font-size:12px}
.chip.withheld{background:#f6e9e8;color:#7a3430;text-decoration:line-through}
.muted{color:var(--muted)}
form.filters{display:flex;flex-wrap:wrap;gap:10px;align-items:flex-end;background:var(--card);
border:1px solid var(--line);border-radius:10px;padding:12px 14px;margin-bottom:14px}
form.filters label{display:flex;flex-direction:column;font-size:12px;color:var(--muted);gap:3px}
select,input{font:inherit;padding:5px 8px;border:1px solid #c3cad2;border-radius:6px;background:#fff}
button.primary,a.button{background:var(--accent);color:#fff;border:0;border-radius:6px;padding:7px 14px;
font:inherit;cursor:pointer;text-decoration:none;display:inline-block}
a.button.secondary{background:#e8edf3;color:var(--ink)}
.pager{display:flex;gap:8px;align-items:center;margin-top:12px}
.legend{list-style:none;display:flex;flex-wrap:wrap;gap:6px 16px;padding:0;margin:6px 0 0;font-size:13px}
.legend li{display:flex;align-items:center;gap:6px}
.charts{display:grid;grid-template-columns:1fr 1fr;gap:16px}
@media(max-width:1000px){.charts{grid-template-columns:1fr}}
.login{max-width:360px;margin:80px auto}
.login label{display:block;margin:10px 0 4px;font-size:13px;color:var(--muted)}
.login input{width:100%}
.error{color:var(--bad);margin:8px 0}
.notice{border-left:4px solid var(--warn);background:var(--warnbg);padding:10px 14px;border-radius:6px}
dl.kv{display:grid;grid-template-columns:220px 1fr;gap:6px 16px;margin:0}
dl.kv dt{color:var(--muted)}
dl.kv dd{margin:0}
"""

JS = """
// Filters apply as soon as a choice changes; dates apply when the field loses focus.
document.querySelectorAll('form.filters select').forEach(function (el) {
  el.addEventListener('change', function () { el.form.requestSubmit(); });
});
"""


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
