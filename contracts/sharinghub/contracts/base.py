"""Shared base for every contract: immutable, closed to unknown fields, JSON-first."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

SCHEMA_VERSION = "1"

AgencyId = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9.:-]{0,99}$"),
    Field(
        description="Stable id of a partner agency (letters, digits, '.', ':', '-'); also "
        "names its inbox topic. A client receiving their own record is `self:<subject_id>`.",
        examples=["ag-eastmere-homes-association"],
    ),
]
RequestId = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"),
    Field(
        description="Id the requester gives the sharing request; unique, the idempotency key.",
        examples=["req-2025-03-04-0001"],
    ),
]
SubjectId = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"),
    Field(
        description="Pseudonymous id of the client the record is about (never a name).",
        examples=["subj-em-2231"],
    ),
]


class Contract(BaseModel):
    """Base of all sharinghub event models.

    Frozen (a stage never edits what it received) and `extra="forbid"` (an unknown field is
    a schema violation, so nothing can be smuggled past validation in an unexpected key).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", use_enum_values=False)
