"""The character-class helpers equal their plain-Python definitions, ASCII fast path or not."""

from __future__ import annotations

import string

from hypothesis import given
from hypothesis import strategies as st

from sharinghub.redaction.chars import (
    alnum_only,
    has_alnum,
    has_at_least_alnum,
    inner_non_alnum,
)

ASCII = st.text(alphabet=st.sampled_from(string.printable), max_size=300)
ANY = st.text(max_size=300)
MIXED = st.text(alphabet=st.sampled_from(string.printable + "éßŁ٣²½\u00a0\u2019"), max_size=300)


def inner_by_definition(value: str) -> set[str]:
    positions = [i for i, c in enumerate(value) if c.isalnum()]
    if not positions:
        return set()
    return {c for c in value[positions[0] : positions[-1] + 1] if not c.isalnum()}


@given(st.one_of(ASCII, ANY, MIXED))
def test_alnum_only_keeps_exactly_the_alphanumerics(value: str) -> None:
    assert alnum_only(value) == "".join(c for c in value if c.isalnum())


@given(st.one_of(ASCII, ANY, MIXED))
def test_inner_non_alnum_is_what_lies_between_the_first_and_last_alphanumeric(
    value: str,
) -> None:
    assert inner_non_alnum(value) == inner_by_definition(value)


@given(st.one_of(ASCII, ANY, MIXED), st.integers(min_value=1, max_value=8))
def test_at_least_n_alphanumerics(value: str, n: int) -> None:
    count = sum(c.isalnum() for c in value)
    assert has_at_least_alnum(value, n) is (count >= n)
    assert has_alnum(value) is (count >= 1)


def test_every_ascii_character_is_classified_as_str_isalnum_does() -> None:
    for code in range(128):
        c = chr(code)
        assert alnum_only(f"a{c}b") == ("a" + c + "b" if c.isalnum() else "ab")
        assert inner_non_alnum(f"a{c}b") == (set() if c.isalnum() else {c})
