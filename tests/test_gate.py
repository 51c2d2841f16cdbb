"""The pure gate decision: every rule of evaluate(), and its independence from event order."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gatekeeper.gate import (
    ACTION_REQUIRED,
    SUCCESS,
    Pull,
    Signal,
    Terms,
    approval_refusal,
    blocker,
    evaluate,
    reviewers_to_request,
    signal_verdicts,
    standing_approvals,
)

START = datetime(2024, 11, 8, 12, 0, tzinfo=UTC)
NOW = START + timedelta(days=10)
HEAD = "a" * 40
OLD = "b" * 40


def uid(login: str) -> int:
    """Each login's account id in these tests (a renamed or taken-over login gets others)."""
    return sum(ord(c) * 31**i for i, c in enumerate(login)) % 1_000_000 + 1


def terms(**changes) -> Terms:
    values = dict(
        mentee="mpage",
        mentors=frozenset({"colesbury", "vstinner"}),
        started_at=START,
        ends_at=START + timedelta(days=30),
        id=1,
        mentor_display=("colesbury", "vstinner"),
    )
    values.update(changes)
    values.setdefault("mentee_id", uid(values["mentee"]))
    values.setdefault("mentor_ids", {uid(m): m for m in values["mentors"]})
    return Terms(**values)


def pull(**changes) -> Pull:
    values = dict(repo="python/cpython", number=7, author="mpage", head_sha=HEAD)
    values.update(changes)
    values.setdefault("author_id", uid(values["author"]))
    return Pull(**values)


def review(
    reviewer: str, state: str = "APPROVED", commit: str = HEAD, minutes: int = 0, **extra
) -> Signal:
    extra.setdefault("reviewer_id", uid(reviewer))
    return Signal(
        reviewer=reviewer,
        state=state,
        commit_id=commit,
        submitted_at=NOW - timedelta(hours=1) + timedelta(minutes=minutes),
        **extra,
    )


def test_author_without_mentorship_passes():
    """Someone never mentored gets success: no mentorship applies."""
    decision = evaluate(pull(author="guido"), None, [], NOW)
    assert (decision.conclusion, decision.title, decision.gate) == (
        SUCCESS,
        "No mentorship applies",
        "not_required",
    )


def test_mentee_pull_waits_and_names_every_mentor():
    """An active mentee's PR is action_required; the summary names each mentor and how to approve."""
    decision = evaluate(pull(), terms(), [], NOW)
    assert decision.conclusion == ACTION_REQUIRED
    assert decision.title.startswith("Waiting for")
    assert "@colesbury" in decision.summary and "@vstinner" in decision.summary
    assert "/gatekeeper approve" in decision.summary and "Approve merge" in decision.summary
    assert decision.gate == "waiting" and decision.mentorship_id == 1


def test_mentor_approval_on_head_passes():
    """One mentor's approving review on the head sha lets the PR merge."""
    decision = evaluate(pull(), terms(), [review("colesbury")], NOW)
    assert decision.conclusion == SUCCESS
    assert decision.approved_by == ("colesbury",)
    assert decision.gate == "approved"
    assert "@colesbury" in decision.title


@pytest.mark.parametrize(
    ("signals", "why"),
    [
        ([review("guido")], "a non-mentor's approval"),
        ([review("mpage")], "the author's own approval"),
        ([review("colesbury", commit=OLD)], "an approval given on an older commit"),
        ([review("colesbury", state="DISMISSED")], "a dismissed approval"),
        (
            [review("colesbury"), review("colesbury", "CHANGES_REQUESTED", minutes=5)],
            "changes requested later",
        ),
        ([review("colesbury", "COMMENTED")], "a comment"),
        ([review("colesbury", "CHANGES_REQUESTED")], "changes requested"),
    ],
)
def test_approvals_that_do_not_count(signals, why):
    """Approvals that do not stand leave the gate waiting."""
    decision = evaluate(pull(), terms(), signals, NOW)
    assert decision.conclusion == ACTION_REQUIRED, why
    assert decision.approved_by == ()


def test_comment_after_approval_keeps_it():
    """A plain comment after an approval does not withdraw it."""
    signals = [review("colesbury"), review("colesbury", "COMMENTED", minutes=5)]
    assert evaluate(pull(), terms(), signals, NOW).conclusion == SUCCESS


def test_reapproval_after_changes_requested_counts():
    """Changes requested, then approved again: the latest decisive review wins."""
    signals = [
        review("colesbury", "CHANGES_REQUESTED"),
        review("colesbury", "APPROVED", minutes=5),
    ]
    assert evaluate(pull(), terms(), signals, NOW).conclusion == SUCCESS


def test_stale_approval_is_explained():
    """An approval on an older commit is named as not counted."""
    decision = evaluate(pull(), terms(), [review("colesbury", commit=OLD)], NOW)
    assert "older commit" in decision.summary and "@colesbury" in decision.summary


def test_keep_approvals_on_push():
    """With stale approvals kept, an approval on an older commit still counts."""
    decision = evaluate(
        pull(), terms(dismiss_stale_approvals=False), [review("colesbury", commit=OLD)], NOW
    )
    assert decision.conclusion == SUCCESS


@pytest.mark.parametrize(
    ("approvers", "expected"),
    [
        ((), ACTION_REQUIRED),
        (("colesbury",), ACTION_REQUIRED),
        (("colesbury", "vstinner"), SUCCESS),
    ],
)
def test_two_required_approvals(approvers, expected):
    """approvals_required counts distinct mentors."""
    signals = [review(login, minutes=i) for i, login in enumerate(approvers)]
    decision = evaluate(pull(), terms(approvals_required=2), signals, NOW)
    assert decision.conclusion == expected


def test_same_mentor_twice_is_one_approval():
    """Two approvals by one mentor do not satisfy two required approvals."""
    signals = [review("colesbury"), review("colesbury", minutes=3)]
    decision = evaluate(pull(), terms(approvals_required=2), signals, NOW)
    assert decision.waiting and decision.approved_by == ("colesbury",)


def test_two_required_title_counts_what_is_missing():
    """The title says how many approvals are still missing."""
    decision = evaluate(pull(), terms(approvals_required=2), [review("colesbury")], NOW)
    assert decision.title == "Waiting for 1 more mentor approval"
    assert "Approved so far by @colesbury" in decision.summary


@pytest.mark.parametrize(
    ("moment", "applies"),
    [
        (START - timedelta(seconds=1), False),
        (START, True),
        (START + timedelta(days=30) - timedelta(seconds=1), True),
        (START + timedelta(days=30), False),
    ],
)
def test_activity_boundaries(moment, applies):
    """The gate applies from started_at (inclusive) to ends_at (exclusive)."""
    decision = evaluate(pull(), terms(), [], moment)
    assert decision.waiting is applies


def test_expired_mentorship_says_ended_with_date():
    """After the end date the check passes and says when the mentorship ended."""
    decision = evaluate(pull(), terms(), [], START + timedelta(days=31))
    assert decision.conclusion == SUCCESS
    assert decision.title == "Mentorship ended"
    assert (START + timedelta(days=30)).strftime("%Y-%m-%d") in decision.summary


def test_mentorship_ended_by_hand():
    """A mentorship ended early (graduated) lifts the gate from that moment."""
    ended = terms(ended_at=NOW - timedelta(days=1))
    decision = evaluate(pull(), ended, [], NOW)
    assert (decision.conclusion, decision.title) == (SUCCESS, "Mentorship ended")
    assert (NOW - timedelta(days=1)).strftime("%Y-%m-%d") in decision.summary


def test_repository_outside_scope():
    """A mentorship scoped to some repositories does not gate others."""
    scoped = terms(repositories=frozenset({"python/devguide", "python/peps"}))
    outside = evaluate(pull(), scoped, [], NOW)
    assert not outside.waiting and outside.gate == "not_required"
    assert outside.title == "Outside the mentorship's scope"
    # It says the mentorship gates elsewhere (not "not under mentorship", which would be
    # untrue), without naming the scope: a private repository's name must not show on a
    # public pull request's check.
    assert "gates other repositories" in outside.summary
    assert "python/devguide" not in outside.summary
    assert "not under mentorship" not in outside.summary
    assert evaluate(pull(repo="python/devguide"), scoped, [], NOW).waiting


def test_scheduled_mentorship_does_not_gate_yet():
    """A mentorship starting later does not gate today."""
    later = terms(started_at=NOW + timedelta(days=1), ends_at=NOW + timedelta(days=31))
    assert evaluate(pull(), later, [], NOW).title == "No mentorship applies"


def test_gate_approved_prs_gates_what_the_mentee_approves():
    """With gate_approved_prs, someone else's PR that the mentee approved waits for a mentor."""
    mentee_terms = terms(gate_approved_prs=True)
    other = pull(author="guido")
    decision = evaluate(other, None, [review("mpage")], NOW, reviewer_mentorships=[mentee_terms])
    assert decision.waiting and "approved this pull request" in decision.summary
    both = [review("mpage"), review("vstinner", minutes=3)]
    assert (
        evaluate(other, None, both, NOW, reviewer_mentorships=[mentee_terms]).conclusion == SUCCESS
    )


def test_mentee_approval_not_gated_by_default():
    """Without gate_approved_prs, a mentee's approval of someone else's PR changes nothing."""
    decision = evaluate(
        pull(author="guido"), None, [review("mpage")], NOW, reviewer_mentorships=[terms()]
    )
    assert decision.conclusion == SUCCESS


def test_author_mentor_cannot_approve_gated_pr():
    """A mentor who authored a PR the mentee approved cannot lift the gate themself."""
    mentee_terms = terms(gate_approved_prs=True)
    own = pull(author="colesbury")
    signals = [review("mpage"), review("colesbury", minutes=2)]
    decision = evaluate(own, None, signals, NOW, reviewer_mentorships=[mentee_terms])
    assert decision.waiting
    assert "@colesbury" not in decision.summary.split("Mentors:")[1].split("\n")[0]


def test_button_and_comment_approvals_count_on_their_head():
    """Approvals from the button, a comment or the dashboard carry the head sha they were given on."""
    for source in ("button", "comment", "dashboard"):
        assert (
            evaluate(pull(), terms(), [review("vstinner", source=source)], NOW).conclusion
            == SUCCESS
        )
        stale = [review("vstinner", commit=OLD, source=source)]
        assert evaluate(pull(), terms(), stale, NOW).waiting


def test_standing_approvals_lists_mentors_sorted():
    """standing_approvals returns the mentors whose approval counts, sorted."""
    signals = [review("vstinner"), review("colesbury", minutes=1), review("guido")]
    assert standing_approvals(pull(), terms(), signals) == ["colesbury", "vstinner"]


# ----------------------------------------------------------------- order independence

reviewers = st.sampled_from(["colesbury", "vstinner", "guido", "mpage"])
states = st.sampled_from(["APPROVED", "CHANGES_REQUESTED", "COMMENTED", "DISMISSED"])
commits = st.sampled_from([HEAD, OLD])
signal_lists = st.lists(
    st.builds(
        Signal,
        reviewer=reviewers,
        state=states,
        commit_id=commits,
        submitted_at=st.integers(0, 10_000).map(lambda s: START + timedelta(seconds=s)),
        key=st.integers(0, 1_000_000),
    ).map(lambda s: dataclasses.replace(s, reviewer_id=uid(s.reviewer))),
    max_size=12,
    unique_by=lambda s: s.key,
)


@settings(max_examples=300, deadline=None)
@given(signal_lists, st.randoms(use_true_random=False), st.booleans(), st.integers(1, 2))
def test_evaluate_is_order_independent(signals, rng, keep_stale, needed):
    """Any permutation of the same reviews gives the same decision."""
    shuffled = list(signals)
    rng.shuffle(shuffled)
    the_terms = terms(dismiss_stale_approvals=not keep_stale, approvals_required=needed)
    assert evaluate(pull(), the_terms, signals, NOW) == evaluate(pull(), the_terms, shuffled, NOW)


def test_judged_as_of_the_moment_even_if_ended_later():
    """Asked about a moment before the mentorship was ended (a merge), the gate still applied."""
    ended_later = terms(ended_at=NOW + timedelta(days=2))
    assert evaluate(pull(merged=True, state="closed"), ended_later, [], NOW).waiting


def test_signals_after_the_moment_do_not_count():
    """A review submitted after the moment judged (a merge) does not approve retroactively."""
    late = Signal(
        reviewer="colesbury",
        state="APPROVED",
        commit_id=HEAD,
        submitted_at=NOW + timedelta(minutes=1),
        reviewer_id=uid("colesbury"),
    )
    assert evaluate(pull(), terms(), [late], NOW).waiting
    assert evaluate(pull(), terms(), [late], NOW + timedelta(minutes=1)).conclusion == SUCCESS


@settings(max_examples=300, deadline=None)
@given(signal_lists, st.booleans(), st.integers(0, 10_000))
def test_the_pages_verdicts_agree_with_evaluate(signals, keep_stale, at):
    """What the pull request page says counts is exactly who evaluate counts, at any moment."""
    the_terms = terms(dismiss_stale_approvals=not keep_stale, approvals_required=5)
    moment = START + timedelta(seconds=at)
    counted = {
        v.signal.reviewer for v in signal_verdicts(pull(), the_terms, signals, moment) if v.counts
    }
    assert tuple(sorted(counted)) == evaluate(pull(), the_terms, signals, moment).approved_by


def test_an_approval_after_the_merge_is_shown_as_not_counting():
    """A bypassed pull request's page does not call a post-merge approval one that counts."""
    late = Signal(
        "colesbury",
        "APPROVED",
        HEAD,
        NOW + timedelta(minutes=1),
        key=1,
        reviewer_id=uid("colesbury"),
    )
    [verdict] = signal_verdicts(pull(merged=True, state="closed"), terms(), [late], NOW)
    assert (verdict.counts, verdict.why) == (False, "given after the merge")


# ---------------------------------------------------------------- what blocks a pull request


@pytest.mark.parametrize(
    ("setup", "signals", "line"),
    [
        ({}, [], "Waits for a mentor: ask @colesbury or @vstinner."),
        (
            {"approvals_required": 2},
            [review("colesbury")],
            "1 of 2 approvals. Needs 1 more: ask @vstinner.",
        ),
        (
            {"approvals_required": 2},
            [],
            "0 of 2 approvals. Waits for 2 mentors: ask @colesbury or @vstinner.",
        ),
        (
            {},
            [review("colesbury", commit=OLD)],
            "Approved by @colesbury on an older commit — ask for a new look.",
        ),
        (
            {},
            [review("vstinner", "CHANGES_REQUESTED")],
            "@vstinner asked for changes — push a fix, then ask for a new look.",
        ),
        (
            {"dismiss_stale_approvals": False, "approvals_required": 2},
            [review("colesbury", commit=OLD)],
            "1 of 2 approvals. Needs 1 more: ask @vstinner.",
        ),
    ],
    ids=["nothing", "one-of-two", "none-of-two", "older-commit", "changes", "kept-on-push"],
)
def test_blocker_says_in_one_line_what_a_waiting_pull_request_needs(setup, signals, line):
    """The mentee's one line agrees with evaluate: it waits, and says for what."""
    mentorship = terms(**setup)
    assert evaluate(pull(), mentorship, signals, NOW).waiting
    assert blocker(pull(), mentorship, signals, NOW).line == line


def test_blocker_counts_what_evaluate_counts():
    """Given and needed are the standing approvals and the terms' requirement."""
    found = blocker(
        pull(),
        terms(
            approvals_required=3, mentors=frozenset({"a", "b", "c"}), mentor_display=("a", "b", "c")
        ),
        [review("a"), review("b", commit=OLD)],
        NOW,
    )
    assert (found.given, found.needed) == (1, 3)


# ---------------------------------------------------------------- people are accounts

STRANGER = 999_999_999  # whoever took over a login after its account renamed away


def test_a_renamed_mentor_still_approves_under_the_new_login():
    """The mentor's id approves whatever the login it is seen under; the new login is named."""
    renamed = terms(mentor_ids={uid("colesbury"): "colesbury-new", uid("vstinner"): "vstinner"})
    signal = review("colesbury-new", reviewer_id=uid("colesbury"))
    decision = evaluate(pull(), renamed, [signal], NOW)
    assert (decision.conclusion, decision.approved_by) == (SUCCESS, ("colesbury-new",))


@pytest.mark.parametrize("state", ["APPROVED", "CHANGES_REQUESTED"])
def test_a_login_taken_over_neither_approves_nor_blocks(state):
    """A mentor's login under another id is nobody to the gate: no approval, no request for
    changes, and the page says why."""
    impostor = review("colesbury", state, reviewer_id=STRANGER)
    decision = evaluate(pull(), terms(), [impostor], NOW)
    assert decision.waiting and decision.approved_by == ()
    assert "Changes requested" not in decision.summary
    [verdict] = signal_verdicts(pull(), terms(), [impostor], NOW)
    assert not verdict.counts
    if state == "APPROVED":
        assert verdict.why == "not a mentor of mpage"
    line = blocker(pull(), terms(), [impostor], NOW).line
    assert line == "Waits for a mentor: ask @colesbury or @vstinner."


def test_a_signal_whose_reviewer_is_unknown_counts_for_nothing():
    """Fail closed: an approval with no reviewer id is not a mentor's."""
    decision = evaluate(pull(), terms(), [review("colesbury", reviewer_id=None)], NOW)
    assert decision.waiting and decision.approved_by == ()


def test_a_mentor_whose_id_is_unknown_approves_nothing_but_is_still_asked():
    """A mentor not learned yet cannot approve (their first review teaches the id before the
    gate runs), yet is named as someone to ask."""
    unlearned = terms(mentor_ids={uid("vstinner"): "vstinner"})
    assert evaluate(pull(), unlearned, [review("colesbury")], NOW).waiting
    assert blocker(pull(), unlearned, [], NOW).line == (
        "Waits for a mentor: ask @colesbury or @vstinner."
    )


def test_the_mentorship_of_a_logins_former_holder_does_not_gate_its_new_holder():
    """Same login, another id: the pull request is not the mentee's, nothing to approve."""
    decision = evaluate(pull(author_id=STRANGER), terms(), [], NOW)
    assert (decision.conclusion, decision.gate) == (SUCCESS, "not_required")


def test_a_renamed_mentee_stays_gated():
    """Same id, new login: still the mentee."""
    assert evaluate(pull(author="mpage-renamed", author_id=uid("mpage")), terms(), [], NOW).waiting


@pytest.mark.parametrize(
    ("author_id", "mentee_id"), [(None, uid("mpage")), (uid("mpage"), None), (None, None)]
)
def test_an_unknown_id_on_either_side_gates_by_login(author_id, mentee_id):
    """Fail closed: where the author's or the mentee's id is unknown, the login decides."""
    assert evaluate(pull(author_id=author_id), terms(mentee_id=mentee_id), [], NOW).waiting


def test_who_may_approve_is_decided_by_id():
    """approval_refusal: the mentor's id approves under any login; another id under the
    mentor's login, an unknown id, or the author's id do not."""
    refusal = lambda login, user_id: approval_refusal(  # noqa: E731
        pull(), terms(), gated=True, login=login, user_id=user_id
    )
    assert refusal("colesbury-new", uid("colesbury")) is None
    assert str(refusal("colesbury", STRANGER)) == "only mentors of mpage can approve"
    assert str(refusal("colesbury", None)) == "only mentors of mpage can approve"
    assert (
        str(refusal("mpage-renamed", uid("mpage")))
        == "authors cannot approve their own pull request"
    )


def test_a_mentor_who_is_the_author_by_id_is_not_asked_to_review():
    """reviewers_to_request leaves out a mentor whose account wrote the pull request, even
    under another login."""
    mentors = terms(mentee="guido", mentee_id=uid("guido"), gate_approved_prs=True)
    by_mentor = pull(author="colesbury-new", author_id=uid("colesbury"))
    asked = reviewers_to_request(
        by_mentor, mentors, draft=False, waiting=True, already_requested=False
    )
    assert asked == ["vstinner"]


def test_a_mentee_approving_gates_only_by_their_id():
    """gate_approved_prs: the mentee's approval (by id) gates someone else's pull request; the
    same login under another id does not."""
    reviewer = terms(gate_approved_prs=True)
    other = pull(author="guido")
    gated = evaluate(other, None, [review("mpage")], NOW, reviewer_mentorships=[reviewer])
    assert gated.waiting
    impostor = review("mpage", reviewer_id=STRANGER)
    free = evaluate(other, None, [impostor], NOW, reviewer_mentorships=[reviewer])
    assert not free.waiting
