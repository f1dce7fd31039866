"""timeSVD++ (Koren 2009): the literal per-rating SGD epoch; twin of csrc/timesvd.c.

Notation: a rating of user u for item i at time t, with its user-day row d, its item-bias bin b and
:math:`\\delta = \\mathrm{dev}_u(t)` (given per rating in ``time = (bins, days, dev)``), is predicted by

.. math::

    \\hat r = \\mu + b_u + \\alpha_u \\delta + b_{u,d} + (b_i + b_{i,b})(c_u + c_{u,d})
        + q_i^\\top (p_u + \\alpha_{pu} \\delta + p_{u,d} + z_u), \\qquad
        z_u = w_u \\sum_{j \\in N(u)} y_j.

``model`` is the dict of :mod:`fastmf._timesvd` (``P, Q, Y, bu, bi`` and the optional terms ``au,
bit, but, cu, cut, AP, PT``; an absent or None term is off), ``bag = (bag_ptr, bag_items, bag_w)``,
``hyper = (mu, lr, reg)`` with one learning rate and one penalty per group of
:data:`fastmf._timesvd.GROUPS` (order: factors, bias, implicit, drift, day_bias, bin, scale,
day_scale, factor_drift, day_factors). All arithmetic is in float64; the arrays keep their dtype.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from fastmf.reference._checks import _require

__all__ = ["timesvd_epoch", "timesvd_predict"]

# the groups' positions in hyper's lr and reg (fastmf._timesvd.GROUPS)
F, B, Y_, A, BT, BIN, C, CT, AP, PT = range(10)


def _get(model, name):
    return model.get(name)


def timesvd_predict(u: int, i: int, b: int, d: int, delta: float, model: Mapping[str, np.ndarray],
                    bag: Sequence[np.ndarray], mu: float) -> float:
    """:math:`\\hat r` of one rating (the formula of the module docstring, off terms 0, c = 1)."""
    P, Q, Y = model["P"], model["Q"], model["Y"]
    N = bag[1][bag[0][u]:bag[0][u + 1]]
    z = float(bag[2][u]) * Y[N].astype(np.float64).sum(axis=0)
    pe = P[u].astype(np.float64) + z
    if _get(model, "AP") is not None:
        pe = pe + model["AP"][u].astype(np.float64) * delta
    if _get(model, "PT") is not None:
        pe = pe + model["PT"][d].astype(np.float64)
    s = float(model["bi"][i]) + (float(model["bit"][i, b]) if _get(model, "bit") is not None else 0.0)
    c = 1.0
    if _get(model, "cu") is not None:
        c = float(model["cu"][u]) + (float(model["cut"][d]) if _get(model, "cut") is not None else 0.0)
    base = mu + float(model["bu"][u])
    if _get(model, "au") is not None:
        base += float(model["au"][u]) * delta
    if _get(model, "but") is not None:
        base += float(model["but"][d])
    return base + s * c + float(Q[i].astype(np.float64) @ pe)


def timesvd_epoch(users: npt.ArrayLike, items: npt.ArrayLike, ratings: npt.ArrayLike, order: npt.ArrayLike,
                  model: Mapping[str, np.ndarray], time: Sequence[np.ndarray], bag: Sequence[np.ndarray],
                  hyper: Sequence) -> float:
    """The per-rating timeSVD++ SGD epoch, O(|N(u)| k) per rating, as Koren (2009) writes it: for
    each position of ``order``, with :math:`e = r - \\hat r`, :math:`s = b_i + b_{i,b}`,
    :math:`c = c_u + c_{u,d}`, :math:`\\tilde p = p_u + \\alpha_{pu}\\delta + p_{u,d} + z_u` and
    every value before the step,

    .. math::

        b_u \\mathrel{+}= \\eta_b (e - \\lambda_b b_u), \\quad b_i \\mathrel{+}= \\eta_b (e c - \\lambda_b b_i),\\quad
        \\alpha_u \\mathrel{+}= \\eta_\\alpha (e \\delta - \\lambda_\\alpha \\alpha_u),\\\\
        b_{u,d} \\mathrel{+}= \\eta_{bt} (e - \\lambda_{bt} b_{u,d}), \\quad
        b_{i,b} \\mathrel{+}= \\eta_{bin} (e c - \\lambda_{bin} b_{i,b}),\\\\
        c_u \\mathrel{+}= \\eta_c (e s - \\lambda_c (c_u - 1)), \\quad
        c_{u,d} \\mathrel{+}= \\eta_{ct} (e s - \\lambda_{ct} c_{u,d}),\\\\
        p_u \\mathrel{+}= \\eta (e q_i - \\lambda p_u), \\quad
        \\alpha_{pu} \\mathrel{+}= \\eta_{ap} (e \\delta q_i - \\lambda_{ap} \\alpha_{pu}), \\quad
        p_{u,d} \\mathrel{+}= \\eta_{pt} (e q_i - \\lambda_{pt} p_{u,d}),\\\\
        q_i \\mathrel{+}= \\eta (e \\tilde p - \\lambda q_i), \\quad
        y_j \\mathrel{+}= \\eta_y (e w_u q_i - \\lambda_y y_j) \\ (j \\in N(u)).

    The row steps (:math:`p_u, \\alpha_{pu}, p_{u,d}, q_i, y_j`) are evaluated as
    :math:`x = (1 - \\eta\\lambda) x + (\\eta e) v`, the form csrc/timesvd.c computes.
    ``model`` is updated in place; returns :math:`\\sum e^2`."""
    P, Q, Y = model["P"], model["Q"], model["Y"]
    bag_ptr, bag_items, bag_w = bag
    bins, days, dev = time
    mu, lr, reg = hyper
    mu = float(mu)
    lr = [float(x) for x in lr]
    reg = [float(x) for x in reg]
    _require(len(lr) == len(reg) == 10, "one learning rate and one penalty per group")
    _require(P.shape[1] == Q.shape[1] == Y.shape[1] and Y.shape[0] == Q.shape[0],
             "P, Q, Y must have k columns and Y one row per item")
    _require(len(users) == len(items) == len(ratings) == len(bins) == len(days) == len(dev),
             "users, items, ratings and the time features must have one length")
    au, bit, but = _get(model, "au"), _get(model, "bit"), _get(model, "but")
    cu, cut = _get(model, "cu"), _get(model, "cut")
    Ap, Pt = _get(model, "AP"), _get(model, "PT")
    if cu is None:
        cut = None
    bu, bi = model["bu"], model["bi"]
    sse = 0.0
    for pos in np.asarray(order, dtype=np.int64):
        u, i, r = int(users[pos]), int(items[pos]), float(ratings[pos])
        b, d, delta = int(bins[pos]), int(days[pos]), float(dev[pos])
        N = bag_items[bag_ptr[u]:bag_ptr[u + 1]]
        w = float(bag_w[u])
        z = w * Y[N].astype(np.float64).sum(axis=0)
        p, q = P[u].astype(np.float64), Q[i].astype(np.float64)
        ap = Ap[u].astype(np.float64) if Ap is not None else None
        pt = Pt[d].astype(np.float64) if Pt is not None else None
        pe = p + z
        if ap is not None:
            pe = p + ap * delta + z
        if pt is not None:
            pe = pe + pt
        b_u, b_i = float(bu[u]), float(bi[i])
        a_u = float(au[u]) if au is not None else 0.0
        b_ut = float(but[d]) if but is not None else 0.0
        b_ib = float(bit[i, b]) if bit is not None else 0.0
        c_u = float(cu[u]) if cu is not None else 1.0
        c_ut = float(cut[d]) if cut is not None else 0.0
        s, c = b_i + b_ib, c_u + c_ut
        e = r - ((((mu + b_u) + a_u * delta) + b_ut) + s * c + float(q @ pe))
        sse += e * e
        bu[u] = b_u + lr[B] * (e - reg[B] * b_u)
        bi[i] = b_i + lr[B] * (e * c - reg[B] * b_i)
        if au is not None:
            au[u] = a_u + lr[A] * (e * delta - reg[A] * a_u)
        if but is not None:
            but[d] = b_ut + lr[BT] * (e - reg[BT] * b_ut)
        if bit is not None:
            bit[i, b] = b_ib + lr[BIN] * (e * c - reg[BIN] * b_ib)
        if cu is not None:
            cu[u] = c_u + lr[C] * (e * s - reg[C] * (c_u - 1.0))
        if cut is not None:
            cut[d] = c_ut + lr[CT] * (e * s - reg[CT] * c_ut)
        # each row step x += eta (e v - lambda x) as x = (1 - eta lambda) x + (eta e) v (the kernel's form)
        P[u] = (1.0 - lr[F] * reg[F]) * p + (lr[F] * e) * q
        if ap is not None:
            Ap[u] = (1.0 - lr[AP] * reg[AP]) * ap + (lr[AP] * (e * delta)) * q
        if pt is not None:
            Pt[d] = (1.0 - lr[PT] * reg[PT]) * pt + (lr[PT] * e) * q
        Q[i] = (1.0 - lr[F] * reg[F]) * q + (lr[F] * e) * pe
        if N.size:
            Yn = Y[N].astype(np.float64)
            Y[N] = (1.0 - lr[Y_] * reg[Y_]) * Yn + (lr[Y_] * e * w) * q[None, :]
    return sse
