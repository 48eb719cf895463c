"""Consent lifecycle end to end: grant → delivered; revoke → retraction notice to the earlier
recipient, acknowledged; next request denied; revoked while in flight → not delivered."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from sharinghub.consent.domain import assess_consent
from sharinghub.consent.retractions import RetractionStore
from sharinghub.consent.store import ConsentRegistry
from sharinghub.contracts import (
    ConsentGranted,
    ConsentRevoked,
    Envelope,
    InboxMessage,
    Outcome,
    OutcomeEvent,
    RetractionAck,
    RetractionNotice,
    SharingRequest,
    Stage,
    topics,
)
from sharinghub.policy.engine import PolicyEngine
from sharinghub.redaction.pseudonyms import new_pseudonym
from sharinghub.redaction.rules import redact
from sharinghub.runtime.codec import encode
from sharinghub.runtime.db import create_engine_for
from sharinghub.runtime.stamps import StageKeys, stamp
from sharinghub.tools.hub import Hub
from sharinghub.tools.scenarios import _scenario
from tests.e2e.test_pipeline import example
from tests.support.hubclient import HubClient, outcome_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def fresh(ex: dict, subject: str) -> tuple[SharingRequest, ConsentGranted]:  # type: ignore[type-arg]
    """The example as a new client's request (own subject, own ids), consent not revoked."""
    data = {**ex, "record": {**ex["record"], "subject_id": subject}}
    data["consents"] = [{**c, "revoked_at": None} for c in ex["consents"]]
    s = _scenario(data, uuid.uuid4().hex[:8])
    grant = s.directive_events[0]
    assert isinstance(grant, ConsentGranted)
    return s.request, grant


def again(request: SharingRequest) -> SharingRequest:
    return request.model_copy(
        update={
            "request_id": f"{request.request_id}-again",
            "requested_at": request.requested_at + timedelta(days=1),
        }
    )


async def outcome(client: HubClient, rid: str) -> OutcomeEvent:
    rec = await client.wait_for(topics.OUTCOMES, outcome_for(rid), timeout_s=90)
    return OutcomeEvent.model_validate_json(rec.value)


async def test_grant_deliver_revoke_retract_acknowledge_then_denied(hub: Hub, examples) -> None:  # type: ignore[no-untyped-def]
    ex = example(examples, "ex-01")
    request, grant = fresh(ex, f"subj-life-{uuid.uuid4().hex[:6]}")
    cid = grant.directive.consent_id
    recipient = request.recipient.agency_id
    inbox = topics.inbox_topic(recipient)
    async with HubClient(hub.bootstrap_servers) as client:
        await client.publish(topics.CONSENT_DIRECTIVES, encode(grant), cid)
        await client.publish(topics.REQUESTS, encode(request), request.subject_id)
        assert (await outcome(client, request.request_id)).outcome is Outcome.DELIVERED

        revoked_at = request.requested_at + timedelta(hours=1)
        revoke = ConsentRevoked(
            action="revoke",
            consent_id=cid,
            subject_id=request.subject_id,
            version=2,
            revoked_at=revoked_at,
        )
        await client.publish(topics.CONSENT_DIRECTIVES, encode(revoke), cid)
        notice_rec = await client.wait_for(
            inbox,
            lambda r: (
                b'"retraction"' in r.value
                and RetractionNotice.model_validate_json(r.value).consent_id == cid
            ),
        )
        notice = RetractionNotice.model_validate_json(notice_rec.value)
        assert notice.request_ids == [request.request_id]
        assert "another lawful basis" in notice.message

        later = again(request)
        await client.publish(topics.REQUESTS, encode(later), later.subject_id)
        denied = await outcome(client, later.request_id)
        assert denied.outcome is Outcome.DENIED

        engine = create_engine_for(hub.settings.database_url)
        store = RetractionStore(engine)
        assert notice.retraction_id in {r.retraction_id for r in store.unacknowledged()}
        ack = RetractionAck(
            retraction_id=notice.retraction_id,
            agency_id=recipient,
            acknowledged_by="pr-homes-007",
            acknowledged_at=datetime.now(UTC),
        )
        await client.publish(topics.RETRACTION_ACKS, encode(ack), notice.retraction_id)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if notice.retraction_id not in {r.retraction_id for r in store.unacknowledged()}:
                break
            await asyncio.sleep(0.3)
        assert notice.retraction_id not in {r.retraction_id for r in store.unacknowledged()}
        engine.dispose()
        # exactly one notice for that consent and recipient, however often the sweeper ran
        await client.settle(inbox, 2.5)
        notices = [
            r
            for r in client.seen[inbox]
            if b'"retraction"' in r.value
            and RetractionNotice.model_validate_json(r.value).consent_id == cid
        ]
        assert len(notices) == 1


async def test_consent_revoked_while_in_flight_is_not_delivered(hub: Hub, examples) -> None:  # type: ignore[no-untyped-def]
    ex = example(examples, "ex-01")
    request, grant = fresh(ex, f"subj-flight-{uuid.uuid4().hex[:6]}")
    cid = grant.directive.consent_id
    inbox = topics.inbox_topic(request.recipient.agency_id)
    keys = StageKeys.load(hub.settings.resolved_keys_file())
    now = datetime.now(UTC)
    # the request as it stood after policy approved it and redaction reduced it
    assessment = assess_consent(request, [grant.directive], assessed_at=now)
    decision = PolicyEngine.load().decide(request, assessment, now=now)
    assert decision.outcome is Outcome.DELIVERED and decision.consent_based
    env = stamp(
        Envelope(request=request, received_at=now, consent=assessment), Stage.CONSENT, keys, "t"
    )
    env = stamp(env.model_copy(update={"policy": decision}), Stage.POLICY, keys, "t")
    result = redact(request, decision, pseudonym=new_pseudonym(), now=now)
    env = stamp(env.model_copy(update={"redaction": result}), Stage.REDACTION, keys, "t")

    async with HubClient(hub.bootstrap_servers) as client:
        await client.publish(topics.CONSENT_DIRECTIVES, encode(grant), cid)
        revoke = ConsentRevoked(
            action="revoke",
            consent_id=cid,
            subject_id=request.subject_id,
            version=2,
            revoked_at=datetime.now(UTC),
        )
        await client.publish(topics.CONSENT_DIRECTIVES, encode(revoke), cid)
        engine = create_engine_for(hub.settings.database_url)
        registry = ConsentRegistry(engine)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(registry.history(cid)) < 2:
            await asyncio.sleep(0.2)
        engine.dispose()
        assert len(registry.history(cid)) == 2

        await client.publish(topics.REDACTED, encode(env), request.subject_id)
        final = await outcome(client, request.request_id)
        assert final.outcome is Outcome.DENIED
        assert final.reason_code == "consent_withdrawn"
        await client.settle(inbox, 2.0)
        assert all(
            InboxMessage.model_validate_json(r.value).request_id != request.request_id
            for r in client.seen[inbox]
            if b'"disclosure"' in r.value
        )
