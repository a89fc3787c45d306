"""A do-nothing endpoint for benchmarks: the same server's ceiling for comparison.

Registered only when ``BENCH_BARE_ENDPOINT`` is true (``bench/*.py`` set it).
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from flask.wrappers import Response

bp = Blueprint("bench_bare", __name__, url_prefix="/bench")


@bp.route("/bare", methods=["GET", "POST"])
def bare() -> Response:
    request.get_data()  # read the body, as the webhook endpoint does, and nothing else
    return jsonify(status="ok")
