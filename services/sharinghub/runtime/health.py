"""Readiness and liveness of a stage process, served beside /metrics.

* ``/ready``: 200 once every subscriber of the process has joined its consumer group and
  received its partitions (aiokafka's start waits for that) and the start-up hooks ran; 503
  before that and from the moment shutdown begins. Orchestrators and `sharinghub up` wait for
  it, so the first requests after a start are not held for seconds by group joins.
* ``/healthz``: 200 while the process's event loop keeps turning; 503 once it has not run a
  heartbeat for `stall_after_s` (a wedged loop: restart the process). A batch holds the loop
  for milliseconds to a few hundred, so the default threshold is far above any normal stall.
  It also names the event loop the process runs on (`SHARINGHUB_EVENT_LOOP`).

Both answer a small JSON document of states and durations, never a field value.
"""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import orjson

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

HEARTBEAT_S = 1.0
STALL_AFTER_S = 30.0


@dataclass
class Health:
    """What the process reports about itself; written by the event loop, read by the HTTP
    thread (single attribute writes, so no lock is needed)."""

    stall_after_s: float = STALL_AFTER_S
    clock: Callable[[], float] = time.monotonic
    started_at: float = field(default=0.0)
    ready_at: float | None = None
    stopping: bool = False
    last_beat: float = field(default=0.0)
    event_loop: str | None = None  # "uvloop" or "asyncio", once the loop runs

    def __post_init__(self) -> None:
        self.started_at = self.last_beat = self.clock()

    def beat(self) -> None:
        """The event loop is turning (called every `HEARTBEAT_S`)."""
        self.last_beat = self.clock()

    def mark_ready(self) -> None:
        self.ready_at = self.clock()

    def mark_stopping(self) -> None:
        self.stopping = True

    @property
    def ready(self) -> bool:
        return self.ready_at is not None and not self.stopping

    def stalled_s(self) -> float:
        return max(0.0, self.clock() - self.last_beat)

    @property
    def live(self) -> bool:
        return self.stalled_s() < self.stall_after_s

    def readiness(self) -> dict[str, Any]:
        state = "stopping" if self.stopping else "ready" if self.ready else "starting"
        doc: dict[str, Any] = {"status": state}
        if self.ready_at is not None:
            doc["started_in_s"] = round(self.ready_at - self.started_at, 3)
        return doc

    def liveness(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "status": "live" if self.live else "stalled",
            "loop_stalled_s": round(self.stalled_s(), 3),
        }
        if self.event_loop is not None:
            doc["event_loop"] = self.event_loop
        return doc


def with_health_routes(metrics_app: WSGIApp, health: Health) -> WSGIApp:
    """`metrics_app` for every path except /ready and /healthz."""

    def answer(start_response: Callable[..., Any], ok: bool, doc: dict[str, Any]) -> list[bytes]:
        body = orjson.dumps(doc)
        status = "200 OK" if ok else "503 Service Unavailable"
        start_response(
            status,
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-store"),
            ],
        )
        return [body]

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/ready":
            return answer(start_response, health.ready, health.readiness())
        if path == "/healthz":
            return answer(start_response, health.live, health.liveness())
        return metrics_app(environ, start_response)

    return app


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Probes every few seconds would flood the service log; the status says enough."""


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a slow scraper never holds the process open at shutdown


class _ThreadingServer6(_ThreadingServer):
    address_family = socket.AF_INET6


def serve(host: str, port: int, app: WSGIApp) -> WSGIServer:
    """Serve `app` on host:port (IPv4 or IPv6) from a daemon thread; `shutdown()` stops it."""
    server_class = _ThreadingServer6 if ":" in host else _ThreadingServer
    server = make_server(host, port, app, server_class, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True).start()
    return server
