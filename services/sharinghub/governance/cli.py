"""`sharinghub report …` and `sharinghub governance serve` (wired in by `register`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

from sharinghub.tools.arg_types import tcp_port


def _engine() -> Engine:
    from sharinghub.runtime.db import create_engine_for
    from sharinghub.runtime.settings import Settings

    return create_engine_for(Settings().database_url)


def _with_queries(work: Callable[[Any], int]) -> int:
    from sharinghub.governance.queries import GovernanceQueries

    engine = _engine()
    try:
        return work(GovernanceQueries(engine))
    finally:
        engine.dispose()


def cmd_accounting(args: argparse.Namespace) -> int:
    """Print the accounting of disclosures for one subject."""
    from sharinghub.governance import reports

    def work(q: Any) -> int:
        report = reports.accounting_of_disclosures(
            args.subject_id, q.subject_records(args.subject_id)
        )
        text = reports.accounting_csv(report) if args.format == "csv" else reports.to_json(report)
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return 0

    return _with_queries(work)


def cmd_ferpa(args: argparse.Namespace) -> int:
    """Print the FERPA disclosure log."""
    from sharinghub.governance import reports

    def work(q: Any) -> int:
        log = reports.ferpa_log(q.ferpa_records())
        text = reports.ferpa_csv(log) if args.format == "csv" else reports.to_json(log)
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return 0

    return _with_queries(work)


def cmd_totals(args: argparse.Namespace) -> int:
    """Print final decisions counted by group and period."""
    from sharinghub.governance import reports
    from sharinghub.governance.queries import DecisionFilter

    def work(q: Any) -> int:
        report = reports.totals(q.summaries(DecisionFilter(final_only=True)), args.by, args.period)
        text = reports.totals_csv(report) if args.format == "csv" else reports.to_json(report)
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return 0

    return _with_queries(work)


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the governance console until Ctrl-C."""
    from sharinghub.governance.app import serve
    from sharinghub.governance.auth import ENV_VAR, TokenConfigError, tokens_from_env

    try:
        tokens = tokens_from_env()
    except TokenConfigError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    if not tokens:
        sys.stderr.write(f"error: set {ENV_VAR}=name:token[,name:token…] first\n")
        return 2
    engine = _engine()
    sys.stdout.write(f"governance console on http://{args.host}:{args.port}/ (Ctrl-C stops)\n")
    sys.stdout.flush()
    try:
        serve(engine, tokens, host=args.host, port=args.port)
    finally:
        engine.dispose()
    return 0


def _format(parser: argparse.ArgumentParser, default: str = "json") -> None:
    parser.add_argument("--format", choices=["csv", "json"], default=default)


def register(subparsers: Any) -> None:
    """Add ``report`` and ``governance`` commands to the ``sharinghub`` parser."""
    rep = subparsers.add_parser("report", help="governance reports from the audit ledger")
    rsub = rep.add_subparsers(dest="report_command", required=True)
    acc = rsub.add_parser(
        "accounting", help="accounting of disclosures for one subject (HIPAA / UK GDPR)"
    )
    acc.add_argument("subject_id")
    _format(acc)
    acc.set_defaults(func=cmd_accounting)
    fe = rsub.add_parser("ferpa", help="FERPA disclosure log (school deliveries, us_baseline)")
    _format(fe)
    fe.set_defaults(func=cmd_ferpa)
    tot = rsub.add_parser("totals", help="final decisions counted by group and period")
    tot.add_argument(
        "--by",
        choices=["purpose", "agency", "requester", "outcome", "jurisdiction"],
        default="purpose",
        help="group (agency = recipient agency)",
    )
    tot.add_argument("--period", choices=["day", "week", "month"], default="month")
    _format(tot)
    tot.set_defaults(func=cmd_totals)

    gov = subparsers.add_parser("governance", help="the governance board's web console")
    gsub = gov.add_subparsers(dest="governance_command", required=True)
    srv = gsub.add_parser("serve", help="serve the read-only console (needs tokens)")
    srv.add_argument("--host", default="127.0.0.1")
    srv.add_argument("--port", type=tcp_port, default=8765)
    srv.set_defaults(func=cmd_serve)
