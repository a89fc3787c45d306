"""Which hosts and web URLs a setting may hold: one rule for the settings page's schema
(``plugin.admin.schemas``) and for serving (``plugin.offers.settings``), which reads the
settings as stored, so neither takes what the other refuses. Pure (no Flask)."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

#: A host name once in ASCII (IDNA): letters, digits and inner hyphens per label.
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
#: A URL's authority as allowed: a host (a name, an IPv4 address or a bracketed IPv6 one)
#: and an optional port; no user name or password (a secret in the settings, and in logs).
_AUTHORITY = re.compile(r"(?P<host>\[[0-9A-Fa-f:.]+\]|[^\[\]/:@?#\s]+)(?::(?P<port>\d{1,5}))?")
#: The longest URL a setting holds.
URL_LIMIT = 2048


def host_ascii(host: str) -> str | None:
    """The host in ASCII, lower case, or None when it is not a host name or address."""
    if host.startswith("["):
        try:
            return f"[{ipaddress.IPv6Address(host[1:-1]).compressed}]"
        except ValueError:
            return None
    try:
        ascii_host = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return None
    labels = ascii_host.removesuffix(".").split(".")
    if len(ascii_host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        return None
    return ascii_host


def web_url_problem(value: object) -> str | None:
    """Why ``value`` is no http(s) URL a setting may hold (None: it is one): a link sent to
    shoppers or an address we post to must name a real host, with nothing hidden in it."""
    if not isinstance(value, str):
        return f"{value!r} is not a URL"
    if len(value) > URL_LIMIT:
        return f"longer than {URL_LIMIT} characters"
    if any(c.isspace() or not c.isprintable() for c in value):
        return f"{value!r} has spaces or control characters"
    try:
        parts = urlsplit(value)
    except ValueError:
        parts = None
    if parts is None or parts.scheme.lower() not in ("http", "https"):
        return f"{value!r} is not an http(s) URL like https://shop.example/cart"
    match = _AUTHORITY.fullmatch(parts.netloc)
    port = int(match["port"]) if match and match["port"] else None
    if match is None or host_ascii(match["host"]) is None or port == 0 \
            or (port or 0) > 65535:
        return f"{value!r} has no valid host (a name or address, an optional port, no " \
            "user name or password)"
    return None
