"""Leak measurement: no withheld value survives S3 + S4 on the labelled fictional corpus."""

from __future__ import annotations

import pytest

from sharinghub.redaction.corpus import LabelledCase, generate, leaks
from sharinghub.redaction.free_text import FreeTextScrubber
from sharinghub.redaction.pseudonyms import new_pseudonym
from sharinghub.redaction.rules import redact

N_CASES = 300


@pytest.fixture(scope="module")
def corpus() -> list[LabelledCase]:
    return generate(N_CASES)


@pytest.fixture(scope="module")
def scrubber() -> FreeTextScrubber:
    return FreeTextScrubber()


def test_corpus_is_reproducible_and_labels_point_at_their_text(
    corpus: list[LabelledCase],
) -> None:
    assert [c.narrative for c in generate(5)] == [c.narrative for c in corpus[:5]]
    for case in corpus:
        text = case.narrative
        assert all(text[m.start : m.end] == m.text for m in case.mentions)
    words = sorted(len(c.narrative.split()) for c in corpus)
    assert 120 <= words[len(words) // 2] <= 190  # ~150-word narratives


def test_s3_alone_leaks_on_this_corpus(corpus: list[LabelledCase]) -> None:
    """The corpus holds forms only S4 finds, so it can tell the two apart."""
    found = [
        leak
        for case in corpus
        for leak in leaks(
            case,
            redact(
                case.request,
                case.decision,
                pseudonym=new_pseudonym(),
                now=case.request.requested_at,
            ),
        )
    ]
    assert any(leak.field is not None for leak in found)  # withheld values in other forms
    assert any(leak.field is None for leak in found)  # PII held in no field


def test_zero_leaks_with_the_free_text_pass(
    corpus: list[LabelledCase], scrubber: FreeTextScrubber
) -> None:
    found = []
    for case in corpus:
        result = redact(
            case.request,
            case.decision,
            pseudonym=new_pseudonym(),
            now=case.request.requested_at,
            free_text=scrubber.scrub_pass(case.request, case.withheld_fields()),
        )
        found += [(case.request.request_id, leak) for leak in leaks(case, result)]
    assert found == []
