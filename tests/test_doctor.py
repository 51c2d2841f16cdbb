"""``gatekeeper doctor`` and ``/admin/health`` against the fake GitHub: each planted fault is
found, named and given its fix; a healthy service passes every check."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlmodel import Session

from fakegithub import FakeGitHub
from gate_support import INSTALLATION, REPO, app_for
from gatekeeper import create_app, db, github_of
from gatekeeper.app_manifest import REQUIRED_EVENTS, REQUIRED_PERMISSIONS
from gatekeeper.cli import cli
from gatekeeper.config import normalise_database_url
from gatekeeper.models import CommitCheck, Delivery, SweepRun, utcnow

CHECK = "mentor-approval"


class Service:
    """A healthy Gatekeeper on the fake GitHub, and the means to break it."""

    def __init__(self, fake: FakeGitHub, database_url: str, **settings: object) -> None:
        self.fake, self.database_url = fake, database_url
        fake.set_protection(REPO, "main", checks=[{"context": CHECK, "app_id": fake.app_id}])
        self.app = app_for(
            fake,
            database_url,
            github_client_id="Iv1.client",
            github_client_secret="client-secret",
            maintainers="ambv",
            **settings,
        )
        self.swept(minutes_ago=4)

    @property
    def the_app(self):  # the fake's record of the App: permissions and events to plant
        return self.fake.apps[self.fake.app_id]

    def session(self) -> Session:
        return Session(self.app.extensions["gatekeeper.engine"], expire_on_commit=False)

    def swept(self, *, minutes_ago: int) -> None:
        with self.session() as session:
            session.merge(
                SweepRun(name="sweep", finished_at=utcnow() - timedelta(minutes=minutes_ago))
            )
            session.commit()

    def doctor(self, *args: str):
        """``gatekeeper doctor --json``: the exit code and the failed checks by name."""
        result = self.app.test_cli_runner().invoke(cli, ["doctor", "--json", *args])
        document = json.loads(result.stdout)
        assert document["ok"] == (result.exit_code == 0)
        failed = {check["name"]: check for check in document["checks"] if not check["ok"]}
        return result.exit_code, failed, document

    def close(self) -> None:
        github_of(self.app).close()
        self.app.extensions["gatekeeper.engine"].dispose()


@pytest.fixture
def service(github_fake, database_url):
    running = Service(github_fake, database_url)
    yield running
    running.close()


def test_a_healthy_service_passes_every_check(service):
    """Settings, App, permissions, events, the installation, the repository's protection,
    the database, the outbox and the sweep: every check passes, exit 0."""
    code, failed, document = service.doctor()
    assert (code, failed) == (0, {})
    names = [check["name"] for check in document["checks"]]
    assert names == [
        "settings: GitHub App",
        "settings: webhook secret",
        "settings: OAuth client",
        "settings: SECRET_KEY",
        "settings: base URL",
        "GitHub: App authentication",
        "GitHub: permissions",
        "GitHub: administration permission (optional)",
        "GitHub: events",
        f"installation {INSTALLATION} (python)",
        f"protection: {REPO}",
        "database",
        "deliveries",
        "outbox",
        "sweep",
        "team chat",
    ]
    assert all(set(check) == {"name", "ok", "detail", "fix"} for check in document["checks"])
    text = service.app.test_cli_runner().invoke(cli, ["doctor"])
    assert text.exit_code == 0
    assert text.output.splitlines()[-1] == "All checks passed."


def test_a_missing_permission_is_named_with_its_fix(service):
    """The App holds checks: read only: the permissions check names checks: write."""
    service.the_app.permissions["checks"] = "read"
    code, failed, _ = service.doctor()
    assert code == 1 and set(failed) == {"GitHub: permissions"}
    assert failed["GitHub: permissions"]["detail"] == "missing checks: write"
    assert "grant checks: write at " in failed["GitHub: permissions"]["fix"]
    assert "/settings/apps/gatekeeper-test/permissions" in failed["GitHub: permissions"]["fix"]


@pytest.mark.parametrize("permission", sorted(REQUIRED_PERMISSIONS))
def test_each_required_permission_is_checked(service, permission):
    """Whichever required permission is taken away, doctor names it."""
    del service.the_app.permissions[permission]
    code, failed, _ = service.doctor()
    assert code == 1 and set(failed) == {"GitHub: permissions"}
    wanted = f"{permission}: {REQUIRED_PERMISSIONS[permission]}"
    assert failed["GitHub: permissions"]["detail"] == f"missing {wanted}"


def test_administration_is_optional(service):
    """Without administration the App is healthy; the verdict says protect cannot run."""
    del service.the_app.permissions["administration"]
    code, failed, document = service.doctor()
    assert (code, failed) == (0, {})
    optional = next(c for c in document["checks"] if "administration" in c["name"])
    assert optional["ok"] and "`gatekeeper protect` cannot edit" in optional["detail"]


def test_organisation_administration_is_reported_when_granted(service):
    """With organization_administration the optional verdict says `protect --org` can write."""
    _, _, document = service.doctor()
    optional = next(c for c in document["checks"] if "administration" in c["name"])
    assert "`protect --org` can too" in optional["detail"]
    del service.the_app.permissions["organization_administration"]
    _, _, document = service.doctor()
    optional = next(c for c in document["checks"] if "administration" in c["name"])
    assert optional["ok"] and "--org" not in optional["detail"]


@pytest.mark.parametrize("event", REQUIRED_EVENTS)
def test_a_missing_event_is_named_with_its_fix(service, event):
    """An App not subscribed to one of the events Gatekeeper needs: the events check names it."""
    service.the_app.events.remove(event)
    code, failed, _ = service.doctor()
    assert code == 1 and set(failed) == {"GitHub: events"}
    assert failed["GitHub: events"]["detail"] == f"not subscribed to {event}"
    assert failed["GitHub: events"]["fix"].startswith(f"subscribe the App to {event} at ")


def test_an_unreachable_installation_is_named_with_its_fix(service):
    """The installation's token is refused (404, as for a deleted installation)."""
    service.fake.fail_next(
        "POST", rf"/app/installations/{INSTALLATION}/access_tokens", status=404, times=3
    )
    code, failed, _ = service.doctor()
    name = f"installation {INSTALLATION} (python)"
    assert code == 1 and set(failed) == {name}
    assert "unreachable" in failed[name]["detail"] and "404" in failed[name]["detail"]
    assert failed[name]["fix"].startswith("reinstall the App on python")


def test_a_repository_without_the_required_check_is_named_with_its_fix(service):
    """A second installed repository whose branch requires only other checks."""
    service.fake.add_repo("python/peps", installation_id=INSTALLATION)
    service.fake.set_protection("python/peps", "main", contexts=["lint"])
    code, failed, _ = service.doctor()
    assert code == 1 and set(failed) == {"protection: python/peps"}
    assert failed["protection: python/peps"]["detail"] == "main does not require mentor-approval"
    assert failed["protection: python/peps"]["fix"] == "run `gatekeeper protect python/peps`"


def test_an_unprotected_branch_and_a_check_from_any_source_fail(service):
    """Unprotected: turn protection on, then protect. Required from any app: protect."""
    service.fake.add_repo("python/peps", installation_id=INSTALLATION, default_branch="trunk")
    service.fake.set_protection(REPO, "main", checks=[{"context": CHECK, "app_id": None}])
    code, failed, _ = service.doctor()
    assert code == 1 and set(failed) == {"protection: python/peps", f"protection: {REPO}"}
    assert "trunk requires no status checks" in failed["protection: python/peps"]["detail"]
    assert failed["protection: python/peps"]["fix"].endswith("run `gatekeeper protect python/peps`")
    assert "from any source" in failed[f"protection: {REPO}"]["detail"]
    assert failed[f"protection: {REPO}"]["fix"].startswith(f"run `gatekeeper protect {REPO}`")


def status_checks_rule(*checks: dict) -> dict:
    """A ``required_status_checks`` rule requiring ``checks``."""
    return {
        "type": "required_status_checks",
        "parameters": {
            "required_status_checks": list(checks),
            "strict_required_status_checks_policy": False,
        },
    }


def test_a_repository_covered_only_by_an_organisation_ruleset_passes(service):
    """python/peps has no branch protection and no ruleset of its own; the organisation's
    ruleset requires the check from this App on every default branch: it passes, saying so."""
    service.fake.add_repo("python/peps", installation_id=INSTALLATION, default_branch="trunk")
    ruleset = service.fake.add_ruleset(
        "python",
        name=CHECK,
        rules=[status_checks_rule({"context": CHECK, "integration_id": service.fake.app_id})],
    )
    code, failed, document = service.doctor()
    assert (code, failed) == (0, {})
    [peps] = [check for check in document["checks"] if check["name"] == "protection: python/peps"]
    assert peps["detail"] == (
        f"trunk requires {CHECK} from this App (organisation ruleset {ruleset['id']} of python)"
    )


@pytest.mark.parametrize("source", ["python/peps", "python"])
def test_a_ruleset_check_without_the_apps_id_fails_with_its_fix(service, source):
    """A ruleset (the repository's or the organisation's) requires the check without an
    integration_id: anyone who can post a status could pass it, so it is a failure whose fix
    is protect; a ruleset that is not enforced ("disabled") does not count."""
    service.fake.add_repo("python/peps", installation_id=INSTALLATION)
    ruleset = service.fake.add_ruleset(
        source, name="checks", rules=[status_checks_rule({"context": "ci"}, {"context": CHECK})]
    )
    service.fake.add_ruleset(
        "python/peps",
        name="off",
        enforcement="disabled",
        rules=[status_checks_rule({"context": CHECK, "integration_id": service.fake.app_id})],
    )
    code, failed, _ = service.doctor()
    assert code == 1 and set(failed) == {"protection: python/peps"}
    kind = "organisation" if source == "python" else "repository"
    assert failed["protection: python/peps"]["detail"] == (
        f"main requires {CHECK} from any source, not only this App ({kind} ruleset"
        f" {ruleset['id']} of {source}): anyone who can post a status can pass it"
    )
    assert failed["protection: python/peps"]["fix"] == (
        f"run `gatekeeper protect python/peps` (it pins the check to App {service.fake.app_id})"
    )


def test_a_check_pinned_to_another_app_fails(service):
    """Branch protection pins the check to another App: that App, not this one, can pass it."""
    service.fake.set_protection(REPO, "main", checks=[{"context": CHECK, "app_id": 15368}])
    code, failed, _ = service.doctor()
    assert code == 1 and set(failed) == {f"protection: {REPO}"}
    assert (
        "from App 15368, not only this App (branch protection)"
        in (failed[f"protection: {REPO}"]["detail"])
    )


def test_the_repository_after_protect_passes(service):
    """An unprotected repository fails; `gatekeeper protect` makes its ruleset; doctor passes."""
    service.fake.add_repo("python/peps", installation_id=INSTALLATION)
    code, failed, _ = service.doctor()
    assert code == 1
    assert set(failed) == {"protection: python/peps"}
    assert service.app.test_cli_runner().invoke(cli, ["protect", "python/peps"]).exit_code == 0
    assert service.doctor()[:2] == (0, {})


def test_an_unmigrated_database_is_named_with_its_fix(github_fake, database_url):
    """A database left at the first revision: migrate it; outbox and sweep are not read."""
    db.upgrade(normalise_database_url(database_url), "0001")
    broken = create_app(
        {
            "database_url": database_url,
            "github_app_id": github_fake.app_id,
            "github_private_key": github_fake.private_key_pem,
            "github_api_url": github_fake.api_url,
            "github_url": github_fake.url,
            "TESTING": True,
        }
    )
    github_fake.set_protection(
        REPO, "main", checks=[{"context": CHECK, "app_id": github_fake.app_id}]
    )
    result = broken.test_cli_runner().invoke(cli, ["doctor", "--json"])
    document = json.loads(result.stdout)
    failed = {c["name"]: c for c in document["checks"] if not c["ok"]}
    assert result.exit_code == 1
    assert {"database", "deliveries", "outbox", "sweep"} <= set(failed)
    assert failed["database"]["detail"].startswith(
        "its tables are out of date: at migration 0001, the code needs "
    )
    assert failed["database"]["fix"] == "run `gatekeeper db upgrade` (the Procfile's release step)"
    github_of(broken).close()
    broken.extensions["gatekeeper.engine"].dispose()


def test_an_old_outbox_row_is_named_with_its_fix(service):
    """A check desired eleven minutes ago and never posted: the worker is not working."""
    with service.session() as session:
        session.add(
            CommitCheck(
                repo=REPO,
                head_sha="a" * 40,
                name=CHECK,
                version=1,
                body={"conclusion": "success"},
                desired_at=utcnow() - timedelta(minutes=11),
            )
        )
        session.commit()
    code, failed, _ = service.doctor()
    assert code == 1 and set(failed) == {"outbox"}
    assert failed["outbox"]["detail"] == "1 checks wait, the oldest for 11 min"
    assert "`gatekeeper worker`" in failed["outbox"]["fix"]


def queued_delivery(service, *, minutes_ago: int) -> None:
    with service.session() as session:
        received = utcnow() - timedelta(minutes=minutes_ago)
        session.add(
            Delivery(
                delivery_id="d-1", event="pull_request", received_at=received, outcome="queued"
            )
        )
        session.commit()


def test_a_delivery_left_queued_is_named_with_its_fix(service):
    """A delivery stored three minutes ago and never applied: no worker is running."""
    queued_delivery(service, minutes_ago=3)
    code, failed, _ = service.doctor()
    assert code == 1 and set(failed) == {"deliveries"}
    assert failed["deliveries"]["detail"] == "1 delivery waits to be applied, the oldest for 3 min"
    assert "`gatekeeper worker`" in failed["deliveries"]["fix"]


def test_a_delivery_queued_a_minute_ago_is_no_fault(service):
    """A delivery stored a minute ago is work in progress, not a fault."""
    queued_delivery(service, minutes_ago=1)
    assert service.doctor()[:2] == (0, {})


def test_a_fresh_outbox_row_is_no_fault(service):
    """A check desired a minute ago is work in progress, not a fault."""
    with service.session() as session:
        session.add(
            CommitCheck(repo=REPO, head_sha="a" * 40, name=CHECK, version=1, desired_at=utcnow())
        )
        session.commit()
    code, failed, _ = service.doctor()
    assert (code, failed) == (0, {})


@pytest.mark.parametrize("minutes_ago", [31, None])
def test_a_stale_or_missing_sweep_is_named_with_its_fix(service, minutes_ago):
    """The last sweep finished 31 minutes ago, or no sweep ever finished: run the clock."""
    if minutes_ago is None:
        with service.session() as session:
            session.execute(sa.delete(SweepRun))
            session.commit()
    else:
        service.swept(minutes_ago=minutes_ago)
    code, failed, _ = service.doctor()
    assert code == 1 and set(failed) == {"sweep"}
    expected = (
        "no sweep has ever finished"
        if minutes_ago is None
        else "the last sweep finished 31 min ago"
    )
    assert failed["sweep"]["detail"] == expected
    assert "`gatekeeper sweep --loop 300`" in failed["sweep"]["fix"]


def test_settings_faults_are_named(github_fake, database_url):
    """Production with the development base URL and no OAuth client or webhook secret."""
    github_fake.set_protection(
        REPO, "main", checks=[{"context": CHECK, "app_id": github_fake.app_id}]
    )
    app = app_for(github_fake, database_url, env="production", base_url="http://127.0.0.1:5000",
                  github_webhook_secret=None)  # fmt: skip
    with Session(app.extensions["gatekeeper.engine"]) as session:
        session.add(SweepRun(name="sweep", finished_at=utcnow()))
        session.commit()
    result = app.test_cli_runner().invoke(cli, ["doctor", "--json"])
    failed = {c["name"]: c for c in json.loads(result.stdout)["checks"] if not c["ok"]}
    assert result.exit_code == 1
    assert set(failed) == {
        "settings: webhook secret",
        "settings: OAuth client",
        "settings: base URL",
    }
    assert "GATEKEEPER_BASE_URL" in failed["settings: base URL"]["fix"]
    github_of(app).close()
    app.extensions["gatekeeper.engine"].dispose()


def test_a_refused_jwt_stops_the_github_checks(github_fake, database_url):
    """The App's key is not the one GitHub holds: authentication fails, with the fix."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    wrong = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    github_fake.set_protection(
        REPO, "main", checks=[{"context": CHECK, "app_id": github_fake.app_id}]
    )
    app = app_for(github_fake, database_url, github_private_key=wrong)
    result = app.test_cli_runner().invoke(cli, ["doctor", "--json"])
    failed = {c["name"]: c for c in json.loads(result.stdout)["checks"] if not c["ok"]}
    assert result.exit_code == 1
    assert "GitHub: App authentication" in failed
    assert "401" in failed["GitHub: App authentication"]["detail"]
    assert "GITHUB_PRIVATE_KEY" in failed["GitHub: App authentication"]["fix"]
    github_of(app).close()
    app.extensions["gatekeeper.engine"].dispose()


# ---------------------------------------------------------------- /admin/health


def _signed_in(client, login: str) -> None:
    with client.session_transaction() as session:
        session["login"], session["display"] = login, login


def test_maintainers_see_the_checks_on_admin_health(service):
    """A maintainer sees every check; a planted fault shows with its fix."""
    service.the_app.events.remove("merge_group")
    client = service.app.test_client()
    _signed_in(client, "ambv")
    page = client.get("/admin/health")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "1 of 16 checks failed." in html
    assert "not subscribed to merge_group" in html
    assert f"protection: {REPO}" in html


def test_admin_health_reads_rulesets_too(service):
    """/admin/health passes a repository its organisation's ruleset covers and shows, with
    its fix, one whose ruleset accepts the check from any source."""
    service.fake.add_repo("python/peps", installation_id=INSTALLATION)
    service.fake.add_repo("python/devguide", installation_id=INSTALLATION)
    pinned = {"context": CHECK, "integration_id": service.fake.app_id}
    org = service.fake.add_ruleset(
        "python", name=CHECK, rules=[status_checks_rule(pinned)], repository_include=["peps"]
    )
    service.fake.add_ruleset(
        "python/devguide", name="any", rules=[status_checks_rule({"context": CHECK})]
    )
    client = service.app.test_client()
    _signed_in(client, "ambv")
    html = client.get("/admin/health").get_data(as_text=True)
    assert "1 of 18 checks failed." in html
    assert (
        f"main requires {CHECK} from this App (organisation ruleset {org['id']} of python)" in html
    )
    assert "from any source, not only this App (repository ruleset" in html
    assert "run <code>gatekeeper protect python/devguide</code>" in html


def test_others_may_not_see_admin_health(service):
    """Signed out: sent to sign in. Signed in but not a maintainer: 403, and GitHub is not asked."""
    client = service.app.test_client()
    assert client.get("/admin/health").status_code == 302
    _signed_in(client, "mpage")
    service.fake.reset_calls()
    page = client.get("/admin/health")
    assert page.status_code == 403
    assert "Only maintainers can see the service" in page.get_data(as_text=True)
    assert service.fake.calls == []


def test_admin_health_says_things_in_words_and_renders_code_as_code(service):
    """The database's verdict is a sentence, not "reachable, at 0012"; a fix naming a command
    shows it as code, with no backtick left on the page."""
    with service.session() as session:
        session.delete(session.get(SweepRun, "sweep"))
        session.commit()
    client = service.app.test_client()
    _signed_in(client, "ambv")
    html = client.get("/admin/health").get_data(as_text=True)
    assert "answers, and its tables are up to date (migration " in html
    assert "reachable, at" not in html
    assert "<code>gatekeeper sweep --loop 300</code>" in html
    assert "`" not in html


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("run `gatekeeper protect a/b`", "run <code>gatekeeper protect a/b</code>"),
        ("`<b>` and `x`", "<code>&lt;b&gt;</code> and <code>x</code>"),
        ("one ` alone <i>", "one ` alone &lt;i&gt;"),
    ],
    ids=["a-command", "escaped-inside", "unpaired-stays-text"],
)
def test_code_spans_escape_everything_and_pair_backticks(text, shown):
    """Backticked parts become code, everything else stays escaped text."""
    from gatekeeper.doctor import code_spans

    assert str(code_spans(text)) == shown


def test_admin_health_in_the_demo_knows_it_is_the_demo(tmp_path):
    """In ``gatekeeper demo`` (no GitHub, sample people signed in without it) the health page
    says so and fails nothing: never "nobody can sign in" to someone signed in."""
    from gatekeeper import demo, people

    app = demo.demo_app(tmp_path / "demo.sqlite")
    try:
        client = app.test_client()
        _signed_in(client, demo.MAINTAINER)
        with client.session_transaction() as session:
            session["user_id"] = people.offline_id(demo.MAINTAINER)  # the demo's accounts
        html = client.get("/admin/health").get_data(as_text=True)
    finally:
        app.extensions["gatekeeper.engine"].dispose()
    assert "This is <code>gatekeeper demo</code>" in html
    assert "nobody can sign in" not in html
    assert "the demo signs its sample people in without GitHub" in html
    assert '<tr class="failed">' not in html
    assert "Every check passed." in html
