"""Consent directives on ``sharinghub.consent.directives.v1`` (keyed by consent id)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, StringConstraints

from sharinghub.contracts.base import AgencyId, Contract, SubjectId
from sharinghub.contracts.vocabulary import AgencyType, ConsentGrantor, DataCategory, Purpose

ConsentId = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"),
    Field(description="Stable id of a consent directive across its versions.", examples=["cd-1"]),
]
Version = Annotated[
    int, Field(ge=1, description="Version of the directive; each change adds one.", examples=[1])
]


class RecordedBy(Contract):
    """Who recorded the directive in the hub (not who granted it)."""

    agency_id: AgencyId
    practitioner_role: str | None = Field(
        default=None, max_length=100, description="Role as given.", examples=["social_worker"]
    )


class ConsentScope(Contract):
    """What a consent covers (table C fields)."""

    recipient_agency_ids: list[AgencyId] | None = Field(
        default=None,
        description="Named recipients; null matches nothing by id (C3).",
        examples=[["ag-eastmere-homes-association"]],
    )
    recipient_agency_types: list[AgencyType] | None = Field(
        default=None,
        description="Classes of recipient; null matches nothing by type (C3).",
        examples=[None],
    )
    purposes: list[Purpose] = Field(
        min_length=1,
        description="Purposes the consent covers (C2).",
        examples=[["consent_based_sharing"]],
    )
    categories_included: list[DataCategory] | None = Field(
        default=None,
        description="Categories covered; null covers every non-special, non-blocked one (C5).",
        examples=[["identity", "contact"]],
    )
    categories_excluded: list[DataCategory] = Field(
        default_factory=list,
        description="Categories explicitly excluded; an exclusion beats an inclusion (C5).",
        examples=[["mental_health"]],
    )
    valid_from: AwareDatetime = Field(
        description="Start of validity (C1).", examples=["2025-01-10T09:00:00Z"]
    )
    expires_at: AwareDatetime | None = Field(
        default=None, description="End of validity, exclusive (C1).", examples=[None]
    )


class ConsentDirective(Contract):
    """A consent directive as it stands at one version (the registry's unit of history)."""

    consent_id: ConsentId
    version: Version
    subject_id: SubjectId
    granted_by: ConsentGrantor = Field(
        description="Client or guardian/personal representative (C4).", examples=["client"]
    )
    scope: ConsentScope
    revoked_at: AwareDatetime | None = Field(
        default=None,
        description="When the consent was withdrawn; it stays valid for requests made "
        "before this instant (C1) but stops deliveries still in flight.",
        examples=[None],
    )
    recorded_by: RecordedBy | None = Field(default=None, description="Who recorded it.")
    evidence_ref: str | None = Field(
        default=None,
        max_length=200,
        description="Reference to the signed form or record of the consent conversation.",
        examples=["form-2025-0110-17"],
    )


class ConsentGranted(Contract):
    """Event: a consent was granted (version 1) or amended (a later version)."""

    schema_version: Literal["1"] = Field(default="1", description="Contract version.")
    action: Literal["grant", "amend"] = Field(
        description="grant for version 1, amend for later versions.", examples=["grant"]
    )
    directive: ConsentDirective


class ConsentRevoked(Contract):
    """Event: a consent was withdrawn. Scope stays as at the previous version."""

    schema_version: Literal["1"] = Field(default="1", description="Contract version.")
    action: Literal["revoke"] = Field(description="Always revoke.", examples=["revoke"])
    consent_id: ConsentId
    subject_id: SubjectId
    version: Version
    revoked_at: AwareDatetime = Field(
        description="Instant the withdrawal took effect.", examples=["2025-02-01T12:00:00Z"]
    )
    recorded_by: RecordedBy | None = Field(default=None, description="Who recorded it.")


ConsentDirectiveEvent = Annotated[ConsentGranted | ConsentRevoked, Field(discriminator="action")]
