"""Tests of the ALS kernels (csrc/als.c through fastmf._als) against the NumPy reference
(fastmf.reference): explicit and implicit half-sweeps (Cholesky and conjugate gradient), the Gram
matrix and the implicit-ALS loss; thread-count invariance; errors naming the row or entry."""

import numpy as np
import pytest

from fastmf import _als
from fastmf import reference as ref


# ------------------------------------------------------------------------------------- fixtures
def to_csr(rows, cols, vals, n_rows):
    """(indptr int64, indices int32, data) with columns ascending within each row."""
    rows, cols, vals = np.asarray(rows), np.asarray(cols), np.asarray(vals)
    order = np.lexsort((cols, rows))
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    return indptr, cols[order].astype(np.int32), np.ascontiguousarray(vals[order])


def explicit_problem(seed, n_users=40, n_items=25, k=8, density=0.3, dtype=np.float64):
    """Ratings 1..5 on a random pattern; users 0 and 9 and items 4 and 11 have no ratings. Returns
    the triples, the CSR (users) and CSC (items) and a random model."""
    rng = np.random.default_rng(seed)
    mask = rng.random((n_users, n_items)) < density
    mask[[0, 9], :] = False
    mask[:, [4, 11]] = False
    users, items = np.nonzero(mask)
    ratings = rng.integers(1, 6, size=users.size).astype(dtype)
    csr = to_csr(users, items, ratings, n_users)
    csc = to_csr(items, users, ratings, n_items)
    P = (0.5 * rng.normal(size=(n_users, k))).astype(dtype)
    Q = (0.5 * rng.normal(size=(n_items, k))).astype(dtype)
    bu = (0.3 * rng.normal(size=n_users)).astype(dtype)
    bi = (0.3 * rng.normal(size=n_items)).astype(dtype)
    return (users, items, ratings), csr, csc, P, Q, bu, bi, float(ratings.mean())


def implicit_problem(seed, n_users=40, n_items=25, k=8, density=0.3, dtype=np.float64):
    """Counts 1..9 (and a few stored zeros) on a random pattern; users 0 and 9 and items 4 and 11
    have no entries."""
    rng = np.random.default_rng(seed)
    mask = rng.random((n_users, n_items)) < density
    mask[[0, 9], :] = False
    mask[:, [4, 11]] = False
    users, items = np.nonzero(mask)
    counts = rng.integers(1, 10, size=users.size).astype(dtype)
    counts[::7] = 0
    csr = to_csr(users, items, counts, n_users)
    csc = to_csr(items, users, counts, n_items)
    X = (0.3 * rng.normal(size=(n_users, k))).astype(dtype)
    Y = (0.3 * rng.normal(size=(n_items, k))).astype(dtype)
    return csr, csc, X, Y


EXPLICIT_MODES = [(True, False), (True, True), (False, False), (False, True)]   # (biased, weighted)


# ----------------------------------------------------------------------- explicit ALS vs reference
@pytest.mark.parametrize("k", [1, 8, 33])
@pytest.mark.parametrize("biased, weighted", EXPLICIT_MODES)
def test_explicit_cholesky_equals_reference(k, biased, weighted):
    _, csr, csc, P, Q, bu, bi, mu = explicit_problem(k, k=k)
    reg, reg_b = 0.15, 0.04
    P_ref, bu_ref, P_got, bu_got = P.copy(), bu.copy(), P.copy(), bu.copy()
    ref.als_half_sweep(*csr, Q, bi, P_ref, bu_ref, mu, reg, reg_b, weighted, biased)
    _als.als_half_sweep(*csr, Q, bi, P_got, bu_got, mu, reg, reg_b, weighted, biased)
    np.testing.assert_allclose(P_got, P_ref, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(bu_got, bu_ref, rtol=1e-8, atol=1e-10)
    assert np.all(P_got[[0, 9]] == 0) and (not biased or np.all(bu_got[[0, 9]] == 0))
    if not biased:
        np.testing.assert_array_equal(bu_got, bu)           # biases untouched
    # the other side, from the new user factors (rows 4 and 11 empty)
    Q_ref, bi_ref, Q_got, bi_got = Q.copy(), bi.copy(), Q.copy(), bi.copy()
    ref.als_half_sweep(*csc, P_ref, bu_ref, Q_ref, bi_ref, mu, reg, reg_b, weighted, biased)
    _als.als_half_sweep(*csc, P_ref, bu_ref, Q_got, bi_got, mu, reg, reg_b, weighted, biased)
    np.testing.assert_allclose(Q_got, Q_ref, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(bi_got, bi_ref, rtol=1e-8, atol=1e-10)
    assert np.all(Q_got[[4, 11]] == 0)


def test_explicit_unbiased_accepts_no_biases():
    _, csr, _, P, Q, _, _, mu = explicit_problem(3)
    P_ref, P_got = P.copy(), P.copy()
    ref.als_half_sweep(*csr, Q, None, P_ref, None, mu, 0.1, biased=False)
    _als.als_half_sweep(*csr, Q, None, P_got, None, mu, 0.1, biased=False)
    np.testing.assert_allclose(P_got, P_ref, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("biased", [True, False])
def test_explicit_float32_close_to_reference(biased):
    _, csr, csc, P, Q, bu, bi, mu = explicit_problem(4, dtype=np.float32)
    assert csr[2].dtype == np.float32
    P_ref, bu_ref, P_got, bu_got = P.copy(), bu.copy(), P.copy(), bu.copy()
    ref.als_half_sweep(*csr, Q, bi, P_ref, bu_ref, mu, 0.1, 0.05, biased=biased)
    _als.als_half_sweep(*csr, Q, bi, P_got, bu_got, mu, 0.1, 0.05, biased=biased)
    assert P_got.dtype == np.float32 and bu_got.dtype == np.float32
    # both compute in float64 from the same float32 inputs and round once when storing
    np.testing.assert_allclose(P_got, P_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bu_got, bu_ref, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------- implicit ALS vs reference
@pytest.mark.parametrize("k", [1, 8, 33])
@pytest.mark.parametrize("scaling", ["linear", "log"])
def test_ials_cholesky_equals_reference(k, scaling):
    csr, csc, X, Y = implicit_problem(10 + k, k=k)
    reg, alpha, eps = 0.1, 4.0, 2.0
    X_ref, X_got = X.copy() + 1.0, X.copy() + 1.0
    ref.ials_half_sweep(*csr, Y, X_ref, reg, alpha, scaling, eps)
    _als.ials_half_sweep(*csr, Y, X_got, reg, alpha, scaling, eps, solver="cholesky")
    np.testing.assert_allclose(X_got, X_ref, rtol=1e-8, atol=1e-10)
    assert np.all(X_got[[0, 9]] == 0)
    Y_ref, Y_got = Y.copy(), Y.copy()
    ref.ials_half_sweep(*csc, X_ref, Y_ref, reg, alpha, scaling, eps)
    _als.ials_half_sweep(*csc, X_ref, Y_got, reg, alpha, scaling, eps, solver="cholesky",
                         gram=X_ref.T @ X_ref)
    np.testing.assert_allclose(Y_got, Y_ref, rtol=1e-8, atol=1e-10)
    assert np.all(Y_got[[4, 11]] == 0)


@pytest.mark.parametrize("nu, a0", [(0.5, 0.2), (1.0, 0.05)])
def test_ials_frequency_scaled_reg_equals_reference(nu, a0):
    csr, _, X, Y = implicit_problem(20, k=6)
    X_ref, X_got = X.copy(), X.copy()
    ref.ials_half_sweep(*csr, Y, X_ref, 0.01, 3.0, reg_nu=nu, reg_alpha0=a0)
    _als.ials_half_sweep(*csr, Y, X_got, 0.01, 3.0, reg_nu=nu, reg_alpha0=a0, solver="cholesky")
    np.testing.assert_allclose(X_got, X_ref, rtol=1e-8, atol=1e-10)
    X_plain = X.copy()
    _als.ials_half_sweep(*csr, Y, X_plain, 0.01, 3.0, solver="cholesky")
    assert np.abs(X_plain - X_got).max() > 1e-3                 # the scaling changes the answer


def test_ials_float32_close_to_reference():
    csr, _, X, Y = implicit_problem(21, dtype=np.float32)
    X_ref, X_got, X_cg = X.copy(), X.copy(), X.copy()
    ref.ials_half_sweep(*csr, Y, X_ref, 0.1, 5.0)
    _als.ials_half_sweep(*csr, Y, X_got, 0.1, 5.0, solver="cholesky")
    _als.ials_half_sweep(*csr, Y, X_cg, 0.1, 5.0, solver="cg", cg_steps=2 * X.shape[1])
    assert X_got.dtype == np.float32
    np.testing.assert_allclose(X_got, X_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(X_cg, X_ref, rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------------------ conjugate gradient
def cg_errors(run, exact, steps):
    errors = []
    for s in steps:
        errors.append(np.abs(run(s) - exact).max())
    return errors


@pytest.mark.parametrize("biased", [True, False])
def test_explicit_cg_converges_to_cholesky(biased):
    _, csr, _, P, Q, bu, bi, mu = explicit_problem(30, n_users=30, k=8, density=0.5)
    reg = 0.5
    P_ex, bu_ex = P.copy(), bu.copy()
    _als.als_half_sweep(*csr, Q, bi, P_ex, bu_ex, mu, reg, biased=biased)
    exact = np.hstack([P_ex, bu_ex[:, None]]) if biased else P_ex
    m = exact.shape[1]                    # the system size: k + 1 when biased

    def run(steps):
        P_cg, bu_cg = P.copy(), bu.copy()    # warm start: the random model
        _als.als_half_sweep(*csr, Q, bi, P_cg, bu_cg, mu, reg, biased=biased, solver="cg", cg_steps=steps)
        return np.hstack([P_cg, bu_cg[:, None]]) if biased else P_cg

    errors = cg_errors(run, exact, [1, 2, 3, 4, 6, m])
    start = np.abs((np.hstack([P, bu[:, None]]) if biased else P) - exact).max()
    assert errors[0] < start
    for a, b in zip(errors, errors[1:]):
        assert b <= a * (1 + 1e-9) + 1e-13, errors
    assert errors[-1] < 1e-9 * np.abs(exact).max(), errors


@pytest.mark.parametrize("scaling", ["linear", "log"])
def test_ials_cg_converges_to_cholesky(scaling):
    csr, _, X, Y = implicit_problem(31, k=8, density=0.5)
    reg, alpha = 0.2, 2.0
    X_ex = X.copy()
    _als.ials_half_sweep(*csr, Y, X_ex, reg, alpha, scaling, solver="cholesky")

    def run(steps):
        X_cg = X.copy()
        _als.ials_half_sweep(*csr, Y, X_cg, reg, alpha, scaling, solver="cg", cg_steps=steps)
        return X_cg

    errors = cg_errors(run, X_ex, [1, 2, 3, 4, 6, 8])
    assert errors[0] < np.abs(X - X_ex).max()
    for a, b in zip(errors, errors[1:]):
        assert b <= a * (1 + 1e-9) + 1e-13, errors
    assert errors[-1] < 1e-9 * np.abs(X_ex).max(), errors


def test_cg_warm_start_at_the_solution_stays_there():
    csr, _, X, Y = implicit_problem(32, k=5)
    _als.ials_half_sweep(*csr, Y, X, 0.1, 3.0, solver="cholesky")
    X_cg = X.copy()
    _als.ials_half_sweep(*csr, Y, X_cg, 0.1, 3.0, solver="cg", cg_steps=3)
    np.testing.assert_allclose(X_cg, X, rtol=1e-10, atol=1e-12)


# -------------------------------------------------------------------- objectives never increase
@pytest.mark.parametrize("biased, weighted", EXPLICIT_MODES)
def test_explicit_sweeps_never_increase_objective(biased, weighted):
    (users, items, ratings), csr, csc, P, Q, bu, bi, mu = explicit_problem(40, k=5)
    reg, reg_b = 0.08, 0.02

    def obj():
        return ref.objective(users, items, ratings, P, Q, bu, bi, mu, reg, reg_b, weighted, biased)

    values = [obj()]
    for _ in range(4):
        _als.als_half_sweep(*csr, Q, bi, P, bu, mu, reg, reg_b, weighted, biased)
        values.append(obj())
        _als.als_half_sweep(*csc, P, bu, Q, bi, mu, reg, reg_b, weighted, biased)
        values.append(obj())
    for a, b in zip(values, values[1:]):
        assert b <= a * (1 + 1e-12), values
    assert values[-1] < 0.5 * values[0], values


@pytest.mark.parametrize("scaling, nu", [("linear", 0.0), ("log", 0.0), ("linear", 1.0)])
def test_ials_sweeps_never_increase_objective(scaling, nu):
    csr, csc, X, Y = implicit_problem(41, k=5)
    reg, alpha, a0 = 0.05, 6.0, 0.1

    def obj():
        return ref.ials_objective(*csr, X, Y, reg, alpha, scaling, 1.0, nu, a0)

    values = [obj()]
    for _ in range(4):
        _als.ials_half_sweep(*csr, Y, X, reg, alpha, scaling, reg_nu=nu, reg_alpha0=a0, solver="cholesky")
        values.append(obj())
        _als.ials_half_sweep(*csc, X, Y, reg, alpha, scaling, reg_nu=nu, reg_alpha0=a0, solver="cholesky")
        values.append(obj())
    for a, b in zip(values, values[1:]):
        assert b <= a * (1 + 1e-12), values
    assert values[-1] < 0.9 * values[0], values


# ------------------------------------------------------------------------------- loss and Gram
@pytest.mark.parametrize("k", [1, 8, 33])
@pytest.mark.parametrize("scaling, nu", [("linear", 0.0), ("log", 0.0), ("linear", 0.7)])
def test_ials_loss_equals_reference(k, scaling, nu):
    csr, _, X, Y = implicit_problem(50 + k, k=k)
    want = ref.ials_objective(*csr, X, Y, 0.07, 3.0, scaling, 0.5, nu, 0.3)
    got = _als.ials_loss(*csr, X, Y, 0.07, 3.0, scaling, 0.5, reg_nu=nu, reg_alpha0=0.3)
    assert got == pytest.approx(want, rel=1e-10)
    got_gram = _als.ials_loss(*csr, X, Y, 0.07, 3.0, scaling, 0.5, reg_nu=nu, reg_alpha0=0.3,
                              gram=Y.T @ Y)
    assert got_gram == pytest.approx(want, rel=1e-10)


def test_ials_loss_float32():
    csr, _, X, Y = implicit_problem(55, dtype=np.float32)
    want = ref.ials_objective(*csr, X, Y, 0.1, 2.0)
    assert _als.ials_loss(*csr, X, Y, 0.1, 2.0) == pytest.approx(want, rel=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gram_equals_numpy(dtype):
    rng = np.random.default_rng(60)
    Y = rng.normal(size=(9000, 11)).astype(dtype)       # several partial-sum blocks, k not a multiple of 8
    Y64 = Y.astype(np.float64)
    G = _als.gram(Y)
    assert G.dtype == np.float64 and G.shape == (11, 11)
    np.testing.assert_allclose(G, Y64.T @ Y64, rtol=1e-12, atol=1e-9)
    np.testing.assert_array_equal(G, G.T)
    np.testing.assert_array_equal(_als.gram(Y[:0]), np.zeros((11, 11)))


# ---------------------------------------------------------------------------- thread invariance
def big_explicit(dtype=np.float64):
    return explicit_problem(70, n_users=600, n_items=300, k=12, density=0.08, dtype=dtype)


@pytest.mark.parametrize("solver", ["cholesky", "cg"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_explicit_threads_bit_identical(solver, dtype):
    _, csr, _, P, Q, bu, bi, mu = big_explicit(dtype)
    results = []
    for nt in (1, 2, 3):
        Pn, bun = P.copy(), bu.copy()
        _als.als_half_sweep(*csr, Q, bi, Pn, bun, mu, 0.1, 0.05, True, True, n_threads=nt, solver=solver)
        results.append((Pn, bun))
    assert np.abs(results[0][0] - P).max() > 0.1
    for Pn, bun in results[1:]:
        np.testing.assert_array_equal(Pn, results[0][0])
        np.testing.assert_array_equal(bun, results[0][1])


@pytest.mark.parametrize("solver", ["cholesky", "cg"])
def test_ials_threads_bit_identical(solver):
    csr, _, X, Y = implicit_problem(71, n_users=600, n_items=300, k=12, density=0.08)
    results = []
    for nt in (1, 2, 3):
        Xn = X.copy()
        _als.ials_half_sweep(*csr, Y, Xn, 0.1, 4.0, reg_nu=0.5, n_threads=nt, solver=solver)
        results.append(Xn)
    for Xn in results[1:]:
        np.testing.assert_array_equal(Xn, results[0])
    losses = [_als.ials_loss(*csr, X, Y, 0.1, 4.0, n_threads=nt) for nt in (1, 2, 3)]
    assert losses[0] == losses[1] == losses[2]
    Ybig = np.random.default_rng(72).normal(size=(20000, 9))
    grams = [_als.gram(Ybig, n_threads=nt) for nt in (1, 2, 3)]
    np.testing.assert_array_equal(grams[0], grams[1])
    np.testing.assert_array_equal(grams[0], grams[2])


# ------------------------------------------------------------------------------ errors: systems
def deficient_rows_problem(bad_rows, n_rows=24, k=3):
    """Every row has k + 2 entries except the rows in bad_rows, which have one (singular at reg=0)."""
    rng = np.random.default_rng(80)
    rows, cols = [], []
    for r in range(n_rows):
        n = 1 if r in bad_rows else k + 2
        rows += [r] * n
        cols += sorted(rng.choice(10, size=n, replace=False).tolist())
    vals = rng.integers(1, 6, size=len(rows)).astype(np.float64)
    csr = to_csr(rows, cols, vals, n_rows)
    Y = rng.normal(size=(10, k))
    return csr, Y, np.zeros(10), np.zeros((n_rows, k)), np.zeros(n_rows)


def test_not_positive_definite_names_the_row():
    csr, Y, cb, X, b = deficient_rows_problem({17})
    X[17] = 5.0
    with pytest.raises(np.linalg.LinAlgError, match=r"row 17 \(1 entries\).*not positive definite.*reg > 0"):
        _als.als_half_sweep(*csr, Y, cb, X, b, 3.0, 0.0)
    np.testing.assert_array_equal(X[17], 5.0)              # the failing row is left as it was
    _als.als_half_sweep(*csr, Y, cb, X, b, 3.0, 1e-3)      # any reg > 0 solves it
    assert np.all(np.isfinite(X))


@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_not_positive_definite_reports_the_lowest_row(n_threads):
    csr, Y, cb, X, b = deficient_rows_problem({5, 17, 22})
    with pytest.raises(np.linalg.LinAlgError, match="row 5 "):
        _als.als_half_sweep(*csr, Y, cb, X, b, 3.0, 0.0, n_threads=n_threads)
    with pytest.raises(np.linalg.LinAlgError, match="row 5 "):
        _als.als_half_sweep(*csr, Y, None, X, None, 3.0, 0.0, biased=False, n_threads=n_threads)


def test_ials_not_positive_definite_names_the_row():
    # one fixed row, k = 2, reg = 0: G + corrections has rank 1; rows 0-2 are empty (zeros, no solve)
    indptr = np.array([0, 0, 0, 0, 1, 2], dtype=np.int64)
    indices = np.zeros(2, dtype=np.int32)
    data = np.array([3.0, 1.0])
    Y = np.array([[1.0, 2.0]])
    X = np.ones((5, 2))
    with pytest.raises(np.linalg.LinAlgError, match="row 3 "):
        _als.ials_half_sweep(indptr, indices, data, Y, X, 0.0, 1.0, solver="cholesky")
    np.testing.assert_array_equal(X[:3], 0.0)


# ------------------------------------------------------------------------------- errors: contents
def test_index_out_of_range_names_the_entry():
    _, csr, _, P, Q, bu, bi, mu = explicit_problem(90)
    indptr, indices, data = csr
    indices = indices.copy()
    indices[7] = Q.shape[0]
    with pytest.raises(IndexError, match=rf"indices\[7\] = {Q.shape[0]} is outside \[0, {Q.shape[0]}\)"):
        _als.als_half_sweep(indptr, indices, data, Q, bi, P, bu, mu, 0.1)
    indices[7] = -1
    with pytest.raises(IndexError, match=r"indices\[7\] = -1"):
        _als.ials_half_sweep(indptr, indices, data, Q, P, 0.1, 1.0)


def test_non_finite_data_names_the_entry():
    _, csr, _, P, Q, bu, bi, mu = explicit_problem(91)
    indptr, indices, data = csr
    data = data.copy()
    data[12] = np.nan
    row = int(np.searchsorted(indptr, 12, side="right") - 1)
    with pytest.raises(ValueError, match=rf"data\[12\] = nan \(row {row}\) is not finite"):
        _als.als_half_sweep(indptr, indices, data, Q, bi, P, bu, mu, 0.1, solver="cg")
    data[12] = -3.0                                    # log(1 + r/eps) undefined for r/eps <= -1
    with pytest.raises(ValueError, match=r"data\[12\]"):
        _als.ials_half_sweep(indptr, indices, data, Q, P, 0.1, 1.0, "log", eps=1.0)
    with pytest.raises(ValueError, match=r"data\[12\]"):
        _als.ials_loss(indptr, indices, data, P, Q, 0.1, 1.0, "log", eps=1.0)


def test_broken_indptr():
    _, csr, _, P, Q, bu, bi, mu = explicit_problem(92)
    indptr, indices, data = csr
    bad = indptr.copy()
    bad[5], bad[6] = bad[6] + 1, bad[5]
    with pytest.raises(ValueError, match=r"indptr must rise from 0 to len\(indices\).*indptr\[6\]"):
        _als.als_half_sweep(bad, indices, data, Q, bi, P, bu, mu, 0.1)
    bad = indptr.copy()
    bad[-1] -= 1
    with pytest.raises(ValueError, match="indptr"):
        _als.ials_half_sweep(bad, indices, data, Q, P, 0.1, 1.0)


def test_non_finite_inputs_name_the_row():
    _, csr, _, P, Q, bu, bi, mu = explicit_problem(93)
    Qb = Q.copy()
    Qb[6, 2] = np.inf
    with pytest.raises(ValueError, match="row 6 of the fixed factors"):
        _als.als_half_sweep(*csr, Qb, bi, P, bu, mu, 0.1)
    with pytest.raises(ValueError, match="row 6 of the fixed factors"):
        _als.ials_half_sweep(*csr, Qb, P, 0.1, 1.0)
    bib = bi.copy()
    bib[3] = np.nan
    with pytest.raises(ValueError, match=r"fixed_bias\[3\]"):
        _als.als_half_sweep(*csr, Q, bib, P, bu, mu, 0.1)
    Pb = P.copy()
    Pb[2, 0] = np.nan                                  # CG starts from the current rows
    with pytest.raises(ValueError, match="row 2 of factors .*warm start"):
        _als.ials_half_sweep(*csr, Q, Pb, 0.1, 1.0, solver="cg")
    _als.ials_half_sweep(*csr, Q, Pb, 0.1, 1.0, solver="cholesky")   # the exact solve ignores them
    assert np.all(np.isfinite(Pb))
    Pb[2, 0] = np.nan
    with pytest.raises(ValueError, match="row 2 of user_factors"):
        _als.ials_loss(*csr, Pb, Q, 0.1, 1.0)
    with pytest.raises(ValueError, match=r"gram.flat\[4\]"):
        G = Q.T @ Q
        G.flat[4] = np.nan
        _als.ials_half_sweep(*csr, Q, P, 0.1, 1.0, gram=G)


# --------------------------------------------------------------------------------- errors: shapes
def _explicit_args():
    _, csr, _, P, Q, bu, bi, mu = explicit_problem(95)
    return dict(indptr=csr[0], indices=csr[1], data=csr[2], fixed_factors=Q, fixed_bias=bi,
                factors=P, bias=bu, mu=mu, reg=0.1)


def _fortran(a):
    return np.asfortranarray(a)


def _readonly(a):
    a = a.copy()
    a.flags.writeable = False
    return a


BAD_EXPLICIT = [
    ("indptr", lambda a: a["indptr"][:-1], "indptr must have"),
    ("indptr", lambda a: a["indptr"].astype(np.int32), "indptr must have dtype int64"),
    ("indices", lambda a: a["indices"].astype(np.int64), "indices must have dtype int32"),
    ("indices", lambda a: a["indices"][:-1], "indices and data must have one length"),
    ("data", lambda a: a["data"].astype(np.float32), "data must have dtype float64"),
    ("data", lambda a: list(a["data"]), "data must be a numpy.ndarray"),
    ("factors", lambda a: _fortran(a["factors"]), "factors must be C-contiguous"),
    ("factors", lambda a: _readonly(a["factors"]), "factors is read-only"),
    ("factors", lambda a: a["factors"][:, :3].copy(), "same number of factors"),
    ("factors", lambda a: a["factors"].astype(np.int64), "float32 or float64"),
    ("factors", lambda a: a["factors"][:-1].copy(), "indptr must have"),
    ("fixed_factors", lambda a: a["fixed_factors"].ravel(), "fixed_factors must be 2-D"),
    ("fixed_factors", lambda a: a["factors"][:25], "factors and fixed_factors must not share memory"),
    ("bias", lambda a: a["bias"][:-1].copy(), "bias must have one entry per row of factors"),
    ("bias", lambda a: None, "required when biased=True"),
    ("fixed_bias", lambda a: a["fixed_bias"][:-2].copy(), "fixed_bias must have one entry"),
    ("fixed_bias", lambda a: a["fixed_bias"].astype(np.float32), "fixed_bias must have dtype float64"),
    ("reg", lambda a: -0.1, "reg must be >= 0"),
    ("reg", lambda a: float("nan"), "reg must be a finite number"),
    ("mu", lambda a: "3", "mu must be a finite number"),
]


@pytest.mark.parametrize("name, make, message", BAD_EXPLICIT)
def test_explicit_bad_arguments_raise(name, make, message):
    args = _explicit_args()
    args[name] = make(args)
    with pytest.raises(ValueError, match=message):
        _als.als_half_sweep(*args.values())


@pytest.mark.parametrize("kw, message", [
    (dict(n_threads=0), r"n_threads must be an int in \[1"),
    (dict(n_threads=1.5), "n_threads must be an int"),
    (dict(solver="lu"), "solver must be one of 'cholesky', 'cg'"),
    (dict(solver="cg", cg_steps=0), r"cg_steps must be an int in \[1"),
    (dict(reg_bias=-1.0), "reg_bias must be >= 0"),
])
def test_explicit_bad_options_raise(kw, message):
    args = _explicit_args()
    with pytest.raises(ValueError, match=message):
        _als.als_half_sweep(*args.values(), **kw)


@pytest.mark.parametrize("kw, message", [
    (dict(scaling="sqrt"), "scaling must be one of 'linear', 'log'"),
    (dict(eps=0.0), "eps must be > 0"),
    (dict(alpha=-1.0), "alpha must be >= 0"),
    (dict(reg_nu=-0.5), "reg_nu must be >= 0"),
    (dict(reg_alpha0=float("inf")), "reg_alpha0 must be a finite number"),
    (dict(gram=np.eye(3)), r"gram must have shape \(8, 8\)"),
    (dict(gram=np.eye(8, dtype=np.float32)), "gram must have dtype float64"),
    (dict(solver="exact"), "solver must be one of"),
])
def test_ials_bad_arguments_raise(kw, message):
    csr, _, X, Y = implicit_problem(96)
    args = dict(reg=0.1, alpha=2.0)
    args.update({k: v for k, v in kw.items() if k in args})
    rest = {k: v for k, v in kw.items() if k not in args}
    with pytest.raises(ValueError, match=message):
        _als.ials_half_sweep(*csr, Y, X, args["reg"], args["alpha"], **rest)
    if "solver" not in rest:
        with pytest.raises(ValueError, match=message):
            _als.ials_loss(*csr, X, Y, args["reg"], args["alpha"], **rest)


def test_ials_shape_errors():
    csr, _, X, Y = implicit_problem(97)
    with pytest.raises(ValueError, match="same number of factors"):
        _als.ials_half_sweep(*csr, Y[:, :3].copy(), X, 0.1, 1.0)
    with pytest.raises(ValueError, match="indptr must have"):
        _als.ials_half_sweep(*csr, Y, X[:-1].copy(), 0.1, 1.0)
    with pytest.raises(ValueError, match="fixed_factors must have dtype float64"):
        _als.ials_half_sweep(*csr, Y.astype(np.float32), X, 0.1, 1.0)
    with pytest.raises(ValueError, match="factors and fixed_factors must not share memory"):
        _als.ials_half_sweep(*csr, X[:25], X, 0.1, 1.0)
    with pytest.raises(ValueError, match="Y must be 2-D"):
        _als.gram(Y.ravel())


def test_empty_problems():
    k = 4
    Y, cb = np.ones((3, k)), np.zeros(3)
    # no rows at all
    indptr, indices, data = np.zeros(1, np.int64), np.zeros(0, np.int32), np.zeros(0)
    _als.als_half_sweep(indptr, indices, data, Y, cb, np.zeros((0, k)), np.zeros(0), 3.0, 0.1)
    _als.ials_half_sweep(indptr, indices, data, Y, np.zeros((0, k)), 0.1, 1.0)
    assert _als.ials_loss(indptr, indices, data, np.zeros((0, k)), Y, 0.5, 1.0) == pytest.approx(0.5 * 3 * k)
    # rows without entries, against an empty fixed side
    indptr = np.zeros(6, np.int64)
    for solver in ("cholesky", "cg"):
        X, b = np.full((5, k), 2.0), np.full(5, 2.0)
        _als.als_half_sweep(indptr, indices, data, np.zeros((0, k)), np.zeros(0), X, b, 3.0, 0.1,
                            solver=solver)
        np.testing.assert_array_equal(X, 0.0)
        np.testing.assert_array_equal(b, 0.0)
        X[:] = 2.0
        _als.ials_half_sweep(indptr, indices, data, np.zeros((0, k)), X, 0.1, 1.0, solver=solver)
        np.testing.assert_array_equal(X, 0.0)
