"""Micro-benchmark: median time of ``assess_consent`` for one request with 20 directives on file.

Run: ``python bench/consent_match.py [rounds]`` (target: median <= 0.2 ms).
"""

from __future__ import annotations

import statistics
import sys
import time
from datetime import UTC, datetime, timedelta

from sharinghub.consent.domain import assess_consent
from sharinghub.contracts import (
    AgencyType,
    CaseRecord,
    ConsentDirective,
    ConsentScope,
    DataCategory,
    Purpose,
    Recipient,
    Requester,
    SharingRequest,
)

T0 = datetime(2025, 3, 4, 14, 20, tzinfo=UTC)
CATEGORIES = list(DataCategory)


def build() -> tuple[SharingRequest, list[ConsentDirective]]:
    """One broad request and 20 varied directives (some match, most fail some rule)."""
    request = SharingRequest(
        request_id="req-bench-0001",
        jurisdiction="us_baseline",
        requester=Requester(agency_id="ag-bench-social-care", agency_type="social_services"),
        recipient=Recipient(agency_id="ag-bench-homes", agency_type=AgencyType.HOUSING),
        purpose=Purpose.CONSENT_BASED_SHARING,
        requested_categories=CATEGORIES[:12],
        record=CaseRecord(subject_id="subj-bench-0001", fields=[]),
        requested_at=T0,
    )
    directives = []
    for i in range(20):
        scope = ConsentScope(
            recipient_agency_ids=["ag-bench-homes"] if i % 3 else ["ag-bench-other"],
            recipient_agency_types=[AgencyType.HOUSING] if i % 4 == 0 else None,
            purposes=[Purpose.CONSENT_BASED_SHARING, Purpose.CARE_COORDINATION][: 1 + i % 2],
            categories_included=None if i % 5 == 0 else CATEGORIES[i % 7 : i % 7 + 6],
            categories_excluded=[CATEGORIES[i % 11]],
            valid_from=T0 - timedelta(days=30 + i),
            expires_at=T0 + timedelta(days=i - 2) if i % 6 == 0 else None,
        )
        directives.append(
            ConsentDirective(
                consent_id=f"cd-bench-{i:02d}",
                version=1 + i % 3,
                subject_id="subj-bench-0001",
                granted_by="client" if i % 2 else "guardian",
                scope=scope,
                revoked_at=T0 - timedelta(days=1) if i % 9 == 0 else None,
            )
        )
    return request, directives


def main(rounds: int = 5000) -> float:
    """Time ``rounds`` assessments after a warm-up; print and return the median in ms."""
    request, directives = build()
    for _ in range(200):
        assess_consent(request, directives, assessed_at=T0)
    samples = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        assess_consent(request, directives, assessed_at=T0)
        samples.append(time.perf_counter_ns() - start)
    median_ms = statistics.median(samples) / 1e6
    p95_ms = statistics.quantiles(samples, n=20)[18] / 1e6
    sys.stdout.write(
        f"assess_consent, 1 request x {len(directives)} directives, {rounds} rounds: "
        f"median {median_ms:.3f} ms, p95 {p95_ms:.3f} ms (target <= 0.2 ms)\n"
    )
    return median_ms


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5000)
