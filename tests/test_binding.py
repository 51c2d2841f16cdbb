"""What an approval binds to: the commit (by when it was the head), the content (its tree),
the base branch, and a maintainer's override. Each hole the issue reproduced, on both
databases, through signed deliveries, the worker and the fake GitHub."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from fakegithub import FakeGitHub, default_user_id
from gate_support import REPO, SECRET, World, app_for
from gatekeeper import github_of
from gatekeeper.models import AuditEvent, BypassAlert, Delivery
from webhook_events import deliver

A, B, C = "a" * 40, "b" * 40, "c" * 40


TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


@pytest.fixture
def world(database_url: str, github_fake: FakeGitHub) -> Iterator[World]:
    """A world whose app has ambv as its maintainer."""
    app = app_for(github_fake, database_url, maintainers="ambv")
    yield World(app, github_fake)
    github_of(app).close()
    app.extensions["gatekeeper.engine"].dispose()


def _dashboard_approve(world: World, login: str, head_sha: str) -> None:
    """A mentor signed in presses Approve on the pull request's page."""
    with world.client.session_transaction() as session:
        session["login"], session["display"] = login.lower(), login
        session["user_id"] = default_user_id(login)
    page = world.client.get(f"/pulls/{REPO}/7").get_data(as_text=True)
    token = TOKEN.search(page)
    assert token, "no form on the pull request's page"
    answer = world.client.post(
        f"/pulls/{REPO}/7/approve", data={"csrf_token": token.group(1), "head_sha": head_sha}
    )
    assert answer.status_code == 302, answer.get_data(as_text=True)
    world.work()


def _github_now(seconds: int = 0) -> str:
    moment = datetime.now(UTC) + timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _comment(world, body, *, sender="colesbury", created_at=None, comment_id=9001):
    payload = world.events.comment(
        "created", number=7, sender=sender, body=body, created_at=created_at, comment_id=comment_id
    )
    return world.send("issue_comment", payload)


def _audit(world, kind):
    with world.session() as session:
        return [e.detail for e in session.exec(select(AuditEvent).where(AuditEvent.kind == kind))]


# ---------------------------------------------------------------- heads over time


def test_a_comment_approves_the_head_of_its_moment_after_a_force_push_back(world):
    """Opened on A, pushed B, force-pushed back to A, the mentor comments while A is the head,
    then B is pushed again: the comment approved A, so B (which no mentor looked at) waits.
    The old rule took each head's first-seen time and bound the comment to B."""
    world.promote()
    world.open_pull(head_sha=A)
    world.push(head_sha=B)
    world.push(head_sha=A)
    _comment(world, "/gatekeeper approve", created_at=world.tick())
    assert world.pull().gate == "approved"
    world.push(head_sha=B)
    assert world.pull().gate == "waiting"
    assert world.check(B)["conclusion"] == "action_required"


def test_a_comment_in_the_same_second_as_a_push_counts_for_nothing(world):
    """A push and a comment in one second: which head the mentor saw is unknown, so the
    comment approves nothing and the audit log says why."""
    world.promote()
    world.open_pull(head_sha=A)
    pushed = world.tick()
    world.fake.push(REPO, 7, B)
    payload = world.events.pull_request(
        "synchronize", number=7, author="mpage", head_sha=B, updated_at=pushed
    )
    world.send("pull_request", payload)
    _comment(world, "/gatekeeper approve", created_at=pushed)
    assert world.pull().gate == "waiting"
    [refused] = _audit(world, "approval_refused")
    assert "the head it was written on is unknown" in refused


# ---------------------------------------------------------------- the same content


def test_an_approval_holds_for_a_later_commit_with_the_same_tree(world):
    """A squash (a new commit, the same tree): the approval holds once the worker has read
    the new head's tree from GitHub; until then the gate waits."""
    world.promote()
    world.open_pull(head_sha=A)
    world.review(head_sha=A)
    assert world.pull().gate == "approved"
    world.fake.set_tree(REPO, B, world.fake.tree_of(REPO, A))
    world.fake.push(REPO, 7, B)
    payload = world.events.pull_request(
        "synchronize", number=7, author="mpage", head_sha=B, updated_at=world.tick()
    )
    world.send("pull_request", payload, work=False)
    assert world.pull().gate == "waiting"  # the new head's content is not known yet
    world.work()  # reads both trees: GET /repos/{o}/{r}/git/commits/{sha}
    assert world.pull().gate == "approved"
    assert world.check(B)["conclusion"] == "success"
    read = [c.path for c in world.fake.calls if "/git/commits/" in c.path]
    assert sorted(read) == sorted(f"/repos/{REPO}/git/commits/{sha}" for sha in (A, B))


def test_an_approval_does_not_hold_for_other_content(world):
    """A push with another tree needs a new approval, and the check says why."""
    world.promote()
    world.open_pull(head_sha=A)
    world.review(head_sha=A)
    world.push(head_sha=B)
    assert world.pull().gate == "waiting"
    assert "given on an older commit" in world.check(B)["output"]["summary"]


def test_a_mentorship_may_ask_for_a_new_approval_on_every_push(world):
    """With ``same_content_approvals`` off, even the same tree needs a new approval, and no
    tree is read."""
    world.promote(same_content_approvals=False)
    world.open_pull(head_sha=A)
    world.review(head_sha=A)
    world.fake.set_tree(REPO, B, world.fake.tree_of(REPO, A))
    world.push(head_sha=B)
    assert world.pull().gate == "waiting"
    assert not [c for c in world.fake.calls if "/git/commits/" in c.path]


def test_a_check_suite_payload_tells_the_tree_without_a_request(world):
    """``check_suite.head_commit.tree_id`` is the pushed commit's tree: learned for free."""
    world.promote()
    world.open_pull(head_sha=A)
    world.review(head_sha=A)
    world.fake.set_tree(REPO, B, world.fake.tree_of(REPO, A))
    world.fake.reset_calls()
    suite = world.events.check_suite("requested", head_sha=B, numbers=[7])
    suite["check_suite"]["head_commit"].update(id=B, tree_id=world.fake.tree_of(REPO, A))
    world.send("check_suite", suite, work=False)
    world.push(head_sha=B)
    assert world.pull().gate == "approved"
    assert [c.path for c in world.fake.calls if "/git/commits/" in c.path] == [
        f"/repos/{REPO}/git/commits/{A}"
    ]


# ---------------------------------------------------------------- the base


@pytest.mark.parametrize("how", ["review", "comment", "dashboard"])
def test_a_change_of_base_ends_every_approval(world, how):
    """Approved against ``feature-x``, then moved to ``main`` by an ``edited`` event: the
    approval was for another base, so the gate waits again (as GitHub's stale-review
    dismissal has it), whichever way the mentor approved."""
    world.promote()
    world.fake.add_pull(REPO, 7, author="mpage", head_sha=A, base="feature-x")
    opened = world.events.pull_request(
        "opened", number=7, author="mpage", head_sha=A, updated_at=world.tick(), base="feature-x"
    )
    world.send("pull_request", opened)
    if how == "review":
        world.send(
            "pull_request_review",
            world.events.review(
                "submitted",
                number=7,
                author="mpage",
                head_sha=A,
                reviewer="colesbury",
                state="approved",
                review_id=100,
                submitted_at=world.tick(),
                updated_at=world.tick(),
                base="feature-x",
            ),
        )
    elif how == "comment":
        _comment(world, "/gatekeeper approve", created_at=world.tick())
    else:
        _dashboard_approve(world, "colesbury", A)
    assert world.pull().gate == "approved", world.audit_kinds()
    world.fake.set_base(REPO, 7, "main")
    edited = world.events.pull_request(
        "edited",
        number=7,
        author="mpage",
        head_sha=A,
        # The dashboard dates its approval now, not on the story's clock.
        updated_at=_github_now(1) if how == "dashboard" else world.tick(),
        base="main",
        base_from="feature-x",
    )
    world.send("pull_request", edited)
    assert world.pull().gate == "waiting"
    assert "before the base branch changed" in world.check(A)["output"]["summary"]
    if how != "dashboard":  # (the story's clock is behind the dashboard's)
        world.review(head_sha=A, review_id=101, reviewer="vstinner")
        assert world.pull().gate == "approved"


def test_a_lost_base_change_is_still_seen_from_the_next_snapshot(world):
    """The ``edited`` event was lost; the next snapshot shows another base: approvals given
    before it end all the same."""
    world.promote()
    world.open_pull(head_sha=A, base="feature-x")
    world.review(head_sha=A)
    assert world.pull().gate == "approved"
    world.fake.set_base(REPO, 7, "main")
    moved = world.events.pull_request(
        "synchronize", number=7, author="mpage", head_sha=A, updated_at=world.tick(), base="main"
    )
    world.send("pull_request", moved)
    assert world.pull().gate == "waiting"


def test_two_bases_seen_in_one_second_date_the_change_to_that_second(world):
    """Two snapshots of the same second show different bases (GitHub's times have whole
    seconds): the delivery is applied, not failed, and the change is dated to that second,
    so an approval given before it ends."""
    world.promote()
    world.open_pull(head_sha=A, base="feature-x")
    world.review(head_sha=A)
    second = world.tick()
    for base in ("feature-x", "main"):
        world.fake.set_base(REPO, 7, base)
        snapshot = world.events.pull_request(
            "synchronize", number=7, author="mpage", head_sha=A, updated_at=second, base=base
        )
        world.send("pull_request", snapshot)
    assert {d.outcome for d in _deliveries(world)} == {"processed"}
    assert world.pull().base_changed_at is not None
    assert world.pull().gate == "waiting"


def _deliveries(world):
    with world.session() as session:
        return list(session.exec(select(Delivery)))


# ---------------------------------------------------------------- overrides


def test_a_maintainer_overrides_with_a_reason_and_the_check_names_them(world):
    """``/gatekeeper override REASON`` from a maintainer: the gate is ``overridden``, the
    check passes naming who and why, and the audit log keeps it."""
    world.promote()
    world.open_pull(head_sha=A)
    _comment(world, "/gatekeeper override security release; every mentor away", sender="ambv",
             created_at=world.tick())  # fmt: skip
    pull = world.pull()
    assert pull.gate == "overridden"
    check = world.check(A)
    assert check["conclusion"] == "success"
    assert check["output"]["title"] == "Overridden by @ambv"
    assert "security release; every mentor away" in check["output"]["summary"]
    assert _audit(world, "override") == [
        f"comment on {A[:12]}: security release; every mentor away"
    ]


@pytest.mark.parametrize(
    ("sender", "body", "refusal"),
    [
        ("ambv", "/gatekeeper override", "an override needs a reason"),
        ("colesbury", "/gatekeeper override trust me", "only maintainers can override"),
        ("mpage", "/gatekeeper override I am sure", "only maintainers can override"),
    ],
    ids=["no-reason", "a-mentor", "the-mentee"],
)
def test_an_override_is_refused_without_a_reason_or_from_anyone_but_a_maintainer(
    world, sender, body, refusal
):
    """Refused overrides leave the gate waiting and say why in the audit log."""
    world.promote()
    world.open_pull(head_sha=A)
    _comment(world, body, sender=sender, created_at=world.tick())
    assert world.pull().gate == "waiting"
    [detail] = _audit(world, "override_refused")
    assert refusal in detail


def test_an_override_holds_for_its_content_only(world):
    """A push with the same tree keeps the override; one with other content waits again."""
    world.promote()
    world.open_pull(head_sha=A)
    _comment(world, "/gatekeeper override hotfix", sender="ambv", created_at=world.tick())
    world.fake.set_tree(REPO, B, world.fake.tree_of(REPO, A))
    world.push(head_sha=B)
    assert world.pull().gate == "overridden"
    world.push(head_sha=C)
    assert world.pull().gate == "waiting"


def test_a_merge_after_an_override_is_no_bypass(world):
    """Merged while overridden: no bypass is recorded and no alert is queued."""
    world.promote()
    world.open_pull(head_sha=A)
    _comment(world, "/gatekeeper override hotfix", sender="ambv", created_at=world.tick())
    world.fake.merge(REPO, 7, merged_by="ambv")
    closed = world.events.pull_request(
        "closed", number=7, author="mpage", head_sha=A, updated_at=world.tick(), merged=True,
        merged_by="ambv",
    )  # fmt: skip
    world.send("pull_request", closed)
    assert world.pull().gate == "overridden"
    assert "bypass" not in world.audit_kinds()
    with world.session() as session:
        assert session.exec(select(BypassAlert)).all() == []


def test_a_redelivered_override_comment_overrides_once(world):
    """The same comment delivered twice records one override."""
    world.promote()
    world.open_pull(head_sha=A)
    payload = world.events.comment(
        "created", number=7, sender="ambv", body="/gatekeeper override hotfix",
        created_at=world.tick(),
    )  # fmt: skip
    for _ in range(2):
        assert deliver(world.client, "issue_comment", payload, secret=SECRET).status_code == 202
    world.work()
    assert len(_audit(world, "override")) == 1


def _sign_in(world: World, login: str) -> str:
    """Sign ``login`` in and return the CSRF token of the pull request's page."""
    with world.client.session_transaction() as session:
        session["login"], session["display"] = login.lower(), login
        session["user_id"] = default_user_id(login)
    token = TOKEN.search(world.client.get(f"/pulls/{REPO}/7").get_data(as_text=True))
    assert token
    return token.group(1)


def test_the_override_button_records_the_reason_and_turns_the_check_green(world):
    """A maintainer's Override on the page: the gate is overridden for the shown commit."""
    world.promote()
    world.open_pull(head_sha=A)
    token = _sign_in(world, "ambv")
    page = world.client.get(f"/pulls/{REPO}/7").get_data(as_text=True)
    assert "Override the gate" in page
    answer = world.client.post(
        f"/pulls/{REPO}/7/override",
        data={"csrf_token": token, "head_sha": A, "reason": "CVE fix, mentors away"},
    )
    assert answer.status_code == 302
    world.work()
    assert world.pull().gate == "overridden"
    assert world.check(A)["output"]["title"] == "Overridden by @ambv"
    assert "Overridden by a maintainer" in world.client.get(f"/pulls/{REPO}/7").get_data(
        as_text=True
    )


@pytest.mark.parametrize(
    ("login", "form", "status", "said"),
    [
        ("ambv", {"head_sha": A, "reason": ""}, 400, "Say why this pull request cannot wait"),
        ("ambv", {"head_sha": B, "reason": "hotfix"}, 409, "New commits arrived"),
        ("colesbury", {"head_sha": A, "reason": "hotfix"}, 403, "maintainers"),
    ],
    ids=["no-reason", "an-older-head", "a-mentor"],
)
def test_the_override_button_refuses_what_it_must(world, login, form, status, said):
    """No reason, a page older than the head, or a non-maintainer: refused, nothing stored."""
    world.promote()
    world.open_pull(head_sha=A)
    token = _sign_in(world, login)
    answer = world.client.post(f"/pulls/{REPO}/7/override", data={"csrf_token": token, **form})
    assert answer.status_code == status
    assert said in answer.get_data(as_text=True)
    assert world.pull().gate == "waiting"
    assert _audit(world, "override") == []


def test_the_override_button_needs_its_csrf_token(world):
    """A forged POST without the form's token is refused."""
    world.promote()
    world.open_pull(head_sha=A)
    _sign_in(world, "ambv")
    answer = world.client.post(f"/pulls/{REPO}/7/override", data={"head_sha": A, "reason": "x"})
    assert answer.status_code == 400
    assert world.pull().gate == "waiting"


def test_the_months_report_lists_an_override_in_every_form(world):
    """The report (plain, Markdown, JSON, web) names the override, who gave it and why."""
    from gatekeeper import report
    from gatekeeper.models import utcnow

    world.promote()
    world.open_pull(head_sha=A)
    _comment(world, "/gatekeeper override hotfix for the release", sender="ambv",
             created_at=world.tick())  # fmt: skip
    with world.session() as session:
        built = report.build(session, mentee="mpage", now=utcnow(), base_url="https://gk.example")
    [line] = built.overrides
    assert (line.repo, line.number, line.by, line.reason) == (
        REPO, 7, "ambv", "hotfix for the release"
    )  # fmt: skip
    assert built.counts.overridden == 1
    assert "override python/cpython#7 by ambv: hotfix for the release" in report.plain(built)
    assert "**Overridden by a maintainer:**" in report.markdown(built)
    assert report.document(built)["overrides"][0]["reason"] == "hotfix for the release"
    page = world.client.get("/mentorships/mpage/report").get_data(as_text=True)
    assert "Overridden by a maintainer" in page and "hotfix for the release" in page


def test_a_repository_first_learned_without_its_visibility_is_taken_as_private(world):
    """An installation lookup or a listing that does not say ``private`` records the
    repository as private (fail closed) until an event says otherwise."""
    from gatekeeper import pulls
    from gatekeeper.models import Repository

    with world.session() as session:
        pulls.remember_installation(session, repo="python/secret-infra", installation_id=1)
        session.commit()
        assert session.get(Repository, "python/secret-infra").private is True
        pulls.remember_installation(
            session, repo="python/secret-infra", installation_id=1, private=False
        )
        session.commit()
        assert session.get(Repository, "python/secret-infra").private is False


def test_a_comment_approval_outlives_the_dismissal_of_the_same_mentors_review(world):
    """A mentor approves by review and then also by comment on the same head; the review is
    dismissed: the comment is an approval of its own, so the gate stays approved (found by
    the property test: a repeated comment is kept, not refused)."""
    world.promote()
    world.open_pull(head_sha=A)
    submitted = world.tick()
    world.review(7, reviewer="vstinner", head_sha=A, review_id=5, submitted_at=submitted)
    _comment(world, "/gatekeeper approve", sender="vstinner", created_at=world.tick())
    world.review(
        7, reviewer="vstinner", state="dismissed", head_sha=A, review_id=5,
        action="dismissed", submitted_at=submitted,
    )  # fmt: skip
    assert world.pull().gate == "approved"
    assert world.check(A)["conclusion"] == "success"
