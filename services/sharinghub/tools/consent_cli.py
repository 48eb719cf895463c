"""`sharinghub consent …`: a client's directives with status, receipts, open retractions."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any

from sharinghub.consent.domain import consent_receipt
from sharinghub.consent.retractions import RetractionStore
from sharinghub.consent.store import ConsentRegistry
from sharinghub.contracts import ConsentDirective
from sharinghub.runtime.db import create_engine_for
from sharinghub.runtime.settings import Settings
from sharinghub.tools.arg_types import at_least


def status_of(d: ConsentDirective, now: datetime) -> str:
    if d.revoked_at is not None and d.revoked_at <= now:
        return "revoked"
    if d.scope.expires_at is not None and d.scope.expires_at <= now:
        return "expired"
    if d.scope.valid_from > now:
        return "not yet valid"
    return "in force"


def cmd_list(args: argparse.Namespace) -> int:
    engine = create_engine_for(Settings().database_url)
    directives = (
        ConsentRegistry(engine).current_for_subjects([args.subject_id]).get(args.subject_id, [])
    )
    engine.dispose()
    now = datetime.now(UTC)
    if args.json:
        print(
            json.dumps(
                [{**d.model_dump(mode="json"), "status": status_of(d, now)} for d in directives],
                indent=2,
            )
        )
        return 0
    if not directives:
        print(f"no consent directives on file for {args.subject_id}")
    for d in directives:
        purposes = ", ".join(p.value for p in d.scope.purposes)
        print(f"{d.consent_id}  v{d.version}  {status_of(d, now):<13} {purposes}")
    return 0


def cmd_receipt(args: argparse.Namespace) -> int:
    engine = create_engine_for(Settings().database_url)
    history = ConsentRegistry(engine).history(args.consent_id)
    engine.dispose()
    if not history:
        print(f"no consent {args.consent_id}")
        return 2
    print(consent_receipt(history[-1] if args.version is None else history[args.version - 1]))
    return 0


def cmd_retractions(args: argparse.Namespace) -> int:
    engine = create_engine_for(Settings().database_url)
    rows = RetractionStore(engine).unacknowledged()
    engine.dispose()
    if not rows:
        print("no unacknowledged retraction notices")
    for r in rows:
        print(
            f"{r.retraction_id}  to {r.recipient_agency_id}  issued {r.issued_at:%Y-%m-%d %H:%M}"
            f"  deliveries: {r.request_ids}"
        )
    return 0


def register(sub: Any) -> None:
    c = sub.add_parser("consent", help="consent directives of a client, receipts, retractions")
    csub = c.add_subparsers(dest="consent_command", required=True)
    ls = csub.add_parser("list", help="a client's directives (latest versions) with status")
    ls.add_argument("subject_id")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)
    rc = csub.add_parser("receipt", help="what the client agreed to, in plain words")
    rc.add_argument("consent_id")
    rc.add_argument("--version", type=at_least(1), help="a past version (default: the latest)")
    rc.set_defaults(func=cmd_receipt)
    rt = csub.add_parser("retractions", help="retraction notices not yet acknowledged")
    rt.set_defaults(func=cmd_retractions)
