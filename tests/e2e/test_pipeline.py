"""End to end: the four services as separate processes on the real embedded broker."""

from __future__ import annotations

import base64
import json
import uuid

import pytest

from sharinghub.contracts import (
    ConsentGranted,
    DeadLetter,
    InboxMessage,
    Outcome,
    OutcomeEvent,
    topics,
)
from sharinghub.runtime.codec import encode
from sharinghub.tools.hub import Hub
from sharinghub.tools.scenarios import _scenario
from tests.support.hubclient import HubClient, disclosure_for, outcome_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


def example(examples, prefix: str):  # type: ignore[no-untyped-def]
    return next(e for e in examples if e["id"].startswith(prefix))


async def publish_scenario(client: HubClient, ex: dict) -> str:  # type: ignore[type-arg]
    s = _scenario(ex, uuid.uuid4().hex[:8])
    for ev in s.directive_events:
        cid = ev.directive.consent_id if isinstance(ev, ConsentGranted) else ev.consent_id
        await client.publish(topics.CONSENT_DIRECTIVES, encode(ev), cid)
    await client.publish(topics.REQUESTS, encode(s.request), s.request.subject_id)
    return s.request.request_id


async def test_consent_based_request_reaches_inbox_with_only_allowed_fields(hub: Hub, examples):  # type: ignore[no-untyped-def]
    ex = example(examples, "ex-01")
    async with HubClient(hub.bootstrap_servers) as client:
        rid = await publish_scenario(client, ex)
        rec = await client.wait_for(topics.OUTCOMES, outcome_for(rid), timeout_s=90)
        outcome = OutcomeEvent.model_validate_json(rec.value)
        assert outcome.outcome is Outcome.DELIVERED
        assert {c.value for c in outcome.allowed_categories} == set(
            ex["expected"]["allowed_categories"]
        )
        inbox_topic = topics.inbox_topic(ex["recipient"]["agency_id"])
        msg_rec = await client.wait_for(inbox_topic, disclosure_for(rid))
        msg = InboxMessage.model_validate_json(msg_rec.value)
        allowed = set(ex["expected"]["allowed_categories"])
        expected_fields = {f["name"] for f in ex["record"]["fields"] if f["category"] in allowed}
        assert {f.name for f in msg.fields} == expected_fields
        text = msg_rec.value.decode().lower()
        for forbidden in ex["expected"]["must_not_contain"]:
            assert forbidden.lower() not in text
        assert ex["stated_reason"].lower() not in text


async def test_denied_request_lands_nowhere(hub: Hub, examples):  # type: ignore[no-untyped-def]
    ex = example(examples, "ex-09")  # consent revoked before the request → denied
    async with HubClient(hub.bootstrap_servers) as client:
        rid = await publish_scenario(client, ex)
        rec = await client.wait_for(topics.OUTCOMES, outcome_for(rid), timeout_s=90)
        outcome = OutcomeEvent.model_validate_json(rec.value)
        assert outcome.outcome is Outcome.DENIED
        assert outcome.allowed_categories == [] and outcome.obligations == []
        inbox = await client.settle(topics.inbox_topic(ex["recipient"]["agency_id"]), 3.0)
        assert not any(disclosure_for(rid)(r) for r in inbox)


@pytest.mark.parametrize(
    ("label", "payload"),
    [
        ("malformed_json", b'{"request_id": "bad-json-REQ", "purpose": '),
        ("schema_violation", None),  # built below: unknown purpose id
        ("not_an_object", b"[1, 2, 3]"),
        ("oversize", b'{"request_id": "REQ", "stated_reason": "' + b"x" * 400_000 + b'"}'),
    ],
)
async def test_invalid_input_is_rejected_to_dlq_and_next_request_flows(
    hub: Hub, examples, label, payload
):  # type: ignore[no-untyped-def]
    ex = example(examples, "ex-01")
    bad_id = f"bad-{label}-{uuid.uuid4().hex[:8]}"
    if payload is None:
        data = json.loads(json.dumps(ex))
        data = {k: v for k, v in data.items() if k not in ("id", "title", "consents", "expected")}
        data["request_id"] = bad_id
        data["purpose"] = "because_i_said_so"
        payload = json.dumps(data).encode()
    else:
        payload = payload.replace(b"REQ", bad_id.encode())
    async with HubClient(hub.bootstrap_servers) as client:
        await client.publish(topics.REQUESTS, payload, "some-key")
        good_id = await publish_scenario(client, ex)
        dlq_rec = await client.wait_for(
            topics.DLQ,
            lambda r: (
                base64.b64decode(DeadLetter.model_validate_json(r.value).payload_b64) == payload
            ),
            timeout_s=90,
        )
        dead = DeadLetter.model_validate_json(dlq_rec.value)
        assert dead.stage.value == "consent"
        assert dead.reason_code in {"malformed_json", "schema_violation", "oversize"}
        # the reason names the problem, never a value from the message
        assert "Dolores" not in dead.reason and "because_i_said_so" not in dead.reason
        rejected = await client.wait_for(topics.OUTCOMES, outcome_for(dead.request_id))
        rejected_event = OutcomeEvent.model_validate_json(rejected.value)
        assert rejected_event.outcome is Outcome.REJECTED_INVALID
        if label in ("schema_violation", "oversize"):
            assert dead.request_id == bad_id
        if label == "oversize":
            assert dead.reason_code == "oversize"
        good = await client.wait_for(topics.OUTCOMES, outcome_for(good_id), timeout_s=90)
        assert OutcomeEvent.model_validate_json(good.value).outcome is Outcome.DELIVERED
    assert hub.check_alive() == []
