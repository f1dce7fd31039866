"""fastmf.similarity against per-pair formulas written out in plain Python."""

import math

import numpy as np
import pytest

from fastmf import similarity as sim
from fastmf.similarity import METRICS, similarity, top_similar


# ---------------------------------------------------------------------- per-pair oracles
def _dot(q, m):
    return math.fsum(a * b for a, b in zip(q, m))


def _cosine(q, m):
    nq, nm = math.sqrt(_dot(q, q)), math.sqrt(_dot(m, m))
    return 0.0 if nq == 0 or nm == 0 else _dot(q, m) / (nq * nm)


def _euclidean(q, m):
    return 1.0 / (1.0 + math.sqrt(math.fsum((a - b) ** 2 for a, b in zip(q, m))))


def _pearson(q, m):
    if len(set(q)) == 1 or len(set(m)) == 1:
        return 0.0
    qm, mm = math.fsum(q) / len(q), math.fsum(m) / len(m)
    return _cosine([a - qm for a in q], [b - mm for b in m])


ORACLE = {"dot": _dot, "cosine": _cosine, "euclidean": _euclidean, "pearson": _pearson}


def oracle_matrix(Q, M, metric):
    Q = np.asarray(Q, dtype=np.float64).tolist()
    M = np.asarray(M, dtype=np.float64).tolist()
    return np.array([[ORACLE[metric](q, m) for m in M] for q in Q]).reshape(len(Q), len(M))


@pytest.fixture(params=[False, True], ids=["one-chunk", "many-chunks"])
def chunked(request, monkeypatch):
    """Run a test with the default chunking and with matrix chunks of a few rows."""
    if request.param:  # chunks of 4 rows (5 columns), sub-blocks of 2 rows, a last row alone
        monkeypatch.setattr(sim, "_CHUNK_ELEMENTS", 25)
        monkeypatch.setattr(sim, "_SUB_ELEMENTS", 10)
    return request.param


# ---------------------------------------------------------------------- similarity
@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_per_pair_formula(metric, dtype, chunked):
    rng = np.random.default_rng(1)
    Q = rng.normal(0.3, 1.0, (7, 5)).astype(dtype)
    M = rng.normal(-0.2, 0.7, (23, 5)).astype(dtype)
    got = similarity(Q, M, metric)
    assert got.dtype == np.float64 and got.shape == (7, 23)
    # the inputs are exactly representable in float64 and all arithmetic is float64
    np.testing.assert_allclose(got, oracle_matrix(Q, M, metric), rtol=1e-12, atol=1e-12)


def test_float32_and_float64_inputs_agree_when_values_are_equal():
    rng = np.random.default_rng(2)
    M32 = rng.normal(size=(30, 6)).astype(np.float32)
    for metric in METRICS:
        np.testing.assert_array_equal(similarity(M32[:4], M32, metric),
                                      similarity(M32[:4].astype(np.float64), M32.astype(np.float64), metric))


def test_integer_and_bool_inputs():
    Q = np.array([[1, 2, 3]], dtype=np.int32)
    M = np.array([[2, 4, 6], [-1, 0, 1], [0, 0, 0]], dtype=np.int64)
    np.testing.assert_allclose(similarity(Q, M, "dot"), [[28.0, 2.0, 0.0]])
    np.testing.assert_allclose(similarity(Q, M, "cosine"), [[1.0, 2.0 / math.sqrt(14) / math.sqrt(2), 0.0]])
    np.testing.assert_allclose(similarity(np.array([True, False]), np.array([[True, True]]), "dot"), [1.0])


def test_single_query_gives_1d():
    M = np.array([[2.0, 0.0], [0.0, 3.0], [0.0, 0.0]])
    np.testing.assert_allclose(similarity([1.0, 0.0], M), [1.0, 0.0, 0.0])
    np.testing.assert_allclose(similarity([1.0, 0.0], M, "euclidean"), [0.5, 1 / (1 + math.sqrt(10)), 0.5])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_zero_and_constant_vectors_give_finite_zero(dtype, chunked):
    k = 6
    M = np.array([np.zeros(k), np.full(k, 0.1), np.full(k, -3.0), np.arange(k) * 0.5 - 1.0,
                  np.full(k, 1e-30)], dtype=dtype)
    with np.errstate(all="raise"):  # no division by zero / invalid operation anywhere
        for metric in METRICS:
            s = similarity(M, M, metric)
            assert np.isfinite(s).all(), metric
            np.testing.assert_allclose(s, oracle_matrix(M, M, metric), rtol=1e-12, atol=1e-12)
        cos = similarity(M, M, "cosine")
        pear = similarity(M, M, "pearson")
    assert np.all(cos[0] == 0) and np.all(cos[:, 0] == 0)  # the zero vector, even against itself
    # constant rows (0, 1, 2, 4) correlate with nothing, not even themselves
    const = [0, 1, 2, 4]
    assert np.all(pear[const] == 0) and np.all(pear[:, const] == 0)
    assert pear[3, 3] == pytest.approx(1.0, abs=1e-12)
    # parallel constant vectors have cosine 1, opposite ones -1
    assert cos[1, 4] == pytest.approx(1.0, abs=1e-12) and cos[1, 2] == pytest.approx(-1.0, abs=1e-12)


def test_extreme_magnitudes_do_not_overflow_or_underflow():
    tiny = np.array([[1e-160, 2e-160], [2e-160, -1e-160]])
    huge = np.array([[1e200, 2e200], [3e200, 6e200]])
    with np.errstate(all="raise"):
        np.testing.assert_allclose(similarity(tiny, tiny, "cosine"), [[1.0, 0.0], [0.0, 1.0]], atol=1e-15)
        np.testing.assert_allclose(similarity(huge, huge, "cosine"), np.ones((2, 2)), atol=1e-15)
        tiny3 = np.array([[1e-160, 2e-160, 4e-160], [2e-160, 4e-160, 8e-160]])
        np.testing.assert_allclose(similarity(tiny3, tiny3, "pearson"), np.ones((2, 2)), atol=1e-15)
        np.testing.assert_allclose(similarity(tiny3 * 1e300, tiny3, "pearson"), np.ones((2, 2)), atol=1e-15)


@pytest.mark.parametrize("metric", METRICS)
def test_symmetric(metric):
    rng = np.random.default_rng(3)
    A = rng.normal(size=(40, 8)).astype(np.float32)
    S = similarity(A, A, metric)
    np.testing.assert_allclose(S, S.T, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("metric", ["cosine", "pearson", "euclidean"])
@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e3])
def test_self_similarity_is_one(metric, scale, chunked):
    rng = np.random.default_rng(4)
    A = (rng.normal(size=(50, 16)) * scale + 2 * scale).astype(np.float32)
    d = np.diag(similarity(A, A, metric))
    # cosine/pearson: unit vectors, 1 to rounding; euclidean: the norm-based distance of equal
    # vectors is at most ~sqrt(eps) * |a| (clamped at 0 when rounding makes it negative)
    tol = 1e-14 if metric != "euclidean" else 1e-7 * max(1.0, scale) * np.sqrt(16 * 4)
    assert np.all(d <= 1.0) and np.all(d >= 1.0 - tol), (d.min(), d.max())


def test_euclidean_clamps_negative_squared_distance():
    # near-equal rows of large norm: |q|^2 + |m|^2 - 2 q.m cancels to rounding noise of either sign
    rng = np.random.default_rng(5)
    base = rng.normal(size=(200, 32)) + 1e4
    M = np.vstack([base, base + rng.normal(size=base.shape) * 1e-9])
    sq = np.sum(M * M, axis=1)
    assert (sq[:, None] + sq[None, :] - 2 * (M @ M.T)).min() < 0  # the unclamped form goes negative
    with np.errstate(invalid="raise"):
        s = similarity(M, M, "euclidean")
    assert np.isfinite(s).all() and s.max() <= 1.0 and s.min() > 0.0
    # exact distance of the pairs (row i, row i + 200) is ~ 1e-9 * sqrt(32); we resolve it to the
    # norm-based error bound sqrt(eps) * |row| ~ 1.5e-8 * 5.7e4
    pair = np.diag(s[:200, 200:])
    assert np.all(pair >= 1.0 / (1.0 + 1.5e-8 * 5.7e4 * 2))


@pytest.mark.parametrize("metric", METRICS)
def test_ranges(metric):
    rng = np.random.default_rng(6)
    A = rng.normal(size=(60, 5))
    A[:10] = A[10:20] * rng.uniform(0.1, 10, (10, 1))  # parallel pairs: cosine exactly at the edge
    A[20:25] = -A[25:30]
    s = similarity(A, A, metric)
    if metric in ("cosine", "pearson"):
        assert s.min() >= -1.0 and s.max() <= 1.0
        assert s.max() == pytest.approx(1.0) and s.min() == pytest.approx(-1.0)
    elif metric == "euclidean":
        assert s.min() > 0.0 and s.max() <= 1.0


def test_empty_matrix_and_empty_query_batch():
    assert similarity(np.ones((3, 4)), np.ones((0, 4))).shape == (3, 0)
    assert similarity(np.ones((0, 4)), np.ones((5, 4)), "pearson").shape == (0, 5)


def test_check_finite_false_skips_the_scan():
    M = np.array([[1.0, np.nan], [1.0, 0.0]])
    with pytest.raises(ValueError, match=r"matrix\[0, 1\] = nan is not finite"):
        similarity([1.0, 0.0], M)
    with np.errstate(invalid="ignore"):
        out = similarity([1.0, 0.0], M, "dot", check_finite=False)
    assert np.isnan(out[0]) and out[1] == 1.0


@pytest.mark.parametrize("bad, match", [
    (dict(metric="manhattan"),
     "unknown similarity metric 'manhattan'; use one of 'cosine', 'dot', 'euclidean', 'pearson'"),
    (dict(metric=None), "unknown similarity metric None"),
    (dict(queries=np.ones((2, 3))), "queries have length 3 but the rows of matrix have length 4"),
    (dict(queries=np.ones((2, 2, 4))), r"queries must be a vector or a 2-D array of vectors, got shape \(2, 2, 4\)"),
    (dict(matrix=np.ones(4)), r"matrix must be 2-D \(n_rows, k\), got shape \(4,\)"),
    (dict(queries=np.array([["a", "b", "c", "d"]])), "queries must be a real numeric array, got dtype <U1"),
    (dict(matrix=np.ones((3, 4), dtype=complex)), "matrix must be a real numeric array, got dtype complex128"),
    (dict(queries=np.array([[1.0, 2.0, np.inf, 0.0]])), r"queries\[0, 2\] = inf is not finite"),
    (dict(queries=np.ones((1, 0)), matrix=np.ones((2, 0))), "queries have length 0"),
])
def test_bad_input_raises_valueerror(bad, match):
    args = dict(queries=np.ones((2, 4)), matrix=np.ones((3, 4)), metric="cosine")
    args.update(bad)
    with pytest.raises(ValueError, match=match):
        similarity(args["queries"], args["matrix"], args["metric"])
    with pytest.raises(ValueError, match=match):
        top_similar(args["queries"], args["matrix"], 2, args["metric"])


# ---------------------------------------------------------------------- top_similar
def full_sort(S, n, exclude_rows=None):
    """Reference selection: lexsort by (-score, index) of the allowed rows, padded to n."""
    idx = np.full((S.shape[0], n), -1, dtype=np.int64)
    val = np.full((S.shape[0], n), -np.inf)
    for r, s in enumerate(S):
        cols = np.arange(s.size)
        if exclude_rows is not None:
            cols = np.setdiff1d(cols, exclude_rows[r])
        order = cols[np.lexsort((cols, -s[cols]))][:n]
        idx[r, :order.size] = order
        val[r, :order.size] = s[order]
    return idx, val


@pytest.fixture(params=[False, True], ids=["one-block", "many-blocks"])
def blocked(request, monkeypatch):
    if request.param:
        monkeypatch.setattr(sim, "_BLOCK_SCORES", 50)  # 2 queries per block against 25 rows
        monkeypatch.setattr(sim, "_CHUNK_ELEMENTS", 18)
        monkeypatch.setattr(sim, "_SUB_ELEMENTS", 9)
    return request.param


@pytest.mark.parametrize("metric", METRICS)
def test_top_similar_equals_full_sort(metric, blocked):
    rng = np.random.default_rng(7)
    M = rng.normal(size=(25, 4))
    Q = rng.normal(size=(9, 4))
    for n in (1, 5, 25, 30):
        idx, val = top_similar(Q, M, n, metric)
        ref_idx, ref_val = full_sort(similarity(Q, M, metric), n)
        assert idx.shape == val.shape == (9, n) and idx.dtype == np.int64
        np.testing.assert_array_equal(idx, ref_idx)
        np.testing.assert_array_equal(val, ref_val)
    assert np.all(idx[:, 25:] == -1) and np.all(np.isneginf(val[:, 25:]))


def test_top_similar_ties_by_lower_index(blocked):
    rng = np.random.default_rng(8)
    M = rng.integers(-2, 3, size=(25, 3)).astype(np.float32)  # many equal dot products
    Q = rng.integers(-2, 3, size=(11, 3))
    S = similarity(Q, M, "dot")
    assert any(len(np.unique(s)) < s.size for s in S)  # the data has ties
    idx, val = top_similar(Q, M, 12, "dot")
    np.testing.assert_array_equal((idx, val), full_sort(S, 12))


def test_top_similar_exclude(blocked):
    rng = np.random.default_rng(9)
    M = rng.normal(size=(25, 5))
    own = np.array([3, 0, 24, 7, -1, 11])
    idx, val = top_similar(M[np.maximum(own, 0)], M, 25, "cosine", exclude=own)
    S = similarity(M[np.maximum(own, 0)], M, "cosine")
    np.testing.assert_array_equal((idx, val), full_sort(S, 25, [[o] if o >= 0 else [] for o in own]))
    for r, o in enumerate(own):
        if o >= 0:
            assert o not in idx[r] and idx[r, -1] == -1
        else:
            assert idx[r, 0] == 0  # row 0 queried itself and nothing was excluded
    several = np.array([[1, 2, -1], [4, 4, 5], [-1, -1, -1], [0, 24, 13], [2, 3, 4], [5, 6, 7]])
    idx, val = top_similar(M[:6], M, 10, "dot", exclude=several)
    np.testing.assert_array_equal((idx, val), full_sort(similarity(M[:6], M, "dot"), 10,
                                                        [r[r >= 0] for r in several]))


def test_top_similar_single_query():
    M = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [-1.0, 0.0]])
    idx, val = top_similar(np.array([1.0, 0.0]), M, 3, exclude=0)
    np.testing.assert_array_equal(idx, [1, 2, 3])
    np.testing.assert_allclose(val, [0.9 / math.hypot(0.9, 0.1), 0.0, -1.0])
    idx, val = top_similar([1.0, 0.0], M, 5, "euclidean", exclude=[0, 3])
    np.testing.assert_array_equal(idx, [1, 2, -1, -1, -1])
    assert np.isneginf(val[2:]).all()
    idx, _ = top_similar([1.0, 0.0], M, 2, exclude=[])
    np.testing.assert_array_equal(idx, [0, 1])


@pytest.mark.parametrize("kwargs, err, match", [
    (dict(n=0), ValueError, "n must be a positive int, got 0"),
    (dict(n=2.0), ValueError, "n must be a positive int, got 2.0"),
    (dict(n=True), ValueError, "n must be a positive int, got True"),
    (dict(exclude=[0, 4, 1]), IndexError, r"exclude\[1, 0\] = 4 is outside \[-1, 4\)"),
    (dict(exclude=[0, -2, 1]), IndexError, r"exclude\[1, 0\] = -2 is outside \[-1, 4\)"),
    (dict(exclude=[0, 1]), ValueError, r"exclude must have shape \(3,\) or \(3, m\) for 3 queries, got shape \(2,\)"),
    (dict(exclude=[0.0, 1.0, 2.0]), ValueError, "exclude must hold integer row indices, got dtype float64"),
])
def test_top_similar_bad_arguments(kwargs, err, match):
    args = dict(n=2, exclude=None)
    args.update(kwargs)
    with pytest.raises(err, match=match):
        top_similar(np.ones((3, 2)), np.ones((4, 2)), args["n"], "cosine", exclude=args["exclude"])


def test_top_similar_single_query_bad_exclude():
    with pytest.raises(IndexError, match=r"exclude\[1\] = 9 is outside \[-1, 4\)"):
        top_similar(np.ones(2), np.ones((4, 2)), 2, exclude=[0, 9])
    with pytest.raises(ValueError, match="exclude for a single query must be an int or a 1-D array"):
        top_similar(np.ones(2), np.ones((4, 2)), 2, exclude=[[0]])


def test_top_similar_bounded_blocks(monkeypatch):
    """Each block scores at most _BLOCK_SCORES pairs (one query at least)."""
    seen = []
    real = sim._scores

    def spy(qp, m, metric):
        out = real(qp, m, metric)
        seen.append(out.shape)
        return out

    monkeypatch.setattr(sim, "_scores", spy)
    monkeypatch.setattr(sim, "_BLOCK_SCORES", 100)
    rng = np.random.default_rng(10)
    top_similar(rng.normal(size=(13, 3)), rng.normal(size=(30, 3)), 4)
    assert seen == [(3, 30)] * 4 + [(1, 30)]
    seen.clear()
    top_similar(rng.normal(size=(2, 3)), rng.normal(size=(300, 3)), 4)
    assert seen == [(1, 300)] * 2


@pytest.mark.parametrize("metric", METRICS)
def test_batched_equals_single_bit_for_bit(metric, chunked):
    """A query's scores do not depend on the other queries of its batch (no shape-dependent GEMM)."""
    rng = np.random.default_rng(11)
    M = rng.normal(size=(1000, 12)).astype(np.float32)  # default: 2 sub-blocks of 341 rows + 318
    Q = M[rng.permutation(1000)[:40]]
    S = similarity(Q, M, metric)
    idx, val = top_similar(Q, M, 10, metric, exclude=np.arange(40))
    for r in range(0, 40, 7):
        np.testing.assert_array_equal(similarity(Q[r], M, metric), S[r])
        np.testing.assert_array_equal(similarity(Q[r:r + 3], M, metric), S[r:r + 3])
        i1, v1 = top_similar(Q[r], M, 10, metric, exclude=r)
        np.testing.assert_array_equal(i1, idx[r])
        np.testing.assert_array_equal(v1, val[r])
