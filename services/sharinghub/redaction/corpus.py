"""Labelled fictional case records for measuring redaction leaks (tests and benchmarks).

`generate` builds records with Faker under a fixed seed — fictional people only, UK
numbers from Ofcom's drama ranges, US numbers in 555-01xx, NHS numbers in the 999
test range. Each record has a ~150-word ``case_note`` that embeds the client, household,
third parties and withheld identifiers in varied forms (other case, separators,
possessives, international phone formats, dates in words, unseparated identifiers, ...)
plus decoys that are not personal data (event dates, times, amounts, references).
Every embedded mention is labelled with its span and source field, so a benchmark can
score a detector and `leaks` can check a redaction result.

Three request shapes rotate, so different fields are withheld: consent-based sharing
with identity (third parties and health withheld), de-identified colleague consultation
(everything identifying withheld) and treatment continuity (contact, family and third
parties withheld).
"""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from faker import Faker

from sharinghub.contracts import (
    CaseRecord,
    PolicyDecision,
    Recipient,
    RecordField,
    RedactionResult,
    Requester,
    SharingRequest,
)
from sharinghub.redaction.rules import MARKER, delivered_fields

__all__ = [
    "PATTERN_KINDS",
    "LabelledCase",
    "Leak",
    "Mention",
    "generate",
    "leaks",
]

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
PATTERN_KINDS = frozenset({"phone", "email", "dob", "ssn", "nhs", "nino"})
"""Mention kinds a pattern recognizer should find (a ``dob`` only when ``cued``)."""

_SHORT_SURNAMES = ("Li", "Wu", "Ng")
_ACCENTED_LOCALES = ("es_ES", "fr_FR", "de_DE", "pt_PT")
_US_AREAS = ("201", "212", "312", "415", "503", "617", "702", "808", "919")
_NINO_FIRST = "ABCEGHJKLMNOPRSTWXYZ"
_NINO_SECOND = "ABCEGHJKLMNPRSTWXYZ"
_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]


@dataclass(frozen=True, slots=True)
class Mention:
    """One labelled piece of personal data inside the narrative.

    ``field`` names the record field it comes from (``None``: not held in any field,
    e.g. a sister's phone number); ``kind`` is name, phone, email, dob, ssn, nhs, nino,
    address or text; ``cued`` says a date of birth is introduced by "born"/"DOB".
    """

    kind: str
    field: str | None
    start: int
    end: int
    text: str
    cued: bool = False


@dataclass(frozen=True, slots=True)
class LabelledCase:
    """A request, the policy decision to redact it under, and the narrative's labels."""

    request: SharingRequest
    decision: PolicyDecision
    mentions: tuple[Mention, ...]

    @property
    def narrative(self) -> str:
        """The raw ``case_note`` value the mentions index into."""
        return next(f.value for f in self.request.record.fields if f.name == "case_note")

    def withheld_fields(self) -> list[RecordField]:
        """Fields S1 withholds for this decision."""
        return [f for f, _ in delivered_fields(self.request, self.decision)[1]]


@dataclass(frozen=True, slots=True)
class Leak:
    """A withheld value (or unfielded PII) still present in the delivered payload."""

    field: str | None
    kind: str
    form: str  # the mention as written (fictional data), or the field value


# ------------------------------------------------------------------ fictional values


def _nhs(rng: random.Random) -> str:
    while True:  # 999 range: never issued to a patient; mod-11 check digit
        digits = [9, 9, 9, *(rng.randrange(10) for _ in range(6))]
        check = 11 - sum(d * w for d, w in zip(digits, range(10, 1, -1), strict=True)) % 11
        if check == 11:
            check = 0
        if check != 10:
            s = "".join(map(str, [*digits, check]))
            return f"{s[:3]} {s[3:6]} {s[6:]}"


def _nino(rng: random.Random) -> str:
    while True:
        prefix = rng.choice(_NINO_FIRST) + rng.choice(_NINO_SECOND)
        if prefix not in {"BG", "GB", "NK", "KN", "NT", "TN", "ZZ"}:
            break
    pairs = " ".join(f"{rng.randrange(100):02d}" for _ in range(3))
    return f"{prefix} {pairs} {rng.choice('ABCD')}"


def _ssn(rng: random.Random) -> str:
    area = rng.choice([n for n in range(1, 900) if n != 666])
    return f"{area:03d}-{rng.randrange(1, 100):02d}-{rng.randrange(1, 10000):04d}"


def _uk_phone(rng: random.Random) -> str:
    kind = rng.randrange(3)
    if kind == 0:
        return f"07700 900{rng.randrange(1000):03d}"
    if kind == 1:
        return f"01632 960{rng.randrange(1000):03d}"
    return f"020 7946 0{rng.randrange(1000):03d}"


def _us_phone(rng: random.Random) -> str:
    return f"{rng.choice(_US_AREAS)}-555-01{rng.randrange(100):02d}"


# ------------------------------------------------------------------ written forms


def _digits(value: str) -> str:
    return "".join(c for c in value if c.isdigit())


def _phone_form(value: str, uk: bool, rng: random.Random) -> str:
    d = _digits(value)
    if uk:
        nsn = d[1:]
        forms = [
            value,
            d,
            "-".join(value.split()),
            f"+44 {nsn[:4]} {nsn[4:]}",
            f"+44 (0){nsn[:4]} {nsn[4:]}",
            f"0044 {nsn}",
            f"({d[:5]}) {d[5:]}",
        ]
    else:
        forms = [
            value,
            f"({d[:3]}) {d[3:6]}-{d[6:]}",
            f"{d[:3]}.{d[3:6]}.{d[6:]}",
            f"+1 {d[:3]} {d[3:6]} {d[6:]}",
            f"1-{value}",
            d,
        ]
    return rng.choice(forms)


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 11 <= n <= 13 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def _date_form(day: date, uk: bool, rng: random.Random) -> str:
    d, m, y, month = day.day, day.month, day.year, _MONTHS[day.month - 1]
    forms = [
        day.isoformat(),
        day.isoformat().replace("-", "/"),
        f"{d:02d}/{m:02d}/{y}" if uk else f"{m:02d}/{d:02d}/{y}",
        f"{d}/{m}/{y}" if uk else f"{m}/{d}/{y}",
        f"{d} {month} {y}",
        f"{_ordinal(d)} of {month} {y}",
        f"{month} {d}, {y}",
        f"{month[:3]} {_ordinal(d)}, {y}",
        f"{d:02d}.{m:02d}.{y}",
        f"{d}-{month[:3]}-{y}",
    ]
    return rng.choice(forms)


def _name_forms(name: str, rng: random.Random) -> str:
    first, last = name.split()[0], name.split()[-1]
    forms = [
        name,
        name.upper(),
        name.lower(),
        f"{last.upper()}'s",
        f"{last}\u2019s",
        f"{first}'s",
        f"Mr {last}" if rng.random() < 0.5 else f"Ms {last}",
        f"{last}, {first}",
        f"{first}-{last}",
        first,
    ]
    return rng.choice(forms)


def _strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


# ------------------------------------------------------------------ narrative assembly


class _Narrative:
    """Builds the narrative from pieces, recording the span of every labelled mention."""

    def __init__(self, fake: Faker, rng: random.Random) -> None:
        self._fake, self._rng = fake, rng
        self._parts: list[str] = []
        self._length = 0
        self.mentions: list[Mention] = []

    def text(self, piece: str) -> None:
        if self._parts:
            self._parts.append(" ")
            self._length += 1
        self._parts.append(piece)
        self._length += len(piece)

    def filler(self, words: int) -> None:
        sentence = " ".join(self._fake.words(words))
        self.text(sentence[:1].upper() + sentence[1:] + ".")

    def mention(
        self, before: str, form: str, after: str, kind: str, field: str | None, cued: bool = False
    ) -> None:
        self.text(before)
        start = self._length + 1
        self.text(form)
        self.mentions.append(Mention(kind, field, start, start + len(form), form, cued))
        if after:
            tail = after if after[0] in ".," else " " + after
            self._parts.append(tail)
            self._length += len(tail)

    def value(self) -> str:
        return "".join(self._parts)


def _case(i: int, fake: Faker, rng: random.Random) -> LabelledCase:
    uk = i % 2 == 0
    locale_fake = fake[("en_GB" if uk else "en_US")]
    accented = rng.random() < 0.15
    name_source = fake[rng.choice(_ACCENTED_LOCALES)] if accented else locale_fake

    def nf(name: str) -> str:
        form = _name_forms(name, rng)
        return _strip_accents(form) if accented and rng.random() < 0.5 else form

    def person(short_surname: bool = False) -> str:
        first = name_source.first_name().split()[0]
        last = rng.choice(_SHORT_SURNAMES) if short_surname else name_source.last_name()
        return f"{first} {last.split()[0]}"

    client, member, neighbour = person(), person(), person(rng.random() < 0.1)
    referrer = person()
    dob = locale_fake.date_of_birth(minimum_age=18, maximum_age=85)
    phone, tp_phone = (_uk_phone(rng), _uk_phone(rng)) if uk else (_us_phone(rng), _us_phone(rng))
    email = locale_fake.safe_email()
    tp_email = f"{neighbour.split()[0].lower()}.{rng.randrange(100)}@example.net"
    national_id = _nhs(rng) if uk else _ssn(rng)
    diagnosis = rng.choice(
        ["generalised anxiety disorder", "recurrent depressive disorder", "bipolar II disorder"]
    )
    fields: list[tuple[str, str, str]] = [
        ("full_name", "identity", client),
        ("date_of_birth", "identity", dob.isoformat()),
        ("nhs_number" if uk else "ssn", "identity", national_id),
        ("address", "contact", locale_fake.street_address().replace("\n", ", ")),
        ("phone", "contact", phone),
        ("email", "contact", email),
        ("household_member_1_name", "household_family", member),
        ("household_member_1_relationship", "household_family", rng.choice(["son", "daughter"])),
        ("housing_situation", "housing", locale_fake.sentence(12)),
        ("mental_health_diagnosis", "mental_health", diagnosis),
        ("risk_summary", "risk_assessment", locale_fake.sentence(10)),
        ("third_party_1_name", "third_party_information", neighbour),
        ("third_party_1_phone", "third_party_information", tp_phone),
        ("third_party_1_email", "third_party_information", tp_email),
        ("referrer_name", "third_party_information", referrer),
    ]
    if uk:
        fields.insert(3, ("ni_number", "identity", _nino(rng)))
    value_of = {name: value for name, _, value in fields}

    n = _Narrative(locale_fake, rng)
    cue = rng.choice(["born", "DOB:", "date of birth", "(DOB", "D.O.B."])
    has_cue = rng.random() < 0.8
    steps: list[Callable[[], None]] = [
        lambda: n.mention("Met", nf(client), ".", "name", "full_name"),
        lambda: n.mention(
            f"She was {cue}" if has_cue else "Client record shows",
            _date_form(dob, uk, rng),
            ".",
            "dob",
            "date_of_birth",
            has_cue,
        ),
        lambda: n.mention("Her", nf(member), "room is damp.", "name", "household_member_1_name"),
        lambda: n.mention(
            "Neighbour", nf(neighbour), "shouted again.", "name", "third_party_1_name"
        ),
        lambda: n.mention(
            "Neighbour's number",
            _phone_form(tp_phone, uk, rng),
            ".",
            "phone",
            "third_party_1_phone",
        ),
        lambda: n.mention(
            "Wrote to",
            tp_email.upper() if rng.random() < 0.3 else tp_email,
            ".",
            "email",
            "third_party_1_email",
        ),
        lambda: n.mention("Referred by", nf(referrer), ".", "name", "referrer_name"),
        lambda: n.mention("Client mobile", _phone_form(phone, uk, rng), ".", "phone", "phone"),
        lambda: n.mention("Client email", email, ".", "email", "email"),
        lambda: n.mention(
            "Her",
            diagnosis.upper() if rng.random() < 0.3 else diagnosis,
            "is worse.",
            "text",
            "mental_health_diagnosis",
        ),
    ]
    if uk:
        nhs = value_of["nhs_number"]
        nino = value_of["ni_number"]
        steps += [
            lambda: n.mention(
                "NHS no.",
                rng.choice([nhs, nhs.replace(" ", ""), nhs.replace(" ", "-")]),
                ".",
                "nhs",
                "nhs_number",
            ),
            lambda: n.mention(
                "NI number",
                rng.choice([nino, nino.replace(" ", ""), nino.lower()]),
                ".",
                "nino",
                "ni_number",
            ),
        ]
    else:
        ssn = value_of["ssn"]
        steps.append(
            lambda: n.mention(
                *rng.choice(
                    [
                        ("SSN", ssn),
                        ("SSN:", _digits(ssn)),
                        ("social security number", ssn.replace("-", " ")),
                    ]
                ),
                ".",
                "ssn",
                "ssn",
            )
        )
    # Personal data held in no field: only the pattern recognizers can find these.
    other_phone = _uk_phone(rng) if uk else _us_phone(rng)
    other_dob = locale_fake.date_of_birth(minimum_age=1, maximum_age=90)
    steps += [
        lambda: n.mention(
            "Her sister's number is", _phone_form(other_phone, uk, rng), ".", "phone", None
        ),
        lambda: n.mention(
            "Her brother, born", _date_form(other_dob, uk, rng), ", visits.", "dob", None, True
        ),
        lambda: n.mention(
            "GP surgery email", f"reception{rng.randrange(99)}@example.com", ".", "email", None
        ),
    ]
    rng.shuffle(steps)
    # Decoys: dates, times, amounts and references that are not personal data.
    decoys = [
        f"Visit on {rng.randint(1, 28)} {rng.choice(_MONTHS)} 2025 at {rng.randint(9, 17)}:30.",
        f"Rent arrears of {'£' if uk else '$'}{rng.randint(100, 2500):,}.",
        f"Case ref CR-2025-{rng.randrange(10000):04d}, room {rng.randint(1, 40)}.",
        f"Review due {rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/2025.",
    ]
    for step in steps:
        n.filler(rng.randint(2, 6))
        step()
    for decoy in decoys:
        n.filler(rng.randint(2, 6))
        n.text(decoy)
    fields.append(("case_note", "case_narrative", n.value()))

    shape = i % 3
    allowed = [
        ["identity", "contact", "household_family", "housing", "case_narrative"],
        ["case_narrative", "mental_health", "risk_assessment", "housing"],
        ["identity", "mental_health", "risk_assessment", "case_narrative"],
    ][shape]
    purpose = ["consent_based_sharing", "colleague_consultation", "treatment_continuity"][shape]
    request = SharingRequest(
        request_id=f"req-corpus-{i:05d}",
        jurisdiction="uk_england" if uk else "us_baseline",
        requester=Requester(agency_id="ag-corpus-social-care", agency_type="social_services"),
        recipient=Recipient(agency_id="ag-corpus-recipient", agency_type="mental_health"),
        purpose=purpose,
        requested_categories=sorted({c for _, c, _ in fields}),
        record=CaseRecord(
            subject_id=f"subj-corpus-{i:05d}",
            fields=[RecordField(name=a, category=c, value=v) for a, c, v in fields],
        ),
        requested_at=NOW,
    )
    decision = PolicyDecision(
        outcome="delivered",
        reason_code="corpus",
        explanation="corpus",
        allowed_categories=allowed,
        obligations=["minimum_necessary_applied"],
        pack_id=request.jurisdiction.value,
        pack_version="corpus",
        decided_at=NOW,
    )
    return LabelledCase(request, decision, tuple(n.mentions))


def generate(n: int = 300, seed: int = 20250601) -> list[LabelledCase]:
    """``n`` labelled cases, identical for the same ``n`` and ``seed``."""
    fake = Faker(["en_GB", "en_US", *_ACCENTED_LOCALES])
    fake.seed_instance(seed)
    rng = random.Random(seed)  # noqa: S311 - reproducible fictional data, not security
    return [_case(i, fake, rng) for i in range(n)]


# ------------------------------------------------------------------ leak check


def _norm(text: str) -> str:
    """Markers opaque, accents and every other non-alphanumeric dropped, casefolded."""
    text = _strip_accents(text.replace(MARKER, "\x00")).casefold()
    return "".join(c for c in text if c.isalnum() or c == "\x00")


def _present(probe: str, haystack: str) -> bool:
    """``probe`` occurs in ``haystack`` with no digit glued to a numeric end."""
    at = haystack.find(probe)
    while at >= 0:
        end = at + len(probe)
        left_ok = not (probe[0].isdigit() and at > 0 and haystack[at - 1].isdigit())
        right_ok = not (probe[-1].isdigit() and end < len(haystack) and haystack[end].isdigit())
        if left_ok and right_ok:
            return True
        at = haystack.find(probe, at + 1)
    return False


def _name_words(value: str) -> set[str]:
    return {
        _strip_accents(w).casefold()
        for w in "".join(c if c.isalpha() else " " for c in value).split()
        if len(w) >= 2
    }


def _word_present(word: str, text: str) -> bool:
    words = "".join(c if c.isalpha() else " " for c in _strip_accents(text)).split()
    if len(word) >= 3:
        return word in {w.casefold() for w in words}
    return word in {w.casefold() for w in words if w[:1].isupper()}


def leaks(case: LabelledCase, result: RedactionResult) -> list[Leak]:
    """Withheld values and unfielded pattern PII still present in the delivered payload.

    A withheld field leaks if its value (or a labelled written form of it) appears in any
    delivered value — compared without case, accents or separators — or, for a
    ``*_name`` field, if one of its words (not shared with a delivered name) stands as a
    whole word (two-letter words: capitalised).
    """
    withheld = {f.name: f for f in case.withheld_fields()}
    delivered_text = " \x00 ".join(f.value for f in result.payload.fields)
    haystack = _norm(delivered_text)
    spared: set[str] = set()
    for sent in result.payload.fields:
        if sent.name.endswith("_name"):
            spared |= _name_words(sent.value)
    out: list[Leak] = []

    def check(field: str | None, kind: str, forms: Iterable[str], words: Iterable[str]) -> None:
        for form in forms:
            probe = "".join(c for c in _norm(form) if c.isalnum())
            if len(probe) >= 4 and _present(probe, haystack):
                out.append(Leak(field, kind, form))
                return
        for word in words:
            if word not in spared and _word_present(word, delivered_text):
                out.append(Leak(field, kind, word))
                return

    for name, f in withheld.items():
        words = _name_words(f.value) if name.endswith("_name") else set()
        check(name, "field", [f.value], words)
    for m in case.mentions:
        if m.field is None:
            check(None, m.kind, [m.text], ())
        elif m.field in withheld:
            if m.kind == "name":  # a name leaks by its words (a form like "Lee's" may
                # also occur, harmlessly, across word gaps once separators are dropped)
                value = withheld[m.field].value
                check(m.field, m.kind, [value], _name_words(value))
            else:
                check(m.field, m.kind, [m.text], ())
    return out
