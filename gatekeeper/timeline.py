"""The mentorship month drawn as an SVG on the server: a pure function of plain data."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime, timedelta

from markupsafe import Markup, escape

WIDTH = 720
LEFT, RIGHT = 12, 12
AXIS_Y = 34
LANE_TOP = 70
LANE_HEIGHT = 20
MAX_LANES = 40
# One colour per gate state; the legend under the SVG uses the same classes.
STATE_CLASS = {
    "waiting": "tl-waiting",
    "approved": "tl-approved",
    "merged": "tl-merged",
    "bypassed": "tl-bypassed",
    "not_required": "tl-free",
}


@dataclasses.dataclass(frozen=True)
class Lane:
    """One pull request: gated from ``start`` until ``end`` (None: still open now)."""

    label: str
    href: str
    start: datetime
    end: datetime | None
    state: str  # waiting, approved, merged, bypassed or not_required
    detail: str = ""


def draw(
    *,
    started_at: datetime,
    ends_at: datetime,
    now: datetime,
    lanes: Sequence[Lane] = (),
    ended_at: datetime | None = None,
) -> Markup:
    """An SVG of the period, today's line and each pull request as it was gated and settled."""
    period_end = min(ended_at, ends_at) if ended_at else ends_at
    span_start = min([started_at, *(lane.start for lane in lanes)])
    span_end = max(ends_at, period_end)
    span = max((span_end - span_start).total_seconds(), 1.0)
    inner = WIDTH - LEFT - RIGHT

    def x(moment: datetime) -> float:
        clamped = min(max(moment, span_start), span_end)
        return round(LEFT + inner * (clamped - span_start).total_seconds() / span, 1)

    shown = list(lanes)[-MAX_LANES:]
    height = LANE_TOP + LANE_HEIGHT * max(len(shown), 1) + 8
    parts = [
        f'<svg class="timeline" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="{escape(_summary(started_at, period_end, now, len(shown)))}" '
        'xmlns="http://www.w3.org/2000/svg">'
    ]
    # The gated period as a band, the planned end dashed if the mentorship ended early.
    parts.append(
        f'<rect class="tl-period" x="{x(started_at)}" y="{AXIS_Y - 8}" '
        f'width="{max(x(period_end) - x(started_at), 1)}" height="16" rx="4"/>'
    )
    if period_end < ends_at:
        parts.append(
            f'<line class="tl-cut" x1="{x(period_end)}" x2="{x(ends_at)}" '
            f'y1="{AXIS_Y}" y2="{AXIS_Y}"/>'
        )
    parts += _ticks(span_start, span_end, x)
    for index, lane in enumerate(shown):
        parts.append(_lane(lane, LANE_TOP + index * LANE_HEIGHT, x, now))
    if not shown:
        parts.append(
            f'<text class="tl-empty" x="{WIDTH / 2}" y="{LANE_TOP + 12}" text-anchor="middle">'
            "No pull requests yet</text>"
        )
    if span_start <= now <= span_end:
        parts.append(
            f'<line class="tl-now" x1="{x(now)}" x2="{x(now)}" y1="{AXIS_Y - 14}" '
            f'y2="{height - 4}"><title>Now: {now:%Y-%m-%d %H:%M} UTC</title></line>'
            f'<text class="tl-now-label" x="{x(now)}" y="{AXIS_Y - 17}" '
            f'text-anchor="{_anchor(x(now))}">today</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _lane(lane: Lane, y: float, x, now: datetime) -> str:  # type: ignore[no-untyped-def]
    end = lane.end or now
    css = STATE_CLASS.get(lane.state, "tl-free")
    x1, x2 = x(lane.start), max(x(end), x(lane.start) + 2)
    label_x, anchor = (x1 - 4, "end") if x1 > WIDTH / 2 else (x2 + 6, "start")
    title = escape(f"{lane.label}: {lane.detail}" if lane.detail else lane.label)
    return (
        f'<a href="{escape(lane.href)}" class="tl-lane {css}"><title>{title}</title>'
        f'<line x1="{x1}" x2="{x2}" y1="{y + 6}" y2="{y + 6}"/>'
        f'<circle cx="{x1}" cy="{y + 6}" r="3"/>'
        f'<circle class="tl-end" cx="{x2}" cy="{y + 6}" r="5"/>'
        f'<text x="{label_x}" y="{y + 10}" text-anchor="{anchor}">{escape(lane.label)}</text></a>'
    )


def _ticks(start: datetime, end: datetime, x) -> list[str]:  # type: ignore[no-untyped-def]
    """A label at the start, then every seven days, then at the end."""
    marks = [start]
    step = timedelta(days=7) if (end - start).days > 10 else timedelta(days=2)
    moment = start + step
    while moment < end - step / 2:
        marks.append(moment)
        moment += step
    marks.append(end)
    parts = []
    for moment in marks:
        position = x(moment)
        parts.append(
            f'<line class="tl-tick" x1="{position}" x2="{position}" y1="{AXIS_Y + 8}" '
            f'y2="{AXIS_Y + 12}"/><text class="tl-date" x="{position}" y="{AXIS_Y + 22}" '
            f'text-anchor="{_anchor(position)}">{moment:%b %-d}</text>'
        )
    return parts


def _anchor(position: float) -> str:
    if position < 40:
        return "start"
    return "end" if position > WIDTH - 40 else "middle"


def _summary(start: datetime, end: datetime, now: datetime, count: int) -> str:
    return (
        f"Mentorship from {start:%Y-%m-%d} to {end:%Y-%m-%d}; "
        f"{count} pull request{'s' if count != 1 else ''} shown"
    )
