"""fastmf.metrics against hand-computed values and a per-user brute-force reference."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastmf import metrics
from fastmf.data import CSR

L3 = 1 / math.log2(3)  # discount of rank 2: 0.6309297535714575
L4 = 1 / math.log2(4)  # discount of rank 3: 0.5

# ---------------------------------------------------------------------- the hand-worked example
# 4 users, k = 3, items 0..9:
#   user 0: recommended [0, 1, 2],  relevant {1, 2, 9}  -> hits [0, 1, 1]
#   user 1: recommended [3, 4, -1], relevant {4}        -> hits [0, 1, 0]   (padded row, k > |rel|)
#   user 2: recommended [5, 6, 7],  relevant {8}        -> hits [0, 0, 0]
#   user 3: recommended [0, 5, 6],  relevant {}         -> excluded from every mean (NaN per user)
REC = np.array([[0, 1, 2], [3, 4, -1], [5, 6, 7], [0, 5, 6]])
REL = [[1, 2, 9], [4], [8], []]

# precision = hits / k:                 u0 2/3, u1 1/3, u2 0        -> mean 1/3
# recall = hits / |rel|:                u0 2/3, u1 1/1, u2 0        -> mean 5/9
# hit rate:                             u0 1,   u1 1,   u2 0        -> mean 2/3
# ndcg: u0 DCG = 1/log2(3) + 1/log2(4) = 1.1309, IDCG over min(3,3)=3 ranks = 1 + 1/log2(3) + 1/2 = 2.1309
#       u1 DCG = 1/log2(3) = 0.6309, IDCG over min(3,1)=1 rank = 1;  u2 0
# AP:   u0 (P@2 + P@3) / min(3,3) = (1/2 + 2/3) / 3 = 7/18;  u1 P@2 / min(3,1) = 1/2;  u2 0 -> mean 8/27
EXPECTED_K3 = {
    "precision": [2 / 3, 1 / 3, 0.0],
    "recall": [2 / 3, 1.0, 0.0],
    "hit_rate": [1.0, 1.0, 0.0],
    "ndcg": [(L3 + L4) / (1 + L3 + L4), L3, 0.0],
    "map": [7 / 18, 1 / 2, 0.0],
}
# k = 2 (first two columns): u0 [0, 1] hits [0, 1]; u1 [3, 4] hits [0, 1]; u2 misses
#   precision 1/2, 1/2, 0; recall 1/3, 1, 0; ndcg u0 L3 / (1 + L3) (IDCG over min(2,3)=2), u1 L3 / 1
#   AP u0 (1/2) / min(2,3) = 1/4, u1 (1/2) / 1 = 1/2
EXPECTED_K2 = {
    "precision": [1 / 2, 1 / 2, 0.0],
    "recall": [1 / 3, 1.0, 0.0],
    "hit_rate": [1.0, 1.0, 0.0],
    "ndcg": [L3 / (1 + L3), L3, 0.0],
    "map": [1 / 4, 1 / 2, 0.0],
}
FUNCS = {
    "precision": metrics.precision_at_k,
    "recall": metrics.recall_at_k,
    "ndcg": metrics.ndcg_at_k,
    "map": metrics.map_at_k,
    "hit_rate": metrics.hit_rate_at_k,
}


def test_hand_example_numbers():
    # the closed forms above, as decimals, so a slip in the expressions shows
    assert EXPECTED_K3["ndcg"][0] == pytest.approx(1.1309297535714575 / 2.1309297535714575)
    assert np.mean(EXPECTED_K3["map"]) == pytest.approx(8 / 27)
    assert np.mean(EXPECTED_K3["recall"]) == pytest.approx(5 / 9)


@pytest.mark.parametrize("name", sorted(FUNCS))
@pytest.mark.parametrize("k, expected", [(None, EXPECTED_K3), (3, EXPECTED_K3), (2, EXPECTED_K2)])
def test_hand_example(name, k, expected):
    f = FUNCS[name]
    per = f(REC, REL, k=k, per_user=True)
    np.testing.assert_allclose(per[:3], expected[name], rtol=1e-12, atol=0)
    assert np.isnan(per[3])  # no relevant items
    assert f(REC, REL, k=k) == pytest.approx(np.mean(expected[name]), rel=1e-12)


def test_ranking_metrics_matches_single_functions():
    together = metrics.ranking_metrics(REC, REL, k=3)
    assert set(together) == {"precision", "recall", "ndcg", "map", "hit_rate"}
    for name, f in FUNCS.items():
        assert together[name] == pytest.approx(f(REC, REL, k=3), rel=1e-15)
    per = metrics.ranking_metrics(REC, REL, per_user=True)
    np.testing.assert_allclose(per["ndcg"][:3], EXPECTED_K3["ndcg"], rtol=1e-12)


def test_relevant_forms_agree():
    indptr = np.array([0, 3, 4, 5, 5])
    indices = np.array([9, 2, 1, 4, 8])  # unsorted within a row is fine
    sets = [{1, 2, 9}, {4}, {8}, set()]
    csr = CSR(indptr, indices.astype(np.int32), np.ones(5), (4, 10))
    import scipy.sparse as sp

    mat = sp.csr_matrix((np.ones(5), indices, indptr), shape=(4, 10))
    expected = metrics.ranking_metrics(REC, REL, per_user=True)
    for form in ((indptr, indices), csr, mat, sets, [np.array(r, dtype=np.int32) for r in REL]):
        got = metrics.ranking_metrics(REC, form, per_user=True)
        for name in expected:
            np.testing.assert_array_equal(got[name], expected[name])


def test_perfect_ranking():
    # every recommended item relevant -> precision 1; ideal order -> ndcg 1 and AP 1
    rec = np.array([[4, 2, 7], [1, 0, -1]])
    rel = [[2, 4, 7, 8], [0, 1]]
    assert metrics.precision_at_k(rec[:1], rel[:1]) == 1.0
    np.testing.assert_array_equal(metrics.ndcg_at_k(rec, rel, per_user=True), [1.0, 1.0])
    np.testing.assert_array_equal(metrics.map_at_k(rec, rel, per_user=True), [1.0, 1.0])
    # recall 3/4 for user 0 (|rel| = 4 > k = 3); precision of the padded row is 2/3
    np.testing.assert_allclose(metrics.recall_at_k(rec, rel, per_user=True), [3 / 4, 1.0])
    np.testing.assert_allclose(metrics.precision_at_k(rec, rel, per_user=True), [1.0, 2 / 3])


def test_ndcg_ideal_vs_reversed_order():
    # relevant {0} only; at rank 1 ndcg 1, at rank 3 ndcg 1/log2(4) = 0.5
    rel = [[0], [0]]
    rec = np.array([[0, 1, 2], [2, 1, 0]])
    np.testing.assert_allclose(metrics.ndcg_at_k(rec, rel, per_user=True), [1.0, 0.5])
    # AP: rank 3 hit -> P@3 / min(3, 1) = 1/3
    np.testing.assert_allclose(metrics.map_at_k(rec, rel, per_user=True), [1.0, 1 / 3])


def test_all_padding_row_scores_zero():
    rec = np.array([[-1, -1], [3, -1]])
    rel = [[3], [3]]
    for name, f in FUNCS.items():
        np.testing.assert_array_equal(f(rec, rel, per_user=True)[0], 0.0, err_msg=name)
    assert metrics.hit_rate_at_k(rec, rel, per_user=True)[1] == 1.0


def test_coverage():
    # distinct items over all rows {0,1,...,7} = 8 of 10; first column only {0,3,5} = 3 of 10
    assert metrics.coverage(REC, 10) == pytest.approx(0.8)
    assert metrics.coverage(REC, 10, k=1) == pytest.approx(0.3)
    assert metrics.coverage(np.full((2, 3), -1), 4) == 0.0


# ---------------------------------------------------------------------- rating metrics
def test_rmse_mae_hand():
    t = [1.0, 2.0, 3.0, 4.0]
    p = [2.0, 2.0, 1.0, 4.0]  # errors 1, 0, -2, 0: MSE 5/4, MAE 3/4
    assert metrics.rmse(t, p) == pytest.approx(math.sqrt(5 / 4), rel=1e-15)
    assert metrics.mae(t, p) == pytest.approx(3 / 4, rel=1e-15)
    assert metrics.rmse(t, t) == 0.0 and metrics.mae(t, t) == 0.0


def test_rmse_of_mean_is_std(rng):
    y = rng.normal(3.5, 1.1, size=1001).astype(np.float32)
    const = np.full_like(y, y.astype(np.float64).mean())
    assert metrics.rmse(y, const) == pytest.approx(np.std(y.astype(np.float64)), rel=1e-6)


def test_rmse_float64_accumulation():
    # float32 inputs, errors of 1e-4 each: float32 accumulation of 4M squares would drift; float64 is exact
    n = 1 << 22
    t = np.zeros(n, dtype=np.float32)
    p = np.full(n, 1e-4, dtype=np.float32)
    assert metrics.rmse(t, p) == pytest.approx(float(np.float32(1e-4)), rel=1e-9)
    assert metrics.mae(t, p) == pytest.approx(float(np.float32(1e-4)), rel=1e-9)


# ---------------------------------------------------------------------- errors
@pytest.mark.parametrize("f", [metrics.rmse, metrics.mae])
def test_rating_metric_errors(f):
    with pytest.raises(ValueError, match="empty"):
        f([], [])
    with pytest.raises(ValueError, match="differ in length: 3 != 2"):
        f([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match=r"y_pred\[2\] = nan is not finite"):
        f([1, 2, 3], [1, 2, np.nan])
    with pytest.raises(ValueError, match=r"y_true\[0\] = inf is not finite"):
        f([np.inf, 2], [1, 2])
    with pytest.raises(ValueError, match="y_true must be 1-D"):
        f([[1, 2]], [1, 2])
    with pytest.raises(ValueError, match="y_pred must hold numbers"):
        f([1, 2], ["a", "b"])


@pytest.mark.parametrize(
    "rec, rel, k, message",
    [
        (np.empty((0, 3), int), [], None, "recommended is empty"),
        (np.empty((2, 0), int), [[1], [1]], None, "no columns"),
        (np.array([0, 1]), [[1]], None, "must be 2-D"),
        (np.array([[0.0, 1.0]]), [[1]], None, "integer item indices"),
        (np.array([[0, 1]]), [[1], [2]], None, "relevant has 2 users but recommended has 1 rows"),
        (np.array([[0, 1]]), (np.array([0, 1, 2]), np.array([1, 2])), None, "indptr has 3 entries"),
        (np.array([[0, 1]]), (np.array([0, 3]), np.array([1, 2])), None, r"indptr\[-1\] = 3"),
        (np.array([[0, 1]]), (np.array([1, 2]), np.array([1, 2])), None, r"indptr\[0\] must be 0"),
        (np.array([[0, 1], [2, 3]]), (np.array([0, 2, 1]), np.array([1])), None, "indptr decreases"),
        (np.array([[0, 1]]), (np.array([0, 1]), np.array([1]), 3), None, "must be \\(indptr, indices\\)"),
        (np.array([[0, 1], [2, 3]]), [[1], [4, -2]], None, r"relevant\[1\] holds a negative"),
        (np.array([[0, 1]]), [[1.5]], None, r"relevant\[0\] must hold integer"),
        (np.array([[0, 1], [0, 0]]), [[1], [0]], None, "row 1 lists item 0 more than once"),
        (np.array([[0, -2]]), [[1]], None, r"recommended\[0, 1\] = -2 is negative"),
        (np.array([[0, 1], [-1, 4]]), [[1], [4]], None, r"recommended\[1, 1\] = 4 follows -1 padding"),
        (np.array([[0, 1]]), [[3, 3]], None, "user row 0 list item 3 more than once"),
        (np.array([[0, 1]]), [[1]], 3, "k=3 exceeds the 2 columns"),
        (np.array([[0, 1]]), [[1]], 0, "k must be None or a positive int"),
        (np.array([[0, 1]]), [[1]], True, "k must be None or a positive int"),
        (np.array([[0, 1]]), 5, None, "relevant must be"),
    ],
)
def test_ranking_errors(rec, rel, k, message):
    for f in FUNCS.values():
        with pytest.raises(ValueError, match=message):
            f(rec, rel, k=k)


def test_no_relevant_users():
    rec = np.array([[0, 1], [1, 2]])
    with pytest.raises(ValueError, match="no user has a relevant item"):
        metrics.precision_at_k(rec, [[], []])
    per = metrics.ndcg_at_k(rec, [[], []], per_user=True)
    assert per.shape == (2,) and np.isnan(per).all()


def test_duplicates_beyond_k_are_not_read():
    # only recommended[:, :k] is read, so a repeat past the cut-off is not an error
    rec = np.array([[0, 1, 0]])
    assert metrics.precision_at_k(rec, [[1]], k=2) == 0.5


def test_coverage_errors():
    with pytest.raises(ValueError, match=r"recommended\[1, 0\] = 5 is outside the catalog \[0, 5\)"):
        metrics.coverage(np.array([[0, 1], [5, -1]]), 5)
    with pytest.raises(ValueError, match="n_items must be a positive int"):
        metrics.coverage(np.array([[0]]), 0)
    with pytest.raises(ValueError, match="recommended is empty"):
        metrics.coverage(np.empty((0, 2), int), 3)


# ---------------------------------------------------------------------- brute force vs vectorised
def brute_force(rec, rel, k):
    """Per-user Python loop, straight from the definitions (NaN when the user has no relevant item)."""
    out = {name: [] for name in FUNCS}
    for row, items in zip(rec, rel):
        relset = set(int(x) for x in items)
        top = [int(x) for x in row[:k]]
        if not relset:
            for name in out:
                out[name].append(math.nan)
            continue
        hits = [1 if (x >= 0 and x in relset) else 0 for x in top]
        n_hits = sum(hits)
        out["precision"].append(n_hits / k)
        out["recall"].append(n_hits / len(relset))
        out["hit_rate"].append(1.0 if n_hits else 0.0)
        dcg = sum(h / math.log2(i + 2) for i, h in enumerate(hits))
        idcg = sum(1 / math.log2(i + 2) for i in range(min(k, len(relset))))
        out["ndcg"].append(dcg / idcg)
        ap, found = 0.0, 0
        for i, h in enumerate(hits):
            if h:
                found += 1
                ap += found / (i + 1)
        out["map"].append(ap / min(k, len(relset)))
    return {name: np.array(v) for name, v in out.items()}


def random_case(seed, n_users, n_items, n_cols):
    r = np.random.default_rng(seed)
    rec = np.full((n_users, n_cols), -1, dtype=np.int64)
    rel = []
    for u in range(n_users):
        length = r.integers(0, min(n_cols, n_items) + 1)
        rec[u, :length] = r.permutation(n_items)[:length]
        rel.append(r.choice(n_items, size=r.integers(0, n_items + 1), replace=False))
    return rec, rel


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_users=st.integers(1, 8), n_items=st.integers(1, 12),
       n_cols=st.integers(1, 6), data=st.data())
def test_vectorised_matches_brute_force(seed, n_users, n_items, n_cols, data):
    rec, rel = random_case(seed, n_users, n_items, n_cols)
    k = data.draw(st.integers(1, n_cols))
    expected = brute_force(rec, rel, k)
    got = metrics.ranking_metrics(rec, rel, k=k, per_user=True)
    for name in FUNCS:
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-12, atol=1e-15, err_msg=name)
    if any(len(r) for r in rel):
        means = metrics.ranking_metrics(rec, rel, k=k)
        for name in FUNCS:
            assert means[name] == pytest.approx(np.nanmean(expected[name]), rel=1e-12, abs=1e-15)
    items = rec[:, :k][rec[:, :k] >= 0]
    assert metrics.coverage(rec, n_items, k=k) == pytest.approx(np.unique(items).size / n_items)


def test_vectorised_matches_brute_force_larger():
    rec, rel = random_case(7, 400, 60, 10)
    expected = brute_force(rec, rel, 10)
    got = metrics.ranking_metrics(rec, rel, per_user=True)
    for name in FUNCS:
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-12, atol=1e-15, err_msg=name)
