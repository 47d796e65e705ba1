"""The traffic chart: requests and errors over time, drawn as inline SVG on the server.

No script and no stylesheet of its own: a bar per time slot (requests, and errors in
front of them in the error colour), a labelled axis, a ``<title>`` per bar for a pointer's
tooltip, and a text summary (``role="img"`` with ``aria-label``) for screen readers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ._html import Safe, el

__all__ = ["Slot", "traffic_chart"]

_WIDTH = 720
_HEIGHT = 200
_LEFT = 44  # room for the y labels
_BOTTOM = 28  # room for the x labels
_TOP = 10


@dataclass(frozen=True, slots=True)
class Slot:
    """One time slot of the chart: its label (start time) and what it counted."""

    label: str
    requests: int
    errors: int


def _nice_top(value: int) -> int:
    """The smallest of 1, 2, 5 × 10^n at or above ``value`` (at least 1)."""
    step = 1
    while True:
        for m in (1, 2, 5):
            if m * step >= value:
                return m * step
        step *= 10


def traffic_chart(slots: Sequence[Slot], *, title: str) -> Safe:
    """An SVG bar chart of ``slots`` (oldest first), scaled to the busiest slot."""
    total = sum(s.requests for s in slots)
    errors = sum(s.errors for s in slots)
    summary = f"{title}: {total} requests, {errors} errors, in {len(slots)} slots"
    top = _nice_top(max((s.requests for s in slots), default=0))
    plot_w = _WIDTH - _LEFT - 8
    plot_h = _HEIGHT - _TOP - _BOTTOM
    parts: list[Safe] = [el("title", None, summary)]
    for frac in (0, 0.5, 1):
        y = _TOP + plot_h * (1 - frac)
        parts.append(
            el(
                "line",
                {
                    "x1": _LEFT,
                    "x2": _WIDTH - 8,
                    "y1": f"{y:.1f}",
                    "y2": f"{y:.1f}",
                    "class": "grid",
                },
            )
        )
        parts.append(
            el(
                "text",
                {"x": _LEFT - 6, "y": f"{y + 4:.1f}", "text-anchor": "end", "class": "axis"},
                f"{top * frac:g}",
            )
        )
    width = plot_w / max(len(slots), 1)
    label_every = max(1, len(slots) // 6)
    for n, slot in enumerate(slots):
        x = _LEFT + n * width
        req_h = plot_h * slot.requests / top
        err_h = plot_h * slot.errors / top
        bar_w = max(width - 1.5, 1)
        tip = f"{slot.label}: {slot.requests} requests, {slot.errors} errors"
        parts.append(
            el(
                "g",
                {"class": "slot"},
                el("title", None, tip),
                el(
                    "rect",
                    {
                        "x": f"{x:.1f}",
                        "y": f"{_TOP + plot_h - req_h:.1f}",
                        "width": f"{bar_w:.1f}",
                        "height": f"{req_h:.1f}",
                        "class": "req",
                    },
                ),
                el(
                    "rect",
                    {
                        "x": f"{x:.1f}",
                        "y": f"{_TOP + plot_h - err_h:.1f}",
                        "width": f"{bar_w:.1f}",
                        "height": f"{err_h:.1f}",
                        "class": "err",
                    },
                ),
            )
        )
        if n % label_every == 0:
            parts.append(
                el("text", {"x": f"{x:.1f}", "y": _HEIGHT - 8, "class": "axis"}, slot.label)
            )
    return el(
        "svg",
        {
            "xmlns": "http://www.w3.org/2000/svg",
            "viewBox": f"0 0 {_WIDTH} {_HEIGHT}",
            "role": "img",
            "aria-label": summary,
            "class": "chart",
            "preserveAspectRatio": "xMinYMin meet",
        },
        *parts,
    )
