"""PII canary (invariant 6): no confidential value reaches spans, metrics, logs or outcomes.

Requests are seeded with unique canary strings in every record field value, the stated reason,
the practitioner role, a break-glass justification, the consent evidence reference and the
recorder's role, and with canary subject ids; they are run through the real pipeline on every
outcome path (delivered, denied, pending review then denied by a reviewer, rejected for an
invalid purpose, malformed JSON, schema violation, a forged envelope refused at the gate).
Then the exported spans, every service's /metrics, every service log line and every outcome
event are searched for the canaries. Subject ids may only ever appear as keyed hashes, so the
canary subject ids must not appear either. Request ids are not confidential and may appear.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import re
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sharinghub.contracts import (
    ConsentGranted,
    DeadLetter,
    DeliveredField,
    Envelope,
    Outcome,
    OutcomeEvent,
    Purpose,
    ReviewCase,
    ReviewDecision,
    Stage,
    topics,
)
from sharinghub.contracts.consent import RecordedBy
from sharinghub.runtime.codec import encode
from sharinghub.tools.hub import Hub
from sharinghub.tools.scenarios import _scenario
from tests.e2e.test_pipeline import example
from tests.support.hubclient import HubClient, outcome_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

NONCE = uuid.uuid4().hex[:10]
PREFIX = f"cnry{NONCE}"  # every canary (values and subject ids) starts with this
_counter = iter(range(1, 10_000))


def canary(kind: str) -> str:
    """A fresh canary; the kind only helps to tell which one leaked."""
    return f"{PREFIX}-{kind}-{next(_counter):03d}"


def seeded(ex: dict[str, Any], n: int) -> dict[str, Any]:
    """The example with canaries in every free-text value and a canary subject id."""
    data = copy.deepcopy(ex)
    subject = f"subj-{PREFIX}-{n}"
    data["record"]["subject_id"] = subject
    for f in data["record"]["fields"]:
        f["value"] = f"{f['value']} {canary('value')}"
    data["stated_reason"] = f"{data.get('stated_reason', '')} {canary('reason')}"
    data["requester"]["practitioner_role"] = canary("role")
    if data["recipient"]["agency_id"].startswith("self:"):
        data["recipient"]["agency_id"] = f"self:{subject}"
    return data


async def publish(client: HubClient, data: dict[str, Any]) -> str:
    """Publish the directives (with canary evidence refs and roles) and the request."""
    s = _scenario(data, NONCE)
    for ev in s.directive_events:
        if isinstance(ev, ConsentGranted):
            ev = ev.model_copy(
                update={
                    "directive": ev.directive.model_copy(
                        update={
                            "evidence_ref": canary("evidence"),
                            "recorded_by": RecordedBy(
                                agency_id=data["requester"]["agency_id"],
                                practitioner_role=canary("recorder-role"),
                            ),
                        }
                    )
                }
            )
            key = ev.directive.consent_id
        else:
            key = ev.consent_id
        await client.publish(topics.CONSENT_DIRECTIVES, encode(ev), key)
    await client.publish(topics.REQUESTS, encode(s.request), s.request.subject_id)
    return s.request.request_id


def final_outcome(client: HubClient, rid: str) -> OutcomeEvent | None:
    for r in client.seen[topics.OUTCOMES]:
        ev = OutcomeEvent.model_validate_json(r.value)
        if ev.request_id == rid and ev.final:
            return ev
    return None


async def wait_final(client: HubClient, rid: str, timeout_s: float = 90) -> OutcomeEvent:
    def match(rec: Any) -> bool:
        ev = OutcomeEvent.model_validate_json(rec.value)
        return ev.request_id == rid and ev.final

    rec = await client.wait_for(topics.OUTCOMES, match, timeout_s=timeout_s)
    return OutcomeEvent.model_validate_json(rec.value)


def dead_letter_of(payload: bytes):  # type: ignore[no-untyped-def]
    def match(rec: Any) -> bool:
        return base64.b64decode(DeadLetter.model_validate_json(rec.value).payload_b64) == payload

    return match


_CODE = re.compile(r"[a-z][a-z0-9_.]{0,63}")
LABEL_VALUES = {  # every label the hub's metrics may carry, and what its values may be
    "stage": lambda v: v in {s.value for s in Stage} | {"other"},
    "outcome": lambda v: v in {o.value for o in Outcome} | {"other"},
    "purpose": lambda v: v in {p.value for p in Purpose} | {"unknown", "other"},
    "topic": lambda v: v in {*topics.PIPELINE_TOPICS, "agency_inbox", "other"},
    "reason_code": lambda v: bool(_CODE.fullmatch(v)),
    "kind": lambda v: v in {"pending_review", "retrospective_review", "other"},
    "status": lambda v: bool(_CODE.fullmatch(v)),
    "error_type": lambda v: bool(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", v)),
    "le": lambda v: bool(re.fullmatch(r"[0-9.e+-]+|\+Inf", v)),
}


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 (loopback URL we made)
        return resp.read().decode()


def scrape_all(hub: Hub) -> dict[str, str]:
    return {name: scrape(url) for name, url in hub.metrics_urls().items()}


def of_service(scraped: dict[str, str], service: str) -> str:
    """The /metrics text of every process of one service ("policy-bulk-0", "policy-urgent-0" …)."""
    return "\n".join(text for label, text in scraped.items() if label.startswith(f"{service}-"))


def spans_with(hub: Hub, request_ids: set[str]) -> tuple[str, set[str]]:
    """The raw span file and which of `request_ids` have at least one span in it."""
    path = hub.settings.resolved_trace_file()
    text = path.read_text() if path.exists() else ""
    found = set()
    for line in text.splitlines():
        if line.strip():
            rid = json.loads(line)["attributes"].get("sharinghub.request_id")
            if rid in request_ids:
                found.add(rid)
    return text, found


def leaks(text: str, *, subject_ids_allowed: bool = False) -> list[str]:
    """Every canary-looking string in `text` (case-insensitive).

    With `subject_ids_allowed`, canary subject ids are not counted: an outcome event names the
    recipient agency, and a client receiving their own record is the agency `self:<subject>`.
    """
    found = set(re.findall(rf"(?:subj-)?{PREFIX}[\w-]*", text, flags=re.IGNORECASE))
    if subject_ids_allowed:
        found = {f for f in found if not f.lower().startswith("subj-")}
    return sorted(found)


async def test_no_canary_reaches_spans_metrics_logs_or_outcomes(hub: Hub, examples) -> None:  # type: ignore[no-untyped-def]
    assert hub.metrics_urls(), "the hub must serve /metrics per service for this test"
    expect: dict[str, set[Outcome]] = {}
    async with HubClient(hub.bootstrap_servers) as client:
        # --- every outcome path ------------------------------------------------------------
        delivered = await publish(client, seeded(example(examples, "ex-01"), 1))
        expect[delivered] = {Outcome.DELIVERED}
        denied = await publish(client, seeded(example(examples, "ex-09"), 2))
        expect[denied] = {Outcome.DENIED}
        invalid_purpose = await publish(client, seeded(example(examples, "ex-07"), 3))
        expect[invalid_purpose] = {Outcome.REJECTED_INVALID}
        own_record = await publish(client, seeded(example(examples, "ex-11"), 4))
        expect[own_record] = {Outcome.DELIVERED}
        emergency = seeded(example(examples, "ex-10"), 5)
        emergency["break_glass"] = {
            "declared_by": "pr-lakeshore-0007",
            "justification": canary("break-glass"),
        }
        break_glass = await publish(client, emergency)
        expect[break_glass] = set(Outcome)  # any final outcome; the point is the canary
        pending = await publish(client, seeded(example(examples, "ex-12"), 6))

        malformed = f'{{"request_id": "bad-json-{NONCE}", "stated_reason": "{canary("json")}"'
        malformed_payload = malformed.encode()
        await client.publish(topics.REQUESTS, malformed_payload, "k")
        schema_bad = seeded(example(examples, "ex-01"), 7)
        schema_bad = {
            k: v for k, v in schema_bad.items() if k not in ("id", "title", "consents", "expected")
        }
        schema_bad["request_id"] = f"schema-bad-{NONCE}"
        schema_bad["purpose"] = canary("purpose")  # not a vocabulary id
        schema_bad["record"]["fields"][0]["name"] = canary("name")  # breaks the name pattern
        schema_payload = json.dumps(schema_bad).encode()
        await client.publish(topics.REQUESTS, schema_payload, schema_bad["record"]["subject_id"])

        # --- outcomes ---------------------------------------------------------------------
        for rid, allowed in expect.items():
            ev = await wait_final(client, rid)
            assert ev.outcome in allowed, (rid, ev.outcome, ev.reason_code)
        dlq_json = DeadLetter.model_validate_json(
            (await client.wait_for(topics.DLQ, dead_letter_of(malformed_payload), 90)).value
        )
        dlq_schema = DeadLetter.model_validate_json(
            (await client.wait_for(topics.DLQ, dead_letter_of(schema_payload), 90)).value
        )
        assert (dlq_json.reason_code, dlq_schema.reason_code) == (
            "malformed_json",
            "schema_violation",
        )
        assert dlq_schema.request_id == schema_bad["request_id"]
        for dead in (dlq_json, dlq_schema):
            assert dead.request_id is not None
            ev = await wait_final(client, dead.request_id)
            assert ev.outcome is Outcome.REJECTED_INVALID

        # --- pending review, then a reviewer's denial with a canary in the reason ---------
        case_rec = await client.wait_for(
            topics.REVIEW,
            lambda r: ReviewCase.model_validate_json(r.value).request_id == pending,
            timeout_s=90,
        )
        case = ReviewCase.model_validate_json(case_rec.value)
        first = await client.wait_for(topics.OUTCOMES, outcome_for(pending), timeout_s=30)
        assert OutcomeEvent.model_validate_json(first.value).outcome is Outcome.PENDING_REVIEW
        await client.publish(
            topics.REVIEW_DECISIONS,
            encode(
                ReviewDecision(
                    case_id=case.case_id,
                    request_id=pending,
                    decision="deny",
                    reviewer_id="rv-riverton-02",
                    reason=f"Not proportionate. {canary('review-reason')}",
                    decided_at=datetime.now(UTC),
                )
            ),
            pending,
        )
        assert (await wait_final(client, pending)).outcome is Outcome.DENIED

        # --- a forged envelope (canary value added after redaction) -----------------------
        env_rec = await client.wait_for(
            topics.REDACTED,
            lambda r: Envelope.model_validate_json(r.value).request_id == delivered,
            timeout_s=60,
        )
        env = Envelope.model_validate_json(env_rec.value)
        assert env.redaction is not None
        forged_id = f"forged-{NONCE}"
        payload = env.redaction.payload.model_copy(
            update={
                "request_id": forged_id,
                "fields": [
                    *env.redaction.payload.fields,
                    DeliveredField(
                        name="case_note",
                        category=env.redaction.payload.fields[0].category,
                        value=canary("forged"),
                    ),
                ],
            }
        )
        forged = env.model_copy(
            update={
                "request": env.request.model_copy(update={"request_id": forged_id}),
                "redaction": env.redaction.model_copy(update={"payload": payload}),
            }
        )
        await client.publish(topics.REDACTED, encode(forged), env.request.subject_id)
        forged_dead = DeadLetter.model_validate_json(
            (
                await client.wait_for(
                    topics.DLQ,
                    lambda r: DeadLetter.model_validate_json(r.value).request_id == forged_id,
                    timeout_s=60,
                )
            ).value
        )
        assert forged_dead.reason_code == "stamp_invalid"
        await client.settle(topics.OUTCOMES, 1.0)
        outcome_bytes = b"\n".join(r.value for r in client.seen[topics.OUTCOMES])

    # --- spans: wait until every request's spans are exported (500 ms batch delay) -------
    traced = {delivered, denied, invalid_purpose, own_record, break_glass, pending, forged_id}
    traced.add(schema_bad["request_id"])
    deadline = time.monotonic() + 30
    spans_text, found = spans_with(hub, traced)
    while found != traced and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        spans_text, found = await asyncio.to_thread(spans_with, hub, traced)
    assert found == traced, f"spans missing for {traced - found}"

    # --- metrics: every service, once the batch hooks and samplers have run --------------
    deadline = time.monotonic() + 30
    scraped = await asyncio.to_thread(scrape_all, hub)
    while time.monotonic() < deadline and not (
        'outcome="pending_review"' in of_service(scraped, "policy")
        and 'reason_code="stamp_invalid"' in of_service(scraped, "delivery")
        and "sharinghub_review_queue_depth" in of_service(scraped, "policy")
        and "sharinghub_consumer_lag" in of_service(scraped, "delivery")
    ):
        await asyncio.sleep(1.0)
        scraped = await asyncio.to_thread(scrape_all, hub)
    assert 'outcome="delivered"' in of_service(scraped, "delivery")
    assert 'reason_code="stamp_invalid"' in of_service(scraped, "delivery")
    assert 'reason_code="malformed_json"' in of_service(scraped, "consent")
    assert "sharinghub_review_queue_depth" in of_service(scraped, "policy")
    assert "sharinghub_consumer_lag" in of_service(scraped, "delivery")
    metrics_text = "\n".join(scraped.values())
    # Labels are vocabulary ids and codes only: no request id, no free text.
    for text in scraped.values():
        for family in text_string_to_metric_families(text):
            if not family.name.startswith("sharinghub"):
                continue
            for sample in family.samples:
                for label, value in sample.labels.items():
                    if label.startswith("otel_scope_"):
                        continue  # the instrumentation scope: constant, ours
                    assert label in LABEL_VALUES, (family.name, label)
                    assert LABEL_VALUES[label](value), (family.name, label, value)
    for rid in traced:
        assert rid not in metrics_text

    # --- logs ------------------------------------------------------------------------------
    logs = {p.name: p.read_text(errors="replace") for p in hub.log_dir().glob("*.log")}
    assert logs

    # --- the verdict -----------------------------------------------------------------------
    found_leaks = {
        "spans": leaks(spans_text),
        "metrics": leaks(metrics_text),
        "outcome events": leaks(outcome_bytes.decode(), subject_ids_allowed=True),
        **{f"log {name}": leaks(text) for name, text in logs.items()},
    }
    assert {k: v for k, v in found_leaks.items() if v} == {}
    # Sanity: the canaries really went in (the inbox of the delivered request has them).
    assert PREFIX in env_rec.value.decode()
