"""`sharinghub policy …`: list packs, and simulate a proposed pack against a request set."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sharinghub.consent.domain import assess_consent
from sharinghub.contracts import PolicyDecision
from sharinghub.policy.engine import PolicyEngine
from sharinghub.tools.scenarios import (
    Scenario,
    ScenarioFileError,
    directives_on_file,
    load_scenarios,
)


def _summary(d: PolicyDecision) -> dict[str, Any]:
    return {
        "outcome": d.outcome.value,
        "allowed_categories": sorted(c.value for c in d.allowed_categories),
        "obligations": sorted(o.value for o in d.obligations),
        "reason_code": d.reason_code,
    }


def simulate(
    scenarios: list[Scenario], current: PolicyEngine, proposed: PolicyEngine, pack_id: str
) -> dict[str, Any]:
    """Decide every request under its current pack and under `pack_id`; deliver nothing."""
    now = datetime.now(UTC)
    rows = []
    totals: dict[str, Counter[str]] = {
        "outcome_before": Counter(),
        "outcome_after": Counter(),
        "changed_by_purpose": Counter(),
        "categories_gained": Counter(),
        "categories_lost": Counter(),
    }
    for s in scenarios:
        r = s.request
        consent = assess_consent(r, directives_on_file(s), assessed_at=now)
        before = _summary(current.decide(r, consent, now=now))
        after = _summary(proposed.decide_with_pack(pack_id, r, consent, now=now))
        changed = {
            k for k in ("outcome", "allowed_categories", "obligations") if before[k] != after[k]
        }
        totals["outcome_before"][before["outcome"]] += 1
        totals["outcome_after"][after["outcome"]] += 1
        if changed:
            totals["changed_by_purpose"][r.purpose.value] += 1
        for c in set(after["allowed_categories"]) - set(before["allowed_categories"]):
            totals["categories_gained"][c] += 1
        for c in set(before["allowed_categories"]) - set(after["allowed_categories"]):
            totals["categories_lost"][c] += 1
        rows.append(
            {
                "id": s.id,
                "purpose": r.purpose.value,
                "before": before,
                "after": after,
                "changed": sorted(changed),
            }
        )
    return {
        "pack": pack_id,
        "pack_version": proposed.pack(pack_id).version,
        "requests": rows,
        "totals": {k: dict(sorted(v.items())) for k, v in totals.items()},
        "changed": sum(1 for row in rows if row["changed"]),
    }


def cmd_simulate(args: argparse.Namespace) -> int:
    try:
        scenarios = load_scenarios(Path(args.input), "sim")
    except (OSError, ScenarioFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    current = PolicyEngine.load()
    proposed = PolicyEngine.load(Path(args.packs_dir)) if args.packs_dir else current
    if args.pack not in proposed.pack_ids:
        print(
            f"error: no pack {args.pack!r}; known: {', '.join(proposed.pack_ids)}", file=sys.stderr
        )
        return 2
    report = simulate(scenarios, current, proposed, args.pack)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(
        f"simulated {len(scenarios)} requests under {args.pack} "
        f"({report['pack_version']}); nothing was delivered\n"
    )
    for row in report["requests"]:
        if row["changed"]:
            b, a = row["before"], row["after"]
            print(
                f"  {row['id']:<44} {b['outcome']:>16} → {a['outcome']:<16} "
                f"changed: {', '.join(row['changed'])}"
            )
    print(f"\n{report['changed']} of {len(scenarios)} decisions would change.")
    for name, counts in report["totals"].items():
        if counts:
            print(f"  {name}: " + ", ".join(f"{k}={v}" for k, v in counts.items()))
    return 0


def cmd_packs(args: argparse.Namespace) -> int:
    engine = PolicyEngine.load()
    for pack_id in engine.pack_ids:
        info = engine.pack(pack_id)
        print(f"{pack_id:<12} {info.version}")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("policy", help="policy packs: list, simulate a proposed pack")
    psub = p.add_subparsers(dest="policy_command", required=True)
    psub.add_parser("packs", help="list the packs and their versions").set_defaults(func=cmd_packs)
    sim = psub.add_parser("simulate", help="compare decisions under the current and a new pack")
    sim.add_argument("--pack", required=True, help="proposed pack id (e.g. us_ca)")
    sim.add_argument("--packs-dir", help="folder holding the proposed pack (default: built-in)")
    sim.add_argument("--input", required=True, help="requests as scenario JSON lines")
    sim.add_argument("--json", action="store_true")
    sim.set_defaults(func=cmd_simulate)
