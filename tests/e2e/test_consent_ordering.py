"""The ordering guarantee between the directive topic and the request topic.

A directive the broker acknowledged before a request was published is always honoured for
that request, although the two travel on different topics and partitions: the consent stage
applies every directive the broker held when a batch of requests arrived before assessing it.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from sharinghub.contracts import Outcome, OutcomeEvent, topics
from sharinghub.runtime.codec import encode
from sharinghub.tools.hub import Hub
from tests.e2e.test_consent_lifecycle import fresh
from tests.e2e.test_pipeline import example
from tests.support.hubclient import HubClient, outcome_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


async def test_a_directive_acknowledged_before_the_request_is_always_honoured(
    hub: Hub,
    examples,  # type: ignore[no-untyped-def]
) -> None:
    ex = example(examples, "ex-01")
    pairs = [fresh(ex, f"subj-order-{uuid.uuid4().hex[:8]}") for _ in range(20)]
    async with HubClient(hub.bootstrap_servers) as client:
        for request, grant in pairs:
            # grant acknowledged, then the request at once: no pause for the registry
            await client.publish(
                topics.CONSENT_DIRECTIVES, encode(grant), grant.directive.consent_id
            )
            await client.publish(topics.REQUESTS, encode(request), request.subject_id)
        records = await asyncio.gather(
            *(client.wait_for(topics.OUTCOMES, outcome_for(r.request_id), 90) for r, _ in pairs)
        )
    outcomes = [OutcomeEvent.model_validate_json(rec.value).outcome for rec in records]
    assert outcomes == [Outcome.DELIVERED] * len(pairs)
