"""Redaction rules (table S): the examples (B2, B7, B10, B12), S1–S3 one by one, notices."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sharinghub.contracts import (
    CaseRecord,
    DataCategory,
    Facts,
    Notice,
    Obligation,
    PolicyDecision,
    Recipient,
    RecordField,
    RedactionResult,
    Requester,
    SharingRequest,
)
from sharinghub.contracts.vocabulary import SPECIAL_CLASSES
from sharinghub.redaction import rules
from sharinghub.redaction.notices import FERPA_CITATION, PART2_CITATION, notices_for
from sharinghub.redaction.pseudonyms import is_pseudonym, new_pseudonym
from sharinghub.redaction.rules import MARKER, build_plan, redact, scrub

EXAMPLES = Path(__file__).resolve().parents[2] / ".." / "shared" / "domain" / "examples.jsonl"
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
C = DataCategory


def _load_examples() -> list[dict[str, Any]]:
    with EXAMPLES.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


ALL_EXAMPLES = _load_examples()
DELIVERED = [e for e in ALL_EXAMPLES if e["expected"]["outcome"] == "delivered"]


def request_from_example(example: dict[str, Any]) -> SharingRequest:
    body = {k: v for k, v in example.items() if k not in {"id", "title", "consents", "expected"}}
    return SharingRequest.model_validate({**body, "request_id": example["id"]})


def decision(
    allowed: list[str] | list[DataCategory],
    obligations: list[str] | list[Obligation] = (),  # type: ignore[assignment]
    *,
    outcome: str = "delivered",
    pack_id: str = "us_baseline",
) -> PolicyDecision:
    return PolicyDecision(
        outcome=outcome,
        reason_code="test",
        explanation="test",
        allowed_categories=list(allowed),
        obligations=list(obligations),
        pack_id=pack_id,
        pack_version="test",
        decided_at=NOW,
    )


def decision_from_example(example: dict[str, Any]) -> PolicyDecision:
    expected = example["expected"]
    return decision(
        expected["allowed_categories"], expected["obligations"], pack_id=example["jurisdiction"]
    )


def redact_example(example: dict[str, Any]) -> RedactionResult:
    return redact(
        request_from_example(example),
        decision_from_example(example),
        pseudonym=new_pseudonym(),
        now=NOW,
    )


def make_request(
    fields: list[tuple[str, str, str]],
    requested: list[str],
    *,
    purpose: str = "consent_based_sharing",
    subject_id: str = "subj-test-0001",
    facts: dict[str, Any] | None = None,
) -> SharingRequest:
    """A fictional request; ``fields`` are (name, category, value)."""
    return SharingRequest(
        request_id="req-test-0001",
        jurisdiction="us_baseline",
        requester=Requester(agency_id="ag-test-social-care", agency_type="social_services"),
        recipient=Recipient(agency_id="ag-test-homes", agency_type="housing"),
        purpose=purpose,
        stated_reason="Ms Testperson asked us to pass this on.",
        facts=Facts(**(facts or {})),
        requested_categories=requested,
        record=CaseRecord(
            subject_id=subject_id,
            fields=[RecordField(name=n, category=c, value=v) for n, c, v in fields],
        ),
        requested_at=NOW,
    )


def delivered_values(result: RedactionResult) -> dict[str, str]:
    return {f.name: f.value for f in result.payload.fields}


def scrub_one(text: str, withheld: list[tuple[str, str]], delivered_names: list[str] = ()) -> str:  # type: ignore[assignment]
    """S3 on one text; ``withheld`` holds (field name, value)."""
    plan = build_plan(
        [v for _, v in withheld],
        withheld_names=[v for n, v in withheld if n.endswith("_name")],
        delivered_names=list(delivered_names),
    )
    return scrub(text, plan)[0]


# ---------------------------------------------------------------- examples (B2, B7, B10, B12)


@pytest.mark.parametrize("example", DELIVERED, ids=lambda e: e["id"])
def test_example_delivers_exactly_the_allowed_fields(example: dict[str, Any]) -> None:
    result = redact_example(example)
    allowed = set(example["expected"]["allowed_categories"])
    expected_names = [f["name"] for f in example["record"]["fields"] if f["category"] in allowed]
    assert [f.name for f in result.payload.fields] == expected_names
    assert not {f.name for f in result.payload.fields} & set(
        example["expected"]["must_exclude_fields"]
    )
    assert all(f.category in allowed for f in result.payload.fields)


@pytest.mark.parametrize("example", DELIVERED, ids=lambda e: e["id"])
def test_example_payload_contains_no_forbidden_string(example: dict[str, Any]) -> None:
    """B2 over the whole serialised payload, and B12: stated_reason is never delivered."""
    payload = redact_example(example).payload
    serialised = payload.model_dump_json()
    for forbidden in example["expected"]["must_not_contain"]:
        assert forbidden.casefold() not in serialised.casefold()
    assert example["stated_reason"] not in serialised
    assert "stated_reason" not in serialised
    dumped = payload.model_dump()
    for key in ("stated_reason", "facts", "consents", "record", "requested_categories"):
        assert key not in dumped


@pytest.mark.parametrize("example", DELIVERED, ids=lambda e: e["id"])
def test_example_never_hints_at_an_undelivered_special_class(example: dict[str, Any]) -> None:
    """B10: no id or name of a special category that was not delivered, anywhere."""
    result = redact_example(example)
    delivered = {f.category for f in result.payload.fields}
    text = result.payload.model_dump_json().casefold()
    for category in SPECIAL_CLASSES - delivered:
        assert category.value not in text
        assert category.value.replace("_", " ") not in text
    # The manifest (audit only) still records every withheld field with its rule.
    removed = {m.field_name for m in result.manifest if m.action == "removed"}
    assert set(example["expected"]["must_exclude_fields"]) <= removed


@pytest.mark.parametrize("example", DELIVERED, ids=lambda e: e["id"])
def test_example_notices_follow_obligations(example: dict[str, Any]) -> None:
    result = redact_example(example)
    obligations = set(example["expected"]["obligations"])
    wanted = obligations & {"redisclosure_notice_part2", "redisclosure_notice_ferpa"}
    assert {n.obligation.value for n in result.payload.notices} == wanted


def test_ex08_colleague_consultation_is_de_identified() -> None:
    """B7 on ex-08: no identifying categories, a pseudonym, no withheld names or contacts."""
    example = next(e for e in DELIVERED if e["id"].startswith("ex-08"))
    result = redact_example(example)
    payload = result.payload
    forbidden = {C.IDENTITY, C.CONTACT, C.DEMOGRAPHICS, C.HOUSEHOLD_FAMILY}
    assert not {f.category for f in payload.fields} & (forbidden | {C.THIRD_PARTY_INFORMATION})
    assert payload.subject_ref_kind == "pseudonym"
    assert is_pseudonym(payload.subject_ref)
    assert result.pseudonym == payload.subject_ref
    assert example["record"]["subject_id"] not in payload.model_dump_json()
    note = delivered_values(result)["case_note"]
    assert note == (
        "[redacted] stopped coming to the Thursday group after [redacted] joined. She rang "
        "from [redacted] to say she feels unsafe leaving [redacted]."
    )
    entry = next(m for m in result.manifest if m.field_name == "case_note")
    assert (entry.action, entry.replacements) == ("scrubbed", 4)
    assert "S3.name_word" in entry.rule
    assert any(m.action == "pseudonymised" and m.rule == "S2" for m in result.manifest)


def test_ex04_protects_the_neighbour_but_keeps_the_household() -> None:
    example = next(e for e in DELIVERED if e["id"].startswith("ex-04"))
    note = delivered_values(redact_example(example))["case_note"]
    assert note == (
        "A neighbour, [redacted] ([redacted]), rang the office last week about shouting at "
        "night. Ellie-Mae was quiet in class and flinched when Mr Brackley collected her."
    )


# ---------------------------------------------------------------- S1 and guards


def test_only_delivered_decisions_are_redacted() -> None:
    req = make_request([("full_name", "identity", "Hal Testperson")], ["identity"])
    for outcome in ("denied", "pending_review", "rejected_invalid"):
        with pytest.raises(ValueError, match="delivered") as info:
            redact(req, decision([], outcome=outcome), pseudonym=new_pseudonym(), now=NOW)
        assert "Testperson" not in str(info.value)


def test_a_needed_pseudonym_must_be_one() -> None:
    req = make_request([("case_note", "case_narrative", "Note")], ["case_narrative"])
    for bad in ("", "subj-test-0001", "psn-short"):
        with pytest.raises(ValueError, match="pseudonym"):
            redact(req, decision(["case_narrative"]), pseudonym=bad, now=NOW)


def test_defence_in_depth_never_widens_a_faulty_decision() -> None:
    fields = [
        ("full_name", "identity", "Hal Testperson"),
        ("neighbour_name", "third_party_information", "Ivo Placeholder"),
        ("income", "financial", "Benefit 120 a week"),
        ("case_note", "case_narrative", "Seen at home."),
    ]
    # financial allowed but never requested; a hard block allowed without a judge's order.
    req = make_request(fields, ["identity", "case_narrative", "third_party_information"])
    result = redact(
        req,
        decision(["identity", "financial", "third_party_information", "case_narrative"]),
        pseudonym=new_pseudonym(),
        now=NOW,
    )
    assert [f.name for f in result.payload.fields] == ["full_name", "case_note"]
    rules = {m.field_name: m.rule for m in result.manifest}
    assert rules["income"] == "S1.not_requested"
    assert rules["neighbour_name"] == "S1.hard_block"


def test_judge_order_can_release_a_hard_block() -> None:
    fields = [("neighbour_name", "third_party_information", "Ivo Placeholder")]
    order = {"issued_by_judge": True, "covers_categories": ["third_party_information"]}
    req = make_request(
        fields, ["third_party_information"], purpose="court_order", facts={"court_order": order}
    )
    result = redact(req, decision(["third_party_information"]), pseudonym=new_pseudonym(), now=NOW)
    assert delivered_values(result) == {"neighbour_name": "Ivo Placeholder"}


def test_colleague_consultation_never_carries_identity_even_if_allowed() -> None:
    fields = [("full_name", "identity", "Hal Testperson"), ("risk", "risk_assessment", "Low")]
    req = make_request(fields, ["identity", "risk_assessment"], purpose="colleague_consultation")
    result = redact(
        req, decision(["identity", "risk_assessment"]), pseudonym=new_pseudonym(), now=NOW
    )
    assert [f.name for f in result.payload.fields] == ["risk"]
    assert result.payload.subject_ref_kind == "pseudonym"
    assert {m.field_name: m.rule for m in result.manifest}["full_name"] == "S2.deidentified"


# ---------------------------------------------------------------- S2


def test_subject_id_is_delivered_only_with_identity() -> None:
    fields = [("full_name", "identity", "Hal Testperson"), ("note", "case_narrative", "Fine")]
    req = make_request(fields, ["identity", "case_narrative"])
    with_identity = redact(req, decision(["identity", "case_narrative"]), pseudonym="", now=NOW)
    assert with_identity.payload.subject_ref == "subj-test-0001"
    assert with_identity.payload.subject_ref_kind == "subject_id"
    assert with_identity.pseudonym is None
    assert not any(m.action == "pseudonymised" for m in with_identity.manifest)

    psn = new_pseudonym()
    without = redact(req, decision(["case_narrative"]), pseudonym=psn, now=NOW)
    assert (without.payload.subject_ref, without.payload.subject_ref_kind) == (psn, "pseudonym")
    assert without.pseudonym == psn
    assert without.redacted_at == NOW


def test_pseudonymised_subject_id_is_scrubbed_from_free_text() -> None:
    fields = [("note", "case_narrative", "File SUBJ test 0001 reviewed.")]
    req = make_request(fields, ["case_narrative"])
    result = redact(req, decision(["case_narrative"]), pseudonym=new_pseudonym(), now=NOW)
    assert delivered_values(result)["note"] == "File [redacted] reviewed."


def test_pseudonyms_are_fresh_and_well_formed() -> None:
    issued = {new_pseudonym() for _ in range(2000)}
    assert len(issued) == 2000
    assert all(re.fullmatch(r"psn-[A-Za-z0-9_-]{20}", p) for p in issued)
    assert not is_pseudonym("subj-em-2231")


# ---------------------------------------------------------------- S3: full values


@pytest.mark.parametrize(
    "written",
    ["07700 900188", "07700900188", "07700-900-188", "(07700) 900 188", "07700.900.188"],
)
def test_phone_is_caught_in_every_spacing(written: str) -> None:
    text = f"Call him on {written} after six."
    out = scrub_one(text, [("third_party_1_phone", "07700 900188")])
    assert re.sub(r"\D", "", out) == ""  # no digit of the number survives
    assert "[redacted]" in out
    assert out.startswith("Call him on ") and out.endswith(" after six.")


@pytest.mark.parametrize("written", ["1988-07-02", "1988/07/02", "1988.07.02", "1988 07 02"])
def test_date_is_caught_with_other_separators(written: str) -> None:
    out = scrub_one(f"Born {written}.", [("date_of_birth", "1988-07-02")])
    assert out == "Born [redacted]."


@pytest.mark.parametrize("written", ["GORDON FELD", "gordon  feld", "Gordon\nFeld", "Gordon-Feld"])
def test_value_is_caught_in_other_case_and_spacing(written: str) -> None:
    out = scrub_one(f"Neighbour {written} called.", [("neighbour", "Gordon Feld")])
    assert out == "Neighbour [redacted] called."


def test_literal_value_with_its_own_punctuation_is_caught() -> None:
    out = scrub_one("Owes $3,100 (medical); pays weekly.", [("debt", "$3,100 (medical)")])
    assert out == "Owes $[redacted]); pays weekly."


def test_overlapping_values_are_covered_longest_first() -> None:
    withheld = [("a", "Saltmarsh Road"), ("b", "31 Saltmarsh Road Eastmere")]
    out = scrub_one("Lives at 31 Saltmarsh Road Eastmere now.", withheld)
    assert out == "Lives at [redacted] now."


def test_short_values_only_as_whole_tokens() -> None:
    withheld = [("sex", "M"), ("age", "9"), ("relationship", "son")]
    out = scrub_one("Mateo, 19, is M; aged 9 — his son Samson on 2019-09-09.", withheld)
    assert out == "Mateo, 19, is [redacted]; aged [redacted] — his [redacted] Samson on 2019-09-09."


def test_existing_markers_and_the_marker_word_are_left_alone() -> None:
    withheld = [("other_name", "Redacted Acted")]
    out = scrub_one("Earlier [redacted] text; Acted oddly.", withheld)
    assert out == "Earlier [redacted] text; [redacted] oddly."


def test_full_unicode_case_folding_is_used() -> None:
    out = scrub_one("Lives on Hauptstraße 5.", [("street", "HAUPTSTRASSE 5")])
    assert out == "Lives on [redacted]."


def test_fails_closed_when_rescanning_does_not_settle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rules, "_MAX_PASSES", 1)
    plan = build_plan(["Feldway", "9"], [], delivered_names=[])
    out, counts = scrub("Seen at 9Feldway.", plan)  # needs a second pass for the "9"
    assert out == MARKER
    assert counts["fail_closed"] == 1


def test_text_without_withheld_values_is_untouched() -> None:
    text = "Two-bedroom flat; repairs requested twice (05/2024)."
    out, counts = scrub(text, build_plan(["Gordon Feld", "07700 900188"], ["Gordon Feld"], []))
    assert out == text
    assert sum(counts.values()) == 0


# ---------------------------------------------------------------- S3: name words


def test_name_words_are_scrubbed_as_whole_words_incl_possessive() -> None:
    withheld = [("third_party_1_name", "Connor Whitcombe")]
    out = scrub_one("Connor's texts; WHITCOMBE again; Whitcomber is not him; Jo said.", withheld)
    assert out == "[redacted]'s texts; [redacted] again; Whitcomber is not him; Jo said."


def test_name_words_shorter_than_three_letters_are_kept() -> None:
    out = scrub_one("Al and Bo went to Ann.", [("carer_name", "Al Bo Ann")])
    assert out == "Al and Bo went to [redacted]."


def test_words_of_delivered_names_are_spared() -> None:
    withheld = [("third_party_1_name", "Gordon Quintero")]
    text = "Gordon visits Mateo Quintero; the Quintero family."
    out = scrub_one(text, withheld, delivered_names=["Mateo Quintero"])
    assert out == "[redacted] visits Mateo Quintero; the Quintero family."


def test_hyphenated_name_parts_are_scrubbed_unless_delivered() -> None:
    withheld = [("sibling_name", "Ellie-Mae Corran")]
    out = scrub_one("Ellie-Mae, Ellie and Mae Corran.", withheld)
    assert out == "[redacted], [redacted] and [redacted] [redacted]."
    spared = scrub_one("Ellie and Mae.", withheld, delivered_names=["Mae Corran"])
    assert spared == "[redacted] and Mae."


def test_a_hyphenated_word_is_replaced_whole_even_with_a_short_part() -> None:
    out = scrub_one("Jo-Ann called; Jo did not.", [("carer_name", "Jo-Ann Kay")])
    assert out == "[redacted] called; Jo did not."


def test_a_digit_does_not_shield_a_name_word() -> None:
    out = scrub_one("Room 12Smith; 12 Smithson.", [("third_party_1_name", "Ann Smith")])
    assert out == "Room 12[redacted]; 12 Smithson."


def test_name_rule_applies_only_to_name_fields() -> None:
    out = scrub_one("Gordon waved.", [("third_party_1_phone", "Gordon Feld")])
    assert out == "Gordon waved."


def test_rescans_until_no_new_whole_word_appears() -> None:
    # Scrubbing "Feldway" leaves "Smith" preceded by "]" — a new whole word; so is "9".
    withheld = [("street", "Feldway"), ("third_party_1_name", "Smith"), ("age", "9")]
    out = scrub_one("At FeldwaySmith and 9Feldway.", withheld)
    assert out == "At [redacted][redacted] and [redacted][redacted]."


# ---------------------------------------------------------------- manifest, hook, notices


def test_manifest_has_one_entry_per_field_and_never_a_value() -> None:
    fields = [
        ("full_name", "identity", "Hal Testperson"),
        ("neighbour_name", "third_party_information", "Ivo Placeholder"),
        ("case_note", "case_narrative", "Ivo Placeholder shouted at Hal Testperson."),
        ("diagnosis", "mental_health", "Specific phobia"),
    ]
    req = make_request(fields, ["identity", "case_narrative", "mental_health"])
    result = redact(req, decision(["identity", "case_narrative"]), pseudonym="", now=NOW)
    by_name = {m.field_name: m for m in result.manifest}
    assert set(by_name) == {name for name, _, _ in fields}
    assert (by_name["full_name"].action, by_name["full_name"].rule) == ("kept", "S1.allowed")
    note = by_name["case_note"]
    assert (note.action, note.replacements) == ("scrubbed", 1)
    assert note.rule == "S3.full_value"
    assert (by_name["diagnosis"].action, by_name["diagnosis"].rule) == ("removed", "S1.not_allowed")
    assert by_name["neighbour_name"].rule == "S1.hard_block"
    manifest_json = "".join(m.model_dump_json() for m in result.manifest)
    for _, _, value in fields:
        assert value not in manifest_json


def test_free_text_pass_runs_after_s3_and_is_recorded() -> None:
    seen: list[str] = []

    def detector(value: str, category: DataCategory) -> tuple[str, int]:
        seen.append(value)
        return value.replace("Ilford", MARKER), value.count("Ilford")

    fields = [
        ("neighbour_name", "third_party_information", "Ivo Placeholder"),
        ("case_note", "case_narrative", "Ivo Placeholder moved to Ilford."),
    ]
    req = make_request(fields, ["case_narrative"])
    result = redact(
        req, decision(["case_narrative"]), pseudonym=new_pseudonym(), now=NOW, free_text=detector
    )
    assert seen == ["[redacted] moved to Ilford."]
    assert delivered_values(result)["case_note"] == "[redacted] moved to [redacted]."
    entry = next(m for m in result.manifest if m.field_name == "case_note")
    assert entry.rule == "S3.full_value+S4.free_text"
    assert entry.replacements == 2


def test_notices_only_for_redisclosure_obligations() -> None:
    every = list(Obligation)
    notices = notices_for(every + every)
    assert [(n.obligation, n.citation) for n in notices] == [
        (Obligation.REDISCLOSURE_NOTICE_PART2, PART2_CITATION),
        (Obligation.REDISCLOSURE_NOTICE_FERPA, FERPA_CITATION),
    ]
    assert all(isinstance(n, Notice) and len(n.text) > 100 for n in notices)
    assert "42 CFR part 2" in notices[0].text
    assert "education records" in notices[1].text
    assert notices_for([Obligation.NOTIFY_CLIENT, Obligation.RETROSPECTIVE_REVIEW]) == []


def test_ferpa_notice_reaches_the_payload() -> None:
    req = make_request([("attendance", "education", "Attendance 91%")], ["education"])
    result = redact(
        req,
        decision(["education"], ["redisclosure_notice_ferpa", "minimum_necessary_applied"]),
        pseudonym=new_pseudonym(),
        now=NOW,
    )
    assert [n.citation for n in result.payload.notices] == [FERPA_CITATION]
