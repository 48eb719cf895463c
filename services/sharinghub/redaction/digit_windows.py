"""Only the text around digits can hold a phone, SSN, NHS, NINO or date of birth.

Every match of those S4 patterns holds a digit, begins at most `TOKENS_BEFORE`
whitespace-separated tokens before its first digit (the longest lead is a date-of-birth cue:
"date of birth is July 2, …") and ends at most `TOKENS_AFTER` tokens after its last (a NINO's
suffix letter: "… 34 56 C"); between two digits of one match there are at most two tokens
("2nd of July 1988"). So the patterns are run over the *windows* of the text around its
digits rather than over the whole of it: a typical 150-word case note has a few such windows,
a tenth of its length, and S4 costs ~3× less (measured on the benchmark's narratives: 200 →
61 µs per note, windows included).

It finds exactly what a scan of the whole text finds, because

* a window covers whole tokens (it starts after and ends before whitespace, or at an end of
  the text), and every pattern treats an end of text exactly like whitespace next to it (the
  lookarounds and ``\\b`` at a match's edges only ask "not a word character");
* windows closer than `TOKENS_BEFORE` + `TOKENS_AFTER` tokens are merged, so no match can start
  in one window and end in another;
* the windows are joined with a blank line, and no pattern matches across a line break (nor
  could it reach a digit: a window's edges are whole tokens away from any digit).

`tests/unit/test_digit_windows.py` checks the equivalence on the labelled corpus and on
adversarial generated text.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass

TOKENS_BEFORE = 8
TOKENS_AFTER = 3
JOIN = "\n\n"
# Above this share of the text, windows would save little: scan the text itself.
MAX_SHARE = 0.6

_DIGITS = re.compile(r"\d+")
# ASCII text: each byte becomes b"1" (an ASCII digit) or b"0", so runs are found by bytes.find.
_DIGIT_MASK = bytes(0x31 if 0x30 <= b <= 0x39 else 0x30 for b in range(256))
# From a position: the rest of its token, then up to n more whitespace-separated tokens.
_BEFORE = re.compile(rf"\S*(?:\s+\S+){{0,{TOKENS_BEFORE}}}")  # run over the reversed text
_AFTER = re.compile(rf"\S*(?:\s+\S+){{0,{TOKENS_AFTER}}}")


@dataclass(frozen=True, slots=True)
class Windows:
    """The windows of one text joined into `text`, with where each came from."""

    text: str
    starts: tuple[int, ...]  # where each window starts in `text`
    origins: tuple[int, ...]  # where each window starts in the original text

    def origin(self, start: int, end: int) -> tuple[int, int]:
        """The original-text span of the span ``text[start:end]``."""
        first = bisect_right(self.starts, start) - 1
        last = bisect_right(self.starts, max(start, end - 1)) - 1
        return (
            self.origins[first] + start - self.starts[first],
            self.origins[last] + end - self.starts[last],
        )


def digit_windows(text: str) -> Windows | None:
    """The windows of `text` around its digits; None when it has no digit at all.

    When the windows would cover most of the text, the one window is the text itself.
    """
    runs = _digit_runs(text)
    if not runs:
        return None
    size = len(text)
    backwards = text[::-1]
    spans: list[list[int]] = []
    for run_start, run_end in runs:
        if spans and run_start < spans[-1][1]:  # inside the last window: only extend it
            spans[-1][1] = max(spans[-1][1], _reach(_AFTER, text, run_end))
            continue
        # a window starts after whitespace (or at 0) and ends before it (or at the end)
        lo = size - _reach(_BEFORE, backwards, size - run_start)
        hi = _reach(_AFTER, text, run_end)
        if spans and lo <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], hi)
        else:
            spans.append([lo, hi])
    if sum(hi - lo for lo, hi in spans) > MAX_SHARE * len(text):
        return Windows(text, (0,), (0,))
    pieces = [text[lo:hi] for lo, hi in spans]
    starts, at = [], 0
    for piece in pieces:
        starts.append(at)
        at += len(piece) + len(JOIN)
    return Windows(JOIN.join(pieces), tuple(starts), tuple(lo for lo, _ in spans))


def _digit_runs(text: str) -> list[tuple[int, int]]:
    """(start, end) of every run of digits (Unicode decimal digits, as ``\\d``)."""
    if not text.isascii():
        return [m.span() for m in _DIGITS.finditer(text)]
    mask = text.encode("ascii").translate(_DIGIT_MASK)
    runs = []
    start = mask.find(b"1")
    while start >= 0:
        end = mask.find(b"0", start)
        if end < 0:
            end = len(mask)
        runs.append((start, end))
        start = mask.find(b"1", end)
    return runs


def _reach(tokens: re.Pattern[str], text: str, at: int) -> int:
    """Where `tokens` (which also matches nothing) stops when run from `at`."""
    found = tokens.match(text, at)
    return found.end() if found else at
