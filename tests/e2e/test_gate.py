"""The delivery gate: forged or altered envelopes are never delivered; replays deliver once."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from sharinghub.contracts import (
    DataCategory,
    DeadLetter,
    DeliveredField,
    Envelope,
    Outcome,
    OutcomeEvent,
    topics,
)
from sharinghub.delivery.ledger import AuditLedgerRow
from sharinghub.runtime.codec import encode
from sharinghub.runtime.db import create_engine_for
from sharinghub.tools.hub import Hub
from tests.e2e.test_pipeline import example, publish_scenario
from tests.support.hubclient import HubClient, disclosure_for, outcome_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


async def delivered_envelope(client: HubClient, ex: dict) -> tuple[str, Envelope]:  # type: ignore[type-arg]
    rid = await publish_scenario(client, ex)
    rec = await client.wait_for(topics.OUTCOMES, outcome_for(rid), timeout_s=90)
    assert OutcomeEvent.model_validate_json(rec.value).outcome is Outcome.DELIVERED
    env_rec = await client.wait_for(
        topics.REDACTED, lambda r: Envelope.model_validate_json(r.value).request_id == rid
    )
    return rid, Envelope.model_validate_json(env_rec.value)


def inbox_count(client: HubClient, topic: str, rid: str) -> int:
    return sum(disclosure_for(rid)(r) for r in client.seen[topic])


def audit_rows(hub: Hub, rid: str) -> int:
    engine = create_engine_for(hub.settings.database_url)
    with engine.connect() as conn:
        n = conn.execute(
            select(func.count()).select_from(AuditLedgerRow).where(AuditLedgerRow.request_id == rid)
        ).scalar_one()
    engine.dispose()
    return int(n)


async def test_replaying_an_envelope_delivers_once_and_audits_once(hub: Hub, examples) -> None:  # type: ignore[no-untyped-def]
    ex = example(examples, "ex-02")
    inbox = topics.inbox_topic(ex["recipient"]["agency_id"])
    async with HubClient(hub.bootstrap_servers) as client:
        rid, env = await delivered_envelope(client, ex)
        for _ in range(5):
            await client.publish(topics.REDACTED, encode(env), env.request.subject_id)
        await client.settle(inbox, 4.0)
        assert inbox_count(client, inbox, rid) == 1
        await client.settle(topics.OUTCOMES, 1.0)
        finals = [
            r
            for r in client.seen[topics.OUTCOMES]
            if OutcomeEvent.model_validate_json(r.value).request_id == rid
        ]
        assert len(finals) == 1
    assert audit_rows(hub, rid) == 1


async def test_envelope_altered_after_redaction_is_never_delivered(hub: Hub, examples) -> None:  # type: ignore[no-untyped-def]
    ex = example(examples, "ex-01")
    inbox = topics.inbox_topic(ex["recipient"]["agency_id"])
    async with HubClient(hub.bootstrap_servers) as client:
        _, env = await delivered_envelope(client, ex)
        forged_id = f"forged-{uuid.uuid4().hex[:8]}"
        assert env.redaction is not None
        payload = env.redaction.payload.model_copy(
            update={
                "request_id": forged_id,
                "fields": [
                    *env.redaction.payload.fields,
                    DeliveredField(
                        name="mental_health_diagnosis", category=DataCategory.IDENTITY, value="x"
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
        dead = await client.wait_for(
            topics.DLQ,
            lambda r: DeadLetter.model_validate_json(r.value).request_id == forged_id,
            timeout_s=60,
        )
        dead_letter = DeadLetter.model_validate_json(dead.value)
        assert dead_letter.stage.value == "delivery"
        assert dead_letter.reason_code == "stamp_invalid"
        await client.settle(inbox, 3.0)
        assert inbox_count(client, inbox, forged_id) == 0


async def test_envelope_injected_without_policy_stamp_is_never_delivered(
    hub: Hub, examples
) -> None:  # type: ignore[no-untyped-def]
    ex = example(examples, "ex-01")
    inbox = topics.inbox_topic(ex["recipient"]["agency_id"])
    async with HubClient(hub.bootstrap_servers) as client:
        _, env = await delivered_envelope(client, ex)
        injected_id = f"injected-{uuid.uuid4().hex[:8]}"
        assert env.redaction is not None
        injected = env.model_copy(
            update={
                "request": env.request.model_copy(update={"request_id": injected_id}),
                "redaction": env.redaction.model_copy(
                    update={
                        "payload": env.redaction.payload.model_copy(
                            update={"request_id": injected_id}
                        )
                    }
                ),
                "stamps": [s for s in env.stamps if s.stage.value != "policy"],
            }
        )
        await client.publish(topics.REDACTED, encode(injected), env.request.subject_id)
        await client.wait_for(
            topics.DLQ,
            lambda r: DeadLetter.model_validate_json(r.value).request_id == injected_id,
            timeout_s=60,
        )
        await client.settle(inbox, 3.0)
        assert inbox_count(client, inbox, injected_id) == 0
        assert all(
            OutcomeEvent.model_validate_json(r.value).request_id != injected_id
            for r in client.seen[topics.OUTCOMES]
        )
    assert audit_rows(hub, injected_id) == 0
