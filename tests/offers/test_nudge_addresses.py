"""The nudge webhook is a merchant's URL the worker posts to from inside our network: it
never reaches a loopback, private, link-local (cloud metadata) or reserved address, by an
IP literal (refused when saved) or a name (refused when the nudge is sent, however the
name's DNS answers change between the check and the connection)."""

from __future__ import annotations

import logging
import threading

import pytest
import responses
import sqlalchemy as sa
import urllib3.util.connection
from marshmallow import ValidationError

from plugin.admin import settings as settings_service
from plugin.extensions import db
from plugin.models import Nudge, Offer
from plugin.offers import nudges
from plugin.offers.nudges import run_nudges
from plugin.offers.settings import guardrails_from
from tests.offers.conftest import PUBLIC_ADDRESS, configure, fake_dns
from tests.offers.test_nudges import HOOK, _idle_cart
from tests.offers.test_stored_stages_and_urls import _refused_by_both

pytestmark = pytest.mark.usefixtures("public_dns")

PRIVATE_LITERALS = ["http://169.254.169.254/latest/meta-data/", "http://127.0.0.1:5432/",
                    "https://10.1.2.3/hook", "http://192.168.0.10/hook", "http://[::1]/hook",
                    "http://[fd00::5]/hook", "http://[::ffff:127.0.0.1]/hook",
                    "http://0.0.0.0/hook", "http://127.1/hook", "http://2130706433/hook",
                    "http://0x7f000001/hook", "http://[fe80::1]/hook"]
NOT_PUBLIC = {"private": ["10.0.0.7"], "loopback": ["127.0.0.1"],
              "metadata": ["169.254.169.254"], "one private among public":
              [PUBLIC_ADDRESS, "172.16.0.3"], "ipv6 unique local": ["fd12::7"],
              "unresolved": []}


@pytest.mark.parametrize("url", PRIVATE_LITERALS)
def test_a_webhook_at_a_literal_private_address_is_refused_by_page_and_serving(url):
    assert _refused_by_both("nudge_webhook_url", url) == ("nudge_webhook_url",)
    # a link sent to shoppers is no request of ours: the cart URL keeps its rule
    assert guardrails_from({"cart_url": url.replace("hook", "cart")}).cart_url


def test_the_settings_page_refuses_saving_one(app, shop):
    with pytest.raises(ValidationError) as refused:
        settings_service.save(shop, {"offers": {
            "nudge_webhook_url": "http://169.254.169.254/latest/meta-data/"}})
    assert list(refused.value.messages) == ["offers.nudge_webhook_url"]
    settings_service.save(shop, {"offers": {"nudge_webhook_url": "https://203.0.114.9/hook"}})


@pytest.mark.parametrize("answer", NOT_PUBLIC.values(), ids=NOT_PUBLIC)
@responses.activate
def test_a_webhook_host_resolving_to_no_public_address_gets_no_nudge(app, shop, monkeypatch,
                                                                    caplog, answer):
    url = "https://crm.internal.example/hooks"
    configure(shop, nudge_webhook_url=url)
    _idle_cart(shop.id)
    asked = fake_dns(monkeypatch, answer)
    responses.post(url, status=202)
    with caplog.at_level(logging.WARNING, logger="shopkeeper.offers.nudges"):
        assert run_nudges(shop) == {"sent": 0, "failed": 0, "skipped": 0}
    assert asked == ["crm.internal.example"] and len(responses.calls) == 0
    assert [(r.message, r.host) for r in caplog.records] == [
        ("offers.nudge_host_refused", "crm.internal.example")]
    # nothing was quoted or recorded for a nudge never sent
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Offer)) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Nudge)) == 0


@responses.activate
def test_a_host_the_operator_lists_may_be_private(app, shop, monkeypatch):
    url = "http://crm.internal/hooks"
    configure(shop, nudge_webhook_url=url)
    _idle_cart(shop.id)
    fake_dns(monkeypatch, ["10.0.0.7"])
    responses.post(url, status=202)
    assert run_nudges(shop)["sent"] == 0
    app.config["NUDGE_PRIVATE_HOSTS"] = "other.example, CRM.internal"
    assert run_nudges(shop)["sent"] == 1


def test_a_host_that_resolves_too_slowly_gets_no_nudge_this_run(app, shop, monkeypatch,
                                                                caplog):
    import socket

    configure(shop, nudge_webhook_url=HOOK)
    _idle_cart(shop.id)
    release = threading.Event()

    def slow(host, port, *args, **kwargs):
        release.wait(5)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (PUBLIC_ADDRESS, port))]

    monkeypatch.setattr(socket, "getaddrinfo", slow)
    monkeypatch.setattr(nudges, "DNS_TIMEOUT_SECONDS", 0.2)
    try:
        with caplog.at_level(logging.WARNING, logger="shopkeeper.offers.nudges"):
            assert run_nudges(shop) == {"sent": 0, "failed": 0, "skipped": 0}
    finally:
        release.set()
    assert any(r.message == "offers.nudge_host_refused" and "did not resolve" in r.reason
               for r in caplog.records)


def test_the_nudge_connects_to_the_address_checked_not_to_a_later_dns_answer(
        app, shop, monkeypatch):
    """DNS rebinding: the name answers a public address to the check, then 127.0.0.1."""
    configure(shop, nudge_webhook_url=HOOK)
    _idle_cart(shop.id)
    asked = fake_dns(monkeypatch, [PUBLIC_ADDRESS], ["127.0.0.1"])
    connected: list[str] = []

    def create_connection(address, *args, **kwargs):
        connected.append(address[0])
        raise ConnectionRefusedError("test: no network")

    monkeypatch.setattr(urllib3.util.connection, "create_connection", create_connection)
    assert run_nudges(shop) == {"sent": 0, "failed": 1, "skipped": 0}
    assert connected == [PUBLIC_ADDRESS] and asked == ["crm.example"]


@responses.activate
def test_a_redirect_from_the_webhook_is_not_followed(app, shop):
    configure(shop, nudge_webhook_url=HOOK)
    _idle_cart(shop.id)
    metadata = "http://169.254.169.254/latest/meta-data/"
    responses.post(HOOK, status=307, headers={"Location": metadata})
    responses.post(metadata, status=200)
    responses.get(metadata, status=200)
    assert run_nudges(shop) == {"sent": 0, "failed": 1, "skipped": 0}
    assert [c.request.url for c in responses.calls] == [HOOK]
    assert db.session.scalar(sa.select(Nudge.response_code)) == 307

