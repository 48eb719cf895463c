"""The bench's loss and duplicate counts, which the performance acceptance rests on, against
the real embedded broker: the topic is re-read to its true end, whatever end offset the
broker reports."""

from __future__ import annotations

import http.server
import socket
import threading

import pytest
from aiokafka import AIOKafkaProducer

from sharinghub.runtime.broker import free_loopback_port
from sharinghub.runtime.topics import ensure_topics
from sharinghub.tools.bench.probe import recount
from sharinghub.tools.bench.report import table
from sharinghub.tools.bench.runner import batch_totals, mean_batches, relay_id, sum_accounting

pytestmark = pytest.mark.integration

TOPIC = "bench.accounting.v1"


async def _publish(bootstrap: str, ids: list[str]) -> None:
    # linger so the records travel in multi-record batches: the embedded broker reports a
    # partition's end as the base offset of its last batch + 1, which a naive reader trusts
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, linger_ms=20)
    await producer.start()
    try:
        futures = [
            await producer.send(TOPIC, b"{}", key=i.encode(), headers=[("bench-id", i.encode())])
            for i in ids
        ]
        for f in futures:
            await f
    finally:
        await producer.stop()


async def test_recount_finds_every_message_and_each_duplicate(bootstrap: str) -> None:
    await ensure_topics(bootstrap, [TOPIC], partitions=3)
    ids = [f"req-{n:04d}" for n in range(300)]
    await _publish(bootstrap, ids)
    await _publish(bootstrap, ids[:7])  # seven redelivered

    seen = await recount(bootstrap, [TOPIC], relay_id, timeout_s=30)

    assert set(seen.counts) == set(ids)
    assert sorted(i for i, c in seen.counts.items() if c > 1) == ids[:7]
    assert sum(seen.per_topic[TOPIC].values()) == 307


async def test_recount_that_cannot_finish_names_the_partitions_behind(bootstrap: str) -> None:
    await ensure_topics(bootstrap, [TOPIC], partitions=3)
    await _publish(bootstrap, ["req-late"])

    with pytest.raises(TimeoutError, match=rf"still behind: {TOPIC}\[\d\] at 0 of [1-9]"):
        await recount(bootstrap, [TOPIC], relay_id, timeout_s=0)


async def test_recount_of_an_empty_topic_is_empty(bootstrap: str) -> None:
    await ensure_topics(bootstrap, ["bench.empty.v1"], partitions=1)
    seen = await recount(bootstrap, ["bench.empty.v1"], relay_id, timeout_s=30)
    assert not seen.counts


def test_report_table_states_each_target_with_its_figure() -> None:
    figures = {
        "pipeline_burst": {"per_second": 500},
        "relay_burst": {"per_second": 5000},
        "throughput_ratio": 0.1,
        "pipeline_cpu_ms_per_request": {"consent-bulk-0": 0.4, "broker": 0.6},
        "urgent_lane": {
            "unloaded_p99_ms": 120.0,
            "saturated_p99_ms": 200.0,
            "urgent_offered_during_backlog": 97,
            "urgent_offered": 100,
            "bulk_backlog": 4000,
        },
        "tracing": {"overhead_throughput_pct": 5.0, "overhead_cpu_pct": 3.5, "repeats": 2},
        "machine_calibration_ms": [80.0, 100.0, 84.0],
        "delivery_accounting": {
            "requests_sent": 17800,
            "lost": 0,
            "duplicated_outcomes": 1,
            "duplicated_inbox_messages": 2,
        },
    }
    text = table(figures)
    assert "10.0%" in text and "target ≥ 25%" in text
    assert "consent-bulk-0 0.4, broker 0.6" in text
    assert "120.0 / 200.0" in text
    assert "97 of 100 (of a 4000-request bulk backlog)" in text
    assert "0 / 1 / 2 of 17800" in text
    assert "5.0% throughput, 3.5% CPU per request" in text
    assert "80.0 → 100.0 → 84.0 ms" in text and "not strictly comparable" in text


def test_report_never_shows_uncounted_deliveries_as_zero() -> None:
    soak = {
        "seconds": 600.0,
        "rate": 50,
        "drained": False,
        "rss_mb_after_warmup": {"delivery-bulk-0": 98.0},
        "rss_mb_middle": {"delivery-bulk-0": 101.0},
        "rss_mb_end": {"delivery-bulk-0": 101.5},
        "requests_sent": 30000,
        "not_completed_when_drain_ended": 12,
        "duplicated_outcomes": 0,
        "duplicated_inbox_messages": 0,
    }
    uncounted = {"requests_sent": 17800, "not_counted": "could not read 3 partitions"}
    text = table({"soak": soak, "delivery_accounting": uncounted})
    assert "12 / 0 / 0 of 30000 (backlog not drained: not yet completed, not lost)" in text
    assert "NOT COUNTED (could not read 3 partitions)" in text
    assert "lost / duplicated outcomes / inbox      0" not in text


def test_report_shows_scaling_with_every_burst_counted() -> None:
    parts = [
        {
            "requests_sent": 4200,
            "lost": 0,
            "duplicated_outcomes": 0,
            "duplicated_inbox_messages": 0,
            "missed_by_live_probe": 0,
        },
        {
            "requests_sent": 4200,
            "lost": 1,
            "duplicated_outcomes": 2,
            "duplicated_inbox_messages": 3,
            "missed_by_live_probe": 0,
        },
    ]
    scaling = {
        "processes": [1, 2],
        "repeats": 1,
        "per_second": {"1": [700], "2": [770]},
        "cpu_ms_per_request": {"1": 2.3, "2": 2.5},
        "speedup": 1.1,
        "delivery_accounting": sum_accounting(parts),
    }
    text = table({"scaling": scaling})
    assert "bulk processes per stage 1 → 2  700 → 770 requests/s (×1.1)" in text
    assert "CPU ms per request 2.3 → 2.5" in text
    assert "1 / 2 / 3 of 8400" in text  # both bursts' counts, summed


def test_report_shows_a_figure_that_could_not_be_worked_out_as_a_dash() -> None:
    scaling = {
        "processes": [1, 2],
        "repeats": 1,
        "per_second": {"1": [0], "2": [0]},
        "cpu_ms_per_request": {"1": 0.0, "2": 0.0},
        "speedup": None,  # every burst of the first layout completed nothing
        "delivery_accounting": {"requests_sent": 0, "not_counted": "services died"},
    }
    tracing = {"overhead_throughput_pct": None, "overhead_cpu_pct": None, "repeats": 2}
    text = table({"scaling": scaling, "tracing": tracing})
    assert "(×-)" in text
    assert "tracing overhead                        - throughput, - CPU per request" in text


def test_scaling_counts_are_not_counted_if_any_burst_was_not() -> None:
    counted = {
        "requests_sent": 4200,
        "lost": 0,
        "duplicated_outcomes": 0,
        "duplicated_inbox_messages": 0,
        "missed_by_live_probe": 0,
    }
    uncounted = {"requests_sent": 4200, "not_counted": "2 partitions behind"}
    summed = sum_accounting([counted, uncounted])
    assert summed == {"requests_sent": 8400, "not_counted": "2 partitions behind"}
    assert "NOT COUNTED (2 partitions behind)" in table(
        {
            "scaling": {
                "processes": [1, 2],
                "repeats": 1,
                "per_second": {"1": [1], "2": [1]},
                "cpu_ms_per_request": {"1": 1.0, "2": 1.0},
                "speedup": 1.0,
                "delivery_accounting": summed,
            }
        }
    )


def test_batch_totals_sum_every_stage_series_and_leave_out_silent_processes() -> None:
    exposition = (
        b"# TYPE sharinghub_stage_batch_size histogram\n"
        b'sharinghub_stage_batch_size_bucket{stage="consent",le="+Inf"} 3\n'
        b'sharinghub_stage_batch_size_sum{stage="consent"} 57.0\n'
        b'sharinghub_stage_batch_size_count{stage="consent"} 3\n'
        b'sharinghub_stage_batch_size_sum{stage="retraction_acks"} 3.0\n'
        b'sharinghub_stage_batch_size_count{stage="retraction_acks"} 1\n'
        b'sharinghub_stage_batch_duration_sum{stage="consent"} 0.25\n'
    )

    class Metrics(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(exposition)

        def log_message(self, *args: object) -> None:
            pass

    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), Metrics) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            urls = {
                "consent-bulk-0": f"http://127.0.0.1:{server.server_port}/metrics",
                "consent-urgent-0": f"http://127.0.0.1:{free_loopback_port()}/metrics",
            }
            totals = batch_totals(urls)
        finally:
            server.shutdown()
    assert totals == {"consent-bulk-0": (60.0, 4.0)}
    later = {"consent-bulk-0": (100.0, 6.0), "policy-bulk-0": (8.0, 2.0)}
    # policy-bulk-0 was not read at the start: left out, not averaged over its whole life
    assert mean_batches(totals, later) == {"consent-bulk-0": 20.0}
    assert mean_batches(later, later) == {}  # no batch in between: no mean


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\nsharinghub_stage_batch",  # cut off
        b"HTTP/1.1 200 OK\r\n\r\nsharinghub_stage_batch_size_sum{} many\n",  # no number
        b"garbage\r\n\r\n",  # not HTTP
    ],
)
def test_batch_totals_leave_out_a_process_that_answers_badly(answer: bytes) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def answer_once() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(4096)
            conn.sendall(answer)

    server = threading.Thread(target=answer_once, daemon=True)
    server.start()
    try:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/metrics"
        assert batch_totals({"policy-bulk-0": url}) == {}
    finally:
        server.join(timeout=5)
        listener.close()


def test_report_shows_each_process_mean_batch_at_a_rate() -> None:
    row = {"rate": 200, "p50_ms": 1.0, "p95_ms": 2.0, "p99_ms": 3.0}
    figures = {
        "pipeline_rates": [
            {**row, "mean_batch_records": {"consent-bulk-0": 19.0, "x-urgent-0": 3.5}}
        ],
        "relay_rates": [row],
    }
    assert "mean batch (records) per process     consent-bulk-0 19.0, x-urgent-0 3.5" in table(
        figures
    )
