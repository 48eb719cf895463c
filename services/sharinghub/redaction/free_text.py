"""S4 — the free-text second line of defence, built on Presidio (no model, no network).

S3 (`rules.scrub`) removes every withheld value in the forms its normalisation covers.
This pass runs after it on free text only (category ``case_narrative``, or any delivered
value longer than `FREE_TEXT_MIN_CHARS`) and replaces with ``[redacted]`` what S3 cannot
know about:

* **Pattern PII** — Presidio pattern recognizers, compiled once per process: phone numbers
  (UK and US formats, incl. ``+44``/``+1``), e-mail addresses, dates of birth written with
  a cue ("born", "DOB", "date of birth"), US SSNs, UK NHS numbers (checksum validated)
  and UK National Insurance numbers. Values equal to a *delivered* field value (the
  client's own phone when ``contact`` is delivered) are spared: the recipient gets them
  anyway.
* **Deny-list per message** — `WithheldValueRecognizer`, built from the request's own
  withheld fields, finds the variants S3's separator/case normalisation does not reach:
  names written without their accents ("José Núñez" → "Jose Nunez"), two-letter name
  words in capitalised form ("Mr Li"), a withheld phone number in international form
  ("07700 900188" → "+44 7700 900188"), and a withheld date in any common written form
  ("1988-07-02" → "2 July 1988", "July 2nd, 1988", "02/07/88", "7/2/1988").

No NLP engine: no spaCy model is loaded or downloaded (none can be installed offline, and
the pattern recognizers need no tokens), and the recognizers are called without Presidio's
`AnalyzerEngine` (see `FreeTextScrubber`). Context words are written into the patterns
themselves (``DOB: …``, ``SSN …``), so no lemma-based context enhancement is needed. No NER
model: names not held in a withheld field are not detected (see docs/redaction.md for what
that would cost).

Usage: create one `FreeTextScrubber` per process (or use `default_scrubber`), then per
request ``redact(..., free_text=scrubber.scrub_pass(request, withheld))``.
"""

from __future__ import annotations

import functools
import re
import threading
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from itertools import compress
from operator import not_
from typing import Literal

from presidio_analyzer import (
    EntityRecognizer,
    LocalRecognizer,
    Pattern,
    PatternRecognizer,
    RecognizerResult,
)
from presidio_analyzer.nlp_engine import NlpArtifacts
from presidio_analyzer.predefined_recognizers import (
    EmailRecognizer,
    NhsRecognizer,
    UkNinoRecognizer,
    UsSsnRecognizer,
)

from sharinghub.contracts import RecordField, SharingRequest
from sharinghub.contracts.vocabulary import DataCategory
from sharinghub.redaction.chars import (
    alnum_only,
    ascii_bytes,
    delete_and_lower,
    has_at_least_alnum,
    inner_non_alnum,
)
from sharinghub.redaction.digit_windows import digit_windows
from sharinghub.redaction.rules import BASE_SEPARATORS, MARKER, FreeTextPass

__all__ = [
    "FREE_TEXT_MIN_CHARS",
    "PATTERN_ENTITIES",
    "SCORE_THRESHOLD",
    "WITHHELD_ENTITY",
    "DenyList",
    "Finding",
    "FreeTextScrubber",
    "WithheldValueRecognizer",
    "build_deny_list",
    "default_scrubber",
    "is_free_text",
]

FREE_TEXT_MIN_CHARS = 80
"""Values longer than this are free text whatever their category (S4 applies)."""
SCORE_THRESHOLD = 0.4
LANGUAGE = "en"
WITHHELD_ENTITY = "WITHHELD_VALUE"
PATTERN_ENTITIES: tuple[str, ...] = (
    "PHONE_NUMBER",
    "EMAIL_ADDRESS",
    "DATE_OF_BIRTH",
    "US_SSN",
    "UK_NHS",
    "UK_NINO",
)
_OPAQUE = "\x00"  # a marker's stand-in while analysing: no recognizer matches it

# ------------------------------------------------------------------ pattern recognizers

# A digit group separator inside a phone number: one space, dot or hyphen (a closing
# parenthesis may precede it: "(0161) 496 0123").
_SEP = r"(?:\)?[ .\-]?)"
_UK_PHONE = (
    r"(?<![\w+])(?:(?:\+|00)[ ]?44[ ]?(?:\(0\)[ ]?)?|\(?0)"  # +44, 0044, +44 (0), 0, (0
    r"[1-9](?:" + _SEP + r"\d){8,9}(?![\w])"  # 9-10 digit national number
)
_US_PHONE = (
    r"(?<![\w+])(?=[+(\d])(?:(?:\+|00)?1[ .\-]?)?"  # optional country code (the lookahead
    # lets the engine skip most positions fast)
    r"(?:\([2-9]\d\d\)[ ]?|[2-9]\d\d[ .\-]?)"  # area code
    r"[2-9]\d\d[ .\-]?\d{4}(?![\w])"  # exchange and line
)
_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_DAY = r"(?:[0-3]?\d(?:st|nd|rd|th)?)"
_DATE = (
    r"(?:\d{1,2}[/.\-]\d{1,2}[/.\-](?:\d{4}|\d{2})"  # 02/07/1988, 7-2-88
    r"|\d{4}[/.\-]\d{1,2}[/.\-]\d{1,2}"  # 1988-07-02
    rf"|{_DAY}(?:[ \-](?:of[ ])?){_MONTH}[ \-,]+\d{{2,4}}"  # 2 July 1988, 2nd of Jul 88
    rf"|{_MONTH}[ ]{_DAY},?[ ]+\d{{4}})"  # July 2, 1988
)
# The cue is consumed but kept out of the finding with \K (Presidio compiles patterns with
# the `regex` module, which has it): "born [redacted]".
_DOB = (
    r"\b(?:born|d\.?o\.?b\.?|date[ ]of[ ]birth|birth[ ]?date|birthday)"
    r"(?:[ ]*[:\-\u2013][ ]*|[ ]+(?:is[ ]+|was[ ]+|on[ ]+|in[ ]+)?)\(?\K" + _DATE + r"(?!\d)"
)
# Presidio's NINO pattern (prefixes never issued excluded), with a cheap lookahead first:
# the stock pattern costs ~2x as much on text without a NINO.
_NINO = (
    r"\b(?=[a-z]{2} ?\d)(?!bg|gb|nk|kn|nt|tn|zz)[a-ceghj-pr-tw-z][a-ceghj-npr-tw-z]"
    r" ?\d\d ?\d\d ?\d\d ?[a-d]\b"
)
_EMAIL_LOCAL = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]{1,64}$")
_EMAIL_DOMAIN = re.compile(r"\w+(?:-+\w+)*(?:\.\w+(?:-+\w+)*)+")
_SSN_CUE = (
    r"\b(?:ssn|ss#|social[ ]security(?:[ ](?:number|no\.?|#))?)"
    r"(?:[ ]*[:#\-][ ]*|[ ]+(?:is[ ]+|was[ ]+)?)\K\d{9}\b"
)


class _FastEmailRecognizer(EmailRecognizer):
    """E-mail addresses, found from each ``@`` outwards; validated offline.

    Presidio's e-mail regex tries every word of the text (~0.2 ms per 150 words); this
    looks only around an ``@``: local part behind it, dotted domain after it. The stock
    recognizer also validates the domain with tldextract, which downloads the public
    suffix list on first use: a match is kept on the pattern alone here.
    """

    def analyze(
        self,
        text: str,
        entities: list[str],
        nlp_artifacts: NlpArtifacts | None = None,
        regex_flags: int | None = None,
    ) -> list[RecognizerResult]:
        """One result per ``local@domain.tld`` around each ``@`` of the text."""
        results: list[RecognizerResult] = []
        at = text.find("@")
        while at >= 0:
            local = _EMAIL_LOCAL.search(text, max(0, at - 64), at)
            domain = _EMAIL_DOMAIN.match(text, at + 1)
            if local and domain:
                start = local.start()
                while start < at and not text[start].isalnum():  # no leading dots
                    start += 1
                if start < at:
                    results.append(
                        RecognizerResult(
                            self.supported_entities[0],
                            start,
                            domain.end(),
                            self.MAX_SCORE,
                            recognition_metadata={
                                RecognizerResult.RECOGNIZER_NAME_KEY: type(self).__name__,
                                RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
                            },
                        )
                    )
            at = text.find("@", at + 1)
        return results


class _PhoneRecognizer(PatternRecognizer):
    """UK and US phone numbers by pattern (python-phonenumbers rejects Ofcom drama
    numbers and costs ~1.3 ms per 150 words; these regexes cost a few µs)."""

    def invalidate_result(self, pattern_text: str) -> bool | None:
        """A phone number is not nine or more copies of one digit."""
        digits = [c for c in pattern_text if c.isdigit()]
        return len(set(digits[-9:])) <= 1


def _pattern_recognizers() -> list[PatternRecognizer]:
    return [
        _PhoneRecognizer(
            supported_entity="PHONE_NUMBER",
            name="PhoneRecognizerUkUs",
            patterns=[Pattern("UK phone", _UK_PHONE, 0.7), Pattern("US phone", _US_PHONE, 0.7)],
        ),
        _FastEmailRecognizer(),
        PatternRecognizer(
            supported_entity="DATE_OF_BIRTH",
            name="DateOfBirthRecognizer",
            patterns=[Pattern("date after a birth cue", _DOB, 0.8)],
        ),
        UsSsnRecognizer(
            patterns=[
                # Presidio's "SSN5 (medium)" plus a cued unseparated form; its weak
                # unseparated patterns would need the token-based context enhancer.
                Pattern("SSN separated", r"\b([0-9]{3})[- .]([0-9]{2})[- .]([0-9]{4})\b", 0.5),
                Pattern("SSN after cue", _SSN_CUE, 0.8),
            ]
        ),
        NhsRecognizer(),  # 3-3-4 digits, kept only if the mod-11 checksum holds
        UkNinoRecognizer(patterns=[Pattern("NINO", _NINO, 0.5)]),
    ]


# ------------------------------------------------------------------ per-message deny-list

_Kind = Literal["text", "word", "short_word", "number"]

# Accented Latin letters → their base letter, one character for one (offsets stay valid).
_FOLD: dict[int, str] = {}
for _code in range(0xC0, 0x250):
    _base = unicodedata.normalize("NFKD", chr(_code))[0]
    if _base.isascii() and _base.isalpha() and _base != chr(_code):
        _FOLD[_code] = _base
_LETTERS = re.compile(r"[^\W\d_]+")
_ACCENTED = re.compile("[\u00c0-\u024f]")
_NAME_WORD = re.compile(r"(?:[^\W\d_]|['\u2019-])+")
_ISO_DATE = re.compile(r"^\s*(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[T ].*)?\s*$")
_NUM_DATE = re.compile(r"^\s*(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})\s*$")
_WORD_DATE = re.compile(
    r"^\s*(?:(\d{1,2})(?:st|nd|rd|th)?(?:\s+of)?\s+([a-z]{3,9})\.?|([a-z]{3,9})\.?\s+(\d{1,2})"
    r"(?:st|nd|rd|th)?),?\s+(\d{4})\s*$",
    re.IGNORECASE,
)
_PHONE_LIKE = re.compile(r"^\s*\+?[\d\s().\-]{9,24}$")
_MONTHS = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
]
# Two-letter words that are also English words are not treated as name words.
_SHORT_STOP = frozenset(
    [
        "am",
        "an",
        "as",
        "at",
        "be",
        "by",
        "do",
        "go",
        "he",
        "hi",
        "if",
        "in",
        "is",
        "it",
        "me",
        "my",
        "no",
        "of",
        "oh",
        "ok",
        "on",
        "or",
        "ox",
        "so",
        "to",
        "up",
        "us",
        "we",
    ]
)
_NAME_SUFFIX = "_name"
_MIN_DATE_KEY = 6


def _fold(text: str) -> str:
    # isascii() is a flag check; the search a C scan; translating with a dict costs ~50 µs
    # per 1,000 characters, so it runs only where there is something to fold.
    if text.isascii() or not _ACCENTED.search(text):
        return text
    return text.translate(_FOLD)


def _key(value: str) -> str:
    """Accent-folded, casefolded alphanumerics: the form needles are compared in."""
    return alnum_only(_fold(value).casefold())


def _is_name_field(field: RecordField) -> bool:
    return field.name == "name" or field.name.endswith(_NAME_SUFFIX)


def _ordinal(day: int) -> str:
    suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def _parse_dates(value: str) -> list[date]:
    """The dates a withheld value may denote (both readings of an ambiguous d/m/y)."""
    found: list[date] = []
    candidates: list[tuple[int, int, int]] = []
    if m := _ISO_DATE.match(value):
        candidates.append((int(m[1]), int(m[2]), int(m[3])))
    elif m := _NUM_DATE.match(value):
        a, b, y = int(m[1]), int(m[2]), int(m[3])
        candidates += [(y, b, a), (y, a, b)]
    elif m := _WORD_DATE.match(value):
        month = (m[2] or m[3]).casefold()
        number = next((i for i, name in enumerate(_MONTHS, 1) if name.startswith(month)), 0)
        if number and len(month) >= 3:
            candidates.append((int(m[5]), number, int(m[1] or m[4])))
    for y, mo, d in candidates:
        try:
            found.append(date(y, mo, d))
        except ValueError:
            continue
    return found


def _date_keys(day: date) -> set[str]:
    """Keys of the written forms of ``day`` (separators and case do not matter)."""
    d, m, y = day.day, day.month, day.year
    month = _MONTHS[m - 1]
    months = {month, month[:3]} | ({"sept"} if m == 9 else set())
    days = {str(d), f"{d:02d}", _ordinal(d)}
    years = {str(y)}
    keys = {f"{y}{m:02d}{d:02d}", f"{y}{m}{d}"}
    for a, b in ((d, m), (m, d)):
        for yy in (str(y), f"{y % 100:02d}"):
            keys |= {f"{a:02d}{b:02d}{yy}", f"{a}{b}{yy}"}
    for dd in days:
        for mm in months:
            for yy in years | {f"{y % 100:02d}"}:
                keys |= {f"{dd}{mm}{yy}", f"{dd}of{mm}{yy}", f"{mm}{dd}{yy}"}
    return keys


def _national_number(value: str) -> str:
    """Digits of a phone number without country code or trunk prefix, or ``""``."""
    if not _PHONE_LIKE.match(value):
        return ""
    digits = "".join(c for c in value if c.isdigit())
    if value.lstrip().startswith("+") or digits.startswith("00"):
        digits = digits.lstrip("0")
        for code in ("44", "1"):
            if digits.startswith(code):
                digits = digits[len(code) :]
                break
    elif len(digits) == 11 and digits.startswith("1"):  # US 1-NPA-NXX-XXXX
        digits = digits[1:]
    digits = digits.lstrip("0")  # UK trunk 0, or "(0)" after +44
    return digits if len(digits) >= 9 else ""


@dataclass(frozen=True, slots=True)
class _Needle:
    key: str
    kind: _Kind


@dataclass(frozen=True, slots=True)
class DenyList:
    """The variants of one request's withheld values that S4 looks for (built per message)."""

    needles: tuple[_Needle, ...]
    separators: frozenset[str]
    _delete_ascii: bytes  # the ASCII separators (all an ASCII text can hold)

    def __bool__(self) -> bool:
        return bool(self.needles)

    def normalise(self, text: str) -> str:
        """Accent-folded, separators removed, casefolded (markers must be masked first)."""
        if text.isascii():  # nothing to fold
            return delete_and_lower(text, self._delete_ascii)
        return _strip_pattern(self.separators).sub("", _fold(text)).casefold()

    def positions(self, text: str) -> tuple[str, list[int]]:
        """`normalise` plus, for each normalised character, its index in ``text``."""
        low = _fold(text).casefold()
        if len(low) == len(text):  # one character for one (casefold maps "ß" to "ss")
            # compress/map run in C: ~10x faster than a comprehension over the text.
            keep = list(map(not_, map(self.separators.__contains__, low)))
            return "".join(compress(low, keep)), list(compress(range(len(low)), keep))
        chars: list[str] = []
        where: list[int] = []
        for i, c in enumerate(_fold(text)):
            if c in self.separators:
                continue
            folded = c.casefold()
            chars.append(folded)
            where.extend([i] * len(folded))
        return "".join(chars), where


def build_deny_list(
    withheld: Iterable[RecordField], delivered: Iterable[RecordField] = ()
) -> DenyList:
    """Deny-list needles for one request: withheld values, their name words and variants.

    Words of delivered ``*_name`` values are spared, as in S3. Values with fewer than four
    alphanumerics are left to S3's whole-token rule.
    """
    withheld = list(withheld)
    spared = {_key(w) for f in delivered if _is_name_field(f) for w in _LETTERS.findall(f.value)}
    separators = set(BASE_SEPARATORS)
    needles: dict[str, _Kind] = {}
    rank: dict[_Kind, int] = {"text": 0, "number": 1, "word": 2, "short_word": 3}

    def add(key: str, kind: _Kind) -> None:
        if key and (key not in needles or rank[kind] < rank[needles[key]]):
            needles[key] = kind

    for field in withheld:
        value = field.value
        if not has_at_least_alnum(value, 4):
            continue
        separators |= inner_non_alnum(value)
        add(_key(value), "text")
        if nsn := _national_number(value):
            add(nsn, "number")
        for day in _parse_dates(value):
            for key in _date_keys(day):
                if len(key) >= _MIN_DATE_KEY:  # "1288" for 1/2/88 would match too much
                    add(key, "number" if key[0].isdigit() or key[-1].isdigit() else "text")
        if _is_name_field(field):
            for word in _NAME_WORD.findall(value):
                for part in {word, *_LETTERS.findall(word)}:
                    key = _key(part)
                    if key in spared or not key.isalpha():
                        continue
                    if len(key) >= 3:
                        add(key, "word")
                    elif len(key) == 2 and key not in _SHORT_STOP:
                        add(key, "short_word")
    separators.discard(_OPAQUE)
    ordered = tuple(
        _Needle(k, kind) for k, kind in sorted(needles.items(), key=lambda x: -len(x[0]))
    )
    frozen = frozenset(separators)
    return DenyList(ordered, frozen, ascii_bytes(frozen))


@functools.lru_cache(maxsize=256)
def _strip_pattern(separators: frozenset[str]) -> re.Pattern[str]:
    """Runs of separators (non-ASCII text only; separator sets repeat across requests)."""
    return re.compile("[" + "".join(map(re.escape, sorted(separators))) + "]+")


def _bounded(text: str, start: int, end: int, kind: _Kind) -> bool:
    """Whole word (names), no digit glued on (numbers), capitalised (two-letter names)."""
    if kind == "text":
        return True
    if kind == "number":
        return not (start > 0 and text[start - 1].isdigit()) and not (
            end < len(text) and text[end].isdigit()
        )
    if start > 0 and text[start - 1].isalpha():
        return False
    if end < len(text) and text[end].isalpha():
        return False
    return kind == "word" or text[start].isupper()


class WithheldValueRecognizer(LocalRecognizer):
    """Presidio deny-list recognizer for one message's withheld values and their variants.

    Matching is by normalised substring (``str.find``), not by regex, so building one per
    message compiles nothing; a text that mentions no needle costs one ``translate`` and
    one ``in`` test per needle.
    """

    def __init__(self, deny_list: DenyList) -> None:
        self._deny = deny_list
        super().__init__(
            supported_entities=[WITHHELD_ENTITY],
            name="WithheldValueRecognizer",
            supported_language=LANGUAGE,
        )

    def load(self) -> None:
        """Nothing to load: the needles come with the message."""

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        """Every bounded occurrence of every needle (overlaps included)."""
        deny = self._deny
        norm = deny.normalise(text)
        present = [n for n in deny.needles if n.key in norm]
        if not present:
            return []
        norm, where = deny.positions(text)
        results: list[RecognizerResult] = []
        for needle in present:
            size = len(needle.key)
            at = norm.find(needle.key)
            while at >= 0:
                start, end = where[at], where[at + size - 1] + 1
                if _bounded(text, start, end, needle.kind):
                    results.append(
                        RecognizerResult(
                            WITHHELD_ENTITY,
                            start,
                            end,
                            1.0,
                            recognition_metadata={
                                RecognizerResult.RECOGNIZER_NAME_KEY: type(self).__name__,
                                RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
                            },
                        )
                    )
                at = norm.find(needle.key, at + 1)
        return results


# ------------------------------------------------------------------ the scrubber


@dataclass(frozen=True, slots=True)
class Finding:
    """One detected span of a text (no value: callers slice the text if they must)."""

    entity: str
    start: int
    end: int


def is_free_text(value: str, category: DataCategory) -> bool:
    """S4 applies to case narratives and to any value longer than `FREE_TEXT_MIN_CHARS`."""
    return category is DataCategory.CASE_NARRATIVE or len(value) > FREE_TEXT_MIN_CHARS


def _allow_keys(delivered: Iterable[RecordField]) -> frozenset[str]:
    """Keys of short delivered values (and their phone national numbers)."""
    keys: set[str] = set()
    for field in delivered:
        if len(field.value) <= FREE_TEXT_MIN_CHARS:
            keys.add(_key(field.value))
            if nsn := _national_number(field.value):
                keys.add(nsn)
    keys.discard("")
    return frozenset(keys)


def _merge(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _without_markers(spans: list[tuple[int, int]], text: str) -> list[tuple[int, int]]:
    """Cut existing markers out of the spans: a marker is never scrubbed again."""
    marks = [(m.start(), m.end()) for m in re.finditer(re.escape(MARKER), text)]
    if not marks:
        return spans
    out: list[tuple[int, int]] = []
    for start, end in spans:
        cursor = start
        for m_start, m_end in marks:
            if m_end <= cursor or m_start >= end:
                continue
            if m_start > cursor:
                out.append((cursor, m_start))
            cursor = max(cursor, m_end)
        if cursor < end:
            out.append((cursor, end))
    return out


class FreeTextScrubber:
    """The S4 recognizers (Presidio) and the replacement of what they find; create once per
    process.

    The recognizers are Presidio's, called directly: `AnalyzerEngine.analyze` added ~25 µs of
    bookkeeping per text (recognizer lookup, NLP artifacts, per-recognizer result filtering)
    to ~30 µs of matching, and its score filtering and de-duplication are done here the same
    way. The digit-bearing patterns read only the text around digits (`digit_windows`), with
    the same findings as a scan of the whole text. Replacing disjoint spans with the marker
    is a slice-and-join (Presidio's anonymizer did the same, for ~30 µs more per text).

    Construction builds the recognizers (compiling their patterns) and runs one warm-up
    analysis, so no compilation happens on the request path. Thread-safe: per-message
    state lives in the closure `scrub_pass` returns.
    """

    def __init__(self, *, score_threshold: float = SCORE_THRESHOLD) -> None:
        recognizers = _pattern_recognizers()
        # The e-mail recognizer looks around each "@" of the whole text (no digit needed).
        self._text_wide = [r for r in recognizers if isinstance(r, _FastEmailRecognizer)]
        self._digit_bearing = [r for r in recognizers if r not in self._text_wide]
        self._threshold = score_threshold
        # Warm-up: compiles every pattern now rather than on the first request.
        self.findings("born 02/07/1988, call 07700 900188 or a@example.org, SSN 123-45-6789")

    def findings(
        self,
        text: str,
        deny_list: DenyList | None = None,
        allow: frozenset[str] = frozenset(),
    ) -> list[Finding]:
        """Spans of ``text`` S4 would replace (markers masked, allowed values spared)."""
        masked = text.replace(MARKER, _OPAQUE * len(MARKER))
        results: list[RecognizerResult] = []
        windows = digit_windows(masked)
        if windows is not None:
            for recognizer in self._digit_bearing:
                for r in recognizer.analyze(windows.text, recognizer.supported_entities, None):
                    start, end = windows.origin(r.start, r.end)
                    results.append(RecognizerResult(r.entity_type, start, end, r.score))
        for recognizer in self._text_wide:
            results += recognizer.analyze(masked, recognizer.supported_entities, None)
        if deny_list:
            results += WithheldValueRecognizer(deny_list).analyze(masked, [WITHHELD_ENTITY])
        kept = EntityRecognizer.remove_duplicates(
            [r for r in results if r.score >= self._threshold]
        )
        out: list[Finding] = []
        for r in kept:
            if r.entity_type != WITHHELD_ENTITY and allow:
                piece = masked[r.start : r.end]
                if _key(piece) in allow or _national_number(piece) in allow:
                    continue
            out.append(Finding(r.entity_type, r.start, r.end))
        return out

    def scrub(
        self,
        text: str,
        deny_list: DenyList | None = None,
        allow: frozenset[str] = frozenset(),
    ) -> tuple[str, int]:
        """Replace every finding by ``[redacted]``; return the text and markers inserted."""
        spans = _without_markers(
            _merge((f.start, f.end) for f in self.findings(text, deny_list, allow)), text
        )
        if not spans:
            return text, 0
        pieces: list[str] = []
        done = 0
        for start, end in spans:  # disjoint and sorted
            pieces += [text[done:start], MARKER]
            done = end
        pieces.append(text[done:])
        return "".join(pieces), len(spans)

    def scrub_pass(self, request: SharingRequest, withheld: Sequence[RecordField]) -> FreeTextPass:
        """The `FreeTextPass` for one request: pass it to ``redact(..., free_text=...)``.

        ``withheld``: the record fields not delivered (``rules.delivered_fields``); every
        other field of the record counts as delivered (its short values are spared).
        """
        gone = {f.name for f in withheld}
        delivered = [f for f in request.record.fields if f.name not in gone]
        deny_list = build_deny_list(withheld, delivered)
        allow = _allow_keys(delivered)

        def free_text(value: str, category: DataCategory) -> tuple[str, int]:
            if not is_free_text(value, category):
                return value, 0
            return self.scrub(value, deny_list, allow)

        return free_text


_default: FreeTextScrubber | None = None
_default_lock = threading.Lock()


def default_scrubber() -> FreeTextScrubber:
    """The process-wide scrubber, built on first use (never at import time)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = FreeTextScrubber()
        return _default
