"""Who may declare break-glass: operator configuration, deny by default.

`SHARINGHUB_BREAK_GLASS_FILE` holds `{"<agency_id>": ["<practitioner id>", …], "*": […]}`.
With no file nobody is authorised, so an emergency declaration cannot be self-issued; a
refused declaration is a recorded `rejected_invalid` decision (governance sees the attempt),
and the requester can send the request again without it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sharinghub.contracts import Outcome, PolicyDecision, SharingRequest
from sharinghub.policy.domain import PackInfo

REASON_CODE = "break_glass.not_authorised"


@dataclass(frozen=True)
class BreakGlassAuthorisations:
    """Practitioner ids allowed to declare an emergency, per requesting agency ("*": any)."""

    by_agency: Mapping[str, frozenset[str]]

    @classmethod
    def load(cls, path: Path | None) -> BreakGlassAuthorisations:
        if path is None:
            return cls({})
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"break-glass file {path} is not readable JSON") from exc
        if not isinstance(data, dict) or not all(
            isinstance(v, list) and all(isinstance(p, str) for p in v) for v in data.values()
        ):
            raise ValueError(f"break-glass file {path} must map agency ids to lists of ids")
        return cls({agency: frozenset(ids) for agency, ids in data.items()})

    def allows(self, request: SharingRequest) -> bool:
        """True when there is no declaration, or its declarer is authorised for the agency."""
        if request.break_glass is None:
            return True
        who = request.break_glass.declared_by
        return who in self.by_agency.get(request.requester.agency_id, frozenset()) or (
            who in self.by_agency.get("*", frozenset())
        )


def refusal(request: SharingRequest, pack: PackInfo, now: datetime) -> PolicyDecision:
    """The recorded decision for a break-glass declaration by someone not authorised."""
    return PolicyDecision(
        outcome=Outcome.REJECTED_INVALID,
        reason_code=REASON_CODE,
        explanation="Break-glass was declared by a practitioner not authorised to declare it "
        "for this agency; send the request again without it, or ask an authorised colleague.",
        withheld_categories=list(request.requested_categories),
        pack_id=pack.id,
        pack_version=pack.version,
        decided_at=now,
    )
