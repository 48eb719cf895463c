"""Printable table and PNG plot of a bench run."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _fmt(v: Any) -> str:
    return "-" if v is None else str(v)


def table(f: dict[str, Any]) -> str:
    rows = ["figure                                  pipeline        relay"]
    pipe, relay = f.get("pipeline_burst", {}), f.get("relay_burst", {})
    rows.append(
        f"max sustained msgs/s                    {_fmt(pipe.get('per_second')):<15} "
        f"{_fmt(relay.get('per_second'))}"
    )
    if "throughput_ratio" in f:
        rows.append(
            f"pipeline / relay                        {f['throughput_ratio']:.1%}"
            "          (target ≥ 25%)"
        )
    for p, r in zip(f.get("pipeline_rates", []), f.get("relay_rates", []), strict=False):
        rows.append(
            f"p50/p95/p99 ms at {p['rate']:>5}/s            "
            f"{_fmt(p['p50_ms'])}/{_fmt(p['p95_ms'])}/{_fmt(p['p99_ms']):<8} "
            f"{_fmt(r['p50_ms'])}/{_fmt(r['p95_ms'])}/{_fmt(r['p99_ms'])}"
        )
        if "cpu_pct_of_one_core" in p:
            rows.append(
                f"  CPU meanwhile, % of one core (broker) {_cpu_share(p):<15} {_cpu_share(r)}"
            )
        if means := p.get("mean_batch_records"):
            rows.append(
                "  mean batch (records) per process     "
                + ", ".join(f"{k} {v}" for k, v in means.items())
            )
    if cpu := f.get("pipeline_cpu_ms_per_request"):
        rows.append(
            "CPU ms per request (burst)              "
            + ", ".join(f"{k} {v}" for k, v in cpu.items())
        )
    if "urgent_lane" in f:
        u = f["urgent_lane"]
        rows.append(
            f"urgent p99 ms unloaded / saturated      {_fmt(u['unloaded_p99_ms'])} / "
            f"{_fmt(u['saturated_p99_ms'])}   (target ≤ 2× unloaded)"
        )
        if "urgent_offered" in u:
            rows.append(
                f"  urgent offered while the backlog drained  {u['urgent_offered_during_backlog']}"
                f" of {u['urgent_offered']} (of a {u['bulk_backlog']}-request bulk backlog)"
            )
    if idle := f.get("idle_cpu"):
        shares = idle["share_of_one_core_pct"]
        services = [v for k, v in shares.items() if k != "broker"]
        rows.append(
            f"idle hub CPU, % of one core             {idle['total_pct']} in all (broker "
            f"{_fmt(shares.get('broker'))}; services {min(services, default=0)}–"
            f"{max(services, default=0)} each)"
        )
    if t := f.get("tracing"):
        rows.append(
            f"tracing overhead                        {_pct(t['overhead_throughput_pct'])} "
            f"throughput, {_pct(t['overhead_cpu_pct'])} CPU per request   (target ≤ 10%; "
            f"same load on/off, {t['repeats']}× alternated)"
        )
    if sc := f.get("scaling"):
        a, b = (str(n) for n in sc["processes"])
        rates = sc["per_second"]
        rows.append(
            f"scaling, bulk processes per stage {a} → {b}  "
            f"{'/'.join(map(str, rates[a]))} → {'/'.join(map(str, rates[b]))} requests/s "
            f"(×{_fmt(sc['speedup'])}); CPU ms per request {sc['cpu_ms_per_request'][a]} → "
            f"{sc['cpu_ms_per_request'][b]}   ({sc['repeats']}× alternated)"
        )
        rows.append(
            f"  scaling bursts' deliveries            {_counted(sc['delivery_accounting'])}"
        )
    if soak := f.get("soak"):
        warm, end = soak["rss_mb_after_warmup"], soak["rss_mb_end"]
        middle = soak.get("rss_mb_middle", warm)
        rows.append(
            f"soak {soak['seconds']:.0f} s at {soak['rate']}/s, RSS MB warm → middle → end   "
            + ", ".join(f"{k} {warm.get(k)}→{middle.get(k)}→{end.get(k)}" for k in end)
        )
        rows.append(f"  soak deliveries                       {_counted(soak)}")
        if not soak.get("drained", True):
            rows.append(
                "soak backlog not drained: "
                f"{soak.get('not_completed_when_drain_ended')} requests without an outcome yet"
            )
    if cal := f.get("machine_calibration_ms"):
        drift = (max(cal) - min(cal)) / min(cal)
        rows.append(
            f"machine speed through the run           {' → '.join(map(str, cal))} ms "
            f"(fixed workload; spread {drift:.0%}"
            + (": phases not strictly comparable)" if drift > 0.15 else ")")
        )
    if "delivery_accounting" in f:
        rows.append(f"lost / duplicated outcomes / inbox      {_counted(f['delivery_accounting'])}")
    return "\n".join(rows)


def _pct(v: Any) -> str:
    """A percentage, or "-" where it could not be worked out."""
    return "-" if v is None else f"{v}%"


def _cpu_share(rate_row: dict[str, Any]) -> str:
    if "cpu_pct_of_one_core" not in rate_row:
        return "-"
    return f"{rate_row['cpu_pct_of_one_core']} ({rate_row['broker_cpu_pct_of_one_core']})"


def _counted(a: dict[str, Any]) -> str:
    """Lost / duplicated outcomes / duplicated inbox messages of `requests_sent`, or why they
    could not be counted."""
    if "not_counted" in a:
        return f"NOT COUNTED ({a['not_counted']})"
    lost = a.get("lost", a.get("not_completed_when_drain_ended"))
    tail = "" if "lost" in a else " (backlog not drained: not yet completed, not lost)"
    return (
        f"{lost} / {a['duplicated_outcomes']} / {a['duplicated_inbox_messages']} "
        f"of {a['requests_sent']}{tail}"
    )


def plot(f: dict[str, Any], path: Path) -> Path | None:
    """Latency against offered load for pipeline and relay (needs matplotlib: `.[bench]`)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for key, label in (("pipeline_rates", "sharinghub pipeline"), ("relay_rates", "bare relay")):
        pts = f.get(key, [])
        for q, style in (("p50_ms", "-o"), ("p99_ms", "--s")):
            xs = [p["rate"] for p in pts if p[q] is not None]
            ys = [p[q] for p in pts if p[q] is not None]
            ax.plot(xs, ys, style, label=f"{label} {q[:3]}")
    ax.set_xlabel("offered load (requests/s)")
    ax.set_ylabel("end-to-end latency (ms)")
    ax.set_yscale("log")
    ax.set_title("sharinghub: latency against offered load")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
