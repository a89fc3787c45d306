"""Interactions: id indexing and per-user event slices."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from plugin.engine.data import Interactions

# deadline=None: these check results, not speed; a GC pause or a busy CI machine that
# makes one example slower than Hypothesis' 200 ms default fails it as "Unreliable test timings".
ids = st.lists(st.tuples(st.sampled_from(["u1", "u10", "u2", "u3"]),
                         st.sampled_from(["a", "b", "c", "d", "e"])), min_size=1, max_size=40)


@settings(deadline=None)
@given(ids)
def test_ids_are_numpy_unique_codes(rows):
    users, items = zip(*rows, strict=True)
    x = Interactions.from_arrays(users, items, list(range(len(rows))))
    assert x.user_ids.tolist() == np.unique(users).tolist()
    assert x.item_ids.tolist() == np.unique(items).tolist()
    # every event keeps its own customer and item
    pairs = sorted(zip(x.user_ids[x.user], x.item_ids[x.item], strict=True))
    assert pairs == sorted(rows)


@settings(deadline=None)
@given(ids, st.sampled_from(["u1", "u10", "u2", "u3"]))
def test_events_of_agrees_with_user_ptr_also_for_users_left_without_events(rows, dropped):
    users, items = zip(*rows, strict=True)
    x = Interactions.from_arrays(users, items, list(range(len(rows))))
    x = x.subset(x.user_ids[x.user] != dropped)  # id maps are kept: a user may have none
    ptr = x.user_ptr
    for u in range(x.n_users):
        s = x.events_of(u)
        assert (s.start, s.stop) == (ptr[u], ptr[u + 1])
        assert (x.user[s] == u).all()
        assert s.stop - s.start == int((x.user == u).sum())


def test_blank_titles_and_categories_read_as_none():
    """A title or category of spaces would make reasons like "similar to  " or "trending
    in  "; stripped, a blank one is none, and the item's id or a plainer reason stands in."""
    x = Interactions.from_arrays(
        ["u1", "u1", "u2"], ["a", "b", "a"], [0, 1, 2],
        catalog={"a": {"title": "  ", "category": " ", "tags": ["", " x "]},
                 "b": {"title": " Tea ", "categories": [" ", "Drinks "]}})
    a, b = x.item_index("a"), x.item_index("b")
    assert x.catalog.title[a] == "" and x.catalog.title[b] == "Tea"
    assert x.catalog.categories[a] == () and x.catalog.primary_category(b) == "Drinks"
    assert x.catalog.tags[a] == ("x",)
