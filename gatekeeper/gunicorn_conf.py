"""gunicorn settings for the Procfile's web process (``--config python:gatekeeper.gunicorn_conf``).

GitHub's sign-in sends the browser to /login/callback?code=...&state=...; the code is
single-use and short-lived but still a credential, so the access log never holds it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from gunicorn.glogging import Logger

# Paths whose query string carries a secret.
SECRET_QUERIES = frozenset({"/login/callback"})


class RedactingLogger(Logger):
    """gunicorn's logger, with the query of a SECRET_QUERIES path left out of every atom."""

    def atoms(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> Any:
        """The access log's fields, built from a copy of ``environ`` without the secret parts."""
        if environ.get("PATH_INFO") in SECRET_QUERIES:
            environ = {**environ, "QUERY_STRING": "", "RAW_URI": environ.get("PATH_INFO", "")}
        if "HTTP_REFERER" in environ:
            # A page the callback rendered (a failed sign-in) loads its styles with the
            # callback's whole URL as the Referer.
            environ = {**environ, "HTTP_REFERER": without_secret_query(environ["HTTP_REFERER"])}
        atoms = super().atoms(resp, req, environ, request_time)
        for header in ("{referer}i", "{referrer}i"):
            if header in atoms:
                atoms[header] = without_secret_query(atoms[header])
        return atoms


def without_secret_query(url: str) -> str:
    """``url`` without its query and fragment when its path is one of SECRET_QUERIES."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "-"
    if parts.path not in SECRET_QUERIES:
        return url
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


logger_class = RedactingLogger
