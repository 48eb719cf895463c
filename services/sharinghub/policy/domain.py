"""Pure policy logic around the Cedar packs: derived facts, outcome composition, explanations.

The legal rules live in the packs (Cedar policies + pack data). This module only
1. derives the structured context Cedar reads from a request and its consent assessment,
2. turns Cedar's per-action answers into one ``PolicyDecision`` (decision order of
   ``shared/domain/README.md`` §8: the most cautious match wins — a forbid denies, else a
   ``review`` permit sends to review, else a ``deliver`` permit delivers), and
3. writes short explanations from the rules' ``@explain`` annotations.

Nothing here reads ``stated_reason`` (B12) or puts a field name or value into text.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from sharinghub.contracts import (
    CategoryDecision,
    ConsentRef,
    DataCategory,
    Outcome,
    PolicyDecision,
    Purpose,
    ReviewRequirement,
    SharingRequest,
)
from sharinghub.policy.obligations import ObligationRules, obligations_for

# Reason codes the pure code itself emits (everything else is a Cedar policy @id).
INVALID_PURPOSE = "step1.invalid_purpose"
NO_BASIS = "step4.no_basis"
NOTHING_ALLOWED = "step5.nothing_allowed"
NOTHING_REVIEWABLE = "step5.nothing_reviewable"
REVIEW_APPROVED = "review.approved"
REVIEW_NOT_APPROVED = "review.not_approved"


class ConsentSupport(Protocol):
    """What a decision needs of the consent stage's assessment: the requested categories at
    least one directive supports (with those directives) and the minors rule's flag.

    A `ConsentAssessment` is one; the policy stage reads only these two fields of the
    verified envelope instead of validating every per-directive finding it does not use.
    """

    @property
    def supported(self) -> Mapping[DataCategory, Sequence[ConsentRef]]: ...

    @property
    def minor_self_consent(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class Rule:
    """Reviewable metadata of one Cedar policy, read from its annotations."""

    id: str
    order: int
    effect: Literal["permit", "forbid"]
    explain: str
    question: str | None = None
    decisive_facts: tuple[str, ...] = ()
    consent_basis: bool = False  # @basis("consent"): the permit rests on consent
    keeps_review_when_empty: bool = False  # @empty_reach("review")


@dataclass(frozen=True, slots=True)
class PackRules:
    """What the pure code needs to know about a pack besides its Cedar policies."""

    pack_id: str
    version: str
    rules: Mapping[str, Rule]
    consent_purposes: frozenset[Purpose]
    obligations: ObligationRules


@dataclass(frozen=True, slots=True)
class PackInfo:
    """Identity of a policy pack as recorded with every decision."""

    id: str
    version: str
    effective_date: str
    citations: tuple[str, ...]
    extends: str | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """One Cedar answer: allowed or not, and the @id of the policies that determined it."""

    allowed: bool
    rule_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Derived:
    """Facts derived from the request before Cedar is asked (never from stated_reason)."""

    purpose: Purpose  # effective purpose: a court order not signed by a judge is a subpoena
    treated_as_subpoena: bool
    emergency: bool | None  # break-glass makes it true
    break_glass: bool
    requested: tuple[DataCategory, ...]  # de-duplicated, request order


def derive(request: SharingRequest) -> Derived:
    """Derive the effective purpose, emergency fact and requested categories of a request."""
    order = request.facts.court_order
    by_judge = order is not None and order.issued_by_judge is True
    as_subpoena = request.purpose is Purpose.COURT_ORDER and not by_judge
    break_glass = request.break_glass is not None
    return Derived(
        purpose=Purpose.SUBPOENA if as_subpoena else request.purpose,
        treated_as_subpoena=as_subpoena,
        emergency=True if break_glass else request.facts.emergency,
        break_glass=break_glass,
        requested=tuple(dict.fromkeys(request.requested_categories)),
    )


def _by_judge(request: SharingRequest) -> bool:
    order = request.facts.court_order
    return order is not None and order.issued_by_judge is True


def outcome_context(
    request: SharingRequest, consent: ConsentSupport, derived: Derived
) -> dict[str, object]:
    """Cedar context of the outcome actions (``deliver``, ``review``)."""
    f = request.facts
    facts: dict[str, bool] = {"subject_is_minor": f.subject_is_minor is True}
    for key, value in (
        ("threat_imminent", f.threat_imminent),
        ("identifiable_victim", f.identifiable_victim),
        ("emergency", derived.emergency),
        ("informing_increases_risk", f.informing_increases_risk),
        ("supervisor_approved", f.supervisor_approved),
        ("subpoena_only", f.subpoena_only),
    ):
        if value is not None:  # an absent attribute is an unknown (null) fact
            facts[key] = value
    order = f.court_order
    return {
        "recipient": {
            "__entity": {"type": "AgencyType", "id": request.recipient.agency_type.value}
        },
        "facts": facts,
        "requested": [k.value for k in derived.requested],
        "court_order_by_judge": _by_judge(request),
        "court_order_covers": [k.value for k in (order.covers_categories if order else [])],
        "has_safeguarding_field": any(
            fld.category is DataCategory.SAFEGUARDING_CONCERNS for fld in request.record.fields
        ),
        "consent_any": any(k in consent.supported for k in derived.requested),
        "minor_self_consent": consent.minor_self_consent,
    }


def category_context(
    request: SharingRequest, consent: ConsentSupport, derived: Derived
) -> dict[str, object]:
    """Cedar context of the category actions, without the two per-category flags.

    The engine appends ``consent_supported`` and ``covered_by_order`` per category (see
    :func:`consent_supported` and :func:`covered_by_order`).
    """
    return {
        "requester": request.requester.agency_type.value,
        "consent_any": any(k in consent.supported for k in derived.requested),
        "court_order_by_judge": _by_judge(request),
        "emergency": derived.emergency is True,
    }


def covered_by_order(request: SharingRequest, category: DataCategory) -> bool:
    """True if the order relied on expressly lists the category."""
    order = request.facts.court_order
    return order is not None and category in order.covers_categories


def consent_supported(consent: ConsentSupport, category: DataCategory) -> bool:
    """True if at least one directive supports the category (table C, consent stage)."""
    return bool(consent.supported.get(category))


@dataclass(frozen=True, slots=True)
class Evaluation:
    """Cedar's answers for one request, gathered by the engine."""

    deliver: Verdict
    review: Verdict
    disclose: Mapping[DataCategory, Verdict]
    approve: Mapping[DataCategory, Verdict] | None = None  # only asked when review is allowed


def needs_reach(deliver: Verdict, review: Verdict) -> bool:
    """True when the engine must ask the `approve` action (the review's reach)."""
    del deliver  # a review permit beats a delivery whatever `deliver` says
    return review.allowed


def rejected(request: SharingRequest, pack: PackRules, *, now: datetime) -> PolicyDecision:
    """Step 1 / B6: an invalid purpose is rejected whatever the facts, consents or approvals."""
    requested = list(dict.fromkeys(request.requested_categories))
    return PolicyDecision(
        outcome=Outcome.REJECTED_INVALID,
        reason_code=INVALID_PURPOSE,
        explanation=f"'{request.purpose.value}' is not a lawful reason to share; "
        "the request was not evaluated and nothing was shared.",
        withheld_categories=requested,
        category_decisions=[
            CategoryDecision(category=k, decision="forbid", policy_ids=[INVALID_PURPOSE])
            for k in requested
        ],
        pack_id=pack.pack_id,
        pack_version=pack.version,
        decided_at=now,
    )


def _ordered(pack: PackRules, ids: Collection[str]) -> tuple[str, ...]:
    return tuple(sorted(set(ids), key=lambda i: pack.rules[i].order if i in pack.rules else -1))


def _sentence(pack: PackRules, rule_id: str) -> str:
    rule = pack.rules.get(rule_id)
    return rule.explain if rule is not None else rule_id


def _preamble(derived: Derived) -> str:
    parts = []
    if derived.treated_as_subpoena:
        parts.append("No order signed by a judge: evaluated as a subpoena.")
    if derived.break_glass:
        parts.append("Break-glass declared: the emergency fact is treated as true.")
    return " ".join(parts)


def _join(*parts: str) -> str:
    return " ".join(p for p in parts if p)


def _cats(categories: Sequence[DataCategory]) -> str:
    return ", ".join(k.value for k in categories)


def _consent_refs(consent: ConsentSupport, categories: Sequence[DataCategory]) -> list[ConsentRef]:
    refs = {(r.consent_id, r.version): r for k in categories for r in consent.supported.get(k, [])}
    return [refs[key] for key in sorted(refs)]


def compose(
    request: SharingRequest,
    consent: ConsentSupport,
    pack: PackRules,
    derived: Derived,
    ev: Evaluation,
    *,
    now: datetime,
) -> PolicyDecision:
    """Turn Cedar's answers into the decision (README §8 steps 2-6; B1)."""
    requested = derived.requested
    base = {"pack_id": pack.pack_id, "pack_version": pack.version, "decided_at": now}
    pre = _preamble(derived)

    if ev.review.allowed:
        approve = ev.approve or {}
        reach = [k for k in requested if k in approve and approve[k].allowed]
        review_ids = _ordered(pack, ev.review.rule_ids)
        keeps = any(pack.rules[i].keeps_review_when_empty for i in review_ids if i in pack.rules)
        if not reach and not keeps:
            # Step 5: nothing in common with the profile — nothing a reviewer could release.
            return PolicyDecision(
                outcome=Outcome.DENIED,
                reason_code=NOTHING_REVIEWABLE,
                explanation=_join(
                    pre,
                    "Denied: none of the requested categories could be released on this "
                    "basis even after review, so there is nothing for a reviewer to decide.",
                ),
                withheld_categories=list(requested),
                category_decisions=_forbid_all(pack, requested, (), approve),
                **base,
            )
        first = pack.rules.get(review_ids[0]) if review_ids else None
        questions = dict.fromkeys(
            pack.rules[i].question or "" for i in review_ids if i in pack.rules
        )
        missing = [
            key
            for i in review_ids
            if i in pack.rules
            for key in pack.rules[i].decisive_facts
            if _fact(request, derived, key) is None
        ]
        return PolicyDecision(
            outcome=Outcome.PENDING_REVIEW,
            reason_code=review_ids[0] if review_ids else "review",
            explanation=_join(
                pre,
                "Pending review: " + (first.explain if first else "a person must decide."),
                f"Unknown facts: {', '.join(dict.fromkeys(missing))}." if missing else "",
                "Nothing is shared until a reviewer decides.",
            ),
            withheld_categories=list(requested),
            category_decisions=_forbid_all(pack, requested, review_ids, approve),
            review=ReviewRequirement(
                question=" ".join(q for q in questions if q) or "Is there a lawful basis?",
                missing_facts=list(dict.fromkeys(missing)),
                max_categories=reach,
            ),
            **base,
        )

    if ev.deliver.allowed:
        allowed = [k for k in requested if ev.disclose[k].allowed]
        deliver_ids = _ordered(pack, ev.deliver.rule_ids)
        if not allowed:
            return PolicyDecision(
                outcome=Outcome.DENIED,
                reason_code=NOTHING_ALLOWED,
                explanation=_join(
                    pre,
                    "Denied: " + _sentence(pack, deliver_ids[0]) if deliver_ids else "",
                    "No requested category remains after minimisation"
                    + (" and consent checks." if derived.purpose in pack.consent_purposes else "."),
                ),
                withheld_categories=list(requested),
                category_decisions=_forbid_all(pack, requested, (), ev.disclose),
                **base,
            )
        return _delivered(request, consent, pack, derived, ev, allowed, deliver_ids, now=now)

    forbid_ids = _ordered(pack, set(ev.deliver.rule_ids) | set(ev.review.rule_ids))
    reason = forbid_ids[0] if forbid_ids else NO_BASIS
    return PolicyDecision(
        outcome=Outcome.DENIED,
        reason_code=reason,
        explanation=_join(
            pre,
            "Denied: " + (_sentence(pack, reason) if forbid_ids else "no lawful basis applies."),
        ),
        withheld_categories=list(requested),
        category_decisions=[
            CategoryDecision(category=k, decision="forbid", policy_ids=list(forbid_ids))
            for k in requested
        ],
        **base,
    )


def _fact(request: SharingRequest, derived: Derived, key: str) -> object:
    if key == "emergency":
        return derived.emergency
    return getattr(request.facts, key, None)


def _forbid_all(
    pack: PackRules,
    requested: Sequence[DataCategory],
    outcome_ids: Sequence[str],
    per_category: Mapping[DataCategory, Verdict],
) -> list[CategoryDecision]:
    out = []
    for k in requested:
        verdict = per_category.get(k)
        own = () if verdict is None or verdict.allowed else verdict.rule_ids
        ids = _ordered(pack, (*outcome_ids, *own))
        out.append(CategoryDecision(category=k, decision="forbid", policy_ids=list(ids)))
    return out


def _delivered(
    request: SharingRequest,
    consent: ConsentSupport,
    pack: PackRules,
    derived: Derived,
    ev: Evaluation,
    allowed: list[DataCategory],
    deliver_ids: Sequence[str],
    *,
    now: datetime,
) -> PolicyDecision:
    outcome_consent = any(pack.rules[i].consent_basis for i in deliver_ids if i in pack.rules)
    consent_categories = [
        k
        for k in allowed
        if outcome_consent
        or any(pack.rules[i].consent_basis for i in ev.disclose[k].rule_ids if i in pack.rules)
    ]
    consent_based = bool(consent_categories)
    withheld = [k for k in derived.requested if k not in allowed]
    return PolicyDecision(
        outcome=Outcome.DELIVERED,
        reason_code=deliver_ids[0] if deliver_ids else "deliver",
        explanation=_join(
            _preamble(derived),
            "Delivered: " + _sentence(pack, deliver_ids[0]) if deliver_ids else "Delivered.",
            f"Withheld categories: {_cats(withheld)}." if withheld else "",
        ),
        allowed_categories=allowed,
        withheld_categories=withheld,
        category_decisions=[
            CategoryDecision(
                category=k,
                decision="permit" if ev.disclose[k].allowed else "forbid",
                policy_ids=list(_ordered(pack, ev.disclose[k].rule_ids)),
            )
            for k in derived.requested
        ],
        obligations=obligations_for(
            pack.obligations,
            request,
            purpose=derived.purpose,
            emergency=derived.emergency,
            allowed=allowed,
            consent_based=outcome_consent,
        ),
        consents_used=_consent_refs(consent, consent_categories),
        pack_id=pack.pack_id,
        pack_version=pack.version,
        consent_based=consent_based,
        consent_categories=consent_categories,
        decided_at=now,
    )


def after_review(
    request: SharingRequest,
    consent: ConsentSupport,
    pack: PackRules,
    pending: PolicyDecision,
    *,
    approved_categories: Collection[DataCategory],
    reviewer_id: str,
    now: datetime,
) -> PolicyDecision:
    """A reviewer approves: deliver approved ∩ max_categories, never wider (B1).

    Obligations follow table O as for a delivery on the basis under review, with the
    request's facts as asserted (a prior supervisor approval is a fact of the request, not
    the reviewer's decision, so O2 still opens a retrospective review where it says so).
    Raises ``ValueError`` (no values in the message) when nothing valid is approved.
    """
    if pending.outcome is not Outcome.PENDING_REVIEW or pending.review is None:
        raise ValueError("decision is not pending review")
    ceiling = set(pending.review.max_categories)
    approved = set(approved_categories)
    if approved - ceiling:
        raise ValueError("approved categories exceed what the review allows")
    derived = derive(request)
    allowed = [k for k in derived.requested if k in approved]
    if not allowed:
        raise ValueError("no category approved")
    consent_based = derived.purpose in pack.consent_purposes
    withheld = [k for k in derived.requested if k not in approved]
    return PolicyDecision(
        outcome=Outcome.DELIVERED,
        reason_code=REVIEW_APPROVED,
        explanation=_join(
            _preamble(derived),
            f"Delivered after review ({pending.reason_code}): a reviewer approved the "
            "disclosure within the categories the basis allows.",
            f"Withheld categories: {_cats(withheld)}." if withheld else "",
        ),
        allowed_categories=allowed,
        withheld_categories=withheld,
        category_decisions=[
            CategoryDecision(
                category=k,
                decision="permit" if k in approved else "forbid",
                policy_ids=[
                    pending.reason_code,
                    REVIEW_APPROVED if k in approved else REVIEW_NOT_APPROVED,
                ],
            )
            for k in derived.requested
        ],
        obligations=obligations_for(
            pack.obligations,
            request,
            purpose=derived.purpose,
            emergency=derived.emergency,
            allowed=allowed,
            consent_based=consent_based,
        ),
        consents_used=_consent_refs(consent, allowed) if consent_based else [],
        pack_id=pending.pack_id,
        pack_version=pending.pack_version,
        consent_based=consent_based,
        consent_categories=allowed if consent_based else [],
        decided_at=now,
        decided_by=reviewer_id,
    )
