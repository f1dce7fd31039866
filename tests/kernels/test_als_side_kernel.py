"""csrc/als_side.c (joint ALS: the free-part targets and the Gauss-Seidel feature sweep) against its
NumPy twin fastmf.reference.als_side on small synthetic data, the sweep's objective never
increasing, bit-identical results for any thread count, and bad input raising."""

from __future__ import annotations

import numpy as np
import pytest

from fastmf import _als, _als_side
from fastmf import reference as ref
from fastmf.models.side import feature_csr


def _problem(dtype=np.float64, n_rows=13, n_fixed=11, k=4, n_features=5, seed=0, empty_feature=False):
    """A ratings CSR (rows = the side with features), fixed effective rows, free parts and a
    normalised feature matrix with an empty row (and optionally a feature no row holds)."""
    rng = np.random.default_rng(seed)
    mask = rng.random((n_rows, n_fixed)) < 0.45
    mask[3] = False  # a row without ratings
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(mask.sum(1), out=indptr[1:])
    indices = np.nonzero(mask)[1].astype(np.int32)
    data = rng.uniform(1, 5, indices.size).astype(dtype)
    X = (rng.random((n_rows, n_features)) < 0.4).astype(np.float64)
    X[5] = 0.0  # a row without features
    if empty_feature:
        X[:, -1] = 0.0
    norms = np.linalg.norm(X, axis=1)
    X[norms > 0] /= norms[norms > 0, None]
    feat, feat_t = feature_csr(X), feature_csr(np.ascontiguousarray(X.T))
    arr = lambda *shape, s=1.0: np.ascontiguousarray(rng.normal(0, s, shape), dtype=dtype)
    return dict(indptr=indptr, indices=indices, data=data, fixed=arr(n_fixed, k), fixed_bias=arr(n_fixed, s=0.3),
                free=arr(n_rows, k, s=0.2), free_bias=arr(n_rows, s=0.2), X=X, feat=feat, feat_t=feat_t,
                Z=arr(n_features, k, s=0.3), w=arr(n_features, s=0.3), mu=3.1)


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 2e-5)])
@pytest.mark.parametrize("biased", [True, False])
def test_offsets_equal_the_twin(dtype, tol, biased):
    p = _problem(dtype)
    args = (p["indptr"], p["indices"], p["data"], p["fixed"], p["feat"], p["Z"], p["w"], biased)
    got = _als_side.als_side_offsets(*args, n_threads=2)
    want = ref.als_side_offsets(*args)
    assert got.dtype == dtype
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    # by hand: d - y_j . (X Z)_r - (X w)_r
    rows = np.repeat(np.arange(13), np.diff(p["indptr"]))
    F = p["X"] @ p["Z"].astype(np.float64)
    hand = p["data"] - np.einsum("ij,ij->i", p["fixed"][p["indices"]].astype(np.float64), F[rows])
    if biased:
        hand -= (p["X"] @ p["w"].astype(np.float64))[rows]
    np.testing.assert_allclose(got, hand, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-10), (np.float32, 2e-4)])
@pytest.mark.parametrize("biased", [True, False])
@pytest.mark.parametrize("weighted", [True, False])
def test_feature_sweep_equals_the_twin(dtype, tol, biased, weighted):
    p = _problem(dtype, empty_feature=True)
    outs = []
    for fn in (_als_side.als_side_features, ref.als_side_features):
        Z, w = p["Z"].copy(), p["w"].copy()
        fn(p["indptr"], p["indices"], p["data"], p["fixed"], p["fixed_bias"], p["free"], p["free_bias"], p["mu"],
           p["feat"], p["feat_t"], Z, w, 0.05, weighted, biased)
        outs.append((Z, w))
    (Zc, wc), (Zr, wr) = outs
    assert not np.allclose(Zc, p["Z"])  # the sweep moved the feature rows
    assert not Zc[-1].any() and (not biased or wc[-1] == 0)  # the feature no row holds is 0
    np.testing.assert_allclose(Zc, Zr, rtol=tol, atol=tol)
    if biased:
        np.testing.assert_allclose(wc, wr, rtol=tol, atol=tol)
    else:
        np.testing.assert_array_equal(wc, p["w"])  # unbiased: w is not touched


def test_feature_rows_are_each_the_exact_conditional_minimiser():
    """After the sweep the last feature's row is its own exact minimiser: one more solve of it alone
    (a Gauss-Seidel sweep restricted to it, through the twin on a one-feature problem) does not move it,
    and moving it in any direction raises the objective."""
    p = _problem()
    Z, w = p["Z"].copy(), p["w"].copy()
    args = (p["indptr"], p["indices"], p["data"], p["fixed"], p["fixed_bias"], p["free"], p["free_bias"], p["mu"],
            p["feat"], p["feat_t"])
    _als_side.als_side_features(*args, Z, w, 0.05)
    csr = (p["indptr"], p["indices"], p["data"])
    # the rows are "users" here (the solved side); the fixed side is "item"
    state = {"user": (p["free"], p["free_bias"], p["free"] + (p["X"] @ Z), p["free_bias"] + p["X"] @ w),
             "item": (p["fixed"], p["fixed_bias"], p["fixed"], p["fixed_bias"])}
    hyper = (p["mu"], 0.0, 0.0, 0.0, 0.05, True, True)

    def objective(Zt, wt):
        state["user"] = (p["free"], p["free_bias"], p["free"] + p["X"] @ Zt, p["free_bias"] + p["X"] @ wt)
        return ref.als_joint_objective(csr, state, {"user": (p["feat"], p["feat_t"], p["X"], Zt, wt)}, hyper)

    base = objective(Z, w)
    rng = np.random.default_rng(1)
    last = Z.shape[0] - 1
    for _ in range(5):
        dZ = np.zeros_like(Z)
        dZ[last] = rng.normal(0, 1e-3, Z.shape[1])
        assert objective(Z + dZ, w) > base


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_bit_identical_for_any_thread_count(dtype):
    p = _problem(dtype, n_rows=60, n_fixed=40, k=8)
    got = []
    for nt in (1, 2, 3):
        off = _als_side.als_side_offsets(p["indptr"], p["indices"], p["data"], p["fixed"], p["feat"], p["Z"], p["w"],
                                         n_threads=nt)
        Z, w = p["Z"].copy(), p["w"].copy()
        _als_side.als_side_features(p["indptr"], p["indices"], p["data"], p["fixed"], p["fixed_bias"], p["free"],
                                    p["free_bias"], p["mu"], p["feat"], p["feat_t"], Z, w, 0.05, n_threads=nt)
        got.append((off, Z, w))
    for other in got[1:]:
        for a, b in zip(got[0], other):
            assert np.array_equal(a, b)


def _joint_problem(biased, sides=("item",), seed=0, weighted=True):
    """Users x items ratings with item (and user) features: the state and sides of als_joint_sweep."""
    rng = np.random.default_rng(seed)
    n_users, n_items, k = 15, 12, 3
    mask = rng.random((n_users, n_items)) < 0.5
    mask[:, 4] = False  # a cold item
    users, items = np.nonzero(mask)
    r = rng.uniform(1, 5, users.size)
    csr = (np.concatenate([[0], np.cumsum(mask.sum(1))]).astype(np.int64), items.astype(np.int32), r)
    order = np.lexsort((users, items))
    csc = (np.concatenate([[0], np.cumsum(mask.sum(0))]).astype(np.int64), users[order].astype(np.int32), r[order])
    state, jsides = {}, {}
    for kind, n, nf in (("user", n_users, 3), ("item", n_items, 4)):
        eff = rng.normal(0, 0.1, (n, k))
        b = np.zeros(n)
        if kind in sides:
            X = (rng.random((n, nf)) < 0.5).astype(np.float64)
            X[X.sum(1) == 0, 0] = 1.0
            X /= np.linalg.norm(X, axis=1, keepdims=True)
            jsides[kind] = (feature_csr(X), feature_csr(np.ascontiguousarray(X.T)), X, np.zeros((nf, k)), np.zeros(nf))
            state[kind] = (eff.copy(), b.copy(), eff, b)
        else:
            state[kind] = (eff, b, eff, b)
    hyper = (float(r.mean()) if biased else 0.0, 0.1, 0.05, 0.3, 0.02, weighted, biased)
    return csr, csc, state, jsides, hyper


@pytest.mark.parametrize("biased", [True, False])
@pytest.mark.parametrize("weighted", [True, False])
@pytest.mark.parametrize("sides", [("item",), ("user", "item")])
def test_objective_never_increases_per_sweep(biased, weighted, sides):
    """On the twin, after each step of every sweep (each side's row solve; on a side with features
    its free parts, then its feature rows)."""
    csr, csc, state, jsides, hyper = _joint_problem(biased, sides, weighted=weighted)
    seen = []
    track = lambda: seen.append(ref.als_joint_objective(csr, state, jsides, hyper))

    def half(*a):
        ref.als_half_sweep(*a)
        track()

    def feats(*a):
        ref.als_side_features(*a)
        track()

    track()
    for _ in range(4):
        ref.als_joint_sweep(csr, csc, state, jsides, hyper, half_sweep=half, features=feats)
    assert len(seen) == 1 + 4 * (2 + len(sides))
    diffs = np.diff(seen)
    assert (diffs <= 1e-9 * seen[0]).all(), seen
    assert seen[-1] < 0.8 * seen[0]


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-9), (np.float32, 3e-4)])
def test_sweep_with_the_kernels_equals_the_twin(dtype, tol):
    """als_joint_sweep with the C kernels (as the model runs it) against the all-NumPy sweep."""
    runs = []
    for kernels in (True, False):
        csr, csc, state, jsides, hyper = _joint_problem(True, ("user", "item"))
        cast = lambda a: np.ascontiguousarray(a, dtype=dtype)
        csr, csc = (csr[0], csr[1], cast(csr[2])), (csc[0], csc[1], cast(csc[2]))
        state = {k: tuple(cast(a) for a in v) for k, v in state.items()}
        jsides = {k: (s[0], s[1], s[2], cast(s[3]), cast(s[4])) for k, s in jsides.items()}
        fns = dict(half_sweep=_als.als_half_sweep, offsets=_als_side.als_side_offsets,
                   features=_als_side.als_side_features) if kernels else {}
        for _ in range(3):
            ref.als_joint_sweep(csr, csc, state, jsides, hyper, **fns)
        runs.append((state, jsides))
    (sc, jc), (sr, jr) = runs
    for kind in ("user", "item"):
        for a, b in zip(sc[kind], sr[kind]):
            np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
        np.testing.assert_allclose(jc[kind][3], jr[kind][3], rtol=tol, atol=tol)
        np.testing.assert_allclose(jc[kind][4], jr[kind][4], rtol=tol, atol=tol)


def test_bad_input_raises_naming_what():
    p = _problem()
    base = (p["indptr"], p["indices"], p["data"], p["fixed"], p["fixed_bias"], p["free"], p["free_bias"], p["mu"],
            p["feat"], p["feat_t"])
    bad_idx = p["indices"].copy()
    bad_idx[7] = 99
    with pytest.raises(IndexError, match=r"indices\[7\] = 99"):
        _als_side.als_side_offsets(p["indptr"], bad_idx, p["data"], p["fixed"], p["feat"], p["Z"], p["w"])
    fi = p["feat"][1].copy()
    fi[2] = 40
    with pytest.raises(IndexError, match="feature entry 2 names feature 40"):
        _als_side.als_side_offsets(p["indptr"], p["indices"], p["data"], p["fixed"], (p["feat"][0], fi, p["feat"][2]),
                                   p["Z"], p["w"])
    ti = p["feat_t"][1].copy()
    ti[0] = 500
    with pytest.raises(IndexError, match="transposed feature entry 0 names row 500"):
        _als_side.als_side_features(*base[:9], (p["feat_t"][0], ti, p["feat_t"][2]), p["Z"].copy(), p["w"].copy(), 0.1)
    data = p["data"].copy()
    data[3] = np.nan
    with pytest.raises(ValueError, match="data holds a non-finite value"):
        _als_side.als_side_features(base[0], base[1], data, *base[3:], p["Z"].copy(), p["w"].copy(), 0.1)
    ip = p["indptr"].copy()
    ip[4] = ip[5] + 1
    with pytest.raises(ValueError, match=r"indptr must rise"):
        _als_side.als_side_features(ip, *base[1:], p["Z"].copy(), p["w"].copy(), 0.1)
    with pytest.raises(ValueError, match="Z must have dtype float64|w must have dtype"):
        _als_side.als_side_features(*base, p["Z"].copy(), p["w"].astype(np.float32), 0.1)
    with pytest.raises(ValueError, match="reg_features"):
        _als_side.als_side_features(*base, p["Z"].copy(), p["w"].copy(), -1.0)
    # reg_features = 0 and a feature held only by row 7 (one rating, fewer than k + 1): singular
    assert np.diff(p["indptr"])[7] == 1
    X = np.zeros((13, 5))
    X[7, 0] = 1.0
    X[np.arange(13) != 7, 1] = 1.0
    one = (feature_csr(X), feature_csr(np.ascontiguousarray(X.T)))
    with pytest.raises(np.linalg.LinAlgError, match="feature 0 is not positive definite"):
        _als_side.als_side_features(*base[:8], *one, p["Z"].copy(), p["w"].copy(), 0.0)
