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
appear in order, compared by Unicode casefold, separated only by runs (possibly empty) of
*separator characters*. Equivalently: delete the separators from both, casefold both, and
look for a substring. The separators are `BASE_SEPARATORS` (white space, hyphens and
dashes, ``. / \\ ( ) _ , : ; ' ’ + #``) plus every other character found inside a withheld
value of the same request (so the literal value always matches, as S3 requires). This
catches "07700 900188" written "07700900188", "07700-900-188" or "(07700) 900 188", a date
"1988-07-02" written "1988/07/02" or "1988.07.02", and a name in another case or with
different spacing. Existing ``[redacted]`` markers are opaque: nothing is matched inside or
across one, and the marker itself is never scrubbed.

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
Each delivered value is normalised once (separators deleted, casefolded, with a map back
to original positions). Every occurrence of every needle is found with ``str.find``,
overlapping ones included; the bounded kinds are checked at their ends in the original
text; all occurrence spans are merged and each merged span becomes one marker. After that
no full value can remain: the output is pieces of the input separated by opaque markers,
an occurrence would lie inside one piece, hence be an occurrence of the input — and every
one of those was covered. Replacing text with a marker can create a *new* whole token or
word, but only beside a replaced span whose outside neighbour is a letter or digit (it now
touches ``[`` or ``]``); then the value is searched again, until no such neighbour is left
(at most `_MAX_PASSES`, then the value fails closed). A final independent check of the
full values fails closed too (rule ``S3.fail_closed``) — it should never fire.

Speed: no regex is compiled per request. A value that mentions nothing withheld costs one
``translate`` + ``casefold`` and one ``in`` test per needle, all in C.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import compress
from operator import not_
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
from sharinghub.redaction.chars import (
    alnum_only,
    ascii_bytes,
    delete_and_lower,
    has_alnum,
    inner_non_alnum,
)
from sharinghub.redaction.notices import notices_for
from sharinghub.redaction.pseudonyms import is_pseudonym

__all__ = [
    "BASE_SEPARATORS",
    "DEIDENTIFIED_EXCLUDED",
    "MARKER",
    "NAME_WORD_MIN_LETTERS",
    "SHORT_VALUE_MAX_ALNUM",
    "FreeTextPass",
    "ScrubPlan",
    "build_plan",
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
    """One thing to find: its key (normalised form) and how its ends must be bounded."""

    key: str  # casefolded alphanumerics of the value (letters of a name word)
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
    _delete_ascii: bytes  # the ASCII separators (all an ASCII text can hold)

    def normalise(self, text: str) -> str:
        """Markers opaque, separators removed, casefolded: the text S3 searches."""
        masked = _mask(text)
        if masked.isascii():
            return delete_and_lower(masked, self._delete_ascii)
        return masked.translate(self._delete).casefold()

    def normalise_with_positions(self, text: str) -> tuple[str, list[int]]:
        """`normalise` plus, for each normalised character, its index in ``text``."""
        masked = _mask(text)
        if masked.isascii():  # fast path: lower() keeps length and equals casefold()
            low = masked.lower()
            # compress/map run in C: much faster than a comprehension over a narrative.
            keep = list(map(not_, map(self.separators.__contains__, low)))
            return delete_and_lower(low, self._delete_ascii), list(compress(range(len(low)), keep))
        chars: list[str] = []
        positions: list[int] = []
        for i, c in enumerate(masked):
            if c in self.separators:
                continue
            folded = c.casefold()  # may be longer ("ß" → "ss"): every piece maps to i
            chars.append(folded)
            positions.extend([i] * len(folded))
        return "".join(chars), positions


def _mask(text: str) -> str:
    # Same length, so indices stay valid; an opaque character is neither alnum nor separator.
    return text.replace(MARKER, _OPAQUE * len(MARKER))


def _words(value: str) -> list[str]:
    return [w.replace("\u2019", "'").casefold() for w in _WORD.findall(value)]


def build_plan(
    withheld_values: Iterable[str], withheld_names: Iterable[str], delivered_names: Iterable[str]
) -> ScrubPlan:
    """Collect the S3 needles of one request.

    ``withheld_values``: every withheld field value (and the subject id if pseudonymised);
    ``withheld_names``: values of withheld ``*_name`` fields; ``delivered_names``: values
    of delivered ``*_name`` fields (their words are spared by the name-word rule).
    """
    values = [v for v in withheld_values if has_alnum(v)]
    separators = set(BASE_SEPARATORS)
    for value in values:
        separators |= inner_non_alnum(value)
    separators.discard(_OPAQUE)

    needles: dict[str, _Needle] = {}

    def add(key: str, kind: _Kind) -> None:
        # Per key the least bounded kind wins: a full value covers every place a word would.
        rank = ("full_value", "name_word", "short_value")
        current = needles.get(key)
        if current is None or rank.index(kind) < rank.index(current.kind):
            needles[key] = _Needle(key, kind)

    for value in values:
        chars = alnum_only(value)
        add(chars.casefold(), "full_value" if len(chars) > SHORT_VALUE_MAX_ALNUM else "short_value")

    spared_words: set[str] = set()
    spared_parts: set[str] = set()
    for value in delivered_names:
        spared_words.update(_words(value))
        spared_parts.update(p.casefold() for p in _LETTER_RUN.findall(value))
    for value in withheld_names:
        for word in _WORD.findall(value):
            letters = "".join(c for c in word if c.isalpha())
            if len(letters) >= NAME_WORD_MIN_LETTERS and _words(word)[0] not in spared_words:
                add(letters.casefold(), "name_word")
            for part in _LETTER_RUN.findall(word):
                if len(part) >= NAME_WORD_MIN_LETTERS and part.casefold() not in spared_parts:
                    add(part.casefold(), "name_word")

    # Longest first, so a merged span is attributed to the longest value it contains.
    ordered = sorted(needles.values(), key=lambda n: (-len(n.key), n.key))
    frozen = frozenset(separators)
    return ScrubPlan(
        needles=tuple(ordered),
        separators=frozen,
        _delete=dict.fromkeys(map(ord, frozen)),
        _delete_ascii=ascii_bytes(frozen),
    )


def _bounded_ok(text: str, start: int, end: int, kind: _Kind) -> bool:
    """Whole token (short values) or whole word (name words) at ``text[start:end]``."""
    if kind == "full_value":
        return True
    inside = str.isalnum if kind == "short_value" else str.isalpha
    return not (start > 0 and inside(text[start - 1])) and not (
        end < len(text) and inside(text[end])
    )


def _spans(text: str, plan: ScrubPlan) -> list[tuple[int, int, _Kind]]:
    """Every occurrence of every needle in ``text`` (overlaps included), merged.

    Returns disjoint ``(start, end, kind)`` spans of the original text, sorted, where kind
    is that of the longest occurrence in the span.
    """
    norm = plan.normalise(text)
    present = [n for n in plan.needles if n.key in norm]
    if not present:
        return []
    norm, positions = plan.normalise_with_positions(text)
    found: list[tuple[int, int, int, _Kind]] = []  # start, -length, end, kind
    for needle in present:
        size = len(needle.key)
        at = norm.find(needle.key)
        while at >= 0:
            start, end = positions[at], positions[at + size - 1] + 1
            if _bounded_ok(text, start, end, needle.kind):
                found.append((start, -size, end, needle.kind))
            at = norm.find(needle.key, at + 1)
    found.sort()
    merged: list[tuple[int, int, _Kind]] = []
    for start, _, end, kind in found:
        if merged and start < merged[-1][1]:
            last_start, last_end, last_kind = merged[-1]
            merged[-1] = (last_start, max(last_end, end), last_kind)
        else:
            merged.append((start, end, kind))
    return merged


def scrub(text: str, plan: ScrubPlan) -> tuple[str, Counter[str]]:
    """Apply S3 to one delivered value; return the new value and markers inserted per kind.

    Kinds: ``full_value``, ``short_value``, ``name_word``, ``fail_closed``.
    """
    counts: Counter[str] = Counter()
    for _ in range(_MAX_PASSES):
        spans = _spans(text, plan)
        if not spans:
            break
        pieces: list[str] = []
        done = 0
        rescan = False
        for start, end, kind in spans:
            pieces += [text[done:start], MARKER]
            done = end
            counts[kind] += 1
            # A letter or digit next to the span now borders the marker: it may have become
            # a whole token or word that was not one before, so look again.
            rescan |= (start > 0 and text[start - 1].isalnum()) or (
                end < len(text) and text[end].isalnum()
            )
        pieces.append(text[done:])
        text = "".join(pieces)
        if not rescan:
            break
    else:
        counts["fail_closed"] += 1
        return MARKER, counts

    # Belt and braces: the search above is exact for full values, so this never fires
    # unless that reasoning is broken; if it is, fail closed rather than leak.
    if counts:
        norm = plan.normalise(text)
        if any(n.key in norm for n in plan.needles if not n.bounded):
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
