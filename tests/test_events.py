"""Every committed real payload parses into the small typed views Gatekeeper uses."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gatekeeper.events import (
    PayloadError,
    envelope,
    installation_repositories,
    pull_info,
    review_info,
)
from webhook_events import FIXTURES, example

ALL_FIXTURES = sorted(FIXTURES.glob("*/*.json"))


@pytest.mark.parametrize("path", ALL_FIXTURES, ids=lambda p: f"{p.parent.name}.{p.stem}")
def test_every_fixture_has_an_envelope(path):
    """Each real payload yields an envelope with the sender and repository (where there is one)."""
    event = path.parent.name
    payload = example(event, path.stem)
    info = envelope(event, payload)
    assert info.event == event
    assert info.action == payload.get("action")
    assert info.sender == payload["sender"]["login"].lower()
    if "repository" in payload:
        assert info.repo == payload["repository"]["full_name"].lower()
        assert info.repo_display == payload["repository"]["full_name"]


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("pull_request/*.json")), ids=lambda p: p.stem)
def test_every_pull_request_fixture_parses(path):
    """Every pull_request example parses into a PullInfo with lowercase names."""
    payload = example("pull_request", path.stem)
    info = pull_info(payload["pull_request"])
    assert info.number == payload["pull_request"]["number"]
    assert info.author == payload["pull_request"]["user"]["login"].lower()
    assert info.head_sha == payload["pull_request"]["head"]["sha"]
    assert info.repo == info.repo.lower()
    assert info.updated_at is not None and info.updated_at.tzinfo is UTC


@pytest.mark.parametrize("action", ["submitted", "dismissed"])
def test_review_fixtures_parse_with_uppercase_state(action):
    """Webhook review states are lowercase; the parsed state is REST's uppercase."""
    payload = example("pull_request_review", action)
    info = review_info(payload["review"])
    assert info.state == payload["review"]["state"].upper()
    assert info.reviewer == payload["review"]["user"]["login"].lower()
    assert info.reviewer_display == payload["review"]["user"]["login"]
    # the review's pull request is a simplified object; it still parses
    assert pull_info(payload["pull_request"]).number == payload["pull_request"]["number"]


def test_rest_review_state_is_kept_uppercase():
    """REST reviews already say APPROVED; normalising leaves them so."""
    info = review_info(
        {"id": 1, "user": {"login": "VStinner"}, "state": "APPROVED", "commit_id": "abc" * 13 + "a"}
    )
    assert (info.state, info.reviewer, info.submitted_at) == ("APPROVED", "vstinner", None)


def test_merged_pull_request_reports_merger():
    """merged_by and merged_at are read when a pull request merged."""
    pr = example("pull_request", "closed")["pull_request"]
    pr["merged"], pr["merged_at"], pr["merged_by"] = (
        True,
        "2024-11-20T10:00:00Z",
        {"login": "Yhg1s"},
    )
    info = pull_info(pr)
    assert info.merged and info.merged_by == "yhg1s"
    assert info.merged_at == datetime(2024, 11, 20, 10, tzinfo=UTC)


def test_pull_request_without_head_is_a_payload_error():
    """A payload missing what we need raises PayloadError, not KeyError."""
    pr = example("pull_request", "opened")["pull_request"]
    del pr["head"]
    with pytest.raises(PayloadError, match="head"):
        pull_info(pr)


def test_installation_repositories_lists_added_and_removed():
    """installation_repositories names the repositories added and removed."""
    added, removed = installation_repositories(example("installation_repositories", "added"))
    assert added and all("/" in ref.full_name and ref.github_id for ref in added)
    assert removed == []
    added, removed = installation_repositories(example("installation_repositories", "removed"))
    assert removed and added == []
