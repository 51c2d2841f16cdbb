"""SQLModel tables. Logins and repository names are stored lowercase; display forms beside them.

People are GitHub accounts: beside each login is the account's user id (``*_id``), which is
what the gate compares; ``people.py`` learns the ids and follows renames (see its docstring).
"""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from gatekeeper.columns import UTCDateTime

# The gate's own words, ``gate.GateState`` and ``gate.ApprovalSource``, live beside the pure
# decision that speaks them; the stored vocabularies only the storage layers use live here.
from gatekeeper.gate import GateState
from gatekeeper.standing import EndReason  # noqa: F401  (kept importable from here)


class DeliveryOutcome(enum.StrEnum):
    """What became of a webhook delivery (``Delivery.outcome``, and the answer's ``outcome``)."""

    RECEIVED = "received"
    QUEUED = "queued"  # stored as it came, for the worker to apply
    PROCESSED = "processed"
    IGNORED = "ignored"  # an event or action Gatekeeper does not act on
    FAILED = "failed"
    DEFERRED = "deferred"  # waits for the worker to read its pull request from GitHub
    REPLAY = "replay"  # the same signed body as one applied before, under another id
    # Answered, never stored:
    DUPLICATE = "duplicate"  # this delivery id was stored already
    RETRY = "retry"  # the database was unavailable; GitHub should redeliver


# A delivery stored with one of these was applied (or is kept to be): its body sent again under
# another id is a replay.
APPLIED = (DeliveryOutcome.PROCESSED, DeliveryOutcome.IGNORED, DeliveryOutcome.DEFERRED)
# A delivery stored with one of these needs nothing from GitHub: sent again, it is no news.
KEPT = (*APPLIED, DeliveryOutcome.QUEUED, DeliveryOutcome.REPLAY)


class JobKind(enum.StrEnum):
    """What a queued job does (``Job.kind``); the worker runs each kind."""

    SYNC_PULL = "sync_pull"
    RECONCILE = "reconcile"
    REQUEST_REVIEWS = "request_reviews"
    RESOLVE_REPOSITORY = "resolve_repository"  # a scope's repository name to its id
    BYPASS_COMMENT = "bypass_comment"
    LEARN_ACCOUNT = "learn_account"  # a mentee's or mentor's login to their account id
    READ_TREE = "read_tree"  # a commit's tree, so an approval of the same content holds
    SEND_NOTICE = "send_notice"  # one notice to the team's chat (see notify.py)


class NoticeKind(enum.StrEnum):
    """What a notice to the team's chat tells (``Notice.kind``); see notify.py."""

    WAITING_DAY = "waiting_day"  # a mentee's pull request waited a day for its first mentor
    WAITING_THREE_DAYS = "waiting_three_days"
    BYPASS = "bypass"  # merged without approval
    OVERRIDE = "override"
    MENTORS_AWAY = "mentors_away"  # every mentor of an active mentorship is away
    ENDING_SOON = "ending_soon"  # the month ends in three days
    ENDED = "ended"
    DIGEST = "digest"  # the weekly digest


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def partial_index(name: str, *columns: str, where: str, unique: bool = False) -> sa.Index:
    """An index of the rows ``where`` holds for, on both databases (each needs it said)."""
    condition = sa.text(where)
    return sa.Index(
        name, *columns, unique=unique, postgresql_where=condition, sqlite_where=condition
    )


def _when(*, nullable: bool = False, index: bool = False) -> Any:
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable, index=index)


class Mentorship(SQLModel, table=True):
    """One mentee's gated period, with the promotion vote that led to it."""

    __table_args__ = (
        # The database itself refuses a second open mentorship for a mentee, even under a race.
        partial_index("uq_mentorship_open_mentee", "mentee", where="ended_at IS NULL", unique=True),
    )

    id: int | None = Field(default=None, primary_key=True)
    mentee: str = Field(max_length=39, index=True)
    mentee_display: str = Field(max_length=39)
    # The mentee's GitHub user id; None until learned (see people.py).
    mentee_id: int | None = Field(default=None, sa_type=sa.BigInteger, index=True)
    started_at: datetime = _when()
    ends_at: datetime = _when(index=True)
    ended_at: datetime | None = _when(nullable=True)
    end_reason: str | None = Field(default=None, max_length=16)
    ended_by: str | None = Field(default=None, max_length=64)
    end_note: str | None = None
    note: str | None = None
    created_by: str = Field(max_length=64)
    created_at: datetime = _when()
    repositories: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    # The scope's entries resolved to GitHub repository ids (name in ``repositories`` -> id):
    # the gate compares ids, so the scope follows a rename or a transfer. An entry not in
    # here yet is resolved by the worker; until then it matches by name.
    repository_ids: dict[str, int] = Field(default_factory=dict, sa_type=sa.JSON)
    approvals_required: int = 1
    dismiss_stale_approvals: bool = True
    gate_approved_prs: bool = False
    # With stale approvals dismissed: an approval still holds on a later head with the same
    # tree (the same content), unless this asks for a new approval on every push.
    same_content_approvals: bool = True
    vote_url: str | None = None
    votes_for: int | None = None
    votes_against: int | None = None
    vote_opened: date | None = None
    vote_closed: date | None = None
    # Where the vote's numbers came from: "manual" (typed) or "discourse" (read from the
    # forum's poll at ``vote_fetched_at``); None when no vote was recorded.
    vote_source: str | None = Field(default=None, max_length=16)
    vote_fetched_at: datetime | None = _when(nullable=True)
    override_reason: str | None = None
    # Comment on a pull request merged while its gate waited, naming the mentors (on by default).
    bypass_alerts: bool = True
    # The team chat's incoming-webhook URL for this mentorship, instead of
    # GATEKEEPER_NOTIFY_URL; a secret like it (only its host is ever shown).
    notify_url: str | None = Field(default=None, repr=False)
    # When the sweep last reconciled this mentee's pull requests; an ended mentorship
    # is reconciled once more after it ends so that its gates lift on GitHub.
    swept_at: datetime | None = _when(nullable=True)


class MentorAssignment(SQLModel, table=True):
    """A mentor on a mentorship. Removal is recorded, never deleted."""

    id: int | None = Field(default=None, primary_key=True)
    mentorship_id: int = Field(foreign_key="mentorship.id", index=True)
    mentor: str = Field(max_length=39, index=True)
    mentor_display: str = Field(max_length=39)
    mentor_id: int | None = Field(default=None, sa_type=sa.BigInteger, index=True)
    added_at: datetime = _when()
    added_by: str = Field(max_length=64)
    removed_at: datetime | None = _when(nullable=True)
    removed_by: str | None = Field(default=None, max_length=64)


class AuditEvent(SQLModel, table=True):
    """Something that changed, who did it and when."""

    id: int | None = Field(default=None, primary_key=True)
    mentorship_id: int | None = Field(default=None, foreign_key="mentorship.id", index=True)
    at: datetime = _when(index=True)
    actor: str = Field(max_length=64)
    kind: str = Field(max_length=32)
    detail: str = ""
    repo: str | None = Field(default=None, max_length=140)
    pr_number: int | None = None


class Repository(SQLModel, table=True):
    """A repository the App is (or was) installed on, or that search showed it is not on
    (``installation_id`` None), so that it is not asked about again."""

    full_name: str = Field(primary_key=True, max_length=140)
    # GitHub's id of the repository: it stays the same through a rename or a transfer, so
    # an event carrying it under a new name moves every row stored under the old one.
    # None until a payload or an answer names it (rows stored before ids were kept).
    github_id: int | None = Field(default=None, sa_type=sa.BigInteger, unique=True)
    display_name: str = Field(max_length=140)
    installation_id: int | None = Field(default=None, sa_type=sa.BigInteger, index=True)
    # GitHub answered 404 for it (deleted, transferred, or removed from the installation
    # without the event reaching us): the sweep skips it until an event names it again.
    gone_at: datetime | None = _when(nullable=True)
    # The safety-net scan of its open pull requests: when, and each list page's ETag, so an
    # unchanged repository costs only conditional requests (a 304 is free of rate limit).
    scanned_at: datetime | None = _when(nullable=True)
    pulls_etags: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    # From the payloads' ``repository.private``: a private repository's pull requests are
    # shown only to the people of the mentorship and to maintainers.
    private: bool = False


class PullRequest(SQLModel, table=True):
    """The latest known state of a pull request and of its gate."""

    __table_args__ = (
        sa.UniqueConstraint("repo", "number"),
        # Every delivery that touches a commit asks for the pull requests on it.
        sa.Index("ix_pullrequest_repo_head_sha", "repo", "head_sha"),
    )

    id: int | None = Field(default=None, primary_key=True)
    repo: str = Field(max_length=140)
    # The repository's GitHub id (``base.repo.id``), which the gate's scope compares.
    repo_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    number: int
    author: str = Field(max_length=39, index=True)
    author_display: str = Field(max_length=39)
    # None only for a row stored before ids were (or from a payload that lacked one).
    author_id: int | None = Field(default=None, sa_type=sa.BigInteger, index=True)
    title: str = ""
    url: str = ""
    head_sha: str = Field(max_length=64)
    base_ref: str = Field(default="", max_length=255)
    # When the base branch last changed (GitHub's time): approvals given before it are for
    # another base, and end, as GitHub's own stale-review dismissal ends them.
    base_changed_at: datetime | None = _when(nullable=True)
    draft: bool = False
    state: str = Field(default="open", max_length=8, index=True)
    merged: bool = False
    merged_by: str | None = Field(default=None, max_length=39)
    merged_at: datetime | None = _when(nullable=True)
    # GitHub's updated_at of the snapshot stored here: an older snapshot never overwrites it.
    github_updated_at: datetime | None = _when(nullable=True)
    first_seen_at: datetime = _when()
    gate: str = Field(default=GateState.NOT_REQUIRED, max_length=16)
    gate_title: str = ""
    gate_summary: str = Field(default="", sa_type=sa.Text)
    approved_by: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    waiting_since: datetime | None = _when(nullable=True)
    # The record of its month, kept when the gate lifts: when it first waited, when it stopped
    # waiting (approved, merged, bypassed or lifted), and when its mentorship stopped gating it.
    gated_at: datetime | None = _when(nullable=True)
    settled_at: datetime | None = _when(nullable=True)
    lifted_at: datetime | None = _when(nullable=True)
    gated_mentorship_id: int | None = Field(default=None, foreign_key="mentorship.id", index=True)
    reviews_requested: bool = False


class Review(SQLModel, table=True):
    """A review or an approval from a button, a comment or the dashboard."""

    # Review ids and comment ids are separate sequences on GitHub.
    __table_args__ = (sa.UniqueConstraint("source", "github_id"),)

    id: int | None = Field(default=None, primary_key=True)
    pull_request_id: int = Field(foreign_key="pullrequest.id", index=True)
    github_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    source: str = Field(max_length=16)
    reviewer: str = Field(max_length=39)
    reviewer_display: str = Field(max_length=39)
    # None: who gave it is unknown (an approval from then counts for nothing).
    reviewer_id: int | None = Field(default=None, sa_type=sa.BigInteger, index=True)
    state: str = Field(max_length=24)
    commit_id: str | None = Field(default=None, max_length=64)
    submitted_at: datetime = _when()


class HeadSeen(SQLModel, table=True):
    """A pull request's head commit and base branch as one snapshot of it showed them, at
    GitHub's time (its ``updated_at``).

    Each snapshot is a moment at which the head is known, so a commit that comes back (a
    force-push back to it) is seen again at its new moment: what was the head at a given time
    is the latest sighting at or before it, never the first time a commit was seen.
    """

    __table_args__ = (sa.UniqueConstraint("pull_request_id", "seen_at", "head_sha", "base_ref"),)

    id: int | None = Field(default=None, primary_key=True)
    pull_request_id: int = Field(foreign_key="pullrequest.id", index=True)
    head_sha: str = Field(max_length=64)
    base_ref: str = Field(default="", max_length=255)
    seen_at: datetime = _when()


class CommitTree(SQLModel, table=True):
    """The tree (the content) of a commit: two commits with one tree hold the same files, so
    an approval of one holds for the other (a squash, a reworded message)."""

    __table_args__ = (sa.UniqueConstraint("repo", "sha"),)

    id: int | None = Field(default=None, primary_key=True)
    repo: str = Field(max_length=140)
    sha: str = Field(max_length=64)
    tree_sha: str = Field(max_length=64)


class Override(SQLModel, table=True):
    """A maintainer let a pull request merge without a mentor's approval, and said why.

    It holds for the content it was given on (the commit's tree), like an approval.
    """

    __table_args__ = (sa.UniqueConstraint("comment_id"),)

    id: int | None = Field(default=None, primary_key=True)
    pull_request_id: int = Field(foreign_key="pullrequest.id", index=True)
    maintainer: str = Field(max_length=39)
    maintainer_display: str = Field(max_length=39)
    reason: str = Field(sa_type=sa.Text)
    commit_id: str = Field(max_length=64)
    given_at: datetime = _when()
    # The comment's id for ``/gatekeeper override``: a redelivered comment overrides once.
    comment_id: int | None = Field(default=None, sa_type=sa.BigInteger)


class CommitCheck(SQLModel, table=True):
    """The outbox: the check run one commit should show, and what GitHub was last given.

    The desired check (``body``, its ``fingerprint``) is stored with the event that changed
    it and gets a new ``version``; the worker posts the latest version and records it with a
    compare-and-set on ``posted_version``, so a post in flight never hides a newer desire.
    """

    __table_args__ = (
        sa.UniqueConstraint("repo", "head_sha", "name"),
        # The posting threads' claim, without a scan however many commits were ever checked:
        # the checks owed to GitHub, oldest desire first, and the leases held now.
        partial_index("ix_commitcheck_owed", "desired_at", "id", where="posted_version < version"),
        partial_index(
            "ix_commitcheck_leased",
            "installation_id",
            "claimed_until",
            where="claimed_until IS NOT NULL",
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    repo: str = Field(max_length=140)
    head_sha: str = Field(max_length=64)
    name: str = Field(max_length=100)
    installation_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    version: int = 0
    fingerprint: str = Field(default="", max_length=64)
    body: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    desired_at: datetime = _when()
    # A "Re-run" asked for a new check run at this version rather than an update in place.
    fresh_version: int | None = None
    # Desires that are moot after a while (a merge queue's commit) stop being retried.
    expires_at: datetime | None = _when(nullable=True)
    posted_version: int = 0
    posted_fingerprint: str | None = Field(default=None, max_length=64)
    check_run_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    posted_at: datetime | None = _when(nullable=True)
    # Retrying: how often it failed, when to try again, and why it last failed (or was
    # given up: ``gave_up`` with the version it gave up on, reason in ``last_error``).
    attempts: int = 0
    next_attempt_at: datetime | None = _when(nullable=True)
    last_error: str | None = None
    gave_up: bool = False
    claimed_until: datetime | None = _when(nullable=True)
    claim_token: str | None = Field(default=None, max_length=32)


class MergeGroup(SQLModel, table=True):
    """A merge queue's group while it lives: the pull request it carries decides its check.

    Kept after ``destroyed`` (``destroyed_at``) so that a late or redelivered
    ``checks_requested`` cannot bring a group the queue has moved on from back to life.
    """

    __table_args__ = (sa.UniqueConstraint("repo", "head_sha"),)

    id: int | None = Field(default=None, primary_key=True)
    repo: str = Field(max_length=140)
    head_sha: str = Field(max_length=64)
    head_ref: str = Field(default="", max_length=255)
    base_ref: str = Field(default="", max_length=255)
    # The pull request the group adds to the queue (``pr-<N>`` in its ref); None if the
    # ref does not say, and then its check fails closed.
    number: int | None = Field(default=None, index=True)
    created_at: datetime = _when()
    destroyed_at: datetime | None = _when(nullable=True)
    destroyed_reason: str | None = Field(default=None, max_length=32)


class Job(SQLModel, table=True):
    """Work that needs GitHub and so never runs in a request: the worker does it.

    One pending job per ``key``; asking again while it runs bumps ``generation``, so the
    worker runs it once more instead of deleting a request that came after it started.
    """

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=300, unique=True, index=True)
    kind: str = Field(max_length=32)
    args: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    generation: int = 1
    created_at: datetime = _when()
    run_after: datetime = _when(index=True)
    attempts: int = 0
    last_error: str | None = None
    claimed_until: datetime | None = _when(nullable=True)


class BypassAlert(SQLModel, table=True):
    """The one comment telling the mentors that a pull request merged while its gate waited.

    A job (``bypass_comment``) posts it; this row outlives the job, so however often the
    bypass is redelivered or re-decided, the comment is written once: ``attempted_at`` says a
    post may have reached GitHub (look for it before posting again), ``comment_id`` that it did.
    """

    id: int | None = Field(default=None, primary_key=True)
    pull_request_id: int = Field(foreign_key="pullrequest.id", unique=True)
    queued_at: datetime = _when()
    attempted_at: datetime | None = _when(nullable=True)
    comment_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    posted_at: datetime | None = _when(nullable=True)


class Notice(SQLModel, table=True):
    """One message to the team's chat, kept so that it is sent once.

    The row is the notice's identity (a mentorship, a kind and its subject: a pull request,
    a week, an end date): however often a sweep or a redelivery finds it due again, it is
    queued once. A ``send_notice`` job sends it; ``sent_at`` says it arrived, ``last_error``
    (naming the receiver's host only) why the latest try did not.
    """

    __table_args__ = (sa.UniqueConstraint("mentorship_id", "kind", "subject"),)

    id: int | None = Field(default=None, primary_key=True)
    mentorship_id: int = Field(foreign_key="mentorship.id", index=True)
    kind: str = Field(max_length=32)
    subject: str = Field(max_length=200)
    text: str = Field(sa_type=sa.Text)
    repo: str | None = Field(default=None, max_length=140)
    pr_number: int | None = None
    queued_at: datetime = _when()
    sent_at: datetime | None = _when(nullable=True)
    attempts: int = 0
    last_error: str | None = None
    failed_at: datetime | None = _when(nullable=True)


class Redelivery(SQLModel, table=True):
    """A failed delivery whose redelivery Gatekeeper asked GitHub for (once per delivery)."""

    guid: str = Field(primary_key=True, max_length=255)
    github_id: int = Field(sa_type=sa.BigInteger)
    event: str = Field(max_length=64)
    requested_at: datetime = _when()


class SweepRun(SQLModel, table=True):
    """When a part of the sweep last finished, for its cadence and for health checks."""

    name: str = Field(primary_key=True, max_length=64)
    finished_at: datetime = _when()


class Delivery(SQLModel, table=True):
    """A webhook delivery GitHub sent, and what became of it."""

    # GitHub's are GUIDs; a longer id is refused at the door rather than cut.
    delivery_id: str = Field(primary_key=True, max_length=255)
    event: str = Field(max_length=64)
    action: str | None = Field(default=None, max_length=64)
    installation_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    received_at: datetime = _when(index=True)
    processed_at: datetime | None = _when(nullable=True)
    outcome: str = Field(default=DeliveryOutcome.RECEIVED, max_length=16)
    __table_args__ = (
        # The worker's queue: the oldest delivery still to be applied, found without a scan.
        partial_index("ix_delivery_queued", "received_at", where="outcome = 'queued'"),
        # The same pull request's queued deliveries, applied with the oldest in one go.
        partial_index(
            "ix_delivery_queued_for_pull",
            "repository_id",
            "pull_number",
            "received_at",
            where="outcome = 'queued'",
        ),
    )
    error: str | None = None
    # The signed body as it came, until the worker has applied it (kept when it failed).
    body: bytes | None = Field(default=None, sa_type=sa.LargeBinary)
    # Tries the database got in the way of (never the payload's fault): the delivery stays
    # queued, and is tried again after a backoff, so it never holds up those behind it.
    attempts: int = 0
    retry_at: datetime | None = _when(nullable=True)
    # SHA-256 of the exact body: a signed body applied once is a replay under any other id.
    body_digest: str | None = Field(default=None, max_length=64, index=True)
    # GitHub's id of the repository it names, and the number of the pull request (or issue)
    # it is about: None for an event about no single one (a check suite, an installation).
    repository_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    pull_number: int | None = None


class Account(SQLModel, table=True):
    """A GitHub account Gatekeeper has seen: its id, and its login as last seen."""

    github_id: int = Field(
        primary_key=True, sa_type=sa.BigInteger, sa_column_kwargs={"autoincrement": False}
    )
    login: str = Field(max_length=39, index=True)
    display: str = Field(max_length=39)
    # GitHub's time of the newest event that named it: an older one never renames it back.
    seen_at: datetime = _when()


class Maintainer(SQLModel, table=True):
    """The account a login in GATEKEEPER_MAINTAINERS belonged to when Gatekeeper learned it.

    Whoever later holds that login (after a rename) is not a maintainer; the account that was,
    renamed, still is while its former login stays configured.
    """

    login: str = Field(primary_key=True, max_length=39)  # as configured, lowercase
    github_id: int = Field(sa_type=sa.BigInteger, index=True)
    learned_at: datetime = _when()


class SessionGeneration(SQLModel, table=True):
    """How many times a login signed out: a session cookie of an older generation is void.

    Flask's session is a signed cookie the server cannot delete, so signing out bumps this
    and every copy of the old cookie (another device, a stolen one) stops signing in.
    """

    login: str = Field(primary_key=True, max_length=39)
    generation: int = 0


class ReportPost(SQLModel, table=True):
    """The month's report posted as a reply in the promotion vote's forum topic.

    The row is claimed (``url`` None) in a unit of work of its own before the forum is called,
    and ``(mentorship_id, ordinal)`` is unique: two people posting at once post one reply, and
    a second post is a new ordinal, asked for on purpose.
    """

    __table_args__ = (sa.UniqueConstraint("mentorship_id", "ordinal"),)

    id: int | None = Field(default=None, primary_key=True)
    mentorship_id: int = Field(foreign_key="mentorship.id", index=True)
    ordinal: int  # 1 for the first post of this mentorship's report, 2 for a second, ...
    claimed_by: str = Field(max_length=64)
    claimed_at: datetime = _when()
    # Set once the forum answered with the post; None while it is under way, or when the
    # forum's answer never came (the reply may be in the thread: ``uncertain``).
    url: str | None = Field(default=None, max_length=2048)
    posted_at: datetime | None = _when(nullable=True)
    uncertain: bool = False


class Absence(SQLModel, table=True):
    """A person (an account) is away until a date, across all the mentorships they are in.

    One row per account: marking oneself away again replaces the date, coming back deletes
    the row (the audit log keeps both). Away through ``until`` (a UTC calendar date).
    """

    account_id: int = Field(
        primary_key=True, sa_type=sa.BigInteger, sa_column_kwargs={"autoincrement": False}
    )
    login: str = Field(max_length=39)  # as last seen, for the pages; the id is what counts
    until: date
    note: str | None = None
    set_by: str = Field(max_length=64)
    set_at: datetime = _when()
