"""SVD++ (Koren 2008): the literal per-rating SGD epoch, the delayed-y epoch of the blocked
schedule, and the user-grouped visiting order; twins of csrc/svdpp.c.

Notation: :math:`\\hat r_{ui} = \\mu + b_u + b_i + q_i^\\top (p_u + z_u)`, :math:`z_u = w_u
\\sum_{j \\in N(u)} y_j`, :math:`w_u = |N(u)|^{-1/2}`; the bag :math:`N(u)` is the CSR ``(bag_ptr,
bag_items)`` over users, ``bag_w`` its weights. ``hyper = (mu, lr, reg, lr_bias, reg_bias,
lr_implicit, reg_implicit)``. All arithmetic is in float64; the model arrays keep their dtype.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import numpy.typing as npt

from fastmf.reference._checks import _require
from fastmf.reference.rng import _fisher_yates, _Xoshiro256, permutation

__all__ = ["svdpp_epoch", "svdpp_epoch_delayed", "svdpp_user_order", "svdpp_user_sums"]


def svdpp_user_sums(Y: np.ndarray, bag_ptr: np.ndarray, bag_items: np.ndarray, bag_w: np.ndarray) -> np.ndarray:
    """:math:`z_u = w_u \\sum_{j \\in N(u)} y_j` for every user, float64 (n_users, k)."""
    Z = np.zeros((bag_ptr.size - 1, Y.shape[1]))
    for u in range(bag_ptr.size - 1):
        N = bag_items[bag_ptr[u]:bag_ptr[u + 1]]
        Z[u] = bag_w[u] * Y[N].astype(np.float64).sum(axis=0)
    return Z


def _check(users, items, ratings, order, model, bag):
    P, Q, Y, bu, bi = model
    _require(P.shape[1] == Q.shape[1] == Y.shape[1] and Y.shape[0] == Q.shape[0],
             "P, Q, Y must have k columns and Y one row per item")
    _require(len(users) == len(items) == len(ratings), "users, items, ratings must have one length")
    _require(bag[0].size == P.shape[0] + 1 and bag[2].size == P.shape[0], "the bag must cover every user")


def svdpp_epoch(users: npt.ArrayLike, items: npt.ArrayLike, ratings: npt.ArrayLike, order: npt.ArrayLike,
                model: Sequence[np.ndarray], bag: Sequence[np.ndarray], hyper: Sequence[float]) -> float:
    """The per-rating SVD++ SGD epoch, O(|N(u)| k) per rating, exactly as written in Koren (2008) and
    in Surprise's ``SVDpp``: for each position of ``order``, with :math:`e = r - \\hat r_{ui}` and
    :math:`p_u, q_i` before the step,

    .. math::

        b_u \\mathrel{+}= \\eta_b (e - \\lambda_b b_u), \\quad b_i \\mathrel{+}= \\eta_b (e - \\lambda_b b_i),\\\\
        p_u \\mathrel{+}= \\eta (e q_i - \\lambda p_u), \\quad
        q_i \\mathrel{+}= \\eta (e (p_u + z_u) - \\lambda q_i),\\\\
        y_j \\mathrel{+}= \\eta_y (e w_u q_i - \\lambda_y y_j) \\quad (j \\in N(u)).

    ``model = (P, Q, Y, bu, bi)`` is updated in place; returns :math:`\\sum e^2`."""
    P, Q, Y, bu, bi = model
    bag_ptr, bag_items, bag_w = bag
    mu, lr, reg, lrb, regb, lry, regy = (float(h) for h in hyper)
    _check(users, items, ratings, order, model, bag)
    sse = 0.0
    for pos in np.asarray(order, dtype=np.int64):
        u, i, r = int(users[pos]), int(items[pos]), float(ratings[pos])
        N = bag_items[bag_ptr[u]:bag_ptr[u + 1]]
        w = float(bag_w[u])
        z = w * Y[N].astype(np.float64).sum(axis=0)
        p, q = P[u].astype(np.float64), Q[i].astype(np.float64)
        e = r - (((mu + float(bu[u])) + float(bi[i])) + float(q @ (p + z)))
        sse += e * e
        bu[u] = float(bu[u]) + lrb * (e - regb * float(bu[u]))
        bi[i] = float(bi[i]) + lrb * (e - regb * float(bi[i]))
        P[u] = p + lr * (e * q - reg * p)
        Q[i] = q + lr * (e * (p + z) - reg * q)
        if N.size:
            Y[N] = Y[N].astype(np.float64) + lry * (e * w * q[None, :] - regy * Y[N].astype(np.float64))
    return sse


def svdpp_epoch_delayed(users: npt.ArrayLike, items: npt.ArrayLike, ratings: npt.ArrayLike, order: npt.ArrayLike,
                        model: Sequence[np.ndarray], bag: Sequence[np.ndarray], hyper: Sequence[float]) -> float:
    """The epoch of the blocked schedule over ``order``: the y steps delayed to the end of the sweep.

    Each user's sum starts as :math:`z_u = w_u \\sum_{j \\in N(u)} y_j` of the sweep's start and
    follows the user's own ratings, :math:`z_u \\leftarrow a z_u + \\eta_y e\\, w_u^2 |N(u)|\\, q_i`,
    while :math:`g_u \\leftarrow a g_u + \\eta_y e w_u q_i` collects the y gradient
    (:math:`a = 1 - \\eta_y \\lambda_y`); p, q and the biases move as in :func:`svdpp_epoch` with
    :math:`z_u` in place of the sum. At the end, :math:`y_j \\leftarrow a^{c_j} y_j + \\gamma_j \\sum_{u: j \\in
    N(u)} g_u` with :math:`c_j` the ratings (in ``order``) of the users holding j and
    :math:`\\gamma_j = (1 - a^{c_j}) / (c_j (1 - a))` (1 for :math:`c_j = 0`). Returns
    :math:`\\sum e^2`."""
    P, Q, Y, bu, bi = model
    bag_ptr, bag_items, bag_w = bag
    mu, lr, reg, lrb, regb, lry, regy = (float(h) for h in hyper)
    _check(users, items, ratings, order, model, bag)
    a = 1.0 - lry * regy
    Z = svdpp_user_sums(Y, bag_ptr, bag_items, bag_w)
    G = np.zeros_like(Z)
    n_rated = np.zeros(P.shape[0], dtype=np.int64)
    sse = 0.0
    for pos in np.asarray(order, dtype=np.int64):
        u, i, r = int(users[pos]), int(items[pos]), float(ratings[pos])
        size = int(bag_ptr[u + 1] - bag_ptr[u])
        w = float(bag_w[u])
        p, q = P[u].astype(np.float64), Q[i].astype(np.float64)
        e = r - (((mu + float(bu[u])) + float(bi[i])) + float(q @ (p + Z[u])))
        sse += e * e
        bu[u] = float(bu[u]) + lrb * (e - regb * float(bu[u]))
        bi[i] = float(bi[i]) + lrb * (e - regb * float(bi[i]))
        P[u] = p + lr * (e * q - reg * p)
        Q[i] = q + lr * (e * (p + Z[u]) - reg * q)
        if size:
            Z[u] = a * Z[u] + lry * e * (w * w * size) * q
            G[u] = a * G[u] + lry * e * w * q
            n_rated[u] += 1
    Ynew = Y.astype(np.float64)
    count = np.zeros(Y.shape[0], dtype=np.int64)
    add = np.zeros_like(Ynew)
    for u in range(P.shape[0]):
        N = bag_items[bag_ptr[u]:bag_ptr[u + 1]]
        count[N] += n_rated[u]
        add[N] += G[u]
    c = count.astype(np.float64)
    gain = np.ones_like(c)
    if a < 1.0:
        gain[c > 0] = (1.0 - a ** c[c > 0]) / (c[c > 0] * (1.0 - a))
    Y[...] = (a ** c)[:, None] * Ynew + gain[:, None] * add
    return sse


def svdpp_user_order(indptr: npt.ArrayLike, seed: int, epoch: int) -> np.ndarray:
    """The serial epoch's visiting order over ratings stored by user (CSR ``indptr``): the users in
    ``permutation(n_users, seed, epoch)``, each user's positions ``indptr[u] .. indptr[u+1]-1``
    shuffled by the stream ``(seed, epoch, u + 1)`` (pure Python)."""
    indptr = np.asarray(indptr, dtype=np.int64)
    out = []
    for u in permutation(indptr.size - 1, seed, epoch).tolist():
        seg = list(range(int(indptr[u]), int(indptr[u + 1])))
        _fisher_yates(seg, _Xoshiro256(seed, epoch, u + 1))
        out.extend(seg)
    return np.array(out, dtype=np.int64)
