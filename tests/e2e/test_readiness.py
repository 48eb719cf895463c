"""Readiness and liveness of the service processes, as an orchestrator or `up` asks for them."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from sharinghub.runtime import event_loop
from sharinghub.runtime.settings import Settings
from sharinghub.tools.hub import Hub, ServiceExited

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


def get(url: str) -> tuple[int, dict[str, object]]:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback
        return response.status, json.loads(response.read())


def test_every_service_process_is_ready_and_live_once_its_consumers_joined(hub: Hub) -> None:
    assert hub.wait_ready(timeout_s=180) == []
    urls = hub.metrics_urls()
    assert len(urls) == 8  # four stages, a bulk and an urgent-lane process each
    loop = event_loop.loop_name(Settings().event_loop)  # uvloop unless asked otherwise
    for label, metrics_url in urls.items():
        base = metrics_url.removesuffix("/metrics")
        status, ready = get(base + "/ready")
        assert (status, ready["status"]) == (200, "ready"), label
        assert 0 < float(str(ready["started_in_s"])) < 180, label
        status, live = get(base + "/healthz")
        assert (status, live["status"]) == (200, "live"), label
        assert float(str(live["loop_stalled_s"])) < 30, label
        assert live["event_loop"] == loop, label


def test_waiting_for_readiness_reports_a_service_that_exits_while_starting(
    tmp_path: Path,
) -> None:
    settings = Settings(
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'hub.db'}",
        kafka_bootstrap_servers=None,
        broker="embedded",
    )
    # an invalid setting only the service processes read: they exit at once, with code 2
    hub = Hub(settings, services=("consent",), extra_env={"SHARINGHUB_BATCH_MAX_RECORDS": "0"})
    hub.start()
    try:
        with pytest.raises(ServiceExited) as exited:
            hub.wait_ready(timeout_s=60)
        assert exited.value.services == ["consent-0 (exit 2)"]
        log = (hub.log_dir() / "consent-0.log").read_text()
        assert "SHARINGHUB_BATCH_MAX_RECORDS" in log
    finally:
        hub.stop()
