"""A ``requests.Session`` that retries 429/5xx/timeouts with capped exponential back-off.

urllib3's ``Retry`` is not used because it lives below the adapter, where neither our
platform throttle hints (Shopify's GraphQL cost bucket answers 200) nor the ``responses``
test double can reach it; the loop here is small and covers both. ``sleep`` is injectable
so tests never wait.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

from connectors.errors import AuthFailed, RateLimited, TransientError

__all__ = ["RETRY_STATUSES", "RetrySession", "describe_request", "failure_reason",
           "make_session", "parse_retry_after", "server_trouble"]

log = logging.getLogger(__name__)

RETRY_STATUSES: frozenset[int] = frozenset({429, 500, 502, 503, 504})

def server_trouble(status: int) -> bool:
    """True for a status saying the server or a gateway failed, not that it refused us.

    The session retries only ``RETRY_STATUSES``; any other 5xx (501, 505, a CDN's 520-530)
    and a 408 reach the client, which must call them transient too: read as a refusal,
    an accept withdrew its offer, a delete was given up."""
    return status >= 500 or status in (408, 429)


#: Failures of the connection, before or during the answer: retried like a 5xx. A body cut
#: mid-read (the peer reset or closed the connection: ``ChunkedEncodingError``, also for a
#: short ``Content-Length`` body) is no more final than a refused connection.
CONNECTION_FAILURES: tuple[type[Exception], ...] = (
    requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)

#: Returns seconds to wait before retrying an otherwise successful-looking response, or None.
ThrottleHint = Callable[[requests.Response], float | None]


def describe_request(request: requests.PreparedRequest) -> str:
    """``METHOD scheme://host/path`` for logs and error messages, without the query,
    fragment or user info: a pre-signed URL (Shopify's bulk export on cloud storage)
    carries its credential in the query, and these texts reach logs and the admin page
    (a sync's ``last_error``)."""
    parts = urlsplit(str(request.url or ""))
    host = parts.netloc.rpartition("@")[2]
    shown = urlunsplit((parts.scheme, host, parts.path, "", ""))
    return f"{request.method} {shown}" + ("?…" if parts.query else "")


def failure_reason(exc: BaseException) -> str:
    """The type of a failed request's error and of what caused it in urllib3
    (``ConnectionError (NewConnectionError)``), without their messages: those name the
    URL with its query."""
    reason = exc.args[0] if exc.args else None
    inner = getattr(reason, "reason", reason)  # urllib3's MaxRetryError wraps the cause
    name = type(exc).__name__
    return f"{name} ({type(inner).__name__})" if isinstance(inner, BaseException) else name


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:  # "inf" and "nan" parse as floats: no wait can be made of them
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class RetrySession(requests.Session):
    """Session whose ``send`` retries throttling and server errors, then raises our errors."""

    def __init__(
        self,
        *,
        retries: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 60.0,
        timeout: float | tuple[float, float] = (5.0, 30.0),
        sleep: Callable[[float], Any] = time.sleep,
        throttle_hint: ThrottleHint | None = None,
    ) -> None:
        super().__init__()
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.timeout = timeout
        self.sleep = sleep
        self.throttle_hint = throttle_hint
        #: Called before each wait between tries: a request retried for minutes must not
        #: outlive what its caller holds meanwhile (the sync's lease); it may raise to stop.
        self.on_wait: Callable[[], object] | None = None

    def _delay(self, attempt: int, hinted: float | None) -> float:
        """The hint when the platform gave one, else ``backoff * 2**attempt``; both capped
        (``send`` gives up at once on a hint above the cap)."""
        delay = hinted if hinted is not None else self.backoff * (2**attempt)
        return min(delay, self.max_backoff)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        """Send with retries; raise ``AuthFailed``/``RateLimited``/``TransientError`` at the end."""
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        # our tokens go in headers, but a pre-signed URL's is in its query: never shown
        target = describe_request(request)
        attempt = 0
        while True:
            try:
                response = self._attempt(request, kwargs)
            except CONNECTION_FAILURES as exc:
                if attempt >= self.retries:
                    # not chained: urllib3's message names the URL, query included, and
                    # a logged traceback would print it; the reasons' types are kept
                    raise TransientError(f"{target}: {failure_reason(exc)}") from None
                delay = self._delay(attempt, None)
                log.warning(
                    "connectors.http.retry",
                    extra={"target": target, "reason": type(exc).__name__, "delay": delay},
                )
                self._wait(delay, kwargs)
                attempt += 1
                continue

            status = response.status_code
            if status in (401, 403):
                raise AuthFailed(f"{target}: HTTP {status}", status=status, response=response)
            hinted: float | None = None
            if status in RETRY_STATUSES:
                hinted = parse_retry_after(response.headers.get("Retry-After"))
            elif self.throttle_hint is not None:
                hinted = self.throttle_hint(response)
                if hinted is None:
                    return response
                status = 429  # throttled in-band (e.g. GraphQL THROTTLED with HTTP 200)
            else:
                return response

            delay = self._delay(attempt, hinted)
            if hinted is not None and hinted > self.max_backoff:
                # longer than we wait in-process: asking again after the cap would ignore
                # the platform's Retry-After; the caller reschedules by ``hinted``
                response.close()
                if status == 429:
                    raise RateLimited(hinted, f"{target}: throttled")
                raise TransientError(f"{target}: HTTP {status}, retry after {hinted:g}s")
            if attempt >= self.retries:
                if status == 429:
                    raise RateLimited(delay, f"{target}: still throttled")
                raise TransientError(f"{target}: HTTP {status} after {attempt + 1} attempts")
            log.warning(
                "connectors.http.retry",
                extra={"target": target, "status": status, "delay": delay},
            )
            response.close()
            self._wait(delay, kwargs)
            attempt += 1

    def _attempt(
        self, request: requests.PreparedRequest, kwargs: dict[str, Any]
    ) -> requests.Response:
        """One try (``GuardedSession`` bounds it); ``send`` decides about retries."""
        return super().send(request, **kwargs)

    def _wait(self, delay: float, kwargs: dict[str, Any]) -> None:
        """Pause before the next try."""
        if self.on_wait is not None:
            self.on_wait()
        self.sleep(delay)


def make_session(
    *,
    retries: int = 5,
    backoff: float = 0.5,
    max_backoff: float = 60.0,
    timeout: float | tuple[float, float] = (5.0, 30.0),
    sleep: Callable[[float], Any] = time.sleep,
    throttle_hint: ThrottleHint | None = None,
) -> RetrySession:
    """A retrying session; pass ``sleep=delays.append`` in tests to record instead of wait."""
    session = RetrySession(
        retries=retries,
        backoff=backoff,
        max_backoff=max_backoff,
        timeout=timeout,
        sleep=sleep,
        throttle_hint=throttle_hint,
    )
    session.headers["User-Agent"] = "shopkeeper-connectors/0.1"
    return session
