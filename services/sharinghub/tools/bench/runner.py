"""`sharinghub bench`: the real pipeline against a bare batched relay, in one run.

Phases (each printed as it finishes): warm-up; maximum sustained throughput (a burst, relay
then pipeline); latency at fixed offered rates; the urgent lane under a bulk backlog; an idle
hub's CPU; optional soak with RSS per service; tracing overhead (bursts with tracing on and
off); scaling (bursts with one and more bulk processes per stage). Every request of the rates
phase, the soak and the scaling bursts is counted: lost (no outcome) and duplicated (two
final outcomes or two inbox messages) are reported, never assumed.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import math
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import orjson

from sharinghub.contracts import URGENT_PURPOSES, topics
from sharinghub.runtime import event_loop
from sharinghub.runtime.broker import EmbeddedBroker
from sharinghub.runtime.codec import encode
from sharinghub.runtime.event_loop import LoopChoice
from sharinghub.runtime.lifetime import end_with_parent
from sharinghub.runtime.settings import Settings
from sharinghub.runtime.topics import ensure_topics
from sharinghub.tools.bench.generator import Load, generate
from sharinghub.tools.bench.probe import Message, Probe, percentile, recount
from sharinghub.tools.hub import BULK_NICE, Hub

T = TypeVar("T")
RELAY_TOPICS = [f"sharinghub.bench.relay.{i}" for i in range(5)]


@dataclass
class BenchConfig:
    requests: int = 4000
    rates: tuple[int, ...] = (200, 500, 1000)
    rate_seconds: float = 8.0
    narrative_words: int = 150
    directives: tuple[int, int] = (5, 10)
    processes: int = 1
    urgent_processes: bool = True
    bulk_nice: int = BULK_NICE
    tracing: bool = True
    tracing_overhead: bool = True
    tracing_repeats: int = 4
    # scaling: bursts on hubs with `processes` and with this many bulk processes per stage,
    # alternated `scaling_repeats` times each (0: not measured)
    scaling_processes: int = 0
    scaling_repeats: int = 2
    urgent: bool = True
    idle_seconds: float = 10.0
    soak_seconds: float = 0.0
    soak_rate: int = 50
    soak_only: bool = False
    database_url: str | None = None
    out_dir: Path = Path("bench-results")
    partitions: int = 3
    # the loop of the services, the relays and this harness (`SHARINGHUB_EVENT_LOOP`)
    event_loop: LoopChoice = "auto"


@dataclass
class Results:
    config: dict[str, Any]
    figures: dict[str, Any] = field(default_factory=dict)

    def put(self, key: str, value: Any) -> None:
        self.figures[key] = value
        # time series stay in bench.json; the console gets the figures
        shown = (
            {k: v for k, v in value.items() if not isinstance(v, list) or len(v) <= 20}
            if isinstance(value, dict)
            else value
        )
        sys.stdout.write(f"  {key}: {json.dumps(shown)}\n")
        sys.stdout.flush()


def pipeline_id(topic: str, value: bytes, headers: list[tuple[str, bytes]]) -> str | None:
    if topic == topics.OUTCOMES or b'"kind":"disclosure"' in value:
        rid = orjson.loads(value).get("request_id")
        return f"{topic}|{rid}" if topic != topics.OUTCOMES else rid
    return None


def relay_id(topic: str, value: bytes, headers: list[tuple[str, bytes]]) -> str | None:
    return next((v.decode() for k, v in headers if k == "bench-id"), None)


def messages(load: Load) -> list[Message]:
    """Agencies publish urgent purposes to the urgent ingress topic."""
    return [
        (
            topics.lane(topics.REQUESTS, r.purpose in URGENT_PURPOSES),
            r.subject_id.encode(),
            encode(r),
            r.request_id,
        )
        for r in load.requests
    ]


def relay_messages(load: Load, tag: str) -> list[Message]:
    return [
        (RELAY_TOPICS[0], r.subject_id.encode(), encode(r), f"{tag}-{r.request_id}")
        for r in load.requests
    ]


def calibration_ms() -> float:
    """Wall time of a fixed pure-Python workload (~0.1 s, best of 3). This machine's speed drifts (a
    shared virtual machine); noted through a run, it tells how comparable its phases are."""
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        total = 0
        for i in range(2_000_000):
            total += i % 7
        best = min(best, time.perf_counter() - t0)
    return round(best * 1000, 1)


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (Linux /proc), or None if unreadable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime (fields 14, 15)


def cpu_snapshot(pids: dict[str, int]) -> dict[str, float | None]:
    """CPU seconds so far of each labelled process (None where unreadable)."""
    return {k: cpu_seconds(pid) for k, pid in pids.items()}


def cpu_used_since(pids: dict[str, int], before: dict[str, float | None]) -> dict[str, float]:
    """CPU seconds each labelled process used since `before` (where both reads worked)."""
    return {
        k: now - then
        for k, pid in pids.items()
        if (then := before.get(k)) is not None and (now := cpu_seconds(pid)) is not None
    }


def batch_totals(metrics_urls: dict[str, str]) -> dict[str, tuple[float, float]]:
    """Per process label: (records, batches) its stages have committed so far, read from its
    /metrics (the `sharinghub_stage_batch_size` histogram); a process that does not answer
    is left out."""
    out: dict[str, tuple[float, float]] = {}
    for label, url in metrics_urls.items():
        records = batches = 0.0
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
                text = response.read().decode()
            for line in text.splitlines():
                name, _, value = line.rpartition(" ")
                if name.startswith("sharinghub_stage_batch_size_sum"):
                    records += float(value)
                elif name.startswith("sharinghub_stage_batch_size_count"):
                    batches += float(value)
        # a process that died or stopped mid-answer: its figure is missing, the run goes on
        except (OSError, http.client.HTTPException, ValueError, UnicodeDecodeError):
            continue
        out[label] = (records, batches)
    return out


def mean_batches(
    before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]]
) -> dict[str, float]:
    """Mean records per batch each process committed between two `batch_totals`."""
    means = {}
    for label, (records, batches) in after.items():
        if label not in before:  # not read at the start: its totals span its whole life
            continue
        r0, b0 = before[label]
        if batches > b0:
            means[label] = round((records - r0) / (batches - b0), 1)
    return means


def hub_pids(hub: Hub) -> dict[str, int]:
    """Process label ("policy-0", "policy-urgent-0" …) and "broker" → PID, for the processes
    this bench started."""
    pids = {label: proc.pid for label, proc in hub.children}
    process = getattr(hub.broker, "process", None)
    if process is not None:
        pids["broker"] = process.pid
    return pids


def mirrored_rounds(sides: list[str], repeats: int) -> list[tuple[int, str]]:
    """(round, side) in the order an alternated comparison runs them: the sides in order in
    even rounds and reversed in odd ones (A B, B A, A B …), so over every two rounds each side
    comes first once and a linear drift of the machine adds the same to each side's sum."""
    return [
        (i, side)
        for i in range(repeats)
        for side in (sides if i % 2 == 0 else list(reversed(sides)))
    ]


STALL_S = 60.0
"""A burst or the soak's drain stops waiting once no outcome at all arrived for this long."""


class Bench:
    def __init__(self, cfg: BenchConfig) -> None:
        self.cfg = cfg
        cfg.out_dir.mkdir(parents=True, exist_ok=True)
        self.results = Results(config={k: str(v) for k, v in cfg.__dict__.items()})
        self.relays: list[subprocess.Popen[bytes]] = []

    def run_async(self, main: Coroutine[Any, Any, T]) -> T:
        """Run one of the harness's coroutines on the loop the services run on."""
        return event_loop.run(main, self.cfg.event_loop)

    def hub(self, tracing: bool, phase: str = "rates", processes: int | None = None) -> Hub:
        data = self.cfg.out_dir / f"hub-{phase}"
        if data.exists():
            import shutil

            shutil.rmtree(data)
        settings = Settings(
            data_dir=data,
            database_url=self.cfg.database_url or f"sqlite:///{data / 'hub.db'}",
            kafka_bootstrap_servers=None,
            broker="embedded",
            tracing=tracing,
            partitions=self.cfg.partitions,
            session_timeout_ms=6000,
            event_loop=self.cfg.event_loop,  # the hub passes it on to its services
        )
        return Hub(
            settings,
            processes_per_stage=self.cfg.processes if processes is None else processes,
            urgent_processes=self.cfg.urgent_processes,
            bulk_nice=self.cfg.bulk_nice,
            extra_env={"SHARINGHUB_SESSION_TIMEOUT_MS": "6000"},
        )

    def start_relays(self, bootstrap: str) -> None:
        for i in range(4):
            self.relays.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "sharinghub.tools.bench.relay",
                        bootstrap,
                        RELAY_TOPICS[i],
                        RELAY_TOPICS[i + 1],
                        f"bench-relay-{i}",
                    ],
                    env={**os.environ, "SHARINGHUB_EVENT_LOOP": self.cfg.event_loop},
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    preexec_fn=end_with_parent(),  # ends it should the bench be killed
                )
            )

    def stop_relays(self) -> None:
        for p in self.relays:
            p.terminate()
        for p in self.relays:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        self.relays.clear()

    async def prepare(self, hub: Hub, load: Load) -> None:
        inboxes = sorted({topics.inbox_topic(r.recipient.agency_id) for r in load.requests})
        await ensure_topics(
            hub.bootstrap_servers,
            [*topics.PIPELINE_TOPICS, *inboxes],
            partitions=self.cfg.partitions,
        )
        async with Probe(hub.bootstrap_servers, [], relay_id) as p:
            await p.send_all(
                [
                    (
                        topics.CONSENT_DIRECTIVES,
                        g.directive.consent_id.encode(),
                        encode(g),
                        g.directive.consent_id,
                    )
                    for g in load.directives
                ]
            )

    async def burst(self, probe: Probe, msgs: list[Message], ids: list[str]) -> dict[str, Any]:
        t0 = time.monotonic()
        await probe.send_all(msgs)
        complete = await probe.wait_for(ids, timeout_s=max(120.0, len(ids) / 50), stall_s=STALL_S)
        last = probe.last_arrival(ids, default=t0)
        done = sum(1 for i in ids if i in probe.seen.first)
        return {
            "messages": len(ids),
            "completed": done,
            "complete": complete,
            "seconds": round(last - t0, 2),
            "per_second": round(done / max(last - t0, 1e-6)),
        }

    async def paced(
        self,
        probe: Probe,
        msgs: list[Message],
        ids: list[str],
        rate: int,
        pids: dict[str, int] | None = None,
        metrics_urls: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Latency at an offered rate and, given the processes' `pids`, the CPU they used
        meanwhile as a share of one core (all of them, and the broker alone): below capacity,
        batches are small and consumers poll, so this is far more than the rate times the
        burst's CPU per request. Given their `metrics_urls`, the mean batch each process
        committed meanwhile."""
        urls = metrics_urls or {}
        batches_before: dict[str, tuple[float, float]] = {}
        if urls:  # a batch is counted once committed, just after its outcome arrived
            await asyncio.sleep(0.5)
            batches_before = await asyncio.to_thread(batch_totals, urls)
        before, t0 = cpu_snapshot(pids or {}), time.monotonic()
        await probe.paced(msgs, rate)
        await probe.wait_for(ids, timeout_s=60)
        used, elapsed = cpu_used_since(pids or {}, before), time.monotonic() - t0
        lat = probe.latencies_ms(ids)
        out: dict[str, Any] = {
            "rate": rate,
            "count": len(ids),
            "completed": len(lat),
            "p50_ms": percentile(lat, 50),
            "p95_ms": percentile(lat, 95),
            "p99_ms": percentile(lat, 99),
        }
        if used:
            out["cpu_pct_of_one_core"] = round(sum(used.values()) / elapsed * 100, 1)
            out["broker_cpu_pct_of_one_core"] = round(used.get("broker", 0.0) / elapsed * 100, 1)
            out["cpu_pct_of_one_core_by_process"] = {
                k: round(v / elapsed * 100, 1) for k, v in used.items()
            }
        if urls:
            after = await asyncio.to_thread(batch_totals, urls)
            out["mean_batch_records"] = mean_batches(batches_before, after)
        return out

    def _rate_slices(self, total: int) -> list[tuple[int, int, int]]:
        """(rate, start, end) of the requests each offered rate uses, after warm-up and burst."""
        offset, out = 200 + self.cfg.requests, []
        for rate in self.cfg.rates:
            k = int(rate * self.cfg.rate_seconds)
            out.append((rate, offset, min(offset + k, total)))
            offset += k
        return out

    def with_hub(
        self,
        phase: str,
        measure: Callable[[Hub], Coroutine[Any, Any, T]],
        load: Load | None = None,
        *,
        tracing: bool | None = None,
        processes: int | None = None,
    ) -> T:
        """Start a hub for one phase (directives of `load` published before the services
        start), run `measure` against it, note any service that died, stop it."""
        hub = self.hub(self.cfg.tracing if tracing is None else tracing, phase, processes)
        hub.start(spawn_services=False)
        try:
            if load is not None:
                self.run_async(self.prepare(hub, load))
            hub.spawn_services()
            # measure the hub, not its start-up: every consumer has joined its group first
            late = hub.wait_ready(timeout_s=180)
            if late:
                sys.stdout.write(f"  warning: not ready after 180 s: {', '.join(late)}\n")
            result = self.run_async(measure(hub))
            dead = hub.check_alive()
            if dead:
                earlier = self.results.figures.get("services_died", [])
                self.results.put("services_died", [*earlier, *(f"{phase}: {d}" for d in dead)])
            return result
        finally:
            hub.stop()

    def run_relay(self, load: Load) -> dict[str, Any]:
        """Start a broker, the four relay processes, measure, stop both."""
        broker = EmbeddedBroker.start()
        try:
            self.run_async(
                ensure_topics(
                    broker.bootstrap_servers, RELAY_TOPICS, partitions=self.cfg.partitions
                )
            )
            self.start_relays(broker.bootstrap_servers)
            try:
                pids = {f"relay-{i}": r.pid for i, r in enumerate(self.relays)}
                pids["broker"] = broker.process.pid
                return self.run_async(self.measure_relay(broker.bootstrap_servers, load, pids))
            finally:
                self.stop_relays()
        finally:
            broker.stop()

    async def measure_relay(
        self, bootstrap: str, load: Load, relay_pids: dict[str, int]
    ) -> dict[str, Any]:
        """The bare relay: same messages, same hops, nothing else running."""
        n = self.cfg.requests
        out: dict[str, Any] = {"relay_rates": []}
        async with Probe(bootstrap, [RELAY_TOPICS[-1]], relay_id) as rp:
            rmsgs = relay_messages(load, "burst")
            await self.burst(rp, rmsgs[:200], [m[3] for m in rmsgs[:200]])
            out["relay_burst"] = await self.burst(
                rp, rmsgs[200 : 200 + n], [m[3] for m in rmsgs[200 : 200 + n]]
            )
            for rate, a, b in self._rate_slices(len(load.requests)):
                chunk = relay_messages(load, f"rate{rate}")[a:b]
                out["relay_rates"].append(
                    await self.paced(rp, chunk, [m[3] for m in chunk], rate, relay_pids)
                )
        return out

    async def measure(
        self, hub: Hub, load: Load, *, full: bool, count: bool = False
    ) -> dict[str, Any]:
        """The pipeline: warm-up, burst (with CPU per process), then (`full`) the offered
        rates and the count of lost and duplicated deliveries; `count` counts them after the
        burst alone."""
        n = self.cfg.requests
        inboxes = sorted({topics.inbox_topic(r.recipient.agency_id) for r in load.requests})
        reqs = messages(load)
        warm, burst_part = reqs[:200], reqs[200 : 200 + n]
        out: dict[str, Any] = {}
        async with Probe(hub.bootstrap_servers, [topics.OUTCOMES, *inboxes], pipeline_id) as p:
            # The warm-up also covers the services' start-up (group joins, directive catch-up).
            await self.burst(p, warm, [m[3] for m in warm])
            pids = hub_pids(hub)
            before = cpu_snapshot(pids)
            out["pipeline_burst"] = await self.burst(p, burst_part, [m[3] for m in burst_part])
            # Where the CPU went: ms of CPU per request in each process during the burst.
            out["pipeline_cpu_ms_per_request"] = {
                k: round(used * 1000 / len(burst_part), 3)
                for k, used in cpu_used_since(pids, before).items()
            }
            if not full:
                if count:
                    out["delivery_accounting"] = await self.accounting(hub, p, load)
                return out
            out["pipeline_rates"] = []
            for rate, a, b in self._rate_slices(len(reqs)):
                chunk = reqs[a:b]
                out["pipeline_rates"].append(
                    await self.paced(
                        p, chunk, [m[3] for m in chunk], rate, pids, hub.metrics_urls()
                    )
                )
            out["delivery_accounting"] = await self.accounting(hub, p, load)
        return out

    async def accounting(self, hub: Hub, p: Probe, load: Load) -> dict[str, Any]:
        """Lost and duplicated deliveries, counted from the topics themselves (read again from
        the beginning), not from what the live probe happened to see.

        When the topics cannot be read to their end the counts are reported as missing with
        the reason (never as zero), and the run's other figures are kept."""
        sent = [r.request_id for r in load.requests if r.request_id in p.sent]
        # The services are stopped first (gracefully: whatever they still send is counted).
        # The embedded broker's cost per fetch with data and per offset query grows with the
        # batches a partition holds (bench/embedded_broker_cost.py): with the services still
        # running after a 10-minute soak it stayed saturated and a re-read did not finish in
        # 600 s. Stopping waits for the processes, so off the event loop.
        await asyncio.to_thread(hub.stop_services)
        try:
            truth = await recount(hub.bootstrap_servers, p.watch, pipeline_id, timeout_s=600)
        except TimeoutError as exc:
            sys.stderr.write(f"  delivery accounting not completed: {exc}\n")
            return {"requests_sent": len(sent), "not_counted": str(exc)}
        outcome_counts = truth.per_topic[topics.OUTCOMES]
        inbox_dupes = sum(
            1
            for t, c in truth.per_topic.items()
            if t != topics.OUTCOMES
            for v in c.values()
            if v > 1
        )
        return {
            "requests_sent": len(sent),
            "lost": sum(1 for r in sent if outcome_counts[r] == 0),
            "duplicated_outcomes": sum(1 for r in sent if outcome_counts[r] > 1),
            "duplicated_inbox_messages": inbox_dupes,
            # in the topic but not seen by the live probe (its latency is then unknown)
            "missed_by_live_probe": sum(
                1 for r in sent if outcome_counts[r] and r not in p.seen.first
            ),
        }

    async def urgent_lane(self, hub: Hub) -> dict[str, Any]:
        bulk = generate(
            max(3000, self.cfg.requests),
            bulk_only=True,
            id_prefix="bulk",
            narrative_words=self.cfg.narrative_words,
        )
        urgent_idle = generate(100, urgent_only=True, id_prefix="urg-idle")
        urgent_busy = generate(100, urgent_only=True, id_prefix="urg-busy")
        await self.prepare(hub, bulk)
        # inbox topics are created on an agency's first delivery (a one-off second or so);
        # create the urgent recipients' now so the figure is the lane, not that one-off
        await self.prepare(hub, urgent_idle)
        await asyncio.sleep(5)  # let the consent stage apply the directives just published
        inboxes = sorted(
            {
                topics.inbox_topic(r.recipient.agency_id)
                for r in [*bulk.requests, *urgent_busy.requests]
            }
        )
        async with Probe(hub.bootstrap_servers, [topics.OUTCOMES, *inboxes], pipeline_id) as p:
            idle = messages(urgent_idle)
            await p.paced(idle, 20)
            await p.wait_for([m[3] for m in idle], 60)
            idle_lat = p.latencies_ms([m[3] for m in idle])
            bulk_msgs = messages(bulk)
            await p.send_all(bulk_msgs)  # a backlog the pipeline needs seconds to drain
            busy = messages(urgent_busy)
            await p.paced(busy, 20)
            await p.wait_for([m[3] for m in busy], 120)
            busy_lat = p.latencies_ms([m[3] for m in busy])
            await p.wait_for([m[3] for m in bulk_msgs], 300)
            # "Saturated" holds only while the backlog drains: count the urgent requests
            # offered before its last outcome arrived.
            backlog_end = max((p.seen.first.get(m[3], math.inf) for m in bulk_msgs), default=0.0)
            during = sum(1 for m in busy if p.sent.get(m[3], math.inf) < backlog_end)
        return {
            "urgent_offered_during_backlog": during,
            "urgent_offered": len(busy),
            "unloaded_p99_ms": percentile(idle_lat, 99),
            "unloaded_p50_ms": percentile(idle_lat, 50),
            "saturated_p99_ms": percentile(busy_lat, 99),
            "saturated_p50_ms": percentile(busy_lat, 50),
            "bulk_backlog": len(bulk_msgs),
        }

    async def idle_cpu(self, hub: Hub) -> dict[str, Any]:
        """What a hub with nothing to do costs: each process's share of one core."""
        await asyncio.sleep(3.0)  # past the start-up's last group and metadata requests
        pids = hub_pids(hub)
        before, t0 = cpu_snapshot(pids), time.monotonic()
        await asyncio.sleep(self.cfg.idle_seconds)
        elapsed = time.monotonic() - t0
        shares = {
            k: round(used / elapsed * 100, 1) for k, used in cpu_used_since(pids, before).items()
        }
        return {
            "seconds": round(elapsed, 1),
            "share_of_one_core_pct": shares,
            "total_pct": round(sum(shares.values()), 1),
        }

    async def soak(self, hub: Hub) -> dict[str, Any]:
        n = int(self.cfg.soak_rate * self.cfg.soak_seconds)
        # Clients recur over a soak; twice the consent cache's default capacity, so the
        # cache evicts throughout (memory must stay flat through that too).
        load = generate(
            n,
            clients=min(max(1, n // 4), 10_000),
            id_prefix="soak",
            narrative_words=self.cfg.narrative_words,
        )
        await self.prepare(hub, load)
        samples: list[dict[str, float | None]] = []
        pids = {k: pid for k, pid in hub_pids(hub).items() if k != "broker"}

        async def sample() -> None:
            while True:
                samples.append({k: rss_mb(pid) for k, pid in pids.items()})
                await asyncio.sleep(5)

        sampler = asyncio.create_task(sample())
        inboxes = sorted({topics.inbox_topic(r.recipient.agency_id) for r in load.requests})
        ids = [r.request_id for r in load.requests]
        async with Probe(hub.bootstrap_servers, [topics.OUTCOMES, *inboxes], pipeline_id) as p:
            await p.paced(messages(load), self.cfg.soak_rate)
            offered_until = time.monotonic()
            # Drain: a backlog left at the end is reported as such, not counted as lost.
            drained = await p.wait_for(ids, max(120.0, self.cfg.soak_seconds), stall_s=STALL_S)
            last = p.last_arrival(ids, default=offered_until)
            drain_s = round(max(0.0, last - offered_until), 1)
            sampler.cancel()  # before the services stop for the count
            accounting = await self.accounting(hub, p, load)
        # The live reader can miss an arrival the recount finds: then the backlog did drain.
        drained = drained or accounting.get("lost") == 0
        # RSS "flat" means no growth once warm: compare the middle of the soak with its end.
        warm = samples[min(len(samples) - 1, max(1, len(samples) // 10))]
        middle, end = samples[len(samples) // 2], samples[-1]
        if not drained and "lost" in accounting:
            accounting["not_completed_when_drain_ended"] = accounting.pop("lost")
        return {
            "seconds": self.cfg.soak_seconds,
            "rate": self.cfg.soak_rate,
            "drained": drained,
            "drain_seconds_after_offering": drain_s,
            "rss_mb_after_warmup": warm,
            "rss_mb_middle": middle,
            "rss_mb_end": end,
            "rss_mb_max": {k: max((s[k] or 0) for s in samples) for k in pids},
            "rss_growth_mb_second_half": {
                k: round((end[k] or 0) - (middle[k] or 0), 1) for k in pids
            },
            "rss_mb_every_5_s": samples,
            **accounting,
        }

    def run(self) -> Results:
        cfg = self.cfg
        if cfg.soak_only:
            sys.stdout.write(f"soak for {cfg.soak_seconds:.0f} s …\n")
            self.results.put("soak", self.with_hub("soak", self.soak))
            self.summarise()
            return self.results
        total = 200 + cfg.requests + sum(int(r * cfg.rate_seconds) for r in cfg.rates)
        sys.stdout.write(f"generating {total} fictional requests …\n")
        load = generate(
            total, narrative_words=cfg.narrative_words, directives_per_client=cfg.directives
        )
        self.results.put("mean_request_bytes", round(load.mean_request_bytes))
        # The relay first, then the pipeline, each on an embedded broker of its own with
        # nothing else running: neither pays for the other's idle consumers, and neither
        # inherits the other's data (the embedded broker slows down as its topics fill).
        calibration = [calibration_ms()]
        sys.stdout.write("measuring the bare relay (on a broker of its own) …\n")
        for key, value in self.run_relay(load).items():
            self.results.put(key, value)
        calibration.append(calibration_ms())
        # Every phase gets a fresh hub (and so a fresh broker): no figure depends on the
        # data earlier phases left behind.
        sys.stdout.write("measuring the pipeline (four services) …\n")
        rates = self.with_hub("rates", lambda h: self.measure(h, load, full=True), load)
        for key, value in rates.items():
            self.results.put(key, value)
        calibration.append(calibration_ms())
        if cfg.urgent:
            sys.stdout.write("urgent lane under a bulk backlog (fresh hub) …\n")
            self.results.put("urgent_lane", self.with_hub("urgent", self.urgent_lane))
        if cfg.idle_seconds:
            sys.stdout.write(f"idle hub for {cfg.idle_seconds:.0f} s (fresh hub) …\n")
            self.results.put("idle_cpu", self.with_hub("idle", self.idle_cpu))
        if cfg.soak_seconds:
            sys.stdout.write(f"soak for {cfg.soak_seconds:.0f} s (fresh hub) …\n")
            self.results.put("soak", self.with_hub("soak", self.soak))
        if cfg.tracing_overhead and cfg.tracing:
            self.results.put("tracing", self.tracing_overhead())
        if cfg.scaling_processes:
            sys.stdout.write(
                f"scaling: {cfg.processes} against {cfg.scaling_processes} bulk processes per "
                "stage (fresh hubs) …\n"
            )
            self.results.put("scaling", self.scaling())
        calibration.append(calibration_ms())
        # before the relay, after it, after the pipeline's burst and rates, at the end
        self.results.put("machine_calibration_ms", calibration)
        self.summarise()
        return self.results

    def alternated_bursts(
        self, label: str, sides: dict[str, dict[str, Any]], repeats: int, *, count: bool = False
    ) -> dict[str, list[dict[str, Any]]]:
        """The same burst on fresh hubs that differ only as `sides` says (keyword arguments of
        `with_hub`: tracing, processes), `repeats` times each, in mirrored rounds (A B, B A,
        A B …): a steady drift of the machine's speed, or a cost of coming first, weighs on
        every side alike over each pair of rounds. Each side's `measure` results, in order."""
        cfg = self.cfg
        load = generate(
            200 + cfg.requests,
            id_prefix=label,
            narrative_words=cfg.narrative_words,
            directives_per_client=cfg.directives,
        )
        runs: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
        for i, side in mirrored_rounds(list(sides), repeats):
            sys.stdout.write(f"  {label} {side} ({i + 1}/{repeats}) …\n")
            sys.stdout.flush()
            runs[side].append(
                self.with_hub(
                    f"{label}-{side}".replace(" ", "-"),
                    lambda h: self.measure(h, load, full=False, count=count),
                    load,
                    **sides[side],
                )
            )
        return runs

    def tracing_overhead(self) -> dict[str, Any]:
        """Tracing on against off: the same burst, alternated (on, off, off, on …)."""
        cfg = self.cfg
        runs = self.alternated_bursts(
            "tracing", {"on": {"tracing": True}, "off": {"tracing": False}}, cfg.tracing_repeats
        )
        on, off = runs["on"], runs["off"]
        return {
            "repeats": cfg.tracing_repeats,
            "on_per_second": [r["pipeline_burst"]["per_second"] for r in on],
            "off_per_second": [r["pipeline_burst"]["per_second"] for r in off],
            "on_cpu_ms_per_request": round(_mean_cpu(on), 3),
            "off_cpu_ms_per_request": round(_mean_cpu(off), 3),
            # throughput lost with tracing on, and CPU added per request
            "overhead_throughput_pct": _pct_more(_mean_rate(off), _mean_rate(on)),
            "overhead_cpu_pct": _pct_more(_mean_cpu(on), _mean_cpu(off)),
        }

    def scaling(self) -> dict[str, Any]:
        """`processes` against `scaling_processes` bulk processes per stage: the same burst,
        alternated, with every delivery of every burst counted (more processes share each
        lane's partitions, so a fault in that sharing would show as loss or duplicates)."""
        cfg = self.cfg
        counts = (cfg.processes, cfg.scaling_processes)
        runs = self.alternated_bursts(
            "scaling",
            {f"{n} per stage": {"processes": n} for n in counts},
            cfg.scaling_repeats,
            count=True,
        )
        per = {n: runs[f"{n} per stage"] for n in counts}
        base, more = (_mean_rate(per[n]) for n in counts)
        accounted = [r["delivery_accounting"] for rs in per.values() for r in rs]
        return {
            "processes": list(counts),
            "repeats": cfg.scaling_repeats,
            "per_second": {
                str(n): [r["pipeline_burst"]["per_second"] for r in per[n]] for n in counts
            },
            "cpu_ms_per_request": {str(n): round(_mean_cpu(per[n]), 3) for n in counts},
            # how each layout's CPU split over its processes (its last burst)
            "cpu_ms_per_request_by_process": {
                str(n): per[n][-1]["pipeline_cpu_ms_per_request"] for n in counts
            },
            "speedup": round(more / base, 2) if base else None,
            "delivery_accounting": sum_accounting(accounted),
        }

    def summarise(self) -> None:
        f = self.results.figures
        pipe, relay = f.get("pipeline_burst", {}), f.get("relay_burst", {})
        if pipe and relay:
            f["throughput_ratio"] = round(pipe["per_second"] / max(relay["per_second"], 1), 3)
        path = self.cfg.out_dir / "bench.json"
        path.write_text(json.dumps(self.results.__dict__, indent=2))
        from sharinghub.tools.bench.report import plot, table

        sys.stdout.write("\n" + table(f) + "\n")
        png = plot(f, self.cfg.out_dir / "latency.png")
        sys.stdout.write(f"\nresults: {path}" + (f", plot: {png}" if png else "") + "\n")


def _pct_more(value: float, reference: float) -> float | None:
    """How much more `value` is than `reference`, in % (None without a reference: a burst
    that completed nothing, or CPU times that could not be read)."""
    return round((value - reference) / reference * 100, 1) if reference else None


def _mean_rate(runs: list[dict[str, Any]]) -> float:
    return statistics.mean(float(r["pipeline_burst"]["per_second"]) for r in runs)


def _mean_cpu(runs: list[dict[str, Any]]) -> float:
    """Mean over `runs` of the CPU all processes used per request in the burst."""
    return statistics.mean(float(sum(r["pipeline_cpu_ms_per_request"].values())) for r in runs)


def sum_accounting(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Several bursts' delivery counts as one; any burst not counted is reported as such."""
    missing = [a["not_counted"] for a in parts if "not_counted" in a]
    keys = (
        "requests_sent",
        "lost",
        "duplicated_outcomes",
        "duplicated_inbox_messages",
        "missed_by_live_probe",
    )
    total = {k: sum(int(a.get(k, 0)) for a in parts) for k in keys}
    if missing:
        return {"requests_sent": total["requests_sent"], "not_counted": "; ".join(missing)}
    return total
