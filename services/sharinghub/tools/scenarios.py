"""Run scenario files (the `examples.jsonl` format) end to end through a running hub.

For each scenario: publish its consents as directive events, publish the request, wait for its
outcome (and, if delivered, the recipient's inbox message), compare with `expected`.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from sharinghub.contracts import (
    URGENT_PURPOSES,
    ConsentDirective,
    ConsentGranted,
    ConsentRevoked,
    ConsentScope,
    InboxMessage,
    OutcomeEvent,
    SharingRequest,
    topics,
)
from sharinghub.runtime.codec import encode
from sharinghub.runtime.topics import ensure_topics, partitions_of


class ScenarioFileError(ValueError):
    """A scenario file line that cannot be read (says which line and why)."""


@dataclass
class Scenario:
    id: str
    title: str
    request: SharingRequest
    directive_events: list[ConsentGranted | ConsentRevoked]
    expected: dict[str, Any]


@dataclass
class ScenarioResult:
    id: str
    outcome: str | None
    allowed_categories: list[str]
    obligations: list[str]
    reason: str | None
    inbox_message: dict[str, Any] | None
    differences: list[str] = field(default_factory=list)

    @property
    def matched(self) -> bool:
        return not self.differences

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "outcome": self.outcome,
            "allowed_categories": self.allowed_categories,
            "obligations": self.obligations,
            "inbox_message": self.inbox_message,
            "matched": self.matched,
            "differences": self.differences,
        }


def load_scenarios(path: Path, nonce: str) -> list[Scenario]:
    """Parse a scenario file. Request and consent ids get `nonce` appended so a run never
    collides with an earlier one (request ids are idempotency keys)."""
    scenarios = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            scenarios.append(_scenario(data, nonce))
        except (ValueError, KeyError, TypeError) as exc:
            kind = type(exc).__name__
            raise ScenarioFileError(f"{path}:{lineno}: not a valid scenario ({kind})") from None
    return scenarios


def _scenario(data: dict[str, Any], nonce: str) -> Scenario:
    request_fields = {
        k: v for k, v in data.items() if k not in ("id", "title", "consents", "expected")
    }
    request = SharingRequest.model_validate(
        {**request_fields, "request_id": f"{data['id']}.{nonce}"}
    )
    events: list[ConsentGranted | ConsentRevoked] = []
    for c in data.get("consents", []):
        consent_id = f"{c['consent_id']}.{nonce}"
        directive = ConsentDirective(
            consent_id=consent_id,
            version=1,
            subject_id=request.subject_id,
            granted_by=c["granted_by"],
            scope=ConsentScope(
                recipient_agency_ids=c.get("recipient_agency_ids"),
                recipient_agency_types=c.get("recipient_agency_types"),
                purposes=c["purposes"],
                categories_included=c.get("categories_included"),
                categories_excluded=c.get("categories_excluded") or [],
                valid_from=c["valid_from"],
                expires_at=c.get("expires_at"),
            ),
        )
        events.append(ConsentGranted(action="grant", directive=directive))
        if c.get("revoked_at"):
            events.append(
                ConsentRevoked(
                    action="revoke",
                    consent_id=consent_id,
                    subject_id=request.subject_id,
                    version=2,
                    revoked_at=c["revoked_at"],
                )
            )
    return Scenario(data["id"], data.get("title", ""), request, events, data.get("expected", {}))


def directives_on_file(s: Scenario) -> list[ConsentDirective]:
    """The scenario's consents as the registry would hold them (latest version each)."""
    latest: dict[str, ConsentDirective] = {}
    for ev in s.directive_events:
        if isinstance(ev, ConsentGranted):
            latest[ev.directive.consent_id] = ev.directive
        elif isinstance(ev, ConsentRevoked) and ev.consent_id in latest:
            latest[ev.consent_id] = latest[ev.consent_id].model_copy(
                update={"version": ev.version, "revoked_at": ev.revoked_at}
            )
    return list(latest.values())


def compare(
    s: Scenario, outcome: OutcomeEvent | None, inbox: InboxMessage | None
) -> ScenarioResult:
    exp = s.expected
    inbox_json = json.loads(inbox.model_dump_json()) if inbox else None
    result = ScenarioResult(
        id=s.id,
        outcome=outcome.outcome.value if outcome else None,
        allowed_categories=sorted(c.value for c in outcome.allowed_categories) if outcome else [],
        obligations=sorted(o.value for o in outcome.obligations) if outcome else [],
        reason=outcome.reason if outcome else None,
        inbox_message=inbox_json,
    )
    d = result.differences
    if outcome is None:
        d.append("no outcome arrived before the timeout")
        return result
    if "outcome" in exp and exp["outcome"] != result.outcome:
        d.append(
            f"outcome: expected {exp['outcome']}, got {result.outcome} ({outcome.reason_code})"
        )
    for key, actual in (
        ("allowed_categories", result.allowed_categories),
        ("obligations", result.obligations),
    ):
        if key in exp and set(exp[key]) != set(actual):
            missing = sorted(set(exp[key]) - set(actual))
            extra = sorted(set(actual) - set(exp[key]))
            d.append(f"{key}: missing {missing}, unexpected {extra}")
    if result.outcome == "delivered" and inbox is None:
        d.append("delivered, but no inbox message arrived")
    if result.outcome != "delivered" and inbox is not None:
        d.append(f"{result.outcome}, yet an inbox message arrived")
    if inbox is not None:
        names = {f.name for f in inbox.fields}
        leaked = sorted(names & set(exp.get("must_exclude_fields", [])))
        if leaked:
            d.append(f"excluded fields delivered: {leaked}")
        text = inbox.model_dump_json().lower()
        found = [i for i, v in enumerate(exp.get("must_not_contain", [])) if v.lower() in text]
        if found:
            # the forbidden strings are confidential: say which entries, never what they are
            d.append(f"must_not_contain entries #{found} found in the delivered message")
    return result


async def run_scenarios(
    bootstrap_servers: str,
    scenarios: list[Scenario],
    *,
    timeout_s: float = 60.0,
    on_result: Callable[[ScenarioResult], None] | None = None,
) -> list[ScenarioResult]:
    """Publish every scenario, then collect outcomes and inbox messages as they arrive."""
    inbox_topics = sorted({topics.inbox_topic(s.request.recipient.agency_id) for s in scenarios})
    await ensure_topics(bootstrap_servers, [*topics.PIPELINE_TOPICS, *inbox_topics])
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=20,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers, enable_idempotence=False, acks="all", linger_ms=2
    )
    await consumer.start()
    await producer.start()
    try:
        parts = await partitions_of(consumer, [topics.OUTCOMES, *inbox_topics])
        consumer.assign(parts)
        await consumer.seek_to_end(*parts)
        for tp in parts:  # resolve the end offsets now, before anything is published
            await consumer.position(tp)
        for s in scenarios:
            for ev in s.directive_events:
                cid = ev.directive.consent_id if isinstance(ev, ConsentGranted) else ev.consent_id
                await producer.send(topics.CONSENT_DIRECTIVES, encode(ev), key=cid.encode())
        await producer.flush()
        for s in scenarios:
            # urgent purposes go to the urgent ingress topic, as an agency would send them
            urgent = s.request.purpose in URGENT_PURPOSES
            await producer.send(
                topics.lane(topics.REQUESTS, urgent),
                encode(s.request),
                key=s.request.subject_id.encode(),
            )
        await producer.flush()
        return await _collect(consumer, scenarios, timeout_s, on_result)
    finally:
        await producer.stop()
        await consumer.stop()


async def _collect(
    consumer: AIOKafkaConsumer,
    scenarios: list[Scenario],
    timeout_s: float,
    on_result: Callable[[ScenarioResult], None] | None,
) -> list[ScenarioResult]:
    by_request = {s.request.request_id: s for s in scenarios}
    outcomes: dict[str, OutcomeEvent] = {}
    inboxes: dict[str, InboxMessage] = {}
    results: dict[str, ScenarioResult] = {}
    deadline = time.monotonic() + timeout_s
    while len(results) < len(scenarios) and time.monotonic() < deadline:
        batch = await consumer.getmany(timeout_ms=200)
        for tp, records in batch.items():
            for rec in records:
                if tp.topic == topics.OUTCOMES:
                    ev = OutcomeEvent.model_validate_json(rec.value)
                    if ev.request_id in by_request and ev.request_id not in outcomes:
                        outcomes[ev.request_id] = ev
                elif json.loads(rec.value).get("kind") == "disclosure":
                    msg = InboxMessage.model_validate_json(rec.value)
                    if msg.request_id in by_request:
                        inboxes.setdefault(msg.request_id, msg)
        for rid, ev in outcomes.items():
            if rid in results:
                continue
            if ev.outcome.value == "delivered" and rid not in inboxes:
                continue
            results[rid] = compare(by_request[rid], ev, inboxes.get(rid))
            if on_result:
                on_result(results[rid])
    # A short grace period catches inbox messages that arrive after a non-delivered outcome.
    ordered = []
    for s in scenarios:
        rid = s.request.request_id
        if rid not in results:
            results[rid] = compare(s, outcomes.get(rid), inboxes.get(rid))
            if on_result:
                on_result(results[rid])
        ordered.append(results[rid])
    return ordered


def new_nonce() -> str:
    return secrets.token_hex(3)
