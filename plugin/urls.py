"""Which hosts and web URLs a setting may hold: one rule for the settings page's schema
(``plugin.admin.schemas``) and for serving (``plugin.offers.settings``), which reads the
settings as stored, so neither takes what the other refuses. And which hosts we may
connect to (``public_addresses``): a URL a merchant or a caller chose must not reach our
own network (loopback, private ranges, the cloud metadata service at 169.254.169.254).
No Flask; only ``public_addresses`` resolves names."""

from __future__ import annotations

import ipaddress
import re
import socket
from urllib.parse import urlsplit

from connectors.guarded_http import is_public_address
from connectors.guarded_http import public_addresses as _public_name_addresses

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


def url_host(value: str) -> tuple[str, int]:
    """The host (as ``host_ascii`` gives it) and port of a URL ``web_url_problem`` passes."""
    parts = urlsplit(value)
    match = _AUTHORITY.fullmatch(parts.netloc)
    host = host_ascii(match["host"]) if match else None
    if match is None or host is None:
        raise ValueError(f"{value!r} has no valid host")
    default = 443 if parts.scheme.lower() == "https" else 80
    return host, int(match["port"]) if match["port"] else default


def literal_address(host: str) -> str | None:
    """The IP address ``host`` spells, in any form a resolver reads as one (``[::1]``,
    ``127.1``, ``0x7f.0.0.1``, ``2130706433``), else None (a name)."""
    bare = host[1:-1] if host.startswith("[") else host
    try:
        return ipaddress.ip_address(bare).compressed
    except ValueError:
        pass
    try:
        return socket.inet_ntoa(socket.inet_aton(bare))
    except (OSError, ValueError):
        return None


def address_problem(value: str) -> str | None:
    """Why we may not post to the web URL ``value`` (one ``web_url_problem`` passes) for its
    host alone: an address that is not public. A name is checked when it is resolved, at
    each send (``public_addresses``): what it resolves to can change after a save."""
    address = literal_address(url_host(value)[0])
    if address is not None and not is_public_address(address):
        return f"{value!r} names a loopback, private, link-local or reserved address; " \
            "only public hosts are reached"
    return None


def public_addresses(host: str, port: int, *, timeout: float,
                     literals: bool = False) -> list[str]:
    """The addresses to connect to for ``host`` when all of them are public, else none.

    A name is resolved now, within ``timeout`` seconds (else ``ResolutionTimedOut``), and
    every address it has must be public; the caller connects to these (pinned, see
    ``connectors.guarded_http``), not to a later DNS answer that could name our own network.
    An IP literal is refused, unless ``literals``: then it is its own address, if public."""
    address = literal_address(host)
    if address is not None:
        return [address] if literals and is_public_address(address) else []
    return _public_name_addresses(host, port, timeout=timeout)
