"""Tests of fastmf.split: sizes, partitions, shared id maps, determinism, per-user oracles, cold
policies and parameter errors, on synthetic data built here plus a real-data check on ml-100k."""

import datetime
from collections import Counter

import numpy as np
import pytest

import fastmf
from fastmf import split
from fastmf.data import Metadata


# ---------------------------------------------------------------------- helpers
def make_ds(n_users=40, n_items=30, n=500, seed=0, timestamps=True, tie_every=None, dtype=None):
    """Unique random (user, item) pairs with raw ids offset from the dense indices (users 1000+,
    items "i<k>" strings), ratings 1..5 and optional timestamps (``tie_every`` makes groups of ties)."""
    rng = np.random.default_rng(seed)
    keys = rng.choice(n_users * n_items, size=n, replace=False)
    users = 1000 + keys // n_items
    items = np.array([f"i{k}" for k in keys % n_items])
    ratings = rng.integers(1, 6, size=n).astype(float)
    ts = None
    if timestamps:
        ts = rng.permutation(n) * 10 + 1_000_000
        if tie_every:
            ts = (ts // (10 * tie_every)) * 10
    return fastmf.Ratings.from_arrays(users, items, ratings, ts, dtype=dtype)


def pairs(ds):
    u, i, _, _ = ds.to_arrays()
    return list(zip(u.tolist(), i.tolist()))


def records(ds):
    """(user, item) -> (rating, timestamp) with raw ids."""
    u, i, r, t = ds.to_arrays()
    t = [None] * len(u) if t is None else t.tolist()
    return {(a, b): (c, d) for a, b, c, d in zip(u.tolist(), i.tolist(), r.tolist(), t)}


def assert_partition(ds, train, test):
    """train and test are disjoint, their union is ds, values travel with their pair, maps shared."""
    assert train.user_map is ds.user_map and test.user_map is ds.user_map
    assert train.item_map is ds.item_map and test.item_map is ds.item_map
    assert len(train) + len(test) == len(ds)
    tr, te = set(pairs(train)), set(pairs(test))
    assert len(tr) == len(train) and len(te) == len(test)
    assert tr.isdisjoint(te)
    assert tr | te == set(pairs(ds))
    full = records(ds)
    assert {**records(train), **records(test)} == full


def same_split(a, b):
    return pairs(a[0]) == pairs(b[0]) and pairs(a[1]) == pairs(b[1])


def round_half_up(x):
    return int(np.floor(x + 0.5))


# ---------------------------------------------------------------------- random_split
@pytest.mark.parametrize("test_size, n, expected", [
    (0.2, 500, 100), (0.25, 6, 2), (0.3, 5, 2), (0.1, 24, 2), (0.5, 7, 4), (37, 500, 37), (1, 500, 1),
    (499, 500, 499),
])
def test_random_split_sizes_and_partition(test_size, n, expected):
    ds = make_ds(n=n)
    train, test = split.random_split(ds, test_size=test_size, random_state=3)
    assert len(test) == expected
    assert len(train) == n - expected
    assert_partition(ds, train, test)


def test_random_split_keeps_scale_metadata_dtype_and_order():
    ds = make_ds(dtype="float32")
    info = Metadata(ds.item_map.ids, {"title": np.array([f"T{k}" for k in ds.item_map.ids])})
    ds = fastmf.Ratings(ds.user_index, ds.item_index, ds.rating, ds.timestamp, user_map=ds.user_map,
                        item_map=ds.item_map, rating_scale=(1, 5), item_info=info, name="syn")
    train, test = split.random_split(ds, random_state=0)
    for side in (train, test):
        assert side.item_info is info and side.user_info is None
        assert side.rating_scale == (1.0, 5.0) and side.name == "syn"
        assert side.rating.dtype == np.float32 and side.timestamp.dtype == np.int64
    # each side keeps the input's relative order
    pos = {p: k for k, p in enumerate(pairs(ds))}
    for side in (train, test):
        idx = [pos[p] for p in pairs(side)]
        assert idx == sorted(idx)


def test_random_split_determinism_and_generator():
    ds = make_ds()
    a = split.random_split(ds, 0.2, random_state=7)
    b = split.random_split(ds, 0.2, random_state=7)
    c = split.random_split(ds, 0.2, random_state=8)
    assert same_split(a, b)
    assert set(pairs(a[1])) != set(pairs(c[1]))
    g1 = split.random_split(ds, 0.2, random_state=np.random.default_rng(7))
    assert same_split(a, g1)  # default_rng(7) is what the int 7 means
    # a Generator is advanced, not reseeded: two calls with one Generator differ
    rng = np.random.default_rng(1)
    d1 = split.random_split(ds, 0.2, random_state=rng)
    d2 = split.random_split(ds, 0.2, random_state=rng)
    assert set(pairs(d1[1])) != set(pairs(d2[1]))


def test_random_split_is_uniform():
    # each of 10 ratings lands in test with probability 3/10 (600 draws; 5 sigma ~ 0.094)
    ds = fastmf.Ratings.from_arrays(np.arange(10), np.arange(10), np.ones(10))
    hits = Counter()
    for seed in range(600):
        hits.update(u for u, _ in pairs(split.random_split(ds, 3, random_state=seed)[1]))
    freq = np.array([hits[u] for u in range(10)]) / 600
    assert np.all(np.abs(freq - 0.3) < 0.094)


# ---------------------------------------------------------------------- kfold
@pytest.mark.parametrize("n, k", [(500, 5), (503, 5), (37, 2), (12, 12)])
def test_kfold_covers_each_rating_once(n, k):
    ds = make_ds(n=n)
    folds = list(split.kfold(ds, n_splits=k, random_state=0))
    assert len(folds) == k
    sizes = [len(te) for _, te in folds]
    assert sizes == [n // k + 1] * (n % k) + [n // k] * (k - n % k)
    all_test = Counter(p for _, te in folds for p in pairs(te))
    assert set(all_test) == set(pairs(ds)) and set(all_test.values()) == {1}
    for train, test in folds:
        assert_partition(ds, train, test)


def test_kfold_no_shuffle_is_contiguous_blocks_and_deterministic():
    ds = make_ds(n=23)
    folds = list(split.kfold(ds, n_splits=4, shuffle=False))
    p = pairs(ds)
    bounds = [0, 6, 12, 18, 23]
    for f, (_, te) in enumerate(folds):
        assert pairs(te) == p[bounds[f]:bounds[f + 1]]
    a = list(split.kfold(ds, 4, random_state=5))
    b = list(split.kfold(ds, 4, random_state=5))
    c = list(split.kfold(ds, 4, random_state=6))
    assert all(same_split(x, y) for x, y in zip(a, b))
    assert not all(same_split(x, y) for x, y in zip(a, c))


def test_kfold_validates_at_call_time():
    ds = make_ds(n=10)
    with pytest.raises(ValueError, match=r"kfold: n_splits must be an int in \[2, inf\), got 1"):
        split.kfold(ds, n_splits=1)  # no iteration needed
    with pytest.raises(ValueError, match=r"kfold: n_splits=11 exceeds the number of ratings \(10\)"):
        split.kfold(ds, n_splits=11)


# ---------------------------------------------------------------------- temporal_split
def test_temporal_split_fraction_without_ties():
    ds = make_ds(n=500)
    train, test = split.temporal_split(ds, test_size=0.2)
    assert len(test) == 100
    assert train.timestamp.max() < test.timestamp.min()
    assert_partition(ds, train, test)
    # the 100 latest timestamps are exactly the test ones
    assert np.array_equal(np.sort(test.timestamp), np.sort(ds.timestamp)[-100:])
    train, test = split.temporal_split(ds, test_size=33)
    assert len(test) == 33 and train.timestamp.max() < test.timestamp.min()


def test_temporal_split_ties_go_to_test_together():
    ts = np.array([1, 2, 2, 3, 3, 3, 3, 4, 5, 6])
    ds = fastmf.Ratings.from_arrays(np.arange(10), np.arange(10), np.ones(10), ts)
    # 0.3 -> 3 latest ratings: 6, 5, 4 -> no tie at t* = 4
    train, test = split.temporal_split(ds, 0.3)
    assert sorted(test.timestamp.tolist()) == [4, 5, 6]
    # 0.4 -> 4th latest has timestamp 3, shared by four ratings: all of them go to test (7 > 4)
    train, test = split.temporal_split(ds, 0.4)
    assert sorted(test.timestamp.tolist()) == [3, 3, 3, 3, 4, 5, 6]
    assert sorted(train.timestamp.tolist()) == [1, 2, 2]
    assert_partition(ds, train, test)


def test_temporal_split_cutoff_forms():
    ds = make_ds(n=200)
    ts = ds.timestamp
    cut = int(np.median(ts))
    train, test = split.temporal_split(ds, cutoff=cut)
    assert len(test) == int(np.count_nonzero(ts >= cut))
    assert test.timestamp.min() >= cut > train.timestamp.max()
    assert_partition(ds, train, test)
    # test_size is ignored when a cutoff is given
    assert same_split((train, test), split.temporal_split(ds, test_size=0.9, cutoff=cut))
    assert same_split((train, test), split.temporal_split(ds, cutoff=cut - 0.5))
    as_dt64 = np.datetime64(cut, "s")
    assert same_split((train, test), split.temporal_split(ds, cutoff=as_dt64))
    naive = datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=cut)
    aware = datetime.datetime.fromtimestamp(cut, tz=datetime.timezone.utc)
    assert same_split((train, test), split.temporal_split(ds, cutoff=naive))
    assert same_split((train, test), split.temporal_split(ds, cutoff=aware))


def test_temporal_split_empty_sides_and_missing_timestamps():
    ds = make_ds(n=50)
    with pytest.raises(ValueError, match=r"temporal_split: the split leaves test empty \(cutoff="):
        split.temporal_split(ds, cutoff=int(ds.timestamp.max()) + 1)
    with pytest.raises(ValueError, match="temporal_split: the split leaves train empty"):
        split.temporal_split(ds, cutoff=int(ds.timestamp.min()))
    same = fastmf.Ratings.from_arrays(np.arange(5), np.arange(5), np.ones(5), np.full(5, 9))
    with pytest.raises(ValueError, match=r"leaves train empty \(all ratings share timestamps >= 9"):
        split.temporal_split(same, 0.2)
    no_ts = make_ds(n=50, timestamps=False)
    with pytest.raises(ValueError, match="temporal_split: needs timestamps, but this Ratings has none"):
        split.temporal_split(no_ts)


# ---------------------------------------------------------------------- leave_last_out
def leave_last_oracle(ds, k, min_train, by="timestamp"):
    """Set of test pairs by a per-user Python loop: sort by (timestamp, position), take the last k."""
    u, i, _, t = ds.to_arrays()
    per_user = {}
    for pos, (a, b) in enumerate(zip(u.tolist(), i.tolist())):
        key = (int(t[pos]), pos) if by == "timestamp" else (pos,)
        per_user.setdefault(a, []).append((key, b))
    out = set()
    for a, rows in per_user.items():
        if len(rows) >= k + min_train:
            out.update((a, b) for _, b in sorted(rows)[-k:])
    return out


@pytest.mark.parametrize("k, min_train, tie_every", [(1, 1, None), (3, 1, None), (2, 4, None),
                                                     (1, 1, 7), (4, 0, 25)])
def test_leave_last_out_matches_oracle(k, min_train, tie_every):
    ds = make_ds(n=400, tie_every=tie_every)
    train, test = split.leave_last_out(ds, k=k, min_train=min_train)
    assert set(pairs(test)) == leave_last_oracle(ds, k, min_train)
    assert_partition(ds, train, test)
    counts = Counter(u for u, _ in pairs(ds))
    test_counts = Counter(u for u, _ in pairs(test))
    for user, c in counts.items():
        assert test_counts.get(user, 0) == (k if c >= k + min_train else 0)
    # every test rating of a user is at least as late as each of that user's train ratings
    last_train = {}
    for (user, _), (_, t) in records(train).items():
        last_train[user] = max(last_train.get(user, t), t)
    for (user, _), (_, t) in records(test).items():
        assert t >= last_train.get(user, t)


def test_leave_last_out_tie_break_and_small_users():
    # user 1: timestamps 5, 9, 9 -> the later position (item "c") is the latest; user 2 has 1 rating
    users = [1, 1, 1, 2]
    items = ["a", "b", "c", "a"]
    ts = [5, 9, 9, 3]
    ds = fastmf.Ratings.from_arrays(users, items, [1, 2, 3, 4], ts)
    train, test = split.leave_last_out(ds, k=1)
    assert pairs(test) == [(1, "c")]
    assert sorted(pairs(train)) == [(1, "a"), (1, "b"), (2, "a")]
    train, test = split.leave_last_out(ds, k=2)
    assert sorted(pairs(test)) == [(1, "b"), (1, "c")]
    # min_train=0 lets user 2 (1 rating, k=1) go entirely to test
    train, test = split.leave_last_out(ds, k=1, min_train=0)
    assert sorted(pairs(test)) == [(1, "c"), (2, "a")]


def test_leave_last_out_by_position_and_missing_timestamps():
    ds = make_ds(n=300, timestamps=False)
    with pytest.raises(ValueError, match="leave_last_out: needs timestamps.*by='position'"):
        split.leave_last_out(ds)
    train, test = split.leave_last_out(ds, k=2, by="position")
    assert set(pairs(test)) == leave_last_oracle(ds, 2, 1, by="position")
    assert_partition(ds, train, test)


def test_leave_last_out_huge_timestamp_span_uses_lexsort_path():
    # user * span would overflow int64: the fallback must give the same answer as the oracle
    rng = np.random.default_rng(2)
    n = 60
    users = rng.integers(0, 5, n)
    items = np.arange(n)
    ts = rng.choice([-(2**62), -5, 0, 7, 2**62], size=n)
    ds = fastmf.Ratings.from_arrays(users, items, np.ones(n), ts)
    train, test = split.leave_last_out(ds, k=3)
    assert set(pairs(test)) == leave_last_oracle(ds, 3, 1)


def test_leave_last_out_no_eligible_user():
    ds = fastmf.Ratings.from_arrays([1, 2, 3], [1, 2, 3], [1, 1, 1], [1, 2, 3])
    with pytest.raises(ValueError, match=r"leave_last_out: the split leaves test empty.*at least 2"):
        split.leave_last_out(ds)


# ---------------------------------------------------------------------- user_holdout
@pytest.mark.parametrize("test_size, min_train", [(0.2, 1), (0.5, 1), (0.35, 3), (3, 1), (2, 0),
                                                  (0.9, 2)])
def test_user_holdout_counts_per_user(test_size, min_train):
    ds = make_ds(n_users=60, n_items=40, n=700, seed=4)
    train, test = split.user_holdout(ds, test_size=test_size, random_state=0, min_train=min_train)
    assert_partition(ds, train, test)
    counts = Counter(u for u, _ in pairs(ds))
    n_test = Counter(u for u, _ in pairs(test))
    n_train = Counter(u for u, _ in pairs(train))
    for user, c in counts.items():
        wanted = test_size if isinstance(test_size, int) else round_half_up(test_size * c)
        expected = min(wanted, max(c - min_train, 0))
        assert n_test.get(user, 0) == expected, (user, c)
        assert n_train.get(user, 0) >= min(c, min_train)
        assert n_train.get(user, 0) + n_test.get(user, 0) == c


def test_user_holdout_rounding_half_up():
    # users with 2, 5 and 10 ratings at 0.25: 0.5 -> 1, 1.25 -> 1, 2.5 -> 3
    users = [0] * 2 + [1] * 5 + [2] * 10
    ds = fastmf.Ratings.from_arrays(users, np.arange(17), np.ones(17))
    _, test = split.user_holdout(ds, 0.25, random_state=0)
    assert Counter(u for u, _ in pairs(test)) == {0: 1, 1: 1, 2: 3}


def test_user_holdout_determinism_and_uniformity():
    ds = make_ds(n=400)
    a = split.user_holdout(ds, 0.3, random_state=11)
    b = split.user_holdout(ds, 0.3, random_state=11)
    c = split.user_holdout(ds, 0.3, random_state=12)
    assert same_split(a, b)
    assert set(pairs(a[1])) != set(pairs(c[1]))
    # one user with 10 ratings, 3 to test: each rating in test with probability 0.3
    one = fastmf.Ratings.from_arrays(np.zeros(10, int), np.arange(10), np.ones(10))
    hits = Counter()
    for seed in range(600):
        hits.update(i for _, i in pairs(split.user_holdout(one, 3, random_state=seed)[1]))
    freq = np.array([hits[i] for i in range(10)]) / 600
    assert np.all(np.abs(freq - 0.3) < 0.094)


def test_user_holdout_nothing_to_hold_out():
    ds = fastmf.Ratings.from_arrays([1, 1, 2, 2], [1, 2, 1, 2], np.ones(4))
    with pytest.raises(ValueError, match=r"user_holdout: the split leaves test empty \(test_size=0.1"):
        split.user_holdout(ds, 0.1, random_state=0)


# ---------------------------------------------------------------------- cold policies
def cold_fixture():
    """Users 1..3 and items a..e with known cold test ratings under leave_last_out(k=1):
    test (latest per user) = (1, e) [item e only rated there: cold item], (2, b) [warm],
    (3, d) [item d rated also by 1 in train: warm]; user 4 has a single rating (stays in train)."""
    rows = [
        (1, "a", 1), (1, "d", 2), (1, "e", 3),
        (2, "a", 1), (2, "c", 2), (2, "b", 3),
        (3, "c", 1), (3, "d", 5),
        (4, "b", 1),
    ]
    u, i, t = zip(*rows)
    return fastmf.Ratings.from_arrays(list(u), list(i), np.ones(len(rows)), list(t))


def test_cold_options_on_known_case():
    ds = cold_fixture()
    train, test = split.leave_last_out(ds, cold="keep")
    assert sorted(pairs(test)) == [(1, "e"), (2, "b"), (3, "d")]
    assert_partition(ds, train, test)
    train, test = split.leave_last_out(ds, cold="drop")
    assert sorted(pairs(test)) == [(2, "b"), (3, "d")]
    assert (1, "e") not in set(pairs(train)) and len(train) + len(test) == len(ds) - 1
    train, test = split.leave_last_out(ds, cold="move")
    assert sorted(pairs(test)) == [(2, "b"), (3, "d")]
    assert (1, "e") in set(pairs(train))
    assert_partition(ds, train, test)


def test_cold_user_with_min_train_zero():
    ds = cold_fixture()
    # min_train=0, k=1: user 4's only rating goes to test; user 4 has nothing in train -> cold user
    _, test = split.leave_last_out(ds, min_train=0, cold="keep")
    assert (4, "b") in set(pairs(test))
    train, test = split.leave_last_out(ds, min_train=0, cold="move")
    assert (4, "b") in set(pairs(train)) and (4, "b") not in set(pairs(test))


@pytest.mark.parametrize("splitter", ["random", "temporal", "user_holdout", "kfold"])
def test_cold_drop_and_move_relative_to_keep(splitter):
    # sparse data so that many test ratings are cold
    ds = make_ds(n_users=80, n_items=80, n=300, seed=9)

    def run(cold):
        if splitter == "random":
            return split.random_split(ds, 0.4, random_state=1, cold=cold)
        if splitter == "temporal":
            return split.temporal_split(ds, 0.4, cold=cold)
        if splitter == "user_holdout":
            return split.user_holdout(ds, 0.5, random_state=1, min_train=0, cold=cold)
        return next(iter(split.kfold(ds, 3, random_state=1, cold=cold)))

    k_train, k_test = run("keep")
    seen_u = {u for u, _ in pairs(k_train)}
    seen_i = {i for _, i in pairs(k_train)}
    cold = {(u, i) for u, i in pairs(k_test) if u not in seen_u or i not in seen_i}
    warm = set(pairs(k_test)) - cold
    assert cold and warm  # the data really exercises both kinds
    d_train, d_test = run("drop")
    assert set(pairs(d_train)) == set(pairs(k_train)) and set(pairs(d_test)) == warm
    assert d_train.user_map is ds.user_map and d_test.item_map is ds.item_map
    m_train, m_test = run("move")
    assert set(pairs(m_train)) == set(pairs(k_train)) | cold and set(pairs(m_test)) == warm
    assert_partition(ds, m_train, m_test)
    # no test rating is cold after drop or move
    for tr, te in ((d_train, d_test), (m_train, m_test)):
        su, si = {u for u, _ in pairs(tr)}, {i for _, i in pairs(tr)}
        assert all(u in su and i in si for u, i in pairs(te))


def test_cold_can_empty_test():
    # every test rating is cold: each user and item appears once
    ds = fastmf.Ratings.from_arrays(np.arange(20), np.arange(20), np.ones(20))
    with pytest.raises(ValueError, match="leaves test empty after cold='drop' removed"):
        split.random_split(ds, 0.2, random_state=0, cold="drop")
    folds = split.kfold(ds, 4, random_state=0, cold="move")
    with pytest.raises(ValueError, match=r"leaves test empty after cold='move'.*\(fold 0 of 4\)"):
        next(folds)


# ---------------------------------------------------------------------- bad parameters
DS = make_ds(n=20)


@pytest.mark.parametrize("call, match", [
    (lambda: split.random_split(DS, test_size=0), r"random_split: test_size must be a finite number "
                                                  r"in \(0, 1\) or an int in \[1, inf\), got 0"),
    (lambda: split.random_split(DS, test_size=1.0), r"test_size must be .* got 1\.0"),
    (lambda: split.random_split(DS, test_size=-0.2), r"test_size must be .* got -0\.2"),
    (lambda: split.random_split(DS, test_size=20), r"test_size=20 must be smaller than the number of "
                                                   r"ratings \(20\)"),
    (lambda: split.random_split(DS, test_size=25), r"test_size=25 must be smaller"),
    (lambda: split.random_split(DS, test_size=0.01), r"test_size=0\.01 of 20 ratings rounds to 0 test "
                                                     r"ratings, leaving test empty"),
    (lambda: split.random_split(DS, test_size=0.99), r"rounds to 20 test ratings, leaving train empty"),
    (lambda: split.random_split(DS, test_size=True), r"test_size must be .* got True"),
    (lambda: split.random_split(DS, test_size="0.2"), r"test_size must be .* got '0\.2'"),
    (lambda: split.random_split(DS, test_size=float("nan")), r"test_size must be .* got nan"),
    (lambda: split.random_split(DS, random_state=-1), r"random_split: random_state must be None, a "
                                                      r"non-negative int or a numpy.random.Generator"),
    (lambda: split.random_split(DS, random_state=1.5), r"random_state must be None"),
    (lambda: split.random_split(DS, cold="warm"), r"random_split: cold must be one of 'keep', 'drop', "
                                                  r"'move', got 'warm'"),
    (lambda: split.random_split([1, 2, 3]), r"random_split: ds must be a fastmf.Ratings, got list"),
    (lambda: split.random_split(DS.subset([0])), r"ds must hold at least 2 ratings to split, got 1"),
    (lambda: split.kfold(DS, n_splits=1), r"kfold: n_splits must be an int in \[2, inf\), got 1"),
    (lambda: split.kfold(DS, n_splits=2.0), r"n_splits must be an int in \[2, inf\), got 2\.0"),
    (lambda: split.kfold(DS, n_splits=21), r"n_splits=21 exceeds the number of ratings \(20\); "
                                           r"n_splits must be in \[2, 20\]"),
    (lambda: split.kfold(DS, shuffle="yes"), r"kfold: shuffle must be one of True, False, got 'yes'"),
    (lambda: split.kfold(DS, cold=None), r"kfold: cold must be one of"),
    (lambda: split.kfold(None), r"kfold: ds must be a fastmf.Ratings, got NoneType"),
    (lambda: split.temporal_split(DS, test_size=0), r"temporal_split: test_size must be"),
    (lambda: split.temporal_split(DS, test_size=21), r"temporal_split: test_size=21 must be smaller"),
    (lambda: split.temporal_split(DS, cutoff="2020"), r"temporal_split: cutoff must be a timestamp"),
    (lambda: split.temporal_split(DS, cutoff=float("inf")), r"cutoff must be a timestamp .* got inf"),
    (lambda: split.temporal_split(DS, cutoff=True), r"cutoff must be a timestamp .* got True"),
    (lambda: split.temporal_split(DS, cutoff=np.datetime64("NaT")), r"cutoff must not be NaT"),
    (lambda: split.temporal_split(DS, cold="x"), r"temporal_split: cold must be one of"),
    (lambda: split.leave_last_out(DS, k=0), r"leave_last_out: k must be an int in \[1, inf\), got 0"),
    (lambda: split.leave_last_out(DS, k=1.0), r"k must be an int in \[1, inf\), got 1\.0"),
    (lambda: split.leave_last_out(DS, min_train=-1), r"leave_last_out: min_train must be an int in "
                                                     r"\[0, inf\), got -1"),
    (lambda: split.leave_last_out(DS, by="time"), r"leave_last_out: by must be one of 'timestamp', "
                                                  r"'position', got 'time'"),
    (lambda: split.leave_last_out(DS, cold="keepp"), r"leave_last_out: cold must be one of"),
    (lambda: split.user_holdout(DS, test_size=0), r"user_holdout: test_size must be"),
    (lambda: split.user_holdout(DS, test_size=1.5), r"user_holdout: test_size must be .* got 1\.5"),
    (lambda: split.user_holdout(DS, min_train=-2), r"user_holdout: min_train must be an int in "
                                                   r"\[0, inf\), got -2"),
    (lambda: split.user_holdout(DS, random_state="seed"), r"user_holdout: random_state must be"),
    (lambda: split.user_holdout(DS, cold=""), r"user_holdout: cold must be one of"),
])
def test_bad_parameters(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ---------------------------------------------------------------------- real data
def test_ml100k_splits(ml100k):
    ds = ml100k
    n = len(ds)
    assert n == 100_000
    train, test = split.random_split(ds, 0.2, random_state=0)
    assert (len(train), len(test)) == (80_000, 20_000)
    assert train.user_map is ds.user_map and test.item_map is ds.item_map
    assert train.item_info is ds.item_info
    folds = list(split.kfold(ds, 5, random_state=0))
    assert [len(te) for _, te in folds] == [20_000] * 5
    keys = np.concatenate([te.user_index.astype(np.int64) * ds.n_items + te.item_index for _, te in folds])
    assert np.array_equal(np.sort(keys), np.sort(ds.user_index.astype(np.int64) * ds.n_items + ds.item_index))
    train, test = split.temporal_split(ds, 0.2)
    assert len(test) >= 20_000 and train.timestamp.max() < test.timestamp.min()
    # like ua.test: exactly 10 test ratings for each of the 943 users (every user has >= 20)
    train, test = split.user_holdout(ds, test_size=10, random_state=0)
    assert len(test) == 9_430
    assert np.array_equal(np.bincount(test.user_index, minlength=943), np.full(943, 10))
    assert np.bincount(train.user_index, minlength=943).min() >= 10
    train, test = split.leave_last_out(ds, k=1)
    assert len(test) == 943
    # each test rating is its user's latest (ties allowed)
    last = np.full(ds.n_users, np.iinfo(np.int64).min)
    np.maximum.at(last, train.user_index, train.timestamp)
    assert np.all(test.timestamp >= last[test.user_index])
