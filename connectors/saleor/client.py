"""Saleor GraphQL over the retrying session: relay cursor pages and voucher creation."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import requests

from connectors.errors import (
    AuthFailed,
    ConnectorError,
    InvalidPayload,
    PermissionDenied,
    TransientError,
)
from connectors.http import server_trouble
from connectors.pages import convert_nodes
from connectors.parsing import as_object
from connectors.records import Page

__all__ = ["PAGE_SIZE", "SaleorGraphQL", "SchemaLacksField", "confirmed_id", "refused"]

PAGE_SIZE = 100  # Saleor's GRAPHQL_PAGINATION_LIMIT
T = TypeVar("T")
#: Saleor's ``PermissionDenied`` message naming the permissions a field needs
_NEEDED = re.compile(r"following permissions: ([A-Z_]+)")
#: graphql-core's validation message (double quotes in Saleor's graphql-core-legacy)
_UNKNOWN_FIELD = re.compile(r"""Cannot query field ["'](\w+)["'] on type ["'](\w+)["']""")


class SchemaLacksField(ConnectorError):
    """The instance's schema has no such field: an older Saleor. ``fields``: (type, field)."""

    def __init__(self, fields: set[tuple[str, str]]) -> None:
        names = ", ".join(sorted(f"{kind}.{name}" for kind, name in fields))
        super().__init__(f"Saleor's schema lacks {names}")
        self.fields = fields


def error_codes(errors: Any) -> set[str | None]:
    """The ``extensions.exception.code`` of each entry of a GraphQL ``errors`` list, None
    for one without (an entry, its extensions or its code of another shape raised
    AttributeError or TypeError, a crash instead of a connector error)."""
    entries = errors if isinstance(errors, list) else [errors]
    return {code if isinstance(
                code := as_object(as_object(as_object(e).get("extensions")).get("exception"))
                .get("code"), str) else None
            for e in entries}


def _required_permission(errors: Any) -> str | None:
    """The first permission a ``PermissionDenied`` entry names ("To access this path, you
    need one of the following permissions: MANAGE_DISCOUNTS")."""
    for entry in errors if isinstance(errors, list) else [errors]:
        found = _NEEDED.search(str(as_object(entry).get("message") or ""))
        if found:
            return found.group(1)
    return None


class SaleorGraphQL:
    """One Saleor instance's API, authenticated with the app token."""

    def __init__(self, session: requests.Session, api_url: str, token: str) -> None:
        self.session = session
        self.url = api_url
        self._token = token

    def execute(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """POST a query; map HTTP, permission and GraphQL errors onto the error tree."""
        response = self.session.post(
            self.url,
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {self._token}"},
        )
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        if server_trouble(status):
            raise TransientError(f"Saleor GraphQL HTTP {status}")
        # A query the schema rejects (e.g. a field this Saleor version lacks) is a 400 whose
        # body still lists the errors: read them. Any other failure status is just that.
        if status >= 400 and not (status == 400 and isinstance(body, dict)
                                  and body.get("errors")):
            raise ConnectorError(f"Saleor GraphQL HTTP {status}")
        if body is None:
            raise TransientError("Saleor answered with a non-JSON body")
        if not isinstance(body, dict):
            raise TransientError("Saleor answered with an unexpected body")
        errors = body.get("errors") or []
        if errors:
            missing = {
                (found.group(2), found.group(1))
                for e in errors if isinstance(e, dict)
                if (found := _UNKNOWN_FIELD.search(str(e.get("message") or "")))
            }
            if missing:
                raise SchemaLacksField(missing)
            codes = error_codes(errors)
            if codes & {"InvalidTokenError", "ExpiredSignatureError"}:
                raise AuthFailed("Saleor refused the app token")
            if "PermissionDenied" in codes:  # a missing permission, or a token Saleor lost
                raise PermissionDenied("Saleor refused the app token or its permissions",
                                       permission=_required_permission(errors))
            raise ConnectorError(f"Saleor GraphQL errors: {sorted(map(str, codes))}")
        data = body.get("data") or {}
        if not isinstance(data, dict):
            raise TransientError("Saleor answered with an unexpected body")
        return data

    def pages(
        self,
        query: str,
        root: str,
        convert: Callable[[dict[str, Any]], T],
        *,
        cursor: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Iterator[Page[T]]:
        """Yield ``first: 100`` relay pages of ``data[root]`` resuming after ``cursor``."""
        while True:
            data = self.execute(query, {"first": PAGE_SIZE, "after": cursor, **(extra or {})})
            try:
                connection = data[root]
                info = connection["pageInfo"]
                edges = connection["edges"]
                cursor = info.get("endCursor") if info.get("hasNextPage") else None
            except (KeyError, TypeError, AttributeError) as exc:
                raise InvalidPayload(f"unexpected {root} page", {root: [repr(exc)]}) from None
            items, rejected = convert_nodes(edges, lambda edge: convert(edge["node"]), what=root)
            yield Page(items=items, next_cursor=cursor, rejected=rejected)
            if cursor is None:
                return

    def mutate(self, query: str, variables: dict[str, Any], root: str, *,
               confirms: str | None = None) -> dict[str, Any]:
        """Run a mutation; its ``errors`` list becomes ``InvalidPayload`` with field errors.

        Only that list is Saleor's refusal. A null, missing or non-object answer says
        neither that Saleor did it nor that it refused (a proxy's, a gateway's):
        ``TransientError``, so the caller tries again later, as ``create_discount`` does
        with such a ``voucherCreate`` answer. Read as success, a webhook counted as made
        was not, and a voucher was forgotten undeleted; read as a refusal, an install was
        told Saleor refused our webhooks.

        ``confirms``: the field naming the object done (``webhook``, ``voucher``), which
        Saleor's answer to a success carries with its id (a deleted object's too). Without
        it there is no confirmation either: ``TransientError``.
        """
        result = self.execute(query, variables).get(root)
        if result is None:
            raise TransientError(f"Saleor returned no {root} answer")
        if not isinstance(result, dict):
            raise TransientError(f"unexpected {root} answer: not an object")
        errors = result.get("errors") or []
        if errors:
            raise refused(root, errors)
        if confirms is not None and not confirmed_id(result.get(confirms)):
            raise TransientError(f"Saleor confirmed no {confirms} in its {root} answer")
        return result


def confirmed_id(value: Any) -> str:
    """The id of the object a mutation answer names, "" when it names none readable."""
    found = as_object(value).get("id")
    return found if isinstance(found, str) else ""


def refused(root: str, errors: Any) -> InvalidPayload:
    """A mutation's ``errors`` list as ``InvalidPayload`` with field errors (an entry that
    is no object counts as its message)."""
    fields: dict[str, list[str]] = {}
    for err in errors if isinstance(errors, list) else [errors]:
        entry = err if isinstance(err, dict) else {"message": str(err)}
        fields.setdefault(str(entry.get("field") or "_"), []).append(
            str(entry.get("message") or ""))
    return InvalidPayload(f"Saleor refused {root}", fields)
