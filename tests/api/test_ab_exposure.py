"""The A/B dashboard counts shoppers on the same terms in both arms."""

from __future__ import annotations

from datetime import timedelta

from plugin.admin import stats
from plugin.api.service import in_holdout
from plugin.extensions import db
from plugin.models.types import utcnow
from tests.api.conftest import add_order, customer_headers


def _one_in_each_arm(shop) -> tuple[str, str]:
    treated = next(f"t{k}" for k in range(1000) if not in_holdout(shop, f"t{k}"))
    control = next(f"h{k}" for k in range(1000) if in_holdout(shop, f"h{k}"))
    return treated, control


def test_a_reorder_request_counts_a_repeat_buyer_in_neither_arm_or_in_both(api, store):
    store.settings = {**store.settings, "holdout_share": 0.5}
    db.session.commit()
    from plugin.api.access import forget_shops

    forget_shops()
    treated, control = _one_in_each_arm(store)
    for customer in (treated, control):  # the same repeat buyer, once in each arm
        for k in range(2):
            add_order(store.id, customer, f"{customer}-o{k}", ["p1"],
                      utcnow() - timedelta(days=10 - k))
        r = api.recs("reorder", headers=customer_headers(store, customer), n=4)
        assert r.status_code == 200
    ab = stats.recommendations_ab(store.id)
    # The treated buyer is shown "the usual?", the control buyer is not (no list at all):
    # counting exposure by what was shown would put repeat buyers in treatment only.
    assert ab["treatment"]["shoppers"] == ab["control"]["shoppers"]
    for customer in (treated, control):  # a list both arms are shown: both count
        assert api.recs("for_you", headers=customer_headers(store, customer)).status_code == 200
    ab = stats.recommendations_ab(store.id)
    assert (ab["treatment"]["shoppers"], ab["control"]["shoppers"]) == (1, 1)
