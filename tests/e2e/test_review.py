"""Human review: nothing is delivered until a reviewer approves; approval delivers once and
can only narrow what the policy allows; the trace continues after approval."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from sharinghub.contracts import (
    DataCategory,
    DeadLetter,
    InboxMessage,
    Outcome,
    OutcomeEvent,
    ReviewCase,
    ReviewDecision,
    topics,
)
from sharinghub.runtime.codec import encode
from sharinghub.tools.hub import Hub
from tests.e2e.test_gate import audit_rows
from tests.e2e.test_pipeline import example, publish_scenario
from tests.e2e.test_tracing import spans_of
from tests.support.hubclient import HubClient, disclosure_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def outcomes(client: HubClient, rid: str) -> list[OutcomeEvent]:
    events = [OutcomeEvent.model_validate_json(r.value) for r in client.seen[topics.OUTCOMES]]
    return [e for e in events if e.request_id == rid]


def inbox_of(client: HubClient, topic: str, rid: str) -> list[InboxMessage]:
    msgs = [
        InboxMessage.model_validate_json(r.value)
        for r in client.seen[topic]
        if b'"kind":"disclosure"' in r.value
    ]
    return [m for m in msgs if m.request_id == rid]


def decision(case: ReviewCase, verdict: str, categories: list[DataCategory]) -> bytes:
    return encode(
        ReviewDecision(
            case_id=case.case_id,
            request_id=case.request_id,
            decision=verdict,  # type: ignore[arg-type]
            categories=categories,
            reviewer_id="rv-caldicott-01",
            reason="Threat assessed with the team; warning is proportionate.",
            decided_at=datetime.now(UTC),
        )
    )


async def test_pending_request_is_delivered_once_only_after_a_narrowing_approval(
    hub: Hub,
    examples,  # type: ignore[no-untyped-def]
) -> None:
    ex = example(examples, "ex-12")
    inbox = topics.inbox_topic(ex["recipient"]["agency_id"])
    async with HubClient(hub.bootstrap_servers) as client:
        rid = await publish_scenario(client, ex)
        case_rec = await client.wait_for(
            topics.REVIEW, lambda r: ReviewCase.model_validate_json(r.value).request_id == rid
        )
        case = ReviewCase.model_validate_json(case_rec.value)
        assert case.kind == "pending_review"
        assert case.requirement.max_categories
        first = outcomes(client, rid) or [
            OutcomeEvent.model_validate_json(
                (await client.wait_for(topics.OUTCOMES, lambda r: rid.encode() in r.value)).value
            )
        ]
        assert first[0].outcome is Outcome.PENDING_REVIEW and first[0].final is False
        assert first[0].allowed_categories == []
        await client.settle(inbox, 2.0)
        assert inbox_of(client, inbox, rid) == []

        # widening beyond what the pack permits is refused and delivers nothing
        wider = [*case.requirement.max_categories, DataCategory.FINANCIAL]
        await client.publish(topics.REVIEW_DECISIONS, decision(case, "approve", wider), rid)
        dead = await client.wait_for(
            topics.DLQ, lambda r: DeadLetter.model_validate_json(r.value).request_id == rid
        )
        assert DeadLetter.model_validate_json(dead.value).reason_code == "review_out_of_bounds"
        await client.settle(inbox, 2.0)
        assert inbox_of(client, inbox, rid) == []

        narrowed = [c for c in case.requirement.max_categories if c is not DataCategory.CONTACT]
        await client.publish(topics.REVIEW_DECISIONS, decision(case, "approve", narrowed), rid)
        msg_rec = await client.wait_for(inbox, disclosure_for(rid))
        msg = InboxMessage.model_validate_json(msg_rec.value)
        assert {f.category for f in msg.fields} <= set(narrowed)
        # a replayed approval does not deliver again
        await client.publish(topics.REVIEW_DECISIONS, decision(case, "approve", narrowed), rid)
        await client.settle(inbox, 3.0)
        await client.settle(topics.OUTCOMES, 1.0)
        assert len(inbox_of(client, inbox, rid)) == 1
        finals = [e for e in outcomes(client, rid) if e.final]
        assert len(finals) == 1 and finals[0].outcome is Outcome.DELIVERED
        assert set(finals[0].allowed_categories) <= set(narrowed)
    assert audit_rows(hub, rid) == 2  # the pending decision and the reviewed one
    spans = await asyncio.to_thread(spans_of, hub, rid, 4)
    # the reviewer's own action is its own trace; the resumed pipeline continues the request's
    trace_of = {
        s["service"]: s["trace_id"]
        for s in spans
        if s["attributes"].get("sharinghub.request_id") == rid
        and s["service"] in ("sharinghub-consent", "sharinghub-redaction", "sharinghub-delivery")
    }
    assert len(trace_of) == 3
    assert len(set(trace_of.values())) == 1, "review must continue the request's trace"


async def test_reviewer_denial_is_final_and_delivers_nothing(hub: Hub, examples) -> None:  # type: ignore[no-untyped-def]
    ex = example(examples, "ex-12")
    inbox = topics.inbox_topic(ex["recipient"]["agency_id"])
    async with HubClient(hub.bootstrap_servers) as client:
        rid = await publish_scenario(client, ex)
        case_rec = await client.wait_for(
            topics.REVIEW, lambda r: ReviewCase.model_validate_json(r.value).request_id == rid
        )
        case = ReviewCase.model_validate_json(case_rec.value)
        await client.publish(topics.REVIEW_DECISIONS, decision(case, "deny", []), rid)
        await client.wait_for(
            topics.OUTCOMES,
            lambda r: (
                OutcomeEvent.model_validate_json(r.value).request_id == rid
                and OutcomeEvent.model_validate_json(r.value).final
            ),
        )
        final = next(e for e in outcomes(client, rid) if e.final)
        assert final.outcome is Outcome.DENIED and final.allowed_categories == []
        await client.settle(inbox, 2.0)
        assert inbox_of(client, inbox, rid) == []
