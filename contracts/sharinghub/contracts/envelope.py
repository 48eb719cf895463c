"""The envelope that travels through the stage topics, and each stage's result and stamp."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field

from sharinghub.contracts.base import Contract
from sharinghub.contracts.consent import ConsentId, Version
from sharinghub.contracts.request import SharingRequest
from sharinghub.contracts.vocabulary import DataCategory, Obligation, Outcome, Stage


class ConsentRef(Contract):
    """A consent directive at the exact version a decision relied on (invariant 10)."""

    consent_id: ConsentId
    version: Version


class DirectiveFinding(Contract):
    """How one directive on file fared against the request, category by category."""

    consent: ConsentRef
    supports: list[DataCategory] = Field(
        default_factory=list, description="Requested categories this directive supports."
    )
    reasons: list[str] = Field(
        default_factory=list,
        description="Rule codes why it supports nothing or not some categories "
        "(e.g. 'C1.expired', 'C3.other_recipient', 'C5.excluded:mental_health').",
        examples=[["C1.expired"]],
    )


class ConsentAssessment(Contract):
    """Consent stage result: which directives match the request and what they support."""

    directives_considered: list[ConsentRef] = Field(
        default_factory=list, description="Every directive of the subject looked at."
    )
    supported: dict[DataCategory, list[ConsentRef]] = Field(
        default_factory=dict,
        description="Requested categories supported by at least one directive, with those "
        "directives.",
    )
    findings: list[DirectiveFinding] = Field(
        default_factory=list, description="Per-directive result and reasons."
    )
    minor_self_consent: bool = Field(
        default=False,
        description="A consent granted by the (minor) client meets C1–C3; in uk_england this "
        "sends the request to review for a competence assessment.",
    )
    assessed_at: AwareDatetime = Field(description="When the assessment was made.")


class CategoryDecision(Contract):
    """Policy verdict for one requested category with the rules that determined it."""

    category: DataCategory
    decision: Literal["permit", "forbid"] = Field(
        description="permit: may be delivered; forbid: withheld."
    )
    policy_ids: list[str] = Field(
        default_factory=list,
        description="@id of every policy that determined the verdict.",
        examples=[["P.consent_based_sharing.consented"]],
    )


class ReviewRequirement(Contract):
    """What a reviewer is asked to judge for a `pending_review` decision (internal view)."""

    question: str = Field(description="What the law leaves to human judgment (no values).")
    missing_facts: list[str] = Field(
        default_factory=list, description="Fact keys that are unknown (null) and decisive."
    )
    max_categories: list[DataCategory] = Field(
        default_factory=list,
        description="The most a reviewer may approve for this basis; they may only narrow it.",
    )


class PolicyDecision(Contract):
    """Policy stage result: outcome, categories, obligations and the rules behind them."""

    outcome: Outcome
    reason_code: str = Field(description="Machine-readable reason.", examples=["P.consent.none"])
    explanation: str = Field(description="Short human-readable why; never a field value.")
    allowed_categories: list[DataCategory] = Field(default_factory=list)
    withheld_categories: list[DataCategory] = Field(default_factory=list)
    category_decisions: list[CategoryDecision] = Field(default_factory=list)
    obligations: list[Obligation] = Field(default_factory=list)
    consents_used: list[ConsentRef] = Field(default_factory=list)
    pack_id: str = Field(description="Policy pack id.", examples=["us_baseline"])
    pack_version: str = Field(description="Pack version and content hash.")
    review: ReviewRequirement | None = Field(default=None)
    consent_based: bool = Field(
        default=False,
        description="The delivery rests on consent (so revocation before delivery stops it).",
    )
    consent_categories: list[DataCategory] = Field(
        default_factory=list,
        description="Allowed categories whose permit rests on consent; the delivery gate "
        "re-checks exactly these just before delivery.",
    )
    decided_at: AwareDatetime
    decided_by: str | None = Field(
        default=None, description="Reviewer id when a person decided (after review)."
    )


class DeliveredField(Contract):
    """One field as the recipient receives it."""

    name: str
    category: DataCategory
    value: str


class Notice(Contract):
    """A re-disclosure notice attached to a delivery (table O: O4, O5)."""

    obligation: Obligation
    citation: str = Field(examples=["42 CFR 2.32"])
    text: str


class DeliveryPayload(Contract):
    """Exactly what the recipient receives (rule S1), built by the redaction stage."""

    request_id: str
    purpose: str
    jurisdiction: str
    requester_agency_id: str
    subject_ref: str = Field(
        description="The subject id if identity is allowed, otherwise a one-time pseudonym."
    )
    subject_ref_kind: Literal["subject_id", "pseudonym"]
    fields: list[DeliveredField]
    notices: list[Notice] = Field(default_factory=list)


class ManifestEntry(Contract):
    """What redaction did to one field, and under which rule (full manifest: audit only)."""

    field_name: str
    category: DataCategory
    action: Literal["kept", "removed", "scrubbed", "pseudonymised", "generalised"]
    rule: str = Field(examples=["S1.not_allowed"])
    replacements: int = Field(default=0, ge=0, description="Scrubbed occurrences.")


class RedactionResult(Contract):
    """Redaction stage result: the reduced payload and the full manifest."""

    payload: DeliveryPayload
    manifest: list[ManifestEntry]
    pseudonym: str | None = Field(
        default=None, description="The one-time pseudonym issued, if any (mapping: audit only)."
    )
    redacted_at: AwareDatetime


class StageStamp(Contract):
    """A stage's attestation: MAC over the digest of what it vouches for, chained."""

    stage: Stage
    service_version: str
    key_id: str
    digest: str = Field(description="SHA-256 hex of the canonical content this stage vouches for.")
    mac: str = Field(description="HMAC-SHA256 hex of the digest under the stage's key.")


class Envelope(Contract):
    """Travels ``consent-checked → policy-decided → redacted``; the request never changes."""

    schema_version: Literal["1"] = Field(default="1", description="Contract version.")
    request: SharingRequest
    received_at: AwareDatetime = Field(description="When the hub first accepted the request.")
    consent: ConsentAssessment | None = None
    policy: PolicyDecision | None = None
    redaction: RedactionResult | None = None
    stamps: list[StageStamp] = Field(default_factory=list)

    @property
    def request_id(self) -> str:
        """Idempotency key of everything the hub does for this request."""
        return self.request.request_id
