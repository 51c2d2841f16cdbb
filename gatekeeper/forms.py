"""The dashboard's forms (Flask-WTF): every change is a POST carrying a CSRF token."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    DateTimeLocalField,
    Field,
    Form,
    HiddenField,
    IntegerField,
    PasswordField,
    RadioField,
    StringField,
    TextAreaField,
)
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)

from gatekeeper import mentorships as lifecycle
from gatekeeper import votes, words


class CountField(IntegerField):
    """A whole number a person types: at most nine digits, so that no validator meets an
    integer too large for a float (or for the database)."""

    def process_formdata(self, valuelist: list[Any]) -> None:
        if valuelist and len(str(valuelist[0]).strip()) > 9:
            self.data = None
            raise ValueError(self.gettext("Not a number of a sensible size."))
        super().process_formdata(valuelist)


# The browser stops typing at the limit; the server checks it again (lifecycle.TEXT_LIMIT).
LIMITED = {"maxlength": lifecycle.TEXT_LIMIT}
# A login field stops at GitHub's own limit; the lifecycle's check refuses longer ones too.
ONE_LOGIN = {"maxlength": lifecycle.LOGIN_LIMIT, "autocomplete": "off", "spellcheck": "false"}
SAME_CONTENT = (
    "An approval holds for a later commit with the same content (a squash, a reworded message)"
)


def split_names(text: str | None) -> list[str]:
    """Logins or repositories typed comma-separated or one per line (never split on spaces:
    "tomas r" is a typo to refuse, not two people to trust)."""
    return [part.strip() for part in re.split(r"[,\n]", text or "") if part.strip()]


def entries_checked_by(
    check: Callable[[str], object], *, noun: str
) -> Callable[[Form, Field], None]:
    """A validator for a list field: each entry passes ``check`` (the lifecycle's own), none
    holds a space, and none is listed twice."""

    def validate(form: Form, field: Field) -> None:
        seen: set[str] = set()
        for entry in split_names(field.data):
            if re.search(r"\s", entry):
                raise ValidationError(
                    f"“{words.shorten(entry)}” is not one {noun}: "
                    "separate them with commas or new lines."
                )
            try:
                check(entry)
            except lifecycle.MentorshipError as error:
                raise ValidationError(words.sentence(str(error))) from None
            key = entry.removeprefix("@").lower()
            if key in seen:
                raise ValidationError(
                    f"{words.shorten(entry)} is listed twice; list each {noun} once."
                )
            seen.add(key)

    return validate


def checked_by(check: Callable[..., object], *, what: str) -> Callable[[Form, Field], None]:
    """A validator running one of the lifecycle's own checks, so the form and the CLI agree."""

    def validate(form: Form, field: Field) -> None:
        try:
            check(field.data, what=what)
        except lifecycle.MentorshipError as error:
            raise ValidationError(words.sentence(str(error))) from None

    return validate


class BaseForm(FlaskForm):
    """A form whose fields each show one error: the first, which is the one to fix first
    (a "12x" in a number field is "not a whole number", not also "must be at least 1")."""

    def validate(self, extra_validators: Any = None) -> bool:
        valid = super().validate(extra_validators)
        for field in self:
            field.errors = list(field.errors)[:1]
        return valid


class ActionForm(BaseForm):
    """A button that changes something: nothing but the CSRF token."""


class StartForm(BaseForm):
    """Start a mentorship for a newly promoted core developer."""

    mentee = StringField(
        "New core developer (GitHub login)",
        [
            DataRequired(message="Needs the new core developer's GitHub login."),
            checked_by(lambda text, what: lifecycle.display_login(text), what="the mentee"),
        ],
        render_kw=ONE_LOGIN,
    )
    mentors = StringField(
        "Mentors (GitHub logins, comma-separated)",
        [
            DataRequired(message="Needs at least one mentor."),
            entries_checked_by(lifecycle.display_login, noun="GitHub login"),
        ],
    )
    start = DateTimeLocalField("Starts (UTC)", [Optional()], format="%Y-%m-%dT%H:%M")
    days = CountField("Length in days", [Optional(), NumberRange(min=1, max=366)])
    until = DateField("Or ends on", [Optional()])
    repositories = TextAreaField(
        "Repositories (OWNER/REPO, one per line)",
        [Optional(), entries_checked_by(lifecycle.canonical_repo, noun="repository")],
    )
    approvals_required = CountField(
        "Mentor approvals needed per pull request", [InputRequired(), NumberRange(min=1)], default=1
    )
    dismiss_stale_approvals = BooleanField("A new push needs a new approval", default=True)
    same_content_approvals = BooleanField(SAME_CONTENT, default=True)
    gate_approved_prs = BooleanField("Also gate others' pull requests the mentee approves")
    bypass_alerts = BooleanField(
        "Comment on a pull request merged without approval, naming the mentors", default=True
    )
    vote_url = StringField(
        "Vote URL", [Optional(), checked_by(lifecycle.web_url, what="the vote URL")]
    )
    # For "Fetch from the vote thread": which poll of the post, and its options when they
    # are not "Promote …" / "Do not promote …".
    vote_poll = StringField(
        "Poll name (when the post holds several)",
        [Optional(), checked_by(lifecycle.bounded_text, what="the poll name")],
        render_kw=LIMITED,
    )
    vote_for_option = StringField(
        "Option in favour",
        [Optional(), checked_by(lifecycle.bounded_text, what="the option in favour")],
        render_kw=LIMITED,
    )
    vote_against_option = StringField(
        "Option against",
        [Optional(), checked_by(lifecycle.bounded_text, what="the option against")],
        render_kw=LIMITED,
    )
    # Set once the numbers were read from the forum: starting reads it again, so the record
    # says where its numbers came from and what was typed over them.
    vote_fetched = HiddenField()
    votes_for = CountField("Votes for", [Optional(), NumberRange(min=0)])
    votes_against = CountField("Votes against", [Optional(), NumberRange(min=0)])
    vote_opened = DateField("Vote opened", [Optional()])
    vote_closed = DateField("Vote closed", [Optional()])
    override_reason = TextAreaField(
        "Override reason (only if the vote fails PEP 13)",
        [Optional(), checked_by(lifecycle.bounded_text, what="the override reason")],
        render_kw=LIMITED,
    )
    note = TextAreaField(
        "Note",
        [Optional(), checked_by(lifecycle.bounded_text, what="the note")],
        render_kw=LIMITED,
    )

    def vote(self) -> votes.Vote | None:
        """The promotion vote as typed; raises MentorshipError when it is incomplete."""
        return votes.make_vote(
            url=self.vote_url.data or None,
            votes_for=self.votes_for.data,
            votes_against=self.votes_against.data,
            opened=self.vote_opened.data,
            closed=self.vote_closed.data,
        )


class ExtendForm(BaseForm):
    """Move the end of a mentorship later."""

    days = CountField("Add days", [Optional(), NumberRange(min=1, max=366)])
    until = DateField("Or run until", [Optional()])


class EndForm(BaseForm):
    """End a mentorship early."""

    reason = RadioField(
        "Why",
        # The {value: label} shorthand: wtforms 3.3 deprecates tuples.
        choices={
            "graduated": "Graduated: they are ready to merge on their own",
            "revoked": "Revoked: the mentorship stops for another reason",
        },
        validators=[InputRequired(message="Choose graduated or revoked.")],
    )
    note = TextAreaField(
        "Note (kept in the audit log)",
        [Optional(), checked_by(lifecycle.bounded_text, what="the end note")],
        render_kw=LIMITED,
    )


class MentorForm(BaseForm):
    """Assign one more mentor."""

    REQUIRED = "Type the GitHub login of the mentor to add."
    login = StringField(
        "GitHub login",
        [
            DataRequired(message=REQUIRED),
            checked_by(lambda text, what: lifecycle.display_login(text), what="the mentor"),
        ],
        render_kw=ONE_LOGIN,
    )


class ApproveForm(BaseForm):
    """A mentor's approval of the commit they were shown."""

    head_sha = HiddenField(validators=[DataRequired()])


class TermsForm(BaseForm):
    """Change a running mentorship's terms (a maintainer's edit, audited term by term)."""

    approvals_required = CountField(
        "Mentor approvals needed per pull request",
        [
            InputRequired(message="Say how many mentor approvals each pull request needs."),
            NumberRange(min=1, message="At least one approval must be required."),
        ],
    )
    repositories = TextAreaField(
        "Repositories (OWNER/REPO, one per line)",
        [Optional(), entries_checked_by(lifecycle.canonical_repo, noun="repository")],
    )
    dismiss_stale_approvals = BooleanField("A new push needs a new approval")
    same_content_approvals = BooleanField(SAME_CONTENT)
    gate_approved_prs = BooleanField("Also gate others' pull requests the mentee approves")
    bypass_alerts = BooleanField("Comment on a pull request merged without approval")
    note = TextAreaField(
        "Note",
        [Optional(), checked_by(lifecycle.bounded_text, what="the note")],
        render_kw=LIMITED,
    )
    # A secret: typed, never shown again (a password field is never filled in); empty keeps it.
    notify_url = PasswordField(
        "Team chat webhook URL for this mentorship (empty: keep as it is)",
        [Optional()],
        render_kw={"autocomplete": "off"},
    )
    clear_notify_url = BooleanField("Send to the deployment's team chat (forget this one)")
    # Which terms the editor saw (lifecycle.terms_digest): a change since is not overwritten.
    seen = HiddenField()


class OverrideForm(BaseForm):
    """A maintainer lets a pull request merge without a mentor, for the commit shown, and why."""

    head_sha = HiddenField(validators=[DataRequired()])
    reason = TextAreaField(
        "Reason (shown on the check, kept in the audit log and the month's report)",
        [
            DataRequired(message="Say why this pull request cannot wait for a mentor."),
            Length(max=500, message="Keep the reason under 500 characters."),
        ],
        render_kw={"maxlength": 500},
    )


class ReportPostForm(BaseForm):
    """A maintainer posts the month's report in the vote's forum thread (once, unless again)."""

    again = BooleanField("Post it again (it was posted already)")


class AcknowledgeForm(BaseForm):
    """A maintainer's acknowledgement of a bypass, with a note for the record."""

    note = TextAreaField(
        "Note (kept in the audit log and the month's report)",
        [Optional(), checked_by(lifecycle.bounded_text, what="the note")],
        render_kw=LIMITED,
    )
    # Where to come back to: the pull request page (empty) or /me.
    back = HiddenField()


class AwayForm(BaseForm):
    """A mentor marks themselves away until a date (a maintainer may mark anyone)."""

    # Empty: the signed-in person. Only a maintainer's form shows it.
    login = StringField("GitHub login", [Optional()], render_kw={"maxlength": 39})
    # Checked by ``away.parse_until`` (the command line's words too), not by wtforms.
    until = StringField("Away until (the last day away)", render_kw={"type": "date"})
    note = StringField(
        "Note (optional: why, or whom to ask meanwhile)",
        [Optional(), checked_by(lifecycle.bounded_text, what="the note")],
        render_kw=LIMITED,
    )


class BackForm(BaseForm):
    """Someone who was away is back (themselves, or anyone for a maintainer)."""

    login = HiddenField()
