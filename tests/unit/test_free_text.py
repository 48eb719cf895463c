"""S4 free-text pass (Presidio): pattern PII, the per-message deny-list, scope, markers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sharinghub.contracts import (
    CaseRecord,
    DataCategory,
    PolicyDecision,
    Recipient,
    RecordField,
    Requester,
    SharingRequest,
)
from sharinghub.redaction.free_text import (
    FREE_TEXT_MIN_CHARS,
    FreeTextScrubber,
    build_deny_list,
    default_scrubber,
    is_free_text,
)
from sharinghub.redaction.pseudonyms import new_pseudonym
from sharinghub.redaction.rules import MARKER, delivered_fields, redact

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
C = DataCategory


@pytest.fixture(scope="module")
def scrubber() -> FreeTextScrubber:
    return FreeTextScrubber()


def found(scrubber: FreeTextScrubber, text: str) -> list[tuple[str, str]]:
    return [(f.entity, text[f.start : f.end]) for f in scrubber.findings(text)]


@pytest.mark.parametrize(
    "number",
    [
        "07700 900188",
        "07700900188",
        "07700-900-188",
        "+44 7700 900188",
        "+44 (0)7700 900188",
        "0044 7700900188",
        "(01632) 960123",
        "020 7946 0321",
        "(201) 555-0123",
        "201-555-0123",
        "201.555.0123",
        "+1 201 555 0123",
        "1-201-555-0123",
    ],
)
def test_uk_and_us_phone_numbers_are_found_whole(scrubber: FreeTextScrubber, number: str) -> None:
    text = f"Her neighbour rang from {number} twice last week."
    assert ("PHONE_NUMBER", number) in found(scrubber, text)


@pytest.mark.parametrize(
    ("text", "entity", "expected"),
    [
        ("Wrote to Jane.Doe+x@example.org today.", "EMAIL_ADDRESS", "Jane.Doe+x@example.org"),
        ("Her SSN is 219-09-9999 on file.", "US_SSN", "219-09-9999"),
        ("SSN: 219099999 was given.", "US_SSN", "219099999"),
        ("NHS number 999 000 0018 was checked.", "UK_NHS", "999 000 0018"),
        ("NHS 9990000018 confirmed.", "UK_NHS", "9990000018"),
        ("NI number AB 12 34 56 C noted.", "UK_NINO", "AB 12 34 56 C"),
        ("ni ab123456c noted.", "UK_NINO", "ab123456c"),
        ("She was born 2 July 1988 in Leeds.", "DATE_OF_BIRTH", "2 July 1988"),
        ("Client (DOB: 02/07/1988) attended.", "DATE_OF_BIRTH", "02/07/1988"),
        ("Date of birth July 2nd, 1988.", "DATE_OF_BIRTH", "July 2nd, 1988"),
    ],
)
def test_pattern_pii_is_found(
    scrubber: FreeTextScrubber, text: str, entity: str, expected: str
) -> None:
    assert (entity, expected) in found(scrubber, text)


def test_nhs_number_needs_a_valid_checksum(scrubber: FreeTextScrubber) -> None:
    # 999 000 0018 is valid; changing the check digit breaks mod 11.
    assert not [f for f in found(scrubber, "NHS 999 000 0019 checked.") if f[0] == "UK_NHS"]


def test_clean_text_has_no_findings(scrubber: FreeTextScrubber) -> None:
    text = (
        "Visit on 3 March 2025 at 14:30 went well. Rent arrears of £1,250 were discussed; "
        "case ref CR-2025-0042, room 12, review due 14/10/2025. She is 36 and works part time."
    )
    assert found(scrubber, text) == []
    assert scrubber.scrub(text) == (text, 0)


def test_scrub_replaces_with_the_marker_and_keeps_cues(scrubber: FreeTextScrubber) -> None:
    text = "She was born 2 July 1988; call 07700 900188 or mail a.b@example.org."
    out, n = scrubber.scrub(text)
    assert out == f"She was born {MARKER}; call {MARKER} or mail {MARKER}."
    assert n == 3


def test_marker_is_never_rescrubbed(scrubber: FreeTextScrubber) -> None:
    deny = build_deny_list(
        [RecordField(name="helper_name", category=C.IDENTITY, value="Redacted Person")]
    )
    text = f"{MARKER} rang {MARKER} from 07700 900188."
    out, n = scrubber.scrub(text, deny)
    assert out == f"{MARKER} rang {MARKER} from {MARKER}."
    assert n == 1
    assert scrubber.scrub(out, deny) == (out, 0)  # idempotent


def test_deny_list_catches_variants_s3_misses(scrubber: FreeTextScrubber) -> None:
    withheld = [
        RecordField(
            name="third_party_1_name", category=C.THIRD_PARTY_INFORMATION, value="José Núñez"
        ),
        RecordField(name="referrer_name", category=C.THIRD_PARTY_INFORMATION, value="Jun Li"),
        RecordField(
            name="third_party_1_phone", category=C.THIRD_PARTY_INFORMATION, value="07700 900123"
        ),
        RecordField(name="date_of_birth", category=C.IDENTITY, value="1988-07-02"),
    ]
    deny = build_deny_list(withheld)
    text = (
        "Jose Nunez and NUNEZ's brother met Mr Li, who rang from +44 7700 900123; "
        "her birthday, 2nd of July 1988, was mentioned (also 07/02/88)."
    )
    out, _ = scrubber.scrub(text, deny)
    for gone in ("Jose", "Nunez", "NUNEZ", "Li,", "7700", "July 1988", "07/02/88"):
        assert gone not in out
    assert "brother met Mr" in out and "was mentioned" in out


def test_deny_list_spares_delivered_name_words_and_english_two_letter_words(
    scrubber: FreeTextScrubber,
) -> None:
    withheld = [
        RecordField(
            name="household_member_1_name", category=C.HOUSEHOLD_FAMILY, value="Mateo Quintero"
        )
    ]
    delivered = [RecordField(name="full_name", category=C.IDENTITY, value="Dolores Quintero")]
    deny = build_deny_list(withheld, delivered)
    out, n = scrubber.scrub("Dolores Quintero says Mateo is ill.", deny)
    assert out == f"Dolores Quintero says {MARKER} is ill."
    assert n == 1
    short = build_deny_list([RecordField(name="contact_name", category=C.CONTACT, value="Bo An")])
    out, _ = scrubber.scrub("An appointment was made; Bo came in an hour late.", short)
    assert out == f"An appointment was made; {MARKER} came in an hour late."


def _request(fields: list[tuple[str, str, str]]) -> SharingRequest:
    return SharingRequest(
        request_id="req-free-text-1",
        jurisdiction="uk_england",
        requester=Requester(agency_id="ag-test-social-care", agency_type="social_services"),
        recipient=Recipient(agency_id="ag-test-homes", agency_type="housing"),
        purpose="consent_based_sharing",
        requested_categories=sorted({c for _, c, _ in fields}),
        record=CaseRecord(
            subject_id="subj-test-1",
            fields=[RecordField(name=n, category=c, value=v) for n, c, v in fields],
        ),
        requested_at=NOW,
    )


def _decision(allowed: list[str]) -> PolicyDecision:
    return PolicyDecision(
        outcome="delivered",
        reason_code="test",
        explanation="test",
        allowed_categories=allowed,
        pack_id="uk_england",
        pack_version="test",
        decided_at=NOW,
    )


def test_scrub_pass_through_redact(scrubber: FreeTextScrubber) -> None:
    note = (
        "Client rang from 07700 900147 about the mould. Her neighbour Gordon Feld rang from "
        "+44 7700 900188; his sister's number is 020 7946 0321."
    )
    request = _request(
        [
            ("full_name", "identity", "Dolores Quintero"),
            ("phone", "contact", "07700 900147"),
            ("third_party_1_name", "third_party_information", "Gordon Feld"),
            ("third_party_1_phone", "third_party_information", "07700 900188"),
            ("case_note", "case_narrative", note),
        ]
    )
    decision = _decision(["identity", "contact", "case_narrative"])
    withheld = [f for f, _ in delivered_fields(request, decision)[1]]
    result = redact(
        request,
        decision,
        pseudonym=new_pseudonym(),
        now=NOW,
        free_text=scrubber.scrub_pass(request, withheld),
    )
    values = {f.name: f.value for f in result.payload.fields}
    # The client's own (delivered) phone stays; S3 took the name; S4 the +44 form and the
    # sister's number, which no field holds.
    assert values["phone"] == "07700 900147"
    assert values["case_note"] == (
        f"Client rang from 07700 900147 about the mould. Her neighbour {MARKER} rang from "
        f"{MARKER}; his sister's number is {MARKER}."
    )
    entry = next(m for m in result.manifest if m.field_name == "case_note")
    assert entry.rule == "S3.full_value+S4.free_text"
    assert entry.replacements == 3


def test_only_free_text_is_analysed(scrubber: FreeTextScrubber) -> None:
    request = _request([("phone", "contact", "07700 900147")])
    free_text = scrubber.scrub_pass(request, [])
    assert free_text("07700 900188", C.CONTACT) == ("07700 900188", 0)
    assert free_text("07700 900188", C.CASE_NARRATIVE) == (MARKER, 1)
    long_value = "Call 07700 900188. " + "x" * FREE_TEXT_MIN_CHARS
    assert free_text(long_value, C.HOUSING)[1] == 1
    assert is_free_text("a" * (FREE_TEXT_MIN_CHARS + 1), C.HOUSING)
    assert not is_free_text("a" * FREE_TEXT_MIN_CHARS, C.HOUSING)


def test_default_scrubber_is_one_per_process() -> None:
    assert default_scrubber() is default_scrubber()
