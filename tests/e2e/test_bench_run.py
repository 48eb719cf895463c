"""`sharinghub bench` end to end at a small size: relay and pipeline run as processes, every
request is accounted for from the topics, and the table, JSON and plot are written."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.e2e.test_cli import sharinghub

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(480)]


def test_a_small_bench_accounts_for_every_request_and_writes_its_results(tmp_path: Path) -> None:
    out = tmp_path / "results"
    run = sharinghub(
        [
            "bench",
            "--quick",
            *("--requests", "300", "--rates", "50", "--rate-seconds", "3"),
            *("--idle-seconds", "2"),  # --quick skips the idle phase unless asked for
            *("--scaling-processes", "2", "--scaling-repeats", "1"),  # and this one
            *("--out", str(out)),
        ],
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr[-2000:]

    figures = json.loads((out / "bench.json").read_text())["figures"]
    assert figures["relay_burst"]["complete"] and figures["pipeline_burst"]["complete"]
    assert figures["pipeline_burst"]["completed"] == 300
    [rate] = figures["pipeline_rates"]
    assert rate["rate"] == 50 and rate["completed"] == rate["count"] > 0
    # what every process (the broker's apart) used while the rate was offered, both systems
    [relay_rate] = figures["relay_rates"]
    for row in (rate, relay_rate):
        cores = os.cpu_count() or 1
        assert 0 < row["broker_cpu_pct_of_one_core"] < row["cpu_pct_of_one_core"] <= cores * 110
    assert (
        f"CPU meanwhile, % of one core (broker) {rate['cpu_pct_of_one_core']} "
        f"({rate['broker_cpu_pct_of_one_core']})" in run.stdout
    )
    # each process's mean batch while the rate was offered, from its own /metrics
    means = rate["mean_batch_records"]
    assert {"consent-bulk-0", "delivery-bulk-0"} <= set(means)
    assert all(v >= 1 for v in means.values())
    assert "mean batch (records) per process" in run.stdout
    assert set(rate["cpu_pct_of_one_core_by_process"]) >= {"broker", "policy-urgent-0"}
    accounting = figures["delivery_accounting"]
    assert accounting["requests_sent"] >= 300 + rate["count"]
    assert (accounting["lost"], accounting["duplicated_outcomes"]) == (0, 0)
    assert accounting["duplicated_inbox_messages"] == 0
    assert figures.get("services_died") is None
    assert f"0 / 0 / 0 of {accounting['requests_sent']}" in run.stdout
    assert (out / "latency.png").stat().st_size > 0

    idle = figures["idle_cpu"]  # a fresh hub doing nothing: the broker and each service
    shares = idle["share_of_one_core_pct"]
    assert {"broker", "consent-bulk-0", "delivery-urgent-0"} <= set(shares)
    assert idle["total_pct"] == pytest.approx(sum(shares.values()), abs=0.5)
    assert shares["broker"] > 0  # the services' consumers poll it even when idle
    assert f"idle hub CPU, % of one core             {idle['total_pct']} in all" in run.stdout

    scaling = figures["scaling"]  # the same burst with one and with two bulk processes
    assert scaling["processes"] == [1, 2]
    assert all(rate > 0 for n in ("1", "2") for rate in scaling["per_second"][n])
    by_process = scaling["cpu_ms_per_request_by_process"]
    assert "consent-bulk-1" not in by_process["1"] and "consent-bulk-0" in by_process["1"]
    assert {"consent-bulk-1", "delivery-bulk-1", "delivery-urgent-0"} <= set(by_process["2"])
    counted = scaling["delivery_accounting"]  # warm-up and burst of both hubs
    assert counted["requests_sent"] == 2 * (200 + 300)
    assert (counted["lost"], counted["duplicated_outcomes"]) == (0, 0)
    assert counted["duplicated_inbox_messages"] == 0
    assert "scaling, bulk processes per stage 1 → 2" in run.stdout
    assert f"0 / 0 / 0 of {counted['requests_sent']}" in run.stdout
