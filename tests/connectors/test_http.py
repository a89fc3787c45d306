"""The retrying session: back-off, Retry-After, throttle hints and error translation."""

from __future__ import annotations

import socket
import threading
from datetime import UTC, datetime

import pytest
import requests
import responses
from responses.registries import OrderedRegistry

from connectors.errors import AuthFailed, RateLimited, TransientError
from connectors.http import make_session, parse_retry_after

URL = "https://api.example.test/graphql"


@pytest.fixture
def delays() -> list[float]:
    return []


@pytest.fixture
def session(delays: list[float]) -> requests.Session:
    return make_session(retries=3, backoff=0.5, max_backoff=30, sleep=delays.append)


def test_parse_retry_after_seconds_and_http_date() -> None:
    now = datetime(2015, 10, 21, 7, 27, 50, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=now) == 10.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:20:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None
    # floats that are no number of seconds: "inf" was an endless wait handed to the caller
    # (the inbox's back-off overflowed on it), "nan" no wait at all
    for value in ("inf", "-Infinity", "nan", "1e400"):
        assert parse_retry_after(value) is None
    assert parse_retry_after(None) is None


@responses.activate(registry=OrderedRegistry)
def test_429_then_200_waits_retry_after(session, delays) -> None:
    responses.post(URL, status=429, headers={"Retry-After": "7"})
    responses.post(URL, json={"ok": True})
    assert session.post(URL, json={}).json() == {"ok": True}
    assert delays == [7.0]


@responses.activate(registry=OrderedRegistry)
def test_5xx_backs_off_exponentially(session, delays) -> None:
    responses.get(URL, status=503)
    responses.get(URL, status=502)
    responses.get(URL, status=500)
    responses.get(URL, json={"ok": 1})
    assert session.get(URL).status_code == 200
    assert delays == [0.5, 1.0, 2.0]


@responses.activate(registry=OrderedRegistry)
def test_a_retry_after_beyond_the_cap_is_not_retried_early(session, delays) -> None:
    """Told to wait an hour, we neither sleep an hour nor ask again after the cap: the
    caller gets the platform's wait to reschedule by."""
    responses.get(URL, status=429, headers={"Retry-After": "3600"})
    responses.get(URL, json={})
    with pytest.raises(RateLimited) as info:
        session.get(URL)
    assert info.value.retry_after == 3600.0
    assert delays == [] and len(responses.calls) == 1


@responses.activate(registry=OrderedRegistry)
def test_a_503_asking_for_more_than_the_cap_is_not_retried_early(session, delays) -> None:
    responses.get(URL, status=503, headers={"Retry-After": "600"})
    responses.get(URL, json={})
    with pytest.raises(TransientError):
        session.get(URL)
    assert delays == [] and len(responses.calls) == 1


@responses.activate
def test_429_exhausted_raises_rate_limited(session, delays) -> None:
    responses.get(URL, status=429, headers={"Retry-After": "4"})
    with pytest.raises(RateLimited) as info:
        session.get(URL)
    assert info.value.retry_after == 4.0
    assert len(delays) == 3 and len(responses.calls) == 4


@responses.activate
def test_5xx_exhausted_raises_transient(session) -> None:
    responses.get(URL, status=500)
    with pytest.raises(TransientError):
        session.get(URL)


@responses.activate
@pytest.mark.parametrize("status", [401, 403])
def test_auth_failures_raise_without_retry(session, delays, status) -> None:
    responses.get(URL, status=status)
    with pytest.raises(AuthFailed):
        session.get(URL)
    assert delays == [] and len(responses.calls) == 1


@responses.activate(registry=OrderedRegistry)
def test_connection_error_retried_then_transient(session, delays) -> None:
    for _ in range(4):
        responses.get(URL, body=requests.ConnectionError("refused"))
    with pytest.raises(TransientError):
        session.get(URL)
    assert delays == [0.5, 1.0, 2.0]


@responses.activate
def test_client_errors_are_returned_not_retried(session, delays) -> None:
    responses.get(URL, status=404)
    assert session.get(URL).status_code == 404
    assert delays == []


@responses.activate(registry=OrderedRegistry)
def test_throttle_hint_retries_in_band_throttling(delays) -> None:
    def hint(resp: requests.Response) -> float | None:
        return 2.5 if resp.json().get("throttled") else None

    session = make_session(sleep=delays.append, throttle_hint=hint)
    responses.post(URL, json={"throttled": True})
    responses.post(URL, json={"data": 1})
    assert session.post(URL).json() == {"data": 1}
    assert delays == [2.5]


SIGNED = ("https://user:pw@storage.googleapis.com/shopify-tiers-assets-prod-us-east1/"
          "export.jsonl?GoogleAccessId=sa%40shopify&Expires=1900000000&Signature=s3cr3tSig#frag")


@pytest.mark.parametrize("answer", [requests.ConnectionError("refused"), 503, 403])
@responses.activate
def test_a_pre_signed_url_never_reaches_logs_or_errors(session, caplog, answer) -> None:
    """Shopify's bulk export is a pre-signed cloud-storage URL: its query is a credential
    (a week long), and these messages reach logs and a sync's ``last_error`` in the admin."""
    bare = SIGNED.split("?")[0].replace("user:pw@", "")
    if isinstance(answer, int):
        responses.get(bare, status=answer)
    else:
        responses.get(bare, body=answer)
    with caplog.at_level("WARNING", logger="connectors.http"), \
            pytest.raises((TransientError, AuthFailed)) as failed:
        session.get(SIGNED)
    shown = [str(failed.value)] + [str(getattr(r, "target", "")) for r in caplog.records]
    for text in shown:
        assert "s3cr3tSig" not in text and "GoogleAccessId" not in text and "pw@" not in text
    assert f"GET {bare}?…" in str(failed.value)  # still says which request failed


def _serve(answers: list[bytes]) -> tuple[str, list[int]]:
    """A local server answering each connection with the next raw answer, then closing it:
    what a reset mid-body looks like to ``requests`` (``responses`` fails before the body)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(len(answers))
    served: list[int] = []

    def serve() -> None:
        with listener:
            for answer in answers:
                conn, _ = listener.accept()
                with conn:
                    conn.recv(65536)
                    served.append(1)
                    conn.sendall(answer)

    threading.Thread(target=serve, daemon=True).start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}/graphql", served


_CUT = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        b'{"data": {"produ')
_WHOLE = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 12\r\n"
          b'Connection: close\r\n\r\n{"ok": true}')


def test_a_connection_broken_mid_body_is_retried(session, delays) -> None:
    url, served = _serve([_CUT, _WHOLE])
    assert session.get(url).json() == {"ok": True}
    assert delays == [0.5] and len(served) == 2


def test_a_body_broken_on_every_try_ends_transient(session, delays) -> None:
    url, _ = _serve([_CUT] * 4)
    with pytest.raises(TransientError, match="ChunkedEncodingError"):
        session.get(url)
    assert delays == [0.5, 1.0, 2.0]


def test_a_connection_failures_logged_traceback_keeps_the_query_out(caplog) -> None:
    """urllib3's own message names the URL with its query ("Max retries exceeded with
    url: /export.jsonl?...Signature=..."): chained to our error, a ``log.exception`` of it
    printed the credential in the cause's traceback. What failed and why stays said."""
    import logging
    import socket

    with socket.socket() as probe:  # a local port nobody listens on: refused at once
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/export.jsonl?GoogleAccessId=sa&Signature=s3cr3tSig"
    session = make_session(retries=1, sleep=lambda s: None, timeout=2)
    with caplog.at_level("WARNING"):
        try:
            session.get(url)
        except TransientError:
            logging.getLogger("shopkeeper.sync").exception("sync.failed")
    assert "sync.failed" in caplog.text and "Traceback" in caplog.text
    assert "s3cr3tSig" not in caplog.text and "GoogleAccessId" not in caplog.text
    assert (f"GET http://127.0.0.1:{port}/export.jsonl?…: ConnectionError "
            "(NewConnectionError)") in caplog.text
