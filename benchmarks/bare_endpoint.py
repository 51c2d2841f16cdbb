"""The least a webhook endpoint can do, to compare Gatekeeper's with: verify the HMAC, parse the JSON.

``benchmarks/load.py`` serves it with the same gunicorn settings and the same load as
Gatekeeper's endpoint, so the difference between the two is Gatekeeper's own work (storing the
delivery, deciding the gate, the outbox). It reads only ``GITHUB_WEBHOOK_SECRET``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os

from flask import Flask, jsonify, request


def create_app() -> Flask:
    """The bare endpoint at Gatekeeper's path, its secret read from the environment."""
    app = Flask(__name__)
    secret = os.environ["GITHUB_WEBHOOK_SECRET"].encode()

    @app.post("/webhooks/github")
    def receive():  # type: ignore[no-untyped-def]
        """Check the signature and parse the body; nothing is stored."""
        body = request.get_data(cache=False)
        expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
        given = request.headers.get("X-Hub-Signature-256", "")
        if not hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace")):
            return jsonify(error="missing or wrong X-Hub-Signature-256"), 401
        try:
            payload = json.loads(body)
        except ValueError:
            return jsonify(error="the body is not JSON"), 400
        delivery = request.headers.get("X-GitHub-Delivery")
        return jsonify(delivery=delivery, outcome="parsed", fields=len(payload)), 200

    return app
