"""Explicit ALS: one half-sweep (every row of one side solved with the other side fixed) and a sweep."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from fastmf.reference.linalg import cholesky_solve
from fastmf.reference._checks import _require, _check_csr


def als_half_sweep(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, fixed_factors: np.ndarray,
                   fixed_bias: Optional[np.ndarray], factors: np.ndarray, bias: Optional[np.ndarray], mu: float,
                   reg: float, reg_bias: Optional[float] = None, weighted: bool = False,
                   biased: bool = True) -> None:
    """Exact ALS update of one side: for every row ``r`` of the CSR ``(indptr, indices, data)`` (rows
    are the side being updated, ``indices`` point into the fixed side) solve

    .. math::

        \\min_{b_r,\\,x_r}\\ \\sum_{j \\in \\text{row } r}
            (d_j - \\mu - c_j - b_r - x_r^\\top y_j)^2 + \\lambda_r \\lVert x_r\\rVert^2 + \\lambda^b_r b_r^2

    with :math:`y_j` = ``fixed_factors[j]``, :math:`c_j` = ``fixed_bias[j]``,
    :math:`\\lambda_r = \\mathrm{reg}\\cdot(n_r \\text{ if weighted else } 1)` and :math:`\\lambda^b_r`
    the same with ``reg_bias`` (None means ``reg``). With :math:`Z = [\\mathbf 1, Y_r]` (one row per
    entry) these are the :math:`(k+1)\\times(k+1)` normal equations with the bias folded in:

    .. math::

        \\big(Z^\\top Z + \\mathrm{diag}(\\lambda^b_r, \\lambda_r, \\dots, \\lambda_r)\\big)
        \\begin{bmatrix} b_r \\\\ x_r \\end{bmatrix} = Z^\\top (d - \\mu - c),

    solved by Cholesky (:func:`cholesky_solve`). ``biased=False`` solves the plain
    :math:`k\\times k` system :math:`(Y_r^\\top Y_r + \\lambda_r I)\\, x_r = Y_r^\\top d` (no
    :math:`\\mu`, no biases; ``fixed_bias``/``bias`` may be None and are not touched). Rows with no
    entries get :math:`x_r = 0,\\ b_r = 0`.

    Writes ``factors[r]`` and ``bias[r]`` IN PLACE. Computation in float64, stored in the arrays'
    dtype.

    Raises
    ------
    numpy.linalg.LinAlgError
        When a row's system is not positive definite (possible only with ``reg=0``); the message
        names the row.
    """
    n_rows = indptr.shape[0] - 1
    _require(factors.ndim == 2 and fixed_factors.ndim == 2 and factors.shape[1] == fixed_factors.shape[1],
             f"factors {factors.shape} and fixed_factors {fixed_factors.shape} must be 2-D with one k")
    _require(factors.shape[0] == n_rows, f"factors has {factors.shape[0]} rows, the CSR has {n_rows}")
    _check_csr(indptr, indices, data, n_rows, fixed_factors.shape[0], "als_half_sweep")
    if biased:
        _require(bias is not None and bias.shape == (n_rows,),
                 f"bias must have shape ({n_rows},), got {None if bias is None else bias.shape}")
        _require(fixed_bias is not None and fixed_bias.shape == (fixed_factors.shape[0],),
                 f"fixed_bias must have shape ({fixed_factors.shape[0]},)")
    k = factors.shape[1]
    reg_b = reg if reg_bias is None else reg_bias

    for r in range(n_rows):
        lo, hi = int(indptr[r]), int(indptr[r + 1])
        n_r = hi - lo
        if n_r == 0:
            factors[r] = 0
            if biased:
                bias[r] = 0
            continue
        idx = indices[lo:hi]
        Y = fixed_factors[idx].astype(np.float64)                      # (n_r, k)
        scale = n_r if weighted else 1
        lam, lam_b = reg * scale, reg_b * scale
        if biased:
            Z = np.hstack([np.ones((n_r, 1)), Y])                       # (n_r, k + 1)
            target = data[lo:hi].astype(np.float64) - mu - fixed_bias[idx].astype(np.float64)
            A = Z.T @ Z + np.diag([lam_b] + [lam] * k)
            rhs = Z.T @ target
        else:
            A = Y.T @ Y + lam * np.eye(k)
            rhs = Y.T @ data[lo:hi].astype(np.float64)
        try:
            sol = cholesky_solve(A, rhs)
        except np.linalg.LinAlgError as exc:
            raise np.linalg.LinAlgError(
                f"als_half_sweep: the normal equations of row {r} ({n_r} entries) are not positive "
                f"definite (reg={reg!r}); use reg > 0") from exc
        if biased:
            bias[r] = sol[0]
            factors[r] = sol[1:]
        else:
            factors[r] = sol


def als_sweep(csr: Sequence[np.ndarray], csc: Sequence[np.ndarray], P: np.ndarray, Q: np.ndarray,
              bu: Optional[np.ndarray], bi: Optional[np.ndarray], mu: float, reg: float,
              reg_bias: Optional[float] = None, weighted: bool = False, biased: bool = True) -> None:
    """One ALS sweep: users (the rows of ``csr = (indptr, indices, data)``) with items fixed, then
    items (the rows of ``csc``, the item-major arrays whose indices are user indices) with the new
    users fixed, each by :func:`als_half_sweep`. ``csr``/``csc`` may be :data:`fastmf.data.CSR`
    tuples (only their first three fields are used). Updates ``P, Q, bu, bi`` in place."""
    als_half_sweep(csr[0], csr[1], csr[2], Q, bi, P, bu, mu, reg, reg_bias, weighted, biased)
    als_half_sweep(csc[0], csc[1], csc[2], P, bu, Q, bi, mu, reg, reg_bias, weighted, biased)
