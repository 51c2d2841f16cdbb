"""The server-drawn SVG of the mentorship month: a pure function of plain data."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest

from gatekeeper.timeline import MAX_LANES, Lane, draw

START = datetime(2024, 11, 1, 12, tzinfo=UTC)
END = datetime(2024, 12, 1, 12, tzinfo=UTC)
NOW = datetime(2024, 11, 12, 12, tzinfo=UTC)
SVG = "{http://www.w3.org/2000/svg}"


def parse(markup: str) -> ET.Element:
    """The SVG must be well-formed XML (it is inlined in the page)."""
    return ET.fromstring(str(markup))


def lane(number: int, state: str, *, day: int = 2, until: int | None = 3) -> Lane:
    return Lane(
        label=f"#{number}",
        href=f"/pulls/python/cpython/{number}",
        start=START + timedelta(days=day),
        end=START + timedelta(days=until) if until is not None else None,
        state=state,
        detail="A change",
    )


def x_of(element: ET.Element, attribute: str = "x1") -> float:
    return float(element.get(attribute, "nan"))


def test_period_spans_the_width_and_today_sits_in_proportion():
    """Day 11 of a 30-day month sits about 11/30 of the way along."""
    svg = parse(draw(started_at=START, ends_at=END, now=NOW))
    period = svg.find(f"{SVG}rect[@class='tl-period']")
    assert period is not None
    start_x, width = float(period.get("x")), float(period.get("width"))
    today = svg.find(f"{SVG}line[@class='tl-now']")
    assert today is not None
    assert (x_of(today) - start_x) / width == pytest.approx(11 / 30, abs=0.01)


def test_each_pull_request_is_a_linked_lane_coloured_by_state():
    """Every lane links to its pull request page and carries its gate state's class."""
    lanes = [lane(1, "merged"), lane(2, "waiting", until=None), lane(3, "bypassed")]
    svg = parse(draw(started_at=START, ends_at=END, now=NOW, lanes=lanes))
    links = svg.findall(f"{SVG}a")
    assert [a.get("href") for a in links] == [f"/pulls/python/cpython/{n}" for n in (1, 2, 3)]
    assert [a.get("class") for a in links] == [
        "tl-lane tl-merged",
        "tl-lane tl-waiting",
        "tl-lane tl-bypassed",
    ]
    assert links[0].findtext(f"{SVG}title") == "#1: A change"


def test_a_waiting_lane_runs_until_now():
    """An unsettled pull request is drawn up to today's line."""
    svg = parse(
        draw(started_at=START, ends_at=END, now=NOW, lanes=[lane(2, "waiting", until=None)])
    )
    today = svg.find(f"{SVG}line[@class='tl-now']")
    line = svg.find(f"{SVG}a/{SVG}line")
    assert x_of(line, "x2") == pytest.approx(x_of(today))


def test_an_early_end_shows_the_rest_of_the_planned_period_cut():
    """Ended early: the band stops at the end and a dashed line shows what was left."""
    ended = START + timedelta(days=20)
    svg = parse(draw(started_at=START, ends_at=END, now=END + timedelta(days=5), ended_at=ended))
    assert svg.find(f"{SVG}line[@class='tl-cut']") is not None
    assert svg.find(f"{SVG}line[@class='tl-now']") is None  # today is past the drawing


def test_no_pull_requests_says_so():
    """An empty month still draws, with a plain sentence."""
    svg = parse(draw(started_at=START, ends_at=END, now=NOW))
    assert svg.findtext(f"{SVG}text[@class='tl-empty']") == "No pull requests yet"


def test_titles_are_escaped():
    """Pull request titles come from GitHub users: they are text, never markup."""
    evil = Lane("#9", "/pulls/a/b/9", START, None, "waiting", detail='<script>alert("x")</script>')
    markup = str(draw(started_at=START, ends_at=END, now=NOW, lanes=[evil]))
    assert "<script>" not in markup
    parse(markup)


def test_lanes_are_capped():
    """A busy month shows its latest lanes, not an endless picture."""
    lanes = [lane(n, "approved") for n in range(MAX_LANES + 15)]
    svg = parse(draw(started_at=START, ends_at=END, now=NOW, lanes=lanes))
    assert len(svg.findall(f"{SVG}a")) == MAX_LANES


def test_a_pull_request_older_than_the_period_widens_the_axis():
    """A PR opened before the promotion (gated on promotion) still fits in the picture."""
    early = Lane("#1", "/p", START - timedelta(days=5), None, "waiting")
    markup = str(draw(started_at=START, ends_at=END, now=NOW, lanes=[early]))
    xs = [float(v) for v in re.findall(r'x1="([\d.]+)"', markup)]
    assert min(xs) >= 0 and max(xs) <= 720
