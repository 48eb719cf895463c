"""Focused rules of the policy engine: tables P, G, O, the decision order and B1/B5/B6/B12."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import pytest

from sharinghub.contracts import (
    ConsentAssessment,
    ConsentRef,
    DataCategory,
    Jurisdiction,
    Obligation,
    Outcome,
    PolicyDecision,
    Purpose,
    SharingRequest,
)
from sharinghub.policy.engine import PolicyEngine

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
REF = ConsentRef(consent_id="cd-test-1", version=2)
D = DataCategory
OB = Obligation


@pytest.fixture(scope="module")
def engine() -> PolicyEngine:
    return PolicyEngine.load()


def req(
    purpose: str,
    requester: str = "mental_health",
    recipient: str = "police",
    cats: tuple[str, ...] = ("identity", "contact", "risk_assessment"),
    jurisdiction: str = "us_baseline",
    fields: tuple[str, ...] = (),
    break_glass: bool = False,
    stated_reason: str = "",
    **facts: Any,
) -> SharingRequest:
    return SharingRequest.model_validate(
        {
            "request_id": "rq-test-1",
            "jurisdiction": jurisdiction,
            "requester": {"agency_id": "ag-test-a", "agency_type": requester},
            "recipient": {"agency_id": "ag-test-b", "agency_type": recipient},
            "purpose": purpose,
            "stated_reason": stated_reason,
            "facts": facts,
            "requested_categories": list(cats),
            "record": {
                "subject_id": "subj-test-1",
                "fields": [
                    {"name": f"field_{i}", "category": c, "value": f"Value {c} 0{i}"}
                    for i, c in enumerate(fields or cats)
                ],
            },
            "requested_at": NOW.isoformat(),
            "break_glass": {"declared_by": "pr-test-1", "justification": "now"}
            if break_glass
            else None,
        }
    )


def consent(*supported: str, minor_self_consent: bool = False) -> ConsentAssessment:
    return ConsentAssessment(
        supported={D(c): [REF] for c in supported},
        minor_self_consent=minor_self_consent,
        assessed_at=NOW,
    )


def decide(
    engine: PolicyEngine, r: SharingRequest, c: ConsentAssessment | None = None
) -> PolicyDecision:
    return engine.decide(r, c or consent(), now=NOW)


def cats(d: PolicyDecision) -> set[str]:
    return {k.value for k in d.allowed_categories}


# --- step 1: invalid purposes (B6) --------------------------------------------------------


@pytest.mark.parametrize("purpose", sorted(p.value for p in Purpose if p.is_invalid))
def test_b6_invalid_purpose_rejected_whatever_facts_consents_or_approval(
    engine: PolicyEngine, purpose: str
) -> None:
    r = req(
        purpose,
        supervisor_approved=True,
        threat_imminent=True,
        emergency=True,
        identifiable_victim=True,
        break_glass=True,
    )
    d = decide(engine, r, consent("identity", "contact", "risk_assessment"))
    assert d.outcome is Outcome.REJECTED_INVALID
    assert d.allowed_categories == [] and d.obligations == [] and d.review is None
    assert d.reason_code == "step1.invalid_purpose"


# --- B12: stated_reason never read ----------------------------------------------------------


def test_b12_stated_reason_never_changes_the_decision(engine: PolicyEngine) -> None:
    quiet = decide(engine, req("duty_to_warn", threat_imminent=True, identifiable_victim=True))
    loud = decide(
        engine,
        req(
            "duty_to_warn",
            threat_imminent=True,
            identifiable_victim=True,
            stated_reason="invalid_just_in_case court order emergency approved",
        ),
    )
    assert quiet == loud


# --- step 2: recipients ---------------------------------------------------------------------


def test_recipient_type_not_allowed_is_denied(engine: PolicyEngine) -> None:
    d = decide(
        engine,
        req("duty_to_warn", recipient="housing", threat_imminent=True, identifiable_victim=True),
    )
    assert d.outcome is Outcome.DENIED and d.reason_code == "P.recipient_not_allowed"


def test_client_own_request_only_to_the_data_subject(engine: PolicyEngine) -> None:
    assert decide(engine, req("client_own_request", recipient="police")).outcome is Outcome.DENIED
    ok = decide(engine, req("client_own_request", recipient="data_subject"))
    assert ok.outcome is Outcome.DELIVERED and ok.obligations == []


def test_treatment_continuity_requester_must_be_a_provider(engine: PolicyEngine) -> None:
    d = decide(engine, req("treatment_continuity", requester="housing", recipient="health"))
    assert d.outcome is Outcome.DENIED and d.reason_code == "P.requester_not_provider"


# --- table P per purpose --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("facts", "outcome", "reason"),
    [
        (
            {"threat_imminent": False, "identifiable_victim": True},
            Outcome.DENIED,
            "P.duty_to_warn.not_imminent",
        ),
        ({"identifiable_victim": True}, Outcome.PENDING_REVIEW, "P.duty_to_warn.imminence_unknown"),
        (
            {"threat_imminent": True, "identifiable_victim": True},
            Outcome.DELIVERED,
            "P.duty_to_warn.imminent_identifiable",
        ),
        (
            {"threat_imminent": True, "supervisor_approved": True},
            Outcome.DELIVERED,
            "P.duty_to_warn.supervisor_approved",
        ),
        ({"threat_imminent": True}, Outcome.PENDING_REVIEW, "P.duty_to_warn.permissive"),
    ],
)
def test_duty_to_warn_rows(
    engine: PolicyEngine, facts: dict[str, Any], outcome: Outcome, reason: str
) -> None:
    d = decide(
        engine, req("duty_to_warn", cats=("identity", "risk_assessment", "mental_health"), **facts)
    )
    assert d.outcome is outcome and d.reason_code == reason
    if outcome is Outcome.PENDING_REVIEW:
        assert d.review is not None
        assert set(d.review.max_categories) == {D.IDENTITY, D.RISK_ASSESSMENT}


def test_review_names_unknown_decisive_facts(engine: PolicyEngine) -> None:
    d = decide(engine, req("duty_to_warn", threat_imminent=True))
    assert d.review is not None
    assert d.review.missing_facts == ["identifiable_victim", "supervisor_approved"]
    d2 = decide(engine, req("medical_emergency", recipient="health"))
    assert d2.review is not None and d2.review.missing_facts == ["emergency"]


@pytest.mark.parametrize(
    ("facts", "outcome"),
    [
        ({"threat_imminent": False}, Outcome.DENIED),
        ({}, Outcome.PENDING_REVIEW),
        ({"threat_imminent": True}, Outcome.DELIVERED),
    ],
)
def test_imminent_self_harm(engine: PolicyEngine, facts: dict[str, Any], outcome: Outcome) -> None:
    d = decide(
        engine,
        req(
            "imminent_self_harm",
            recipient="health",
            cats=("identity", "mental_health", "housing"),
            **facts,
        ),
    )
    assert d.outcome is outcome
    if outcome is Outcome.DELIVERED:
        assert cats(d) == {"identity", "mental_health"}
        assert set(d.obligations) == {
            OB.NOTIFY_CLIENT,
            OB.RETROSPECTIVE_REVIEW,
            OB.MINIMUM_NECESSARY_APPLIED,
        }


def test_child_safeguarding_needs_a_recorded_concern(engine: PolicyEngine) -> None:
    c = ("identity", "household_family", "safeguarding_concerns")
    without = req(
        "child_safeguarding",
        recipient="child_protective_services",
        cats=c,
        fields=("identity", "household_family"),
    )
    assert decide(engine, without).reason_code == "P.child_safeguarding.no_concern_recorded"
    d = decide(engine, req("child_safeguarding", recipient="child_protective_services", cats=c))
    assert d.outcome is Outcome.DELIVERED and cats(d) == set(c)


def test_adult_safeguarding_consent_path_narrows_to_consent(engine: PolicyEngine) -> None:
    r = req(
        "adult_safeguarding",
        requester="social_services",
        recipient="adult_protective_services",
        cats=("identity", "safeguarding_concerns", "financial"),
    )
    d = decide(engine, r, consent("identity", "safeguarding_concerns"))
    assert d.outcome is Outcome.DELIVERED and d.consent_based
    assert cats(d) == {"identity", "safeguarding_concerns"}
    assert d.consents_used == [REF]
    # consent basis: no O1 notification obligation
    assert set(d.obligations) == {OB.MINIMUM_NECESSARY_APPLIED}


def test_adult_safeguarding_without_consent(engine: PolicyEngine) -> None:
    base = {
        "requester": "social_services",
        "recipient": "adult_protective_services",
        "cats": ("identity", "safeguarding_concerns"),
    }
    assert decide(engine, req("adult_safeguarding", **base)).outcome is Outcome.PENDING_REVIEW
    d = decide(
        engine,
        req("adult_safeguarding", supervisor_approved=True, informing_increases_risk=True, **base),
    )
    assert d.outcome is Outcome.DELIVERED and not d.consent_based
    assert set(d.obligations) == {OB.NOTIFICATION_WITHHELD_RISK, OB.MINIMUM_NECESSARY_APPLIED}


def test_consent_based_sharing_only_consented_profile_categories(engine: PolicyEngine) -> None:
    r = req(
        "consent_based_sharing",
        recipient="housing",
        cats=("identity", "housing", "mental_health", "third_party_information"),
    )
    d = decide(engine, r, consent("identity", "housing"))
    assert d.outcome is Outcome.DELIVERED and cats(d) == {"identity", "housing"}
    assert d.consent_based and d.consents_used == [REF] and d.obligations == []
    none = decide(engine, r)
    assert none.outcome is Outcome.DENIED and none.reason_code == "step5.nothing_allowed"


def test_care_coordination_never_psychotherapy_notes(engine: PolicyEngine) -> None:
    r = req("care_coordination", recipient="housing", cats=("identity", "psychotherapy_notes"))
    d = decide(engine, r, consent("identity", "psychotherapy_notes"))
    assert cats(d) == {"identity"}


def test_treatment_continuity_consent_adds_special_categories(engine: PolicyEngine) -> None:
    r = req(
        "treatment_continuity", recipient="health", cats=("identity", "hiv_status", "financial")
    )
    plain = decide(engine, r)
    assert cats(plain) == {"identity"} and not plain.consent_based and plain.consents_used == []
    d = decide(engine, r, consent("hiv_status", "financial"))
    assert cats(d) == {"identity", "hiv_status"}
    assert d.consent_based and d.consents_used == [REF]


def test_law_enforcement_request(engine: PolicyEngine) -> None:
    r = req("law_enforcement_request", requester="health", cats=("identity", "mental_health"))
    assert decide(engine, r).outcome is Outcome.PENDING_REVIEW
    ok = decide(
        engine,
        req(
            "law_enforcement_request",
            requester="health",
            cats=("identity", "mental_health"),
            supervisor_approved=True,
        ),
    )
    assert cats(ok) == {"identity"}


def test_colleague_consultation_is_de_identified(engine: PolicyEngine) -> None:
    d = decide(
        engine,
        req(
            "colleague_consultation",
            recipient="mental_health",
            cats=("identity", "contact", "case_narrative"),
        ),
    )
    assert cats(d) == {"case_narrative"}


def test_audit_oversight_to_oversight_body(engine: PolicyEngine) -> None:
    d = decide(
        engine, req("audit_oversight", recipient="oversight_body", cats=("identity", "financial"))
    )
    assert cats(d) == {"identity"} and d.obligations == [OB.MINIMUM_NECESSARY_APPLIED]


def test_client_own_request_risk_goes_to_review(engine: PolicyEngine) -> None:
    d = decide(
        engine, req("client_own_request", recipient="data_subject", informing_increases_risk=True)
    )
    assert d.outcome is Outcome.PENDING_REVIEW and d.allowed_categories == []


# --- court orders and subpoenas (B5) ----------------------------------------------------------


def order(by_judge: bool | None, *covers: str) -> dict[str, Any]:
    return {"issued_by_judge": by_judge, "covers_categories": list(covers)}


def test_b5_judges_order_yields_exactly_what_it_covers_hard_blocks_included(
    engine: PolicyEngine,
) -> None:
    r = req(
        "court_order",
        requester="social_services",
        recipient="court",
        cats=("identity", "sealed_court_record", "mental_health"),
        court_order=order(True, "identity", "sealed_court_record"),
    )
    d = decide(engine, r)
    assert cats(d) == {"identity", "sealed_court_record"}
    assert set(d.obligations) == {OB.NOTIFY_CLIENT}


@pytest.mark.parametrize("jurisdiction", ["us_baseline", "uk_england"])
def test_b5_subpoena_never_yields_protected_classes(
    engine: PolicyEngine, jurisdiction: str
) -> None:
    protected = (
        "psychotherapy_notes",
        "privileged_communication",
        "sealed_court_record",
        "third_party_information",
    )
    d = decide(
        engine,
        req(
            "subpoena",
            requester="health",
            recipient="court",
            jurisdiction=jurisdiction,
            cats=(*protected, "substance_use_part2", "identity"),
        ),
    )
    assert d.outcome is Outcome.PENDING_REVIEW and d.allowed_categories == []
    assert d.review is not None
    expected = {D.IDENTITY} | ({D.SUBSTANCE_USE_PART2} if jurisdiction == "uk_england" else set())
    assert set(d.review.max_categories) == expected
    only = decide(
        engine,
        req(
            "subpoena",
            requester="health",
            recipient="court",
            jurisdiction=jurisdiction,
            cats=protected,
        ),
    )
    assert only.outcome is Outcome.DENIED


def test_b5_order_not_signed_by_a_judge_is_a_subpoena(engine: PolicyEngine) -> None:
    d = decide(
        engine,
        req(
            "court_order",
            requester="health",
            recipient="court",
            cats=("identity", "psychotherapy_notes"),
            court_order=order(None, "identity", "psychotherapy_notes"),
        ),
    )
    assert d.outcome is Outcome.PENDING_REVIEW and d.reason_code == "P.subpoena.review"
    assert d.review is not None and d.review.max_categories == [D.IDENTITY]
    assert "subpoena" in d.explanation


# --- gate G1 (Part 2 program) -------------------------------------------------------------


SUT = "substance_use_treatment"


def test_g1_subpoena_and_police_denied(engine: PolicyEngine) -> None:
    assert (
        decide(engine, req("subpoena", requester=SUT, recipient="court")).reason_code
        == "G1.subpoena"
    )
    d = decide(engine, req("law_enforcement_request", requester=SUT, supervisor_approved=True))
    assert d.reason_code == "G1.law_enforcement_request"


def test_g1_court_order_must_list_part2(engine: PolicyEngine) -> None:
    d = decide(
        engine,
        req(
            "court_order",
            requester=SUT,
            recipient="court",
            cats=("identity",),
            court_order=order(True, "identity"),
        ),
    )
    assert d.outcome is Outcome.DENIED and d.reason_code == "G1.court_order.part2_not_listed"


def test_g1_threat_goes_to_review_even_with_identifiable_victim(engine: PolicyEngine) -> None:
    d = decide(
        engine, req("duty_to_warn", requester=SUT, threat_imminent=True, identifiable_victim=True)
    )
    assert d.outcome is Outcome.PENDING_REVIEW and d.reason_code == "G1.threat.review"
    no = decide(engine, req("duty_to_warn", requester=SUT, threat_imminent=False))
    assert no.outcome is Outcome.DENIED


def test_g1_adult_safeguarding_needs_consent_else_review(engine: PolicyEngine) -> None:
    base = {
        "requester": SUT,
        "recipient": "adult_protective_services",
        "cats": ("identity", "safeguarding_concerns"),
    }
    d = decide(engine, req("adult_safeguarding", supervisor_approved=True, **base))
    assert d.outcome is Outcome.PENDING_REVIEW
    ok = decide(engine, req("adult_safeguarding", **base), consent("identity"))
    assert ok.outcome is Outcome.DELIVERED and cats(ok) == {"identity"}
    assert OB.REDISCLOSURE_NOTICE_PART2 in ok.obligations


def test_g1_treatment_every_category_needs_consent(engine: PolicyEngine) -> None:
    r = req(
        "treatment_continuity",
        requester=SUT,
        recipient="health",
        cats=("identity", "physical_health", "substance_use_part2"),
    )
    assert decide(engine, r).outcome is Outcome.DENIED
    d = decide(engine, r, consent("identity", "substance_use_part2"))
    assert cats(d) == {"identity", "substance_use_part2"} and d.consent_based
    assert set(d.obligations) == {OB.REDISCLOSURE_NOTICE_PART2, OB.MINIMUM_NECESSARY_APPLIED}


# --- gate G2 (school, FERPA) --------------------------------------------------------------


def test_g2_school_emergency_rules(engine: PolicyEngine) -> None:
    base = {"requester": "school", "threat_imminent": True, "identifiable_victim": True}
    assert (
        decide(engine, req("duty_to_warn", emergency=False, **base)).reason_code
        == "G2.emergency_false"
    )
    unknown = decide(engine, req("duty_to_warn", **base))
    assert (
        unknown.outcome is Outcome.PENDING_REVIEW and unknown.reason_code == "G2.emergency_unknown"
    )
    ok = decide(engine, req("duty_to_warn", emergency=True, **base))
    assert ok.outcome is Outcome.DELIVERED
    assert OB.REDISCLOSURE_NOTICE_FERPA in ok.obligations
    # G2 runs before table P: an unknown emergency sends even a non-imminent threat to review
    g2_first = decide(engine, req("duty_to_warn", requester="school", threat_imminent=False))
    assert g2_first.outcome is Outcome.PENDING_REVIEW


def test_g2_school_police_request_denied(engine: PolicyEngine) -> None:
    d = decide(engine, req("law_enforcement_request", requester="school", supervisor_approved=True))
    assert d.reason_code == "G2.law_enforcement_request"


def test_g2_child_safeguarding_scope_without_emergency(engine: PolicyEngine) -> None:
    c = ("identity", "education", "safeguarding_concerns")
    d = decide(
        engine,
        req(
            "child_safeguarding", requester="school", recipient="child_protective_services", cats=c
        ),
    )
    assert cats(d) == {"identity", "safeguarding_concerns"}
    assert OB.REDISCLOSURE_NOTICE_FERPA not in d.obligations
    e = decide(
        engine,
        req(
            "child_safeguarding",
            requester="school",
            recipient="child_protective_services",
            cats=c,
            emergency=True,
        ),
    )
    assert cats(e) == set(c) and OB.REDISCLOSURE_NOTICE_FERPA in e.obligations


def test_gates_do_not_apply_in_england(engine: PolicyEngine) -> None:
    d = decide(
        engine,
        req(
            "duty_to_warn",
            requester=SUT,
            jurisdiction="uk_england",
            threat_imminent=True,
            identifiable_victim=True,
        ),
    )
    assert d.outcome is Outcome.DELIVERED
    assert OB.REDISCLOSURE_NOTICE_PART2 not in d.obligations


# --- minors ---------------------------------------------------------------------------------


def test_minors_us_part2_or_sexual_health_go_to_review_even_without_consent(
    engine: PolicyEngine,
) -> None:
    r = req(
        "consent_based_sharing",
        recipient="health",
        subject_is_minor=True,
        cats=("identity", "sexual_reproductive_health"),
    )
    d = decide(engine, r)
    assert (
        d.outcome is Outcome.PENDING_REVIEW and d.reason_code == "P.minors.part2_or_sexual_health"
    )
    assert d.review is not None
    assert set(d.review.max_categories) == {D.IDENTITY, D.SEXUAL_REPRODUCTIVE_HEALTH}
    plain = decide(
        engine,
        req("consent_based_sharing", recipient="health", subject_is_minor=True, cats=("identity",)),
        consent("identity"),
    )
    assert plain.outcome is Outcome.DELIVERED


def test_minors_uk_self_consent_goes_to_review(engine: PolicyEngine) -> None:
    r = req(
        "consent_based_sharing",
        recipient="health",
        jurisdiction="uk_england",
        subject_is_minor=True,
        cats=("identity",),
    )
    d = decide(engine, r, consent(minor_self_consent=True))
    assert d.outcome is Outcome.PENDING_REVIEW and d.reason_code == "P.minors.competence"


# --- step 5: nothing in common with the profile -------------------------------------------


def test_nothing_in_common_with_profile_denied_even_where_review(engine: PolicyEngine) -> None:
    d = decide(
        engine, req("duty_to_warn", threat_imminent=True, cats=("mental_health", "financial"))
    )
    assert d.outcome is Outcome.DENIED and d.reason_code == "step5.nothing_reviewable"
    assert d.review is None and d.allowed_categories == []


# --- England differences ------------------------------------------------------------------


def test_uk_part2_is_ordinary_health_data_in_four_profiles(engine: PolicyEngine) -> None:
    for purpose, recipient in (
        ("treatment_continuity", "health"),
        ("imminent_self_harm", "health"),
    ):
        f = {"threat_imminent": True}
        uk = decide(
            engine,
            req(
                purpose,
                recipient=recipient,
                jurisdiction="uk_england",
                cats=("identity", "substance_use_part2"),
                **f,
            ),
        )
        us = decide(
            engine, req(purpose, recipient=recipient, cats=("identity", "substance_use_part2"), **f)
        )
        assert cats(uk) == {"identity", "substance_use_part2"}
        assert cats(us) == {"identity"}


def test_uk_client_psychotherapy_notes_go_to_review(engine: PolicyEngine) -> None:
    d = decide(
        engine,
        req(
            "client_own_request",
            recipient="data_subject",
            jurisdiction="uk_england",
            cats=("identity", "psychotherapy_notes"),
        ),
    )
    assert d.outcome is Outcome.PENDING_REVIEW
    assert d.review is not None and D.PSYCHOTHERAPY_NOTES in d.review.max_categories


def test_uk_obligations_minimum_necessary_without_us_exceptions(engine: PolicyEngine) -> None:
    d = decide(engine, req("treatment_continuity", recipient="health", jurisdiction="uk_england"))
    assert d.obligations == [OB.MINIMUM_NECESSARY_APPLIED]


# --- break-glass and O2 --------------------------------------------------------------------


def test_break_glass_treats_emergency_as_true_and_opens_retrospective_review(
    engine: PolicyEngine,
) -> None:
    d = decide(
        engine,
        req(
            "medical_emergency",
            recipient="health",
            break_glass=True,
            cats=("identity", "physical_health"),
        ),
    )
    assert d.outcome is Outcome.DELIVERED
    assert OB.RETROSPECTIVE_REVIEW in d.obligations
    assert "Break-glass" in d.explanation
    adult = decide(
        engine,
        req(
            "adult_safeguarding",
            requester="social_services",
            recipient="adult_protective_services",
            break_glass=True,
            cats=("identity", "safeguarding_concerns"),
        ),
    )
    assert adult.outcome is Outcome.DELIVERED and OB.RETROSPECTIVE_REVIEW in adult.obligations


def test_o2_no_retrospective_review_when_supervisor_approved_beforehand(
    engine: PolicyEngine,
) -> None:
    d = decide(engine, req("duty_to_warn", threat_imminent=True, supervisor_approved=True))
    assert OB.RETROSPECTIVE_REVIEW not in d.obligations


# --- B1 for every purpose ------------------------------------------------------------------


@pytest.mark.parametrize("purpose", sorted(p.value for p in Purpose if not p.is_invalid))
@pytest.mark.parametrize("jurisdiction", ["us_baseline", "uk_england"])
def test_b1_only_delivered_outcomes_carry_categories_and_obligations(
    engine: PolicyEngine, purpose: str, jurisdiction: str
) -> None:
    for recipient in ("police", "health", "data_subject", "oversight_body"):
        d = decide(
            engine,
            req(
                purpose,
                recipient=recipient,
                jurisdiction=jurisdiction,
                cats=tuple(k.value for k in D),
            ),
            consent("identity"),
        )
        if d.outcome is Outcome.DELIVERED:
            assert d.allowed_categories
            assert not {D.THIRD_PARTY_INFORMATION, D.SEALED_COURT_RECORD} & set(
                d.allowed_categories
            )
        else:
            assert d.allowed_categories == [] and d.obligations == [] and d.consents_used == []
        assert (d.review is not None) is (d.outcome is Outcome.PENDING_REVIEW)


# --- review, batching, packs ---------------------------------------------------------------


def test_decide_after_review_never_wider_than_max(engine: PolicyEngine) -> None:
    r = req(
        "duty_to_warn",
        threat_imminent=True,
        informing_increases_risk=False,
        cats=("identity", "contact", "mental_health"),
    )
    pending = decide(engine, r)
    assert pending.review is not None
    assert set(pending.review.max_categories) == {D.IDENTITY, D.CONTACT}
    d = engine.decide_after_review(
        r, consent(), pending, approved_categories=[D.IDENTITY], reviewer_id="pr-rev-1", now=NOW
    )
    assert d.outcome is Outcome.DELIVERED and d.allowed_categories == [D.IDENTITY]
    assert d.decided_by == "pr-rev-1"
    assert set(d.obligations) == {
        OB.NOTIFY_CLIENT,
        OB.RETROSPECTIVE_REVIEW,
        OB.MINIMUM_NECESSARY_APPLIED,
    }
    with pytest.raises(ValueError, match="exceed"):
        engine.decide_after_review(
            r,
            consent(),
            pending,
            approved_categories=[D.MENTAL_HEALTH],
            reviewer_id="pr-rev-1",
            now=NOW,
        )
    with pytest.raises(ValueError, match="no category"):
        engine.decide_after_review(
            r, consent(), pending, approved_categories=[], reviewer_id="pr-rev-1", now=NOW
        )


def test_decide_many_matches_decide(engine: PolicyEngine) -> None:
    items = [
        (req("duty_to_warn", threat_imminent=True), consent()),
        (req("invalid_just_in_case"), consent()),
        (
            req("consent_based_sharing", recipient="housing", jurisdiction="uk_england"),
            consent("identity"),
        ),
        (req("subpoena", requester="health", recipient="court"), consent()),
    ]
    assert engine.decide_many(items, now=NOW) == [engine.decide(r, c, now=NOW) for r, c in items]


def test_cache_never_changes_an_answer(engine: PolicyEngine) -> None:
    cold = PolicyEngine({p: engine.compiled(p) for p in engine.pack_ids}, cache_size=0)
    warm = PolicyEngine({p: engine.compiled(p) for p in engine.pack_ids})
    r = req(
        "adult_safeguarding",
        requester="social_services",
        recipient="adult_protective_services",
        cats=("identity", "safeguarding_concerns"),
    )
    for _ in range(2):
        assert warm.decide(r, consent("identity"), now=NOW) == cold.decide(
            r, consent("identity"), now=NOW
        )


def test_memos_stay_within_their_bound_and_never_change_an_answer(
    engine: PolicyEngine,
) -> None:
    cold = PolicyEngine({p: engine.compiled(p) for p in engine.pack_ids}, cache_size=0)
    small = PolicyEngine({p: engine.compiled(p) for p in engine.pack_ids}, cache_size=6)
    seen = []
    for imminent, victim, emergency in itertools.product((True, False, None), repeat=3):
        for granted in ((), ("identity",)):
            r = req(
                "duty_to_warn",
                threat_imminent=imminent,
                identifiable_victim=victim,
                emergency=emergency,
            )
            decided = small.decide(r, consent(*granted), now=NOW)
            assert decided == cold.decide(r, consent(*granted), now=NOW)
            answers, evaluations = small.memo_entries
            assert 0 < answers <= 6 and 0 < evaluations <= 6
            seen.append(decided.outcome)
    assert len(set(seen)) > 1  # the inputs really differed
    assert cold.memo_entries == (0, 0)


def test_us_ca_unknown_imminence_with_identifiable_victim_delivers(engine: PolicyEngine) -> None:
    r = req("duty_to_warn", identifiable_victim=True)
    assert engine.decide(r, consent(), now=NOW).outcome is Outcome.PENDING_REVIEW
    ca = engine.decide_with_pack("us_ca", r, consent(), now=NOW)
    assert (
        ca.outcome is Outcome.DELIVERED and ca.reason_code == "CA.duty_to_warn.identifiable_victim"
    )
    assert ca.pack_id == "us_ca"
    assert OB.RETROSPECTIVE_REVIEW in ca.obligations
    denied = engine.decide_with_pack(
        "us_ca",
        req("duty_to_warn", identifiable_victim=True, threat_imminent=False),
        consent(),
        now=NOW,
    )
    assert denied.outcome is Outcome.DENIED


def test_pack_info(engine: PolicyEngine) -> None:
    info = engine.pack(Jurisdiction.UK_ENGLAND)
    assert info.id == "uk_england" and info.effective_date and info.citations
