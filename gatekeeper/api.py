"""``/api``: the JSON documents ``gatekeeper status/list/report --json`` print, over HTTP."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, g, jsonify
from flask.typing import ResponseReturnValue

from gatekeeper import mentorships as lifecycle
from gatekeeper import report
from gatekeeper.db import get_session
from gatekeeper.documents import list_documents, status_document
from gatekeeper.extensions import settings_of
from gatekeeper.models import utcnow

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.get("/mentorships")
def mentorships_api() -> ResponseReturnValue:
    """Every mentorship, as ``gatekeeper list --all --json`` prints it (private names hidden)."""
    return jsonify(list_documents(get_session(), include_ended=True, now=utcnow(), viewer=g.user))


@bp.get("/mentorships/<mentee>")
def mentorship_api(mentee: str) -> ResponseReturnValue:
    """One mentee's mentorship, as ``gatekeeper status --json`` prints it (private names hidden)."""
    try:
        return jsonify(status_document(get_session(), mentee=mentee, now=utcnow(), viewer=g.user))
    except lifecycle.MentorshipError as error:
        abort(404, description=str(error))


@bp.get("/mentorships/<mentee>/report")
def report_api(mentee: str) -> ResponseReturnValue:
    """The month's report, as ``gatekeeper report --json`` prints it (private names hidden)."""
    base_url = settings_of(current_app).base_url
    try:
        found = report.current(get_session(), mentee=mentee, base_url=base_url, viewer=g.user)
    except lifecycle.MentorshipError as error:
        abort(404, description=str(error))
    return jsonify(report.document(found))
