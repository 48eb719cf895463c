"""`sharinghub trace REQUEST_ID`: the span tree of one request from the local JSON-lines export.

Reads `<data_dir>/traces.jsonl` (what the services write when no OTLP endpoint is set), finds
the trace(s) whose spans carry `sharinghub.request_id = REQUEST_ID`, and prints them as an
indented tree: offset from the trace start, duration, service, span name, and the gap between
a parent span's end and a child's start in another service — the time the message waited in
Kafka (or, after a pending review, for a person's decision).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

# Span attributes worth showing on the tree (all ids, codes or counts — see docs/observability).
SHOWN_ATTRIBUTES = (
    "sharinghub.outcome",
    "sharinghub.reason_code",
    "sharinghub.purpose",
    "sharinghub.fields_delivered",
    "sharinghub.security_refusal",
)


@dataclass
class SpanNode:
    """One exported span and its children (ordered by start time)."""

    span: dict[str, Any]
    children: list[SpanNode] = field(default_factory=list)

    @property
    def start(self) -> int:
        return int(self.span.get("start_ns") or 0)

    @property
    def end(self) -> int:
        return int(self.span.get("end_ns") or self.start)


def read_spans(path: Path) -> Iterator[dict[str, Any]]:
    """Every span in the file; a torn last line (a writer mid-flush) is skipped."""
    with path.open() as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                span = json.loads(line)
            except ValueError:
                continue
            if isinstance(span, dict) and span.get("trace_id") and span.get("span_id"):
                yield span


def spans_of_request(spans: Iterable[dict[str, Any]], request_id: str) -> list[dict[str, Any]]:
    """All spans of every trace in which some span carries this request id."""
    spans = list(spans)
    traces = {
        s["trace_id"]
        for s in spans
        if (s.get("attributes") or {}).get("sharinghub.request_id") == request_id
    }
    return [s for s in spans if s["trace_id"] in traces]


def build_forest(spans: Iterable[dict[str, Any]]) -> list[SpanNode]:
    """Span trees; a span whose parent is not in the file (a remote producer) is a root."""
    nodes = {s["span_id"]: SpanNode(s) for s in spans}
    roots: list[SpanNode] = []
    for node in nodes.values():
        parent = nodes.get(node.span.get("parent_id") or "")
        (parent.children if parent is not None else roots).append(node)
    for node in nodes.values():
        node.children.sort(key=lambda n: n.start)
    roots.sort(key=lambda n: n.start)
    return roots


def _ms(ns: int) -> str:
    return f"{ns / 1e6:,.1f} ms"


def _gap(ns: int) -> str:
    """A queueing gap; long waits (a pending review) read better in larger units."""
    s = ns / 1e9
    if s >= 3600:
        return f"{s / 3600:.1f} h"
    if s >= 60:
        return f"{s / 60:.1f} min"
    return _ms(ns)


def render(roots: list[SpanNode]) -> list[str]:
    """The tree as text lines."""
    if not roots:
        return []
    t0 = min(r.start for r in roots)
    lines: list[str] = []

    def walk(node: SpanNode, depth: int, parent: SpanNode | None) -> None:
        s = node.span
        attrs = s.get("attributes") or {}
        shown = " ".join(f"{k.split('.', 1)[1]}={attrs[k]}" for k in SHOWN_ATTRIBUTES if k in attrs)
        status = "" if s.get("status") in (None, "UNSET", "OK") else f" [{s.get('status')}]"
        wait = ""
        if parent is not None and parent.span.get("service") != s.get("service"):
            gap = node.start - parent.end
            # The consumer may start before the producer's span ended (it ends on the ack).
            wait = f"  (queued {_gap(gap)})" if gap >= 0 else "  (queued 0 ms: overlapped ack)"
        lines.append(
            f"{_ms(node.start - t0):>12} {'  ' * depth}{s.get('service') or '?'} · {s.get('name')}"
            f"  {_ms(node.end - node.start)}{status}{wait}" + (f"  {shown}" if shown else "")
        )
        for child in node.children:
            walk(child, depth + 1, node)

    for root in roots:
        walk(root, 0, None)
    return lines


def summary(spans: list[dict[str, Any]]) -> str:
    """One closing line: total wall time, time in stages, time queued between them."""
    if not spans:
        return ""
    start = min(int(s["start_ns"]) for s in spans)
    end = max(int(s.get("end_ns") or s["start_ns"]) for s in spans)
    busy = _union_ns([(int(s["start_ns"]), int(s.get("end_ns") or s["start_ns"])) for s in spans])
    return (
        f"total {_ms(end - start)} · in stages {_ms(busy)} · between stages "
        f"{_ms(end - start - busy)} · {len(spans)} spans in "
        f"{len({s['trace_id'] for s in spans})} trace(s)"
    )


def _union_ns(intervals: list[tuple[int, int]]) -> int:
    total, cur_start, cur_end = 0, None, None
    for a, b in sorted(intervals):
        if cur_end is None or a > cur_end:
            if cur_end is not None and cur_start is not None:
                total += cur_end - cur_start
            cur_start, cur_end = a, b
        else:
            cur_end = max(cur_end, b)
    if cur_end is not None and cur_start is not None:
        total += cur_end - cur_start
    return total


def cmd_trace(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Print the span tree of one request (exit 1 when it has no spans in the file)."""
    from sharinghub.runtime.settings import Settings

    out = out or sys.stdout
    settings = Settings()
    path = Path(args.file) if args.file else settings.resolved_trace_file()
    if not path.exists():
        hint = (
            " (spans go to the OTLP endpoint, not a local file: use Jaeger)"
            if settings.otlp_endpoint
            else ""
        )
        sys.stderr.write(f"error: no trace file at {path}{hint}\n")
        return 2
    spans = spans_of_request(read_spans(path), args.request_id)
    if not spans:
        sys.stderr.write(f"no spans for request {args.request_id} in {path}\n")
        return 1
    if args.json:
        out.write(json.dumps(sorted(spans, key=lambda s: s["start_ns"]), indent=2) + "\n")
        return 0
    trace_ids = ", ".join(sorted({s["trace_id"] for s in spans}))
    lines = [f"request {args.request_id}  trace {trace_ids}", *render(build_forest(spans))]
    out.write("\n".join([*lines, summary(spans)]) + "\n")
    return 0


def register(subparsers: Any) -> None:
    """Add `trace REQUEST_ID [--file PATH] [--json]` to the CLI."""
    p = subparsers.add_parser(
        "trace", help="print the span tree of one request from the local trace file"
    )
    p.add_argument("request_id")
    p.add_argument("--file", help="JSON-lines span file (default <data_dir>/traces.jsonl)")
    p.add_argument("--json", action="store_true", help="print the request's spans as JSON")
    p.set_defaults(func=cmd_trace)
