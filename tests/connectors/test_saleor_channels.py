"""Which Saleor channel a shop's prices, availability and vouchers come from (pure)."""

from __future__ import annotations

from connectors.saleor.channels import Channel, choose_channel, parse_channels

WHOLESALE = Channel("Q2hhbm5lbDoz", "a-wholesale", "Wholesale", "EUR")
DEFAULT = Channel("Q2hhbm5lbDox", "default-channel", "Default channel", "USD")
PLN = Channel("Q2hhbm5lbDoy", "channel-pln", "Channel-PLN", "PLN")


def test_the_merchants_channel_wins_while_the_shop_has_it() -> None:
    assert choose_channel([WHOLESALE, DEFAULT, PLN], "channel-pln") == PLN
    assert choose_channel([WHOLESALE, DEFAULT], "channel-pln") == DEFAULT  # deleted since


def test_default_is_saleors_own_channel_then_the_first_active_one() -> None:
    assert choose_channel([WHOLESALE, DEFAULT, PLN]) == DEFAULT
    closed = Channel(DEFAULT.id, DEFAULT.slug, active=False)
    assert choose_channel([closed, PLN, WHOLESALE]) == PLN
    assert choose_channel([closed]) == closed  # better than none: vouchers need a channel
    assert choose_channel([]) is None


def test_channels_are_read_leniently() -> None:
    raw = [{"id": "Q2hhbm5lbDox", "slug": "default-channel"},  # an older query's shape
           {"id": "Q2hhbm5lbDoy", "slug": "channel-pln", "name": "Channel-PLN",
            "currencyCode": "PLN", "isActive": False},
           {"id": None, "slug": "broken"}, "junk"]
    assert parse_channels(raw) == [
        Channel("Q2hhbm5lbDox", "default-channel", "default-channel", None, True),
        Channel("Q2hhbm5lbDoy", "channel-pln", "Channel-PLN", "PLN", False)]
    assert parse_channels(None) == []
