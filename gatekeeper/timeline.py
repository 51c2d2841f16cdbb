"""The mentorship month drawn on the server as HTML: a pure function of plain data.

Each pull request is a row of ordinary HTML (its link, title, state and dates as text) with
a small bar drawn in SVG. Only the bars are pictures: they stretch to the row's width
(``preserveAspectRatio="none"``) and hold no text, so the timeline reflows from a phone to a
wide screen with its text at the page's own size, and no link sits inside a picture.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from markupsafe import Markup, escape

from gatekeeper import words

WIDTH = 1000  # the bars' coordinate space: a row is stretched to fit, whatever its width
MAX_LANES = 40


@dataclasses.dataclass(frozen=True)
class State:
    """How one gate state looks: a class for its colour, a word, and a shape of its own."""

    css: str
    word: str
    shape: str  # the inside of a 12 by 12 SVG, so colour is never the only difference


STATES = {
    # An open ring: still waiting.
    "waiting": State(
        "tl-waiting", "waiting", '<circle cx="6" cy="6" r="4.2" fill="none" stroke-width="2.2"/>'
    ),
    # A tick.
    "approved": State(
        "tl-approved",
        "approved",
        '<path d="M1.5 6.5 4.8 9.6 10.5 2.6" fill="none" stroke-width="2.4"/>',
    ),
    # A filled diamond: merged with approval.
    "merged": State("tl-merged", "merged", '<path d="M6 .8 11.2 6 6 11.2.8 6z"/>'),
    # A triangle, the warning sign: merged without approval.
    "bypassed": State("tl-bypassed", "merged without approval", '<path d="M6 .8 11.4 11H.6z"/>'),
    # A square: the gate lifted (the mentorship ended) before anyone approved.
    "lifted": State("tl-free", "gate lifted", '<rect x="1.5" y="1.5" width="9" height="9"/>'),
    # A bar: nothing was asked.
    "not_required": State(
        "tl-free", "no approval needed", '<rect x="1" y="4.5" width="10" height="3"/>'
    ),
}
# Kept for callers that only need the colour.
STATE_CLASS = {name: state.css for name, state in STATES.items()}


@dataclasses.dataclass(frozen=True)
class Lane:
    """One pull request: gated from ``start`` until ``end`` (None: still open now)."""

    label: str
    href: str
    start: datetime
    end: datetime | None
    state: str  # waiting, approved, merged, bypassed, lifted or not_required
    detail: str = ""


def draw(
    *,
    started_at: datetime,
    ends_at: datetime,
    now: datetime,
    lanes: Sequence[Lane] = (),
    ended_at: datetime | None = None,
) -> Markup:
    """The period with today's line, then one row per pull request as it was gated and settled."""
    period_end = min(ended_at, ends_at) if ended_at else ends_at
    span_start = min([started_at, *(lane.start for lane in lanes)])
    span_end = max(ends_at, period_end)
    span = max((span_end - span_start).total_seconds(), 1.0)

    def x(moment: datetime) -> float:
        clamped = min(max(moment, span_start), span_end)
        return round(WIDTH * (clamped - span_start).total_seconds() / span, 1)

    today = x(now) if span_start <= now <= span_end else None
    shown = list(lanes)[-MAX_LANES:]
    summary = _summary(started_at, period_end, now, len(shown), today is not None)
    parts = [
        '<figure class="timeline">',
        f'<figcaption class="tl-caption">{escape(summary)}</figcaption>',
        _axis(started_at, period_end, ends_at, span_start, span_end, x, today),
    ]
    if shown:
        parts.append('<ol class="tl-lanes">')
        parts += [_lane(lane, x, now, today) for lane in shown]
        parts.append("</ol>")
    else:
        parts.append('<p class="tl-empty">No pull requests yet</p>')
    parts.append("</figure>")
    return Markup("".join(parts))


def shape(state: str) -> Markup:
    """The state's shape as a small inline SVG (decorative: the word beside it says the same)."""
    look = STATES.get(state, STATES["not_required"])
    return Markup(
        f'<svg class="tl-mark {look.css}" viewBox="0 0 12 12" width="12" height="12" '
        f'aria-hidden="true" focusable="false">{look.shape}</svg>'
    )


def _bar(inner: str, css: str) -> str:
    # Stretched to the row; strokes keep their width (vector-effect) however it is stretched.
    return (
        f'<svg class="tl-bar {css}" viewBox="0 0 {WIDTH} 12" preserveAspectRatio="none" '
        f'aria-hidden="true" focusable="false">{inner}</svg>'
    )


def _now_line(today: float | None) -> str:
    if today is None:
        return ""
    return (
        f'<line class="tl-now" x1="{today}" x2="{today}" y1="0" y2="12" '
        'vector-effect="non-scaling-stroke"/>'
    )


def _axis(
    started_at: datetime,
    period_end: datetime,
    ends_at: datetime,
    span_start: datetime,
    span_end: datetime,
    x: Callable[[datetime], float],
    today: float | None,
) -> str:
    """The gated period as a band (its planned rest dashed if it ended early), weekly ticks."""
    inner = [
        f'<rect class="tl-period" x="{x(started_at)}" y="2" '
        f'width="{max(x(period_end) - x(started_at), 1)}" height="8"/>'
    ]
    if period_end < ends_at:
        inner.append(
            f'<line class="tl-cut" x1="{x(period_end)}" x2="{x(ends_at)}" y1="6" y2="6" '
            'vector-effect="non-scaling-stroke"/>'
        )
    for moment in _ticks(span_start, span_end)[1:-1]:
        inner.append(
            f'<line class="tl-tick" x1="{x(moment)}" x2="{x(moment)}" y1="0" y2="12" '
            'vector-effect="non-scaling-stroke"/>'
        )
    inner.append(_now_line(today))
    return (
        '<div class="tl-axis" aria-hidden="true">'
        + _bar("".join(inner), "tl-period-bar")
        + f'<span class="tl-from">{_day(span_start)}</span>'
        + f'<span class="tl-to">{_day(span_end)}</span></div>'
    )


def _lane(lane: Lane, x: Callable[[datetime], float], now: datetime, today: float | None) -> str:
    look = STATES.get(lane.state, STATES["not_required"])
    end = lane.end or now
    x1 = x(lane.start)
    x2 = max(x(end), x1 + 4)  # a pull request settled at once still shows
    until = "now" if lane.end is None else _day(lane.end)
    bar = (
        f'<rect class="tl-span" x="{x1}" y="3" width="{round(x2 - x1, 1)}" height="6"/>'
        + _now_line(today)
    )
    return (
        f'<li class="tl-lane {look.css}">'
        f'<a class="tl-label" href="{escape(lane.href)}">{escape(lane.label)}</a>'
        f'<span class="tl-title">{escape(lane.detail)}</span>'
        f'<span class="tl-state">{shape(lane.state)}{escape(look.word)}</span>'
        + _bar(bar, "tl-lane-bar")
        + f'<span class="tl-when">{_day(lane.start)} → {until}</span></li>'
    )


def _ticks(start: datetime, end: datetime) -> list[datetime]:
    """The start, then every seven days (two for a short span), then the end."""
    marks = [start]
    step = timedelta(days=7) if (end - start).days > 10 else timedelta(days=2)
    moment = start + step
    while moment < end - step / 2:
        marks.append(moment)
        moment += step
    marks.append(end)
    return marks


def _day(moment: datetime) -> str:
    return f"{moment:%b %-d}"


def _summary(start: datetime, end: datetime, now: datetime, count: int, today: bool) -> str:
    text = (
        f"Mentorship from {_day(start)} to {words.day(end)}; "
        f"{words.plural(count, 'pull request')} shown"
    )
    return text + (f"; the dashed line is today, {_day(now)}." if today else ".")
