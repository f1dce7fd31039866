"""Tests of the iALS++ block solver (csrc/ialspp.c through fastmf._als.ials_half_sweep with
solver="ialspp") against its NumPy twin fastmf.reference.ialspp_half_sweep: equal results on the
same inputs for several k and block sizes (including blocks that do not divide k and one block, the
exact solve), the objective never rising, thread-count invariance, the long-row (chunked) path and
errors naming the row, entry or parameter."""

import numpy as np
import pytest

from fastmf import _als
from fastmf import reference as ref


def to_csr(rows, cols, vals, n_rows):
    rows, cols, vals = np.asarray(rows), np.asarray(cols), np.asarray(vals)
    order = np.lexsort((cols, rows))
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    return indptr, cols[order].astype(np.int32), np.ascontiguousarray(vals[order])


def problem(seed, n_users=40, n_items=25, k=8, density=0.3, dtype=np.float64):
    """Counts 1..9 (and a few stored zeros); users 0 and 9 and items 4 and 11 have no entries;
    factors N(0, 0.3^2): a start away from the solution, so every block step moves."""
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


# (k, block size): dividing, not dividing, b = 1, b = k, b > k, more than 8 and not a multiple of 8
SHAPES = [(8, 4), (8, 3), (5, 1), (12, 12), (7, 32), (33, 10), (40, 16)]


@pytest.mark.parametrize("k, b", SHAPES)
@pytest.mark.parametrize("scaling, nu", [("linear", 0.0), ("log", 0.0), ("linear", 0.7)])
def test_equals_reference_float64(k, b, scaling, nu):
    csr, csc, X, Y = problem(10 + k + b, k=k)
    for (indptr, indices, data), fixed, rows in ((csr, Y, X), (csc, X, Y)):
        got, want = rows.copy(), rows.copy()
        _als.ials_half_sweep(indptr, indices, data, fixed, got, 0.1, 3.0, scaling, reg_nu=nu,
                             reg_alpha0=0.2, solver="ialspp", block_size=b)
        ref.ialspp_half_sweep(indptr, indices, data, fixed, want, 0.1, 3.0, scaling, reg_nu=nu,
                              reg_alpha0=0.2, block_size=b)
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-12)
        assert not np.allclose(got, rows)                  # the sweep did something


@pytest.mark.parametrize("k, b", SHAPES)
def test_float32_close_to_reference(k, b):
    csr, _, X, Y = problem(30 + k, k=k, dtype=np.float32)
    got, want = X.copy(), X.copy()
    _als.ials_half_sweep(*csr, Y, got, 0.1, 3.0, solver="ialspp", block_size=b)
    ref.ialspp_half_sweep(*csr, Y, want, 0.1, 3.0, block_size=b)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_one_block_is_the_exact_solve(dtype):
    """block_size >= k: one Newton step on a quadratic, the Cholesky solution from any start."""
    csr, _, X, Y = problem(50, k=9, dtype=dtype)
    got, exact = X.copy(), X.copy()
    _als.ials_half_sweep(*csr, Y, got, 0.1, 3.0, reg_nu=0.5, solver="ialspp", block_size=9)
    _als.ials_half_sweep(*csr, Y, exact, 0.1, 3.0, reg_nu=0.5, solver="cholesky")
    tol = 1e-12 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(got, exact, rtol=tol, atol=tol)
    twin = X.astype(np.float64)
    ref.ials_half_sweep(*(a.astype(np.float64) if a.dtype.kind == "f" else a for a in csr),
                        Y.astype(np.float64), twin, 0.1, 3.0, reg_nu=0.5)
    np.testing.assert_allclose(got, twin, rtol=tol, atol=tol)


@pytest.mark.parametrize("b", [1, 3, 4, 16])
@pytest.mark.parametrize("scaling, nu", [("linear", 0.0), ("log", 0.0), ("linear", 1.0)])
def test_half_sweeps_never_increase_objective(b, scaling, nu):
    """Each block step is the exact minimiser over its block, so ials_objective (the loss of
    ImplicitALS, same reg / alpha / frequency scaling) cannot rise after any half-sweep."""
    csr, csc, X, Y = problem(41, k=10)
    reg, alpha, a0 = 0.05, 6.0, 0.1

    def obj():
        return ref.ials_objective(*csr, X, Y, reg, alpha, scaling, 1.0, nu, a0)

    values = [obj()]
    for _ in range(4):
        _als.ials_half_sweep(*csr, Y, X, reg, alpha, scaling, reg_nu=nu, reg_alpha0=a0, solver="ialspp",
                             block_size=b)
        values.append(obj())
        _als.ials_half_sweep(*csc, X, Y, reg, alpha, scaling, reg_nu=nu, reg_alpha0=a0, solver="ialspp",
                             block_size=b)
        values.append(obj())
    for before, after in zip(values, values[1:]):
        assert after <= before * (1 + 1e-12), values
    assert values[-1] < 0.9 * values[0], values


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_threads_bit_identical(dtype):
    csr, _, X, Y = problem(71, n_users=600, n_items=300, k=20, density=0.08, dtype=dtype)
    results = []
    for nt in (1, 2, 3):
        Xn = X.copy()
        _als.ials_half_sweep(*csr, Y, Xn, 0.1, 4.0, reg_nu=0.5, n_threads=nt, solver="ialspp", block_size=6)
        results.append(Xn)
    for Xn in results[1:]:
        np.testing.assert_array_equal(Xn, results[0])


def test_gram_argument_is_the_gram_computed_here():
    csr, _, X, Y = problem(72, k=11)
    a, b = X.copy(), X.copy()
    _als.ials_half_sweep(*csr, Y, a, 0.1, 2.0, solver="ialspp", block_size=4)
    _als.ials_half_sweep(*csr, Y, b, 0.1, 2.0, solver="ialspp", block_size=4, gram=_als.gram(Y))
    np.testing.assert_array_equal(a, b)


def test_long_rows_take_the_chunked_path():
    """A row whose gathered blocks exceed the per-thread buffer (2^21 elements) is gathered again for
    each block in chunks of entries (here 3000 entries x 1040 > 2^21, chunks of 2048 entries): the
    same result as the twin."""
    rng = np.random.default_rng(73)
    n_fixed, k, b = 3000, 1040, 1024
    indptr = np.array([0, 2, n_fixed + 2], dtype=np.int64)          # a short row, then a long one
    indices = np.concatenate([[5, 17], np.arange(n_fixed)]).astype(np.int32)
    data = rng.integers(0, 4, size=indices.size).astype(np.float32)
    Y = (0.05 * rng.normal(size=(n_fixed, k))).astype(np.float32)
    X = (0.05 * rng.normal(size=(2, k))).astype(np.float32)
    got, want = X.copy(), X.copy()
    _als.ials_half_sweep(indptr, indices, data, Y, got, 0.5, 2.0, solver="ialspp", block_size=b)
    ref.ialspp_half_sweep(indptr, indices, data, Y, want, 0.5, 2.0, block_size=b)
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=2e-5)
    assert not np.allclose(got, X, atol=1e-3)


# ------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("block_size, message", [
    (0, "block_size must be"), (1025, "block_size must be"), (2.5, "block_size must be"),
    ("32", "block_size must be"), (True, "block_size must be"),
])
def test_bad_block_size_raises(block_size, message):
    csr, _, X, Y = problem(80)
    with pytest.raises(ValueError, match=message):
        _als.ials_half_sweep(*csr, Y, X, 0.1, 1.0, solver="ialspp", block_size=block_size)


def test_bad_solver_lists_ialspp():
    csr, _, X, Y = problem(81)
    with pytest.raises(ValueError, match="solver must be one of 'cholesky', 'cg', 'ialspp'"):
        _als.ials_half_sweep(*csr, Y, X, 0.1, 1.0, solver="ials++")


def test_not_positive_definite_names_the_row():
    indptr = np.array([0, 0, 0, 0, 1, 2], dtype=np.int64)
    indices = np.zeros(2, dtype=np.int32)
    data = np.array([3.0, 1.0])
    Y = np.array([[1.0, 2.0]])
    X = np.ones((5, 2))
    with pytest.raises(np.linalg.LinAlgError, match="row 3 "):
        _als.ials_half_sweep(indptr, indices, data, Y, X, 0.0, 1.0, solver="ialspp", block_size=2)
    np.testing.assert_array_equal(X[3:], 1.0)        # the failing row (and those above) unchanged
    np.testing.assert_array_equal(X[:3], 0.0)        # empty rows solved: zeros


def test_bad_contents_name_the_entry_or_row():
    csr, _, X, Y = problem(82)
    indptr, indices, data = csr
    bad = indices.copy()
    bad[7] = Y.shape[0]
    with pytest.raises(IndexError, match=rf"indices\[7\] = {Y.shape[0]} is outside"):
        _als.ials_half_sweep(indptr, bad, data, Y, X.copy(), 0.1, 1.0, solver="ialspp")
    d = data.copy()
    d[12] = np.nan
    with pytest.raises(ValueError, match=r"data\[12\] = nan"):
        _als.ials_half_sweep(indptr, indices, d, Y, X.copy(), 0.1, 1.0, solver="ialspp")
    p = indptr.copy()
    p[-1] -= 1
    with pytest.raises(ValueError, match="indptr"):
        _als.ials_half_sweep(p, indices, data, Y, X.copy(), 0.1, 1.0, solver="ialspp")
    Yb = Y.copy()
    Yb[6, 2] = np.inf
    with pytest.raises(ValueError, match="row 6 of the fixed factors"):
        _als.ials_half_sweep(indptr, indices, data, Yb, X.copy(), 0.1, 1.0, solver="ialspp")
    Xb = X.copy()
    Xb[2, 0] = np.nan
    with pytest.raises(ValueError, match="row 2 of factors .*warm start"):
        _als.ials_half_sweep(indptr, indices, data, Y, Xb, 0.1, 1.0, solver="ialspp")
    G = Y.T @ Y
    G[0, 4] = np.nan
    with pytest.raises(ValueError, match=r"gram.flat\[4\]"):
        _als.ials_half_sweep(indptr, indices, data, Y, X.copy(), 0.1, 1.0, solver="ialspp", gram=G)


def test_empty_problems():
    k = 4
    Y = np.ones((3, k))
    indptr, indices, data = np.zeros(1, np.int64), np.zeros(0, np.int32), np.zeros(0)
    _als.ials_half_sweep(indptr, indices, data, Y, np.zeros((0, k)), 0.1, 1.0, solver="ialspp")
    X = np.ones((2, k))
    _als.ials_half_sweep(np.zeros(3, np.int64), indices, data, Y, X, 0.1, 1.0, solver="ialspp")
    np.testing.assert_array_equal(X, 0.0)
