"""Realistic fictional load: clients with 5–10 consent directives each, and requests of
1–2 KB with a ~150-word narrative, shaped like the example scenarios (mixed purposes and
outcomes). Faker with a fixed seed: the same arguments always give the same load."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sharinghub.contracts import (
    URGENT_PURPOSES,
    ConsentDirective,
    ConsentGranted,
    ConsentScope,
    Purpose,
    SharingRequest,
)

DEMO_FILE = Path(__file__).resolve().parents[1] / "demo_scenarios.jsonl"
CONSENT_PURPOSES = [
    Purpose.CONSENT_BASED_SHARING,
    Purpose.CARE_COORDINATION,
    Purpose.TREATMENT_CONTINUITY,
    Purpose.ADULT_SAFEGUARDING,
]
NON_SPECIAL = [
    "identity",
    "contact",
    "demographics",
    "household_family",
    "housing",
    "financial",
    "education",
    "mental_health",
    "physical_health",
    "case_narrative",
    "risk_assessment",
]


@dataclass
class Load:
    directives: list[ConsentGranted]
    requests: list[SharingRequest]

    @property
    def mean_request_bytes(self) -> float:
        sizes = [len(r.model_dump_json()) for r in self.requests[:500]]
        return sum(sizes) / max(len(sizes), 1)


def _templates() -> list[dict[str, Any]]:
    return [json.loads(line) for line in DEMO_FILE.read_text().splitlines() if line.strip()]


def _narrative(fake: Any, rng: random.Random, words: int, names: list[str]) -> str:
    out: list[str] = []
    while len(out) < words:
        sentence = fake.sentence(nb_words=rng.randint(8, 16)).rstrip(".").split()
        if names and rng.random() < 0.3:
            sentence.insert(rng.randrange(len(sentence)), rng.choice(names))
        if rng.random() < 0.1:
            sentence.append(fake.phone_number())
        out.extend(sentence)
        out[-1] += "."
    return " ".join(out[:words])


def generate(
    requests: int,
    *,
    clients: int | None = None,
    directives_per_client: tuple[int, int] = (5, 10),
    narrative_words: int = 150,
    urgent_only: bool = False,
    bulk_only: bool = False,
    seed: int = 20251122,
    id_prefix: str = "bench",
) -> Load:
    """A deterministic load of `requests` requests over `clients` fictional clients."""
    from faker import Faker

    fake = Faker(["en_GB", "en_US"])
    Faker.seed(seed)
    rng = random.Random(seed)  # noqa: S311 - reproducible fictional load, not security
    templates = _templates()
    if urgent_only:
        templates = [t for t in templates if Purpose(t["purpose"]) in URGENT_PURPOSES]
    elif bulk_only:
        templates = [t for t in templates if Purpose(t["purpose"]) not in URGENT_PURPOSES]
    clients = clients or max(1, requests // 4)
    agencies = sorted({t["recipient"]["agency_id"] for t in templates})
    directives: list[ConsentGranted] = []
    start = datetime(2020, 1, 1, tzinfo=UTC)
    for c in range(clients):
        subject = f"subj-{id_prefix}-{c:06d}"
        for d in range(rng.randint(*directives_per_client)):
            template = templates[(c + d) % len(templates)]
            recipient = template["recipient"]["agency_id"] if d == 0 else rng.choice(agencies)
            directives.append(
                ConsentGranted(
                    action="grant",
                    directive=ConsentDirective(
                        consent_id=f"cd-{id_prefix}-{c:06d}-{d}",
                        version=1,
                        subject_id=subject,
                        granted_by="client",
                        scope=ConsentScope(
                            recipient_agency_ids=[recipient],
                            purposes=[Purpose(template["purpose"])]
                            if template["purpose"] in {p.value for p in CONSENT_PURPOSES}
                            else [rng.choice(CONSENT_PURPOSES)],
                            categories_included=sorted(rng.sample(NON_SPECIAL, rng.randint(3, 8))),
                            valid_from=start,
                            expires_at=start + timedelta(days=365 * 10),
                        ),
                    ),
                )
            )
    reqs = []
    now = datetime.now(UTC)
    for i in range(requests):
        t = templates[i % len(templates)]
        names = [fake.name() for _ in range(2)]
        fields = []
        for f in t["record"]["fields"]:
            value = f["value"]
            if f["name"].endswith("_name"):
                value = rng.choice(names) if "third_party" not in f["name"] else fake.name()
            elif f["category"] == "case_narrative":
                value = _narrative(fake, rng, narrative_words, names)
            fields.append({**f, "value": value})
        if not any(f["category"] == "case_narrative" for f in fields):
            fields.append(
                {
                    "name": "case_note",
                    "category": "case_narrative",
                    "value": _narrative(fake, rng, narrative_words, names),
                }
            )
        data = {k: v for k, v in t.items() if k not in ("id", "title", "consents", "expected")}
        data.update(
            request_id=f"{id_prefix}-{i:07d}",
            requested_at=now.isoformat(),
            record={"subject_id": f"subj-{id_prefix}-{i % clients:06d}", "fields": fields},
        )
        reqs.append(SharingRequest.model_validate(data))
    return Load(directives, reqs)
