"""Fuzzed hostile input: mutated real payloads, correctly signed, through /webhooks/github.

No answer is ever a 5xx. A delivery answered 4xx writes nothing but its own delivery row, and
the app still answers a normal delivery after any of them. The example count stays modest so
the file fits the suite's time budget (about 15 s on both databases on two cores);
``--hypothesis-profile=long`` (registered in conftest) runs 5,000.
``benchmarks/fuzz.py`` sends the same mutations and counts the answers.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import SQLModel

from gate_support import INSTALLATION, REPO, SECRET, World
from webhook_events import FIXTURES, Events, example, signed

HEAD = "a" * 40
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
    """Every row of every table, in primary key order (the tables stay small here)."""
    with world.session() as session:
        return {
            table.name: [
                tuple(row)
                for row in session.execute(sa.select(table).order_by(*table.primary_key.columns))
            ]
            for table in SQLModel.metadata.sorted_tables
        }


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
