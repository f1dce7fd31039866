"""The Gibbs half-sweep of Bayesian MF (csrc/als.c through fastmf._als.gibbs_half_sweep) against its
NumPy twin (fastmf.reference.bayes): the same draws given the same normals, the normals themselves,
thread-count invariance, the conditional mean (draw=False), the distribution of the draws, and
errors naming what is wrong."""

import numpy as np
import pytest

from fastmf import _als
from fastmf.reference import bayes as ref_bayes
from fastmf.reference import normals as ref_normals

from test_als_kernel import explicit_problem


def prior(m, seed):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(m, m))
    return rng.normal(size=m), A @ A.T / m + np.eye(m)


def sweep_both(dtype, biased, seed=3, n_threads=1, alpha=1.7, draw=True):
    """Run the kernel and the twin on one user half-sweep; returns both results."""
    _, csr, _, P, Q, bu, bi, mu = explicit_problem(seed, dtype=dtype)
    k = P.shape[1]
    m = k + (1 if biased else 0)
    mean0, prec0 = prior(m, seed + 1)
    P1, b1 = P.copy(), bu.copy()
    _als.gibbs_half_sweep(*csr, Q, bi if biased else None, P1, b1 if biased else None, mu, alpha, mean0, prec0,
                          seed=11, stream=5, biased=biased, n_threads=n_threads, draw=draw)
    P2, b2 = P.copy(), bu.copy()
    eps = ref_bayes.row_normals(P.shape[0], m, 11, 5) if draw else None
    ref_bayes.gibbs_half_sweep(*csr, Q, bi, P2, b2, mu, alpha, mean0, prec0, eps, biased=biased)
    return (P1, b1), (P2, b2), csr


@pytest.mark.parametrize("biased", [True, False])
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-11), (np.float32, 2e-5)])
def test_kernel_matches_reference(dtype, tol, biased):
    (P1, b1), (P2, b2), csr = sweep_both(dtype, biased)
    assert (np.diff(csr[0]) == 0).any()  # rows without ratings are drawn from the prior
    np.testing.assert_allclose(P1, P2, rtol=tol, atol=tol)
    np.testing.assert_allclose(b1, b2, rtol=tol, atol=tol)
    assert not np.array_equal(b1, np.zeros_like(b1)) or not biased


def test_conditional_mean_without_draw():
    (P1, b1), (P2, b2), _ = sweep_both(np.float64, True, draw=False)
    np.testing.assert_allclose(P1, P2, rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(b1, b2, rtol=1e-11, atol=1e-11)
    (P3, _), _, _ = sweep_both(np.float64, True, draw=True)
    assert not np.allclose(P1, P3)


def test_normals_match_the_reference_streams():
    out = _als.gibbs_normals(6, 5, 123, 9)
    np.testing.assert_allclose(out, ref_bayes.row_normals(6, 5, 123, 9), rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(out[2], ref_normals(5, 123, 9, 3), rtol=1e-14, atol=1e-15)
    assert not np.array_equal(out[0], out[1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_thread_count_invariance(dtype):
    (one, b_one), _, _ = sweep_both(dtype, True, n_threads=1)
    for nt in (2, 3, 7):
        (many, b_many), _, _ = sweep_both(dtype, True, n_threads=nt)
        assert np.array_equal(one, many) and np.array_equal(b_one, b_many)


def test_draws_have_the_conditional_distribution():
    """Many draws of one row (different streams) have the conditional mean and covariance P^-1."""
    rng = np.random.default_rng(0)
    k, n_fixed = 3, 12
    Q = rng.normal(size=(n_fixed, k))
    bi = rng.normal(size=n_fixed) * 0.3
    indptr = np.array([0, 8], dtype=np.int64)
    indices = np.sort(rng.choice(n_fixed, 8, replace=False)).astype(np.int32)
    data = rng.integers(1, 6, 8).astype(np.float64)
    mean0, prec0 = prior(k + 1, 4)
    alpha, mu = 2.0, 3.0
    Z = np.column_stack([Q[indices], np.ones(8)])
    P = prec0 + alpha * Z.T @ Z
    mean = np.linalg.solve(P, prec0 @ mean0 + alpha * Z.T @ (data - mu - bi[indices]))
    cov = np.linalg.inv(P)
    n = 4000
    draws = np.empty((n, k + 1))
    x, b = np.zeros((1, k)), np.zeros(1)
    for s in range(n):
        _als.gibbs_half_sweep(indptr, indices, data, Q, bi, x, b, mu, alpha, mean0, prec0, seed=1, stream=s)
        draws[s] = np.r_[x[0], b]
    se = np.sqrt(np.diag(cov) / n)
    assert np.all(np.abs(draws.mean(0) - mean) < 5 * se)
    # covariance entries within ~5 standard errors (Var of a sample covariance ~ (s_ii s_jj + s_ij^2) / n)
    emp = np.cov(draws.T)
    se_cov = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov ** 2) / n)
    assert np.all(np.abs(emp - cov) < 5 * se_cov)


# ------------------------------------------------------------------------------------------ errors
def args(**over):
    _, csr, _, P, Q, bu, bi, mu = explicit_problem(1)
    m = P.shape[1] + 1
    mean0, prec0 = prior(m, 2)
    a = dict(indptr=csr[0], indices=csr[1], data=csr[2], fixed_factors=Q, fixed_bias=bi, factors=P.copy(),
             bias=bu.copy(), mu=mu, alpha=1.0, prior_mean=mean0, prior_prec=prec0, seed=1, stream=2)
    a.update(over)
    return a


def test_bad_prior_shape_names_it():
    with pytest.raises(ValueError, match=r"prior_mean must have shape \(9,\) and prior_prec \(9, 9\)"):
        _als.gibbs_half_sweep(**args(prior_mean=np.zeros(8)))


def test_non_finite_prior_names_the_position():
    a = args()
    a["prior_prec"] = a["prior_prec"].copy()
    a["prior_prec"][1, 2] = np.nan
    with pytest.raises(ValueError, match=r"prior .*flat position 11\) holds a non-finite value"):
        _als.gibbs_half_sweep(**a)


@pytest.mark.parametrize("alpha", [0.0, -1.0, float("nan"), float("inf")])
def test_alpha_must_be_positive_and_finite(alpha):
    with pytest.raises(ValueError, match="alpha"):
        _als.gibbs_half_sweep(**args(alpha=alpha))


def test_prior_not_positive_definite_names_a_row():
    a = args()
    a["prior_prec"] = -np.eye(9)
    with pytest.raises(np.linalg.LinAlgError, match=r"row 0 .*not positive definite"):
        _als.gibbs_half_sweep(**a)


def test_index_out_of_range_names_the_entry():
    a = args()
    a["indices"] = a["indices"].copy()
    a["indices"][3] = 10_000
    with pytest.raises(IndexError, match=r"indices\[3\] = 10000 is outside"):
        _als.gibbs_half_sweep(**a)


# ------------------------------------------------------------------------ implicit features (bags)
def bag_problem(dtype=np.float64, seed=3):
    """A user half-sweep with prior offsets and moments out, then a bag sweep of item-held rows."""
    _, csr, csc, P, Q, bu, bi, mu = explicit_problem(seed, dtype=dtype)
    k = P.shape[1]
    m = k + 1
    rng = np.random.default_rng(seed)
    mean0, prec0 = prior(m, seed + 1)
    w_user = 1 / np.sqrt(np.maximum(np.diff(csr[0]), 1))
    psi = (0.2 * rng.normal(size=(Q.shape[0], m))).astype(dtype)
    offset = np.zeros((P.shape[0], m))
    for r in range(P.shape[0]):
        lo, hi = csr[0][r], csr[0][r + 1]
        offset[r] = w_user[r] * psi[csr[1][lo:hi]].astype(np.float64).sum(0)
    bag = (csc[0], csc[1], w_user[csc[1]].astype(dtype))
    return csr, P, Q, bu, bi, mu, mean0, prec0, offset, psi, bag


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-10), (np.float32, 1e-4)])
def test_offsets_moments_and_bag_sweep_match_reference(dtype, tol):
    csr, P, Q, bu, bi, mu, mean0, prec0, offset, psi, bag = bag_problem(dtype)
    n, m = P.shape[0], P.shape[1] + 1
    out = []
    for impl in ("c", "ref"):
        X, b, F = P.copy(), bu.copy(), psi.copy()
        G, h = np.zeros((n, m, m)), np.zeros((n, m))
        if impl == "c":
            _als.gibbs_half_sweep(*csr, Q, bi, X, b, mu, 1.3, mean0, prec0, 7, 1, prior_offset=offset,
                                  gram_out=G, resid_out=h)
            _als.gibbs_bag_sweep(*bag, G, h, mean0, prec0, F, 1.3, 7, 2)
        else:
            ref_bayes.gibbs_half_sweep(*csr, Q, bi, X, b, mu, 1.3, mean0, prec0, ref_bayes.row_normals(n, m, 7, 1),
                                       prior_offset=offset, gram_out=G, resid_out=h)
            ref_bayes.gibbs_bag_sweep(*bag, G, h, mean0, prec0, F, 1.3, ref_bayes.row_normals(F.shape[0], m, 7, 2))
        out.append((X, b, F, G, h))
    for a, b_ in zip(*out):
        np.testing.assert_allclose(a, b_, rtol=tol, atol=tol)


def test_bag_sweep_keeps_the_residual_moments_current():
    """After the bag sweep, resid equals sum_j t_j z_j - G_r theta_eff_r recomputed from scratch with
    the new implicit rows: the bookkeeping that makes the sequential draws exact."""
    csr, P, Q, bu, bi, mu, mean0, prec0, offset, psi, bag = bag_problem()
    n, m = P.shape[0], P.shape[1] + 1
    X, b, F = P.copy(), bu.copy(), psi.copy()
    G, h = np.zeros((n, m, m)), np.zeros((n, m))
    _als.gibbs_half_sweep(*csr, Q, bi, X, b, mu, 1.3, mean0, prec0, 7, 1, prior_offset=offset,
                          gram_out=G, resid_out=h)
    free = np.column_stack([X, b]) - offset                 # the rows' free parts
    _als.gibbs_bag_sweep(*bag, G, h, mean0, prec0, F, 1.3, 7, 2)
    assert not np.allclose(F, psi)
    w_user = 1 / np.sqrt(np.maximum(np.diff(csr[0]), 1))
    for r in range(n):
        lo, hi = csr[0][r], csr[0][r + 1]
        j = csr[1][lo:hi]
        theta = free[r] + w_user[r] * F[j].sum(0)
        Z = np.column_stack([Q[j], np.ones(hi - lo)])
        t = csr[2][lo:hi] - mu - bi[j]
        np.testing.assert_allclose(h[r], Z.T @ t - Z.T @ Z @ theta, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(G[r], Z.T @ Z, rtol=1e-12, atol=1e-12)


def test_bag_sweep_errors_name_the_entry():
    csr, P, Q, bu, bi, mu, mean0, prec0, offset, psi, bag = bag_problem()
    n, m = P.shape[0], P.shape[1] + 1
    G, h = np.zeros((n, m, m)), np.zeros((n, m))
    rows = bag[1].copy()
    rows[5] = n + 3
    with pytest.raises(IndexError, match=rf"bag_rows\[5\] = {n + 3} is outside \[0, {n}\)"):
        _als.gibbs_bag_sweep(bag[0], rows, bag[2], G, h, mean0, prec0, psi.copy(), 1.0, 1, 1)
    with pytest.raises(ValueError, match=r"gram must have shape"):
        _als.gibbs_bag_sweep(*bag, np.zeros((n, 3, m)), h, mean0, prec0, psi.copy(), 1.0, 1, 1)
    bad = offset.copy()
    bad[4, 1] = np.inf
    with pytest.raises(ValueError, match="row 4 of prior_offset"):
        _als.gibbs_half_sweep(*csr, Q, bi, P.copy(), bu.copy(), mu, 1.0, mean0, prec0, 1, 1, prior_offset=bad)


def test_bag_sums_match_reference_and_name_bad_indices():
    csr, P, Q, bu, bi, mu, mean0, prec0, offset, psi, bag = bag_problem(np.float32)
    w = 1 / np.sqrt(np.maximum(np.diff(csr[0]), 1))
    for nt in (1, 2):
        got = _als.bag_sums(csr[0], csr[1], psi, w, n_threads=nt)
        np.testing.assert_allclose(got, ref_bayes.bag_sums(csr[0], csr[1], psi, w), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got, offset, rtol=1e-6, atol=1e-7)
    bad = csr[1].copy()
    bad[7] = psi.shape[0]
    with pytest.raises(IndexError, match=r"indices\[7\]"):
        _als.bag_sums(csr[0], bad, psi, w)
