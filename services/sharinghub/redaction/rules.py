"""Pure redaction rules (vocabulary.md table S): what the recipient receives, and nothing more.

``redact`` turns an approved request into a `DeliveryPayload` in three steps:

1. **Field reduction (S1)** — only fields whose category the policy allowed are delivered.
   As defence in depth it also drops categories the request did not ask for, hard blocks
   not covered by a judge's order, and identifying categories in a colleague consultation.
2. **Subject reference (S2)** — the subject id if `identity` is delivered, otherwise the
   one-time pseudonym given by the caller.
3. **Scrubbing (S3)** — every value of a *withheld* field (every record field not
   delivered, plus the subject id when it is pseudonymised) is replaced by ``[redacted]``
   wherever it occurs in a delivered value; words of withheld ``*_name`` fields too.

An optional free-text pass (``free_text``, e.g. Presidio) runs after S3 on each delivered
value; it is a second line of defence (S4), never a substitute for S3.

What "occurs" means (beyond the letter of S3, never less than it)
-----------------------------------------------------------------
*Full values.* A withheld value occurs in a text if the value's alphanumeric characters
appear in order, compared case-insensitively, separated only by runs (possibly empty) of
*separator characters*. The separators are `BASE_SEPARATORS` (white space, hyphens and
dashes, ``. / \\ ( ) _ , : ; ' ’ + #``) plus every other character found inside a withheld
value of the same request (so the literal value always matches, as S3 requires). This
catches "07700 900188" written "07700900188", "07700-900-188" or "(07700) 900 188", a date
"1988-07-02" written "1988/07/02" or "1988.07.02", and a name in another case or with
different spacing. ``[`` and ``]`` are never separators unless a withheld value contains
them, so the ``[redacted]`` marker stays opaque: a value can never be matched across it and
the marker itself is never scrubbed.

*Short values.* A value with at most `SHORT_VALUE_MAX_ALNUM` (3) alphanumeric characters
("M", "9", "son") is replaced only where it stands as a whole token (no letter or digit
directly before or after). Replacing every substring, as the letter of S3 reads, would
scrub "m" out of every word and "9" out of every date and number, turning the delivered
text into noise that hides nothing: a single letter inside another word does not disclose
the withheld value. Whole-token occurrences, which do disclose it, are all replaced.

*Name words.* For a withheld field whose name ends in ``_name``, each word of its value (a
maximal run of letters, apostrophes and hyphens) with at least three letters is replaced
wherever it stands with no letter directly before or after it; so are the parts of a
hyphenated or apostrophised word that have at least three letters ("Ellie-Mae" → "Ellie",
"Mae"), and possessives ("Connor's") lose the name. A word is spared if it equals
(case-insensitively) a word of a delivered ``*_name`` value (a part: a part of one).

Why the result is provably clean
--------------------------------
All patterns of a request are compiled into one alternation (longest first, marker first)
and each delivered value is scanned in one pass. A pass leaves no pattern occurrence that
lies in an unreplaced stretch of text: the scanner tries every position not inside an
earlier match, and markers cannot be crossed. Replacing text with a marker can create a
*new* whole-token or whole-word occurrence — but only next to a replaced span whose outside
neighbour is a letter or digit (that neighbour now touches ``[`` or ``]``); in that case
the value is rescanned, until a pass leaves no such neighbour (at most `_MAX_PASSES`, then
the value fails closed). Finally the result is checked independently: the value is normalised
(markers opaque, separators removed, Unicode casefold) and if any withheld full value is
still found there — e.g. through a case mapping the regex engine does not share, like
"ß"/"ss" — the whole delivered value is replaced by the marker (fail closed, rule
``S3.fail_closed``).

Speed: a normalised substring prefilter selects the few patterns that can occur in a
value, and compiled alternations are cached, so a value that mentions nothing withheld
costs two C-level string passes.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Literal

from sharinghub.contracts import (
    CaseRecord,
    DeliveredField,
    DeliveryPayload,
    ManifestEntry,
    PolicyDecision,
    RecordField,
    RedactionResult,
    SharingRequest,
)
from sharinghub.contracts.vocabulary import HARD_BLOCKS, DataCategory, Outcome, Purpose
from sharinghub.redaction.notices import notices_for
from sharinghub.redaction.pseudonyms import is_pseudonym

__all__ = [
    "BASE_SEPARATORS",
    "DEIDENTIFIED_EXCLUDED",
    "MARKER",
    "NAME_WORD_MIN_LETTERS",
    "SHORT_VALUE_MAX_ALNUM",
    "FreeTextPass",
    "delivered_fields",
    "redact",
    "scrub",
]

MARKER = "[redacted]"
BASE_SEPARATORS: frozenset[str] = frozenset(
    " \t\n\r\f\v\u00a0\u2007\u2009\u202f"  # white space, incl. no-break and thin spaces
    "-\u2010\u2011\u2012\u2013\u2014\u2212"  # hyphen, dashes, minus
    "./\\()_,:;'\u2019+#"
)
SHORT_VALUE_MAX_ALNUM = 3
NAME_WORD_MIN_LETTERS = 3
_MAX_PASSES = 8
_NAME_SUFFIX = "_name"
_OPAQUE = "\x00"  # stands in for a marker while normalising: never a separator, never alnum

# B7: a colleague consultation must not identify the client or anyone around them.
DEIDENTIFIED_EXCLUDED: frozenset[DataCategory] = frozenset(
    {
        DataCategory.IDENTITY,
        DataCategory.CONTACT,
        DataCategory.DEMOGRAPHICS,
        DataCategory.HOUSEHOLD_FAMILY,
        DataCategory.THIRD_PARTY_INFORMATION,
    }
)

FreeTextPass = Callable[[str, DataCategory], tuple[str, int]]
"""Second-line detector run after S3: ``(value, category) -> (new value, replacements)``.

It must be pure and must leave ``[redacted]`` markers intact.
"""

_WORD = re.compile(r"(?:[^\W\d_]|['\u2019-])+")  # S3 word: letters, apostrophes, hyphens
_LETTER_RUN = re.compile(r"[^\W\d_]+")
_NOT_AFTER_ALNUM = r"(?<![^\W_])"
_NOT_BEFORE_ALNUM = r"(?![^\W_])"
_NOT_AFTER_LETTER = r"(?<![^\W\d_])"
_NOT_BEFORE_LETTER = r"(?![^\W\d_])"

_Kind = Literal["full_value", "short_value", "name_word"]
_RULES: dict[str, str] = {
    "full_value": "S3.full_value",
    "short_value": "S3.full_value",
    "name_word": "S3.name_word",
    "fail_closed": "S3.fail_closed",
    "free_text": "S4.free_text",
}


# ------------------------------------------------------------------ S1: field reduction


def _removal_rule(request: SharingRequest, decision: PolicyDecision, field: RecordField) -> str:
    """Rule code why ``field`` is withheld, or ``""`` if it is delivered."""
    category = field.category
    if category not in decision.allowed_categories:
        return "S1.hard_block" if category in HARD_BLOCKS else "S1.not_allowed"
    # Defence in depth: policy computes allowed ⊆ requested, so these never fire on a
    # correct decision; they keep a faulty one from widening a disclosure.
    if category not in request.requested_categories:
        return "S1.not_requested"
    if category in HARD_BLOCKS and not _judge_order_covers(request, category):
        return "S1.hard_block"
    if request.purpose is Purpose.COLLEAGUE_CONSULTATION and category in DEIDENTIFIED_EXCLUDED:
        return "S2.deidentified"
    return ""


def _judge_order_covers(request: SharingRequest, category: DataCategory) -> bool:
    order = request.facts.court_order
    return (
        request.purpose is Purpose.COURT_ORDER
        and order is not None
        and order.issued_by_judge is True
        and category in order.covers_categories
    )


def delivered_fields(
    request: SharingRequest, decision: PolicyDecision
) -> tuple[list[RecordField], list[tuple[RecordField, str]]]:
    """Split the record into delivered fields and withheld fields with their rule codes.

    Record order is kept, so the payload lists fields as the source holds them.
    """
    kept: list[RecordField] = []
    removed: list[tuple[RecordField, str]] = []
    for field in request.record.fields:
        rule = _removal_rule(request, decision, field)
        if rule:
            removed.append((field, rule))
        else:
            kept.append(field)
    return kept, removed


def _identity_delivered(request: SharingRequest, decision: PolicyDecision) -> bool:
    probe = RecordField(name="subject_id", category=DataCategory.IDENTITY, value="")
    return _removal_rule(request, decision, probe) == ""


# ------------------------------------------------------------------ S3: scrubbing


@dataclass(frozen=True, slots=True)
class _Needle:
    """One thing to find: its prefilter key, its regex and whether it is boundary-bound."""

    key: str  # casefolded alphanumerics (letters for name words), the prefilter key
    pattern: str
    kind: _Kind

    @property
    def bounded(self) -> bool:
        return self.kind != "full_value"


@dataclass(frozen=True, slots=True)
class ScrubPlan:
    """Everything S3 needs for one request, built once and applied to each delivered value."""

    needles: tuple[_Needle, ...]
    separators: frozenset[str]
    _delete: dict[int, None]

    def normalise(self, text: str) -> str:
        """Markers opaque, separators removed, casefolded: where a full value must not occur."""
        return text.replace(MARKER, _OPAQUE).translate(self._delete).casefold()


def _alnum(value: str) -> list[str]:
    return [c for c in value if c.isalnum()]


def _inner_chars(value: str) -> set[str]:
    """Non-alphanumeric characters between the first and last alphanumeric of ``value``."""
    positions = [i for i, c in enumerate(value) if c.isalnum()]
    if not positions:
        return set()
    return {c for c in value[positions[0] : positions[-1] + 1] if not c.isalnum()}


def _sep_class(separators: frozenset[str]) -> str:
    return "[" + "".join(re.escape(c) for c in sorted(separators)) + "]*"


def _chars_pattern(chars: Sequence[str], sep: str) -> str:
    return sep.join(re.escape(c) for c in chars)


def _words(value: str) -> list[str]:
    return [w.replace("\u2019", "'").casefold() for w in _WORD.findall(value)]


def build_plan(
    withheld_values: Iterable[str], withheld_names: Iterable[str], delivered_names: Iterable[str]
) -> ScrubPlan:
    """Compile the S3 needles of one request.

    ``withheld_values``: every withheld field value (and the subject id if pseudonymised);
    ``withheld_names``: values of withheld ``*_name`` fields; ``delivered_names``: values
    of delivered ``*_name`` fields (their words are spared by the name-word rule).
    """
    values = [v for v in withheld_values if _alnum(v)]
    names = list(withheld_names)
    separators = set(BASE_SEPARATORS)
    for value in values:
        separators |= _inner_chars(value)
    separators.discard(_OPAQUE)
    frozen = frozenset(separators)
    sep = _sep_class(frozen)

    needles: dict[tuple[str, _Kind], _Needle] = {}
    for value in values:
        chars = _alnum(value)
        key = "".join(chars).casefold()
        body = _chars_pattern(chars, sep)
        if len(chars) > SHORT_VALUE_MAX_ALNUM:
            needles[(key, "full_value")] = _Needle(key, body, "full_value")
        else:
            pattern = _NOT_AFTER_ALNUM + body + _NOT_BEFORE_ALNUM
            needles[(key, "short_value")] = _Needle(key, pattern, "short_value")

    spared_words: set[str] = set()
    spared_parts: set[str] = set()
    for value in delivered_names:
        spared_words.update(_words(value))
        spared_parts.update(p.casefold() for p in _LETTER_RUN.findall(value))
    for value in names:
        for word in _WORD.findall(value):
            letters = [c for c in word if c.isalpha()]
            candidates: list[list[str]] = []
            if len(letters) >= NAME_WORD_MIN_LETTERS and _words(word)[0] not in spared_words:
                candidates.append(letters)
            for part in _LETTER_RUN.findall(word):
                if len(part) >= NAME_WORD_MIN_LETTERS and part.casefold() not in spared_parts:
                    candidates.append(list(part))
            for chars in candidates:
                key = "".join(chars).casefold()
                if (key, "full_value") in needles:
                    continue  # the unbounded full-value pattern already covers every place
                pattern = _NOT_AFTER_LETTER + _chars_pattern(chars, sep) + _NOT_BEFORE_LETTER
                needles[(key, "name_word")] = _Needle(key, pattern, "name_word")

    # Longest first: where two needles start at the same place, the longer one wins, so
    # overlapping values ("Gordon Feld" and "Feld") are covered in full.
    ordered = sorted(needles.values(), key=lambda n: (-len(n.key), n.bounded, n.key))
    return ScrubPlan(
        needles=tuple(ordered),
        separators=frozen,
        _delete=dict.fromkeys(map(ord, frozen)),
    )


@lru_cache(maxsize=512)
def _compile(patterns: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = [f"(?P<m>{re.escape(MARKER)})"]
    alternatives += [f"(?P<n{i}>{p})" for i, p in enumerate(patterns)]
    return re.compile("|".join(alternatives), re.IGNORECASE)


def scrub(text: str, plan: ScrubPlan) -> tuple[str, Counter[str]]:
    """Apply S3 to one delivered value; return the new value and replacements per kind.

    Kinds: ``full_value``, ``short_value``, ``name_word``, ``fail_closed``.
    """
    counts: Counter[str] = Counter()
    norm = plan.normalise(text)
    present = [n for n in plan.needles if n.key in norm]
    if not present:
        return text, counts
    regex = _compile(tuple(n.pattern for n in present))
    # Set during a pass when a replaced span touches a letter or digit outside it: the
    # neighbour now borders a marker, which may turn it into a new whole token or word.
    rescan = [False]

    def replace(match: re.Match[str]) -> str:
        group = match.lastgroup
        if group is None or group == "m":
            return match.group()  # an existing marker is kept as it is
        counts[present[int(group[1:])].kind] += 1
        source, start, end = match.string, match.start(), match.end()
        if (start > 0 and source[start - 1].isalnum()) or (
            end < len(source) and source[end].isalnum()
        ):
            rescan[0] = True
        return MARKER

    for _ in range(_MAX_PASSES):
        rescan[0] = False
        text = regex.sub(replace, text)
        if not rescan[0]:
            break
    else:
        counts["fail_closed"] += 1
        return MARKER, counts

    norm = plan.normalise(text)
    if any(n.key in norm for n in present if not n.bounded):
        counts["fail_closed"] += 1
        return MARKER, counts
    return text, counts


# ------------------------------------------------------------------ redact


def _plan_for(
    record: CaseRecord,
    kept: Sequence[RecordField],
    removed: Sequence[tuple[RecordField, str]],
    *,
    pseudonymised: bool,
) -> ScrubPlan:
    withheld_values = [f.value for f, _ in removed]
    if pseudonymised:
        withheld_values.append(record.subject_id)  # B7: the id must not survive in free text
    return build_plan(
        withheld_values,
        withheld_names=[f.value for f, _ in removed if f.name.endswith(_NAME_SUFFIX)],
        delivered_names=[f.value for f in kept if f.name.endswith(_NAME_SUFFIX)],
    )


def redact(
    request: SharingRequest,
    decision: PolicyDecision,
    *,
    pseudonym: str,
    now: datetime,
    free_text: FreeTextPass | None = None,
) -> RedactionResult:
    """Build exactly what the recipient receives (S1–S3) and the full audit manifest.

    ``pseudonym`` (from `new_pseudonym`) replaces the subject id unless `identity` is
    delivered; ``now`` stamps the result; ``free_text`` is an optional second-line
    detector run on each value after S3. Raises `ValueError` (naming no value) if the
    decision is not ``delivered`` or a needed pseudonym is malformed.
    """
    if decision.outcome is not Outcome.DELIVERED:
        raise ValueError("redaction needs a policy decision with outcome 'delivered'")
    identity = _identity_delivered(request, decision)
    if not identity and (not is_pseudonym(pseudonym) or pseudonym == request.subject_id):
        raise ValueError("a one-time pseudonym from new_pseudonym() is required")

    kept, removed = delivered_fields(request, decision)
    plan = _plan_for(request.record, kept, removed, pseudonymised=not identity)

    fields: list[DeliveredField] = []
    manifest: list[ManifestEntry] = []
    for field in kept:
        value, counts = scrub(field.value, plan)
        if free_text is not None:
            value, found = free_text(value, field.category)
            if found:
                counts["free_text"] += found
        fields.append(DeliveredField(name=field.name, category=field.category, value=value))
        total = sum(counts.values())
        rules = sorted({_RULES[kind] for kind, n in counts.items() if n})
        manifest.append(
            ManifestEntry(
                field_name=field.name,
                category=field.category,
                action="scrubbed" if total else "kept",
                rule="+".join(rules) if total else "S1.allowed",
                replacements=total,
            )
        )
    manifest.extend(
        ManifestEntry(field_name=f.name, category=f.category, action="removed", rule=rule)
        for f, rule in removed
    )
    if not identity:
        manifest.append(
            ManifestEntry(
                field_name="subject_id",
                category=DataCategory.IDENTITY,
                action="pseudonymised",
                rule="S2",
            )
        )

    payload = DeliveryPayload(
        request_id=request.request_id,
        purpose=request.purpose.value,
        jurisdiction=request.jurisdiction.value,
        requester_agency_id=request.requester.agency_id,
        subject_ref=request.subject_id if identity else pseudonym,
        subject_ref_kind="subject_id" if identity else "pseudonym",
        fields=fields,
        notices=notices_for(decision.obligations),
    )
    return RedactionResult(
        payload=payload,
        manifest=manifest,
        pseudonym=None if identity else pseudonym,
        redacted_at=now,
    )
