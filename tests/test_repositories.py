"""Repositories are GitHub ids: scopes and stored rows follow renames and transfers, and the
sweep searches once per mentee, routing each pull request to the installation covering it."""

from __future__ import annotations

from sqlmodel import select

from fakegithub import default_repo_id
from gate_support import INSTALLATION, REPO
from gatekeeper import gate, github_of, settings_of
from gatekeeper.models import CommitCheck, Job, Mentorship, PullRequest, Repository, utcnow
from gatekeeper.sweep import sweep
from webhook_events import Events

HEAD, PUSHED = "a" * 40, "b" * 40
RENAMED = "python/cpython-renamed"
REPO_ID = default_repo_id(REPO)


def scoped(*entries: tuple[str, int | None]) -> gate.Terms:
    """Terms scoped to ``entries`` (name, id or None while unresolved)."""
    return gate.Terms(
        mentee="mpage",
        mentors=frozenset({"colesbury"}),
        started_at=utcnow(),
        ends_at=utcnow(),
        repositories=frozenset(name for name, _ in entries),
        repository_ids=frozenset((n, i) for n, i in entries if i is not None),
    )


def test_covers_decides_by_id_once_the_id_is_known():
    """A resolved entry covers its repository under any name and no other repository under
    its name; an unresolved one, and a pull request stored without its id, match by name."""
    terms = scoped((REPO, 5), ("python/peps", None))
    assert terms.covers(RENAMED, 5)
    assert not terms.covers(REPO, 6)
    assert terms.covers(REPO, None)
    assert terms.covers("python/peps", 7)
    assert not terms.covers("python/devguide", 8)
    assert scoped().covers("anything/at-all", 9)


def run_sweep(world):
    """A sweep, then the worker's posts of what it changed (what ``gatekeeper sweep`` does)."""
    with world.app.app_context(), world.session() as session:
        report = sweep(
            session, settings=settings_of(world.app), github=github_of(world.app), now=utcnow()
        )
    report.tally = world.work()
    return report


def push_under(world, events: Events, *, number=7, head_sha=PUSHED, author="mpage"):
    """A ``synchronize`` delivered with ``events``' repository name and id."""
    world.fake.push(events.repo, number, head_sha)
    payload = events.pull_request(
        "synchronize", number=number, author=author, head_sha=head_sha, updated_at=world.tick()
    )
    world.send("pull_request", payload)


def mentorship(world) -> Mentorship:
    with world.session() as session:
        return session.exec(select(Mentorship)).one()


def searches(world) -> list:
    return [c for c in world.fake.counted_calls() if c.path == "/search/issues"]


def test_a_renamed_repository_stays_in_the_scope(world):
    """Reproduction: scoped to python/cpython, the mentee's PR is gated; the repository is
    renamed python/cpython-renamed and a push arrives under the new name: still gated, and
    the pull request, its check, the repository row and the scope all carry the new name."""
    world.promote(repositories=[REPO])
    world.open_pull(7, head_sha=HEAD)
    assert world.check(HEAD)["conclusion"] == "action_required"
    assert mentorship(world).repository_ids == {REPO: REPO_ID}

    world.fake.rename_repo(REPO, RENAMED)
    push_under(world, Events(repo=RENAMED, repo_id=REPO_ID))

    [run] = world.fake.check_runs_for(RENAMED, PUSHED, name="mentor-approval")
    assert run["conclusion"] == "action_required"
    assert mentorship(world).repositories == [RENAMED]
    assert mentorship(world).repository_ids == {RENAMED: REPO_ID}
    with world.session() as session:
        pull = session.exec(select(PullRequest)).one()
        assert (pull.repo, pull.repo_id, pull.gate) == (RENAMED, REPO_ID, "waiting")
        assert session.get(Repository, REPO) is None
        assert session.get(Repository, RENAMED).github_id == REPO_ID
        assert {c.repo for c in session.exec(select(CommitCheck))} == {RENAMED}


def test_another_repository_under_the_former_name_is_outside_the_scope(world):
    """Once renamed away, the former name is just a name: a new repository created under it
    (another id) is not in the mentorship's scope."""
    world.promote(repositories=[REPO])
    world.open_pull(7, head_sha=HEAD)
    world.fake.rename_repo(REPO, RENAMED)
    push_under(world, Events(repo=RENAMED, repo_id=REPO_ID))
    world.fake.add_repo(REPO, installation_id=INSTALLATION, repo_id=4_000_001)
    world.fake.add_pull(REPO, 1, author="mpage", head_sha="c" * 40)
    newcomer = Events(repo=REPO, repo_id=4_000_001)
    world.send(
        "pull_request",
        newcomer.pull_request(
            "opened", number=1, author="mpage", head_sha="c" * 40, updated_at=world.tick()
        ),
    )
    run = world.check("c" * 40)
    assert (run["conclusion"], run["output"]["title"]) == (
        "success",
        "Outside the mentorship's scope",
    )


def test_a_name_taken_over_unheard_keeps_the_two_repositories_apart(world):
    """The scoped repository is renamed without an event reaching us, and a new repository
    takes its name: the first event from the newcomer (its own id) moves what was stored
    under the name out of its way, and its pull request #7 is not the old #7 nor in scope."""
    world.promote(repositories=[REPO])
    world.open_pull(7, head_sha=HEAD)
    world.fake.rename_repo(REPO, RENAMED)
    world.fake.add_repo(REPO, installation_id=INSTALLATION, repo_id=4_000_001)
    world.fake.add_pull(REPO, 7, author="mpage", head_sha="c" * 40)
    newcomer = Events(repo=REPO, repo_id=4_000_001)
    world.send(
        "pull_request",
        newcomer.pull_request(
            "opened", number=7, author="mpage", head_sha="c" * 40, updated_at=world.tick()
        ),
    )
    assert world.check("c" * 40)["output"]["title"] == "Outside the mentorship's scope"
    aside = f"{REPO}~{REPO_ID}"
    assert mentorship(world).repository_ids == {aside: REPO_ID}
    with world.session() as session:
        pulls = session.exec(select(PullRequest).order_by(PullRequest.id)).all()
        assert [(p.repo, p.repo_id, p.head_sha) for p in pulls] == [
            (aside, REPO_ID, HEAD),
            (REPO, 4_000_001, "c" * 40),
        ]

    push_under(world, Events(repo=RENAMED, repo_id=REPO_ID))  # the old one speaks again
    assert mentorship(world).repository_ids == {RENAMED: REPO_ID}
    [run] = world.fake.check_runs_for(RENAMED, PUSHED, name="mentor-approval")
    assert run["conclusion"] == "action_required"


def test_a_transferred_repository_stays_in_the_scope(world):
    """A transfer to another owner (and its installation of the App) keeps the repository's
    id: the mentee's PR stays gated under the new owner and the rows follow it there."""
    world.promote(repositories=[REPO])
    world.open_pull(7, head_sha=HEAD)
    world.fake.add_installation(2, account="psf")
    world.fake.transfer_repo(REPO, "psf", installation_id=2)
    push_under(world, Events(repo="psf/cpython", installation_id=2, repo_id=REPO_ID))

    [run] = world.fake.check_runs_for("psf/cpython", PUSHED, name="mentor-approval")
    assert run["conclusion"] == "action_required"
    assert mentorship(world).repositories == ["psf/cpython"]
    with world.session() as session:
        row = session.get(Repository, "psf/cpython")
        assert (row.github_id, row.installation_id) == (REPO_ID, 2)
        assert session.exec(select(PullRequest)).one().repo == "psf/cpython"


def test_a_scope_set_before_the_repository_was_seen_is_resolved_by_the_worker(world):
    """Scoped to a repository no event has named yet, the id is unknown: the worker looks it
    up (never the request), so a rename before any event still finds the scope."""
    world.promote(repositories=[REPO])
    assert mentorship(world).repository_ids == {}
    world.work()
    assert mentorship(world).repository_ids == {REPO: REPO_ID}
    assert [c.path for c in world.fake.counted_calls() if c.path.startswith("/repos")] == [
        f"/repos/{REPO}/installation",
        f"/repos/{REPO}",
    ]

    world.fake.rename_repo(REPO, RENAMED)
    world.fake.add_pull(RENAMED, 7, author="mpage", head_sha=HEAD)
    renamed = Events(repo=RENAMED, repo_id=REPO_ID)
    world.send(
        "pull_request",
        renamed.pull_request(
            "opened", number=7, author="mpage", head_sha=HEAD, updated_at=world.tick()
        ),
    )
    [run] = world.fake.check_runs_for(RENAMED, HEAD, name="mentor-approval")
    assert run["conclusion"] == "action_required"
    assert mentorship(world).repositories == [RENAMED]


def test_a_scope_naming_a_former_name_resolves_to_the_current_one(world):
    """A scope typed with the repository's former name is resolved through GitHub's redirect:
    the scope then names the repository as it is called now."""
    world.fake.rename_repo(REPO, RENAMED)
    world.promote(repositories=[REPO])
    world.work()
    assert mentorship(world).repositories == [RENAMED]
    assert mentorship(world).repository_ids == {RENAMED: REPO_ID}


def test_a_scope_naming_a_repository_the_app_is_not_on_is_left_by_name(world):
    """A scope may name a repository the App is not installed on: the worker's lookup answers
    404, the job ends without retrying, and the entry keeps matching by name."""
    world.fake.add_repo("psf/black", installation_id=None)
    world.promote(repositories=["psf/black"])
    tally = world.work()
    assert (tally.jobs, tally.failures) == (1, [])
    assert mentorship(world).repository_ids == {}
    with world.session() as session:
        assert session.exec(select(Job)).all() == []


def test_a_pull_request_read_under_a_former_name_follows_the_rename(world):
    """The worker reads a pull request by the name it stored (GitHub redirects it): the
    answer's repository id moves what was stored under the former name."""
    world.promote(repositories=[REPO])
    world.open_pull(7, head_sha=HEAD)
    world.fake.rename_repo(REPO, RENAMED)
    world.fake.push(RENAMED, 7, PUSHED)
    report = run_sweep(world)
    assert report.failures == []
    [run] = world.fake.check_runs_for(RENAMED, PUSHED, name="mentor-approval")
    assert run["conclusion"] == "action_required"
    assert world.fake.violations == []
    with world.session() as session:
        assert session.exec(select(PullRequest)).one().repo == RENAMED


# ---------------------------------------------------------------- the sweep's searches


def announce(world, repos: list[str], *, installation_id: int, private: bool = False):
    """An ``installation_repositories`` event adding ``repos`` to an installation."""
    payload = Events(installation_id=installation_id).installation_repositories(
        "added", added=repos
    )
    for listed in payload["repositories_added"]:
        listed["private"] = private
    world.send("installation_repositories", payload)


def test_a_lost_installation_event_heals_at_the_first_sweep(world):
    """Reproduction: the App is installed on psf (installation 2) but its event was lost, so
    no row says who covers psf/peps. The sweep's search finds the mentee's PR there, asks
    GitHub once which installation covers the repository, and the PR gets its check at this
    sweep; the next sweep does not ask again."""
    announce(world, [REPO], installation_id=INSTALLATION)
    world.promote()
    world.fake.add_installation(2, account="psf")
    world.fake.add_repo("psf/peps", installation_id=2)
    world.fake.add_pull("psf/peps", 3, author="mpage", head_sha=HEAD)

    report = run_sweep(world)

    assert report.failures == []
    [run] = world.fake.check_runs_for("psf/peps", HEAD, name="mentor-approval")
    assert run["conclusion"] == "action_required"
    with world.session() as session:
        row = session.get(Repository, "psf/peps")
        assert (row.installation_id, row.github_id) == (2, default_repo_id("psf/peps"))
    world.fake.reset_calls()
    run_sweep(world)
    assert not [c for c in world.fake.calls if c.path.endswith("/installation")]


def test_the_sweep_searches_once_per_mentee_across_installations(world):
    """Two installations, two mentees with a pull request in each: two searches in all (one
    per mentee, not one per mentee and installation), and all four pull requests gated."""
    world.fake.add_installation(2, account="psf")
    world.fake.add_repo("psf/peps", installation_id=2)
    announce(world, [REPO], installation_id=INSTALLATION)
    announce(world, ["psf/peps"], installation_id=2)
    world.promote("mpage")
    world.promote("erlend", mentors=("vstinner",))
    shas = {}
    for n, (mentee, repo) in enumerate(
        [(m, r) for m in ("mpage", "erlend") for r in (REPO, "psf/peps")], start=1
    ):
        shas[(repo, n)] = f"{n}" * 40
        world.fake.add_pull(repo, n, author=mentee, head_sha=f"{n}" * 40)
    world.fake.reset_calls()

    report = run_sweep(world)

    assert report.failures == []
    assert len(searches(world)) == 2
    for (repo, _), sha in shas.items():
        [run] = world.fake.check_runs_for(repo, sha, name="mentor-approval")
        assert run["conclusion"] == "action_required"


def test_private_repositories_are_searched_per_installation(world):
    """Another installation's token cannot see a private repository: the mentee's PR in
    installation 2's private repository is found by a search of installation 2's private
    repositories alone, made with its own token, and gated."""
    world.fake.add_installation(2, account="psf")
    world.fake.add_repo("psf/secret", installation_id=2, private=True)
    announce(world, [REPO], installation_id=INSTALLATION)
    announce(world, ["psf/secret"], installation_id=2, private=True)
    world.promote()
    world.fake.add_pull(REPO, 1, author="mpage", head_sha="1" * 40)
    world.fake.add_pull("psf/secret", 2, author="mpage", head_sha="2" * 40)
    world.fake.reset_calls()

    report = run_sweep(world)

    assert report.failures == []
    assert sorted((c.auth, "is:private" in c.query["q"]) for c in searches(world)) == [
        ("installation:1", False),
        ("installation:2", True),
    ]
    for repo, sha in ((REPO, "1" * 40), ("psf/secret", "2" * 40)):
        [run] = world.fake.check_runs_for(repo, sha, name="mentor-approval")
        assert run["conclusion"] == "action_required"


def test_scanning_a_renamed_repository_by_its_former_name_ends(world):
    """GitHub redirects a renamed repository's pull request list, and PyGithub follows the
    redirect without the query (every page would be the first): the scan stops with a failure
    instead of reading page one for ever, and the repository is read again once renamed."""
    world.open_pull(1, author="guido", head_sha="1" * 40)
    world.fake.rename_repo(REPO, RENAMED)
    for number in range(2, 40):
        world.fake.add_pull(RENAMED, number, author="guido", head_sha=f"{number:040x}")

    report = run_sweep(world)

    assert report.failures == [
        f"{REPO}: {REPO}'s pull requests are redirected (renamed or transferred?)"
    ]
