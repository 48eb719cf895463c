"""`sharinghub` command line: run the hub, run scenarios, one service, migrations, keys."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sharinghub.runtime import event_loop
from sharinghub.tools.arg_types import at_least, seconds, tcp_port

if TYPE_CHECKING:
    from sharinghub.runtime.settings import Settings
    from sharinghub.tools.hub import Hub

DEMO_FILE = Path(__file__).parent / "tools" / "demo_scenarios.jsonl"


def _settings() -> Settings:
    from sharinghub.runtime.settings import Settings

    return Settings()


def cmd_run(args: argparse.Namespace) -> int:
    from sharinghub.tools.service import run_service

    return run_service(args.service)


def _hub_or_external(settings, processes: int = 1):  # type: ignore[no-untyped-def]
    """A running hub to talk to: the external one if KAFKA_BOOTSTRAP_SERVERS is set, else ours."""
    from sharinghub.tools.hub import Hub

    if settings.kafka_bootstrap_servers:
        return None, nullcontext()
    hub = Hub(settings, processes_per_stage=processes)
    return hub, hub


@contextmanager
def _console(settings: Settings, port: int) -> Iterator[str | None]:
    """The governance console beside the hub, when the operator configured tokens."""
    from sharinghub.governance.app import ConsoleServer, create_console_app
    from sharinghub.governance.auth import tokens_from_env
    from sharinghub.runtime.db import create_engine_for

    tokens = tokens_from_env()
    if not tokens:
        yield None
        return
    engine = create_engine_for(settings.database_url)
    server = ConsoleServer(create_console_app(engine, tokens), port=port).start()
    try:
        yield server.url
    finally:
        server.stop()
        engine.dispose()


def _wait_until_ready(hub: Hub, timeout_s: float = 180.0, show: bool = True) -> bool:
    """Wait for (and show) the services joining their consumer groups, so the first requests
    are not held up by it; False if one exited meanwhile."""
    from sharinghub.tools.hub import ServiceExited

    t0 = time.monotonic()
    total = len(hub.metrics_urls())
    # A terminal gets one line that counts up; a log file or CI output a line every 15 s
    # (carriage returns would run together there).
    live = sys.stdout.isatty()
    last_line = t0
    shown = -1

    def progress(ready: int, total: int) -> None:
        nonlocal last_line, shown
        if not show:
            return
        if live:
            if ready != shown:
                shown = ready
                print(f"\r  services   {ready} of {total} ready", end="", flush=True)
        elif time.monotonic() - last_line >= 15:
            last_line = time.monotonic()
            print(f"  services   {ready} of {total} ready ({last_line - t0:.0f} s) …", flush=True)

    progress(0, total)
    try:
        late = hub.wait_ready(timeout_s, on_progress=progress)
    except ServiceExited as exc:
        print(f"\nerror: {exc}" if live else f"error: {exc}", file=sys.stderr)
        return False
    if show:
        took = f"({time.monotonic() - t0:.0f} s)"
        print(f" {took}" if live else f"  services   {total - len(late)} of {total} ready {took}")
    if late:
        print(
            f"warning: not ready after {timeout_s:.0f} s: {', '.join(late)}; they go on "
            f"starting (see {hub.log_dir()}/)",
            file=sys.stderr,
        )
    return True


def cmd_up(args: argparse.Namespace) -> int:
    from sharinghub.tools.hub import Hub

    settings = _settings()
    if args.processes > settings.partitions:
        print(
            f"error: --processes {args.processes} is more than the {settings.partitions} "
            "partitions per topic: a stage's extra processes would have no partition to read "
            "(raise SHARINGHUB_PARTITIONS before the topics are created)",
            file=sys.stderr,
        )
        return 2
    loop = event_loop.loop_name(settings.event_loop)  # before anything starts: uvloop missing?
    hub = Hub(settings, processes_per_stage=args.processes, urgent_processes=args.urgent_processes)
    print("starting sharinghub (broker, database schema, 4 services) …", flush=True)
    with hub, _console(settings, args.console_port) as console_url:
        print(f"  broker     {hub.broker.kind} at {hub.bootstrap_servers}")  # type: ignore[union-attr]
        print(f"  database   {settings.database_url}")
        print(f"  event loop {loop} (SHARINGHUB_EVENT_LOOP={settings.event_loop})")
        print(f"  logs       {hub.log_dir()}/")
        print(f"  traces     {settings.resolved_trace_file()}")
        print(f"  console    {console_url or 'off (set SHARINGHUB_GOVERNANCE_TOKENS=name:token)'}")
        if not _wait_until_ready(hub):
            return 1
        # The banner is inside the try: a signal sent as soon as its last line is read can
        # arrive before print() returns.
        try:
            print("\nsharinghub is up. In another terminal:")
            print(
                f"  KAFKA_BOOTSTRAP_SERVERS={hub.bootstrap_servers} "
                "sharinghub scenario run FILE.jsonl"
            )
            print("Ctrl-C stops everything.", flush=True)
            while True:
                dead = hub.check_alive()
                if dead:
                    print(
                        f"error: service exited: {', '.join(dead)}; see {hub.log_dir()}/",
                        file=sys.stderr,
                    )
                    return 1
                time.sleep(1)
        except KeyboardInterrupt:
            print("\nstopping …", flush=True)
    return 0


def _print_row(r) -> None:  # type: ignore[no-untyped-def]
    mark = "ok  " if r.matched else "DIFF"
    cats = ",".join(r.allowed_categories) or "-"
    print(f"  {mark} {r.id:<44} {r.outcome or 'none':<17} {cats}", flush=True)
    for d in r.differences:
        print(f"         ↳ {d}", flush=True)


def _run_file(path: Path, as_json: bool, timeout_s: float, intro: bool) -> int:
    from sharinghub.tools.scenarios import (
        ScenarioFileError,
        load_scenarios,
        new_nonce,
        run_scenarios,
    )

    try:
        scenarios = load_scenarios(path, new_nonce())
    except (OSError, ScenarioFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    settings = _settings()
    hub, ctx = _hub_or_external(settings)
    if not as_json and hub is not None:
        print("starting an embedded hub for this run (broker + 4 services) …", flush=True)
    with ctx:
        if hub is not None and not _wait_until_ready(hub, show=not as_json):
            return 1
        bootstrap = hub.bootstrap_servers if hub else str(settings.kafka_bootstrap_servers)
        if intro and not as_json:
            print(
                f"publishing {len(scenarios)} scenarios from {path.name}; outcomes as they "
                "arrive:\n",
                flush=True,
            )
        results = asyncio.run(
            run_scenarios(
                bootstrap, scenarios, timeout_s=timeout_s, on_result=None if as_json else _print_row
            )
        )
    matched = sum(r.matched for r in results)
    summary = {"total": len(results), "matched": matched, "differing": len(results) - matched}
    if as_json:
        print(
            json.dumps({"scenarios": [r.as_json() for r in results], "summary": summary}, indent=2)
        )
    else:
        print(f"\n{matched}/{len(results)} scenarios matched their expected outcome.")
    return 0 if matched == len(results) else 1


def cmd_scenario(args: argparse.Namespace) -> int:
    return _run_file(Path(args.file), args.json, args.timeout, intro=True)


def cmd_demo(args: argparse.Namespace) -> int:
    print(
        "sharinghub demo — twelve fictional sharing requests between agencies (social care,\n"
        "health, police, schools, courts …) travel through consent → policy → redaction →\n"
        "delivery on a real Kafka-compatible broker. Each line shows the outcome the hub\n"
        "reached and the data categories the recipient received.\n",
        flush=True,
    )
    code = _run_file(Path(args.file), False, args.timeout, intro=True)
    hub = "sharinghub" if Path(sys.argv[0]).name == "sharinghub" else sys.argv[0]
    print(
        "\nWhat to look at next (the hub has stopped; its records stay in .sharinghub/):\n"
        f"  {hub} audit verify               the tamper-evident log of every decision\n"
        f"  {hub} report totals --by outcome  what was delivered, refused, sent to review\n"
        f"  {hub} trace REQUEST_ID           one request's path through the four services\n"
        "                                   (request ids: `grep -o 'ex-01[^\"]*' "
        ".sharinghub/traces.jsonl | head -1`)\n"
        f"  {hub} up                          run the hub and send your own scenarios"
    )
    return code


def cmd_db(args: argparse.Namespace) -> int:
    from sharinghub.runtime.schema import upgrade

    settings = _settings()
    upgrade(settings.database_url, lock_dir=settings.data_dir)
    print(f"database at newest schema: {settings.database_url}")
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    from sharinghub.runtime.stamps import StageKeys

    path = _settings().resolved_keys_file()
    existed = path.exists()
    StageKeys.generate(path)
    print(f"stage keys {'already exist' if existed else 'written'}: {path}")
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    from sharinghub.runtime.settings import Settings

    for name, f in Settings.model_fields.items():
        env = f"SHARINGHUB_{name.upper()}"
        alias = getattr(f.validation_alias, "choices", None)
        if alias:
            env = " / ".join(str(a) for a in alias)
        print(f"{env:<55} default={f.default!r}\n    {f.description}")
    return 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from sharinghub.delivery.ledger import AuditLedger
    from sharinghub.runtime.db import create_engine_for

    settings = _settings()
    engine = create_engine_for(settings.database_url)
    report = AuditLedger(engine).verify()
    engine.dispose()
    if args.json:
        print(json.dumps(report.__dict__, indent=2))
    elif report.ok:
        print(
            f"audit ledger intact: {report.rows_checked} rows, head #{report.head_seq} "
            f"{report.head_hash[:16]}…"
        )
    else:
        print(
            f"AUDIT LEDGER TAMPERED: {report.problem} (first bad row: #{report.first_bad_seq}; "
            f"{report.rows_checked} rows checked)",
            file=sys.stderr,
        )
    return 0 if report.ok else 1


def cmd_review_list(args: argparse.Namespace) -> int:
    from sharinghub.policy.reviews import ReviewStore
    from sharinghub.runtime.db import create_engine_for
    from sharinghub.runtime.stage import utcnow

    settings = _settings()
    engine = create_engine_for(settings.database_url)
    cases = ReviewStore(engine).list_cases(None if args.all else "open")
    engine.dispose()
    now = utcnow()
    if args.json:
        print(
            json.dumps([{**c.model_dump(mode="json"), "status": st} for c, st in cases], indent=2)
        )
        return 0
    if not cases:
        print("no review cases" + ("" if args.all else " open"))
    for case, status in cases:
        age_h = (now - case.opened_at).total_seconds() / 3600
        overdue = " OVERDUE" if now > case.due_at and status != "decided" else ""
        print(
            f"{case.case_id}  {case.kind:<21} {status:<15} {case.purpose.value:<24} "
            f"open {age_h:.1f} h{overdue}"
        )
        print(f"    question: {case.requirement.question}")
        if case.requirement.missing_facts:
            print(f"    missing facts: {', '.join(case.requirement.missing_facts)}")
        cats = ", ".join(c.value for c in case.requirement.max_categories) or "-"
        print(f"    may approve at most: {cats}")
    return 0


def cmd_review_decide(args: argparse.Namespace) -> int:
    from aiokafka import AIOKafkaProducer

    from sharinghub.contracts import ReviewDecision, topics
    from sharinghub.policy.reviews import ReviewStore
    from sharinghub.runtime.codec import encode
    from sharinghub.runtime.db import create_engine_for
    from sharinghub.runtime.stage import utcnow

    settings = _settings()
    if not settings.kafka_bootstrap_servers:
        print(
            "error: set KAFKA_BOOTSTRAP_SERVERS to the running hub (see `sharinghub up`)",
            file=sys.stderr,
        )
        return 2
    engine = create_engine_for(settings.database_url)
    found = ReviewStore(engine).get(args.case_id)
    engine.dispose()
    if found is None:
        print(f"error: no review case {args.case_id}", file=sys.stderr)
        return 2
    case = found[0]
    try:
        decision = ReviewDecision(
            case_id=case.case_id,
            request_id=case.request_id,
            decision=args.decision,
            categories=args.categories or [],
            reviewer_id=args.reviewer,
            reason=args.reason,
            decided_at=utcnow(),
        )
    except ValueError as exc:
        print(f"error: {exc.__class__.__name__}: check the categories and fields", file=sys.stderr)
        return 2

    async def send() -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap_servers, enable_idempotence=False, acks="all"
        )
        await producer.start()
        try:
            await producer.send_and_wait(
                topics.REVIEW_DECISIONS, encode(decision), key=case.request_id.encode()
            )
        finally:
            await producer.stop()

    asyncio.run(send())
    print(f"decision '{args.decision}' on {case.case_id} sent; the policy service applies it")
    return 0


def _ledger_and_key() -> tuple[Any, Any, bytes, str]:
    from sharinghub.delivery.ledger import AuditLedger
    from sharinghub.runtime.db import create_engine_for
    from sharinghub.runtime.stamps import StageKeys

    settings = _settings()
    engine = create_engine_for(settings.database_url)
    keys = StageKeys.load(settings.resolved_keys_file())
    return engine, AuditLedger(engine), keys.subject_hash_key, "hub-checkpoint"


def cmd_audit_checkpoint(args: argparse.Namespace) -> int:
    engine, ledger, key, key_id = _ledger_and_key()
    checkpoint = ledger.checkpoint(key, key_id)
    engine.dispose()
    text = checkpoint.model_dump_json(indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n")
        print(f"checkpoint of row #{checkpoint.seq} written to {args.out}")
    else:
        print(text)
    return 0


def cmd_audit_check(args: argparse.Namespace) -> int:
    from sharinghub.delivery.audit_record import Checkpoint, verify_checkpoint

    engine, ledger, key, _ = _ledger_and_key()
    try:
        checkpoint = Checkpoint.model_validate_json(Path(args.checkpoint).read_text())
    except (OSError, ValueError):
        print(f"error: {args.checkpoint} is not a readable checkpoint", file=sys.stderr)
        return 2
    signed = verify_checkpoint(checkpoint, key)
    held = signed and ledger.holds_checkpoint(checkpoint)
    engine.dispose()
    if not signed:
        print("CHECKPOINT SIGNATURE INVALID", file=sys.stderr)
        return 1
    if not held:
        print(
            f"LEDGER NO LONGER HOLDS row #{checkpoint.seq} as checkpointed (rewritten or "
            "truncated)",
            file=sys.stderr,
        )
        return 1
    print(f"ledger still holds checkpointed row #{checkpoint.seq}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sharinghub", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run one service in this process (joins a running hub)")
    r.add_argument("service", choices=["consent", "policy", "redaction", "delivery"])
    r.set_defaults(func=cmd_run)
    u = sub.add_parser("up", help="start broker, database and all services; Ctrl-C stops all")
    u.add_argument(
        "--processes",
        type=at_least(1),
        default=1,
        help="processes per stage (at most SHARINGHUB_PARTITIONS, default 3)",
    )
    u.add_argument(
        "--urgent-processes",
        action="store_true",
        help="one more process per stage for the urgent lane only; bulk processes run at "
        "lower CPU priority (recommended where bursts of bulk requests are expected)",
    )
    u.add_argument("--console-port", type=tcp_port, default=8765, help="governance console port")
    u.set_defaults(func=cmd_up)
    d = sub.add_parser("demo", help="run the example scenarios end to end and show outcomes")
    d.add_argument("--file", default=str(DEMO_FILE), help="scenario file (JSON lines)")
    d.add_argument("--timeout", type=seconds(), default=90.0, help="seconds to wait for outcomes")
    d.set_defaults(func=cmd_demo)
    s = sub.add_parser("scenario", help="scenario files")
    ssub = s.add_subparsers(dest="scenario_command", required=True)
    sr = ssub.add_parser("run", help="run a scenario file and compare with expected outcomes")
    sr.add_argument("file")
    sr.add_argument("--json", action="store_true", help="print one JSON object")
    sr.add_argument("--timeout", type=seconds(), default=90.0, help="seconds to wait for outcomes")
    sr.set_defaults(func=cmd_scenario)
    db = sub.add_parser("db", help="database")
    dbsub = db.add_subparsers(dest="db_command", required=True)
    dbsub.add_parser("upgrade", help="apply migrations").set_defaults(func=cmd_db)
    k = sub.add_parser("keys", help="stage MAC keys")
    ksub = k.add_subparsers(dest="keys_command", required=True)
    ksub.add_parser("init", help="create the keys file if missing").set_defaults(func=cmd_keys)
    sub.add_parser("config", help="list every setting").set_defaults(func=cmd_config)
    rv = sub.add_parser("review", help="human review of pending requests")
    rvsub = rv.add_subparsers(dest="review_command", required=True)
    rl = rvsub.add_parser("list", help="open review cases, oldest first, with their age")
    rl.add_argument("--all", action="store_true", help="include decided cases")
    rl.add_argument("--json", action="store_true")
    rl.set_defaults(func=cmd_review_list)
    rd = rvsub.add_parser("decide", help="approve (narrowing at most), deny or ask for facts")
    rd.add_argument("case_id")
    rd.add_argument("decision", choices=["approve", "deny", "request_facts"])
    rd.add_argument("--categories", nargs="*", help="for approve: categories to release")
    rd.add_argument("--reviewer", required=True, help="your reviewer id (recorded)")
    rd.add_argument("--reason", required=True, help="why (recorded in the audit ledger)")
    rd.set_defaults(func=cmd_review_decide)
    a = sub.add_parser("audit", help="the tamper-evident audit ledger")
    asub = a.add_subparsers(dest="audit_command", required=True)
    av = asub.add_parser("verify", help="recompute the hash chain; exit 1 naming the first bad row")
    av.add_argument("--json", action="store_true")
    av.set_defaults(func=cmd_audit_verify)
    ac = asub.add_parser("checkpoint", help="sign the chain head for an outside party to hold")
    ac.add_argument("--out", help="write the checkpoint JSON here (default: stdout)")
    ac.set_defaults(func=cmd_audit_checkpoint)
    acv = asub.add_parser("check", help="verify a checkpoint and that the ledger still holds it")
    acv.add_argument("checkpoint")
    acv.set_defaults(func=cmd_audit_check)
    from sharinghub.tools import bench_cli, consent_cli, policy_cli

    bench_cli.register(sub)
    from sharinghub.governance.cli import register as register_governance

    register_governance(sub)
    from sharinghub.tools.trace_view import register as register_trace

    register_trace(sub)
    policy_cli.register(sub)
    consent_cli.register(sub)
    return p


def _stop_like_ctrl_c_on_termination() -> None:
    """`kill PID`, a closed terminal or a supervisor's stop end `up`, `demo`, `bench` and an
    embedded `scenario run` the way Ctrl-C does, so the broker and services they started stop
    with them instead of running on as orphans."""

    def interrupt(signum: int, frame: object) -> None:
        # once: a second SIGTERM must not cut short the stopping of the children
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        raise KeyboardInterrupt

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupt)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    if args.func is not cmd_run:  # a service handles SIGTERM itself (graceful drain)
        _stop_like_ctrl_c_on_termination()
    from pydantic import ValidationError

    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except event_loop.EventLoopUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:
        if exc.title != "Settings":
            raise
        from sharinghub.runtime.settings import describe_invalid

        print(
            "error: invalid configuration (`sharinghub config` lists every setting):",
            file=sys.stderr,
        )
        for line in describe_invalid(exc):
            print(f"  {line}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
