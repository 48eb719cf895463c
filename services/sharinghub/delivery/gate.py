"""Pure checks and message building of the delivery gate."""

from __future__ import annotations

from datetime import datetime, timedelta

from sharinghub.contracts import (
    ClientNotificationTask,
    Envelope,
    InboxMessage,
    Obligation,
    Outcome,
    ReviewCase,
    ReviewRequirement,
    Stage,
    topics,
)
from sharinghub.delivery.audit_build import outcome_event_for
from sharinghub.runtime.codec import encode


def payload_problem(env: Envelope) -> str | None:
    """Defence in depth for invariants 1–2, beyond the stamps: what is about to be delivered
    must be an approved decision's, field by field a subset of the record and of the allowed
    categories. Returns why not (no values), or None."""
    decision, redaction = env.policy, env.redaction
    if decision is None or redaction is None:
        return "envelope lacks a policy decision or a redaction result"
    if decision.outcome is not Outcome.DELIVERED:
        return "policy decision is not an approval"
    payload = redaction.payload
    if payload.request_id != env.request_id:
        return "payload belongs to another request"
    allowed = set(decision.allowed_categories)
    record = {f.name: f.category for f in env.request.record.fields}
    for field in payload.fields:
        if field.category not in allowed:
            return f"payload carries category {field.category.value} the policy did not allow"
        if record.get(field.name) != field.category:
            return "payload carries a field the record does not have"
    return None


def retrospective_case(env: Envelope, now: datetime, due: timedelta) -> ReviewCase | None:
    """Break-glass and urgent-risk deliveries open a mandatory after-the-fact review (B8)."""
    decision = env.policy
    assert decision is not None
    if Obligation.RETROSPECTIVE_REVIEW not in decision.obligations:
        return None
    request = env.request
    return ReviewCase(
        case_id=f"rr-{request.request_id}",
        request_id=request.request_id,
        kind="retrospective_review",
        requester_agency_id=request.requester.agency_id,
        recipient_agency_id=request.recipient.agency_id,
        purpose=request.purpose,
        jurisdiction=request.jurisdiction,
        requirement=ReviewRequirement(
            question="Confirm the facts and the basis of this emergency or urgent-risk "
            "disclosure, and escalate any misuse.",
            max_categories=list(decision.allowed_categories),
        ),
        excluded_reviewer=request.break_glass.declared_by if request.break_glass else None,
        opened_at=now,
        due_at=now + due,
    )


def delivery_messages(
    env: Envelope, now: datetime, case: ReviewCase | None
) -> list[tuple[str, bytes, str]]:
    """(topic, value, key) of everything a delivery publishes: inbox, outcome, tasks, review."""
    decision, redaction = env.policy, env.redaction
    assert decision is not None and redaction is not None
    request, payload = env.request, redaction.payload
    inbox = InboxMessage(
        delivery_id=f"dlv-{request.request_id}",
        request_id=request.request_id,
        purpose=request.purpose,
        jurisdiction=request.jurisdiction,
        requester_agency_id=request.requester.agency_id,
        subject_ref=payload.subject_ref,
        subject_ref_kind=payload.subject_ref_kind,
        fields=payload.fields,
        notices=payload.notices,
        delivered_at=now,
    )
    outcome = outcome_event_for(
        env,
        stage=Stage.DELIVERY,
        outcome=Outcome.DELIVERED,
        reason_code=decision.reason_code,
        reason=decision.explanation,
        now=now,
        review_case_id=case.case_id if case else None,
    )
    messages = [
        (topics.inbox_topic(request.recipient.agency_id), encode(inbox), request.request_id),
        (topics.OUTCOMES, encode(outcome), request.request_id),
    ]
    if Obligation.NOTIFY_CLIENT in decision.obligations:
        task = ClientNotificationTask(
            task_id=f"ntf-{request.request_id}",
            request_id=request.request_id,
            requester_agency_id=request.requester.agency_id,
            recipient_agency_id=request.recipient.agency_id,
            purpose=request.purpose,
            categories_shared=decision.allowed_categories,
            created_at=now,
        )
        messages.append((topics.NOTIFICATIONS, encode(task), request.request_id))
    if case is not None:
        messages.append((topics.REVIEW, encode(case), request.request_id))
    return messages
