"""One trace per request across the four service processes (W3C context in Kafka headers)."""

from __future__ import annotations

import asyncio
import itertools
import json
import time

import pytest

from sharinghub.contracts import Outcome, OutcomeEvent, topics
from sharinghub.tools.hub import Hub
from tests.e2e.test_pipeline import example, publish_scenario
from tests.support.hubclient import HubClient, outcome_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


def spans_of(hub: Hub, request_id: str, want_services: int, timeout_s: float = 20.0) -> list[dict]:  # type: ignore[type-arg]
    path = hub.settings.resolved_trace_file()
    deadline = time.monotonic() + timeout_s
    spans: list[dict] = []  # type: ignore[type-arg]
    while time.monotonic() < deadline:
        if path.exists():
            spans = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            mine = [s for s in spans if s["attributes"].get("sharinghub.request_id") == request_id]
            if len({s["service"] for s in mine}) >= want_services:
                trace_ids = {s["trace_id"] for s in mine}
                return [s for s in spans if s["trace_id"] in trace_ids]
        time.sleep(0.5)
    return [s for s in spans if s["attributes"].get("sharinghub.request_id") == request_id]


async def test_delivered_request_is_one_trace_through_all_four_services(hub: Hub, examples) -> None:  # type: ignore[no-untyped-def]
    ex = example(examples, "ex-01")
    async with HubClient(hub.bootstrap_servers) as client:
        rid = await publish_scenario(client, ex)
        rec = await client.wait_for(topics.OUTCOMES, outcome_for(rid), timeout_s=90)
        assert OutcomeEvent.model_validate_json(rec.value).outcome is Outcome.DELIVERED
    spans = await asyncio.to_thread(spans_of, hub, rid, 4)
    assert len({s["trace_id"] for s in spans}) == 1, "the request must be exactly one trace"
    by_service = {s["service"]: s for s in spans}
    assert set(by_service) >= {
        "sharinghub-consent",
        "sharinghub-policy",
        "sharinghub-redaction",
        "sharinghub-delivery",
    }
    # parent links: each stage's span is the child of the previous stage's span
    chain = [
        "sharinghub-consent",
        "sharinghub-policy",
        "sharinghub-redaction",
        "sharinghub-delivery",
    ]
    for parent, child in itertools.pairwise(chain):
        assert by_service[child]["parent_id"] == by_service[parent]["span_id"]


async def test_denied_request_trace_ends_at_policy(hub: Hub, examples) -> None:  # type: ignore[no-untyped-def]
    ex = example(examples, "ex-09")
    async with HubClient(hub.bootstrap_servers) as client:
        rid = await publish_scenario(client, ex)
        await client.wait_for(topics.OUTCOMES, outcome_for(rid), timeout_s=90)
    spans = await asyncio.to_thread(spans_of, hub, rid, 2)
    services = {s["service"] for s in spans}
    assert services == {"sharinghub-consent", "sharinghub-policy"}
    assert len({s["trace_id"] for s in spans}) == 1
