"""Biased MF: prediction, RMSE, the objective, and one SGD epoch over ratings in a given order."""

from __future__ import annotations

from typing import Optional

import numpy as np
import numpy.typing as npt

from fastmf.reference._checks import _require, _check_model, _check_triples


def predict(P: np.ndarray, Q: np.ndarray, bu: Optional[np.ndarray], bi: Optional[np.ndarray], mu: float,
            users: npt.ArrayLike, items: npt.ArrayLike, biased: bool = True) -> np.ndarray:
    """Predicted ratings :math:`\\hat r_{ui} = \\mu + b_u + b_i + p_u^\\top q_i` for each pair.

    Parameters
    ----------
    P, Q : ndarray of shape (n_users, k), (n_items, k), float32 or float64
    bu, bi : ndarray of shape (n_users,), (n_items,) or None when ``biased=False``
    mu : float
    users, items : int arrays of one length (dense indices)
    biased : bool
        False predicts :math:`p_u^\\top q_i` (``bu``, ``bi`` and ``mu`` are ignored).

    Returns
    -------
    ndarray of the factors' dtype, one prediction per pair, summed left to right as
    ``((mu + b_u) + b_i) + p_u . q_i``.
    """
    dt = _check_model(P, Q, bu, bi, biased)
    users, items = np.asarray(users), np.asarray(items)
    _require(users.shape == items.shape, f"users and items must have one shape, "
                                         f"got {users.shape} and {items.shape}")
    dots = np.einsum("nk,nk->n", P[users], Q[items]).astype(dt, copy=False)
    if not biased:
        return dots
    return ((dt.type(mu) + bu[users].astype(dt)) + bi[items].astype(dt)) + dots


def rmse(P: np.ndarray, Q: np.ndarray, bu: Optional[np.ndarray], bi: Optional[np.ndarray], mu: float,
         users: npt.ArrayLike, items: npt.ArrayLike, ratings: npt.ArrayLike, biased: bool = True) -> float:
    """Root mean squared error :math:`\\sqrt{\\frac1n\\sum (r_{ui} - \\hat r_{ui})^2}`, in float64.

    Raises ValueError when there are no ratings.
    """
    users, items, ratings = _check_triples(users, items, ratings)
    _require(ratings.size > 0, "rmse of an empty set of ratings is undefined")
    err = ratings.astype(np.float64) - predict(P, Q, bu, bi, mu, users, items, biased).astype(np.float64)
    return float(np.sqrt(np.mean(err * err)))


# ---------------------------------------------------------------------------------------- orders
_M64 = (1 << 64) - 1
_M32 = (1 << 32) - 1


def sgd_epoch(users: npt.ArrayLike, items: npt.ArrayLike, ratings: npt.ArrayLike, order: npt.ArrayLike,
              P: np.ndarray, Q: np.ndarray, bu: Optional[np.ndarray], bi: Optional[np.ndarray], mu: float,
              lr: float, reg: float, reg_bias: Optional[float] = None, biased: bool = True) -> float:
    """One epoch of biased-MF stochastic gradient descent over the ratings visited in ``order``.

    For each position ``k`` in ``order`` (an int array of positions into the rating arrays), with
    ``u, i, r = users[k], items[k], ratings[k]``:

    .. math::

        e &= r - (\\mu + b_u + b_i + p_u^\\top q_i)
             \\qquad (\\text{biased=False: } e = r - p_u^\\top q_i,\\ \\text{biases untouched})\\\\
        b_u &\\leftarrow b_u + \\eta\\,(e - \\lambda_b b_u), \\qquad
        b_i \\leftarrow b_i + \\eta\\,(e - \\lambda_b b_i)\\\\
        p_u &\\leftarrow p_u + \\eta\\,(e\\, q_i - \\lambda p_u), \\qquad
        q_i \\leftarrow q_i + \\eta\\,(e\\, p_u^{\\text{old}} - \\lambda q_i)

    with :math:`\\eta` = ``lr``, :math:`\\lambda` = ``reg``, :math:`\\lambda_b` = ``reg_bias``
    (None means ``reg``). The prediction is summed left to right, ``((mu + b_u) + b_i) + p_u . q_i``.

    Parameters
    ----------
    users, items : int arrays (dense indices), ratings : float array; one entry per rating
    order : int array
        Positions to visit, in this order (a permutation, a subset, or with repeats).
    P, Q, bu, bi : ndarray, updated IN PLACE
        Factors and biases, all float32 or all float64; the arithmetic (dot product and updates) is
        done in that dtype, like the C kernel. ``bu``/``bi`` may be None when ``biased=False``.
    mu, lr, reg, reg_bias : float
        Converted to the factors' dtype.
    biased : bool

    Returns
    -------
    float
        :math:`\\sum e^2` over the epoch, each :math:`e` taken before its own update, accumulated in
        float64.
    """
    dt = _check_model(P, Q, bu, bi, biased)
    if biased:
        _require(bu.dtype == dt and bi.dtype == dt,
                 f"bu and bi must have the factors' dtype {dt}, got {bu.dtype} and {bi.dtype}")
    users, items, ratings = _check_triples(users, items, ratings)
    order = np.asarray(order)
    _require(order.ndim == 1, f"order must be 1-D, got shape {order.shape}")
    one = dt.type
    mu, lr, reg = one(mu), one(lr), one(reg)
    reg_b = reg if reg_bias is None else one(reg_bias)

    sse = 0.0
    for k in order.tolist():
        u, i, r = int(users[k]), int(items[k]), one(ratings[k])
        p_u, q_i = P[u], Q[i]                       # views: updates land in P and Q
        if biased:
            e = r - (((mu + bu[u]) + bi[i]) + np.dot(p_u, q_i))
        else:
            e = r - np.dot(p_u, q_i)
        e = one(e)
        sse += float(e) * float(e)
        if biased:
            bu[u] += lr * (e - reg_b * bu[u])
            bi[i] += lr * (e - reg_b * bi[i])
        p_old = p_u.copy()
        p_u += lr * (e * q_i - reg * p_u)
        q_i += lr * (e * p_old - reg * q_i)
    return sse


# -------------------------------------------------------------------------------- explicit ALS


def objective(users: npt.ArrayLike, items: npt.ArrayLike, ratings: npt.ArrayLike, P: np.ndarray, Q: np.ndarray,
              bu: Optional[np.ndarray], bi: Optional[np.ndarray], mu: float, reg: float,
              reg_bias: Optional[float] = None, weighted: bool = False, biased: bool = True) -> float:
    """The regularised loss that explicit ALS minimises, in float64:

    .. math::

        \\sum_{(u,i)} (r_{ui} - \\hat r_{ui})^2
        + \\sum_u \\big(\\lambda_u \\lVert p_u\\rVert^2 + \\lambda^b_u b_u^2\\big)
        + \\sum_i \\big(\\lambda_i \\lVert q_i\\rVert^2 + \\lambda^b_i b_i^2\\big)

    with :math:`\\lambda_u = \\mathrm{reg}\\cdot(n_u \\text{ if weighted else } 1)`,
    :math:`\\lambda^b_u` the same with ``reg_bias`` (None means ``reg``), :math:`n_u` the number of
    ratings of ``u``; likewise for items. ``biased=False`` drops :math:`\\mu` and the bias terms.
    """
    users, items, ratings = _check_triples(users, items, ratings)
    _check_model(P, Q, bu, bi, biased)
    reg_b = reg if reg_bias is None else reg_bias
    err = ratings.astype(np.float64) - predict(P, Q, bu, bi, mu, users, items, biased).astype(np.float64)
    total = float(err @ err)
    for X, b, idx in ((P, bu, users), (Q, bi, items)):
        scale = np.bincount(idx, minlength=X.shape[0]).astype(np.float64) if weighted else 1.0
        X64 = X.astype(np.float64)
        total += float(np.sum(reg * scale * np.einsum("nk,nk->n", X64, X64)))
        if biased:
            b64 = b.astype(np.float64)
            total += float(np.sum(reg_b * scale * b64 * b64))
    return total


# -------------------------------------------------------------------------------- implicit ALS
