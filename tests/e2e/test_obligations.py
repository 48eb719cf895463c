"""Obligations end to end: B8 break-glass opens a retrospective review, B9 notification tasks
follow table O, B11/B13 the audit record holds what a board needs — and no value."""

from __future__ import annotations

import uuid

import pytest

from sharinghub.contracts import (
    BreakGlass,
    ClientNotificationTask,
    Obligation,
    Outcome,
    OutcomeEvent,
    topics,
)
from sharinghub.delivery.ledger import AuditLedger
from sharinghub.policy.reviews import ReviewStore
from sharinghub.runtime.codec import encode
from sharinghub.runtime.db import create_engine_for
from sharinghub.tools.hub import Hub
from sharinghub.tools.scenarios import _scenario
from tests.e2e.test_pipeline import example, publish_scenario
from tests.support.hubclient import HubClient, outcome_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


async def final_outcome(client: HubClient, rid: str) -> OutcomeEvent:
    rec = await client.wait_for(topics.OUTCOMES, outcome_for(rid), timeout_s=90)
    return OutcomeEvent.model_validate_json(rec.value)


def tasks_for(client: HubClient, rid: str) -> list[ClientNotificationTask]:
    tasks = [
        ClientNotificationTask.model_validate_json(r.value)
        for r in client.seen[topics.NOTIFICATIONS]
    ]
    return [t for t in tasks if t.request_id == rid]


async def test_b9_notify_client_creates_a_task_and_withheld_risk_creates_none(
    hub: Hub, examples
) -> None:  # type: ignore[no-untyped-def]
    async with HubClient(hub.bootstrap_servers) as client:
        notify_rid = await publish_scenario(client, example(examples, "ex-06"))
        withheld_rid = await publish_scenario(client, example(examples, "ex-03"))
        notify = await final_outcome(client, notify_rid)
        withheld = await final_outcome(client, withheld_rid)
        assert Obligation.NOTIFY_CLIENT in notify.obligations
        assert Obligation.NOTIFICATION_WITHHELD_RISK in withheld.obligations
        await client.wait_for(
            topics.NOTIFICATIONS,
            lambda r: ClientNotificationTask.model_validate_json(r.value).request_id == notify_rid,
        )
        await client.settle(topics.NOTIFICATIONS, 2.0)
        [task] = tasks_for(client, notify_rid)
        assert set(task.categories_shared) == set(notify.allowed_categories)
        assert tasks_for(client, withheld_rid) == []
    # who decided and why is in the audit record: the requester asserted the risk fact
    engine = create_engine_for(hub.settings.database_url)
    record = next(
        r
        for r in AuditLedger(engine).records_for_subject(
            example(examples, "ex-03")["record"]["subject_id"]
        )
        if r.request_id == withheld_rid
    )
    engine.dispose()
    assert record.facts["informing_increases_risk"] is True
    assert record.requester_agency_id == example(examples, "ex-03")["requester"]["agency_id"]


async def test_b8_break_glass_delivery_opens_a_retrospective_review(hub: Hub, examples) -> None:  # type: ignore[no-untyped-def]
    ex = example(examples, "ex-10")  # Part 2 program → ED; emergency: delivered, reviewed after
    s = _scenario(ex, uuid.uuid4().hex[:8])
    request = s.request.model_copy(
        update={
            "facts": s.request.facts.model_copy(update={"emergency": None}),
            "break_glass": BreakGlass(
                declared_by="pr-recovery-0042",
                justification="Unresponsive patient; ED needs the MAT dose.",
            ),
        }
    )
    async with HubClient(hub.bootstrap_servers) as client:
        await client.publish(topics.REQUESTS, encode(request), request.subject_id)
        final = await final_outcome(client, request.request_id)
    assert final.outcome is Outcome.DELIVERED
    assert Obligation.RETROSPECTIVE_REVIEW in final.obligations
    assert final.review_case_id == f"rr-{request.request_id}"
    engine = create_engine_for(hub.settings.database_url)
    found = ReviewStore(engine).get(final.review_case_id)
    records = AuditLedger(engine).records_for_subject(request.subject_id)
    engine.dispose()
    assert found is not None
    case, status = found.case, found.status
    assert case.kind == "retrospective_review" and status == "open"
    assert found.envelope.request.request_id == request.request_id  # kept whole, as verified
    assert case.excluded_reviewer == "pr-recovery-0042"  # someone other than the requester
    [record] = [r for r in records if r.request_id == request.request_id]
    assert record.break_glass and record.break_glass_declared_by == "pr-recovery-0042"


async def test_b11_b13_audit_record_per_decision_holds_rules_consents_facts_not_values(
    hub: Hub, examples
) -> None:  # type: ignore[no-untyped-def]
    ex = example(examples, "ex-01")
    # a client of its own, so no consent from another test's run is on file for it
    ex = {**ex, "record": {**ex["record"], "subject_id": f"subj-b11-{uuid.uuid4().hex[:8]}"}}
    async with HubClient(hub.bootstrap_servers) as client:
        rid = await publish_scenario(client, ex)
        await final_outcome(client, rid)
    engine = create_engine_for(hub.settings.database_url)
    ledger = AuditLedger(engine)
    [record] = [
        r for r in ledger.records_for_subject(ex["record"]["subject_id"]) if r.request_id == rid
    ]
    report = ledger.verify()
    engine.dispose()
    assert report.ok
    assert record.outcome is Outcome.DELIVERED and record.final
    assert record.pack_id == "uk_england" and record.pack_version
    assert [c.consent_id.split(".")[0] for c in record.consents_used] == ["cd-ex01-a"]
    assert record.facts["subject_is_minor"] is False
    assert set(record.withheld_field_names) == set(ex["expected"]["must_exclude_fields"])
    assert record.payload_digest and record.manifest
    dumped = record.model_dump_json()
    for field in ex["record"]["fields"]:
        assert field["value"] not in dumped
    assert ex["stated_reason"] not in dumped


async def test_break_glass_by_an_unauthorised_practitioner_is_refused_and_recorded(
    hub: Hub,
    examples,  # type: ignore[no-untyped-def]
) -> None:
    ex = example(examples, "ex-10")
    s = _scenario(ex, uuid.uuid4().hex[:8])
    request = s.request.model_copy(
        update={
            "break_glass": BreakGlass(
                declared_by="pr-not-on-the-list", justification="Says it is urgent."
            ),
        }
    )
    async with HubClient(hub.bootstrap_servers) as client:
        await client.publish(topics.REQUESTS, encode(request), request.subject_id)
        final = await final_outcome(client, request.request_id)
    assert final.outcome is Outcome.REJECTED_INVALID
    assert final.reason_code == "break_glass.not_authorised"
    engine = create_engine_for(hub.settings.database_url)
    records = AuditLedger(engine).records_for_subject(request.subject_id)
    engine.dispose()
    [record] = [r for r in records if r.request_id == request.request_id]
    assert record.break_glass and record.break_glass_declared_by == "pr-not-on-the-list"
