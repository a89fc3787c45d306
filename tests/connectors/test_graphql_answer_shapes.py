"""Shopify and Saleor GraphQL answers of an unexpected shape are connector errors.

A GraphQL answer's ``errors`` and ``extensions`` are outside the schema: a proxy or a broken
server can give them any shape, and an entry or an ``extensions`` that was no object (or a
code that was a list) raised AttributeError or TypeError, a crash instead of a platform
fault (a sync then lost its cursor's meaning of "try again next run")."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from connectors.errors import ConnectorError, InvalidPayload, TransientError
from connectors.saleor.client import SaleorGraphQL
from connectors.shopify.client import ShopifyGraphQL, throttle_delay


def _answer(body: Any, status: int = 200) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(body).encode()
    return response


class _Session:
    throttle_hint = "set"  # not None: the Shopify client leaves it alone

    def __init__(self, body: Any) -> None:
        self.body = body

    def post(self, *args: Any, **kwargs: Any) -> requests.Response:
        return _answer(self.body)


ODD_ERRORS = [
    {"errors": [{"message": "boom", "extensions": "internal"}]},
    {"errors": [{"message": "boom", "extensions": ["code", "X"]}]},
    {"errors": [{"message": "boom", "extensions": {"code": ["X"]}}]},
    {"errors": ["boom", 3, None]},
    {"errors": "boom"},
    {"errors": {"message": "boom"}},
]


@pytest.mark.parametrize("body", [*ODD_ERRORS, {"data": ["shop"]}])
def test_a_shopify_answer_of_an_unexpected_shape_is_a_connector_error(body) -> None:
    client = ShopifyGraphQL(_Session(body), "x.myshopify.com", "token")
    with pytest.raises(ConnectorError):
        client.execute("query { shop { id } }")


@pytest.mark.parametrize("extensions", ["cost", {"cost": ["x"]}])
def test_a_shopify_answer_with_odd_extensions_is_still_read(extensions) -> None:
    body = {"data": {"shop": {"id": "1"}}, "extensions": extensions}
    client = ShopifyGraphQL(_Session(body), "x.myshopify.com", "token")
    assert client.execute("query { shop { id } }") == {"shop": {"id": "1"}}


@pytest.mark.parametrize("extensions", ["cost", {"cost": "x"}, {"cost": {"throttleStatus": 1}}])
def test_a_shopify_throttle_with_odd_extensions_waits_a_second(extensions) -> None:
    throttled = {"errors": [{"extensions": {"code": "THROTTLED"}}], "extensions": extensions}
    assert throttle_delay(_answer(throttled)) == 1.0


@pytest.mark.parametrize("body", [
    *ODD_ERRORS,
    {"errors": [{"message": "boom", "extensions": {"exception": "PermissionDenied"}}]},
    {"errors": [{"message": "boom", "extensions": {"exception": {"code": ["X"]}}}]},
    {"data": ["shop"]},
])
def test_a_saleor_answer_of_an_unexpected_shape_is_a_connector_error(body) -> None:
    client = SaleorGraphQL(_Session(body), "https://saleor.example/graphql/", "token")
    with pytest.raises(ConnectorError):
        client.execute("query { shop { name } }")


@pytest.mark.parametrize("result", [{"errors": ["boom"]}, {"errors": "boom"}])
def test_a_saleor_mutation_refusal_of_an_unexpected_shape_is_invalid_payload(result) -> None:
    """Saleor's own ``errors`` list, whatever its entries: its refusal."""
    client = SaleorGraphQL(_Session({"data": {"voucherDelete": result}}),
                           "https://saleor.example/graphql/", "token")
    with pytest.raises(InvalidPayload):
        client.mutate("mutation { voucherDelete }", {}, "voucherDelete")


@pytest.mark.parametrize("result", ["refused", ["deleted"], 3, True])
def test_a_saleor_mutation_answer_that_is_no_object_is_transient(result) -> None:
    """An answer that is no object holds no ``errors`` list: a proxy's or gateway's body,
    not Saleor refusing. It was InvalidPayload here while ``voucherCreate`` read the same
    body as transient; one rule now (the install says "install again", not "Saleor
    refused our webhooks", and a delete is retried)."""
    client = SaleorGraphQL(_Session({"data": {"voucherDelete": result}}),
                           "https://saleor.example/graphql/", "token")
    with pytest.raises(TransientError, match="unexpected voucherDelete answer"):
        client.mutate("mutation { voucherDelete }", {}, "voucherDelete")


@pytest.mark.parametrize("data", [{"voucherDelete": None}, {}, None])
def test_a_saleor_mutation_with_no_answer_is_transient(data) -> None:
    """A null or missing mutation answer (or no ``data``) says neither done nor refused:
    read as ``{}`` it was a success, so a voucher was forgotten undeleted and a webhook
    counted as made. It is retried instead."""
    client = SaleorGraphQL(_Session({"data": data}), "https://saleor.example/graphql/", "token")
    with pytest.raises(TransientError, match="no voucherDelete answer"):
        client.mutate("mutation { voucherDelete }", {}, "voucherDelete")


# -- mutation answers: Shopify's userErrors, Saleor's voucherCreate errors ----------------
class _Answers(_Session):
    """Answers in order, one per request."""

    def __init__(self, *bodies: Any) -> None:
        self.bodies = list(bodies)

    def post(self, *args: Any, **kwargs: Any) -> requests.Response:
        return _answer(self.bodies.pop(0))


def _shopify(*bodies: Any):
    from connectors.base import Credentials
    from connectors.shopify import ShopifyConnector

    return ShopifyConnector(Credentials("x.myshopify.com", access_token="token"),
                            session=_Answers(*bodies))


def _saleor(*bodies: Any):
    from connectors.base import Credentials
    from connectors.saleor import SaleorConnector

    return SaleorConnector(Credentials("saleor.example", access_token="token",
                                       api_url="https://saleor.example/graphql/",
                                       extra={"channel_id": "Q2hhbm5lbDox"}),
                           session=_Answers(*bodies))


def _spec():
    from datetime import UTC, datetime
    from decimal import Decimal

    from connectors.records import DiscountSpec

    return DiscountSpec("SK-XYZ", "percent", Decimal("10"), datetime(2030, 1, 1, tzinfo=UTC))


ODD_USER_ERRORS = [
    ["Code is invalid"],
    "Code is invalid",
    {"message": "Code is invalid"},
    [{"message": "Code is invalid", "field": "code", "code": ["INVALID"]}],
    [None],
]


@pytest.mark.parametrize("user_errors", ODD_USER_ERRORS)
def test_a_shopify_discount_refusal_of_an_unexpected_shape_is_invalid_payload(
        user_errors) -> None:
    """userErrors entries that were no objects (or a code that was a list) raised
    AttributeError or TypeError: a crash, not the platform's refusal of the discount."""
    shop = _shopify({"data": {"discountCodeBasicCreate": {
        "codeDiscountNode": None, "userErrors": user_errors}}})
    with pytest.raises(InvalidPayload, match="Shopify refused the discount"):
        shop.create_discount(_spec())


@pytest.mark.parametrize("answers", [
    [{"data": {"discountCodeBasicCreate": ["created"]}}],
    [{"data": {"discountCodeBasicCreate": {"codeDiscountNode": "gid://x", "userErrors": []}}}],
    [{"data": {"discountCodeBasicCreate": {"codeDiscountNode": {"id": ["gid://x"]}}}}],
    [{"data": {"discountCodeBasicCreate": {"userErrors": [{"code": "TAKEN"}]}}},
     {"data": {"codeDiscountNodeByCode": "gid://x"}}],
])
def test_a_shopify_discount_answer_of_an_unexpected_shape_is_transient(answers) -> None:
    """No userErrors and no readable id (or TAKEN with no discount found): retried, as
    Saleor's and Vendure's unreadable create answers are, not a plain ConnectorError."""
    with pytest.raises(TransientError, match="no discount id"):
        _shopify(*answers).create_discount(_spec())


def test_shopify_discount_deletion_reads_user_errors_of_any_shape() -> None:
    from datetime import UTC, datetime

    from connectors.records import DiscountRef

    ref = DiscountRef("gid://shopify/DiscountCodeNode/77", "SK-XYZ",
                      datetime(2030, 1, 1, tzinfo=UTC))
    gone = {"data": {"discountCodeDelete": {"userErrors": ["Discount does not exist"]}}}
    refused = {"data": {"discountCodeDelete": {"userErrors": [3, {"message": None}]}}}
    shop = _shopify(gone, refused)
    shop.delete_discount(ref)  # gone already: done
    with pytest.raises(ConnectorError, match="refused to delete"):
        shop.delete_discount(ref)


@pytest.mark.parametrize("answer", [
    "deleted",
    None,
    {"userErrors": []},
    {"deletedCodeDiscountId": None, "userErrors": []},
    {"deletedCodeDiscountId": ["gid://shopify/DiscountCodeNode/77"]},
])
def test_a_shopify_discount_deletion_nobody_confirmed_is_transient(answer) -> None:
    """No userErrors and no ``deletedCodeDiscountId``: not a deletion Shopify confirmed.
    Read as done (the test above once required it of "deleted"), the offer forgot its
    platform_ref and the code stayed on Shopify; retried, a delete that happened reads
    "does not exist" and counts as done then."""
    from datetime import UTC, datetime

    from connectors.records import DiscountRef

    ref = DiscountRef("gid://shopify/DiscountCodeNode/77", "SK-XYZ",
                      datetime(2030, 1, 1, tzinfo=UTC))
    with pytest.raises(TransientError, match="confirmed no discountCodeDelete"):
        _shopify({"data": {"discountCodeDelete": answer}}).delete_discount(ref)


@pytest.mark.parametrize("user_errors, refused", [
    (["Address for this topic has already been taken"], False),
    ("Address for this topic has already been taken", False),
    ([{"message": 3}], True),
    ([["Invalid address"]], True),
])
def test_shopify_webhook_subscription_reads_user_errors_of_any_shape(
        user_errors, refused) -> None:
    from connectors.shopify import ShopifyConnector

    answer = {"data": {"webhookSubscriptionCreate": {"webhookSubscription": "gid://x",
                                                     "userErrors": user_errors}}}
    shop = _shopify(*[answer] * len(ShopifyConnector.meta.webhook_topics))
    if refused:
        with pytest.raises(ConnectorError, match="Shopify refused the"):
            shop.subscribe_webhooks("https://sk.example/webhooks/shopify/shp_1")
    else:
        assert set(shop.subscribe_webhooks("https://sk.example/webhooks/shopify/shp_1")) \
            == {""}


@pytest.mark.parametrize("answer", [
    None,
    "created",
    {"webhookSubscription": None, "userErrors": []},
    {"webhookSubscription": {"id": ["gid://x"]}},
])
def test_a_shopify_webhook_subscription_nobody_confirmed_is_transient(answer) -> None:
    """Neither userErrors nor a subscription id: not a subscription Shopify confirmed.
    It returned "" as if subscribed; a retry of one that was made answers "taken"."""
    from connectors.shopify import ShopifyConnector

    shop = _shopify(*[{"data": {"webhookSubscriptionCreate": answer}}]
                    * len(ShopifyConnector.meta.webhook_topics))
    with pytest.raises(TransientError, match=r"confirmed no \w+/?\w* subscription"):
        shop.subscribe_webhooks("https://sk.example/webhooks/shopify/shp_1")


@pytest.mark.parametrize("run", [
    {"bulkOperation": None, "userErrors": "Bulk operations limit reached"},
    {"bulkOperation": None, "userErrors": []},
    {"bulkOperation": {"id": ["gid://x"]}},
    ["started"],
])
def test_a_shopify_bulk_run_answer_of_an_unexpected_shape_is_a_connector_error(run) -> None:
    from connectors.shopify import bulk

    none_running = {"data": {"bulkOperations": {"nodes": []}}}
    client = ShopifyGraphQL(_Answers(none_running, {"data": {"bulkOperationRunQuery": run}},
                                     none_running), "x.myshopify.com", "token")
    with pytest.raises(ConnectorError, match="bulk operation"):
        bulk._start(client)


@pytest.mark.parametrize("errors", [
    ["Code exists."],
    "Code exists.",
    [{"code": ["ALREADY_EXISTS"], "field": "addCodes", "message": "Code exists."}],
    [{"code": "ALREADY_EXISTS"}, None],
])
def test_a_saleor_voucher_refusal_of_an_unexpected_shape_is_invalid_payload(errors) -> None:
    """create_discount read each errors entry's code with .get and put it in a set: an
    entry that was no object, or a code that was a list, raised AttributeError or
    TypeError instead of the platform's refusal."""
    saleor = _saleor({"data": {"voucherCreate": {"voucher": None, "errors": errors}}})
    with pytest.raises(InvalidPayload, match="Saleor refused voucherCreate"):
        saleor.create_discount(_spec())


@pytest.mark.parametrize("answers", [
    [{"data": {"voucherCreate": "created"}}],
    [{"data": {"voucherCreate": {"voucher": "Vm91Y2hlcjox", "errors": []}}}],
    [{"data": {"voucherCreate": {"voucher": {"id": ["Vm91Y2hlcjox"]}, "errors": []}}}],
])
def test_a_saleor_voucher_answer_of_an_unexpected_shape_is_transient(answers) -> None:
    """No ``errors`` and no readable voucher: a proxy's answer more likely than Saleor's,
    retried as Shopify's garbled discount answer is, not Saleor's refusal."""
    with pytest.raises(TransientError):
        _saleor(*answers).create_discount(_spec())


_CREATED = {"data": {"voucherCreate": {"voucher": {"id": "Vm91Y2hlcjox"}, "errors": []}}}


@pytest.mark.parametrize("listed", [
    {"voucherChannelListingUpdate": "updated"},
    {"voucherChannelListingUpdate": ["updated"]},
    {"voucherChannelListingUpdate": None},
    {},
])
def test_a_saleor_channel_listing_answer_of_an_unexpected_shape_is_transient(listed) -> None:
    """The voucher exists once ``voucherCreate`` answered: a second answer of no readable
    shape is retried (the retry adopts the voucher), not taken for Saleor's refusal."""
    with pytest.raises(TransientError, match="voucherChannelListingUpdate"):
        _saleor(_CREATED, {"data": listed}).create_discount(_spec())


def test_a_saleor_channel_listing_refusal_is_still_invalid_payload() -> None:
    refusal = {"data": {"voucherChannelListingUpdate": {"voucher": None, "errors": [
        {"field": "addChannels", "code": "INVALID", "message": "Not sold here."}]}}}
    with pytest.raises(InvalidPayload, match="Saleor refused voucherChannelListingUpdate"):
        _saleor(_CREATED, refusal).create_discount(_spec())


def test_a_saleor_code_taken_by_a_voucher_it_cannot_show_is_retried() -> None:
    """Saleor's own ``errors`` (the code exists) with no voucher of that code to adopt:
    retried, as Shopify's TAKEN code with no discount found is, not refused for good."""
    answers = [{"data": {"voucherCreate": {"errors": [{"code": "ALREADY_EXISTS"}]}}},
               {"data": {"vouchers": {"edges": ["x", {"node": "y"}, {"node": {
                   "id": ["Vm91Y2hlcjox"], "codes": {"edges": [
                       {"node": {"code": "SK-XYZ"}}]}}}]}}}]
    with pytest.raises(TransientError, match="taken, but no voucher"):
        _saleor(*answers).create_discount(_spec())


# -- Vendure ------------------------------------------------------------------------------
@pytest.mark.parametrize("data", [["shop"], "shop", 3, True])
def test_a_vendure_answer_whose_data_is_no_object_is_transient(data) -> None:
    """Callers read ``data`` with ``.get``: a list (a proxy's, a broken server's) raised
    AttributeError, a crash instead of a connector error."""
    from connectors.vendure.client import AdminClient

    client = AdminClient(_Session({"data": data}), "https://vendure.example/admin-api",
                         token="t")
    with pytest.raises(TransientError, match="unexpected answer"):
        client.execute("query Shop { shop { id } }")


def test_a_vendure_answer_without_data_is_still_read_as_empty() -> None:
    from connectors.vendure.client import AdminClient

    client = AdminClient(_Session({"data": None}), "https://vendure.example/admin-api",
                         token="t")
    assert client.execute("query Shop { shop { id } }") == {}


# -- Saleor webhook refresh ---------------------------------------------------------------
HOOK = {"name": "shopkeeper-orders", "targetUrl": "https://sk.example/webhooks/saleor/1",
        "query": "subscription { event { ... on OrderCreated { order { id } } } }",
        "asyncEvents": ["ORDER_CREATED"], "isActive": True}


@pytest.mark.parametrize("app", [
    None,
    ["webhooks"],
    {},
    {"webhooks": None},
    {"webhooks": "shopkeeper-orders"},
    {"webhooks": {"name": "shopkeeper-orders"}},
    {"webhooks": ["shopkeeper-orders"]},
])
def test_a_saleor_webhook_listing_of_an_unexpected_shape_is_transient(app) -> None:
    """Read as "no webhooks there", every webhook was created again beside the old one
    (events then came twice); a list ``app`` raised AttributeError."""
    shop = _saleor({"data": {"app": app}})
    with pytest.raises(TransientError, match="listed no webhooks"):
        shop.refresh_webhooks([HOOK])
    assert shop.session.bodies == []  # the listing only: nothing created


@pytest.mark.parametrize("hook_id", [None, "", ["V2ViaG9vazox"], 3])
def test_a_saleor_webhook_to_update_listed_without_its_id_is_transient(hook_id) -> None:
    """``have["id"]`` raised KeyError (a crash), or sent a null id to ``webhookUpdate``."""
    listed = {"name": HOOK["name"], "targetUrl": "https://old.example/", "isActive": True,
              "subscriptionQuery": HOOK["query"],
              "asyncEvents": [{"eventType": "ORDER_CREATED"}]}
    if hook_id is not None:
        listed["id"] = hook_id
    shop = _saleor({"data": {"app": {"webhooks": [listed]}}})
    with pytest.raises(TransientError, match="without its id"):
        shop.refresh_webhooks([HOOK])


def test_a_saleor_webhook_listing_that_is_empty_creates_the_webhooks() -> None:
    created = {"data": {"webhookCreate": {"webhook": {"id": "V2ViaG9vazox"}, "errors": []}}}
    shop = _saleor({"data": {"app": {"webhooks": []}}}, created)
    assert shop.refresh_webhooks([HOOK])["created"] == ["shopkeeper-orders"]
