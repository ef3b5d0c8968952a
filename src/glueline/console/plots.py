"""Plots as data for an inline SVG (templates/macros.html ``plot``): points scaled into a fixed box, with
axis ticks. Drawn on the server, so that a page needs no script and no library from anywhere."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

WIDTH, HEIGHT = 560, 220
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 12, 28  # margins for the axes' labels


@dataclass(frozen=True)
class Point:
    when: datetime
    value: float
    label: str  # shown on hover (an SVG <title>)
    marked: bool = False  # drawn in red: an outlier


@dataclass
class Plot:
    key: str  # the figure's id
    title: str
    kind: str  # "line" (a series over time) or "scatter" (one point per file or run)
    points: list[tuple[float, float, str, bool]] = field(default_factory=list)  # x, y in the box
    x_ticks: list[tuple[float, str, str]] = field(default_factory=list)  # x, text, text-anchor
    y_ticks: list[tuple[float, str]] = field(default_factory=list)
    width: int = WIDTH
    height: int = HEIGHT

    @property
    def polyline(self) -> str:
        return " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in self.points)

    @property
    def box(self) -> dict[str, float]:
        return {"left": LEFT, "right": self.width - RIGHT, "top": TOP, "bottom": self.height - BOTTOM}


def plot(key: str, title: str, kind: str, points: list[Point], y_format: Callable[[float], str] = str) -> Plot:
    """``points`` scaled: time left to right, zero at the bottom (values are counts and rates)."""
    result = Plot(key, title, kind)
    if not points:
        return result
    points = sorted(points, key=lambda p: p.when)
    start, end = points[0].when.timestamp(), points[-1].when.timestamp()
    top = max(p.value for p in points) or 1.0
    box = result.box

    def x(moment: float) -> float:
        span = end - start
        return (
            (box["left"] + box["right"]) / 2
            if span == 0
            else box["left"] + (moment - start) / span * (box["right"] - box["left"])
        )

    def y(value: float) -> float:
        return box["bottom"] - value / top * (box["bottom"] - box["top"])

    result.points = [(x(p.when.timestamp()), y(p.value), p.label, p.marked) for p in points]
    result.y_ticks = [(y(top * f), y_format(top * f)) for f in (0, 0.5, 1)]
    moments = sorted({start, end})
    anchors = ["middle"] if len(moments) == 1 else ["start", "end"]  # inside the box at either end
    result.x_ticks = [
        (x(m), datetime.fromtimestamp(m, points[0].when.tzinfo).strftime("%m-%d %H:%M"), anchor)
        for m, anchor in zip(moments, anchors, strict=True)
    ]
    return result
