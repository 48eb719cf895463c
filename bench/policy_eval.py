# ruff: noqa: T201 -- a benchmark prints its figures
"""Median policy evaluation time per request with all 21 categories requested.

Run: ``python bench/policy_eval.py [--n 2000]``. Packs are parsed once before timing, as the
policy service does at start-up; the figure covers context building, one Cedar batch
(deliver, review and 21 disclose requests; a review adds 21 approve requests) and composing
the decision. "cold" disables the engine's memo of Cedar answers (every request goes to
Cedar); "warm" is the steady state where the memo answers repeated Cedar inputs.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime

from sharinghub.contracts import (
    ConsentAssessment,
    ConsentRef,
    DataCategory,
    SharingRequest,
)
from sharinghub.policy.engine import PolicyEngine
from sharinghub.policy.packs import compile_pack, pack_ids

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def _request(purpose: str, requester: str, recipient: str) -> SharingRequest:
    return SharingRequest.model_validate(
        {
            "request_id": f"bench-{purpose}",
            "jurisdiction": "us_baseline",
            "requester": {"agency_id": "ag-bench-a", "agency_type": requester},
            "recipient": {"agency_id": "ag-bench-b", "agency_type": recipient},
            "purpose": purpose,
            "facts": {"threat_imminent": True, "identifiable_victim": True, "emergency": True},
            "requested_categories": [k.value for k in DataCategory],
            "record": {
                "subject_id": "subj-bench-1",
                "fields": [
                    {"name": f"f_{k.value}", "category": k.value, "value": "x"}
                    for k in DataCategory
                ],
            },
            "requested_at": NOW.isoformat(),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=2000)
    args = parser.parse_args()
    packs = {pid: compile_pack(pid) for pid in pack_ids()}
    ref = ConsentRef(consent_id="cd-bench", version=1)
    consent = ConsentAssessment(
        supported={DataCategory.IDENTITY: [ref], DataCategory.HOUSING: [ref]}, assessed_at=NOW
    )
    cases = [
        _request("consent_based_sharing", "social_services", "housing"),
        _request("duty_to_warn", "mental_health", "police"),
        _request("medical_emergency", "substance_use_treatment", "health"),
        _request("law_enforcement_request", "health", "police"),  # review: second Cedar call
    ]
    for label, cache_size in (("cold", 0), ("warm", 65_536)):
        engine = PolicyEngine(packs, cache_size=cache_size)
        for request in cases:
            for _ in range(50):  # warm-up
                engine.decide(request, consent, now=NOW)
            samples = []
            for _ in range(args.n):
                t0 = time.perf_counter()
                engine.decide(request, consent, now=NOW)
                samples.append(time.perf_counter() - t0)
            decision = engine.decide(request, consent, now=NOW)
            print(
                f"{label} {request.purpose.value:<24} {decision.outcome.value:<15} "
                f"median {statistics.median(samples) * 1e3:.3f} ms  "
                f"p95 {statistics.quantiles(samples, n=20)[18] * 1e3:.3f} ms"
            )
        batch = [(cases[i % len(cases)], consent) for i in range(200)]
        t0 = time.perf_counter()
        engine.decide_many(batch, now=NOW)
        per = (time.perf_counter() - t0) / len(batch)
        print(f"{label} decide_many (200 requests): {per * 1e3:.3f} ms per request")


if __name__ == "__main__":
    main()
