"""The S4 patterns over digit windows find exactly what they find over the whole text.

The reference below runs every digit-bearing Presidio recognizer over the whole text, as
`AnalyzerEngine` did; the scrubber runs them over `digit_windows`. Both are compared on the
labelled corpus, on the benchmark's narratives and on generated text built to stress the
window edges: cue words far from their date, runs of spaces, tabs and line breaks, digits
glued to letters, numbers split over several tokens, markers, non-ASCII digits and letters.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from presidio_analyzer import EntityRecognizer

from sharinghub.redaction.corpus import generate as corpus
from sharinghub.redaction.digit_windows import JOIN, _digit_runs, digit_windows
from sharinghub.redaction.free_text import SCORE_THRESHOLD, FreeTextScrubber
from sharinghub.tools.bench.generator import generate as bench_load

Span = tuple[str, int, int]


@pytest.fixture(scope="module")
def scrubber() -> FreeTextScrubber:
    return FreeTextScrubber()


def whole_text_findings(scrubber: FreeTextScrubber, text: str) -> set[Span]:
    results = [
        r
        for recognizer in scrubber._digit_bearing
        for r in recognizer.analyze(text, recognizer.supported_entities, None)
        if r.score >= SCORE_THRESHOLD
    ]
    return {(r.entity_type, r.start, r.end) for r in EntityRecognizer.remove_duplicates(results)}


def windowed_findings(scrubber: FreeTextScrubber, text: str) -> set[Span]:
    return {
        (f.entity, f.start, f.end)
        for f in scrubber.findings(text)
        if f.entity != "EMAIL_ADDRESS"  # looked for around each "@", not in windows
    }


def test_corpus_and_bench_narratives_find_the_same(scrubber: FreeTextScrubber) -> None:
    texts = [case.narrative for case in corpus(150)]
    texts += [
        f.value
        for r in bench_load(150).requests
        for f in r.record.fields
        if f.category.value == "case_narrative"
    ]
    windowed = 0
    for text in texts:
        windows = digit_windows(text)
        windowed += windows is not None and len(windows.text) < len(text)
        assert windowed_findings(scrubber, text) == whole_text_findings(scrubber, text)
    assert windowed > len(texts) // 3, "most narratives are scanned in windows, not whole"


FILLER = "one two three four five six seven eight nine ten eleven twelve thirteen "


@pytest.mark.parametrize(
    "core",
    [
        "NI number AB 12 34 56 C noted",  # suffix letter a token after the last digit
        "ni ab 12 34 56 d.",
        "date of birth is July 2, 1988",  # cue five tokens before the first digit
        "date of birth  :   July 2nd,      1988",
        "d.o.b. - Sept. 2nd 1988",
        "social security number is 219099999",
        "call + 44 7700 900188 today",
        "NHS 999 000 0018 checked",
        "born\non 2 July 1988",  # a line break the patterns do not cross
    ],
)
def test_matches_reaching_far_from_their_digits_are_found(
    scrubber: FreeTextScrubber, core: str
) -> None:
    text = FILLER + core + " " + FILLER
    expected = whole_text_findings(scrubber, text)
    assert windowed_findings(scrubber, text) == expected
    if "\n" not in core:
        assert expected, "the example must hold a match"


TOKENS = st.sampled_from(
    [
        "born",
        "Born",
        "DOB:",
        "d.o.b.",
        "date",
        "of",
        "birth",
        "birthday",
        "birthdate",
        "is",
        "was",
        "on",
        "in",
        ":",
        "-",
        "–",
        "SSN",
        "ss#",
        "social",
        "security",
        "number",
        "NI",
        "AB",
        "ab",
        "C",
        "d",
        "July",
        "Sept.",
        "2nd",
        "02/07/1988",
        "1988-07-02",
        "7-2-88",
        "1988",
        "12",
        "34",
        "56",
        "219-09-9999",
        "219099999",
        "999",
        "000",
        "0018",
        "9990000018",
        "07700",
        "900188",
        "+44",
        "(0)",
        "(01632)",
        "960123",
        "+1",
        "(201)",
        "555-0123",
        "201.555.0123",
        "1-201-555-0123",
        "x7700900188",
        "7700900188y",
        "Zoë",
        "٣٤٥",  # Arabic-Indic digits are digits too
        "[redacted]",
        "the",
        "(",
        ")",
        ",",
        ".",
        "call",
        "on",
    ]
)
SPACES = st.sampled_from([" ", " ", " ", "  ", "     ", "\t", "\n", " \n ", "\u00a0", ""])


@settings(max_examples=600, deadline=None)
@given(st.lists(st.tuples(TOKENS, SPACES), min_size=1, max_size=60))
def test_generated_text_finds_the_same(pieces: list[tuple[str, str]]) -> None:
    scrubber = _shared()
    text = "".join(token + space for token, space in pieces)
    assert windowed_findings(scrubber, text) == whole_text_findings(scrubber, text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("0123456789 ab\n\t-./()+:٣"), max_size=200))
def test_random_digit_text_finds_the_same(text: str) -> None:
    scrubber = _shared()
    assert windowed_findings(scrubber, text) == whole_text_findings(scrubber, text)


@given(st.text(max_size=200))
def test_digit_runs_are_the_regex_runs(text: str) -> None:
    assert _digit_runs(text) == [m.span() for m in re.finditer(r"\d+", text)]


def test_windows_start_and_end_at_whitespace_and_map_back() -> None:
    words = ["note" if i % 2 else "word" for i in range(60)]
    words[30] = "07700 900188"
    text = " ".join(words)
    windows = digit_windows(text)
    assert windows is not None and windows.text.count(JOIN) == 0
    assert "07700 900188" in windows.text
    lo = windows.origins[0]
    assert text[lo - 1] == " " and text[lo + len(windows.text)] == " "
    at = windows.text.index("07700")
    assert windows.origin(at, at + 12) == (text.index("07700"), text.index("07700") + 12)


def test_text_without_digits_has_no_windows() -> None:
    assert digit_windows("No numbers at all in this note.") is None


_SCRUBBER: FreeTextScrubber | None = None


def _shared() -> FreeTextScrubber:
    global _SCRUBBER
    if _SCRUBBER is None:
        _SCRUBBER = FreeTextScrubber()
    return _SCRUBBER
