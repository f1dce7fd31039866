"""Implicit ALS (Hu, Koren & Volinsky 2008): confidences, one half-sweep, the objective."""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

from fastmf.reference.linalg import cholesky_solve
from fastmf.reference._checks import _require, _check_csr


#: the confidence scaling of implicit ALS
Scaling = Literal["linear", "log"]


def confidence(data: npt.ArrayLike, alpha: float, scaling: Scaling = "linear", eps: float = 1.0) -> np.ndarray:
    """Hu-Koren-Volinsky confidence of each observed value, in float64:
    :math:`c = 1 + \\alpha r` (``"linear"``) or :math:`c = 1 + \\alpha \\log(1 + r/\\varepsilon)`
    (``"log"``)."""
    r = np.asarray(data, dtype=np.float64)
    if scaling == "linear":
        return 1.0 + alpha * r
    if scaling == "log":
        return 1.0 + alpha * np.log1p(r / eps)
    raise ValueError(f"scaling must be 'linear' or 'log', got {scaling!r}")


def _ials_lambda(reg, n_pos, n_fixed, reg_nu, reg_alpha0):
    """Frequency-scaled regularisation reg * (n_pos + reg_alpha0 * n_fixed) ** reg_nu (plain reg when
    reg_nu == 0), elementwise over n_pos."""
    n_pos = np.asarray(n_pos, dtype=np.float64)
    if reg_nu == 0:
        return reg * np.ones_like(n_pos)
    return reg * (n_pos + reg_alpha0 * n_fixed) ** reg_nu


def ials_half_sweep(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, fixed_factors: np.ndarray,
                    factors: np.ndarray, reg: float, alpha: float, scaling: Scaling = "linear", eps: float = 1.0,
                    reg_nu: float = 0.0, reg_alpha0: float = 1.0) -> None:
    """Implicit-feedback ALS (Hu, Koren & Volinsky 2008), exact solve for every row ``r``:

    .. math::

        x_r = \\big(Y^\\top Y + Y_r^\\top (C_r - I) Y_r + \\lambda I\\big)^{-1} Y_r^\\top C_r\\, p_r

    where :math:`Y` = ``fixed_factors`` (all rows), :math:`Y_r` its rows listed in row ``r`` of the
    CSR, :math:`C_r = \\mathrm{diag}(c_{rj})` with :math:`c_{rj}` = :func:`confidence` of
    ``data`` and :math:`p_{rj} = [r_{rj} > 0]`. Unlisted pairs have :math:`c = 1,\\ p = 0`; a stored
    value :math:`\\le 0` has :math:`p = 0`. This minimises, over :math:`x_r`,

    .. math::  \\sum_{j} c_{rj} (p_{rj} - x_r^\\top y_j)^2 + \\lambda \\lVert x_r\\rVert^2

    over ALL columns ``j``. Rows with no entries get :math:`x_r = 0` (the solution when
    :math:`\\lambda > 0`). Writes ``factors[r]`` IN PLACE; float64 arithmetic, stored in the arrays'
    dtype. A system that is not positive definite raises ``numpy.linalg.LinAlgError`` naming the row.

    Frequency-scaled regularisation (Rendle, Krichene, Zhang & Koren 2022, "Revisiting the
    performance of iALS on item recommendation benchmarks"): row ``r`` uses

    .. math::  \\lambda_r = \\mathrm{reg}\\,\\big(n_r^+ + \\alpha_0\\, n_{\\text{fixed}}\\big)^{\\nu}

    with :math:`n_r^+` the number of entries of row ``r`` with value > 0 (its interactions; a stored
    0 is the same as an absent pair), :math:`n_{\\text{fixed}}` the number of rows of
    ``fixed_factors``, :math:`\\nu` = ``reg_nu`` and :math:`\\alpha_0` = ``reg_alpha0``.
    ``reg_nu=0`` (the default) is plain :math:`\\lambda_r = \\mathrm{reg}`. The paper's loss weighs
    an observed pair :math:`1 + \\alpha_0` and any other pair :math:`\\alpha_0`; here (binary data)
    they weigh :math:`1 + \\alpha` and 1, the same weights times :math:`\\alpha`: the paper's
    :math:`\\alpha_0` corresponds to :math:`1/\\alpha` and its :math:`\\lambda` to ``reg / alpha``
    (the target of an observed pair differs slightly: 1 here, :math:`1/(1 + \\alpha_0)` there).
    """
    n_rows = indptr.shape[0] - 1
    _require(factors.ndim == 2 and fixed_factors.ndim == 2 and factors.shape[1] == fixed_factors.shape[1],
             f"factors {factors.shape} and fixed_factors {fixed_factors.shape} must be 2-D with one k")
    _require(factors.shape[0] == n_rows, f"factors has {factors.shape[0]} rows, the CSR has {n_rows}")
    _check_csr(indptr, indices, data, n_rows, fixed_factors.shape[0], "ials_half_sweep")
    k = factors.shape[1]
    Y = fixed_factors.astype(np.float64)
    YtY = Y.T @ Y

    for r in range(n_rows):
        lo, hi = int(indptr[r]), int(indptr[r + 1])
        if hi == lo:
            factors[r] = 0
            continue
        Y_r = Y[indices[lo:hi]]
        c_r = confidence(data[lo:hi], alpha, scaling, eps)
        p_r = (np.asarray(data[lo:hi]) > 0).astype(np.float64)
        lam = _ials_lambda(reg, p_r.sum(), Y.shape[0], reg_nu, reg_alpha0)
        A = YtY + Y_r.T @ ((c_r - 1.0)[:, None] * Y_r) + lam * np.eye(k)
        rhs = Y_r.T @ (c_r * p_r)
        try:
            factors[r] = cholesky_solve(A, rhs)
        except np.linalg.LinAlgError as exc:
            raise np.linalg.LinAlgError(
                f"ials_half_sweep: the system of row {r} is not positive definite "
                f"(reg={reg!r}, alpha={alpha!r}); use reg > 0 and non-negative confidences") from exc


def ialspp_half_sweep(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, fixed_factors: np.ndarray,
                      factors: np.ndarray, reg: float, alpha: float, scaling: Scaling = "linear", eps: float = 1.0,
                      reg_nu: float = 0.0, reg_alpha0: float = 1.0, block_size: int = 32) -> None:
    """iALS++ (Rendle, Krichene, Zhang & Koren 2021, "iALS++: Speeding up Matrix Factorization with
    Subspace Optimization"): one pass of exact block minimisations of each row's implicit-ALS
    objective (the problem of :func:`ials_half_sweep`, same confidences, preferences and
    :math:`\\lambda_r`), starting from the current ``factors[r]``.

    For row ``r`` with :math:`x` = ``factors[r]``, the prediction cache :math:`s_j = x^\\top y_j`
    over the row's entries and :math:`G = Y^\\top Y`, each block :math:`B` of ``block_size``
    coordinates in turn (``[0, b), [b, 2b), ...``, the last one shorter when b does not divide k):

    .. math::

        H_B = G_{BB} + Y_{rB}^\\top (C_r - I) Y_{rB} + \\lambda_r I,\\qquad
        g_B = G_{B:}\\, x + Y_{rB}^\\top \\big((C_r - I) s - C_r p_r\\big) + \\lambda_r x_B,

        x_B \\leftarrow x_B - H_B^{-1} g_B,\\qquad s \\leftarrow s + Y_{rB} \\,\\delta_B

    (:math:`g_B, H_B` are half the gradient and the Hessian of
    :math:`f(x) = \\sum_j c_{rj}(p_{rj} - x^\\top y_j)^2 + \\lambda_r \\lVert x\\rVert^2` over all columns
    ``j`` restricted to :math:`B`; :math:`f` is quadratic, so the step is the exact minimiser over
    :math:`x_B` and never raises :math:`f`). ``block_size >= k``: one block, the exact solve of
    :func:`ials_half_sweep`. Rows with no entries get :math:`x_r = 0`. Writes ``factors`` IN PLACE
    (float64 arithmetic, stored in its dtype); a block system that is not positive definite raises
    ``numpy.linalg.LinAlgError`` naming the row.
    """
    n_rows = indptr.shape[0] - 1
    _require(factors.ndim == 2 and fixed_factors.ndim == 2 and factors.shape[1] == fixed_factors.shape[1],
             f"factors {factors.shape} and fixed_factors {fixed_factors.shape} must be 2-D with one k")
    _require(factors.shape[0] == n_rows, f"factors has {factors.shape[0]} rows, the CSR has {n_rows}")
    _require(int(block_size) >= 1, f"block_size must be >= 1, got {block_size!r}")
    _check_csr(indptr, indices, data, n_rows, fixed_factors.shape[0], "ialspp_half_sweep")
    k = factors.shape[1]
    Y = fixed_factors.astype(np.float64)
    G = Y.T @ Y
    blocks = [slice(f0, min(f0 + int(block_size), k)) for f0 in range(0, k, int(block_size))]

    for r in range(n_rows):
        lo, hi = int(indptr[r]), int(indptr[r + 1])
        if hi == lo:
            factors[r] = 0
            continue
        Y_r = Y[indices[lo:hi]]
        c_r = confidence(data[lo:hi], alpha, scaling, eps)
        p_r = (np.asarray(data[lo:hi]) > 0).astype(np.float64)
        lam = float(_ials_lambda(reg, p_r.sum(), Y.shape[0], reg_nu, reg_alpha0))
        x = factors[r].astype(np.float64)
        s = Y_r @ x
        for B in blocks:
            Z = Y_r[:, B]
            H = G[B, B] + Z.T @ ((c_r - 1.0)[:, None] * Z) + lam * np.eye(Z.shape[1])
            g = G[B, :] @ x + Z.T @ ((c_r - 1.0) * s - c_r * p_r) + lam * x[B]
            try:
                delta = -cholesky_solve(H, g)
            except np.linalg.LinAlgError as exc:
                raise np.linalg.LinAlgError(
                    f"ialspp_half_sweep: the block system of row {r} is not positive definite "
                    f"(reg={reg!r}, alpha={alpha!r}); use reg > 0 and non-negative confidences") from exc
            x[B] += delta
            s += Z @ delta
        factors[r] = x


def ials_objective(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, user_factors: np.ndarray,
                   item_factors: np.ndarray, reg: float, alpha: float, scaling: Scaling = "linear",
                   eps: float = 1.0, reg_nu: float = 0.0, reg_alpha0: float = 1.0) -> float:
    """The implicit-ALS loss over ALL (user, item) pairs, dense (small problems only), in float64:

    .. math::

        \\sum_{u,j} c_{uj} (p_{uj} - x_u^\\top y_j)^2
        + \\lambda \\Big(\\sum_u \\lVert x_u\\rVert^2 + \\sum_j \\lVert y_j\\rVert^2\\Big)

    ``(indptr, indices, data)`` is the users x items CSR; :math:`c_{uj}` = :func:`confidence` of the
    stored value (1 for pairs not stored) and :math:`p_{uj} = [r_{uj} > 0]` (0 for pairs not stored).
    With ``reg_nu != 0`` the two sums are weighted by the frequency-scaled
    :math:`\\lambda_u = \\mathrm{reg}\\,(n_u^+ + \\alpha_0 n_{\\text{items}})^\\nu` and
    :math:`\\lambda_j = \\mathrm{reg}\\,(n_j^+ + \\alpha_0 n_{\\text{users}})^\\nu`
    (:math:`n^+` = stored values > 0; see :func:`ials_half_sweep`).
    """
    n_users, n_items = user_factors.shape[0], item_factors.shape[0]
    _check_csr(indptr, indices, data, n_users, n_items, "ials_objective")
    rows = np.repeat(np.arange(n_users), np.diff(indptr))
    C = np.ones((n_users, n_items))
    Pref = np.zeros((n_users, n_items))
    C[rows, indices] = confidence(data, alpha, scaling, eps)
    Pref[rows, indices] = np.asarray(data) > 0
    X = user_factors.astype(np.float64)
    Y = item_factors.astype(np.float64)
    resid = Pref - X @ Y.T
    if reg_nu == 0:
        return float(np.sum(C * resid * resid) + reg * (np.sum(X * X) + np.sum(Y * Y)))
    lam_u = _ials_lambda(reg, Pref.sum(axis=1), n_items, reg_nu, reg_alpha0)
    lam_j = _ials_lambda(reg, Pref.sum(axis=0), n_users, reg_nu, reg_alpha0)
    return float(np.sum(C * resid * resid) + np.sum(lam_u * np.sum(X * X, axis=1))
                 + np.sum(lam_j * np.sum(Y * Y, axis=1)))
