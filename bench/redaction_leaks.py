"""Leak measurement of the redaction rules, with and without the S4 free-text pass.

On the labelled fictional corpus (`sharinghub.redaction.corpus`, Faker, fixed seed) it
prints:

* leaks — withheld values, and personal data held in no field, still present in the
  delivered payload (target 0 with S4), for S3 alone and for S3 + S4;
* recall and precision of the Presidio pattern recognizers alone on the raw narratives,
  per kind (target recall ≥ 0.99). A labelled mention counts as found if findings cover
  all of it; a finding counts as correct if it overlaps a labelled pattern mention;
* median and p99 milliseconds per message of the whole `redact()` (target median ≤ 2 ms
  with ~150-word narratives), with and without S4 (building the per-message pass
  included).

Run: ``python bench/redaction_leaks.py [n]`` (default 1000 records).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections import Counter

from sharinghub.redaction.corpus import PATTERN_KINDS, LabelledCase, generate, leaks
from sharinghub.redaction.free_text import FreeTextScrubber
from sharinghub.redaction.pseudonyms import new_pseudonym
from sharinghub.redaction.rules import FreeTextPass, redact


def _out(line: str = "") -> None:
    sys.stdout.write(line + "\n")


def _ms(label: str, samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p99 = ms[min(len(ms) - 1, round(0.99 * len(ms)))]
    return f"{label:<34} median {statistics.median(ms):.3f} ms   p99 {p99:.3f} ms   (n={len(ms)})"


def _run(case: LabelledCase, scrubber: FreeTextScrubber | None) -> tuple[float, int, int]:
    """One redaction: seconds, leaks of withheld values, leaks of unfielded PII."""
    pseudonym = new_pseudonym()
    t0 = time.perf_counter()
    free_text: FreeTextPass | None = None
    if scrubber is not None:
        free_text = scrubber.scrub_pass(case.request, case.withheld_fields())
    result = redact(
        case.request,
        case.decision,
        pseudonym=pseudonym,
        now=case.request.requested_at,
        free_text=free_text,
    )
    elapsed = time.perf_counter() - t0
    found = leaks(case, result)
    return elapsed, sum(1 for x in found if x.field), sum(1 for x in found if not x.field)


def _detector_scores(cases: list[LabelledCase], scrubber: FreeTextScrubber) -> None:
    positives: Counter[str] = Counter()
    hits: Counter[str] = Counter()
    findings = correct = 0
    for case in cases:
        text = case.narrative
        spans = [(f.start, f.end) for f in scrubber.findings(text)]
        covered: set[int] = set()
        for start, end in spans:
            covered.update(range(start, end))
        labelled = [m for m in case.mentions if m.kind in PATTERN_KINDS]
        for m in labelled:
            if m.kind == "dob" and not m.cued:
                continue  # an uncued date is the deny-list's job, not a pattern's
            positives[m.kind] += 1
            hits[m.kind] += all(i in covered for i in range(m.start, m.end))
        findings += len(spans)
        correct += sum(1 for s, e in spans if any(s < m.end and m.start < e for m in labelled))
    total_p, total_h = sum(positives.values()), sum(hits.values())
    _out(f"pattern recall     {total_h}/{total_p} = {total_h / total_p:.4f}   (target >= 0.99)")
    for kind in sorted(positives):
        _out(f"  {kind:<6} {hits[kind]}/{positives[kind]} = {hits[kind] / positives[kind]:.4f}")
    _out(f"pattern precision  {correct}/{findings} = {correct / max(findings, 1):.4f}")


def main(n: int = 1000) -> None:
    """Generate the corpus, measure leaks, detector quality and time."""
    t0 = time.perf_counter()
    scrubber = FreeTextScrubber()
    _out(f"Presidio scrubber built in {(time.perf_counter() - t0) * 1000:.1f} ms")
    cases = generate(n)
    words = statistics.median(len(c.narrative.split()) for c in cases)
    mentions = sum(len(c.mentions) for c in cases)
    _out(f"corpus: {n} records, narrative {words} words median, {mentions} labelled mentions")
    for case in cases[:50]:  # warm-up
        _run(case, scrubber)
        _run(case, None)

    for label, which in (("S3 only", None), ("S3 + S4 (Presidio)", scrubber)):
        times: list[float] = []
        best: list[float] = []
        withheld_leaks = other_leaks = 0
        for case in cases:
            elapsed, w, o = _run(case, which)
            # Best of three filters out preemption on a busy machine.
            runs = [elapsed, _run(case, which)[0], _run(case, which)[0]]
            times.append(elapsed)
            best.append(min(runs))
            withheld_leaks += w
            other_leaks += o
        _out()
        _out(f"[{label}]")
        _out(f"leaks of withheld values: {withheld_leaks}   (target 0)")
        _out(f"unfielded PII left:       {other_leaks}")
        _out(_ms("redact() per message", times))
        _out(_ms("redact() per message, best of 3", best))
    _out()
    _out("[Presidio pattern recognizers alone, raw narratives]")
    _detector_scores(cases, scrubber)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
