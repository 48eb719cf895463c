"""Consent matching (table C): examples, one focused test per rule, withdrawal and receipts."""

from __future__ import annotations

import json
import random
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sharinghub.consent.domain import assess_consent, consent_receipt, withdrawn_categories
from sharinghub.contracts import (
    CaseRecord,
    ConsentDirective,
    ConsentRef,
    ConsentScope,
    DataCategory,
    Facts,
    Recipient,
    Requester,
    SharingRequest,
)

EXAMPLES = Path(__file__).resolve().parents[2] / ".." / "shared" / "domain" / "examples.jsonl"
C = DataCategory
T0 = datetime(2025, 3, 4, 14, 20, tzinfo=UTC)
LATER = datetime(2031, 1, 1, tzinfo=UTC)  # the assessment must not depend on this clock
SUBJECT = "subj-test-0001"
RECIPIENT = "ag-test-homes"
CODE = re.compile(r"^(subject_mismatch|C[1-6][abc]?\.[a-z_]+(:[a-z0-9_]+)?)$")


# ---------------------------------------------------------------- builders (fictional data)


def make_request(**overrides: Any) -> SharingRequest:
    """A consent_based_sharing request, us_baseline, social services → housing."""
    base: dict[str, Any] = {
        "request_id": "req-test-0001",
        "jurisdiction": "us_baseline",
        "requester": Requester(agency_id="ag-test-social-care", agency_type="social_services"),
        "recipient": Recipient(agency_id=RECIPIENT, agency_type="housing"),
        "purpose": "consent_based_sharing",
        "requested_categories": ["identity", "contact", "housing"],
        "record": CaseRecord(subject_id=SUBJECT, fields=[]),
        "requested_at": T0,
    }
    facts = overrides.pop("facts", {})
    return SharingRequest.model_validate({**base, **overrides, "facts": Facts(**facts)})


def make_directive(
    consent_id: str = "cd-test-a", *, revoked_at: datetime | None = None, **scope: Any
) -> ConsentDirective:
    """A current client consent naming RECIPIENT for consent_based_sharing."""
    version = scope.pop("version", 1)
    granted_by = scope.pop("granted_by", "client")
    subject_id = scope.pop("subject_id", SUBJECT)
    base: dict[str, Any] = {
        "recipient_agency_ids": [RECIPIENT],
        "purposes": ["consent_based_sharing"],
        "categories_included": ["identity", "contact", "housing"],
        "valid_from": T0 - timedelta(days=30),
        "expires_at": T0 + timedelta(days=300),
    }
    return ConsentDirective(
        consent_id=consent_id,
        version=version,
        subject_id=subject_id,
        granted_by=granted_by,
        scope=ConsentScope.model_validate({**base, **scope}),
        revoked_at=revoked_at,
    )


def supported(request: SharingRequest, *directives: ConsentDirective) -> set[DataCategory]:
    return set(assess_consent(request, directives, assessed_at=LATER).supported)


def reasons(request: SharingRequest, directive: ConsentDirective) -> list[str]:
    (finding,) = assess_consent(request, [directive], assessed_at=LATER).findings
    return finding.reasons


def example(example_id: str) -> tuple[SharingRequest, list[ConsentDirective]]:
    with EXAMPLES.open(encoding="utf-8") as fh:
        raw = next(e for e in map(json.loads, fh) if e["id"] == example_id)
    consents = raw.pop("consents")
    for key in ("id", "title", "expected"):
        raw.pop(key)
    request = SharingRequest.model_validate({**raw, "request_id": example_id})
    directives = [
        ConsentDirective(
            consent_id=c.pop("consent_id"),
            version=1,
            subject_id=request.record.subject_id,
            granted_by=c.pop("granted_by"),
            revoked_at=c.pop("revoked_at"),
            scope=ConsentScope.model_validate(c),
        )
        for c in consents
    ]
    return request, directives


# ---------------------------------------------------------------- the two example consents


def test_ex01_consent_supports_exactly_the_four_named_categories() -> None:
    request, directives = example("ex-01-consent-housing-transfer")
    result = assess_consent(request, directives, assessed_at=LATER)
    ref = ConsentRef(consent_id="cd-ex01-a", version=1)
    assert result.supported == {
        C.CONTACT: [ref],
        C.HOUSEHOLD_FAMILY: [ref],
        C.HOUSING: [ref],
        C.IDENTITY: [ref],
    }
    assert result.directives_considered == [ref]
    assert result.findings[0].reasons == [
        "C5.not_included:case_narrative",
        "C5.not_included:mental_health",
    ]
    assert result.minor_self_consent is False
    assert result.assessed_at == LATER


def test_ex09_consent_revoked_before_request_supports_nothing() -> None:
    request, directives = example("ex-09-consent-revoked-before-request")
    result = assess_consent(request, directives, assessed_at=LATER)
    assert result.supported == {}
    assert result.findings[0].supports == []
    assert result.findings[0].reasons == ["C1.revoked"]


def test_no_directives_on_file_supports_nothing() -> None:
    result = assess_consent(make_request(), [], assessed_at=LATER)
    assert (result.supported, result.findings, result.directives_considered) == ({}, [], [])


# ---------------------------------------------------------------- C1 time


@pytest.mark.parametrize(
    ("valid_from", "expires_at", "revoked_at", "code"),
    [
        (T0 + timedelta(seconds=1), None, None, "C1.not_yet_valid"),
        (T0 - timedelta(days=9), T0, None, "C1.expired"),
        (T0 - timedelta(days=9), T0 - timedelta(days=1), None, "C1.expired"),
        (T0 - timedelta(days=9), None, T0, "C1.revoked"),
        (T0 - timedelta(days=9), None, T0 - timedelta(hours=1), "C1.revoked"),
    ],
)
def test_c1_outside_the_time_window_supports_nothing(
    valid_from: datetime, expires_at: datetime | None, revoked_at: datetime | None, code: str
) -> None:
    directive = make_directive(valid_from=valid_from, expires_at=expires_at, revoked_at=revoked_at)
    assert supported(make_request(), directive) == set()
    assert reasons(make_request(), directive) == [code]


def test_c1_window_edges_valid_from_inclusive_and_revocation_after_request() -> None:
    directive = make_directive(valid_from=T0, expires_at=None, revoked_at=T0 + timedelta(seconds=1))
    assert supported(make_request(), directive) == {C.IDENTITY, C.CONTACT, C.HOUSING}


def test_c1_uses_requested_at_never_the_assessment_time() -> None:
    directive = make_directive(expires_at=T0 + timedelta(days=1))
    result = assess_consent(make_request(), [directive], assessed_at=T0 + timedelta(days=900))
    assert set(result.supported) == {C.IDENTITY, C.CONTACT, C.HOUSING}


# ---------------------------------------------------------------- C2, C3, subject


def test_c2_other_purpose_supports_nothing() -> None:
    directive = make_directive(purposes=["care_coordination"])
    assert supported(make_request(), directive) == set()
    assert reasons(make_request(), directive) == ["C2.other_purpose"]


@pytest.mark.parametrize(
    ("ids", "types", "matches"),
    [
        ([RECIPIENT], None, True),
        (None, ["housing"], True),
        (["ag-test-other"], ["police"], False),
        (None, None, False),
        ([], [], False),
    ],
)
def test_c3_recipient_by_id_or_type_and_null_lists_match_nothing(
    ids: list[str] | None, types: list[str] | None, matches: bool
) -> None:
    directive = make_directive(recipient_agency_ids=ids, recipient_agency_types=types)
    assert bool(supported(make_request(), directive)) is matches
    assert ("C3.other_recipient" in reasons(make_request(), directive)) is not matches


def test_directive_of_another_subject_never_counts() -> None:
    directive = make_directive(subject_id="subj-test-9999")
    assert supported(make_request(), directive) == set()
    assert reasons(make_request(), directive) == ["subject_mismatch"]


def test_all_directive_level_reasons_are_reported_sorted() -> None:
    directive = make_directive(
        purposes=["care_coordination"], recipient_agency_ids=None, expires_at=T0
    )
    assert reasons(make_request(), directive) == [
        "C1.expired",
        "C2.other_purpose",
        "C3.other_recipient",
    ]


# ---------------------------------------------------------------- C4 grantor and minors


def test_c4_minor_client_consent_does_not_count_but_is_flagged() -> None:
    request = make_request(facts={"subject_is_minor": True})
    result = assess_consent(request, [make_directive()], assessed_at=LATER)
    assert result.supported == {}
    assert result.findings[0].reasons == ["C4.minor_needs_guardian"]
    assert result.minor_self_consent is True


@pytest.mark.parametrize("jurisdiction", ["us_baseline", "uk_england"])
def test_c4_minor_guardian_consent_counts_and_no_self_consent(jurisdiction: str) -> None:
    request = make_request(jurisdiction=jurisdiction, facts={"subject_is_minor": True})
    result = assess_consent(request, [make_directive(granted_by="guardian")], assessed_at=LATER)
    assert set(result.supported) == {C.IDENTITY, C.CONTACT, C.HOUSING}
    assert result.minor_self_consent is False


def test_c4_minor_self_consent_needs_the_client_consent_to_meet_c1_to_c3() -> None:
    request = make_request(jurisdiction="uk_england", facts={"subject_is_minor": True})
    wrong_purpose = make_directive(purposes=["care_coordination"])
    revoked = make_directive("cd-test-b", revoked_at=T0 - timedelta(days=1))
    result = assess_consent(request, [wrong_purpose, revoked], assessed_at=LATER)
    assert result.minor_self_consent is False
    matching = assess_consent(request, [revoked, make_directive("cd-test-c")], assessed_at=LATER)
    assert matching.minor_self_consent is True


@pytest.mark.parametrize("minor", [False, None])
def test_c4_adult_or_unknown_age_client_consent_counts(minor: bool | None) -> None:
    request = make_request(facts={"subject_is_minor": minor})
    result = assess_consent(request, [make_directive()], assessed_at=LATER)
    assert set(result.supported) == {C.IDENTITY, C.CONTACT, C.HOUSING}
    assert result.minor_self_consent is False


# ---------------------------------------------------------------- C5 category


def test_c5_hard_blocks_are_never_supported_even_when_listed() -> None:
    request = make_request(requested_categories=["identity", "third_party_information"])
    directive = make_directive(categories_included=["identity", "third_party_information"])
    assert supported(request, directive) == {C.IDENTITY}
    assert reasons(request, directive) == ["C5.hard_block:third_party_information"]
    request = make_request(requested_categories=["sealed_court_record"])
    assert reasons(request, make_directive(categories_included=None)) == [
        "C5.hard_block:sealed_court_record"
    ]


def test_c5_exclusion_beats_inclusion() -> None:
    directive = make_directive(categories_excluded=["contact"])
    assert supported(make_request(), directive) == {C.IDENTITY, C.HOUSING}
    assert reasons(make_request(), directive) == ["C5.excluded:contact"]


def test_c5_no_category_list_covers_ordinary_but_never_special_classes() -> None:
    request = make_request(
        requested_categories=["identity", "mental_health", "hiv_status", "privileged_communication"]
    )
    directive = make_directive(categories_included=None)
    assert supported(request, directive) == {C.IDENTITY, C.MENTAL_HEALTH}
    assert reasons(request, directive) == [
        "C5.special_not_named:hiv_status",
        "C5.special_not_named:privileged_communication",
    ]


def test_c5_special_class_named_in_the_list_is_supported() -> None:
    request = make_request(requested_categories=["hiv_status", "financial"])
    directive = make_directive(categories_included=["hiv_status"])
    assert supported(request, directive) == {C.HIV_STATUS}
    assert reasons(request, directive) == ["C5.not_included:financial"]


# ---------------------------------------------------------------- C6a Part 2


def test_c6a_part2_category_needs_the_recipient_named() -> None:
    request = make_request(requested_categories=["identity", "substance_use_part2"])
    by_type = make_directive(
        recipient_agency_ids=None,
        recipient_agency_types=["housing"],
        categories_included=["identity", "substance_use_part2"],
    )
    assert supported(request, by_type) == {C.IDENTITY}
    assert reasons(request, by_type) == ["C6a.recipient_not_named:substance_use_part2"]
    by_id = make_directive(categories_included=["identity", "substance_use_part2"])
    assert supported(request, by_id) == {C.IDENTITY, C.SUBSTANCE_USE_PART2}


def test_c6a_single_tpo_consent_to_a_provider_class_for_treatment() -> None:
    request = make_request(
        purpose="treatment_continuity",
        requester=Requester(agency_id="ag-test-clinic", agency_type="health"),
        recipient=Recipient(agency_id="ag-test-hospital", agency_type="health"),
        requested_categories=["substance_use_part2"],
    )
    tpo = make_directive(
        recipient_agency_ids=None,
        recipient_agency_types=["health", "mental_health"],
        purposes=["treatment_continuity"],
        categories_included=["substance_use_part2"],
    )
    assert supported(request, tpo) == {C.SUBSTANCE_USE_PART2}
    # the same class consent for any other purpose still needs the recipient named
    coordination = request.model_copy(update={"purpose": "care_coordination"})
    tpo_cc = tpo.model_copy(
        update={"scope": tpo.scope.model_copy(update={"purposes": ["care_coordination"]})}
    )
    assert supported(coordination, tpo_cc) == set()


def test_c6a_treatment_exception_needs_a_provider_type_recipient() -> None:
    request = make_request(
        purpose="treatment_continuity",
        recipient=Recipient(agency_id="ag-test-probation", agency_type="probation"),
        requested_categories=["substance_use_part2"],
    )
    directive = make_directive(
        recipient_agency_ids=None,
        recipient_agency_types=["probation"],
        purposes=["treatment_continuity"],
        categories_included=["substance_use_part2"],
    )
    assert reasons(request, directive) == ["C6a.recipient_not_named:substance_use_part2"]


def test_c6a_gate_g1_puts_every_category_of_a_part2_program_under_the_rule() -> None:
    request = make_request(
        requester=Requester(agency_id="ag-test-recovery", agency_type="substance_use_treatment")
    )
    by_type = make_directive(recipient_agency_ids=None, recipient_agency_types=["housing"])
    assert supported(request, by_type) == set()
    assert reasons(request, by_type) == [
        "C6a.recipient_not_named:contact",
        "C6a.recipient_not_named:housing",
        "C6a.recipient_not_named:identity",
    ]
    assert supported(request, make_directive()) == {C.IDENTITY, C.CONTACT, C.HOUSING}


def test_c6a_does_not_apply_in_uk_england() -> None:
    request = make_request(
        jurisdiction="uk_england",
        requester=Requester(agency_id="ag-test-recovery", agency_type="substance_use_treatment"),
        requested_categories=["substance_use_part2"],
    )
    by_type = make_directive(
        recipient_agency_ids=None,
        recipient_agency_types=["housing"],
        categories_included=["substance_use_part2"],
    )
    assert supported(request, by_type) == {C.SUBSTANCE_USE_PART2}


# ---------------------------------------------------------------- C6b psychotherapy notes


def test_c6b_psychotherapy_notes_combined_with_anything_supports_nothing() -> None:
    request = make_request(requested_categories=["psychotherapy_notes", "mental_health"])
    combined = make_directive(categories_included=["psychotherapy_notes", "mental_health"])
    assert supported(request, combined) == set()
    assert reasons(request, combined) == ["C6b.psychotherapy_combined"]
    alone = make_directive("cd-test-b", categories_included=["psychotherapy_notes"])
    assert supported(request, alone) == {C.PSYCHOTHERAPY_NOTES}
    assert supported(request, combined, alone) == {C.PSYCHOTHERAPY_NOTES}


def test_c6b_does_not_apply_in_uk_england() -> None:
    request = make_request(
        jurisdiction="uk_england", requested_categories=["psychotherapy_notes", "mental_health"]
    )
    combined = make_directive(categories_included=["psychotherapy_notes", "mental_health"])
    assert supported(request, combined) == {C.PSYCHOTHERAPY_NOTES, C.MENTAL_HEALTH}


# ---------------------------------------------------------------- C6c FERPA


SCHOOL = Requester(agency_id="ag-test-school", agency_type="school")


@pytest.mark.parametrize("purpose", ["consent_based_sharing", "care_coordination"])
def test_c6c_school_consent_without_category_list_supports_nothing(purpose: str) -> None:
    request = make_request(requester=SCHOOL, purpose=purpose)
    directive = make_directive(categories_included=None, purposes=[purpose])
    assert supported(request, directive) == set()
    assert reasons(request, directive) == ["C6c.ferpa_unspecified"]


def test_c6c_school_consent_specifying_records_is_fine() -> None:
    assert supported(make_request(requester=SCHOOL), make_directive()) == {
        C.IDENTITY,
        C.CONTACT,
        C.HOUSING,
    }


def test_c6c_does_not_apply_in_uk_england() -> None:
    request = make_request(requester=SCHOOL, jurisdiction="uk_england")
    assert supported(request, make_directive(categories_included=None)) == {
        C.IDENTITY,
        C.CONTACT,
        C.HOUSING,
    }


# ---------------------------------------------------------------- output shape


def test_output_is_sorted_deterministic_and_holds_only_rule_codes() -> None:
    directives = [
        make_directive("cd-test-c", categories_included=["housing"]),
        make_directive("cd-test-a", categories_excluded=["identity"]),
        make_directive("cd-test-b", purposes=["subpoena"]),
        make_directive("cd-test-d", version=3, categories_included=None),
    ]
    request = make_request(requested_categories=["housing", "identity", "contact", "housing"])
    first = assess_consent(request, directives, assessed_at=LATER)
    shuffled = directives[:]
    random.Random(7).shuffle(shuffled)
    assert assess_consent(request, shuffled, assessed_at=LATER) == first
    assert [r.consent_id for r in first.directives_considered] == [
        "cd-test-a",
        "cd-test-b",
        "cd-test-c",
        "cd-test-d",
    ]
    assert list(first.supported) == [C.CONTACT, C.HOUSING, C.IDENTITY]
    assert [r.consent_id for r in first.supported[C.HOUSING]] == [
        "cd-test-a",
        "cd-test-c",
        "cd-test-d",
    ]
    assert first.supported[C.IDENTITY] == [ConsentRef(consent_id="cd-test-d", version=3)]
    for finding in first.findings:
        assert finding.reasons == sorted(finding.reasons)
        assert all(CODE.match(code) for code in finding.reasons)
        assert finding.supports == sorted(finding.supports)


# ---------------------------------------------------------------- withdrawal before delivery

NOW = T0 + timedelta(hours=2)


def test_withdrawn_none_while_the_consent_still_stands() -> None:
    request = make_request()
    assert withdrawn_categories(request, [C.IDENTITY, C.HOUSING], [make_directive()], now=NOW) == []


@pytest.mark.parametrize(
    ("revoked_at", "withdrawn"),
    [
        (T0 + timedelta(minutes=5), [C.HOUSING, C.IDENTITY]),
        (NOW, [C.HOUSING, C.IDENTITY]),
        (NOW + timedelta(seconds=1), []),
    ],
)
def test_withdrawn_after_a_revocation_up_to_now(
    revoked_at: datetime, withdrawn: list[DataCategory]
) -> None:
    current = [make_directive(version=2, revoked_at=revoked_at)]
    assert withdrawn_categories(make_request(), [C.IDENTITY, C.HOUSING], current, now=NOW) == (
        withdrawn
    )
    # assessment at request time is unaffected by a later revocation
    assert supported(make_request(), current[0]) == {C.IDENTITY, C.CONTACT, C.HOUSING}


def test_withdrawn_after_an_amendment_narrows_the_scope() -> None:
    amended = make_directive(version=2, categories_excluded=["housing"])
    assert withdrawn_categories(make_request(), [C.HOUSING, C.IDENTITY], [amended], now=NOW) == [
        C.HOUSING
    ]


def test_withdrawn_only_when_no_other_directive_still_supports() -> None:
    revoked = make_directive("cd-test-a", version=2, revoked_at=T0 + timedelta(minutes=1))
    other = make_directive("cd-test-b", categories_included=["contact", "identity"])
    result = withdrawn_categories(
        make_request(), [C.IDENTITY, C.HOUSING, C.CONTACT], [revoked, other], now=NOW
    )
    assert result == [C.HOUSING]


def test_withdrawn_keeps_judging_expiry_as_of_the_request() -> None:
    expires_before_delivery = make_directive(expires_at=T0 + timedelta(minutes=1))
    assert (
        withdrawn_categories(make_request(), [C.IDENTITY], [expires_before_delivery], now=NOW) == []
    )


def test_withdrawn_everything_when_no_directive_is_on_file() -> None:
    assert withdrawn_categories(make_request(), {C.HOUSING, C.CONTACT}, [], now=NOW) == [
        C.CONTACT,
        C.HOUSING,
    ]


# ---------------------------------------------------------------- consent receipt


def test_receipt_says_what_was_agreed_in_plain_words() -> None:
    _, (directive,) = example("ex-01-consent-housing-transfer")
    text = consent_receipt(directive)
    assert "cd-ex01-a" in text
    assert "ag-eastmere-homes-association" in text
    assert "Nobody else" in text
    assert "consent_based_sharing (sharing that rests only on this consent)" in text
    assert "housing (tenancy, housing need, homelessness and arrears history)" in text
    assert "address, phone and email" in text
    assert "mental_health" not in text.split("You excluded")[0]
    assert "Valid from 10 January 2025, 09:00 UTC until 10 January 2026, 09:00 UTC" in text
    assert "withdraw this consent at any time" in text


def test_receipt_for_a_broad_revoked_consent_with_exclusions() -> None:
    directive = make_directive(
        categories_included=None,
        categories_excluded=["mental_health"],
        recipient_agency_ids=None,
        recipient_agency_types=["health"],
        expires_at=None,
        revoked_at=datetime(2025, 3, 1, 9, 30, tzinfo=UTC),
    )
    text = consent_receipt(directive)
    assert "any health agency" in text
    assert "hiv_status" in text.split("What may be shared")[1].split("\n")[0]
    assert "You excluded: mental_health (psychiatric diagnoses" in text
    assert "third_party_information" in text
    assert "with no end date" in text
    assert "You withdrew this consent on 01 March 2025, 09:30 UTC" in text


def test_receipt_warns_about_nobody_named_and_combined_psychotherapy_notes() -> None:
    directive = make_directive(
        recipient_agency_ids=None, categories_included=["psychotherapy_notes", "mental_health"]
    )
    text = consent_receipt(directive)
    assert "lets nobody receive anything" in text
    assert "psychotherapy notes need a consent of their own" in text
