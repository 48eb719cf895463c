"""The order in which the bench's alternated comparisons (tracing on/off, 1 against N
processes per stage) run their bursts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sharinghub.tools.bench.runner import Bench, BenchConfig, mirrored_rounds


def test_rounds_mirror_so_each_side_comes_first_in_turn() -> None:
    assert mirrored_rounds(["on", "off"], 2) == [(0, "on"), (0, "off"), (1, "off"), (1, "on")]
    assert [side for _, side in mirrored_rounds(["1", "2"], 3)] == ["1", "2", "2", "1", "1", "2"]


@pytest.mark.parametrize("repeats", [2, 4, 6])
def test_a_steady_drift_weighs_on_every_side_alike_over_pairs_of_rounds(repeats: int) -> None:
    # slot k of the run costs k more (the machine slowing down steadily): each side's sum of
    # slots is the same, which running A B, A B … would not give (B always one slot later)
    slots: dict[str, int] = {"on": 0, "off": 0}
    for k, (_, side) in enumerate(mirrored_rounds(["on", "off"], repeats)):
        slots[side] += k
    assert slots["on"] == slots["off"]


def test_every_side_runs_repeats_times_and_one_round_is_the_sides_in_order() -> None:
    order = mirrored_rounds(["a", "b", "c"], 1)
    assert order == [(0, "a"), (0, "b"), (0, "c")]
    sides = [side for _, side in mirrored_rounds(["a", "b", "c"], 5)]
    assert {side: sides.count(side) for side in "abc"} == {"a": 5, "b": 5, "c": 5}


def test_the_bench_starts_its_hubs_in_mirrored_rounds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[tuple[str, dict[str, Any]]] = []

    def with_hub(self: Bench, phase: str, measure: Any, load: Any, **options: Any) -> str:
        started.append((phase, options))
        return phase

    monkeypatch.setattr(Bench, "with_hub", with_hub)
    bench = Bench(BenchConfig(requests=5, out_dir=tmp_path))
    runs = bench.alternated_bursts(
        "tracing", {"on": {"tracing": True}, "off": {"tracing": False}}, repeats=2
    )
    assert started == [
        ("tracing-on", {"tracing": True}),
        ("tracing-off", {"tracing": False}),
        ("tracing-off", {"tracing": False}),
        ("tracing-on", {"tracing": True}),
    ]
    assert runs == {"on": ["tracing-on", "tracing-on"], "off": ["tracing-off", "tracing-off"]}
