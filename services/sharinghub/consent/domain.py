"""Consent matching: which directives on file support which requested categories (table C).

Pure code: no I/O and no clock. Every time check uses ``request.requested_at`` (rule C1), so
re-running an assessment later gives the same answer. Reason codes name rules and vocabulary
ids only, never a record value.

Codes per directive: ``subject_mismatch``, ``C1.not_yet_valid``, ``C1.expired``,
``C1.revoked``, ``C2.other_purpose``, ``C3.other_recipient``, ``C4.minor_needs_guardian``,
``C6b.psychotherapy_combined``, ``C6c.ferpa_unspecified`` (the directive supports nothing);
per category k: ``C5.hard_block:k``, ``C5.excluded:k``, ``C5.special_not_named:k``,
``C5.not_included:k``, ``C6a.recipient_not_named:k``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime

from sharinghub.consent.receipt import consent_receipt
from sharinghub.contracts import (
    HARD_BLOCKS,
    PROVIDER_TYPES,
    SPECIAL_CLASSES,
    AgencyType,
    ConsentAssessment,
    ConsentDirective,
    ConsentGrantor,
    ConsentRef,
    ConsentScope,
    DataCategory,
    DirectiveFinding,
    Jurisdiction,
    Purpose,
    SharingRequest,
)

__all__ = ["assess_consent", "consent_receipt", "withdrawn_categories"]


def assess_consent(
    request: SharingRequest,
    directives: Sequence[ConsentDirective],
    *,
    assessed_at: datetime,
) -> ConsentAssessment:
    """Match the subject's directives (latest version of each) against one request.

    Returns every directive looked at, the requested categories supported by at least one
    directive (with those directives), one finding per directive explaining what it supports
    and why not the rest, and ``minor_self_consent`` for the minors rule of table P. Lists are
    sorted (directives by id and version, categories by id), so equal inputs give equal output.
    """
    categories = sorted(set(request.requested_categories))
    minor = _is_minor(request)
    findings: list[DirectiveFinding] = []
    supporters: dict[DataCategory, list[ConsentRef]] = {k: [] for k in categories}
    minor_self_consent = False
    for directive in _in_order(directives):
        ref = ConsentRef(consent_id=directive.consent_id, version=directive.version)
        matched, supports, reasons = _evaluate(
            request, directive, categories, revoked_by=request.requested_at
        )
        findings.append(DirectiveFinding(consent=ref, supports=supports, reasons=reasons))
        for k in supports:
            supporters[k].append(ref)
        # The uk_england minors rule needs to know the child consented, even though such a
        # consent never supports anything here (C4); policy decides what it means.
        if minor and matched and directive.granted_by is ConsentGrantor.CLIENT:
            minor_self_consent = True
    return ConsentAssessment(
        directives_considered=[f.consent for f in findings],
        supported={k: refs for k, refs in supporters.items() if refs},
        findings=findings,
        minor_self_consent=minor_self_consent,
        assessed_at=assessed_at,
    )


def withdrawn_categories(
    request: SharingRequest,
    consent_based_categories: Collection[DataCategory],
    current: Sequence[ConsentDirective],
    *,
    now: datetime,
) -> list[DataCategory]:
    """Consent-based categories that no current directive supports any more (invariant 5).

    Re-runs table C with the directive versions on file now. A revocation counts once
    ``revoked_at <= now`` (it stops deliveries still in flight); the other C1 checks keep
    using ``requested_at``, because validity and expiry are judged as of the request. An
    empty list means the delivery may go ahead.
    """
    # max(): a revocation that already voided the consent at request time must still count
    # even if this host's clock lags behind the requester's.
    revoked_by = max(now, request.requested_at)
    wanted = sorted(set(consent_based_categories))
    still_supported: set[DataCategory] = set()
    for directive in current:
        _, supports, _ = _evaluate(request, directive, wanted, revoked_by=revoked_by)
        still_supported.update(supports)
    return [k for k in wanted if k not in still_supported]


def _evaluate(
    request: SharingRequest,
    directive: ConsentDirective,
    categories: Iterable[DataCategory],
    *,
    revoked_by: datetime,
) -> tuple[bool, list[DataCategory], list[str]]:
    """One directive against one request: (meets subject+C1–C3, supported, reason codes)."""
    match_reasons = _match_reasons(request, directive, revoked_by)
    reasons = match_reasons + _validity_reasons(request, directive)
    if reasons:
        return not match_reasons, [], sorted(reasons)
    supports: list[DataCategory] = []
    for k in categories:
        reason = _category_reason(request, directive.scope, k)
        if reason is None:
            supports.append(k)
        else:
            reasons.append(reason)
    return True, supports, sorted(reasons)


def _match_reasons(
    request: SharingRequest, directive: ConsentDirective, revoked_by: datetime
) -> list[str]:
    """Does the directive speak to this request at all: subject, C1 time, C2, C3."""
    scope = directive.scope
    at = request.requested_at
    reasons: list[str] = []
    if directive.subject_id != request.record.subject_id:
        reasons.append("subject_mismatch")
    if scope.valid_from > at:
        reasons.append("C1.not_yet_valid")
    if scope.expires_at is not None and at >= scope.expires_at:
        reasons.append("C1.expired")
    # A revocation takes effect for the future only: a request made before it keeps the
    # consent (revoked_at > requested_at), unless the delivery gate asks about "now".
    if directive.revoked_at is not None and directive.revoked_at <= revoked_by:
        reasons.append("C1.revoked")
    if request.purpose not in scope.purposes:
        reasons.append("C2.other_purpose")
    if not (_named(scope, request.recipient.agency_id) or _typed(scope, request)):
        reasons.append("C3.other_recipient")
    return reasons


def _validity_reasons(request: SharingRequest, directive: ConsentDirective) -> list[str]:
    """C4 and the C6 rules that void a whole directive."""
    reasons: list[str] = []
    if _is_minor(request) and directive.granted_by is not ConsentGrantor.GUARDIAN:
        reasons.append("C4.minor_needs_guardian")
    if request.jurisdiction is Jurisdiction.US_BASELINE:
        included = directive.scope.categories_included
        # HIPAA 164.508(b)(3)(ii): a psychotherapy-notes authorization stands alone.
        if (
            included is not None
            and DataCategory.PSYCHOTHERAPY_NOTES in included
            and len(set(included)) > 1
        ):
            reasons.append("C6b.psychotherapy_combined")
        # FERPA 99.30 requires the records to be specified, whatever the purpose.
        if included is None and request.requester.agency_type is AgencyType.SCHOOL:
            reasons.append("C6c.ferpa_unspecified")
    return reasons


def _category_reason(request: SharingRequest, scope: ConsentScope, k: DataCategory) -> str | None:
    """Why the (otherwise valid) directive does not support category k, or None (C5, C6a)."""
    if k in HARD_BLOCKS:
        return f"C5.hard_block:{k.value}"
    if k in scope.categories_excluded:  # an exclusion beats an inclusion
        return f"C5.excluded:{k.value}"
    if scope.categories_included is None:
        if k in SPECIAL_CLASSES:
            return f"C5.special_not_named:{k.value}"
    elif k not in scope.categories_included:
        return f"C5.not_included:{k.value}"
    if _part2_governed(request, k) and not _part2_recipient_ok(request, scope):
        return f"C6a.recipient_not_named:{k.value}"
    return None


def _part2_governed(request: SharingRequest, k: DataCategory) -> bool:
    """C6a applies to Part 2 records, and to everything a Part 2 program holds (gate G1)."""
    return request.jurisdiction is Jurisdiction.US_BASELINE and (
        k is DataCategory.SUBSTANCE_USE_PART2
        or request.requester.agency_type is AgencyType.SUBSTANCE_USE_TREATMENT
    )


def _part2_recipient_ok(request: SharingRequest, scope: ConsentScope) -> bool:
    """42 CFR 2.31: the recipient is named, or (2024 rule) a single TPO consent covers a
    class of providers for treatment."""
    if _named(scope, request.recipient.agency_id):
        return True
    return (
        request.purpose is Purpose.TREATMENT_CONTINUITY
        and request.recipient.agency_type in PROVIDER_TYPES
        and _typed(scope, request)
    )


def _named(scope: ConsentScope, agency_id: str) -> bool:
    return scope.recipient_agency_ids is not None and agency_id in scope.recipient_agency_ids


def _typed(scope: ConsentScope, request: SharingRequest) -> bool:
    types = scope.recipient_agency_types
    return types is not None and request.recipient.agency_type in types


def _is_minor(request: SharingRequest) -> bool:
    # null is read as "not a minor" (vocabulary: facts).
    return request.facts.subject_is_minor is True


def _in_order(directives: Iterable[ConsentDirective]) -> list[ConsentDirective]:
    return sorted(directives, key=lambda d: (d.consent_id, d.version))
