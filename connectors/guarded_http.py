"""Calls that an unauthenticated request can trigger: app registration, JWKS fetches.

``make_guarded_session`` returns a ``RetrySession`` that

- never follows redirects (a 3xx is answered as is, so it is not a Saleor answer);
- makes few tries with short (connect, read) timeouts, and keeps a **total deadline** per
  call (and optionally per session): per-read timeouts alone let a server that drips one
  byte at a time hold the calling thread for ever, so a watchdog shuts the call's sockets
  down when the deadline passes, headers and TLS handshake included;
- reads at most ``max_body`` bytes of a response (``stream=True``, counted while reading);
- with ``public_only``, connects only to public addresses. The check runs on the connected
  socket's peer, so a DNS answer that changes between a pre-check and the connection
  cannot slip through; connections through a configured proxy are not checked (the proxy
  resolves the name);
- with ``pinned`` (host name -> addresses, e.g. from ``public_addresses``), connects to
  those addresses instead of resolving the name again: a pre-check bounded in time is not
  followed by an unbounded lookup in ``create_connection``. TLS still verifies the
  certificate for (and sends SNI with) the host name; proxied connections are not pinned.

Every failure is a ``TransientError`` (or a subclass), as for the retrying session.
"""

from __future__ import annotations

import contextlib
import contextvars
import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util import connection as urllib3_connection

from connectors.errors import TransientError
from connectors.http import CONNECTION_FAILURES, RetrySession, describe_request

__all__ = [
    "AddressRefused",
    "DeadlineExceeded",
    "GuardedSession",
    "ResolutionTimedOut",
    "ResponseTooLarge",
    "is_public_address",
    "make_guarded_session",
    "public_addresses",
    "resolves_to_public_addresses",
]

_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class DeadlineExceeded(TransientError):
    """The call did not finish within its total deadline."""


class ResponseTooLarge(TransientError):
    """The answer was larger than the session accepts."""


class AddressRefused(TransientError):
    """The host is, or resolved to, an address that is not public (``public_only``)."""


def is_public_address(address: str) -> bool:
    """True for a globally routable unicast address (IPv4 inside IPv6 forms unwrapped)."""
    try:
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(
            address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip.sixtofour is not None:
            ip = ip.sixtofour
        elif ip in _NAT64:
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.is_global and not (ip.is_private or ip.is_loopback or ip.is_link_local
                                 or ip.is_multicast or ip.is_reserved or ip.is_unspecified)


class ResolutionTimedOut(TransientError):
    """A name did not resolve within the time allowed (or too many lookups are stuck)."""


#: Name lookups in flight at once (each on its own thread, see ``_getaddrinfo``).
MAX_LOOKUPS = 8
_lookup_slots = threading.BoundedSemaphore(MAX_LOOKUPS)


def _getaddrinfo(host: str, port: int, timeout: float) -> list[Any]:
    """``socket.getaddrinfo`` with a time limit. The resolver cannot be interrupted, so the
    lookup runs on a daemon thread the caller stops waiting for: a slow DNS answer for a
    name an unauthenticated request chose ties up that thread, not a web worker, and at
    most ``MAX_LOOKUPS`` such threads exist (more lookups fail at once)."""
    started = time.monotonic()
    if not _lookup_slots.acquire(timeout=timeout):
        raise ResolutionTimedOut("too many name lookups in progress")
    done = threading.Event()
    outcome: dict[str, Any] = {}

    def lookup() -> None:
        try:
            outcome["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except BaseException as err:  # handed to the caller below
            outcome["error"] = err
        finally:
            _lookup_slots.release()
            done.set()

    threading.Thread(target=lookup, name="guarded-resolve", daemon=True).start()
    if not done.wait(max(timeout - (time.monotonic() - started), 0.0)):
        raise ResolutionTimedOut(f"{host} did not resolve within {timeout:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["infos"]


def public_addresses(host: str, port: int, *, timeout: float = 5.0) -> list[str]:
    """The addresses ``host`` resolves to (resolver order, no repeats) when it is a name
    (not an IP literal) whose every address is public; else an empty list.

    Raises ``ResolutionTimedOut`` when the name does not resolve within ``timeout``."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return []
    try:
        infos = _getaddrinfo(host, port, timeout)
    except (OSError, UnicodeError):
        return []
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    return addresses if addresses and all(is_public_address(a) for a in addresses) else []


def resolves_to_public_addresses(host: str, port: int, *, timeout: float = 5.0) -> bool:
    """True when ``host`` is a name (not an IP literal) whose every address is public.

    Raises ``ResolutionTimedOut`` when the name does not resolve within ``timeout``."""
    return bool(public_addresses(host, port, timeout=timeout))


class _Call:
    """One guarded call: its deadline, its policy and the sockets its watchdog may shut."""

    def __init__(self, deadline: float, public_only: bool,
                 pinned: Mapping[str, Sequence[str]] | None = None) -> None:
        self.deadline = deadline
        self.public_only = public_only
        self.pinned = pinned or {}
        self.expired = False
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()

    def watch(self, sock: socket.socket) -> None:
        # A duplicate descriptor: it stays valid when TLS wraps (detaches) the original,
        # shutting it down ends the connection for every descriptor, and closing it does not.
        try:
            handle = socket.fromfd(sock.fileno(), sock.family, sock.type)
        except OSError:
            return
        with self._lock:
            if not self.expired:
                self._socks.append(handle)
                return
        _shut(handle)

    def expire(self) -> None:
        with self._lock:
            self.expired = True
            socks, self._socks = self._socks, []
        for handle in socks:
            _shut(handle)

    def finish(self) -> None:
        with self._lock:
            self.expired = True
            socks, self._socks = self._socks, []
        for handle in socks:
            handle.close()


def _shut(handle: socket.socket) -> None:
    with contextlib.suppress(OSError):
        handle.shutdown(socket.SHUT_RDWR)
    handle.close()


_CALL: contextvars.ContextVar[_Call | None] = contextvars.ContextVar("guarded_call",
                                                                     default=None)


class _RefusedConnection(NewConnectionError):
    pass


class _GuardedConnectionMixin:
    """Checks the peer (``public_only``) and hands the socket to the call's watchdog."""

    def _new_conn(self) -> socket.socket:
        call = _CALL.get()
        proxied = getattr(self, "proxy", None) is not None or getattr(self, "_tunnel_host", None)
        host = str(getattr(self, "host", "")).lower()
        pinned = call.pinned.get(host) if call is not None and not proxied else None
        sock: socket.socket = (self._pinned_conn(pinned) if pinned
                               else super()._new_conn())  # type: ignore[misc]
        if call is None:
            return sock
        if call.public_only and not proxied:
            peer = str(sock.getpeername()[0])
            if not is_public_address(peer):
                sock.close()
                raise _RefusedConnection(self, "refused: not a public address")  # type: ignore[arg-type]
        call.watch(sock)
        return sock

    def _pinned_conn(self, addresses: Sequence[str]) -> socket.socket:
        """``HTTPConnection._new_conn`` to the pinned addresses, in order (no name lookup)."""
        conn: Any = self
        error: OSError | None = None
        for address in addresses:
            try:
                return urllib3_connection.create_connection(
                    (address, conn.port), conn.timeout, source_address=conn.source_address,
                    socket_options=conn.socket_options)
            except TimeoutError as err:
                raise ConnectTimeoutError(conn, f"Connection to {conn.host} timed out. "
                                                f"(connect timeout={conn.timeout})") from err
            except OSError as err:
                error = err
        raise NewConnectionError(conn, f"Failed to establish a new connection: {error}")


class _GuardedHTTPConnection(_GuardedConnectionMixin, HTTPConnection):
    pass


class _GuardedHTTPSConnection(_GuardedConnectionMixin, HTTPSConnection):
    pass


class _WatchedPoolMixin:
    def _get_conn(self, timeout: float | None = None) -> Any:
        conn = super()._get_conn(timeout)  # type: ignore[misc]
        call = _CALL.get()
        if call is not None and getattr(conn, "sock", None) is not None:
            call.watch(conn.sock)  # a kept-alive connection joins this call's watchdog
        return conn


class _GuardedHTTPPool(_WatchedPoolMixin, HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSPool(_WatchedPoolMixin, HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


_POOLS = {"http": _GuardedHTTPPool, "https": _GuardedHTTPSPool}


class _GuardedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(_POOLS)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = dict(_POOLS)
        return manager


def _refused(exc: requests.ConnectionError) -> bool:
    reason = exc.args[0] if exc.args else None
    return isinstance(getattr(reason, "reason", reason), _RefusedConnection)


class GuardedSession(RetrySession):
    """A ``RetrySession`` bounded in time, size and destination (see the module docstring)."""

    def __init__(
        self,
        *,
        deadline: float,
        max_body: int,
        public_only: bool = False,
        budget: float | None = None,
        pinned: Mapping[str, Sequence[str]] | None = None,
        clock: Callable[[], float] = time.monotonic,
        **retry: Any,
    ) -> None:
        super().__init__(**retry)
        self.deadline = deadline
        self.max_body = max_body
        self.public_only = public_only
        self.pinned = {h.lower(): tuple(a) for h, a in (pinned or {}).items() if a}
        self.clock = clock
        self.expires_at = None if budget is None else clock() + budget
        adapter = _GuardedAdapter()
        self.mount("https://", adapter)
        self.mount("http://", adapter)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        """One call: no redirects, a deadline (watchdog), a capped body read up front."""
        deadline = self.clock() + self.deadline
        if self.expires_at is not None:
            deadline = min(deadline, self.expires_at)
        call = _Call(deadline, self.public_only, self.pinned)
        seconds = deadline - self.clock()
        if seconds <= 0:
            raise DeadlineExceeded(f"{describe_request(request)}: no time left")
        kwargs["allow_redirects"] = False
        kwargs["stream"] = True
        token = _CALL.set(call)
        watchdog = threading.Timer(seconds, call.expire)
        watchdog.daemon = True
        watchdog.start()
        try:
            return super().send(request, **kwargs)
        except TransientError as exc:
            if call.expired and not isinstance(exc, DeadlineExceeded):
                raise DeadlineExceeded(f"{describe_request(request)}: no answer within "
                                       f"{self.deadline:g} s") from None
            raise
        finally:
            watchdog.cancel()
            _CALL.reset(token)
            call.finish()

    def _attempt(
        self, request: requests.PreparedRequest, kwargs: dict[str, Any]
    ) -> requests.Response:
        call = _CALL.get()
        assert call is not None  # set by send
        left = call.deadline - self.clock()
        if left <= 0 or call.expired:
            raise DeadlineExceeded(f"{describe_request(request)}: deadline passed")
        timeout = kwargs.get("timeout") or self.timeout
        connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        kwargs = {**kwargs, "timeout": (min(connect, left), min(read, left))}
        try:
            response = super()._attempt(request, kwargs)
        except requests.ConnectionError as exc:
            if _refused(exc):
                raise AddressRefused(f"{describe_request(request)}: not a public "
                                     "address") from None
            raise
        self._read_body(response, describe_request(request))
        if call.expired:  # a socket shut mid-answer can look like a short, complete one
            raise DeadlineExceeded(f"{describe_request(request)}: deadline passed")
        return response

    def _read_body(self, response: requests.Response, target: str) -> None:
        """Read the whole body now, at most ``max_body`` bytes; the watchdog bounds the time."""
        declared = response.headers.get("Content-Length", "")
        try:
            if declared.isdigit() and int(declared) > self.max_body:
                raise ResponseTooLarge(f"{target}: body over {self.max_body} bytes")
            body = bytearray()
            for chunk in response.iter_content(64 * 1024):
                body += chunk
                if len(body) > self.max_body:
                    raise ResponseTooLarge(f"{target}: body over {self.max_body} bytes")
        except CONNECTION_FAILURES:
            raise  # broken off mid-answer (reset, read timeout): ``send`` tries again
        except requests.RequestException as exc:
            raise TransientError(f"{target}: {type(exc).__name__} while reading") from None
        finally:
            response.close()
        response._content = bytes(body)  # what ``Response.content`` would have stored
        response._content_consumed = True

    def _wait(self, delay: float, kwargs: dict[str, Any]) -> None:
        call = _CALL.get()
        if call is not None and (call.expired or self.clock() + delay >= call.deadline):
            raise DeadlineExceeded("no time left for another try")
        super()._wait(delay, kwargs)


def make_guarded_session(
    *,
    retries: int = 1,
    backoff: float = 0.5,
    timeout: tuple[float, float] = (3.0, 10.0),
    deadline: float = 15.0,
    budget: float | None = None,
    max_body: int = 1_000_000,
    public_only: bool = False,
    pinned: Mapping[str, Sequence[str]] | None = None,
    sleep: Callable[[float], Any] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> GuardedSession:
    """A guarded session; ``budget`` (seconds from now) also bounds all its calls together;
    ``pinned`` maps host names to the addresses to connect to instead of resolving them."""
    session = GuardedSession(
        deadline=deadline, max_body=max_body, public_only=public_only, budget=budget,
        pinned=pinned, clock=clock, retries=retries, backoff=backoff, max_backoff=deadline,
        timeout=timeout, sleep=sleep,
    )
    session.headers["User-Agent"] = "shopkeeper-connectors/0.1"
    return session
