"""Settings from the environment: defaults, normalisation, and errors that name the variable."""

from __future__ import annotations

import pytest

from gatekeeper import create_app, settings_of
from gatekeeper.config import (
    ConfigError,
    Settings,
    instance_path,
    normalise_database_url,
    parse_logins,
)

INSTANCE = "/srv/gatekeeper/instance"


def settings(**environ: str) -> Settings:
    """Settings read from exactly ``environ``."""
    return Settings.from_env(environ, instance_path=INSTANCE)


def test_defaults_with_an_empty_environment():
    """With nothing set, the service runs on the embedded SQLite file and without GitHub."""
    found = settings()
    assert found.database_url == f"sqlite:///{INSTANCE}/gatekeeper.sqlite"
    assert found.uses_embedded_database
    assert found.env == "development" and not found.is_production
    assert found.secret_key is None
    assert not found.github_app_configured and not found.oauth_configured
    assert found.github_api_url == "https://api.github.com"
    assert found.github_url == "https://github.com"
    assert found.base_url == "http://127.0.0.1:5000"
    assert found.check_name == "mentor-approval"
    assert found.maintainers == frozenset()
    assert found.request_reviews is True


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@db.example:5432/gk", "postgresql+psycopg://u:p@db.example:5432/gk"),
        ("postgresql://u@localhost/gk", "postgresql+psycopg://u@localhost/gk"),
        ("postgresql+psycopg://u@localhost/gk", "postgresql+psycopg://u@localhost/gk"),
        ("sqlite:////tmp/gk.sqlite", "sqlite:////tmp/gk.sqlite"),
    ],
    ids=["heroku", "plain", "already-psycopg", "sqlite"],
)
def test_database_url_is_normalised_to_psycopg3(given, expected):
    """Heroku's postgres:// and plain postgresql:// both use psycopg 3; other URLs are kept."""
    assert normalise_database_url(given) == expected
    found = settings(DATABASE_URL=given)
    assert found.database_url == expected
    assert not found.uses_embedded_database


def test_database_url_override_is_normalised_too():
    """A test's ``database_url`` override goes through the same normalisation."""
    found = Settings.from_env(
        {}, instance_path=INSTANCE, overrides={"database_url": "postgres://u@h/d"}
    )
    assert found.database_url == "postgresql+psycopg://u@h/d"
    assert not found.uses_embedded_database


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", frozenset()),
        ("Colesbury", frozenset({"colesbury"})),
        (" Colesbury , @Vstinner,,ambv ", frozenset({"colesbury", "vstinner", "ambv"})),
    ],
)
def test_maintainers_are_lowercased_logins(raw, expected):
    """GATEKEEPER_MAINTAINERS is comma-separated, trimmed, without @, and lowercase."""
    assert settings(GATEKEEPER_MAINTAINERS=raw).maintainers == expected
    assert parse_logins(raw) == expected


@pytest.mark.parametrize("given", ["Colesbury,AMBV", ["Colesbury", "AMBV"], ("Colesbury", "AMBV")])
def test_maintainers_override_accepts_text_or_lists(given):
    """Tests may override maintainers with a string or a list; both end up lowercase."""
    found = Settings.from_env({}, instance_path=INSTANCE, overrides={"maintainers": given})
    assert found.maintainers == frozenset({"colesbury", "ambv"})


def test_github_app_id_is_parsed_as_a_number():
    """A numeric GITHUB_APP_ID is kept as an int; with a key the App counts as configured."""
    found = settings(GITHUB_APP_ID=" 12345 ", GITHUB_PRIVATE_KEY="-----BEGIN KEY-----")
    assert found.github_app_id == 12345
    assert found.github_app_configured


def test_bad_github_app_id_names_the_variable():
    """A non-numeric GITHUB_APP_ID is refused with a message naming it and the bad value."""
    with pytest.raises(ConfigError, match=r"^GITHUB_APP_ID must be a number, got 'gatekeeper'$"):
        settings(GITHUB_APP_ID="gatekeeper")


def test_escaped_newlines_in_the_private_key_are_unescaped():
    """Hosts that cannot hold newlines may give the PEM key with literal \\n escapes."""
    escaped = r"-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nIBAAK\n-----END RSA PRIVATE KEY-----"
    found = settings(GITHUB_PRIVATE_KEY=escaped)
    assert found.github_private_key == (
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nIBAAK\n-----END RSA PRIVATE KEY-----"
    )


def test_private_key_is_read_from_a_path(tmp_path):
    """GITHUB_PRIVATE_KEY_PATH names a file holding the PEM key."""
    key = tmp_path / "app.pem"
    key.write_text("-----BEGIN KEY-----\nabc\n-----END KEY-----\n")
    assert settings(GITHUB_PRIVATE_KEY_PATH=str(key)).github_private_key == key.read_text()


def test_inline_private_key_wins_over_the_path(tmp_path):
    """When both are set, the inline key is used and the path is not read."""
    found = settings(GITHUB_PRIVATE_KEY="inline", GITHUB_PRIVATE_KEY_PATH=str(tmp_path / "none"))
    assert found.github_private_key == "inline"


def test_unreadable_private_key_path_names_the_variable_and_file(tmp_path):
    """A key path that cannot be read fails fast with the variable, the path and the reason."""
    missing = tmp_path / "missing.pem"
    with pytest.raises(ConfigError) as raised:
        settings(GITHUB_PRIVATE_KEY_PATH=str(missing))
    message = str(raised.value)
    assert message.startswith("GITHUB_PRIVATE_KEY_PATH: cannot read ")
    assert str(missing) in message and "No such file or directory" in message


def test_production_without_secret_key_is_an_error():
    """GATEKEEPER_ENV=production refuses to start without SECRET_KEY, and says so."""
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        settings(GATEKEEPER_ENV="production")


def test_production_with_secret_key_uses_secure_cookies(tmp_path, monkeypatch):
    """In production the secret is the configured one and cookies are Secure."""
    monkeypatch.setenv("GATEKEEPER_ENV", "Production")
    monkeypatch.setenv("SECRET_KEY", "s3cret")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'gk.sqlite'}")
    app = create_app()
    try:
        assert settings_of(app).is_production
        assert app.config["SECRET_KEY"] == "s3cret"
        assert app.config["SESSION_COOKIE_SECURE"] is True
    finally:
        app.extensions["gatekeeper.engine"].dispose()


def test_create_app_in_production_without_secret_key_raises(monkeypatch):
    """The app factory itself refuses production without SECRET_KEY."""
    monkeypatch.setenv("GATEKEEPER_ENV", "production")
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        create_app()


def test_development_without_secret_key_gets_a_random_one(tmp_path):
    """Outside production a missing SECRET_KEY is replaced by a random per-process key."""
    url = f"sqlite:///{tmp_path / 'gk.sqlite'}"
    first, second = create_app({"database_url": url}), create_app({"database_url": url})
    try:
        assert len(first.config["SECRET_KEY"]) == 64
        assert first.config["SECRET_KEY"] != second.config["SECRET_KEY"]
    finally:
        for app in (first, second):
            app.extensions["gatekeeper.engine"].dispose()


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("GATEKEEPER_ENV", "staging", "GATEKEEPER_ENV must be one of development, production"),
        ("GATEKEEPER_REQUEST_REVIEWS", "maybe", "GATEKEEPER_REQUEST_REVIEWS must be true or false"),
    ],
)
def test_bad_choices_name_the_variable(name, value, message):
    """Unknown values for enumerated settings are refused with the variable's name."""
    with pytest.raises(ConfigError, match=message):
        settings(**{name: value})


@pytest.mark.parametrize(
    ("raw", "expected"), [("false", False), ("0", False), ("Yes", True), ("on", True)]
)
def test_request_reviews_flag(raw, expected):
    """GATEKEEPER_REQUEST_REVIEWS accepts the usual spellings of true and false."""
    assert settings(GATEKEEPER_REQUEST_REVIEWS=raw).request_reviews is expected


def test_urls_and_names_from_the_environment():
    """GitHub and base URLs lose a trailing slash; the check name and OAuth client are read."""
    found = settings(
        GITHUB_API_URL="https://ghe.example/api/v3/",
        GITHUB_URL="https://ghe.example/",
        GATEKEEPER_BASE_URL="https://gatekeeper.example/",
        GATEKEEPER_CHECK_NAME="mentor-ok",
        GITHUB_CLIENT_ID="Iv1.abc",
        GITHUB_CLIENT_SECRET="shh",
        GITHUB_WEBHOOK_SECRET="hook",
    )
    assert found.github_api_url == "https://ghe.example/api/v3"
    assert found.github_url == "https://ghe.example"
    assert found.base_url == "https://gatekeeper.example"
    assert found.check_name == "mentor-ok"
    assert found.oauth_configured
    assert found.github_webhook_secret == "hook"


def test_the_app_does_not_read_the_developers_environment(app):
    """The autouse fixture clears GITHUB_*/GATEKEEPER_*: the test app has GitHub unconfigured."""
    found = settings_of(app)
    assert found.github_app_id is None and not found.github_app_configured
    assert found.maintainers == frozenset()


# ---------------------------------------------------------------- the env file (`register`)

PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----\n"


def test_the_instance_env_file_supplies_what_the_environment_does_not_set(tmp_path):
    """instance/github-app.env is read by default; every variable the environment sets wins."""
    (tmp_path / "github-app.env").write_text(
        "# written by gatekeeper register\n"
        "\n"
        "GITHUB_APP_ID=17\n"
        f"GITHUB_PRIVATE_KEY={PEM.replace(chr(10), chr(92) + 'n')}\n"
        "GITHUB_WEBHOOK_SECRET=from-the-file\n"
        "GITHUB_URL=https://ghe.example\n"
    )
    found = Settings.from_env(
        {"GITHUB_WEBHOOK_SECRET": "from-the-environment", "GITHUB_URL": ""},
        instance_path=str(tmp_path),
    )
    assert found.github_app_id == 17
    assert found.github_private_key == PEM  # the \\n escapes read back as newlines
    assert found.github_webhook_secret == "from-the-environment"
    # Set, even to nothing, is the environment's say: the file does not fill it in.
    assert found.github_url == "https://github.com"


def test_gatekeeper_env_file_names_another_file(tmp_path):
    """GATEKEEPER_ENV_FILE points the loader at a file outside the instance folder."""
    elsewhere = tmp_path / "etc" / "gatekeeper.env"
    elsewhere.parent.mkdir()
    elsewhere.write_text("GITHUB_APP_SLUG=our-gatekeeper\n")
    (tmp_path / "github-app.env").write_text("GITHUB_APP_SLUG=ignored\n")
    found = Settings.from_env({"GATEKEEPER_ENV_FILE": str(elsewhere)}, instance_path=str(tmp_path))
    assert found.github_app_slug == "our-gatekeeper"


def test_a_missing_default_env_file_is_no_app_yet(tmp_path):
    """Without instance/github-app.env the settings are the environment's alone."""
    found = Settings.from_env({"GITHUB_APP_ID": "5"}, instance_path=str(tmp_path))
    assert found.github_app_id == 5 and found.github_private_key is None


def test_a_missing_named_env_file_is_an_error(tmp_path):
    """A GATEKEEPER_ENV_FILE that does not exist is refused, naming the variable and file."""
    missing = tmp_path / "nope.env"
    with pytest.raises(ConfigError, match=f"GATEKEEPER_ENV_FILE: cannot read {missing}"):
        Settings.from_env({"GATEKEEPER_ENV_FILE": str(missing)}, instance_path=str(tmp_path))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("GITHUB_APP_ID=1\nthis line has no equals sign s3cret\n", "line 2: expected NAME=value"),
        ("# ok\nexport GITHUB_APP_ID=1\n", "line 2: expected NAME=value"),
        ("GITHUB_APP_ID = 1\n", "line 1: expected NAME=value"),
        (
            "GITHUB_APP_ID=1\n\nGITHUB_APP_ID=2\n",
            "line 3: GITHUB_APP_ID is set again \\(first on line 1\\)",
        ),
    ],
    ids=["no-equals", "export", "spaces", "twice"],
)
def test_a_malformed_env_file_line_names_the_file_and_line(tmp_path, text, message):
    """A bad line is refused with the file and its line number, and never the line's text."""
    path = tmp_path / "github-app.env"
    path.write_text(text)
    with pytest.raises(ConfigError, match=f"^{path}, {message}$") as raised:
        Settings.from_env({}, instance_path=str(tmp_path))
    assert "s3cret" not in str(raised.value)


def test_create_app_reads_the_env_file(tmp_path, monkeypatch):
    """The app's settings (and so every command's) come from the env file too."""
    path = tmp_path / "github-app.env"
    path.write_text("GITHUB_CLIENT_ID=Iv1.file\nGITHUB_CLIENT_SECRET=file-secret\n")
    monkeypatch.setenv("GATEKEEPER_ENV_FILE", str(path))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'x.sqlite'}")
    found = settings_of(create_app())
    assert (found.github_client_id, found.github_client_secret) == ("Iv1.file", "file-secret")


def test_the_instance_folder_is_the_one_flask_would_choose():
    """The instance folder found without Flask (for status and list) is Flask's own default,
    so every command finds the same embedded database and env file."""
    from flask import Flask

    assert instance_path() == Flask("gatekeeper").instance_path
