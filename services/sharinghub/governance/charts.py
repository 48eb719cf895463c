"""Server-side SVG charts (stacked bars over time): no JavaScript library, no network.

Every bar is a ``<rect class="bar">`` with a ``<title>`` tooltip naming its period, group and
count. Groups beyond the palette's size are folded into ``other``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape

from sharinghub.governance.reports import TotalsReport

PALETTE = (
    "#2f6db5",
    "#e0802b",
    "#3a9a5b",
    "#c8413f",
    "#7d5ab5",
    "#8c5a4a",
    "#d36bb3",
    "#5f6b73",
    "#b5a51f",
    "#1fa6b5",
    "#4a4a8a",
    "#9c6d1f",
    "#2a7f7f",
    "#a83f6f",
)
OTHER = "other"
OTHER_COLOUR = "#b8bec4"


@dataclass(frozen=True)
class Series:
    """One group's counts, one per period label."""

    key: str
    colour: str
    values: tuple[int, ...]


def colour_map(keys_largest_first: Sequence[str]) -> dict[str, str]:
    """A colour per group, largest first; later groups have none (they become ``other``).

    Both charts of a page use one map, so a group has the same colour in each.
    """
    return {k: PALETTE[i] for i, k in enumerate(keys_largest_first[: len(PALETTE)])}


def series_of(
    report: TotalsReport, labels: Sequence[str], colours: dict[str, str] | None = None
) -> list[Series]:
    """The report's non-empty groups as series over ``labels``, in the colour map's order."""
    colours = colours if colours is not None else colour_map(list(report.by_key))
    index = {label: i for i, label in enumerate(labels)}
    values: dict[str, list[int]] = {k: [0] * len(labels) for k in [*colours, OTHER]}
    for row in report.rows:
        if row.period not in index:
            continue
        key = row.key if row.key in colours else OTHER
        values[key][index[row.period]] += row.count
    series = [Series(k, colour, tuple(values[k])) for k, colour in colours.items()]
    series.append(Series(OTHER, OTHER_COLOUR, tuple(values[OTHER])))
    return [s for s in series if any(s.values)]


def nice_max(value: int) -> tuple[int, int]:
    """(axis maximum, tick step) with a round step and 3–6 ticks."""
    if value <= 0:
        return 1, 1
    raw = value / 4
    magnitude = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    step = next(s * magnitude for s in (1, 2, 5, 10) if s * magnitude >= raw)
    step = max(int(step), 1)
    return step * math.ceil(value / step), step


def stacked_bars(
    labels: Sequence[str],
    series: Iterable[Series],
    *,
    title: str,
    width: int = 1000,
    height: int = 250,
) -> str:
    """An accessible SVG stacked bar chart (``role="img"`` with a title)."""
    series = list(series)
    left, right, top, bottom = 44, 12, 16, 54
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(s.values[i] for s in series) for i in range(len(labels))]
    y_max, step = nice_max(max(totals, default=0))
    out = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    for tick in range(0, y_max + 1, step):
        y = top + plot_h - plot_h * tick / y_max
        out.append(
            f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" '
            'stroke="#e3e6ea" stroke-width="1"/>'
        )
        out.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="#5b6570">{tick}</text>'
        )
    if not labels:
        out.append(
            f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" fill="#5b6570">'
            "No decisions in this range</text></svg>"
        )
        return "".join(out)
    slot = plot_w / len(labels)
    bar_w = max(min(slot * 0.7, 48), 1.5)
    label_every = max(1, math.ceil(len(labels) / 20))
    for i, label in enumerate(labels):
        x = left + slot * i + (slot - bar_w) / 2
        y_base: float = top + plot_h
        for s in series:
            n = s.values[i]
            if n == 0:
                continue
            h = plot_h * n / y_max
            y_base -= h  # stack upwards from the axis
            out.append(
                f'<rect class="bar" data-key="{escape(s.key)}" x="{x:.1f}" y="{y_base:.1f}" '
                f'width="{bar_w:.1f}" height="{h:.1f}" fill="{s.colour}">'
                f"<title>{escape(label)} · {escape(s.key)}: {n}</title></rect>"
            )
        if i % label_every == 0:
            cx = left + slot * i + slot / 2
            out.append(
                f'<text x="{cx:.1f}" y="{top + plot_h + 16}" text-anchor="end" font-size="11" '
                f'fill="#5b6570" transform="rotate(-35 {cx:.1f} {top + plot_h + 16})">'
                f"{escape(label)}</text>"
            )
    out.append(
        f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" '
        'stroke="#8a949e" stroke-width="1"/></svg>'
    )
    return "".join(out)


def legend(series: Iterable[Series]) -> str:
    """HTML legend: an SVG swatch (no inline style, so the CSP can forbid them) and name."""
    items = []
    for s in series:
        total = sum(s.values)
        items.append(
            f'<li><svg width="12" height="12" aria-hidden="true"><rect width="12" height="12" '
            f'rx="2" fill="{s.colour}"/></svg> {escape(s.key)} <span class="muted">{total}'
            "</span></li>"
        )
    return f'<ul class="legend">{"".join(items)}</ul>'
