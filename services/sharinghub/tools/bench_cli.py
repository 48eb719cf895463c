"""`sharinghub bench`: measure the pipeline against the machine's own limit (a bare relay)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sharinghub.tools.arg_types import at_least, seconds

# Identical hubs differ by ±10 % in CPU per request from burst to burst on this kind of
# machine, as much as the ≤ 10 % target: two bursts a side could not tell the two apart.
TRACING_REPEATS = 4

if TYPE_CHECKING:  # the runner needs the bench extras, checked when the command runs
    from sharinghub.tools.bench.runner import BenchConfig


def cmd_bench(args: argparse.Namespace) -> int:
    try:
        import faker  # noqa: F401
    except ImportError:
        print("error: the benchmark needs its extras: pip install -e '.[bench]'")
        return 2
    from sharinghub.runtime import event_loop
    from sharinghub.runtime.settings import Settings
    from sharinghub.tools.bench.runner import Bench, BenchConfig

    cfg = BenchConfig(
        # the services and relays read the same variable; a missing uvloop stops the run here
        event_loop=event_loop.loop_name(Settings().event_loop),
        requests=args.requests,
        rates=tuple(args.rates),
        rate_seconds=args.rate_seconds,
        narrative_words=args.narrative_words,
        directives=(args.directives, args.directives) if args.directives else (5, 10),
        processes=args.processes,
        urgent_processes=not args.shared_urgent_lane,
        **({} if args.bulk_nice is None else {"bulk_nice": args.bulk_nice}),
        tracing=not args.no_tracing,
        tracing_overhead=not args.no_tracing and not args.quick,
        tracing_repeats=args.tracing_repeats,
        scaling_processes=scaling_processes(args),
        scaling_repeats=args.scaling_repeats,
        urgent=not args.quick,
        idle_seconds=(0.0 if args.quick else 10.0)
        if args.idle_seconds is None
        else args.idle_seconds,
        soak_seconds=args.soak,
        soak_rate=args.soak_rate,
        soak_only=args.soak_only,
        database_url=args.database_url,
        out_dir=Path(args.out),
        partitions=args.partitions,
    )
    problem = config_problem(cfg)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    print(
        "sharinghub bench: embedded broker, 4 services as processes"
        f"{'' if args.shared_urgent_lane else ' (+1 urgent-lane process each)'}, audit ledger and "
        f"consent store on {'the given database' if args.database_url else 'SQLite'}, "
        f"tracing {'on' if cfg.tracing else 'off'}, event loop {cfg.event_loop}; a bare 4-hop "
        "relay on the same loop in the same run."
    )
    results = Bench(cfg).run()
    return 1 if "services_died" in results.figures else 0


def config_problem(cfg: BenchConfig) -> str | None:
    """Why these options cannot make a run (checked before anything starts), or None."""
    for option, n in (
        ("--processes", cfg.processes),
        ("--scaling-processes", cfg.scaling_processes),
    ):
        if n > cfg.partitions:
            return (
                f"{option} {n} is more than --partitions {cfg.partitions}: a stage's extra "
                "processes would have no partition to read (raise --partitions)"
            )
    if cfg.soak_only and cfg.scaling_processes:
        return "--scaling-processes has no phase to run with --soak-only"
    if cfg.scaling_processes == cfg.processes:
        return (
            f"--scaling-processes {cfg.scaling_processes} is the --processes of the run: the "
            "scaling phase compares two different numbers of processes per stage"
        )
    if cfg.soak_only and not cfg.soak_seconds:
        return "--soak-only needs --soak SECONDS"
    return None


def scaling_processes(args: argparse.Namespace) -> int:
    """Bulk processes per stage the scaling phase compares with --processes (0: no phase).
    A full run with one process per stage and at least two partitions compares 1 with 2;
    --quick, or a run with more processes, only when asked."""
    if args.scaling_processes is not None:
        return int(args.scaling_processes)
    full_run = not args.quick and not args.soak_only
    return 2 if full_run and args.processes == 1 and args.partitions >= 2 else 0


def register(sub: Any) -> None:
    b = sub.add_parser("bench", help="throughput and latency against a bare relay, one run")
    b.add_argument(
        "--requests", type=at_least(1), default=4000, help="burst size for max throughput"
    )
    b.add_argument(
        "--rates",
        type=at_least(1),
        nargs="+",
        default=[200, 500, 1000],
        help="offered loads (requests/s) for the latency curve",
    )
    b.add_argument("--rate-seconds", type=seconds(), default=8.0, help="seconds per offered rate")
    b.add_argument(
        "--narrative-words",
        type=at_least(1),
        default=150,
        help="words in each request's case narrative (default 150)",
    )
    b.add_argument(
        "--directives", type=at_least(0), help="consent directives per client (default 5–10)"
    )
    b.add_argument(
        "--processes",
        type=at_least(1),
        default=1,
        help="bulk processes per stage (at most --partitions)",
    )
    b.add_argument(
        "--shared-urgent-lane",
        action="store_true",
        help="serve the urgent lane from the bulk processes (as `up` without "
        "--urgent-processes) instead of one urgent process per stage",
    )
    b.add_argument(
        "--bulk-nice",
        type=int,
        choices=range(20),
        metavar="0-19",
        help="CPU niceness of bulk processes beside urgent-lane ones (default: as "
        "`up --urgent-processes`)",
    )
    b.add_argument(
        "--partitions", type=at_least(1), default=3, help="partitions per hub topic (default 3)"
    )
    b.add_argument("--no-tracing", action="store_true", help="run the services without tracing")
    b.add_argument(
        "--tracing-repeats",
        type=at_least(1),
        default=TRACING_REPEATS,
        help="tracing overhead: bursts on fresh hubs with tracing on and off, in mirrored "
        f"rounds, this many times each (default {TRACING_REPEATS})",
    )
    b.add_argument(
        "--scaling-processes",
        type=at_least(0),
        help="scaling: bursts with --processes and with this many bulk processes per stage, "
        "alternated (default 2 when --processes is 1 and --partitions at least 2; 0 skips it, "
        "and so does --quick unless this is given)",
    )
    b.add_argument(
        "--scaling-repeats",
        type=at_least(1),
        default=2,
        help="scaling: bursts per number of processes, alternated (default 2)",
    )
    b.add_argument(
        "--quick",
        action="store_true",
        help="skip the urgent-lane, idle, tracing and scaling phases",
    )
    b.add_argument(
        "--idle-seconds",
        type=seconds(zero_ok=True),
        help="seconds an idle hub's CPU is measured, per process (default 10; 0 or --quick "
        "skips it)",
    )
    b.add_argument(
        "--soak",
        type=seconds(zero_ok=True),
        default=0.0,
        help="soak seconds (RSS per service; 0, the default, skips it)",
    )
    b.add_argument("--soak-only", action="store_true", help="only the soak (with --soak SECONDS)")
    b.add_argument(
        "--soak-rate",
        type=at_least(1),
        default=50,
        help="requests/s during the soak (default 50: the embedded broker slows down as its "
        "topics fill, see docs/performance.md)",
    )
    b.add_argument("--database-url", help="e.g. postgresql://postgres@127.0.0.1:5432/test")
    b.add_argument("--out", default="bench-results", help="folder for bench.json and the plot")
    b.set_defaults(func=cmd_bench)
