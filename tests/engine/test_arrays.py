import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from plugin.engine.arrays import isin, lookup, unique_pairs, unique_values

# deadline=None: these check results, not speed; a GC pause or a busy CI machine that
# makes one example slower than Hypothesis' 200 ms default fails it as "Unreliable test timings".
ints = st.lists(st.integers(0, 10**12), max_size=200)


@settings(deadline=None)
@given(ints)
def test_unique_values_matches_numpy(values):
    a = np.asarray(values, np.int64)
    assert np.array_equal(unique_values(a), np.unique(a))


@settings(deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)), max_size=200))
def test_unique_pairs_matches_numpy_axis_unique(pairs):
    a = np.asarray([p[0] for p in pairs], np.int64)
    b = np.asarray([p[1] for p in pairs], np.int64)
    got = unique_pairs(a, b)
    want = np.unique(np.stack([a, b]), axis=1) if len(a) else np.zeros((2, 0), np.int64)
    assert np.array_equal(np.stack(got), want)


@settings(deadline=None)
@given(st.lists(st.integers(-50, 50), max_size=100), st.lists(st.integers(-50, 50), max_size=100))
def test_isin_matches_numpy(values, keys):
    v, k = np.asarray(values, np.int64), np.asarray(keys, np.int64)
    assert np.array_equal(isin(v, k), np.isin(v, k))


def test_isin_keeps_the_shape_of_values():
    got = isin(np.array([[1, 2], [3, 4]]), np.array([4, 1]))
    assert got.tolist() == [[True, False], [False, True]]


@settings(deadline=None)
@given(st.lists(st.integers(-50, 50), max_size=100), st.lists(st.integers(-50, 50), max_size=100))
def test_lookup_finds_each_value_or_answers_minus_one(values, keys):
    k = np.unique(np.asarray(keys, np.int64))
    v = np.asarray(values, np.int64)
    pos = lookup(k, v)
    assert [int(k[p]) if p >= 0 else None for p in pos] == \
        [x if x in set(k.tolist()) else None for x in values]
