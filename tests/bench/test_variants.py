"""bench/variants.py: the reshaped datasets keep baskets whole and follow the CLI contract."""

from __future__ import annotations

from collections import defaultdict

from plugin.engine.evaluate import METRICS


def _rows():
    rows = []
    for customer in ("7", "8"):
        for day in range(1, 29):
            for month in ("01", "02"):
                for item in ("milk", "bread"):
                    rows.append({"customer_id": customer, "item_id": item,
                                 "timestamp": f"2017-{month}-{day:02d} 10:1{day % 10}:00",
                                 "basket_id": f"{customer}{month}{day}", "quantity": "1",
                                 "price": "1.0"})
    return rows


def test_customer_days_keep_only_the_contract_columns_and_the_date(variants):
    out = list(variants.customer_days(_rows()[:2]))
    assert out == [["7", "milk", "2017-01-01"], ["7", "bread", "2017-01-01"]]


def test_short_histories_split_shoppers_by_month_and_drop_whole_days(variants):
    out = list(variants.short_histories(_rows(), keep=0.5, seed=1))
    items_per_basket = defaultdict(set)
    for shopper, item, day in out:
        _, month = shopper.split("-", 1)
        assert month == day[:7]  # a shopper is one customer-month
        items_per_basket[(shopper, day)].add(item)
    # a kept day keeps its whole basket; about half of the 2 x 2 x 28 shopper-days survive
    assert all(items == {"milk", "bread"} for items in items_per_basket.values())
    assert 35 <= len(items_per_basket) <= 80
    assert {s for s, _, _ in out} == {"7-2017-01", "7-2017-02", "8-2017-01", "8-2017-02"}
    # seeded: the same days again, another seed other days
    assert out == list(variants.short_histories(_rows(), keep=0.5, seed=1))
    assert out != list(variants.short_histories(_rows(), keep=0.5, seed=2))


def test_render_compares_with_the_best_baseline_and_itemknn_discovery(variants):
    def model(ndcg, explore):
        return dict.fromkeys(METRICS, 1.0) | {"ndcg@k": ndcg, "recall_explore@k": explore}

    report = {"split": "temporal", "users": 1234, "models": {
        "shopkeeper": model(0.33, 0.02), "g-pop": model(0.1, 0.03),
        "p-topfreq": model(0.3, 0.0), "itemknn": model(0.2, 0.01), "als": model(0.25, 0.0)}}
    row = variants.render({"v": report}).splitlines()[-1]
    assert row.startswith("| v | temporal | 1,234 | 0.3300 | p-topfreq 0.3000 | 1.10x |")
    report["comparison"] = {"ratio_ci95": [1.02, 1.19]}
    assert "| 1.10x (1.02-1.19) |" in variants.render({"v": report})
    assert "| 0.0200 (0.0100) |" in row
