"""Readiness and liveness answers of a stage process (`runtime/health.py`), without a server."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from sharinghub.runtime.health import Health, with_health_routes


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def call(app: Callable[..., Iterable[bytes]], path: str) -> tuple[str, dict[str, Any] | bytes]:
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen["status"], seen["headers"] = status, dict(headers)

    body = b"".join(app({"PATH_INFO": path, "REQUEST_METHOD": "GET"}, start_response))
    if seen["headers"].get("Content-Type") == "application/json":
        return seen["status"], json.loads(body)
    return seen["status"], body


def metrics_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"sharinghub_metric 1\n"]


def test_ready_only_between_start_up_and_shutdown() -> None:
    clock = Clock()
    health = Health(clock=clock)
    app = with_health_routes(metrics_app, health)

    assert call(app, "/ready") == ("503 Service Unavailable", {"status": "starting"})
    clock.now += 9.5  # consumer groups joined
    health.mark_ready()
    assert call(app, "/ready") == ("200 OK", {"status": "ready", "started_in_s": 9.5})
    health.mark_stopping()
    assert call(app, "/ready") == (
        "503 Service Unavailable",
        {"status": "stopping", "started_in_s": 9.5},
    )


def test_live_while_the_loop_beats_and_stalled_once_it_stops() -> None:
    clock = Clock()
    health = Health(clock=clock, stall_after_s=30.0)
    app = with_health_routes(metrics_app, health)

    clock.now += 29.0
    assert call(app, "/healthz") == ("200 OK", {"status": "live", "loop_stalled_s": 29.0})
    health.beat()
    clock.now += 31.0
    assert call(app, "/healthz") == (
        "503 Service Unavailable",
        {"status": "stalled", "loop_stalled_s": 31.0},
    )
    health.beat()
    assert call(app, "/healthz")[0] == "200 OK"


def test_liveness_names_the_event_loop_once_it_runs() -> None:
    clock = Clock()
    health = Health(clock=clock)
    app = with_health_routes(metrics_app, health)
    assert "event_loop" not in call(app, "/healthz")[1]  # type: ignore[operator]
    health.event_loop = "uvloop"
    assert call(app, "/healthz") == (
        "200 OK",
        {"status": "live", "loop_stalled_s": 0.0, "event_loop": "uvloop"},
    )


def test_every_other_path_is_the_metrics_app() -> None:
    app = with_health_routes(metrics_app, Health())
    assert call(app, "/metrics") == ("200 OK", b"sharinghub_metric 1\n")
    assert call(app, "/") == ("200 OK", b"sharinghub_metric 1\n")
