"""Fuzzed hostile input: mutated real payloads, correctly signed, and every dashboard route
and form, as a signed-in maintainer.

No answer is ever a 5xx. A delivery answered 4xx writes nothing but its own delivery row, and
the app still answers a normal delivery after any of them. The example counts stay modest so
the file fits the suite's time budget (about 30 s on both databases on two cores);
``--hypothesis-profile=long`` (registered in conftest) runs 5,000 of each.
``benchmarks/fuzz.py`` sends the same mutations and counts the answers.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import operator
import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import pytest
import requests
import sqlalchemy as sa
from flask import Flask, got_request_exception
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import SQLModel
from wtforms import DateField, DateTimeLocalField, IntegerField
from wtforms.fields.core import UnboundField

from fakegithub import FakeGitHub
from gate_support import INSTALLATION, REPO, SECRET, World, app_for
from gatekeeper import forms, github_of
from gatekeeper import mentorships as lifecycle
from gatekeeper.auth import generation_of
from webhook_events import FIXTURES, Events, example, signed

HEAD = "a" * 40
TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
MENTEE, MENTORS, MAINTAINER = "mpage", ("colesbury", "vstinner"), "boss"


def examples(ci: int) -> int:
    """``ci`` examples, or the long profile's count when ``--hypothesis-profile=long`` asks."""
    return settings().max_examples if settings.get_current_profile_name() == "long" else ci


FUZZ = settings(
    deadline=None,
    database=None,  # a failure in CI prints its example; nothing is kept between runs
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # one world per database, shared by its examples
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)

# ---------------------------------------------------------------- mutated payloads

# The fixtures, as (event, action): the event is the directory, sent as X-GitHub-Event.
PAYLOADS = sorted((path.parent.name, path.stem) for path in FIXTURES.glob("*/*.json"))
# Keys some typed view in gatekeeper/events.py reads: a walk prefers them, so that most
# mutations land where the app looks rather than in the hundred URLs it never reads.
READ_KEYS = frozenset({
    "action", "sender", "login", "type", "repository", "full_name", "private", "installation",
    "id", "pull_request", "base", "repo", "user", "merged_by", "state", "merged_at", "number",
    "title", "html_url", "head", "sha", "ref", "draft", "merged", "updated_at", "review",
    "commit_id", "submitted_at", "check_run", "name", "head_sha", "external_id", "app",
    "pull_requests", "requested_action", "identifier", "completed_at", "started_at",
    "check_suite", "issue", "comment", "body", "created_at", "merge_group", "repositories",
    "repositories_added", "repositories_removed",
})  # fmt: skip
NUMBERS = [0, -1, 1, 2**31 - 1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1]
NUMBERS += [2**64, 10**30, -(10**30), 1.5, -0.0, 1e308, float("inf"), float("nan")]
WORDS = [
    "", " ", "\x00", "a\x00b", "\ud800", "x\udfff", "\u202e", "\u00a0", "é", "😀", "\r\n",
    "../../etc", "null", "0", "-1", "true", "[]", "{}", "A" * 40, "a" * 40, "b" * 40, "a" * 64,
    MENTEE, "MPAGE", *MENTORS, MAINTAINER, "gatekeeper-test[bot]", "Bot", REPO, "Python/CPython",
    "python/cpython/extra", "Codertocat/Hello-World", "opened", "closed", "open", "approved",
    "APPROVED", "changes_requested", "dismissed", "mentor-approval", "approve",
    "/gatekeeper approve", "python/cpython#7", "python/cpython#9999999999",
    "2024-11-20T10:00:00Z", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00+14:00",
    "2024-02-30T00:00:00Z", "2024-11-20", "1e309", "9223372036854775808",
]  # fmt: skip
ANY_TEXT = st.text(st.characters(exclude_categories=()) | st.characters(categories=["Cs"]))
STRINGS = st.one_of(
    st.sampled_from(WORDS),
    ANY_TEXT,
    st.builds(
        lambda char, count: char * count,
        st.sampled_from(["a", "x\x00", "é", "😀", "\ud800"]),
        st.sampled_from([39, 40, 41, 64, 101, 256, 2_001, 65_537, 1_000_000]),
    ),
)
SCALARS = st.none() | st.booleans() | st.integers() | st.sampled_from(NUMBERS) | STRINGS
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(STRINGS, inner, max_size=3),
    max_leaves=6,
)
# JSON text json.dumps cannot write: too many digits for Python's int, overflowing floats,
# and nesting deeper than a recursive reader (or writer) survives.
RAW = st.one_of(
    st.sampled_from(["1" + "0" * 5_000, "1e999", "-1e999", "123456789" * 500]),
    st.builds(
        lambda depth, kind: (
            ("[" * depth + "]" * depth) if kind == "list" else ('{"a":' * depth + "1" + "}" * depth)
        ),
        st.sampled_from([2, 64, 500, 900, 990, 1_000, 5_000, 100_000]),
        st.sampled_from(["list", "object"]),
    ),
)


def near(value: Any) -> st.SearchStrategy[Any]:
    """Values close to ``value`` that a careless reader might still take for it."""
    if isinstance(value, bool):
        return st.sampled_from([str(value).lower(), int(value), [value]])
    if isinstance(value, int | float):
        return st.sampled_from([value + 1, -value, str(value), value * 2**40, float(value)])
    if isinstance(value, str):
        return st.sampled_from(
            [value.upper(), f" {value}", f"{value}\n", f"{value}\x00", value * 50, value[:-1],
             f"{value}\ud800", [value], {"login": value}]
        )  # fmt: skip
    if isinstance(value, list):
        return st.sampled_from([[], value * 2, [*value, None], value[:1] * 3, {"0": value}])
    if isinstance(value, dict):
        return st.sampled_from([{}, list(value.values())[:3], [value], {**value, "": None}])
    return JSON_VALUES


def adapted(event: str, action: str, *, app_id: int) -> dict[str, Any]:
    """The fixture made about the seeded world (python/cpython#7 by the mentee, a mentor
    acting), as the other tests build it, so a mutation reaches past the first lookup."""
    events = Events(repo=REPO, installation_id=INSTALLATION)
    pull = {"number": 7, "head_sha": HEAD}
    builders: dict[str, Callable[[], dict[str, Any]]] = {
        "pull_request": lambda: events.pull_request(action, author=MENTEE, **pull),
        "pull_request_review": lambda: events.review(
            action, author=MENTEE, reviewer=MENTORS[0], state="approved", review_id=100, **pull
        ),
        "check_run": lambda: events.check_run(action, sender=MENTORS[0], app_id=app_id, **pull),
        "check_suite": lambda: events.check_suite(action, head_sha=HEAD, numbers=[7]),
        "issue_comment": lambda: events.comment(
            action, number=7, sender=MENTORS[0], body="/gatekeeper approve"
        ),
        "merge_group": lambda: events.merge_group(head_sha=HEAD),
        "installation": lambda: events.installation(action, repos=[REPO]),
        "installation_repositories": lambda: events.installation_repositories(
            action, **{"added" if action == "added" else "removed": [REPO]}
        ),
    }
    build = builders.get(event)
    return build() if build is not None else example(event, action)


@dataclasses.dataclass(frozen=True)
class Mutation:
    """A signed delivery to send: which fixture, what was changed in it, and the body."""

    event: str
    fixture: str
    steps: tuple[str, ...]
    body: bytes = dataclasses.field(repr=False)

    def __str__(self) -> str:
        return f"{self.fixture}: {'; '.join(self.steps)}"


def _where(path: list[Any]) -> str:
    return "".join(f"[{key}]" if isinstance(key, int) else f".{key}" for key in path)[1:] or "$"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:60]}... ({len(text)} characters)"


# What a walk does where it stops, weighted towards what found bugs: a key gone, a null, a
# value of another type, and most of all one close to the right value, which gets past the
# typed views into the handlers. (sampled_from weighs by repetition.)
OPERATIONS = ["drop"] * 2 + ["null"] * 2 + ["type"] * 2 + ["near"] * 3
OPERATIONS += ["number", "string", "raw", "add"]


def _top_level_key(draw: st.DrawFn, payload: dict[str, Any]) -> str | None:
    """A top-level key to drop: usually an object the app reads (``sender``, ``pull_request``,
    ``review``, ...), whose absence reaches furthest. Not ``action``: without it an event is
    only ignored, and a walk drops it often enough."""
    keys = [key for key in payload if key != "action"]
    objects = [key for key in keys if key in READ_KEYS and isinstance(payload[key], dict | list)]
    keys = objects if objects and draw(st.integers(0, 3)) else keys
    return draw(st.sampled_from(keys)) if keys else None


def _read_paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path into ``node`` along keys the app reads (and list items), outermost first:
    ``pull_request``, ``pull_request.head``, ``pull_request.head.sha``, ..."""
    if isinstance(node, dict):
        items: Iterable[tuple[Any, Any]] = ((k, v) for k, v in node.items() if k in READ_KEYS)
    elif isinstance(node, list):
        items = enumerate(node[:3])
    else:
        return
    for key, value in items:
        yield (*prefix, key)
        yield from _read_paths(value, (*prefix, key))


def _walk(draw: st.DrawFn, payload: dict[str, Any]) -> list[Any]:
    """A path into ``payload``: three times in four one the app reads, at any depth (the head's
    sha and the base repository's name are three and four levels down), else anywhere."""
    paths = list(_read_paths(payload))
    if paths and draw(st.integers(0, 3)):
        return list(draw(st.sampled_from(paths)))
    path, node = [], payload
    while isinstance(node, dict | list) and node:
        if path and draw(st.integers(0, 2)) == 0:
            break
        key = draw(st.sampled_from(list(node) if isinstance(node, dict) else range(len(node))))
        path.append(key)
        node = node[key]
    return path


@st.composite
def mutations(draw: st.DrawFn, *, app_id: int) -> Mutation:
    """One fixture, usually adapted to the world (two times in three), else raw, changed in
    one to three places.

    Often a single change, which gets past the checks a second would stop at. About four
    deliveries in ten drop a top-level object the app reads: each change has a chance of one
    in twelve, which hypothesis's taste for the smallest draw about doubles. The other
    changes walk into the payload, mostly along keys the app reads, and drop, null, retype
    or nudge what they find.
    """
    event, action = draw(st.sampled_from(PAYLOADS))
    raw_fixture = draw(st.integers(0, 3)) == 0
    payload = example(event, action) if raw_fixture else adapted(event, action, app_id=app_id)
    raws: dict[str, str] = {}  # placeholder string -> the JSON text that replaces it
    steps = []
    for _ in range(draw(st.sampled_from([1, 1, 2, 3]))):
        if draw(st.integers(0, 11)) == 0:
            key = _top_level_key(draw, payload)
            if key is not None:
                del payload[key]
                steps.append(f"drop {key}")
            continue
        path = _walk(draw, payload)
        if not path:
            continue
        *parents, last = path
        parent = payload
        for key in parents:
            parent = parent[key]
        operation = draw(st.sampled_from(OPERATIONS))
        if operation == "drop":
            del parent[last]
            steps.append(f"drop {_where(path)}")
            continue
        if operation == "add" and isinstance(parent, dict):
            last = draw(st.sampled_from(sorted(READ_KEYS)))
            path[-1] = last
        value = {
            "null": st.none(),
            "type": JSON_VALUES,
            "number": st.sampled_from(NUMBERS) | st.integers(),
            "string": STRINGS,
            "raw": RAW,
            "near": near(parent[last]) if operation == "near" else JSON_VALUES,
            "add": JSON_VALUES,
        }[operation]
        chosen = draw(value)
        if operation == "raw":
            placeholder = f"@@raw-{len(raws)}@@"
            raws[placeholder] = chosen
            parent[last], shown = placeholder, f"raw {chosen[:24]}... ({len(chosen)} bytes)"
        else:
            parent[last], shown = chosen, _short(chosen)
        steps.append(f"set {_where(path)} = {shown}")
    text = json.dumps(payload)
    for placeholder, replacement in raws.items():
        text = text.replace(json.dumps(placeholder), replacement, 1)
    fixture = f"{event}/{action}" + (" (raw)" if raw_fixture else "")
    return Mutation(event, fixture, tuple(steps), text.encode())


# ---------------------------------------------------------------- the webhook world


def snapshot(world: World) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table as the driver reads it, in primary key order (the tables stay
    small here). Not through the columns' types: decoding each JSON and date column of the
    growing delivery log, twice an example, was a third of this test's time."""
    with world.session() as session:
        connection = session.connection()
        return {
            table.name: [tuple(row) for row in connection.exec_driver_sql(raw_select(table))]
            for table in SQLModel.metadata.sorted_tables
        }


def raw_select(table: sa.Table) -> str:
    """Every column of ``table`` (in the models' order, as ``select(table)`` has them) in
    primary key order, each name quoted where it must be (alike in SQLite and PostgreSQL)."""
    quote = sa.column("x").compile().preparer.quote
    columns = ", ".join(quote(column.name) for column in table.columns)
    keys = ", ".join(quote(column.name) for column in table.primary_key.columns)
    return f"SELECT {columns} FROM {quote(table.name)} ORDER BY {keys}"


class Fuzzer:
    """A seeded world receiving mutated deliveries, and what can be checked after each."""

    def __init__(self, world: World) -> None:
        self.world = world

    def seed(self) -> None:
        """The mentee's mentorship and pull request #7 waiting, as a fuzzed payload finds them."""
        self.world.promote(MENTEE, MENTORS)
        self.world.open_pull(7, author=MENTEE, head_sha=HEAD)

    def post(self, event: str, body: bytes, delivery_id: str | None = None):
        """POST ``body`` signed, as GitHub would, with a fresh delivery id."""
        response = self.world.client.post(
            "/webhooks/github",
            data=body,
            headers={
                "Content-Type": "application/json",
                "X-GitHub-Event": event,
                "X-GitHub-Delivery": delivery_id or str(uuid.uuid4()),
                "X-Hub-Signature-256": signed(SECRET, body),
            },
        )
        response.close()
        return response

    def half_written(self, before: dict[str, list[tuple[Any, ...]]], delivery_id: str) -> list:
        """The tables a refused delivery changed, other than by adding its own delivery row."""
        after = snapshot(self.world)
        own = [row for row in after["delivery"] if row[0] == delivery_id]
        after["delivery"] = [row for row in after["delivery"] if row[0] != delivery_id]
        changed = [name for name in before if before[name] != after[name]]
        return changed + (["delivery (more than its own row)"] if len(own) > 1 else [])

    def still_answers(self) -> int:
        """The status of a normal delivery: a ping, unique so it is not taken for a replay."""
        payload = example("ping", "ping")
        payload["zen"] = f"Still here, {uuid.uuid4()}."
        return self.post("ping", json.dumps(payload).encode()).status_code


@pytest.fixture
def fuzzer(world: World) -> Fuzzer:
    fuzzer = Fuzzer(world)
    fuzzer.seed()
    return fuzzer


@settings(FUZZ, max_examples=examples(400))
@given(data=st.data())
def test_a_signed_mutated_delivery_never_gets_a_5xx(fuzzer: Fuzzer, data: st.DataObject):
    """A real payload with keys dropped, nulls, wrong types, huge numbers, long or broken
    text and deep nesting, correctly signed: a 2xx or a 4xx, never a 5xx; a 4xx leaves
    every table as it was (but its own delivery row); and the app still answers."""
    mutation = data.draw(mutations(app_id=fuzzer.world.fake.app_id), label="mutation")
    before = snapshot(fuzzer.world)
    delivery_id = str(uuid.uuid4())
    response = fuzzer.post(mutation.event, mutation.body, delivery_id)
    assert response.status_code < 500, (str(mutation), response.get_json())
    if 400 <= response.status_code < 500:
        assert fuzzer.half_written(before, delivery_id) == [], (str(mutation), response.get_json())
    assert fuzzer.still_answers() == 200


# ---------------------------------------------------------------- the dashboard

# Where a fuzzed request points unless an argument is made hostile: the seeded mentee, their
# pull request, one of their mentors.
ARGUMENTS = {
    "mentee": MENTEE,
    "owner": "python",
    "repo": "cpython",
    "number": "7",
    "login": MENTORS[1],
    "filename": "gatekeeper.css",
}
# Numbers as a URL or a form may spell them. int() also takes "+7", " 7", "1_000" and the
# digits of other scripts ("\u0663" is an Arabic-Indic 3, "\uff17" a full-width 7).
HUGE = [
    "2147483647", "2147483648", "9223372036854775807", "9223372036854775808", "1" + "0" * 40,
    "1" * 400, "1" + "0" * 5_000, "-1", "0", "-0", "+7", " 7", "7 ", "0x10", "1e9", "1.5",
    "1_000", "\u0663", "\uff17",
]  # fmt: skip
FORM_WORDS = [
    "", " ", "\x00", "a\x00b", "\r\n", "\t", "\x7f", "\u202e", "\u00a0", "\ufeff", "é", "😀",
    "<script>alert(1)</script>", "\"'><b>", "javascript:alert(1)", "data:text/html,x",
    "//evil.example", "/\\evil.example", "https://evil.example/", "/\r\nSet-Cookie: a=b",
    "../../etc/passwd", "%00", "%ff", "null", "true", "y", "on", "off", "preview", "start",
    "graduated", "revoked", MENTEE, MENTEE.upper(), MAINTAINER, *MENTORS, "@" + MENTORS[0],
    "a" * 39, "a" * 40, REPO, "python/", HEAD, HEAD.upper(), "b" * 40,
    "2024-02-30", "2024-11-20", "2099-01-01", "9999-12-31", "0001-01-01", "10000-01-01",
    "2024-11-20T10:00", "9999-12-31T23:59", "0001-01-01T00:00", "2024-11-20T25:00", *HUGE,
]  # fmt: skip
TEXTS = st.one_of(
    st.sampled_from(FORM_WORDS),
    st.text(st.characters(exclude_categories=["Cs"]), max_size=64),  # controls, every plane
    st.integers().map(str),
    st.builds(
        operator.mul,
        st.sampled_from(["a", "é", "😀", "\x00", "\r\n", "1"]),
        st.sampled_from([39, 40, 255, 2_000, 2_001, 65_537]),
    ),
)
# Bytes: a value that is not UTF-8 at all (a lone surrogate cannot be sent, only its bytes).
VALUES = TEXTS | st.binary(max_size=12)
# Numbers around the limits of BIGINT (19 digits), float (309) and int() (4,300 digits).
NUMERALS = st.one_of(
    st.sampled_from(HUGE),
    st.integers().map(str),
    st.sampled_from([19, 20, 39, 308, 309, 4_300, 4_301]).map(lambda digits: "9" * digits),
)
DATES = [word for word in FORM_WORDS if word[:1].isdigit() and "-" in word]
Value = str | bytes
NEW_LOGINS = st.text("abcdefghijklmnopqrstuvwxyz0123456789", max_size=12).map(lambda x: f"n{x}")


def submissions(*valid: dict[str, Any]) -> list[dict[str, st.SearchStrategy[str]]]:
    """Each field's value as a strategy (a fixed string, or one drawn anew, like a login)."""
    return [{name: st.just(v) if isinstance(v, str) else v for name, v in f.items()} for f in valid]


# Valid submissions of each form, together using every field, so that a request with a few
# fields made hostile gets past the others (a test below keeps them in step with forms.py).
NEW = {"mentee": NEW_LOGINS, "mentors": ", ".join(MENTORS), "approvals_required": "1"}
VOTE = {
    "vote_url": "https://discuss.python.org/t/1",
    "votes_for": "30",
    "votes_against": "2",
    "vote_opened": "2024-11-01",
    "vote_closed": "2024-11-08",
}
OVERRIDE = "The steering council approved it by email."
FORMS = {
    "/mentorships/new": (
        forms.StartForm,
        submissions(
            {**NEW, "action": "start", "dismiss_stale_approvals": "y"},
            {**NEW, "action": "start", "same_content_approvals": "y"},
            {**NEW, **VOTE, "action": "preview"},  # "Check the vote": shown, nothing saved
            # "Fetch from the vote thread", and a start after one (the forum is read again):
            # a link that is no forum topic is refused before any request leaves.
            {**NEW, **VOTE, "fetch_vote": "1", "vote_poll": "poll", "vote_for_option": "Yes"},
            {**NEW, **VOTE, "vote_fetched": "2024-11-20T00:00:00", "vote_against_option": "No"},
            {**NEW, **VOTE, "votes_for": "5", "votes_against": "5", "override_reason": OVERRIDE},
            {**NEW, "start": "2099-01-01T09:30", "until": "2099-02-15", "action": "start"},
            {**NEW, "days": "30", "repositories": f"{REPO}\npython/devguide", "note": "Hi!"},
            {**NEW, "approvals_required": "2", "gate_approved_prs": "y", "bypass_alerts": "y"},
        ),
    ),
    "/mentorships/<mentee>/extend": (
        forms.ExtendForm,
        submissions({"days": "3"}, {"until": "2099-06-01"}),
    ),
    "/mentorships/<mentee>/end": (
        forms.EndForm,
        submissions({"reason": "graduated"}, {"reason": "revoked", "note": "Ready early."}),
    ),
    "/mentorships/<mentee>/mentors": (forms.MentorForm, submissions({"login": NEW_LOGINS})),
    "/mentorships/<mentee>/mentors/<login>/remove": (forms.ActionForm, submissions({})),
    "/mentorships/<mentee>/terms": (
        forms.TermsForm,
        submissions(
            {"approvals_required": "1", "repositories": REPO, "dismiss_stale_approvals": "y"},
            {"approvals_required": "1", "same_content_approvals": "y"},
            {
                "approvals_required": "2",
                "gate_approved_prs": "y",
                "bypass_alerts": "y",
                "note": "Hi",
            },
            # Saved on terms shown before another change: refused, not a 5xx.
            {"approvals_required": "1", "seen": "0123456789abcdef"},
            # The team chat's own URL for this mentorship, and forgetting it.
            {"approvals_required": "1", "notify_url": "https://chat.example.org/hooks/x"},
            {"approvals_required": "1", "clear_notify_url": "y"},
        ),
    ),
    "/away": (
        forms.AwayForm,
        submissions({"until": "2099-01-01", "note": "On holiday."}, {"login": "colesbury"}),
    ),
    "/away/back": (forms.BackForm, submissions({}, {"login": "colesbury"})),
    "/pulls/<owner>/<repo>/<int:number>/acknowledge": (
        forms.AcknowledgeForm,
        submissions({"note": "Seen; fine.", "back": "me"}, {"note": ""}),
    ),
    "/pulls/<owner>/<repo>/<int:number>/approve": (
        forms.ApproveForm,
        submissions({"head_sha": HEAD}, {"head_sha": HEAD, "next": "/me"}),
    ),
    "/pulls/<owner>/<repo>/<int:number>/override": (
        forms.OverrideForm,
        submissions({"head_sha": HEAD, "reason": "CVE fix"}, {"head_sha": HEAD, "reason": ""}),
    ),
    "/pulls/<owner>/<repo>/<int:number>/remind": (
        forms.ActionForm,
        submissions({}, {"next": "/mentorships/mpage#pulls"}),
    ),
}
ALL_FIELDS = sorted({name for _, valid in FORMS.values() for form in valid for name in form})
RULE_ARGUMENT = re.compile(r"<(?:(\w+):)?(\w+)>")


class Issued(enum.Enum):
    """A value the sign-in flow hands out, sent back as it was given."""

    STATE = "the state /login sent to GitHub"
    CODE = "a code GitHub issued for that state"


@dataclasses.dataclass(frozen=True)
class Visit:
    """One fuzzed request: method, path (its arguments percent-encoded), query and form.

    ``token`` is the page's CSRF token when True, else the value sent for it (None: none).
    ``sign_in_first`` starts the OAuth flow with ``GET /login`` with this query (``next``), so
    that an ``Issued`` state or code in ``query`` is a real one.
    """

    method: str
    path: str
    query: tuple[tuple[str, Value | Issued], ...] = ()
    form: tuple[tuple[str, Value], ...] | None = None
    token: Value | bool | None = True
    sign_in_first: tuple[tuple[str, Value], ...] | None = None

    def __str__(self) -> str:
        shown = [f"{self.method} {self.path}"]
        shown += [f"query {name}={_short(value)}" for name, value in self.query]
        shown += [f"form {name}={_short(value)}" for name, value in self.form or ()]
        if self.form is not None and self.token is not True:
            shown.append(f"csrf_token={_short(self.token)}")
        if self.sign_in_first is not None:
            shown.insert(0, f"GET /login {list(self.sign_in_first)}, then")
        return " ".join(shown)


def _start(**fields: str) -> tuple[tuple[str, str], ...]:
    """A start form for a new mentee with ``fields`` added."""
    required = {"mentee": "newcomer", "mentors": MENTORS[0], "approvals_required": "1"}
    return tuple((required | fields).items())


# Requests that once got a 5xx, tried on every run: the fuzzer may not draw them again.
FOUND_5XX = {
    "callback with the issued state, no code": Visit(
        "GET", "/login/callback", (("state", Issued.STATE),), sign_in_first=()
    ),
    "start for 309 digits of days": Visit("POST", "/mentorships/new", form=_start(days="9" * 309)),
    "start needing 309 digits of approvals": Visit(
        "POST", "/mentorships/new", form=_start(approvals_required="9" * 309)
    ),
    "start with 309 digits of votes": Visit(
        "POST",
        "/mentorships/new",
        form=_start(**VOTE | {"votes_against": "9" * 309}),
    ),
    "extend by 309 digits of days": Visit(
        "POST", f"/mentorships/{MENTEE}/extend", form=(("days", "9" * 309),)
    ),
    "a NUL in a pull request's owner": Visit("GET", "/pulls/a%00b/cpython/7"),
    "approve with a NUL in the repository": Visit(
        "POST", "/pulls/python/a%00b/7/approve", form=(("head_sha", HEAD),)
    ),
    "a NUL in a new mentorship's note": Visit(
        "POST", "/mentorships/new", form=_start(note="a\x00b")
    ),
    "a NUL in the override reason": Visit(
        "POST",
        "/mentorships/new",
        form=_start(**VOTE | {"votes_for": "5", "votes_against": "5", "override_reason": "a\x00b"}),
    ),
    "a NUL in the end note": Visit(
        "POST", f"/mentorships/{MENTEE}/end", form=(("reason", "graduated"), ("note", "a\x00b"))
    ),
}


@st.composite
def filled(draw: st.DrawFn, rule: str) -> str:
    """``rule`` with its arguments percent-encoded: the seeded rows' three times in four,
    else one or more hostile (any text; for an ``int``, a huge, signed or foreign number)."""
    names = [name for _, name in RULE_ARGUMENT.findall(rule)]
    changed = set()
    if names and draw(st.integers(0, 3)) == 0:
        changed = draw(st.sets(st.sampled_from(names), min_size=1))

    def argument(match: re.Match[str]) -> str:
        converter, name = match.groups()
        if name not in changed:
            return ARGUMENTS[name]
        value = draw(NUMERALS | TEXTS if converter == "int" else TEXTS)
        return quote(value, safe="/" if converter == "path" else "")

    return RULE_ARGUMENT.sub(argument, rule)


@st.composite
def hostile(draw: st.DrawFn, form: type[forms.FlaskForm], name: str) -> Value:
    """Anything for a field, but half the time a value of the kind it parses: a number of
    any size or spelling for an integer field, an impossible or extreme date for a date."""
    field = getattr(form, name, None)
    kind = field.field_class if isinstance(field, UnboundField) else None
    if kind is IntegerField and draw(st.booleans()):
        return draw(NUMERALS)
    if kind in (DateField, DateTimeLocalField) and draw(st.booleans()):
        return draw(st.sampled_from(DATES))
    return draw(VALUES)


@st.composite
def submitted(
    draw: st.DrawFn, form: type[forms.FlaskForm], valid: list[dict[str, st.SearchStrategy[str]]]
) -> tuple[tuple[str, Value], ...]:
    """One of a form's valid submissions with up to three fields changed (a hostile value,
    left out, or sent twice) and now and then a field it does not have."""
    values = {name: draw(value) for name, value in draw(st.sampled_from(valid)).items()}
    fields = sorted({name for submission in valid for name in submission})
    sent: list[tuple[str, Value]] = list(values.items())
    for name in draw(st.lists(st.sampled_from(fields), max_size=3, unique=True)) if fields else []:
        how = draw(st.sampled_from(["value", "value", "missing", "twice"]))
        sent = [(key, value) for key, value in sent if key != name]
        if how != "missing":
            sent.append((name, draw(hostile(form, name))))
        if how == "twice":
            sent.append((name, values.get(name) or draw(VALUES)))
    if draw(st.integers(0, 3)) == 0:
        sent.append((draw(st.sampled_from([*ALL_FIELDS, "next"]) | TEXTS), draw(VALUES)))
    return tuple(sent)


@st.composite
def tokens(draw: st.DrawFn) -> Value | bool | None:
    """The page's CSRF token, but one time in eight none, or a forged one."""
    if draw(st.integers(0, 7)):
        return True
    return draw(st.none() | VALUES)


@st.composite
def form_visits(draw: st.DrawFn) -> Visit:
    """One of the dashboard's forms submitted (or the end form's confirm page loaded)."""
    rule = draw(st.sampled_from(sorted(FORMS)))
    path = draw(filled(rule))
    if rule.endswith("/end") and draw(st.integers(0, 3)) == 0:
        return Visit("GET", path)
    form, valid = FORMS[rule]
    return Visit("POST", path, form=draw(submitted(form, valid)), token=draw(tokens()))


@st.composite
def route_visits(draw: st.DrawFn, rules: list[tuple[str, str]]) -> Visit:
    """Any rule of the app's url_map with any of its methods, hostile arguments and query."""
    method, rule = draw(st.sampled_from(rules))
    names = st.sampled_from(["next", "code", "state"]) | TEXTS
    query = tuple(draw(st.lists(st.tuples(names, VALUES), max_size=3)))
    form = draw(submitted(forms.ActionForm, [{}])) if method == "POST" else None
    return Visit(method, draw(filled(rule)), query, form, draw(tokens()))


@st.composite
def sign_in_visits(draw: st.DrawFn) -> Visit:
    """``/login``'s ``next``, and ``/login/callback``'s ``code`` and ``state``, each hostile,
    missing or given twice, or (after ``GET /login``) the ones GitHub's flow issued."""

    def some(name: str, issued: Issued | None = None) -> list[tuple[str, Value | Issued]]:
        values = st.lists(VALUES, max_size=2)  # none, one, or the name twice
        if issued is not None:
            values = st.just([issued]) | values
        return [(name, value) for value in draw(values)]

    if draw(st.integers(0, 2)) == 0:
        return Visit("GET", "/login", tuple(some("next")))
    first = None
    if draw(st.booleans()):
        first = tuple(
            (name, value) for name, value in some("next") if not isinstance(value, Issued)
        )
    query = some("code", Issued.CODE if first is not None else None)
    query += some("state", Issued.STATE if first is not None else None)
    return Visit("GET", "/login/callback", tuple(query), sign_in_first=first)


class Dashboard:
    """The app as ``boss`` sees it, a maintainer and one of mpage's mentors, signed in."""

    def __init__(self, app: Flask, fake: FakeGitHub) -> None:
        self.app, self.fake = app, fake
        self.world = World(app, fake)
        self.client = self.world.client
        self.token = ""
        self.errors: list[BaseException] = []
        got_request_exception.connect(self._record, app)
        fake.oauth_next_login = MAINTAINER  # whoever completes GitHub's authorize page

    def _record(self, _sender: Flask, exception: BaseException, **_extra: Any) -> None:
        self.errors.append(exception)

    def rules(self) -> list[tuple[str, str]]:
        """(method, rule) for every rule the app serves."""
        return sorted(
            (method, rule.rule)
            for rule in self.app.url_map.iter_rules()
            for method in rule.methods - {"HEAD", "OPTIONS"}
        )

    def seed(self) -> None:
        """mpage mentored by boss and two others, with pull request #7 waiting."""
        self.world.promote(MENTEE, (MAINTAINER, *MENTORS))
        self.world.open_pull(7, author=MENTEE, head_sha=HEAD)

    def ready(self) -> None:
        """Signed in as boss with a CSRF token, and mpage's mentorship open with its three
        mentors, whatever the last request did (signed out, ended it, removed a mentor)."""
        with self.world.session() as session:
            generation = generation_of(session, login=MAINTAINER)
            mentorship = lifecycle.open_mentorship(session, mentee=MENTEE)
            mentors = (
                {a.mentor for a in lifecycle.mentors_of(session, mentorship=mentorship)}
                if mentorship is not None
                else set()
            )
        with self.client.session_transaction() as cookie:
            cookie["login"], cookie["display"] = MAINTAINER, MAINTAINER
            cookie["generation"] = generation
            if "csrf_token" not in cookie:
                self.token = ""
        if not self.token:
            self.token = self._page_token()
        if mentorship is None:
            everyone = ", ".join((MAINTAINER, *MENTORS))
            self.submit("/mentorships/new", mentee=MENTEE, mentors=everyone, approvals_required="1")
            return
        for mentor in sorted({MAINTAINER, *MENTORS} - mentors):
            self.submit(f"/mentorships/{MENTEE}/mentors", login=mentor)

    def _page_token(self) -> str:
        match = TOKEN.search(self.client.get("/").get_data(as_text=True))
        assert match, "no CSRF token on the overview"
        return match.group(1)

    def submit(self, path: str, **form: str) -> None:
        """A valid form, as the maintainer would send it."""
        response = self.client.post(path, data={"csrf_token": self.token, **form})
        assert response.status_code == 302, (path, response.status_code)

    def visit(self, visit: Visit) -> list[tuple[str, int]]:
        """Send ``visit``, after ``GET /login`` and GitHub's authorize page if it asks:
        each request and its status."""
        answers: list[tuple[str, int]] = []
        issued: dict[Issued, str] = {}
        if visit.sign_in_first is not None:
            start = self.client.get("/login", query_string=urlencode(visit.sign_in_first))
            answers.append(("GET /login", start.status_code))
            location = start.headers["Location"]
            issued[Issued.STATE] = parse_qs(urlsplit(location).query)["state"][0]
            back = requests.get(location, allow_redirects=False, timeout=10)
            issued[Issued.CODE] = parse_qs(urlsplit(back.headers["Location"]).query)["code"][0]
        query = [
            (name, issued[value] if isinstance(value, Issued) else value)
            for name, value in visit.query
        ]
        body = None
        if visit.form is not None:
            token = self.token if visit.token is True else visit.token
            body = urlencode(visit.form + ((("csrf_token", token),) if token is not None else ()))
        response = self.client.open(
            visit.path,
            method=visit.method,
            query_string=urlencode(query),
            data=body,
            content_type="application/x-www-form-urlencoded" if body is not None else None,
        )
        response.close()
        answers.append((f"{visit.method} {visit.path}", response.status_code))
        return answers


@pytest.fixture
def dashboard_app(database_url: str, github_fake: FakeGitHub) -> Iterator[Flask]:
    """The app on both databases, CSRF on (not TESTING), with one maintainer and sign-in."""
    github_fake.add_oauth_app("client-id", "client-secret")
    app = app_for(
        github_fake,
        database_url,
        maintainers=MAINTAINER,
        github_client_id="client-id",
        github_client_secret="client-secret",
        TESTING=False,
    )
    yield app
    github_of(app).close()
    app.extensions["gatekeeper.engine"].dispose()


@pytest.fixture
def dashboard(dashboard_app: Flask, github_fake: FakeGitHub) -> Dashboard:
    dashboard = Dashboard(dashboard_app, github_fake)
    dashboard.seed()
    return dashboard


def test_the_fuzzed_forms_are_the_apps_forms(dashboard_app: Flask):
    """Every field of every form is fuzzed, and every fuzzed form is one the app serves: a
    field added to a form, or a form to a route, must be added here too."""
    assert set(FORMS) <= {rule.rule for rule in dashboard_app.url_map.iter_rules()}
    for rule, (form, valid) in FORMS.items():
        declared = {name for name in dir(form) if isinstance(getattr(form, name), UnboundField)}
        fuzzed = {name for submission in valid for name in submission}
        # "action" and "fetch_vote": the start form's buttons; "next": where a list's
        # button returns to (read with auth.safe_next, not a form field)
        assert fuzzed - {"action", "fetch_vote", "next"} == declared, rule


@settings(FUZZ, max_examples=examples(300))
@given(data=st.data())
def test_no_dashboard_request_gets_a_5xx(dashboard: Dashboard, data: st.DataObject):
    """As a signed-in maintainer who also mentors: every rule of the url_map (GET and POST)
    with hostile arguments and query, every field of every form (start, with and without
    the preview, extend, end, mentors added and removed, approve), and the sign-in routes'
    ``next``, ``code`` and ``state``: random text, huge numbers, control characters and
    other unicode, bytes that are not UTF-8, empty or missing values. Never a 5xx."""
    visits = {
        "form": form_visits(),
        "route": route_visits(dashboard.rules()),
        "sign-in": sign_in_visits(),
    }
    # The forms are where the app parses the most, so they get half of the requests.
    kind = data.draw(st.sampled_from(["form", "form", "route", "sign-in"]))
    visit = data.draw(visits[kind], label="request")
    dashboard.ready()
    dashboard.errors.clear()
    answers = dashboard.visit(visit)
    if dashboard.errors:
        raise dashboard.errors[0]  # the app's own exception, so each cause is reported apart
    assert all(status < 500 for _, status in answers), (str(visit), answers)


def test_the_requests_that_got_a_5xx_get_none(dashboard: Dashboard):
    """Each request the fuzzer once got a 5xx with, on every run. One app per database
    serves them all, so the table costs less than a test each; every failure is listed."""
    failures = []
    for case, visit in FOUND_5XX.items():
        dashboard.ready()
        dashboard.errors.clear()
        answers = dashboard.visit(visit)
        if dashboard.errors or any(status >= 500 for _, status in answers):
            failures.append(f"{case}: {answers[-1]}, {dashboard.errors[:1]!r}")
    assert not failures, "\n".join(failures)
