"""fastmf.evaluate with a fake model of fixed scores: values worked out by hand."""

import math

import numpy as np
import pytest

import fastmf
from fastmf.data import Ratings

L3 = 1 / math.log2(3)  # discount of rank 2


class FakeModel:
    """The model interface evaluate relies on, over a fixed score matrix.

    ``scores[u, i]`` is both the predicted rating and the ranking score; -1 (unknown) users rank by
    ``fallback`` and unknown pairs predict ``default``. Seen items are the train Ratings' pairs.
    """

    predicts_ratings = True

    def __init__(self, train, scores, fallback=None, default=3.0):
        self.user_map_, self.item_map_ = train.user_map, train.item_map
        self.n_users_, self.n_items_ = train.n_users, train.n_items
        self.scores = np.asarray(scores, dtype=np.float64)
        assert self.scores.shape == (self.n_users_, self.n_items_)
        self.fallback = np.zeros(self.n_items_) if fallback is None else np.asarray(fallback, float)
        self.default = default
        self.seen = np.zeros(self.scores.shape, dtype=bool)
        self.seen[train.user_index, train.item_index] = True
        self.calls = []

    def predict_indices(self, u, i):
        u, i = np.asarray(u), np.asarray(i)
        out = np.full(u.shape, self.default)
        known = (u >= 0) & (i >= 0)
        out[known] = self.scores[u[known], i[known]]
        return out

    def recommend_indices(self, u, n, exclude_seen=True):
        u = np.asarray(u)
        self.calls.append(u.size)
        s = np.where(u[:, None] >= 0, self.scores[np.maximum(u, 0)], self.fallback[None, :])
        if exclude_seen:
            s = np.where((u[:, None] >= 0) & self.seen[np.maximum(u, 0)], -np.inf, s)
        order = np.argsort(-s, axis=1, kind="stable")[:, :n]
        top = np.take_along_axis(s, order, axis=1)
        items = np.where(np.isneginf(top), -1, order)
        pad = n - items.shape[1]
        return (np.pad(items, ((0, 0), (0, pad)), constant_values=-1),
                np.pad(top, ((0, 0), (0, pad)), constant_values=-np.inf))


def split(users, items, ratings, is_test):
    full = Ratings.from_arrays(users, items, ratings)
    mask = np.asarray(is_test)
    return full.subset(~mask), full.subset(mask)


# users 1, 2, 3 (index 0, 1, 2); items 10..14 (index 0..4)
USERS = [1, 1, 2, 3, 1, 1, 2, 2, 3]
ITEMS = [10, 14, 11, 12, 11, 12, 10, 13, 14]
RATINGS = [5, 2, 4, 3, 4, 2, 5, 1, 3]
IS_TEST = [0, 0, 0, 0, 1, 1, 1, 1, 1]
#            item 10   11   12   13   14
SCORES = [[5.0, 4.5, 1.0, 3.0, 2.0],   # user 1, seen {10, 14} -> ranking 11, 13, 12
          [4.0, 5.0, 3.5, 1.5, 2.0],   # user 2, seen {11}     -> ranking 10, 12, 14, 13
          [1.0, 2.0, 5.0, 4.0, 3.0]]   # user 3, seen {12}     -> ranking 13, 14, 11, 10
# test pairs and errors: (1,11) 4.5-4 = .5; (1,12) 1-2 = -1; (2,10) 4-5 = -1; (2,13) 1.5-1 = .5;
# (3,14) 3-3 = 0  ->  SSE 2.5, RMSE sqrt(2.5/5), MAE 3/5
# relevant (no threshold): user 1 {11, 12}, user 2 {10, 13}, user 3 {14}; k = 2:
#   user 1 top [11, 13] hits [1, 0]: P 1/2, R 1/2, nDCG 1/(1+L3), AP (1/1)/2 = 1/2, HR 1
#   user 2 top [10, 12] hits [1, 0]: P 1/2, R 1/2, nDCG 1/(1+L3), AP 1/2, HR 1
#   user 3 top [13, 14] hits [0, 1]: P 1/2, R 1,   nDCG L3/1,     AP (1/2)/1 = 1/2, HR 1
#   coverage {11, 13, 10, 12, 14} = 5/5
EXPECTED = {
    "rmse": math.sqrt(0.5), "mae": 0.6,
    "precision@2": 0.5, "recall@2": 2 / 3, "ndcg@2": (2 / (1 + L3) + L3) / 3, "map@2": 0.5,
    "hit_rate@2": 1.0, "coverage": 1.0, "n_users": 3,
}


@pytest.fixture
def data():
    return split(USERS, ITEMS, RATINGS, np.array(IS_TEST, dtype=bool))


def check(got, expected):
    assert list(got) == list(expected)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-12, abs=1e-15), key
    assert isinstance(got["n_users"], int)


def test_hand_example(data):
    train, test = data
    assert (1 + L3) == pytest.approx(1.6309297535714575)
    check(fastmf.evaluate(FakeModel(train, SCORES), test, k=2), EXPECTED)


def test_batching_gives_the_same_answer(data):
    train, test = data
    model = FakeModel(train, SCORES)
    check(fastmf.evaluate(model, test, k=2, batch_size=1), EXPECTED)
    assert model.calls == [1, 1, 1]


def test_threshold(data):
    # relevant = test ratings >= 4: user 1 {11}, user 2 {10}; user 3 (rating 3) is not evaluated
    #   user 1 [11, 13] hits [1, 0]: P 1/2, R 1, nDCG 1 (IDCG over min(2,1) = 1 rank), AP 1, HR 1
    #   user 2 [10, 12] hits [1, 0]: the same;  coverage {11, 13, 10, 12} = 4/5
    # rating metrics still use every test rating
    train, test = data
    expected = dict(EXPECTED, **{"precision@2": 0.5, "recall@2": 1.0, "ndcg@2": 1.0, "map@2": 1.0,
                                 "hit_rate@2": 1.0, "coverage": 0.8, "n_users": 2})
    check(fastmf.evaluate(FakeModel(train, SCORES), test, k=2, threshold=4), expected)
    with pytest.raises(ValueError, match=r"no test user has a relevant item \(rating >= threshold=6\)"):
        fastmf.evaluate(FakeModel(train, SCORES), test, k=2, threshold=6)


def test_exclude_seen_false(data):
    # rankings over all items: user 1 [10, 11], user 2 [11, 10], user 3 [12, 13]
    #   user 1 hits [0, 1]: P 1/2, R 1/2, nDCG L3/(1+L3), AP (1/2)/2 = 1/4
    #   user 2 hits [0, 1]: the same;  user 3 no hit
    #   coverage {10, 11, 12, 13} = 4/5
    train, test = data
    expected = dict(EXPECTED, **{"precision@2": 1 / 3, "recall@2": 1 / 3, "ndcg@2": 2 / 3 * L3 / (1 + L3),
                                 "map@2": 1 / 6, "hit_rate@2": 2 / 3, "coverage": 0.8})
    check(fastmf.evaluate(FakeModel(train, SCORES), test, k=2, exclude_seen=False), expected)


def test_k_larger_than_catalog(data):
    # k = 7 > 5 items: rows padded with -1; precision divides by 7
    #   user 1 [11, 13, 12] (3 unseen) hits [1, 0, 1]: P 2/7, R 1, nDCG (1 + 1/2)/(1 + L3), AP (1 + 2/3)/2
    #   user 2 [10, 12, 14, 13] hits [1, 0, 0, 1]: P 2/7, R 1, nDCG (1 + 1/log2 5)/(1 + L3), AP (1 + 1/2)/2
    #   user 3 [13, 14, 11, 10] hits [0, 1, 0, 0]: P 1/7, R 1, nDCG L3, AP 1/2
    train, test = data
    got = fastmf.evaluate(FakeModel(train, SCORES), test, k=7)
    assert got["precision@7"] == pytest.approx(5 / 21)
    assert got["recall@7"] == pytest.approx(1.0)
    assert got["ndcg@7"] == pytest.approx(((1.5 + 1 + 1 / math.log2(5)) / (1 + L3) + L3) / 3)
    assert got["map@7"] == pytest.approx(((1 + 2 / 3) / 2 + 1.5 / 2 + 0.5) / 3)


def test_no_rating_metrics_for_score_models(data):
    train, test = data
    model = FakeModel(train, SCORES)
    model.predicts_ratings = False
    got = fastmf.evaluate(model, test, k=2)
    assert "rmse" not in got and "mae" not in got
    check(got, {key: v for key, v in EXPECTED.items() if key not in ("rmse", "mae")})


def test_users_subset(data):
    # users 1 and 3 only: errors .5, -1, 0 -> RMSE sqrt(1.25/3), MAE 1.5/3
    #   ranking: user 1 (P 1/2, R 1/2, nDCG 1/(1+L3), AP 1/2), user 3 (P 1/2, R 1, nDCG L3, AP 1/2)
    #   coverage {11, 13, 14} = 3/5
    train, test = data
    expected = {"rmse": math.sqrt(1.25 / 3), "mae": 0.5, "precision@2": 0.5, "recall@2": 0.75,
                "ndcg@2": (1 / (1 + L3) + L3) / 2, "map@2": 0.5, "hit_rate@2": 1.0, "coverage": 0.6,
                "n_users": 2}
    check(fastmf.evaluate(FakeModel(train, SCORES), test, k=2, users=[3, 1]), expected)
    with pytest.raises(KeyError, match="unknown user 7"):
        fastmf.evaluate(FakeModel(train, SCORES), test, k=2, users=[1, 7])


@pytest.mark.parametrize("ids", [int, str])
def test_model_with_other_id_maps(ids):
    # The model was trained on other data: it knows users {1, 2} and items {10, 11, 12, 13, 98, 99}
    # (model indices: items 10->0, 11->1, 12->2, 13->3, 98->4, 99->5), not user 3 nor item 14.
    #   user 1 (seen {10}) scores [5, 4.5, 1, 3, 0, 4.8] -> top [99, 11]; relevant {11, 12}: hits [0, 1]
    #       P 1/2, R 1/2, nDCG L3/(1+L3), AP (1/2)/2 = 1/4
    #   user 2 (seen {11}) scores [4, 5, 3.5, 1.5, -1, 0] -> top [10, 12]; relevant {10, 13}: hits [1, 0]
    #       P 1/2, R 1/2, nDCG 1/(1+L3), AP 1/2
    #   user 3 unknown -> index -1 -> fallback scores [1, 2, 3, 4, -1, 0] -> top [13, 12]; relevant {14}
    #       (an item the model does not know): no hit
    #   means: P 1/3, R 1/3, nDCG (L3 + 1)/(1 + L3)/3 = 1/3, MAP 1/4, HR 2/3;
    #   coverage in the model's catalog {99, 11, 10, 12, 13} = 5/6
    # ratings: pairs as in EXPECTED except (3, 14), unknown -> default 3.5, error .5: SSE 2.75 over 5
    # (string ids sort in the same order as these ints, so the indices above hold for both)
    def conv(values):
        return [ids(v) for v in values]

    train, test = split(conv(USERS), conv(ITEMS), RATINGS, np.array(IS_TEST, dtype=bool))
    other = Ratings.from_arrays(conv([1, 2, 1, 1, 2, 2]), conv([10, 11, 12, 13, 98, 99]), [3] * 6)
    model = FakeModel(other, [[5, 4.5, 1, 3, 0, 4.8], [4, 5, 3.5, 1.5, -1, 0]], fallback=[1, 2, 3, 4, -1, 0],
                      default=3.5)
    model.seen[:] = False
    model.seen[0, 0] = model.seen[1, 1] = True
    expected = {"rmse": math.sqrt(2.75 / 5), "mae": 0.7, "precision@2": 1 / 3, "recall@2": 1 / 3,
                "ndcg@2": 1 / 3, "map@2": 0.25, "hit_rate@2": 2 / 3, "coverage": 5 / 6, "n_users": 3}
    check(fastmf.evaluate(model, test, k=2), expected)


def test_equal_but_distinct_maps_use_indices_directly(data):
    train, test = data
    clone = Ratings.from_arrays(USERS, ITEMS, RATINGS)  # equal maps, different objects
    model = FakeModel(clone.subset(~np.array(IS_TEST, dtype=bool)), SCORES)
    assert model.user_map_ is not test.user_map and model.user_map_ == test.user_map
    check(fastmf.evaluate(model, test, k=2), EXPECTED)


def test_errors(data):
    train, test = data
    model = FakeModel(train, SCORES)
    with pytest.raises(ValueError, match="the test set is empty"):
        fastmf.evaluate(model, test.subset(np.zeros(len(test), dtype=bool)))
    with pytest.raises(TypeError, match="test must be a fastmf.Ratings"):
        fastmf.evaluate(model, [(1, 10, 5.0)])
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="k must be a positive int"):
            fastmf.evaluate(model, test, k=bad)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        fastmf.evaluate(model, test, batch_size=0)
    with pytest.raises(ValueError, match="threshold must be None or a finite number"):
        fastmf.evaluate(model, test, threshold=float("nan"))
    with pytest.raises(ValueError, match="users is empty"):
        fastmf.evaluate(model, test, users=[])
    with pytest.raises(ValueError, match="fit the model first"):
        fastmf.evaluate(object(), test)
    # nan at (user, item) (1, 11), (2, 12), (3, 13)
    broken = FakeModel(train, np.where(np.eye(3, 5, 1) > 0, np.nan, SCORES))
    with pytest.raises(ValueError, match="predicted nan for user 1, item 11"):
        fastmf.evaluate(broken, test)


def test_with_the_base_class(data):
    # the real Recommender machinery (seen-item exclusion, top-n) with the same fixed scores
    from fastmf.base import Recommender

    class Fixed(Recommender):
        def fit(self, train):
            self._start_fit(train)
            return self

        def _predict_pairs(self, u, i):
            return np.asarray(SCORES)[u, i]

        def _score_users(self, u):
            return np.asarray(SCORES)[u]

    train, test = data
    check(fastmf.evaluate(Fixed().fit(train), test, k=2), EXPECTED)


def reference_evaluate(model, test, k, threshold):
    """Per-user loop over the same definitions (shared id maps)."""
    u, i, r = test.user_index, test.item_index, test.rating.astype(float)
    pred = model.predict_indices(u.astype(np.int64), i.astype(np.int64))
    out = {"rmse": float(np.sqrt(np.mean((pred - r) ** 2))), "mae": float(np.mean(np.abs(pred - r)))}
    rows = {name: [] for name in ("precision", "recall", "ndcg", "map", "hit_rate")}
    covered = set()
    relevant = {}
    for x, y, v in zip(i.tolist(), u.tolist(), r.tolist()):
        if threshold is None or v >= threshold:
            relevant.setdefault(y, set()).add(x)
    for user in range(test.n_users):
        rel = relevant.get(user)
        if not rel:
            continue
        top = [int(x) for x in model.recommend_indices(np.array([user]), k)[0][0] if x >= 0]
        covered.update(top)
        hits = [x in rel for x in top] + [False] * (k - len(top))
        rows["precision"].append(sum(hits) / k)
        rows["recall"].append(sum(hits) / len(rel))
        rows["hit_rate"].append(float(any(hits)))
        idcg = sum(1 / math.log2(j + 2) for j in range(min(k, len(rel))))
        rows["ndcg"].append(sum(h / math.log2(j + 2) for j, h in enumerate(hits)) / idcg)
        prec = np.cumsum(hits) / np.arange(1, k + 1)
        rows["map"].append(float(np.sum(prec[hits])) / min(k, len(rel)))
    for name, values in rows.items():
        out[f"{name}@{k}"] = float(np.mean(values))
    out["coverage"] = len(covered) / model.n_items_
    out["n_users"] = len(rows["precision"])
    return out


@pytest.mark.parametrize("threshold, batch_size", [(None, 7), (3.5, 2048)])
def test_random_against_loop(rng, threshold, batch_size):
    n_users, n_items = 40, 25
    pairs = rng.choice(n_users * n_items, size=400, replace=False)
    ratings = rng.integers(1, 6, size=400).astype(float)
    users, items = pairs // n_items, pairs % n_items
    train, test = split(users, items, ratings, rng.random(400) < 0.3)
    model = FakeModel(train, rng.uniform(1, 5, size=(train.n_users, train.n_items)))
    got = fastmf.evaluate(model, test, k=5, threshold=threshold, batch_size=batch_size)
    check(got, reference_evaluate(model, test, 5, threshold))


def test_ml100k_u1_against_loop(ml100k_dir):
    # real data: ml-100k's u1.base / u1.test (read here with np.loadtxt), a fitted Biases model
    folder = ml100k_dir
    base = np.loadtxt(folder / "u1.base", dtype=np.int64)
    held = np.loadtxt(folder / "u1.test", dtype=np.int64)
    rows = np.vstack([base, held])
    full = Ratings.from_arrays(rows[:, 0], rows[:, 1], rows[:, 2].astype(float), rows[:, 3])
    is_test = np.arange(len(rows)) >= len(base)
    train, test = full.subset(~is_test), full.subset(is_test)
    model = fastmf.Biases().fit(train)
    got = fastmf.evaluate(model, test, k=10, threshold=4, batch_size=100)
    check(got, reference_evaluate(model, test, 10, 4))
    assert got["n_users"] == len(np.unique(test.user_index[test.rating >= 4]))


# ---------------------------------------------------------------- warnings about the test data
def _dense(seed=0, n_users=30, n_items=20, scale=(1, 5)):
    rng = np.random.default_rng(seed)
    u, i = np.divmod(rng.permutation(n_users * n_items)[: n_users * n_items // 2], n_items)
    r = rng.integers(scale[0], scale[1] + 1, u.size).astype(float)
    return Ratings.from_arrays(u + 1, i + 1, r, rating_scale=scale)


def _eval_warnings(model, test, **kw):
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fastmf.evaluate(model, test, **kw)
    return out, [str(w.message) for w in caught if issubclass(w.category, fastmf.EvaluationWarning)]


def test_held_out_split_gives_no_warning():
    ds = _dense()
    train, test = fastmf.split.random_split(ds, test_size=0.2, random_state=0)
    _, msgs = _eval_warnings(fastmf.Biases().fit(train), test)
    assert msgs == []


def test_overlap_with_training_data_warns_with_count_and_share():
    ds = _dense()
    train, test = fastmf.split.random_split(ds, test_size=0.2, random_state=0)
    model = fastmf.Biases().fit(train)
    both = train.concat(test)
    _, msgs = _eval_warnings(model, both)
    assert len(msgs) == 1
    assert f"{len(train)} of the {len(both)} test ratings ({len(train) / len(both):.1%})" in msgs[0]
    assert "training data" in msgs[0]
    assert issubclass(fastmf.EvaluationWarning, UserWarning)
    # the same pairs through another (equal-content) id map are still found
    raw = Ratings.from_arrays(*both.to_arrays()[:3], rating_scale=(1, 5))
    _, msgs = _eval_warnings(model, raw)
    assert any(f"{len(train)} of the {len(both)} test ratings" in m for m in msgs)


@pytest.mark.filterwarnings("ignore::fastmf.data.DuplicateRatingsWarning")
def test_other_data_set_warns_scale_and_colliding_ids():
    ds = _dense()
    model = fastmf.Biases().fit(ds)
    # ratings on a 0.5..10 scale, items 15..44 of which only 15..20 collide with the model's
    rng = np.random.default_rng(1)
    other = Ratings.from_arrays(rng.integers(1, 31, 200), rng.integers(15, 45, 200),
                                rng.choice([0.5, 3.0, 10.0], 200), duplicates="last")
    _, msgs = _eval_warnings(model, other)
    text = "\n".join(msgs)
    assert "outside the model's rating scale [1, 5]" in text
    n_out = int(np.count_nonzero((other.rating < 1) | (other.rating > 5)))
    assert f"{n_out} of {len(other)} test ratings" in text
    assert "of the test's 30 items" in text and "24 of the test's 30 items (80%) are unknown" in text
    assert "6 ids match" in text


def test_all_unknown_warns():
    model = fastmf.Biases().fit(_dense())
    strangers = Ratings.from_arrays([1001, 1002], [2001, 2002], [3.0, 4.0])
    _, msgs = _eval_warnings(model, strangers)
    assert any("none of the 2 test ratings has a user and an item the model knows" in m for m in msgs)
    # string ids never collide with integer ones: still all unknown
    _, msgs = _eval_warnings(model, Ratings.from_arrays(["a", "b"], ["x", "y"], [3.0, 4.0]))
    assert any("none of the 2 test ratings" in m for m in msgs)


# ---------------------------------------------------------------- per-user table
def test_per_user_table_matches_the_averages():
    ds = _dense(seed=3)
    train, test = fastmf.split.random_split(ds, test_size=0.3, random_state=1)
    model = fastmf.Biases().fit(train)
    plain = fastmf.evaluate(model, test, k=5, threshold=4)
    scores, table = fastmf.evaluate(model, test, k=5, threshold=4, per_user=True)
    assert scores == plain
    pd = pytest.importorskip("pandas")
    assert isinstance(table, pd.DataFrame)
    in_test = np.flatnonzero(np.bincount(test.user_index, minlength=test.n_users))
    assert list(table["user"]) == list(test.user_map.ids[in_test])
    assert list(table["n_test"]) == list(np.bincount(test.user_index)[in_test])
    evaluated = table["ndcg@5"].notna()
    assert int(evaluated.sum()) == scores["n_users"]
    for name in ("precision@5", "recall@5", "ndcg@5", "map@5", "hit_rate@5"):
        assert table[name][evaluated].mean() == pytest.approx(scores[name], rel=1e-12)
    # per-user rmse from the model's own predictions
    u0 = table["user"].iloc[0]
    mine = test.user_index == test.user_map.to_index(u0)
    pred = model.predict(np.full(mine.sum(), u0), test.item_map.ids[test.item_index[mine]])
    assert table["rmse"].iloc[0] == pytest.approx(np.sqrt(np.mean((pred - test.rating[mine]) ** 2)))
    # pooled squared error equals the overall rmse
    assert np.sqrt((table["rmse"] ** 2 * table["n_test"]).sum() / table["n_test"].sum()) == pytest.approx(scores["rmse"])


def test_per_user_dict_without_pandas(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_pandas(name, *a, **kw):
        if name == "pandas":
            raise ImportError("no pandas")
        return real(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_pandas)
    ds = _dense(seed=4)
    train, test = fastmf.split.random_split(ds, test_size=0.3, random_state=1)
    scores, table = fastmf.evaluate(fastmf.Biases().fit(train), test, per_user=True)
    assert isinstance(table, dict) and set(table) >= {"user", "n_test", "n_relevant", "rmse", "ndcg@10"}
    assert all(len(v) == len(table["user"]) for v in table.values())
    assert np.nanmean(table["ndcg@10"]) == pytest.approx(scores["ndcg@10"], rel=1e-12)
    with pytest.raises(ValueError, match="per_user must be True or False"):
        fastmf.evaluate(fastmf.Biases().fit(train), test, per_user="yes")
