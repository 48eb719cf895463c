"""Behaviours of the domain README §8 that cut across modules, each named."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sharinghub.consent.domain import assess_consent
from sharinghub.contracts import DataCategory, Outcome
from sharinghub.policy.engine import PolicyEngine
from tests.support.examples import directives_of, request_of


def test_b3_consent_time_checks_use_requested_at_not_the_clock(examples) -> None:  # type: ignore[no-untyped-def]
    ex = next(e for e in examples if e["id"].startswith("ex-01"))
    request = request_of(ex)
    directives = directives_of(ex)
    # judged years after the consent expired, the request made while it was valid is covered
    years_later = datetime(2031, 1, 1, tzinfo=UTC)
    assessment = assess_consent(request, directives, assessed_at=years_later)
    assert DataCategory.HOUSING in assessment.supported
    # and a request made after expiry is not, whatever the clock says
    late = request.model_copy(update={"requested_at": datetime(2026, 2, 1, tzinfo=UTC)})
    assert assess_consent(late, directives, assessed_at=late.requested_at).supported == {}
    decision = PolicyEngine.load().decide(
        late, assess_consent(late, directives, assessed_at=years_later), now=years_later
    )
    assert decision.outcome is Outcome.DENIED


def test_b3_revocation_after_the_request_does_not_reach_back_at_consent_time(examples) -> None:  # type: ignore[no-untyped-def]
    ex = next(e for e in examples if e["id"].startswith("ex-01"))
    request = request_of(ex)
    [directive] = directives_of(ex)
    revoked_later = directive.model_copy(
        update={"version": 2, "revoked_at": request.requested_at + timedelta(minutes=5)}
    )
    assessment = assess_consent(request, [revoked_later], assessed_at=request.requested_at)
    assert DataCategory.IDENTITY in assessment.supported  # the gate's re-check stops delivery


def test_b4_only_consent_resting_categories_are_rechecked_before_delivery(examples) -> None:  # type: ignore[no-untyped-def]
    """Treatment continuity needs no consent for its profile; a consent that adds
    psychotherapy notes is what a revocation in flight must stop — and only that."""
    from sharinghub.consent.domain import withdrawn_categories
    from sharinghub.contracts import ConsentDirective, ConsentScope, Purpose

    ex = next(e for e in examples if e["id"].startswith("ex-02"))
    request = request_of(ex)
    notes_consent = ConsentDirective(
        consent_id="cd-notes",
        version=1,
        subject_id=request.subject_id,
        granted_by="client",
        scope=ConsentScope(
            recipient_agency_ids=[request.recipient.agency_id],
            purposes=[Purpose.TREATMENT_CONTINUITY],
            categories_included=[DataCategory.PSYCHOTHERAPY_NOTES],
            valid_from=request.requested_at - timedelta(days=30),
        ),
    )
    now = request.requested_at + timedelta(minutes=1)
    assessment = assess_consent(request, [notes_consent], assessed_at=now)
    decision = PolicyEngine.load().decide(request, assessment, now=now)
    assert decision.outcome is Outcome.DELIVERED
    assert DataCategory.PSYCHOTHERAPY_NOTES in decision.allowed_categories
    assert decision.consent_categories == [DataCategory.PSYCHOTHERAPY_NOTES]
    revoked = notes_consent.model_copy(update={"version": 2, "revoked_at": now})
    withdrawn = withdrawn_categories(
        request, decision.consent_categories, [revoked], now=now + timedelta(seconds=1)
    )
    assert withdrawn == [DataCategory.PSYCHOTHERAPY_NOTES]
