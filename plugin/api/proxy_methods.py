"""Method override behind Shopify's app proxy: ``POST ...?_method=PATCH`` is a PATCH.

Shopify documents that its app proxy forwards "the request method and request body"
(https://shopify.dev/docs/apps/build/online-store/app-proxies/authenticate-app-proxies)
but shows only GET and form/AJAX POSTs, and names no other method. So the widgets send the
sub-profile PATCH and DELETE (and any PUT) through the proxy as a POST naming the method in
the query, which Shopify signs with the rest of it. Only under ``PROXY_URL``, only on a
POST, only to PUT, PATCH or DELETE: the direct ``/api/v1`` is untouched.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from plugin.api.shopify_proxy import PROXY_URL

#: what a POST through the proxy may stand for
OVERRIDABLE = frozenset({"PUT", "PATCH", "DELETE"})


def overridden_method(environ: dict[str, Any]) -> str | None:
    """The method a proxied POST names in ``_method``, when it may name one."""
    if environ.get("REQUEST_METHOD") != "POST":
        return None
    if not str(environ.get("PATH_INFO", "")).startswith(PROXY_URL + "/"):
        return None
    named = [v for k, v in parse_qsl(str(environ.get("QUERY_STRING", "")),
                                     keep_blank_values=True) if k == "_method"]
    if len(named) != 1 or named[0].upper() not in OVERRIDABLE:
        return None
    return named[0].upper()


def method_override(wsgi_app: Any) -> Any:
    """WSGI middleware: the overridden method is set before Flask routes the request."""

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        method = overridden_method(environ)
        if method:
            environ["REQUEST_METHOD"] = method
        return wsgi_app(environ, start_response)

    return app
