"""``ConnectorContract``: the behaviour every connector shares, tested once.

Mix it into a pytest class and provide the hooks below; see ``test_generic.py`` for the
smallest example. Hooks:

- ``connector_cls``: the class under test.
- ``make_connector(session=None, *, wrong_secret=False)``: an instance for one shop whose
  access token is ``ACCESS_TOKEN``; ``session`` is the retrying session to use.
- ``webhook_samples()``: ``WebhookSample`` list (platform payloads, ideally from fixtures);
  must include an uninstall topic.
- ``signed_delivery(topic, body, *, now, wrong_key=False)``: headers (topic, delivery id,
  signature) for ``body`` as the platform would send them at unix time ``now``.
- ``SIGNATURE_HEADERS``: names of the headers carrying the signature (removed in one test).
- ``documented_vectors()``: ``(headers, body, now)`` triples from platform docs that must
  verify (optional).
- ``webhook_http(rsps)``: register HTTP the verification itself needs, e.g. a JWKS.
- For connectors with the ``backfill`` capability: ``api_endpoint()`` -> (method, url) of
  the backfill API and ``add_product_page(rsps, index, ids, last)`` registering page
  ``index`` (0-based) that must only match a request carrying that page's cursor.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar, NamedTuple

import pytest
import requests
import responses
from responses.registries import OrderedRegistry

import connectors
from connectors.base import CAPABILITIES, Connector
from connectors.errors import (
    AuthFailed,
    ConnectorError,
    InvalidPayload,
    NotSupported,
    RateLimited,
    SignatureInvalid,
    TransientError,
    UnknownTopic,
)
from connectors.http import make_session
from connectors.records import (
    NORMALIZED_TOPICS,
    Cart,
    Customer,
    Deletion,
    Order,
    Product,
    Redaction,
)

__all__ = ["ConnectorContract", "WebhookSample"]

_CURRENCY = re.compile(r"^[A-Z]{3}$")
PAGES = [["p1", "p2"], ["p3", "p4"], ["p5"]]


class WebhookSample(NamedTuple):
    """One platform delivery and what it must normalize to."""

    topic: str  # platform-native topic as sent in headers
    body: bytes  # raw bytes exactly as delivered
    expected_topic: str  # normalized topic
    record_type: type | None  # expected record class, None for e.g. app/uninstalled


def _assert_utc(value: datetime | None) -> None:
    if value is not None:
        assert value.utcoffset() == timedelta(0), value


def assert_normalized(record: Any) -> None:
    """Money is Decimal with an ISO currency, datetimes are UTC, ids are non-empty strings."""
    if isinstance(record, Product):
        assert isinstance(record.external_id, str) and record.external_id
        _assert_utc(record.updated_at)
        if record.price is not None:
            assert isinstance(record.price, Decimal)
            assert record.currency and _CURRENCY.fullmatch(record.currency)
        for variant in record.variants:
            assert variant.price is None or isinstance(variant.price, Decimal)
    elif isinstance(record, Order | Cart):
        _assert_utc(record.updated_at)
        if isinstance(record, Order):
            _assert_utc(record.created_at)
            assert _CURRENCY.fullmatch(record.currency)
            assert record.total is None or isinstance(record.total, Decimal)
        for line in record.lines:
            assert isinstance(line.price, Decimal) and line.quantity > 0
            assert isinstance(line.product_id, str) and line.product_id
    elif isinstance(record, Customer):
        _assert_utc(record.updated_at)
        _assert_utc(record.created_at)
    elif isinstance(record, Deletion):
        assert record.external_id
        _assert_utc(record.deleted_at)
    elif isinstance(record, Redaction):
        assert all(isinstance(o, str) for o in record.order_ids)
    else:
        assert record is None


class ConnectorContract:
    """Shared connector tests; subclasses supply the hooks described in the module doc."""

    connector_cls: ClassVar[type[Connector]]
    ACCESS_TOKEN: ClassVar[str] = "tok_contract_SECRET_6f1d2c9a"
    NOW: ClassVar[float] = 1_763_856_000.0
    SIGNATURE_HEADERS: ClassVar[tuple[str, ...]] = ()

    # -- hooks (override) -----------------------------------------------------------------
    def make_connector(
        self, session: requests.Session | None = None, *, wrong_secret: bool = False
    ) -> Connector:
        raise NotImplementedError

    def webhook_samples(self) -> list[WebhookSample]:
        raise NotImplementedError

    def signed_delivery(
        self, topic: str, body: bytes, *, now: float, wrong_key: bool = False
    ) -> dict[str, str]:
        raise NotImplementedError

    def documented_vectors(self) -> list[tuple[dict[str, str], bytes, float]]:
        return []

    def webhook_http(self, rsps: responses.RequestsMock) -> None:
        """Register HTTP that verification needs (none by default)."""

    def tamper(self, body: bytes) -> bytes:
        """A semantically identical but byte-different body: signatures cover raw bytes."""
        return body + b" "

    def api_endpoint(self) -> tuple[str, str]:
        raise NotImplementedError

    def auth_refusal(self) -> dict[str, Any]:
        """``responses`` arguments of the platform refusing our credentials."""
        return {"status": 401}

    def add_product_page(
        self, rsps: responses.RequestsMock, index: int, ids: list[str], last: bool,
        broken: frozenset[str] = frozenset(),
    ) -> None:
        """Queue page ``index`` of products ``ids``; those in ``broken`` carry an
        unparsable ``updatedAt``."""
        raise NotImplementedError

    # -- helpers ----------------------------------------------------------------------------
    @pytest.fixture
    def delays(self) -> list[float]:
        return []

    def _session(self, delays: list[float]) -> requests.Session:
        return make_session(retries=3, backoff=1.0, max_backoff=60, sleep=delays.append)

    def _verify(self, headers: dict[str, str], body: bytes, *, now: float | None = None) -> None:
        connector = self.make_connector()
        with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
            self.webhook_http(rsps)
            connector.verify_webhook(headers, body, now=self.NOW if now is None else now)

    def _has_backfill(self) -> bool:
        return "backfill" in self.connector_cls.meta.capabilities

    def _pages(self, rsps: responses.RequestsMock, start: int = 0) -> None:
        for index in range(start, len(PAGES)):
            self.add_product_page(rsps, index, PAGES[index], index == len(PAGES) - 1)

    # -- metadata ---------------------------------------------------------------------------
    def test_contract_registered_under_meta_key(self) -> None:
        meta = self.connector_cls.meta
        assert connectors.get(meta.key) is self.connector_cls
        assert meta.capabilities <= CAPABILITIES and "webhooks" in meta.capabilities
        assert meta.webhook_topics, "a webhook connector subscribes to at least one topic"

    # -- signatures -------------------------------------------------------------------------
    def test_contract_signed_samples_verify(self) -> None:
        for sample in self.webhook_samples():
            headers = self.signed_delivery(sample.topic, sample.body, now=self.NOW)
            self._verify(headers, sample.body)

    def test_contract_documented_vectors_verify(self) -> None:
        for headers, body, now in self.documented_vectors():
            self._verify(headers, body, now=now)

    def test_contract_tampered_body_rejected(self) -> None:
        sample = self.webhook_samples()[0]
        headers = self.signed_delivery(sample.topic, sample.body, now=self.NOW)
        with pytest.raises(SignatureInvalid):
            self._verify(headers, self.tamper(sample.body))

    def test_contract_wrong_key_rejected(self) -> None:
        sample = self.webhook_samples()[0]
        headers = self.signed_delivery(sample.topic, sample.body, now=self.NOW, wrong_key=True)
        with pytest.raises(SignatureInvalid):
            self._verify(headers, sample.body)

    def test_contract_missing_signature_rejected(self) -> None:
        assert self.SIGNATURE_HEADERS, "declare SIGNATURE_HEADERS"
        sample = self.webhook_samples()[0]
        headers = self.signed_delivery(sample.topic, sample.body, now=self.NOW)
        stripped = {
            k: v
            for k, v in headers.items()
            if k.lower() not in {h.lower() for h in self.SIGNATURE_HEADERS}
        }
        assert stripped != headers
        with pytest.raises(SignatureInvalid):
            self._verify(stripped, sample.body)

    def test_contract_headers_are_case_insensitive(self) -> None:
        sample = self.webhook_samples()[0]
        headers = self.signed_delivery(sample.topic, sample.body, now=self.NOW)
        self._verify({k.lower(): v for k, v in headers.items()}, sample.body)
        event = self.make_connector().parse_webhook(
            {k.upper(): v for k, v in headers.items()}, sample.body
        )
        assert event.topic == sample.expected_topic

    # -- parsing ----------------------------------------------------------------------------
    def test_contract_samples_parse_to_normalized_records(self) -> None:
        samples = self.webhook_samples()
        assert "app/uninstalled" in {s.expected_topic for s in samples}
        connector = self.make_connector()
        # Parsing is pure: any HTTP attempt fails inside this mock.
        with responses.RequestsMock():
            for sample in samples:
                headers = self.signed_delivery(sample.topic, sample.body, now=self.NOW)
                event = connector.parse_webhook(headers, sample.body)
                assert event.topic == sample.expected_topic, sample.topic
                assert event.topic in NORMALIZED_TOPICS
                assert event.delivery_id
                if sample.record_type is None:
                    assert event.record is None
                else:
                    assert isinstance(event.record, sample.record_type), sample.topic
                assert_normalized(event.record)
                _assert_utc(event.occurred_at)
                again = connector.parse_webhook(headers, sample.body)
                assert again == event  # deterministic: duplicates dedupe on delivery id

    def test_contract_malformed_json_is_invalid_payload(self) -> None:
        sample = next(s for s in self.webhook_samples() if s.record_type is not None)
        body = b'{"id": '
        headers = self.signed_delivery(sample.topic, body, now=self.NOW)
        with pytest.raises(InvalidPayload):
            self.make_connector().parse_webhook(headers, body)

    def test_contract_unknown_topic_rejected(self) -> None:
        body = b"{}"
        headers = self.signed_delivery("nonsense/topic", body, now=self.NOW)
        with pytest.raises(UnknownTopic):
            self.make_connector().parse_webhook(headers, body)

    # -- backfill ---------------------------------------------------------------------------
    def test_contract_backfill_resumes_from_cursor(self, delays) -> None:
        if not self._has_backfill():
            with pytest.raises(NotSupported):
                next(iter(self.make_connector().iter_products()))
            return
        seen: list[str] = []
        with responses.RequestsMock(registry=OrderedRegistry) as rsps:
            self.add_product_page(rsps, 0, PAGES[0], False)
            pages: Iterator = self.make_connector(self._session(delays)).iter_products()
            first = next(pages)  # the process "dies" after the first page
            seen += [p.external_id for p in first.items]
            assert first.next_cursor
        with responses.RequestsMock(registry=OrderedRegistry) as rsps:
            self._pages(rsps, start=1)
            resumed = list(self.make_connector(self._session(delays)).iter_products(
                cursor=first.next_cursor
            ))
        seen += [p.external_id for page in resumed for p in page.items]
        assert resumed[-1].next_cursor is None
        assert seen == [pid for page in PAGES for pid in page]  # no gaps, no duplicates
        for page in resumed:
            for product in page.items:
                assert_normalized(product)

    def test_contract_backfill_429_then_200_honours_retry_after(self, delays) -> None:
        if not self._has_backfill():
            return self.test_contract_backfill_resumes_from_cursor(delays)
        method, url = self.api_endpoint()
        with responses.RequestsMock(registry=OrderedRegistry) as rsps:
            rsps.add(method, url, status=429, headers={"Retry-After": "7"})
            self._pages(rsps)
            items = [p for page in self.make_connector(self._session(delays)).iter_products()
                     for p in page.items]
        assert delays == [7.0]
        assert [p.external_id for p in items] == [pid for page in PAGES for pid in page]

    def test_contract_backfill_5xx_backs_off(self, delays) -> None:
        if not self._has_backfill():
            return self.test_contract_backfill_resumes_from_cursor(delays)
        method, url = self.api_endpoint()
        with responses.RequestsMock(registry=OrderedRegistry) as rsps:
            rsps.add(method, url, status=502)
            rsps.add(method, url, status=503)
            self._pages(rsps)
            list(self.make_connector(self._session(delays)).iter_products())
        assert delays == [1.0, 2.0]

    @pytest.mark.parametrize(
        ("status", "error"),
        [(401, AuthFailed), (403, AuthFailed), (500, TransientError), (429, RateLimited)],
    )
    def test_contract_backfill_errors_translated(self, delays, status, error) -> None:
        if not self._has_backfill():
            return self.test_contract_backfill_resumes_from_cursor(delays)
        method, url = self.api_endpoint()
        with responses.RequestsMock() as rsps:
            rsps.add(method, url, status=status, headers={"Retry-After": "1"})
            with pytest.raises(error):
                next(iter(self.make_connector(self._session(delays)).iter_products()))

    def test_contract_backfill_garbage_is_connector_error(self, delays) -> None:
        if not self._has_backfill():
            return self.test_contract_backfill_resumes_from_cursor(delays)
        method, url = self.api_endpoint()
        with responses.RequestsMock() as rsps:
            rsps.add(method, url, body="<html>oops</html>", status=200)
            with pytest.raises(ConnectorError):
                next(iter(self.make_connector(self._session(delays)).iter_products()))

    def test_contract_backfill_sets_an_unreadable_record_aside(self, delays) -> None:
        if not self._has_backfill():
            return self.test_contract_backfill_resumes_from_cursor(delays)
        first, bad = PAGES[0][-1], PAGES[0][0]
        with responses.RequestsMock(registry=OrderedRegistry) as rsps:
            self.add_product_page(rsps, 0, PAGES[0], False, broken=frozenset({bad}))
            page = next(iter(self.make_connector(self._session(delays)).iter_products()))
        assert [p.external_id for p in page.items] == [first]
        [rejected] = page.rejected
        assert rejected.record_id and bad in rejected.record_id
        assert "updated" in rejected.reason.lower()
        assert page.next_cursor  # the page still moves the backfill on

    def test_contract_backfill_page_of_only_unreadable_records_fails(self, delays) -> None:
        if not self._has_backfill():
            return self.test_contract_backfill_resumes_from_cursor(delays)
        with responses.RequestsMock(registry=OrderedRegistry) as rsps:
            self.add_product_page(rsps, 0, PAGES[0], False, broken=frozenset(PAGES[0]))
            with pytest.raises(InvalidPayload):
                next(iter(self.make_connector(self._session(delays)).iter_products()))

    def test_contract_no_tokens_in_logs(self, delays, caplog) -> None:
        caplog.set_level(logging.DEBUG)
        connector = self.make_connector(self._session(delays))
        if self._has_backfill():
            method, url = self.api_endpoint()
            with responses.RequestsMock(registry=OrderedRegistry) as rsps:
                rsps.add(method, url, status=429, headers={"Retry-After": "1"})
                rsps.add(method, url, **self.auth_refusal())
                with pytest.raises(AuthFailed) as info:
                    list(connector.iter_products())
            assert self.ACCESS_TOKEN not in str(info.value)
        for sample in self.webhook_samples():
            headers = self.signed_delivery(sample.topic, sample.body, now=self.NOW)
            with pytest.raises(SignatureInvalid) as info:
                self._verify(headers, self.tamper(sample.body))
            assert self.ACCESS_TOKEN not in str(info.value)
        assert self.ACCESS_TOKEN not in repr(connector.credentials)
        logged = caplog.text + "".join(repr(r.__dict__) for r in caplog.records)
        assert self.ACCESS_TOKEN not in logged
