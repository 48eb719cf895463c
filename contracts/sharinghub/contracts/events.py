"""Events the hub emits: outcomes, inbox messages, review cases/decisions, DLQ entries."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field

from sharinghub.contracts.base import AgencyId, Contract, RequestId
from sharinghub.contracts.envelope import ConsentRef, DeliveredField, Notice, ReviewRequirement
from sharinghub.contracts.vocabulary import (
    DataCategory,
    Jurisdiction,
    Obligation,
    Outcome,
    Purpose,
    Stage,
)


class OutcomeEvent(Contract):
    """The outcome of a request on ``sharinghub.outcomes.v1`` (keyed by request id).

    Every request gets exactly one *final* outcome; `pending_review` is not final and is
    later followed by one. Carries ids and categories only, never a field value.
    """

    schema_version: Literal["1"] = Field(default="1", description="Contract version.")
    request_id: str = Field(
        description="The request's id, or a hub-made id when none could be read.",
        examples=["req-2025-03-04-0001"],
    )
    outcome: Outcome
    final: bool = Field(description="False only for pending_review.")
    stage: Stage = Field(description="Stage that decided.", examples=["delivery"])
    reason_code: str = Field(description="Machine-readable reason.", examples=["delivered"])
    reason: str = Field(description="Human-readable reason; never a field value or a name.")
    requester_agency_id: str | None = None
    recipient_agency_id: str | None = None
    purpose: Purpose | None = None
    jurisdiction: Jurisdiction | None = None
    allowed_categories: list[DataCategory] = Field(
        default_factory=list, description="Empty unless delivered (B1)."
    )
    obligations: list[Obligation] = Field(
        default_factory=list, description="Empty unless delivered (B1)."
    )
    pack_id: str | None = None
    pack_version: str | None = None
    consents_used: list[ConsentRef] = Field(default_factory=list)
    review_case_id: str | None = None
    decided_at: AwareDatetime


class InboxMessage(Contract):
    """What a recipient agency finds on ``agency.<agency_id>.inbox.v1`` (rule S1)."""

    schema_version: Literal["1"] = Field(default="1", description="Contract version.")
    kind: Literal["disclosure"] = Field(default="disclosure", description="Message kind.")
    delivery_id: str = Field(description="Unique id of this delivery.")
    request_id: RequestId
    purpose: Purpose
    jurisdiction: Jurisdiction
    requester_agency_id: AgencyId
    subject_ref: str = Field(description="Subject id, or a one-time pseudonym (rule S2).")
    subject_ref_kind: Literal["subject_id", "pseudonym"]
    fields: list[DeliveredField] = Field(description="Only allowed, scrubbed fields.")
    notices: list[Notice] = Field(default_factory=list, description="Re-disclosure notices.")
    delivered_at: AwareDatetime


class ReviewCase(Contract):
    """A case for a human reviewer on ``sharinghub.review.v1`` (internal, never to recipients)."""

    schema_version: Literal["1"] = Field(default="1", description="Contract version.")
    case_id: str
    request_id: RequestId
    kind: Literal["pending_review", "retrospective_review"]
    requester_agency_id: AgencyId
    recipient_agency_id: AgencyId
    purpose: Purpose
    jurisdiction: Jurisdiction
    requirement: ReviewRequirement
    excluded_reviewer: str | None = Field(
        default=None, description="Who may not review it (the requester, for break-glass)."
    )
    opened_at: AwareDatetime
    due_at: AwareDatetime


class ReviewDecision(Contract):
    """A reviewer's decision on ``sharinghub.review.decisions.v1``."""

    schema_version: Literal["1"] = Field(default="1", description="Contract version.")
    case_id: str
    request_id: RequestId
    decision: Literal["approve", "deny", "request_facts"]
    categories: list[DataCategory] = Field(
        default_factory=list, description="For approve: at most the case's max_categories."
    )
    reviewer_id: str = Field(min_length=1, max_length=100, description="Reviewer's id.")
    reason: str = Field(min_length=1, max_length=4000, description="Recorded for audit.")
    decided_at: AwareDatetime


class DeadLetter(Contract):
    """A message a stage could not process, kept whole so nothing is lost (invariant 8)."""

    schema_version: Literal["1"] = Field(default="1", description="Contract version.")
    dlq_id: str
    stage: Stage
    source_topic: str
    partition: int
    offset: int
    key_b64: str | None = Field(default=None, description="Original key, base64.")
    request_id: str | None = Field(default=None, description="Request id, if it could be read.")
    reason_code: str = Field(examples=["schema_violation"])
    reason: str = Field(description="What was wrong (paths and rule names, never values).")
    payload_b64: str = Field(description="The original message bytes, base64.")
    failed_at: AwareDatetime


class ClientNotificationTask(Contract):
    """A task on ``sharinghub.notifications.v1``: tell the client what was shared (table O).

    Never emitted when the decision carries `notification_withheld_risk`; the audit record then
    holds who decided (the requester, from the `informing_increases_risk` fact) and why.
    """

    schema_version: Literal["1"] = Field(default="1", description="Contract version.")
    task_id: str = Field(description="Unique id (derived from the request id).")
    request_id: RequestId
    requester_agency_id: AgencyId = Field(description="Agency that must tell its client.")
    recipient_agency_id: AgencyId = Field(description="Who received the data.")
    purpose: Purpose
    categories_shared: list[DataCategory] = Field(description="What was shared (categories).")
    created_at: AwareDatetime


class RetractionNotice(Contract):
    """On the recipient's inbox: consent behind an earlier disclosure has been withdrawn.

    Further use of the data needs another lawful basis. The recipient acknowledges it on
    ``sharinghub.retractions.acks.v1``; unacknowledged notices are visible to governance.
    """

    schema_version: Literal["1"] = Field(default="1", description="Contract version.")
    kind: Literal["retraction"] = Field(default="retraction", description="Message kind.")
    retraction_id: str = Field(description="Unique id; quote it in the acknowledgement.")
    consent_id: str = Field(description="The withdrawn consent directive.")
    request_ids: list[RequestId] = Field(description="Deliveries that relied on it.")
    revoked_at: AwareDatetime
    message: str = Field(
        description="Plain words: consent was withdrawn; further use needs another lawful basis."
    )
    issued_at: AwareDatetime


class RetractionAck(Contract):
    """A recipient's acknowledgement of a retraction notice."""

    schema_version: Literal["1"] = Field(default="1", description="Contract version.")
    retraction_id: str
    agency_id: AgencyId = Field(description="The acknowledging (recipient) agency.")
    acknowledged_by: str = Field(
        min_length=1, max_length=100, description="Practitioner id (not a name)."
    )
    acknowledged_at: AwareDatetime


class ReviewEscalated(Contract):
    """On ``sharinghub.review.escalations.v1``: a review case was not decided in time."""

    schema_version: Literal["1"] = Field(default="1", description="Contract version.")
    case_id: str
    request_id: RequestId
    kind: Literal["pending_review", "retrospective_review"]
    purpose: Purpose
    jurisdiction: Jurisdiction
    opened_at: AwareDatetime
    due_at: AwareDatetime
    escalated_at: AwareDatetime
    hours_overdue: float = Field(ge=0, description="How long past its due time.")
