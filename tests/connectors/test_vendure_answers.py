"""Vendure answers read strictly: only Vendure's own error list is a refusal.

Vendure answers a refusal in a GraphQL ``errors`` list (``FORBIDDEN`` with HTTP 200 for an
expired session or a missing permission, tests/fixtures/vendure/SOURCES.md; Apollo's 400
for a query the schema rejects) or, for a mutation, an ``ErrorResult`` (``errorCode``,
``message``). Anything else (a proxy's 404 page, a WAF's 403, JSON of another shape) is no
Vendure answer: ``TransientError``, tried again later, never read as refused or as done.
HTTP is mocked at the edge with ``responses``; the connector's own session is used.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests
import responses

from connectors.base import Credentials
from connectors.errors import InvalidPayload, PermissionDenied, TransientError
from connectors.guarded_http import make_guarded_session
from connectors.vendure import VendureConnector

FIXTURES = Path(__file__).parents[1] / "fixtures" / "vendure"
API_URL = "https://vendure.example/admin-api"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def connector(session: requests.Session | None = None, **extra: str) -> VendureConnector:
    token = None if "username" in extra else "tok"
    return VendureConnector(Credentials("vendure.example", access_token=token,
                                        webhook_secret="s", api_url=API_URL, extra=extra),
                            session=session)


#: the connector's own retrying session (sync, jobs), the bounded one an accept uses
#: (``plugin.offers.service.shopper_session``), and a bare one: each read the same
SESSIONS = {"own": lambda: None,
            "guarded": lambda: make_guarded_session(sleep=lambda _s: None),
            "bare": requests.Session}


# -- HTTP statuses ----------------------------------------------------------------------------
PROXY_ANSWERS = [
    {"status": 404, "body": "<html><body>404 Not Found</body></html>",
     "content_type": "text/html"},
    {"status": 404, "json": {"message": "Not Found"}},
    {"status": 400, "body": "<html>400 Bad Request (nginx)</html>", "content_type": "text/html"},
    {"status": 403, "body": "<html>Access denied (WAF)</html>", "content_type": "text/html"},
    {"status": 401, "body": ""},
    {"status": 413, "json": {"error": "payload too large"}},
]


@pytest.mark.parametrize("session", SESSIONS)
@pytest.mark.parametrize("answer", PROXY_ANSWERS,
                         ids=["404-html", "404-json", "400-html", "403-html", "401-empty",
                              "413-json"])
@responses.activate
def test_a_4xx_without_vendures_errors_is_transient(answer, session) -> None:
    """A proxy's or gateway's page is not Vendure refusing: read as InvalidPayload (or, for
    401/403, as dead credentials) an accept withdrew its offer and a shop was flagged for
    re-authorisation because of a misrouted request."""
    responses.add("POST", API_URL, **answer)
    with pytest.raises(TransientError):
        connector(SESSIONS[session]()).find_discount("SK-1")


@pytest.mark.parametrize("session", SESSIONS)
@pytest.mark.parametrize("status", [200, 401, 403])
@responses.activate
def test_vendures_forbidden_stays_a_refusal_whatever_the_status(status, session) -> None:
    responses.add("POST", API_URL, status=status, json=load("admin_forbidden.json"))
    with pytest.raises(PermissionDenied):
        connector(SESSIONS[session]()).find_discount("SK-1")


@responses.activate
def test_a_query_the_schema_rejects_stays_a_refusal() -> None:
    """Apollo answers a query that fails validation with 400 and its ``errors`` list."""
    responses.add("POST", API_URL, status=400, json={"errors": [{
        "message": 'Cannot query field "nope" on type "Query".',
        "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"}}]})
    with pytest.raises(InvalidPayload) as caught:
        connector().find_discount("SK-1")
    assert not isinstance(caught.value, TransientError)
