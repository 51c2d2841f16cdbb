"""The server-drawn month: HTML rows with stretched SVG bars, a pure function of plain data."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest

from gatekeeper.timeline import MAX_LANES, STATES, WIDTH, Lane, draw, shape

START = datetime(2024, 11, 1, 12, tzinfo=UTC)
END = datetime(2024, 12, 1, 12, tzinfo=UTC)
NOW = datetime(2024, 11, 12, 12, tzinfo=UTC)


def parse(markup: str) -> ET.Element:
    """The markup must be well-formed XML (it is inlined in the page)."""
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


def span_of(row: ET.Element) -> tuple[float, float]:
    """Where a row's bar starts and ends, in the bars' coordinates."""
    rect = row.find(".//rect[@class='tl-span']")
    assert rect is not None
    return x_of(rect, "x"), x_of(rect, "x") + x_of(rect, "width")


def test_period_spans_the_width_and_today_sits_in_proportion():
    """Day 11 of a 30-day month sits about 11/30 of the way along the band."""
    figure = parse(draw(started_at=START, ends_at=END, now=NOW))
    period = figure.find(".//rect[@class='tl-period']")
    assert period is not None
    start_x, width = x_of(period, "x"), x_of(period, "width")
    assert (start_x, start_x + width) == (0, WIDTH)
    today = figure.find(".//line[@class='tl-now']")
    assert today is not None
    assert (x_of(today) - start_x) / width == pytest.approx(11 / 30, abs=0.01)


def test_each_pull_request_is_a_row_with_its_link_state_and_dates():
    """Every row links to its pull request page, carries its state's class, and says its
    state and dates in words."""
    lanes = [lane(1, "merged"), lane(2, "waiting", until=None), lane(3, "bypassed")]
    figure = parse(draw(started_at=START, ends_at=END, now=NOW, lanes=lanes))
    rows = figure.findall("./ol/li")
    assert [row.get("class") for row in rows] == [
        "tl-lane tl-merged",
        "tl-lane tl-waiting",
        "tl-lane tl-bypassed",
    ]
    assert [row.find("a").get("href") for row in rows] == [  # type: ignore[union-attr]
        f"/pulls/python/cpython/{n}" for n in (1, 2, 3)
    ]
    assert [row.findtext("a") for row in rows] == ["#1", "#2", "#3"]
    assert rows[0].findtext("span[@class='tl-title']") == "A change"
    assert ["".join(row.find("span[@class='tl-state']").itertext()) for row in rows] == [  # type: ignore[union-attr]
        "merged",
        "waiting",
        "merged without approval",
    ]
    assert [row.findtext("span[@class='tl-when']") for row in rows] == [
        "Nov 3 → Nov 4",
        "Nov 3 → now",
        "Nov 3 → Nov 4",
    ]


def test_states_differ_in_shape_and_word_not_only_in_colour():
    """No two states share a shape or a word; lifted and not-needed share only a colour."""
    shapes = {name: str(shape(name)) for name in STATES}
    assert len(set(shapes.values())) == len(STATES)
    assert len({state.word for state in STATES.values()}) == len(STATES)
    for name, markup in shapes.items():
        mark = parse(markup)
        assert mark.get("aria-hidden") == "true", name  # the word beside it says the same
        assert len(mark) >= 1, name


def test_no_link_sits_inside_a_picture():
    """Links are plain HTML: the SVG bars hold no link and no text, and nothing is role=img."""
    lanes = [lane(1, "approved"), lane(2, "waiting", until=None)]
    figure = parse(draw(started_at=START, ends_at=END, now=NOW, lanes=lanes))
    svgs = figure.findall(".//svg")
    assert len(svgs) == 1 + 2 * len(lanes)  # the axis, and a bar and a mark per row
    for svg in svgs:
        assert svg.get("aria-hidden") == "true"
        assert svg.findall(".//a") == [] and svg.findall(".//text") == []
    assert [e for e in figure.iter() if e.get("role") == "img"] == []
    bars = figure.findall(".//svg[@preserveAspectRatio='none']")
    assert len(bars) == 1 + len(lanes)  # the bars stretch to the row: any width fits


def test_a_waiting_lane_runs_until_now():
    """An unsettled pull request is drawn up to today's line."""
    figure = parse(
        draw(started_at=START, ends_at=END, now=NOW, lanes=[lane(2, "waiting", until=None)])
    )
    today = figure.find(".//line[@class='tl-now']")
    assert today is not None
    [row] = figure.findall("./ol/li")
    assert span_of(row)[1] == pytest.approx(x_of(today), abs=0.2)


def test_a_lane_settled_at_once_still_shows():
    """Opened and approved in the same minute: the bar keeps a visible width."""
    instant = Lane("#5", "/p", START + timedelta(days=3), START + timedelta(days=3), "approved")
    figure = parse(draw(started_at=START, ends_at=END, now=NOW, lanes=[instant]))
    [row] = figure.findall("./ol/li")
    start, end = span_of(row)
    assert end - start >= 4


def test_an_early_end_shows_the_rest_of_the_planned_period_cut():
    """Ended early: the band stops at the end and a dashed line shows what was left."""
    ended = START + timedelta(days=20)
    figure = parse(draw(started_at=START, ends_at=END, now=END + timedelta(days=5), ended_at=ended))
    period = figure.find(".//rect[@class='tl-period']")
    cut = figure.find(".//line[@class='tl-cut']")
    assert period is not None and cut is not None
    assert x_of(period, "width") == pytest.approx(WIDTH * 20 / 30, abs=0.2)
    assert (x_of(cut, "x1"), x_of(cut, "x2")) == (x_of(period, "width"), WIDTH)
    assert figure.find(".//line[@class='tl-now']") is None  # today is past the drawing
    assert "Nov 1 to Nov 21, 2024" in (figure.findtext("figcaption") or "")


def test_no_pull_requests_says_so():
    """An empty month still draws, with a plain sentence."""
    figure = parse(draw(started_at=START, ends_at=END, now=NOW))
    assert figure.findtext("p[@class='tl-empty']") == "No pull requests yet"
    assert figure.find("ol") is None


def test_the_caption_says_what_the_picture_shows():
    """The caption gives the period, the count and where today is, in words."""
    figure = parse(draw(started_at=START, ends_at=END, now=NOW, lanes=[lane(1, "approved")]))
    assert figure.findtext("figcaption") == (
        "Mentorship from Nov 1 to Dec 1, 2024; 1 pull request shown; the dashed line is today, Nov 12."
    )


def test_titles_are_escaped():
    """Pull request titles come from GitHub users: they are text, never markup."""
    evil = Lane("#9", "/pulls/a/b/9", START, None, "waiting", detail='<script>alert("x")</script>')
    markup = str(draw(started_at=START, ends_at=END, now=NOW, lanes=[evil]))
    assert "<script>" not in markup
    assert parse(markup).findtext(".//span[@class='tl-title']") == '<script>alert("x")</script>'


def test_lanes_are_capped():
    """A busy month shows its latest lanes, not an endless list."""
    lanes = [lane(n, "approved") for n in range(MAX_LANES + 15)]
    figure = parse(draw(started_at=START, ends_at=END, now=NOW, lanes=lanes))
    rows = figure.findall("./ol/li")
    assert len(rows) == MAX_LANES
    assert rows[-1].findtext("a") == f"#{MAX_LANES + 14}"


def test_a_pull_request_older_than_the_period_widens_the_axis():
    """A PR opened before the promotion (gated on promotion) still fits in the picture."""
    early = Lane("#1", "/p", START - timedelta(days=5), None, "waiting")
    figure = parse(draw(started_at=START, ends_at=END, now=NOW, lanes=[early]))
    xs = [x_of(e, a) for e in figure.iter() for a in ("x", "x1", "x2") if e.get(a) is not None]
    assert min(xs) == 0 and max(xs) <= WIDTH
    period = figure.find(".//rect[@class='tl-period']")
    assert period is not None and x_of(period, "x") > 0  # the band starts later
    assert figure.findtext(".//span[@class='tl-from']") == "Oct 27"


def test_an_unknown_state_is_drawn_as_needing_nothing():
    """A state the drawing does not know (a newer gate) still draws, in the neutral look."""
    figure = parse(draw(started_at=START, ends_at=END, now=NOW, lanes=[lane(1, "someday")]))
    [row] = figure.findall("./ol/li")
    assert row.get("class") == "tl-lane tl-free"
