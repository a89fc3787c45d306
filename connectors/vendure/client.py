"""Vendure Admin API client: one GraphQL POST, authentication, and error translation.

Vendure answers most failures with HTTP 200 and a GraphQL ``errors`` array; ``FORBIDDEN``
means our session expired or lacks permissions. With a username/password we log in again once
(the bearer token arrives in the ``vendure-auth-token`` response header); with a fixed token
(session token or API key) the shop has to re-authorize, so ``AuthFailed`` is raised.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import requests

from connectors.errors import AuthFailed, InvalidPayload, PermissionDenied, TransientError
from connectors.http import server_trouble
from connectors.vendure import queries

__all__ = ["AdminClient"]

log = logging.getLogger(__name__)

AUTH_TOKEN_HEADER = "vendure-auth-token"
CHANNEL_TOKEN_HEADER = "vendure-token"
API_KEY_HEADER = "vendure-api-key"
_AUTH_CODES = frozenset({"FORBIDDEN", "UNAUTHORIZED"})
#: the server failed, not our request: worth another try (an accept that met one must not
#: withdraw its offer as refused, nor a webhook go dead on its first try)
_SERVER_CODES = frozenset({"INTERNAL_SERVER_ERROR"})
_OPERATION = re.compile(r"\b(?:query|mutation)\s+(\w+)")


class AdminClient:
    """Calls ``<api_url>`` (the Admin API endpoint, e.g. ``https://host/admin-api``)."""

    def __init__(
        self,
        session: requests.Session,
        api_url: str,
        *,
        token: str | None = None,
        api_key: str | None = None,
        username: str | None = None,
        password: str | None = None,
        channel_token: str | None = None,
    ) -> None:
        if not (token or api_key or (username and password)):
            raise AuthFailed("Vendure needs an access token, an API key or a username/password")
        self.session = session
        self.api_url = api_url
        self._token = token
        self._api_key = api_key
        self._login = (username, password) if username and password else None
        self._channel_token = channel_token

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        if self._api_key:
            headers[API_KEY_HEADER] = self._api_key
        if self._channel_token:
            headers[CHANNEL_TOKEN_HEADER] = self._channel_token
        return headers

    def _post(self, document: str, variables: dict[str, Any]) -> requests.Response:
        """One POST. A 401/403 the retrying session raised for its status alone is read
        like any answer (``_data``): Vendure refuses in the body (``FORBIDDEN``), so one
        without that is a proxy's answer, not Vendure refusing our credentials."""
        try:
            response = self.session.post(
                self.api_url, json={"query": document, "variables": variables},
                headers=self._headers())
        except AuthFailed as err:
            if not isinstance(err.response, requests.Response):
                raise
            response = err.response
        if server_trouble(response.status_code):
            raise TransientError(f"Vendure Admin API: HTTP {response.status_code}")
        token = response.headers.get(AUTH_TOKEN_HEADER)
        if token:
            self._token = token
        return response

    def _authenticate(self) -> None:
        """Log in with the stored username/password; the token comes back in a header."""
        assert self._login is not None
        self._token = None
        username, password = self._login
        data = self._data(
            self._post(queries.LOGIN, {"username": username, "password": password}), "login"
        )
        login = data.get("login")
        refused = login.get("errorCode") if isinstance(login, dict) else None
        if isinstance(refused, str) and refused:  # Vendure's ErrorResult
            raise AuthFailed(f"Vendure login refused: {refused}")
        if not isinstance(login, dict) or "errorCode" in login or not login.get("id"):
            # neither the user nor Vendure's refusal: a proxy's answer, tried again later
            self._token = None
            raise TransientError("Vendure confirmed no login")
        if not self._token:
            raise AuthFailed("Vendure login returned no token (is 'bearer' a tokenMethod?)")

    @staticmethod
    def _data(response: requests.Response, operation: str) -> dict[str, Any]:
        """The ``data`` of a GraphQL response, or the matching connector error.

        Only Vendure's ``errors`` list is a refusal, whatever the status (``FORBIDDEN``
        comes with 200; a query the schema rejects with 400). A failure status without one
        (a proxy's 404 page, a WAF's 403) is no Vendure answer: ``TransientError``, as a
        body of another shape is. Read as a refusal, an accept withdrew its offer and a
        shop was flagged for re-authorisation.
        """
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            raise TransientError(f"Vendure {operation}: HTTP {status}, non-JSON answer") from None
        if not isinstance(body, dict):  # a proxy's or a broken server's answer
            raise TransientError(f"Vendure {operation}: unexpected answer")
        errors = body.get("errors") or []
        if not isinstance(errors, list):
            errors = [errors]
        errors = [e if isinstance(e, dict) else {"message": str(e)} for e in errors]
        codes = {ext.get("code") for e in errors
                 if isinstance(ext := e.get("extensions"), dict)}
        if "FORBIDDEN" in codes:  # a permission the role lacks, or an expired session
            raise PermissionDenied(f"Vendure {operation}: FORBIDDEN")
        if codes & _AUTH_CODES:
            raise AuthFailed(f"Vendure {operation}: {sorted(c for c in codes if c)}")
        if codes & _SERVER_CODES:
            raise TransientError(f"Vendure {operation}: internal server error")
        if not errors and status >= 400:
            raise TransientError(f"Vendure {operation}: HTTP {status} without GraphQL errors")
        if errors:
            messages = [str(e.get("message", e)) for e in errors]
            raise InvalidPayload(f"Vendure {operation} failed", {operation: messages})
        data = body.get("data") or {}
        if not isinstance(data, dict):  # callers read it with ``.get``: a crash, not an error
            raise TransientError(f"Vendure {operation}: unexpected answer")
        return data

    def execute(self, document: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run one query or mutation; logs in first (and once more on expiry) if needed."""
        variables = variables or {}
        named = _OPERATION.search(document)
        operation = named.group(1) if named else "query"
        if self._login and not self._token:
            self._authenticate()
        try:
            return self._data(self._post(document, variables), operation)
        except AuthFailed:
            if not self._login:
                raise
            log.info("connectors.vendure.relogin", extra={"operation": operation})
            self._authenticate()
            return self._data(self._post(document, variables), operation)
