"""The sharing request an agency publishes on ``sharinghub.requests.v1``."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, StrictBool, StringConstraints, model_validator

from sharinghub.contracts.base import (
    AgencyId,
    Contract,
    RequestId,
    SubjectId,
)
from sharinghub.contracts.vocabulary import AgencyType, DataCategory, Jurisdiction, Purpose

MAX_FIELDS = 500
MAX_VALUE_CHARS = 20_000
MAX_STATED_REASON_CHARS = 4_000


class Requester(Contract):
    """The disclosing agency (it holds the data and publishes the request)."""

    agency_id: AgencyId
    agency_type: AgencyType = Field(
        description="Type of the disclosing agency (vocabulary: agency types).",
        examples=["social_services"],
    )
    practitioner_role: str | None = Field(
        default=None,
        max_length=100,
        description="Role of the practitioner asking; recorded as given, never validated "
        "and never used in a decision.",
        examples=["social_worker"],
    )


class Recipient(Contract):
    """The agency that would receive the data."""

    agency_id: AgencyId
    agency_type: AgencyType = Field(
        description="Type of the receiving agency (vocabulary: agency types).",
        examples=["housing"],
    )


class CourtOrderFact(Contract):
    """The order relied on for `court_order` (or a claimed one that is really a subpoena)."""

    issued_by_judge: StrictBool | None = Field(
        description="True only if a judge signed the order; false/null → treated as subpoena.",
        examples=[True],
    )
    covers_categories: list[DataCategory] = Field(
        default_factory=list,
        description="Categories the order expressly covers; the disclosure is limited to them.",
        examples=[["identity", "substance_use_part2"]],
    )


class Facts(Contract):
    """Structured facts a lawful basis needs. `null` means unknown (sends most to review)."""

    threat_imminent: StrictBool | None = Field(
        default=None,
        description="A serious threat (to others or self) is assessed as imminent.",
        examples=[True],
    )
    identifiable_victim: StrictBool | None = Field(
        default=None,
        description="The threatened person is reasonably identifiable.",
        examples=[True],
    )
    court_order: CourtOrderFact | None = Field(
        default=None,
        description="The order relied on, or null if none.",
        examples=[{"issued_by_judge": True, "covers_categories": ["identity"]}],
    )
    subpoena_only: StrictBool | None = Field(
        default=None,
        description="The demand is a subpoena or similar without a judge's order.",
        examples=[False],
    )
    emergency: StrictBool | None = Field(
        default=None,
        description="A bona fide emergency exists now (medical, or an articulable threat).",
        examples=[None],
    )
    subject_is_minor: StrictBool | None = Field(
        default=None,
        description="The record's subject is under 18 (null is read as not a minor).",
        examples=[False],
    )
    informing_increases_risk: StrictBool | None = Field(
        default=None,
        description="Telling the client (or a child's guardian) would increase risk to someone.",
        examples=[False],
    )
    supervisor_approved: StrictBool | None = Field(
        default=None,
        description="A supervisor or designated lead approved this disclosure beforehand.",
        examples=[None],
    )


FieldName = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$"),
    Field(description="Name of a record field (snake_case).", examples=["full_name"]),
]


class RecordField(Contract):
    """One atomic value of the case record (rule S4: one person, number, address … each)."""

    name: FieldName
    category: DataCategory = Field(
        description="Data category of this field (vocabulary: data categories).",
        examples=["identity"],
    )
    value: str = Field(
        max_length=MAX_VALUE_CHARS,
        description="The confidential value. Never logged, traced or put in an error.",
        examples=["Dolores Quintero"],
    )


class CaseRecord(Contract):
    """The part of the client's case record the requester proposes to share from."""

    subject_id: SubjectId
    fields: list[RecordField] = Field(
        max_length=MAX_FIELDS,
        description="The record's fields; names are unique within a record.",
        examples=[[{"name": "full_name", "category": "identity", "value": "Dolores Quintero"}]],
    )

    @model_validator(mode="after")
    def _field_names_are_unique(self) -> CaseRecord:
        names = [f.name for f in self.fields]
        if len(names) != len(set(names)):
            raise ValueError("record field names must be unique")
        return self


class BreakGlass(Contract):
    """An authorised practitioner's emergency declaration (delivered now, reviewed after)."""

    declared_by: str = Field(
        min_length=1,
        max_length=100,
        description="Practitioner id (not a name) of the person declaring the emergency.",
        examples=["pr-eastmere-0042"],
    )
    justification: str = Field(
        min_length=1,
        max_length=MAX_STATED_REASON_CHARS,
        description="Why it cannot wait; kept for the retrospective review, never delivered.",
        examples=["Client collapsed in clinic; ED needs medication history now."],
    )


class SharingRequest(Contract):
    """A disclosing agency's request to share part of a client's record with another agency.

    Published on ``sharinghub.requests.v1`` keyed by ``record.subject_id``. It stays
    immutable inside the envelope; each stage only appends its own result.
    """

    schema_version: Literal["1"] = Field(default="1", description="Contract version of this event.")
    request_id: RequestId
    jurisdiction: Jurisdiction = Field(
        description="Policy pack the request is judged under.", examples=["uk_england"]
    )
    requester: Requester
    recipient: Recipient
    purpose: Purpose = Field(
        description="Purpose of use, or one of the invalid stated reasons.",
        examples=["consent_based_sharing"],
    )
    stated_reason: str = Field(
        default="",
        max_length=MAX_STATED_REASON_CHARS,
        description="Free-text reason kept for audit; never delivered, never decides anything.",
        examples=["Client asked us to support her housing transfer application."],
    )
    facts: Facts = Field(
        default_factory=Facts, description="Structured facts the purpose's conditions need."
    )
    requested_categories: list[DataCategory] = Field(
        min_length=1,
        description="Categories the requester proposes to share.",
        examples=[["identity", "contact", "housing"]],
    )
    record: CaseRecord
    requested_at: AwareDatetime = Field(
        description="When the request was made (consent time checks use this, rule C1).",
        examples=["2025-03-04T14:20:00Z"],
    )
    break_glass: BreakGlass | None = Field(
        default=None,
        description="Emergency declaration, if the requester invokes break-glass.",
        examples=[None],
    )

    @property
    def subject_id(self) -> str:
        """Partition key of every stage topic: one client's requests stay ordered."""
        return self.record.subject_id
