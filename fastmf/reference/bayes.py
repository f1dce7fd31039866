"""Bayesian matrix factorization: one Gibbs half-sweep (every row of one side drawn from its Gaussian
conditional, the other side fixed), the twin of ``fastmf._als.gibbs_half_sweep``.

Model (Salakhutdinov & Mnih 2008, "Bayesian probabilistic matrix factorization using Markov chain
Monte Carlo", with biases folded into the rows): :math:`r_{ui} \\sim N(\\mu + b_u + b_i + p_u^\\top q_i,
\\alpha^{-1})`, user rows :math:`\\theta_u = [p_u, b_u] \\sim N(\\mu_U, \\Lambda_U^{-1})`, item rows the
same with their own :math:`(\\mu_I, \\Lambda_I)`. Given the fixed side, the hyper-parameters and the
noise precision :math:`\\alpha`, the rows of one side are independent Gaussians: for row :math:`r` with
entries :math:`j` (fixed rows :math:`y_j`, biases :math:`c_j`), :math:`z_j = [y_j, 1]` (bias LAST) and
targets :math:`t_j = d_j - \\mu - c_j`,

.. math::

    \\theta_r \\mid \\cdot \\sim N(m_r, P_r^{-1}),\\qquad
    P_r = \\Lambda + \\alpha \\sum_j z_j z_j^\\top,\\qquad
    P_r m_r = \\Lambda \\mu_0 + \\alpha \\sum_j t_j z_j .

A draw is :math:`\\theta_r = m_r + U_r^{-1} \\varepsilon_r` with the Cholesky factor
:math:`P_r = U_r^\\top U_r` (upper triangular) and standard normals :math:`\\varepsilon_r` (then
:math:`\\mathrm{Cov} = U_r^{-1} U_r^{-\\top} = P_r^{-1}`). A row without entries is drawn from the prior
(:math:`P_r = \\Lambda`, :math:`m_r = \\mu_0`). ``biased=False`` drops the bias column (and :math:`\\mu`,
:math:`c`): :math:`z_j = y_j`, :math:`t_j = d_j`, :math:`\\theta_r = p_r`.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from fastmf.reference._checks import _check_csr, _require


def gibbs_half_sweep(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, fixed_factors: np.ndarray,
                     fixed_bias: Optional[np.ndarray], factors: np.ndarray, bias: Optional[np.ndarray],
                     mu: float, alpha: float, prior_mean: np.ndarray, prior_prec: np.ndarray,
                     normals: Optional[np.ndarray], biased: bool = True, prior_offset: Optional[np.ndarray] = None,
                     gram_out: Optional[np.ndarray] = None, resid_out: Optional[np.ndarray] = None) -> None:
    """Draw every row of one side from its conditional (module docstring), IN PLACE.

    ``prior_mean`` (m,) and ``prior_prec`` (m, m) are :math:`\\mu_0, \\Lambda` over
    :math:`\\theta = [x, b]` (m = k + 1; m = k unbiased); ``normals`` (n_rows, m) are the standard normals
    :math:`\\varepsilon_r` (the kernel draws row ``r``'s from the stream ``(seed, stream, r + 1)``:
    :func:`row_normals`); None gives the conditional means :math:`m_r` (the kernel's ``draw=False``). Computation in float64, stored in the arrays' dtype.
    """
    n_rows = indptr.shape[0] - 1
    k = factors.shape[1]
    m = k + (1 if biased else 0)
    _require(factors.shape == (n_rows, k) and fixed_factors.ndim == 2 and fixed_factors.shape[1] == k,
             f"factors {factors.shape} and fixed_factors {fixed_factors.shape} must be 2-D with one k")
    _check_csr(indptr, indices, data, n_rows, fixed_factors.shape[0], "gibbs_half_sweep")
    _require(np.shape(prior_mean) == (m,) and np.shape(prior_prec) == (m, m),
             f"prior_mean must have shape ({m},) and prior_prec ({m}, {m})")
    _require(normals is None or np.shape(normals) == (n_rows, m), f"normals must have shape ({n_rows}, {m})")
    prec0 = np.asarray(prior_prec, dtype=np.float64)
    shift0 = prec0 @ np.asarray(prior_mean, dtype=np.float64)
    for r in range(n_rows):
        lo, hi = int(indptr[r]), int(indptr[r + 1])
        idx = indices[lo:hi]
        Z = fixed_factors[idx].astype(np.float64)
        t = data[lo:hi].astype(np.float64)
        if biased:
            Z = np.hstack([Z, np.ones((hi - lo, 1))])
            t = t - mu - fixed_bias[idx].astype(np.float64)
        G, zt = Z.T @ Z, Z.T @ t
        P = prec0 + alpha * G
        b = shift0 + alpha * zt
        if prior_offset is not None:
            b = b + prec0 @ prior_offset[r]
        U = np.linalg.cholesky(P).T                       # P = U^T U
        mean = np.linalg.solve(P, b)
        theta = mean if normals is None else mean + np.linalg.solve(U, np.asarray(normals[r], dtype=np.float64))
        factors[r] = theta[:k]
        if biased:
            bias[r] = theta[k]
        if gram_out is not None:
            gram_out[r] = G
        if resid_out is not None:
            stored = np.r_[factors[r], bias[r]] if biased else factors[r]
            resid_out[r] = zt - G @ stored.astype(np.float64)


def gibbs_bag_sweep(bag_indptr: np.ndarray, bag_rows: np.ndarray, bag_w: np.ndarray, gram: np.ndarray,
                    resid: np.ndarray, prior_mean: np.ndarray, prior_prec: np.ndarray, features: np.ndarray,
                    alpha: float, normals: Optional[np.ndarray]) -> None:
    """Draw the implicit-feature rows :math:`\\psi_j` (``features``, n_features x m) one after another
    from their exact conditionals, IN PLACE, keeping ``resid`` the residual moments (twin of
    ``fastmf._als.gibbs_bag_sweep``).

    The side's effective rows are :math:`\\tilde\\theta_r = \\theta_r + \\sum_j w_{rj} \\psi_j`; feature
    ``j`` is held by the rows ``bag_rows[bag_indptr[j]:bag_indptr[j+1]]`` with weights ``bag_w``. With
    :math:`G_r, h_r` (``gram``, ``resid``) of the current draw,

    .. math::

        P_j = \\Lambda + \\alpha \\sum_r w_{rj}^2 G_r,\\qquad
        P_j m_j = \\Lambda \\mu_0 + \\alpha \\sum_r w_{rj} (h_r + w_{rj} G_r \\psi_j),

    :math:`\\psi_j \\leftarrow m_j + U_j^{-1} \\varepsilon_j` (``normals[j]``; None: the mean), then
    :math:`h_r \\mathrel{-}= w_{rj} G_r (\\psi_j^{new} - \\psi_j^{old})` for the rows holding j.
    """
    prec0 = np.asarray(prior_prec, dtype=np.float64)
    shift0 = prec0 @ np.asarray(prior_mean, dtype=np.float64)
    for j in range(features.shape[0]):
        lo, hi = int(bag_indptr[j]), int(bag_indptr[j + 1])
        rows, w = bag_rows[lo:hi], bag_w[lo:hi].astype(np.float64)
        old = features[j].astype(np.float64)
        G = gram[rows]                                          # (n_j, m, m)
        P = prec0 + alpha * np.einsum("e,eab->ab", w * w, G)
        b = shift0 + alpha * (np.einsum("e,ea->a", w, resid[rows]) + np.einsum("e,eab,b->a", w * w, G, old))
        U = np.linalg.cholesky(P).T
        new = np.linalg.solve(P, b)
        if normals is not None:
            new = new + np.linalg.solve(U, np.asarray(normals[j], dtype=np.float64))
        features[j] = new
        step = features[j].astype(np.float64) - old
        for e, r in enumerate(rows):
            resid[r] -= w[e] * (gram[r] @ step)


def row_normals(n_rows: int, m: int, seed: int, stream: int) -> np.ndarray:
    """The (n_rows, m) standard normals ``fastmf._als.gibbs_half_sweep`` draws: row ``r`` takes the
    first ``m`` of the stream seeded from ``(seed, stream, r + 1)`` (:func:`fastmf.reference.normals`)."""
    from fastmf.reference.rng import normals

    out = np.empty((n_rows, m), dtype=np.float64)
    for r in range(n_rows):
        out[r] = normals(m, seed, stream, r + 1)
    return out


def bag_sums(indptr: np.ndarray, indices: np.ndarray, rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``out[r] = weights[r] * sum_{e in row r} rows[indices[e]]`` (float64): a side's implicit offsets
    :math:`o_r = |N(r)|^{-1/2} \\sum_{j \\in N(r)} \\psi_j` (twin of ``fastmf._als.bag_sums``)."""
    out = np.zeros((indptr.shape[0] - 1, rows.shape[1]))
    for r in range(out.shape[0]):
        out[r] = weights[r] * rows[indices[indptr[r]:indptr[r + 1]]].astype(np.float64).sum(axis=0)
    return out
