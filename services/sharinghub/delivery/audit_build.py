"""Build audit records and outcome events from an envelope (ids and categories only)."""

from __future__ import annotations

from datetime import datetime

from opentelemetry import trace

from sharinghub.contracts import (
    Envelope,
    Outcome,
    OutcomeEvent,
    PolicyDecision,
    Stage,
)
from sharinghub.delivery.audit_record import AuditRecord, payload_digest, subject_ref_hash


def current_trace_id() -> str | None:
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None


def audit_record_for(
    envelope: Envelope,
    *,
    stage: Stage,
    outcome: Outcome,
    final: bool,
    reason_code: str,
    decision_seq: int,
    subject_key: bytes,
    now: datetime,
    decision: PolicyDecision | None = None,
    trace_id: str | None = None,
) -> AuditRecord:
    """The ledger row for one decision: who, what purpose, which rules, which field names."""
    request = envelope.request
    decision = decision or envelope.policy
    redaction = envelope.redaction if outcome is Outcome.DELIVERED else None
    delivered = [f.name for f in redaction.payload.fields] if redaction else []
    delivered_set = set(delivered)
    return AuditRecord(
        request_id=request.request_id,
        decision_seq=decision_seq,
        recorded_at=now,
        stage=stage,
        outcome=outcome,
        final=final,
        reason_code=reason_code,
        requester_agency_id=request.requester.agency_id,
        requester_agency_type=request.requester.agency_type,
        recipient_agency_id=request.recipient.agency_id,
        recipient_agency_type=request.recipient.agency_type,
        purpose=request.purpose,
        jurisdiction=request.jurisdiction,
        subject_id=request.subject_id,
        subject_ref_hash=subject_ref_hash(request.subject_id, subject_key),
        pack_id=decision.pack_id if decision else None,
        pack_version=decision.pack_version if decision else None,
        consents_used=list(decision.consents_used) if decision else [],
        facts=request.facts.model_dump(mode="json"),
        allowed_categories=list(decision.allowed_categories)
        if decision and outcome is Outcome.DELIVERED
        else [],
        withheld_categories=list(decision.withheld_categories) if decision else [],
        withheld_field_names=[f.name for f in request.record.fields if f.name not in delivered_set],
        delivered_field_names=delivered,
        obligations=list(decision.obligations) if decision and outcome is Outcome.DELIVERED else [],
        reviewer_id=decision.decided_by if decision else None,
        break_glass=request.break_glass is not None,
        break_glass_declared_by=request.break_glass.declared_by if request.break_glass else None,
        pseudonym=redaction.pseudonym if redaction else None,
        payload_digest=payload_digest(redaction.payload) if redaction else None,
        manifest=list(redaction.manifest) if redaction else [],
        trace_id=trace_id or current_trace_id(),
    )


def outcome_event_for(
    envelope: Envelope,
    *,
    stage: Stage,
    outcome: Outcome,
    reason_code: str,
    reason: str,
    now: datetime,
    decision: PolicyDecision | None = None,
    review_case_id: str | None = None,
) -> OutcomeEvent:
    """The outcome event; categories and obligations only for `delivered` (B1)."""
    request = envelope.request
    decision = decision or envelope.policy
    delivered = outcome is Outcome.DELIVERED
    return OutcomeEvent(
        request_id=request.request_id,
        outcome=outcome,
        final=outcome is not Outcome.PENDING_REVIEW,
        stage=stage,
        reason_code=reason_code,
        reason=reason,
        requester_agency_id=request.requester.agency_id,
        recipient_agency_id=request.recipient.agency_id,
        purpose=request.purpose,
        jurisdiction=request.jurisdiction,
        allowed_categories=list(decision.allowed_categories) if decision and delivered else [],
        obligations=list(decision.obligations) if decision and delivered else [],
        pack_id=decision.pack_id if decision else None,
        pack_version=decision.pack_version if decision else None,
        consents_used=list(decision.consents_used) if decision else [],
        review_case_id=review_case_id,
        decided_at=now,
    )
