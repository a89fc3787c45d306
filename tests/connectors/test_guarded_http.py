"""The guarded session: no redirects, few tries, a total deadline, a body cap, public peers.

The deadline tests talk to a real local server (plain and TLS) because the point is what
sockets do when a server drips bytes: ``responses`` replaces the transport altogether.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import pytest
import requests
import responses
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from responses.registries import OrderedRegistry

from connectors.errors import AuthFailed, TransientError
from connectors.guarded_http import (
    AddressRefused,
    DeadlineExceeded,
    ResponseTooLarge,
    is_public_address,
    make_guarded_session,
    resolves_to_public_addresses,
)

URL = "https://saleor.example.test/graphql/"


# ------------------------------------------------------------------ a real, hostile server
Handler = Callable[[socket.socket, threading.Event], None]


def _tls_context(tmp_path) -> tuple[ssl.SSLContext, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    crt, pem = tmp_path / "cert.pem", tmp_path / "key.pem"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(crt), str(pem))
    return ctx, str(crt)


class Server:
    """Accepts connections on 127.0.0.1 and lets ``handler`` answer each request."""

    def __init__(self, handler: Handler, tls: ssl.SSLContext | None = None) -> None:
        self.handler, self.tls = handler, tls
        self.requests = 0
        self.answered = 0  # handlers that ran to their own end (the client still listening)
        self.stop = threading.Event()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._loop, daemon=True).start()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}/graphql/"

    def _loop(self) -> None:
        while not self.stop.is_set():
            try:
                raw, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._one, args=(raw,), daemon=True).start()

    def _one(self, raw: socket.socket) -> None:
        try:
            conn = self.tls.wrap_socket(raw, server_side=True) if self.tls else raw
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            self.requests += 1
            self.handler(conn, self.stop)
            self.answered += 1
            conn.close()
        except OSError:
            pass

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


@pytest.fixture
def serve() -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def start(handler: Handler, tls: ssl.SSLContext | None = None) -> Server:
        servers.append(Server(handler, tls))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


DRIPS = 100  # 0.2 s apart: a drip lasts 20 s at least, then stops (a cut-off that fails
# to cut fails the test instead of hanging it)


def drip_headers(conn: socket.socket, stop: threading.Event) -> None:
    """Never finishes its headers: one byte every 0.2 s (each read is 'on time')."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
    for _ in range(DRIPS):
        if stop.wait(0.2):
            return
        conn.sendall(b"a")


def drip_body(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 100000\r\n\r\n")
    for _ in range(DRIPS):
        if stop.wait(0.2):
            return
        conn.sendall(b" ")


def unavailable(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                 b"Connection: close\r\n\r\n")


def ok(conn: socket.socket, stop: threading.Event) -> None:
    body = b'{"ok": true}'
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))


def huge_chunked(conn: socket.socket, stop: threading.Event) -> None:
    """A chunked body with no length announced, far larger than the cap (64 MiB: more than
    the sockets' buffers hold, so a client that stops reading breaks it off)."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"x" * 65536
    for _ in range(1024):
        if stop.is_set():
            return
        conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    conn.sendall(b"0\r\n\r\n")


# ------------------------------------------------------------------ the deadline
@pytest.fixture
def watchdogs(monkeypatch) -> list[list]:
    """``[seconds, fired]`` of each deadline timer a guarded call arms. The cut-off is
    asserted by its mechanism (a timer for the deadline fired, the server was still
    dripping) rather than by a stopwatch, which a loaded CI machine overruns."""
    real_timer, armed = threading.Timer, []

    def timer(seconds: float, expire: Callable[[], None]) -> threading.Timer:
        entry = [seconds, False]
        armed.append(entry)

        def fire() -> None:
            entry[1] = True
            expire()

        return real_timer(seconds, fire)

    monkeypatch.setattr(threading, "Timer", timer)
    return armed


def _cut_off_by_the_deadline(server: Server, watchdogs: list[list], started: float) -> None:
    # each byte arrives well within the 1 s read timeout: only the deadline ends the call
    assert time.monotonic() - started >= 1.4  # not before it (a timer never fires early)
    assert len(watchdogs) == 1 and 0 < watchdogs[0][0] <= 1.5 and watchdogs[0][1]
    assert server.requests == 1 and server.answered == 0  # the server was still dripping


@pytest.mark.parametrize("handler", [drip_headers, drip_body], ids=["headers", "body"])
def test_a_dripping_server_is_cut_off_at_the_deadline(serve, handler, watchdogs) -> None:
    server = serve(handler)
    session = make_guarded_session(deadline=1.5, timeout=(1.0, 1.0), sleep=lambda s: None)
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        session.post(server.url, json={})
    _cut_off_by_the_deadline(server, watchdogs, started)


def test_the_deadline_also_holds_over_tls(serve, tmp_path, monkeypatch, watchdogs) -> None:
    ctx, ca = _tls_context(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", ca)
    server = serve(drip_body, ctx)
    session = make_guarded_session(deadline=1.5, timeout=(1.0, 1.0))
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        session.get(server.url)
    _cut_off_by_the_deadline(server, watchdogs, started)


def test_one_retry_only_and_no_sleeping_past_the_deadline(serve) -> None:
    server = serve(unavailable)
    waits: list[float] = []
    session = make_guarded_session(retries=1, backoff=0.1, deadline=5, sleep=waits.append)
    with pytest.raises(TransientError):
        session.post(server.url, json={})
    assert server.requests == 2 and waits == [0.1]
    # a back-off that would end after the deadline is not slept at all
    session = make_guarded_session(retries=1, backoff=10, deadline=2, sleep=waits.append)
    with pytest.raises(DeadlineExceeded):
        session.post(server.url, json={})
    assert waits == [0.1]


def test_a_session_budget_bounds_all_its_calls_together() -> None:
    now = [100.0]
    session = make_guarded_session(deadline=15, budget=15, clock=lambda: now[0])
    with responses.RequestsMock() as rsps:
        rsps.get(URL, json={})
        session.get(URL)
        now[0] += 16
        with pytest.raises(DeadlineExceeded):
            session.get(URL)
        assert len(rsps.calls) == 1


def test_timeouts_are_clamped_to_the_time_left() -> None:
    now = [0.0]
    session = make_guarded_session(timeout=(3.0, 10.0), deadline=15, budget=15,
                                   clock=lambda: now[0])
    with responses.RequestsMock() as rsps:
        rsps.get(URL, json={})
        session.get(URL)
        now[0] = 9.0
        session.get(URL)
        sent = [c.request.req_kwargs for c in rsps.calls]
    assert sent[0]["timeout"] == (3.0, 10.0) and sent[1]["timeout"] == (3.0, 6.0)
    assert all(k["stream"] is True for k in sent)  # the body is read under the cap


def test_an_answer_broken_off_mid_body_is_tried_again(serve) -> None:
    """A Saleor sync page cut by a reset was never retried (the body is read under the cap,
    after the retry loop had let the answer through), whatever the session's tries."""
    answered: list[int] = []

    def cut_once(conn: socket.socket, stop: threading.Event) -> None:
        answered.append(1)
        if len(answered) > 1:
            return ok(conn, stop)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b'Content-Length: 1000\r\n\r\n{"data": {"prod')

    server = serve(cut_once)
    waits: list[float] = []
    session = make_guarded_session(retries=2, backoff=0.1, deadline=5, sleep=waits.append)
    assert session.get(server.url).json() == {"ok": True}
    assert server.requests == 2 and waits == [0.1]


def test_a_body_broken_off_on_every_try_is_transient(serve) -> None:
    def always_cut(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{")

    server = serve(always_cut)
    session = make_guarded_session(retries=2, backoff=0.1, deadline=5, sleep=lambda s: None)
    with pytest.raises(TransientError) as caught:
        session.get(server.url)
    assert server.requests == 3 and not isinstance(caught.value, DeadlineExceeded)


def test_a_healthy_server_still_answers(serve) -> None:
    server = serve(ok)
    assert make_guarded_session().get(server.url).json() == {"ok": True}


# ------------------------------------------------------------------ redirects and size
def test_redirects_are_not_followed() -> None:
    session = make_guarded_session()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.post(URL, status=307, headers={"Location": "http://169.254.169.254/latest/"})
        rsps.post("http://169.254.169.254/latest/", body="ami-id")
        response = session.post(URL, json={})
        assert [c.request.url for c in rsps.calls] == [URL]
    assert response.status_code == 307


@responses.activate(registry=OrderedRegistry)
def test_body_over_the_cap_is_refused() -> None:
    session = make_guarded_session(max_body=1000)
    responses.get(URL, body=b"x" * 1001)
    responses.get(URL, body=b"x" * 1000)
    with pytest.raises(ResponseTooLarge) as refused:
        session.get(URL + "?token=s3cr3t")
    assert "s3cr3t" not in str(refused.value)  # a query may be a credential: never shown
    assert len(session.get(URL).content) == 1000


def test_an_unannounced_body_is_counted_while_reading(serve) -> None:
    server = serve(huge_chunked)  # chunked: no Content-Length to refuse up front
    with pytest.raises(ResponseTooLarge):
        make_guarded_session(max_body=100_000).get(server.url)
    assert server.requests == 1 and server.answered == 0  # hung up on, not read to the end


def test_auth_failures_keep_their_meaning() -> None:
    with responses.RequestsMock() as rsps:
        rsps.post(URL, status=401)
        with pytest.raises(AuthFailed):
            make_guarded_session().post(URL, json={})


# ------------------------------------------------------------------ public addresses
@pytest.mark.parametrize("address", [
    "10.0.0.5", "172.16.3.4", "192.168.1.1", "127.0.0.1", "169.254.169.254", "0.0.0.0",
    "100.64.0.1", "224.0.0.251", "239.1.2.3", "240.0.0.1", "255.255.255.255", "::1", "::",
    "fe80::1%eth0", "fc00::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
    "64:ff9b::a9fe:a9fe", "2002:7f00:1::", "not-an-ip",
])
def test_non_public_addresses(address: str) -> None:
    assert not is_public_address(address)


@pytest.mark.parametrize("address", ["93.184.215.14", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses(address: str) -> None:
    assert is_public_address(address)


def _fake_dns(monkeypatch, *addresses: str) -> None:
    def getaddrinfo(host, port, *args, **kwargs):
        if not addresses:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                 (a, port)) for a in addresses]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_names_must_resolve_to_public_addresses_only(monkeypatch) -> None:
    _fake_dns(monkeypatch, "93.184.215.14")
    assert resolves_to_public_addresses("saleor.example", 443)
    _fake_dns(monkeypatch, "93.184.215.14", "10.1.2.3")  # one private answer is enough
    assert not resolves_to_public_addresses("saleor.example", 443)
    _fake_dns(monkeypatch)
    assert not resolves_to_public_addresses("nowhere.example", 443)
    assert not resolves_to_public_addresses("93.184.215.14", 443)  # IP literals: never


def test_public_only_checks_the_connected_peer(serve) -> None:
    """What counts is where the socket went, so a DNS answer that changes cannot slip by."""
    server = serve(ok)
    with pytest.raises(AddressRefused):
        make_guarded_session(public_only=True).get(server.url)
    assert server.requests == 0
    assert make_guarded_session(public_only=False).get(server.url).json() == {"ok": True}


def test_a_public_only_saleor_install_never_syncs_from_an_inward_address(serve) -> None:
    """Registered while its name was public; later its DNS points at a loopback server."""
    from connectors.base import Credentials
    from connectors.saleor import SaleorConnector

    server = serve(ok)
    creds = Credentials(shop_domain="localhost", access_token="t",
                        api_url=server.url, extra={"public_only": True})
    with pytest.raises(AddressRefused):
        next(iter(SaleorConnector(creds).iter_products()))
    with pytest.raises(AddressRefused):
        SaleorConnector(creds).jwks_session().get(server.url)
    assert server.requests == 0
    # stored before the flag was kept: public-only too (plugin.shops lifts it for a host
    # the operator lists in SALEOR_ALLOWED_DOMAINS)
    legacy = Credentials(shop_domain="localhost", access_token="t", api_url=server.url)
    with pytest.raises(AddressRefused):
        SaleorConnector(legacy).jwks_session().get(server.url)
    assert server.requests == 0
    listed = Credentials(shop_domain="localhost", access_token="t", api_url=server.url,
                         extra={"public_only": False})
    assert SaleorConnector(listed).jwks_session().get(server.url).json() == {"ok": True}
    assert server.requests == 1


def test_a_saleor_install_stored_before_public_only_is_held_to_public_addresses(
        app, serve) -> None:
    """Installs registered before ``public_only`` was stored have no flag: they read as
    public-only (as a new install without an allow-list is), unless the operator lists
    their host in SALEOR_ALLOWED_DOMAINS, which lets a new install reach private ones."""
    from plugin import shops
    from plugin.extensions import db
    from tests.factories import make_shop

    server = serve(ok)
    shop = make_shop("saleor", "127.0.0.1")
    creds = shops.credentials_for(shop)
    creds.api_url, creds.access_token = server.url, "app-token"
    assert "public_only" not in creds.extra
    shops.save_credentials(shop, creds)
    db.session.commit()
    app.config["SALEOR_ALLOWED_DOMAINS"] = ""
    connector = shops.connector_for(shop)
    assert connector.public_only
    with pytest.raises(AddressRefused):
        connector.jwks_session().get(server.url)
    with pytest.raises(AddressRefused):
        connector.session.get(server.url)
    assert server.requests == 0
    app.config["SALEOR_ALLOWED_DOMAINS"] = "other.example, 127.0.0.1"
    assert shops.connector_for(shop).jwks_session().get(server.url).json() == {"ok": True}
    assert server.requests == 1


def test_the_shared_retrying_session_is_unchanged() -> None:
    """Long syncs keep their session: 5 tries, (5, 30) s, redirects followed, no cap."""
    from connectors.http import make_session

    session = make_session(sleep=lambda s: None)
    with responses.RequestsMock() as rsps:
        rsps.get(URL, status=302, headers={"Location": URL + "next"})
        rsps.get(URL + "next", body=b"x" * 2_000_000)
        assert len(session.get(URL).content) == 2_000_000
        assert rsps.calls[0].request.req_kwargs["timeout"] == (5.0, 30.0)
    assert isinstance(session, requests.Session) and session.retries == 5


def test_a_slow_lookup_times_out_and_lookups_in_flight_are_bounded(monkeypatch) -> None:
    from connectors import guarded_http

    answer, answered = threading.Event(), []

    def slow_getaddrinfo(host, port, *args, **kwargs):
        answer.wait(30)  # until the test lets it answer (30 s: unbounded code fails, not hangs)
        answered.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port))]

    monkeypatch.setattr(socket, "getaddrinfo", slow_getaddrinfo)
    monkeypatch.setattr(guarded_http, "_lookup_slots", threading.BoundedSemaphore(1))
    try:
        with pytest.raises(guarded_http.ResolutionTimedOut, match=r"within 0\.2 s"):
            resolves_to_public_addresses("slow.example", 443, timeout=0.2)
        # the first lookup still holds the only slot: the next one fails without a thread
        with pytest.raises(guarded_http.ResolutionTimedOut, match="in progress"):
            resolves_to_public_addresses("slow.example", 443, timeout=0.2)
        # both gave up while the resolver had not answered: no stopwatch, which a loaded
        # CI machine overruns
        assert answered == []
    finally:
        answer.set()
    # the first lookup returns and frees its slot (waited for, up to the timeout)
    assert resolves_to_public_addresses("slow.example", 443, timeout=10)


def test_a_pinned_host_is_connected_to_without_resolving_its_name(serve, monkeypatch) -> None:
    """The addresses a bounded pre-check found are used: no second, unbounded lookup."""
    server = serve(ok)
    port = urlsplit(server.url).port
    real = socket.getaddrinfo
    looked_up: list[str] = []

    def getaddrinfo(host, *args, **kwargs):
        looked_up.append(host)
        if host == "saleor.example":  # the name no longer answers (or answers slowly)
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    url = f"http://saleor.example:{port}/graphql/"
    pinned = make_guarded_session(pinned={"Saleor.Example": ["192.0.2.1", "127.0.0.1"]},
                                  timeout=(0.5, 5.0))
    assert pinned.get(url).json() == {"ok": True}  # the second address, after the first
    assert "saleor.example" not in looked_up and server.requests == 1
    # a public-only session still checks where the pinned connection went
    with pytest.raises(AddressRefused):
        make_guarded_session(public_only=True, pinned={"saleor.example": ["127.0.0.1"]}
                             ).get(url)
    assert "saleor.example" not in looked_up and server.requests == 1


def test_a_pinned_https_connection_still_verifies_the_host_name(serve, tmp_path,
                                                                monkeypatch) -> None:
    """Pinning changes where the socket goes, not whom TLS must prove it is: a certificate
    valid for the pinned address but not for the name is refused."""
    ctx, ca = _tls_context(tmp_path)  # a certificate for 127.0.0.1 only
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", ca)
    server = serve(ok, ctx)
    port = urlsplit(server.url).port
    session = make_guarded_session(pinned={"saleor.example": ["127.0.0.1"]}, retries=0)
    with pytest.raises(TransientError):
        session.get(f"https://saleor.example:{port}/graphql/")
    assert session.get(server.url).json() == {"ok": True}  # the same CA, the right name


def test_refusals_and_deadlines_keep_the_query_out(serve) -> None:
    """A query may be a credential (a pre-signed URL): these errors reach logs and a
    sync's ``last_error`` in the admin."""
    server = serve(ok)
    signed = server.url + "?Signature=s3cr3tSig"
    with pytest.raises(AddressRefused) as refused:
        make_guarded_session(public_only=True).get(signed)
    now = [100.0]
    spent = make_guarded_session(deadline=15, budget=15, clock=lambda: now[0])
    now[0] += 16
    with pytest.raises(DeadlineExceeded) as late:
        spent.get(signed)
    for failed in (refused, late):
        assert "s3cr3tSig" not in str(failed.value)
        assert f"GET {server.url}?…" in str(failed.value)  # still says which request
