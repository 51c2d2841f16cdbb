"""The dashboard: the mentorship month at a glance, and the actions each role may take."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError
from markupsafe import Markup, escape
from sqlmodel import Session
from werkzeug.exceptions import HTTPException, NotFound

from gatekeeper import (
    approvals,
    auth,
    away,
    db,
    decisions,
    discourse,
    forum_posts,
    needs,
    notify,
    outbox,
    people,
    reminders,
    timeline,
    words,
)
from gatekeeper import mentorships as lifecycle
from gatekeeper import pulls as store
from gatekeeper import report as reports
from gatekeeper.auth import login_required, safe_next
from gatekeeper.events import Person
from gatekeeper.extensions import github_of, settings_of
from gatekeeper.forms import (
    AcknowledgeForm,
    ActionForm,
    ApproveForm,
    AwayForm,
    BackForm,
    EndForm,
    ExtendForm,
    MentorForm,
    OverrideForm,
    ReportPostForm,
    StartForm,
    TermsForm,
    split_names,
)
from gatekeeper.gate import ApprovalSource, GateState
from gatekeeper.models import Mentorship, PullRequest, utcnow
from gatekeeper.pages import ended_page, mentee_page, overview_page, pull_page, waiting_for
from gatekeeper.refusals import RefusalKind, status_of
from gatekeeper.visibility import PRIVATE_PULL, may_see_pull
from gatekeeper.votes import FetchedVote, Vote

bp = Blueprint("dashboard", __name__)
SEARCH_LIMIT = 39  # GitHub's longest login


@bp.before_request
def refuse_nul_characters() -> ResponseReturnValue | None:
    """A NUL is no character of a login, a repository or a note (PostgreSQL refuses it in
    text): a request carrying one, anywhere, is a 400 before anything reads it."""
    values = [*(request.view_args or {}).values(), *request.args.values(), *request.form.values()]
    if any("\x00" in str(value) for value in values):
        abort(400, description="The request holds a NUL character.")
    return None


def now() -> datetime:
    """One clock reading per request, so a page never disagrees with itself."""
    return g.setdefault("now", utcnow())


# ---------------------------------------------------------------- reading


@bp.get("/")
def overview() -> ResponseReturnValue:
    """Active mentorships first, then scheduled and recently ended ones."""
    session, maintainer = db.get_session(), auth.is_maintainer(g.user)
    page = overview_page(session, user=g.user, now=now())
    # What needs a maintainer, first: the same list as /me, its urgent part shown here.
    needed = needs.for_maintainer(session, now=now()) if maintainer else None
    return render_template("overview.html", page=page, is_maintainer=maintainer, needs=needed)


# Not under /mentorships/, where any login (even "ended") names a mentee.
@bp.get("/past-mentorships")
def ended() -> ResponseReturnValue:
    """Every past mentorship, a page at a time, searched by the mentee's login."""
    search = request.args.get("q", "").strip().removeprefix("@")
    page = request.args.get("page", "1")
    if len(search) > SEARCH_LIMIT:
        abort(400, description=f"A GitHub login has at most {SEARCH_LIMIT} characters.")
    if not page.isdigit() or int(page) < 1:
        abort(400, description="The page number must be a whole number from 1.")
    found = ended_page(db.get_session(), search=search, page=int(page), now=now())
    return render_template("ended.html", found=found, words=reports)


@bp.get("/mentorships/<mentee>")
def mentee(mentee: str) -> ResponseReturnValue:
    """One mentee's month: timeline, promotion record, pull requests, audit log, actions."""
    return _render_mentee(mentee)


@bp.get("/mentorships/<mentee>/report")
def report(mentee: str) -> ResponseReturnValue:
    """The month's report for the graduation decision, with its Markdown for the forum."""
    return _render_report(mentee)


def _render_report(mentee: str) -> str:
    found = _report_of(mentee)
    maintainer = auth.is_maintainer(g.user)
    return render_template(
        "report.html",
        report=found,
        markdown=reports.markdown(found),
        words=reports,
        post_form=ReportPostForm() if maintainer else None,
        # What "Post to the vote thread" sends: the report as someone signed out reads it.
        public_markdown=forum_posts.public_markdown(
            db.get_session(),
            mentee=mentee,
            base_url=settings_of(current_app).base_url,
            now=now(),
        )
        if maintainer
        else None,
    )


@bp.get("/mentorships/<mentee>/report.csv")
def report_csv(mentee: str) -> ResponseReturnValue:
    """The report's pull requests as CSV, to download (private names hidden as on the page)."""
    found = _report_of(mentee)
    filename = f"{found.mentee}-pull-requests.csv"
    return Response(
        reports.csv_text(found),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _report_of(mentee: str) -> reports.Report:
    """The report as the signed-in viewer may read it; 404 for a login never mentored."""
    base_url = settings_of(current_app).base_url
    try:
        return reports.build(
            db.get_session(), mentee=mentee, now=now(), base_url=base_url, viewer=g.user
        )
    except lifecycle.MentorshipError as error:
        abort(404, description=str(error))


@bp.post("/mentorships/<mentee>/report/post")
@login_required
def post_report(mentee: str) -> ResponseReturnValue:
    """A maintainer posts the report as a reply in the promotion vote's forum thread."""
    _require_maintainer("post the report to the forum")
    form = ReportPostForm()
    if not form.validate_on_submit():
        abort(400, description="The form expired; reload the report and post again.")
    try:
        posted = forum_posts.post_report(
            db.get_session(),
            mentee=mentee,
            actor=g.user.login,
            settings=settings_of(current_app),
            now=now(),
            again=form.again.data,
        )
    except discourse.ForumUnavailable as error:
        flash(f"Not posted: {error}.", "error")
        return _render_report(mentee), 502
    except lifecycle.MentorshipError as error:
        flash(f"Not posted: {str(error).rstrip('.')}.", "error")
        return _render_report(mentee), 409
    flash(f"Posted in the vote's thread: {posted.url}", "success")
    return redirect(url_for(".report", mentee=mentee))


@bp.get("/pulls/<owner>/<repo>/<int:number>")
def pull(owner: str, repo: str, number: int) -> ResponseReturnValue:
    """The check run's details page: why the pull request is gated and who can let it merge."""
    return _render_pull(f"{owner}/{repo}", number)


@bp.get("/me")
@login_required
def me() -> ResponseReturnValue:
    """What concerns the signed-in user: their own mentorship, or what waits for them."""
    return _render_me()


def _render_me(*, status: int = 200, away_form: AwayForm | None = None) -> ResponseReturnValue:
    session, user = db.get_session(), g.user
    waiting = waiting_for(session, login=user.login, now=now())
    own = lifecycle.open_mentorship(session, mentee=user.login)
    maintainer = auth.is_maintainer(user)
    # Maintainers decide graduations: months ending within a week, or expired lately.
    decide = reports.awaiting_decision(session, now=now()) if maintainer else []
    # And what else needs them: bypasses to look at, months ending, long waits, no mentors,
    # mentorships whose every mentor is away.
    needed = needs.for_maintainer(session, now=now()) if maintainer else None
    stranded = needed.unattended if needed is not None else []
    absence = away.of_person(session, account_id=user.id, now=now())
    if (
        own is not None
        and not waiting.mentorships
        and not decide
        and (needed is None or needed.empty)
        and not stranded
        and absence is None
        and away_form is None
    ):
        return redirect(url_for(".mentee", mentee=own.mentee_display))
    return render_template(
        "me.html",
        waiting=waiting,
        own=own,
        decide=decide,
        needs=needed,
        stranded=stranded,
        absence=absence,
        away_everyone=away.everyone(session, now=now()) if maintainer else [],
        is_maintainer=maintainer,
        away_form=away_form or AwayForm(formdata=None),
        back_form=BackForm(formdata=None),
        acknowledge_form=AcknowledgeForm(formdata=None, back="me"),
    ), status


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    """200 while the database answers, 503 otherwise (for the load balancer)."""
    if db.is_reachable():
        return jsonify(status="ok")
    return jsonify(status="database unreachable"), 503


# ---------------------------------------------------------------- maintainers


@bp.route("/mentorships/new", methods=["GET", "POST"])
@login_required
def new() -> ResponseReturnValue:
    """Start a mentorship; the PEP 13 result is shown before anything is saved."""
    _require_maintainer("start mentorships")
    form = StartForm()
    preview = request.form.get("action") == "preview"
    # "Fetch from the vote thread" re-renders the form filled from the forum. With no URL
    # to fetch it stays the form's default button (Enter in a field) and starts as before.
    if request.method == "POST" and "fetch_vote" in request.form and form.vote_url.data:
        return _fetch_vote_into(form)
    if request.method == "GET" or not form.validate_on_submit():
        status = 400 if request.method == "POST" and not preview else 200
        return _render_new(form, status=status)
    try:
        vote = _vote_of(form)
    except lifecycle.MentorshipError as error:
        field = form.vote_url if _is_forum_error(error) else form.votes_for
        field.errors = [*field.errors, str(error)]
        return _render_new(form, status=400)
    if preview:
        return _render_new(form, vote=vote)
    override = (form.override_reason.data or "").strip()
    if override and (vote is None or vote.passes):
        # An override of nothing would read, forever after, as if the vote had failed.
        override = ""
        flash(
            "The vote passes PEP 13 (or none was given), so no override reason was kept.", "warning"
        )
    if vote is not None and not vote.passes and not override:
        form.override_reason.errors = [
            "The vote fails PEP 13; say why this promotion should stand anyway."
        ]
        return _render_new(form, vote=vote, status=400)

    def start(session: Session) -> Mentorship:
        mentorship = lifecycle.promote(
            session,
            mentee=form.mentee.data or "",
            mentors=split_names(form.mentors.data),
            actor=g.user.login,
            now=now(),
            start=_utc(form.start.data),
            days=form.days.data,
            until=_midnight(form.until.data),
            repositories=split_names(form.repositories.data),
            approvals_required=form.approvals_required.data or 1,
            dismiss_stale_approvals=form.dismiss_stale_approvals.data,
            same_content_approvals=form.same_content_approvals.data,
            gate_approved_prs=form.gate_approved_prs.data,
            bypass_alerts=form.bypass_alerts.data,
            vote=vote,
            override_reason=override or None,
            note=(form.note.data or "").strip() or None,
        )
        return _gates_follow(session, mentorship)

    try:
        mentorship = db.writing(db.get_session(), start)
    except lifecycle.MentorshipError as error:
        field = getattr(form, error.field, None) if error.field else None
        if field is not None:  # marked where it was typed, the rest of the form kept
            field.errors = [*field.errors, _sentence(str(error))]
        else:
            flash(_sentence(str(error)), "error")
        status = 409 if error.field == "mentee" else 400
        return _render_new(form, vote=vote, status=status)
    flash(f"Mentorship for {mentorship.mentee_display} started.", "success")
    _warn_few_mentors(len(split_names(form.mentors.data)))
    if vote is not None and vote.overrides:
        flash(f"Typed over the forum's numbers: {'; '.join(vote.overrides)}.", "warning")
    _say_if_github_is_missing()
    return redirect(url_for(".mentee", mentee=mentorship.mentee_display))


@bp.post("/mentorships/<mentee>/extend")
@login_required
def extend(mentee: str) -> ResponseReturnValue:
    """Move the end of a mentorship later."""
    mentorship = _open_for_change(mentee, "extend mentorships")
    form = ExtendForm()
    if not form.validate_on_submit() or (form.days.data is None) == (form.until.data is None):
        flash("Give either a number of days or an end date to extend by.", "error")
        return _render_mentee(mentee, status=400, extend_form=form)
    return _apply(
        mentorship,
        lambda session: lifecycle.extend(
            session,
            mentee=mentee,
            actor=g.user.login,
            now=now(),
            days=form.days.data,
            until=_midnight(form.until.data),
        ),
        done="Mentorship extended.",
        extend_form=form,
    )


@bp.route("/mentorships/<mentee>/end", methods=["GET", "POST"])
@login_required
def end(mentee: str) -> ResponseReturnValue:
    """Confirm, then end a mentorship early (graduated or revoked)."""
    mentorship = _open_for_change(mentee, "end mentorships")
    form = EndForm()
    if request.method == "GET" or not form.validate_on_submit():
        gated = store.open_pulls_gated_by(db.get_session(), mentorship_id=mentorship.id or 0)
        # Only those still waiting change colour; approved ones are green already.
        waiting = [pull for pull in gated if pull.gate == GateState.WAITING]
        status = 400 if request.method == "POST" else 200
        return render_template(
            "end.html", mentorship=mentorship, form=form, waiting=waiting
        ), status
    return _apply(
        mentorship,
        lambda session: lifecycle.end(
            session,
            mentee=mentee,
            reason=form.reason.data or "",
            note=form.note.data,
            actor=g.user.login,
            now=now(),
        ),
        done=f"Mentorship ended ({form.reason.data}); the pull requests no longer wait for a mentor.",
    )


@bp.post("/mentorships/<mentee>/mentors")
@login_required
def add_mentor(mentee: str) -> ResponseReturnValue:
    """Assign one more mentor."""
    mentorship = _open_for_change(mentee, "change mentors")
    form = MentorForm()
    if not form.validate_on_submit():
        flash(form.login.errors[0] if form.login.errors else MentorForm.REQUIRED, "error")
        return _render_mentee(mentee, status=400, mentor_form=form)
    login = (form.login.data or "").strip()
    return _apply(
        mentorship,
        lambda session: lifecycle.add_mentor(
            session, mentee=mentee, mentor=login, actor=g.user.login, now=now()
        ),
        done=f"{login.removeprefix('@')} now mentors {mentorship.mentee_display}.",
        mentor_form=form,
    )


@bp.route("/mentorships/<mentee>/mentors/<login>/remove", methods=["GET", "POST"])
@login_required
def remove_mentor(mentee: str, login: str) -> ResponseReturnValue:
    """Confirm, then take a mentor off: the page says which pull requests it leaves waiting."""
    mentorship = _open_for_change(mentee, "change mentors")
    if request.method == "GET":
        try:
            removal = needs.removal_of(
                db.get_session(), mentorship=mentorship, mentor=login, now=now()
            )
        except lifecycle.MentorshipError as error:  # not a login at all
            abort(404, description=str(error))
        return render_template(
            "remove.html", mentorship=mentorship, removal=removal, form=ActionForm()
        )
    if not ActionForm().validate_on_submit():
        abort(400)
    return _apply(
        mentorship,
        lambda session: lifecycle.remove_mentor(
            session, mentee=mentee, mentor=login, actor=g.user.login, now=now()
        ),
        done=f"{login} no longer mentors {mentorship.mentee_display}.",
    )


@bp.post("/mentorships/<mentee>/terms")
@login_required
def change_terms(mentee: str) -> ResponseReturnValue:
    """Change a running mentorship's terms; the mentee's gates follow at once."""
    _open_for_change(mentee, "change a mentorship's terms")
    form = TermsForm()
    if not form.validate_on_submit():
        return _render_mentee(mentee, status=400, terms_form=form)

    def change(session: Session) -> tuple[Mentorship, list[str]]:
        changed, lines = lifecycle.change_terms(
            session,
            mentee=mentee,
            actor=g.user.login,
            now=now(),
            approvals_required=form.approvals_required.data,
            repositories=split_names(form.repositories.data),
            dismiss_stale_approvals=form.dismiss_stale_approvals.data,
            same_content_approvals=form.same_content_approvals.data,
            gate_approved_prs=form.gate_approved_prs.data,
            bypass_alerts=form.bypass_alerts.data,
            note=form.note.data or "",
            notify_url="" if form.clear_notify_url.data else (form.notify_url.data or None),
            seen=form.seen.data or None,
        )
        return _gates_follow(session, changed), lines

    try:
        changed, lines = db.writing(db.get_session(), change)
    except lifecycle.MentorshipError as error:
        if error.field == "conflict":  # the page shows the terms as they now stand
            flash(_sentence(str(error)), "error")
            return _render_mentee(mentee, status=409)
        _mark(form, error)
        return _render_mentee(mentee, status=400, terms_form=form)
    if not lines:
        flash("Nothing changed: the terms were already these.", "info")
        return redirect(url_for(".mentee", mentee=changed.mentee_display))
    flash(f"Terms changed ({'; '.join(lines)}); the pull requests follow.", "success")
    _say_if_github_is_missing()
    return redirect(url_for(".mentee", mentee=changed.mentee_display))


@bp.post("/pulls/<owner>/<repo>/<int:number>/acknowledge")
@login_required
def acknowledge(owner: str, repo: str, number: int) -> ResponseReturnValue:
    """A maintainer acknowledges a bypass, with a note for the record."""
    session = db.get_session()
    pull = store.find_pull(session, repo=f"{owner}/{repo}", number=number)
    if pull is None or not may_see_pull(session, pull, user=g.user):
        abort(404, description=_unseen(f"{owner}/{repo}", number))
    _require_maintainer("acknowledge bypasses")
    form = AcknowledgeForm()
    if not form.validate_on_submit():
        return _render_pull(pull.repo, number, status=400, acknowledge_form=form)

    def record(session: Session) -> bool:
        locked = store.find_pull(session, repo=pull.repo, number=number, lock=True)
        assert locked is not None
        return needs.acknowledge(
            session, pull=locked, actor=g.user.login, note=form.note.data, now=now()
        )

    try:
        recorded = db.writing(session, record)
    except lifecycle.MentorshipError as error:
        if error.field is None:  # not a bypass: nothing a note could fix
            flash(_sentence(str(error)), "error")
            return _render_pull(pull.repo, number, status=409)
        _mark(form, error)
        return _render_pull(pull.repo, number, status=400, acknowledge_form=form)
    if recorded:
        flash(f"Bypass of {pull.repo}#{number} acknowledged.", "success")
    else:
        flash(f"{pull.repo}#{number} was already acknowledged with this note.", "info")
    if form.back.data == "me":
        return redirect(url_for(".me"))
    return redirect(url_for(".pull", owner=owner, repo=repo, number=number))


# ---------------------------------------------------------------- mentors


@bp.post("/pulls/<owner>/<repo>/<int:number>/approve")
@login_required
def approve(owner: str, repo: str, number: int) -> ResponseReturnValue:
    """A mentor lets the pull request merge: record the approval and update GitHub at once."""
    session, settings = db.get_session(), settings_of(current_app)
    pull = store.find_pull(session, repo=f"{owner}/{repo}".lower(), number=number)
    # A private pull request the user may not see is answered as unknown, not as a refusal.
    if pull is None or not may_see_pull(session, pull, user=g.user):
        abort(404, description=_unseen(f"{owner}/{repo}", number))
    if g.user.id is not None:  # signing in said who this is: learned before the gate looks
        account = Person(g.user.id, g.user.login, g.user.display)
        db.writing(
            session,
            lambda unit: people.learn(unit, account, at=now(), maintainers=settings.maintainers),
        )
        pull = store.find_pull(session, repo=pull.repo, number=number) or pull
    refusal = approvals.approval_refusal(session, pull, login=g.user.login, user_id=g.user.id)
    # Who may never approve here is told so before the form is even read.
    if refusal is not None and refusal.kind is RefusalKind.NOT_ALLOWED:
        abort(status_of(refusal), description=f"You cannot approve this pull request: {refusal}.")
    form = ApproveForm()
    if not form.validate_on_submit():
        abort(400)
    if refusal is not None:
        flash(f"Not approved: {refusal}.", "error")
        return _render_pull(pull.repo, number, status=status_of(refusal))
    if form.head_sha.data != pull.head_sha:
        flash(
            "New commits arrived since you opened this page; look at them, then approve.", "error"
        )
        return _render_pull(pull.repo, number, status=409)

    def record(session: Session) -> bool:
        locked = store.find_pull(session, repo=pull.repo, number=number, lock=True)
        if locked is None or locked.head_sha != form.head_sha.data:  # a push since the read
            return False
        _refusal, touched = approvals.approve(
            session,
            locked,
            login=g.user.display,
            user_id=g.user.id,
            source=ApprovalSource.DASHBOARD,
            settings=settings,
            now=now(),
            commit_id=form.head_sha.data,
        )
        outbox.commit_gates(session, touched, settings=settings, now=now())
        return True

    if not db.writing(session, record):
        flash(
            "New commits arrived since you opened this page; look at them, then approve.", "error"
        )
        return _render_pull(pull.repo, number, status=409)
    if github_of(current_app) is None:
        flash(
            "Approved. GitHub is not configured here, so the check will be posted once it is.",
            "warning",
        )
    else:
        flash("Approved. The check on GitHub is being updated.", "success")
    # From the "wait for you" list, back to the list.
    back = safe_next(request.form.get("next"))
    return redirect(back or url_for(".pull", owner=owner, repo=repo, number=number))


@bp.post("/pulls/<owner>/<repo>/<int:number>/override")
@login_required
def override(owner: str, repo: str, number: int) -> ResponseReturnValue:
    """A maintainer lets the pull request merge without a mentor, for the commit shown, and why."""
    session, settings = db.get_session(), settings_of(current_app)
    pull = store.find_pull(session, repo=f"{owner}/{repo}".lower(), number=number)
    if pull is None or not may_see_pull(session, pull, user=g.user):
        abort(404, description=_unseen(f"{owner}/{repo}", number))
    _require_maintainer("override the gate")
    form = OverrideForm()
    if not form.validate_on_submit():
        return _render_pull(pull.repo, number, status=400, override_form=form)
    stale = "New commits arrived since you opened this page; look at them, then override."

    def record(session: Session) -> str | None:
        locked = store.find_pull(session, repo=pull.repo, number=number, lock=True)
        if locked is None or locked.head_sha != form.head_sha.data:  # a push since the page
            return stale
        refusal, touched = approvals.override(
            session,
            locked,
            login=g.user.display,
            user_id=g.user.id,
            reason=form.reason.data or "",
            source="dashboard",
            commit_id=form.head_sha.data,
            settings=settings,
            now=now(),
        )
        outbox.commit_gates(session, touched, settings=settings, now=now())
        return refusal

    refusal = db.writing(session, record)
    if refusal == stale:
        flash(stale, "error")
        return _render_pull(pull.repo, number, status=409)
    if refusal is not None:
        flash(f"Not overridden: {refusal}.", "error")
        return _render_pull(pull.repo, number, status=409)
    flash("Overridden. The check on GitHub is being updated.", "success")
    return redirect(url_for(".pull", owner=owner, repo=repo, number=number))


@bp.post("/pulls/<owner>/<repo>/<int:number>/remind")
@login_required
def remind(owner: str, repo: str, number: int) -> ResponseReturnValue:
    """The mentee asks their mentors for a review again (at most once a day per pull request)."""
    session = db.get_session()
    pull = store.find_pull(session, repo=f"{owner}/{repo}".lower(), number=number, lock=True)
    if pull is None or not may_see_pull(session, pull, user=g.user):
        abort(404, description=_unseen(f"{owner}/{repo}", number))
    if g.user.login != pull.author:
        abort(403, description="Only the pull request's author reminds their mentors.")
    if not ActionForm().validate_on_submit():
        abort(400)
    settings = settings_of(current_app)

    def record(session: Session) -> str | None:
        locked = store.find_pull(session, repo=pull.repo, number=number, lock=True)
        assert locked is not None
        return reminders.remind(session, locked, login=g.user.login, settings=settings, now=now())

    refusal = db.writing(session, record)
    if refusal is not None:
        flash(f"Not reminded: {refusal}.", "error")
        return _render_pull(pull.repo, number, status=409)
    if github_of(current_app) is None:
        flash(
            "Reminder recorded. GitHub is not configured here, so the review requests "
            "will be sent once it is.",
            "warning",
        )
    else:
        flash(
            "Reminder sent: your mentors' reviews are being requested again on GitHub.", "success"
        )
    back = safe_next(request.form.get("next"))
    return redirect(back or url_for(".pull", owner=owner, repo=repo, number=number))


@bp.post("/away")
@login_required
def set_away() -> ResponseReturnValue:
    """A mentor marks themselves away until a date; a maintainer may mark anyone."""
    form = AwayForm()
    if not form.validate_on_submit():
        return _render_me(status=400, away_form=form)
    login = _whose_absence(form.login.data)
    try:
        until = away.parse_until(form.until.data, now=now())
    except lifecycle.MentorshipError as error:
        _mark(form, error)
        return _render_me(status=400, away_form=form)
    mine = login == g.user.login
    if mine and not auth.is_maintainer(g.user) and not _mentors_now():
        abort(403, description="Only mentors mark themselves away: you mentor no one now.")

    def change(session: Session) -> away.Change:
        done = away.set_away(
            session,
            login=login,
            until=until,
            note=form.note.data,
            actor=g.user.login,
            now=now(),
            account_id=g.user.id if mine else None,
        )
        for mentorship in done.mentorships:
            _gates_follow(session, mentorship)
        return done

    try:
        done = db.writing(db.get_session(), change)
    except lifecycle.MentorshipError as error:
        _mark(form, error)
        return _render_me(status=400, away_form=form)
    who = "You are" if mine else f"{done.login} is"
    flash(
        f"{who} away until {away.day_words(until)}: review requests and reminders go to the"
        " other mentors meanwhile.",
        "success",
    )
    return redirect(url_for(".me", _anchor="away"))


@bp.post("/away/back")
@login_required
def come_back() -> ResponseReturnValue:
    """Someone who was away is back: they are asked for reviews again."""
    form = BackForm()
    if not form.validate_on_submit():
        abort(400)
    login = _whose_absence(form.login.data)
    mine = login == g.user.login

    def change(session: Session) -> away.Change:
        done = away.come_back(
            session,
            login=login,
            actor=g.user.login,
            now=now(),
            account_id=g.user.id if mine else None,
        )
        for mentorship in done.mentorships:
            _gates_follow(session, mentorship)
        return done

    try:
        done = db.writing(db.get_session(), change)
    except lifecycle.MentorshipError as error:
        flash(_sentence(str(error)), "error")
        return _render_me(status=409)
    flash(f"{'Welcome back' if mine else done.login + ' is back'}: marked present.", "success")
    return redirect(url_for(".me", _anchor="away"))


def _mentors_now() -> bool:
    """Whether the signed-in person mentors a mentorship that has not ended."""
    user = g.user
    return bool(away.mentored(db.get_session(), account_id=user.id, login=user.login, now=now()))


def _whose_absence(typed: str | None) -> str:
    """The login an away form changes: the signed-in person's own unless a maintainer typed
    another (400 for a name that is no login, 403 for anyone else's)."""
    if not (typed or "").strip():
        return str(g.user.login)
    try:
        login = lifecycle.canonical_login(typed or "")
    except lifecycle.MentorshipError:
        abort(400, description="That is not a GitHub login.")
    if login != g.user.login and not auth.is_maintainer(g.user):
        abort(
            403,
            description="Only maintainers mark someone else away or back; you may mark yourself.",
        )
    return login


# ---------------------------------------------------------------- helpers


def _require_maintainer(what: str) -> None:
    if not auth.is_maintainer(g.user):
        maintainers = ", ".join(sorted(settings_of(current_app).maintainers)) or "nobody yet"
        abort(
            403,
            description=f"Only maintainers can {what}. You are signed in as {g.user.display}; "
            f"the maintainers are: {maintainers}.",
        )


def _open_for_change(mentee: str, what: str) -> Mentorship:
    """The mentorship a maintainer's change applies to: 404 unknown, 403 wrong role, 409 ended."""
    mentorship = lifecycle.latest_mentorship(db.get_session(), mentee=mentee)
    if mentorship is None:
        abort(404, description=lifecycle.no_mentorship(mentee))
    _require_maintainer(what)
    if lifecycle.state_of(mentorship, now()) == "ended":
        flash(f"{mentorship.mentee_display}'s mentorship has already ended.", "error")
        abort(make_response(_render_mentee(mentee, status=409)))
    return mentorship


def _apply(
    mentorship: Mentorship,
    change: Callable[[Session], Mentorship],
    *,
    done: str,
    **forms: Any,
) -> ResponseReturnValue:
    """Run one lifecycle change and its effect on the gates in one transaction (again, from
    the start, if the database was busy: ``change`` only touches the database).

    The checks on GitHub are the worker's to post; the page does not wait for GitHub.
    """
    try:
        changed = db.writing(
            db.get_session(), lambda session: _gates_follow(session, change(session))
        )
    except lifecycle.MentorshipError as error:
        flash(_sentence(str(error)), "error")
        return _render_mentee(mentorship.mentee, status=400, **forms)
    flash(done, "success")
    _say_if_github_is_missing()
    return redirect(url_for(".mentee", mentee=changed.mentee_display))


def _mark(form: Any, error: lifecycle.MentorshipError) -> None:
    """Show a lifecycle refusal beside the field it names, else at the top of the page."""
    field = getattr(form, error.field, None) if error.field else None
    message = _sentence(str(error))
    if field is None:
        flash(message, "error")
        return
    field.errors = [*field.errors, message]


def _unseen(repo: str, number: int) -> str:
    """A 404's words for a pull request never seen; a long name from the URL is cut short."""
    return f"Gatekeeper has not seen {words.shorten(repo, 80)}#{number}."


def _sentence(message: str) -> str:
    """A refusal worded as a sentence; a login or repository typed in this request, or named
    in its URL, keeps its case at the start ("mira-k already mentors…", not "Mira-k")."""
    typed = [*(request.view_args or {}).values(), *request.form.values()]
    return words.sentence(message, names=[name for v in typed for name in split_names(str(v))])


def _gates_follow(session: Session, mentorship: Mentorship) -> Mentorship:
    """The mentee's gates and their commits' checks follow the change, in its transaction."""
    settings = settings_of(current_app)
    touched = decisions.follow_lifecycle_change(session, mentorship, settings=settings, now=now())
    outbox.commit_gates(session, touched, settings=settings, now=now())
    return mentorship


def _warn_few_mentors(count: int) -> None:
    """Warn, without refusing, when fewer mentors than the form asks for were named."""
    warning = lifecycle.few_mentors_warning(count)
    if warning is not None:
        flash(warning, "warning")


def _say_if_github_is_missing() -> None:
    if github_of(current_app) is None:
        flash("GitHub is not configured here: the checks will be posted once it is.", "warning")


def _render_mentee(mentee: str, *, status: int = 200, **forms: Any) -> tuple[str, int]:
    page = mentee_page(
        db.get_session(),
        mentee=mentee,
        user=g.user,
        now=now(),
        request_reviews=settings_of(current_app).request_reviews,
    )
    if page is None:
        abort(404, description=lifecycle.no_mentorship(mentee))
    forms.setdefault("extend_form", ExtendForm(formdata=None))
    forms.setdefault("mentor_form", MentorForm(formdata=None))
    forms.setdefault("terms_form", _terms_form_of(page.mentorship))
    return render_template(
        "mentee.html",
        page=page,
        action_form=ActionForm(formdata=None),
        private_pull=PRIVATE_PULL,
        report_ready=reports.ready(page.mentorship, now()),
        chat_host=notify.host_of(notify.url_for(page.mentorship, settings_of(current_app))),
        **forms,
    ), status


def _terms_form_of(mentorship: Mentorship) -> TermsForm:
    """The terms form filled with the mentorship's terms as they stand."""
    return TermsForm(
        formdata=None,
        approvals_required=mentorship.approvals_required,
        repositories="\n".join(mentorship.repositories),
        dismiss_stale_approvals=mentorship.dismiss_stale_approvals,
        same_content_approvals=mentorship.same_content_approvals,
        gate_approved_prs=mentorship.gate_approved_prs,
        bypass_alerts=mentorship.bypass_alerts,
        note=mentorship.note or "",
        seen=lifecycle.terms_digest(mentorship),
    )


def _render_pull(
    repo: str,
    number: int,
    *,
    status: int = 200,
    acknowledge_form: AcknowledgeForm | None = None,
    override_form: OverrideForm | None = None,
) -> tuple[str, int]:
    session = db.get_session()
    page = pull_page(
        session,
        repo=repo,
        number=number,
        user=g.user,
        now=now(),
        check_name=settings_of(current_app).check_name,
        request_reviews=settings_of(current_app).request_reviews,
    )
    if page is None:
        abort(404, description=_unseen(repo, number))
    form = ApproveForm(formdata=None, head_sha=page.pull.head_sha)
    acknowledged = None
    if page.pull.gate == GateState.BYPASSED:
        acknowledged = needs.acknowledgement_of(session, pull=page.pull)
    if acknowledge_form is None:
        note = acknowledged.note if acknowledged else ""
        acknowledge_form = AcknowledgeForm(formdata=None, note=note)
    return render_template(
        "pull.html",
        page=page,
        form=form,
        acknowledged=acknowledged,
        acknowledge_form=acknowledge_form,
        override_form=override_form or OverrideForm(formdata=None, head_sha=page.pull.head_sha),
        is_maintainer=auth.is_maintainer(g.user),
        notices=notify.sent_about(session, repo=page.pull.repo, number=page.pull.number),
    ), status


def _render_new(
    form: StartForm,
    *,
    vote: Vote | None = None,
    status: int = 200,
    fetched: FetchedVote | None = None,
) -> tuple[str, int]:
    return render_template("new.html", form=form, vote=vote, fetched=fetched), status


def _fetch_vote_into(form: StartForm) -> tuple[str, int]:
    """Fill the form's vote from the forum's poll and show its PEP 13 result; nothing is saved."""
    from gatekeeper import discourse

    try:
        fetched = discourse.fetch_vote(
            (form.vote_url.data or "").strip(), now=now(), **_poll_choice(form)
        )
    except discourse.ForumError as error:
        form.vote_url.errors = [*form.vote_url.errors, str(error)]
        return _render_new(
            form, status=502 if isinstance(error, discourse.ForumUnavailable) else 400
        )
    parts = fetched.parts()
    for field, name in (
        (form.votes_for, "votes for"),
        (form.votes_against, "votes against"),
        (form.vote_opened, "vote opened"),
        (form.vote_closed, "vote closed"),
    ):
        # Shown from ``data``: what the browser sent for these fields (empty) is forgotten.
        field.data, field.raw_data = parts[name], None
    form.vote_fetched.data = fetched.fetched_at.isoformat()
    if fetched.closed_at is None:
        form.vote_closed.errors = [f"{fetched.closed_unknown}; give the date it closed."]
        return _render_new(form, fetched=fetched)
    try:
        vote = form.vote()
    except lifecycle.MentorshipError as error:  # a poll closing before its post was written
        form.vote_closed.errors = [str(error)]
        return _render_new(form, fetched=fetched, status=400)
    return _render_new(form, vote=vote, fetched=fetched)


def _vote_of(form: StartForm) -> Vote | None:
    """The vote as typed; read from the forum again when the form was filled from it, so the
    record says where its numbers came from and what was typed over them."""
    if not form.vote_fetched.data:
        return form.vote()
    from gatekeeper import discourse

    vote, _ = discourse.promotion_vote(
        url=(form.vote_url.data or "").strip() or None,
        votes_for=form.votes_for.data,
        votes_against=form.votes_against.data,
        opened=form.vote_opened.data,
        closed=form.vote_closed.data,
        now=now(),
        refetch=True,
        **_poll_choice(form),
    )
    return vote


def _poll_choice(form: StartForm) -> dict[str, Any]:
    """The forum's settings and the form's choice of poll and options, for discourse's calls."""
    return {
        "settings": settings_of(current_app),
        "poll_name": (form.vote_poll.data or "").strip() or None,
        "for_option": (form.vote_for_option.data or "").strip() or None,
        "against_option": (form.vote_against_option.data or "").strip() or None,
    }


def _is_forum_error(error: Exception) -> bool:
    from gatekeeper import discourse

    return isinstance(error, discourse.ForumError)


def _utc(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment is not None else None


def _midnight(day: Any) -> datetime | None:
    return datetime.combine(day, time(0), tzinfo=UTC) if day is not None else None


# ---------------------------------------------------------------- template helpers


def _time(moment: datetime | date | None, shown: str, kind: str) -> Markup:
    """``moment`` worded as ``shown`` in a <time> element that also holds its exact time.

    The exact time is text, not a tooltip a touch screen cannot reach: read by screen readers,
    shown when the time is tapped or focused, and turned into the reader's own time zone by
    times.js (the server's UTC, said as such, without JavaScript).
    """
    if moment is None:
        return Markup("—")
    if not isinstance(moment, datetime):  # a calendar day (a vote's dates): nothing more exact
        return Markup(f'<time datetime="{moment.isoformat()}">{escape(shown)}</time>')
    moment = _aware(moment)
    exact = words.exact_time(moment)
    return Markup(
        f'<time datetime="{moment.isoformat()}" class="{kind}" tabindex="0" title="{exact}">'
        f'{escape(shown)}<span class="exact"> ({exact})</span></time>'
    )


@bp.app_template_filter("when")
def when(moment: datetime | None) -> Markup:
    """A time shown relative to now ("in 4 days"), its exact time a tap away."""
    shown = relative(moment, now()) if moment is not None else ""
    return _time(moment, shown, "relative")


@bp.app_template_filter("day")
def day(moment: datetime | date | None) -> Markup:
    """A date, the one way dates are shown ("Dec 21, 2026"), its exact time a tap away."""
    return _time(moment, words.day(moment) if moment is not None else "", "day")


@bp.app_template_filter("exact")
def exact(moment: datetime | None) -> Markup:
    """A moment shown exactly ("Dec 21, 2026, 14:05 UTC"), where the time of day matters."""
    if moment is None:
        return Markup("—")
    moment = _aware(moment)
    shown = words.exact_time(moment)
    return Markup(f'<time datetime="{moment.isoformat()}" class="exact-time">{shown}</time>')


def _aware(moment: datetime) -> datetime:
    """``moment`` marked as UTC (SQLite gives naive datetimes), so a browser reads it right."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@bp.app_template_filter("away_day")
def away_day(day: date) -> str:
    """The last day someone is away: ``Dec 20, 2026``."""
    return away.day_words(day)


@bp.app_template_filter("next_time")
def next_time(moment: datetime) -> str:
    """A time within the next days, said from today: ``tomorrow at 14:05 UTC``."""
    ahead = (moment.date() - now().date()).days
    named = {0: "today", 1: "tomorrow"}.get(ahead, f"{moment:%b} {moment.day}")
    return f"{named} at {moment:%H:%M} UTC"


@bp.app_template_filter("waited")
def waited(pull: PullRequest) -> str:
    """How long a pull request has waited for a mentor: ``2 days``."""
    return duration(store.waited_seconds(pull, now=now()) or 0)


@bp.app_template_filter("days")
def days(count: int) -> str:
    """``1 day``, ``19 days``."""
    return words.plural(count, "day")


bp.add_app_template_global(words.plural, "plural")


@bp.app_template_filter("left_words")
def left_words(days: int) -> str:
    """``18 days left``, ``last day``: the one day rule (``mentorships.days_left``)."""
    return lifecycle.left_words(days)


@bp.app_template_filter("days_left")
def days_left(mentorship: Mentorship) -> int:
    """Days until the gate lifts, counted as ``status`` and ``/api`` count them."""
    return lifecycle.days_left(mentorship, now())


def relative(moment: datetime, reference: datetime) -> str:
    """``in 4 days``, ``3 hours ago``, ``just now``."""
    seconds = (moment - reference).total_seconds()
    amount = duration(abs(seconds))
    if amount == "moments":
        return "just now"
    return f"in {amount}" if seconds > 0 else f"{amount} ago"


@bp.app_template_filter("duration")
def duration(seconds: float) -> str:
    """A length of time in its largest sensible unit: ``3 days``, ``5 hours``, ``12 minutes``."""
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            return words.plural(math.floor(seconds / size), unit)
    return "moments"


# How the audit log's kinds read to people.
AUDIT_WORDS = {
    "created": "started the mentorship",
    "pep13_override": "overrode PEP 13",
    "mentor_added": "mentor added",
    "mentor_removed": "mentor removed",
    "extended": "extended",
    "ended": "ended the mentorship",
    "expired": "mentorship expired",
    "approval": "approved",
    "approval_refused": "approval refused",
    "approval_not_counted": "approval recorded, not counted",
    "gate_waiting": "now waiting for a mentor",
    "gate_approved": "now approved",
    "gate_not_required": "no approval needed any more",
    "bypass": "merged without approval",
    "bypass_acknowledged": "acknowledged the bypass",
    "terms_changed": "changed the terms",
    "notified": "notified the team chat",
}
bp.add_app_template_global(
    lambda kind: AUDIT_WORDS.get(kind, kind.replace("_", " ")), "audit_words"
)


@bp.app_template_global("avatar")
def avatar(login: str, size: str = "") -> Markup:
    """A round badge with the login's initials, coloured by login (nothing loaded from GitHub)."""
    hue = sum(login.lower().encode()) * 47 % 360
    initials = "".join(part[0] for part in login.replace("_", "-").split("-") if part)[:2]
    initials = (initials if len(initials) == 2 else login[:2]).upper()
    css = f"avatar {size}".strip()
    return Markup(
        f'<span class="{css} hue-{hue // 10}" aria-hidden="true">{escape(initials)}</span>'
    )


@bp.app_template_global("timeline_svg")
def timeline_svg(**kwargs: Any) -> Markup:
    """The mentee page's month, drawn by :func:`gatekeeper.timeline.draw`."""
    return timeline.draw(now=now(), **kwargs)


# ---------------------------------------------------------------- errors

ERROR_TEMPLATES = {400: "400.html", 403: "403.html", 404: "404.html"}
JSON_PREFIXES = ("/api/", "/webhooks/")


def error_page(error: HTTPException) -> ResponseReturnValue:
    """403, 404 and 400 in the site's layout; the API and webhooks keep answering JSON."""
    code = error.code or 500
    if request.path.startswith(JSON_PREFIXES):
        return jsonify(error=error.description), code
    reason = error.description
    if isinstance(error, CSRFError):
        reason = "The form's security token was missing or had expired, so it was refused."
    elif code == 404 and reason == NotFound.description:
        reason = None
    elif reason:
        reason = _sentence(reason)
    return render_template(ERROR_TEMPLATES.get(code, "400.html"), reason=reason), code
