"""Table O: obligations of a delivered disclosure, driven by each pack's ``obligations.json``.

Pure code. Only ``delivered`` outcomes get obligations (B1); the caller never asks otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sharinghub.contracts import (
    AgencyType,
    DataCategory,
    Obligation,
    Purpose,
    SharingRequest,
)


def _purposes(data: Mapping[str, object], key: str) -> frozenset[Purpose]:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise ValueError(f"obligations.{key} must be a list")
    return frozenset(Purpose(str(p)) for p in value)


@dataclass(frozen=True, slots=True)
class ObligationRules:
    """A pack's table O, as data."""

    notify_purposes: frozenset[Purpose]
    notify_purposes_unless_consent: frozenset[Purpose]
    retrospective_purposes: frozenset[Purpose]
    retrospective_purposes_unless_supervisor: frozenset[Purpose]
    minimum_necessary_exempt: frozenset[Purpose]
    minimum_necessary_exempt_unless_part2: frozenset[Purpose]
    part2_regime: bool
    part2_program_exempt_purposes: frozenset[Purpose]
    part2_notice_exempt_purposes: frozenset[Purpose]
    ferpa_regime: bool
    ferpa_notice_purposes: frozenset[Purpose]
    ferpa_notice_purposes_if_emergency: frozenset[Purpose]

    @classmethod
    def from_mapping(cls, data: Mapping[str, object]) -> ObligationRules:
        """Build from a pack's parsed ``obligations.json``."""
        return cls(
            notify_purposes=_purposes(data, "notify_purposes"),
            notify_purposes_unless_consent=_purposes(data, "notify_purposes_unless_consent"),
            retrospective_purposes=_purposes(data, "retrospective_purposes"),
            retrospective_purposes_unless_supervisor=_purposes(
                data, "retrospective_purposes_unless_supervisor"
            ),
            minimum_necessary_exempt=_purposes(data, "minimum_necessary_exempt"),
            minimum_necessary_exempt_unless_part2=_purposes(
                data, "minimum_necessary_exempt_unless_part2"
            ),
            part2_regime=data.get("part2_regime") is True,
            part2_program_exempt_purposes=_purposes(data, "part2_program_exempt_purposes"),
            part2_notice_exempt_purposes=_purposes(data, "part2_notice_exempt_purposes"),
            ferpa_regime=data.get("ferpa_regime") is True,
            ferpa_notice_purposes=_purposes(data, "ferpa_notice_purposes"),
            ferpa_notice_purposes_if_emergency=_purposes(
                data, "ferpa_notice_purposes_if_emergency"
            ),
        )


def part2_content_delivered(
    rules: ObligationRules,
    request: SharingRequest,
    *,
    purpose: Purpose,
    allowed: Sequence[DataCategory],
) -> bool:
    """Table O's "Part 2 content is delivered" (the outcome is assumed to be delivered)."""
    if not rules.part2_regime:
        return False
    gate_g1 = request.requester.agency_type is AgencyType.SUBSTANCE_USE_TREATMENT
    return DataCategory.SUBSTANCE_USE_PART2 in allowed or (
        gate_g1 and purpose not in rules.part2_program_exempt_purposes
    )


def obligations_for(
    rules: ObligationRules,
    request: SharingRequest,
    *,
    purpose: Purpose,
    emergency: bool | None,
    allowed: Sequence[DataCategory],
    consent_based: bool,
) -> list[Obligation]:
    """Obligations O1-O5 of a delivery, sorted by id."""
    facts = request.facts
    out: set[Obligation] = set()
    # O1: tell the client, unless telling them would raise the risk.
    if purpose in rules.notify_purposes or (
        purpose in rules.notify_purposes_unless_consent and not consent_based
    ):
        out.add(
            Obligation.NOTIFICATION_WITHHELD_RISK
            if facts.informing_increases_risk is True
            else Obligation.NOTIFY_CLIENT
        )
    # O2: emergency or urgent-risk disclosures are reviewed afterwards.
    if (
        purpose in rules.retrospective_purposes
        or emergency is True
        or (
            purpose in rules.retrospective_purposes_unless_supervisor
            and facts.supervisor_approved is not True
        )
    ):
        out.add(Obligation.RETROSPECTIVE_REVIEW)
    part2 = part2_content_delivered(rules, request, purpose=purpose, allowed=allowed)
    # O3: a legal minimum-necessary standard governed the disclosure.
    if purpose not in rules.minimum_necessary_exempt and (
        purpose not in rules.minimum_necessary_exempt_unless_part2 or part2
    ):
        out.add(Obligation.MINIMUM_NECESSARY_APPLIED)
    # O4: 42 CFR 2.32 notice travels with Part 2 content.
    if part2 and purpose not in rules.part2_notice_exempt_purposes:
        out.add(Obligation.REDISCLOSURE_NOTICE_PART2)
    # O5: FERPA redisclosure limit (34 CFR 99.33) under gate G2.
    if (
        rules.ferpa_regime
        and request.requester.agency_type is AgencyType.SCHOOL
        and (
            purpose in rules.ferpa_notice_purposes
            or (purpose in rules.ferpa_notice_purposes_if_emergency and emergency is True)
        )
    ):
        out.add(Obligation.REDISCLOSURE_NOTICE_FERPA)
    return sorted(out, key=lambda o: o.value)
