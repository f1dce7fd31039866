"""Biased MF with jointly learned side-feature factors (``side="joint"``): one serial SGD epoch.

The twin of csrc/sgd_side.c, written per rating in the notation of its header comment."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import numpy.typing as npt

from fastmf.reference._checks import _require, _check_triples


def _feature_part(side, r, k):
    """``(sum_g x_rg z_g, sum_g x_rg w_g, [(g, x_rg)])`` of row ``r`` of a side, in float64."""
    if side is None:
        return np.zeros(k), 0.0, []
    indptr, indices, values, Z, w = side
    lo, hi = int(indptr[r]), int(indptr[r + 1])
    entries = [(int(indices[e]), float(values[e])) for e in range(lo, hi)]
    eff = np.zeros(k)
    b = 0.0
    for g, x in entries:
        eff += x * Z[g].astype(np.float64)
        b += x * float(w[g])
    return eff, b, entries


def sgd_side_epoch(users: npt.ArrayLike, items: npt.ArrayLike, ratings: npt.ArrayLike, order: npt.ArrayLike,
                   model: Sequence[np.ndarray], user_side: Optional[tuple], item_side: Optional[tuple],
                   hyper: Sequence[float], drop: Optional[npt.ArrayLike] = None,
                   features_only: bool = False) -> float:
    r"""One epoch of SGD for biased MF with feature factors over the ratings visited in ``order``.

    With the feature row :math:`x_i` (CSR ``item_side = (indptr, indices, values, Z, w)``) and
    :math:`y_u` (``user_side``; None: that side has no features),

    .. math::

        q_i^{eff} = [d_i = 0]\, q_i + \sum_g x_{ig} z_g, \quad
        b_i^{eff} = [d_i = 0]\, b_i + \sum_g x_{ig} w_g \quad (\text{users likewise}),\\
        e = r - (\mu + b_u^{eff} + b_i^{eff} + p_u^{eff\top} q_i^{eff})

    (``biased=False``: :math:`e = r - p_u^{eff\top} q_i^{eff}`, no bias terms), where
    :math:`d_i` is bit 0 of ``drop[t]`` and :math:`d_u` bit 1 (the dropped free part is neither
    used nor updated). Then, every right-hand side before the step:

    .. math::

        b_u &\mathrel{+}= \eta (e - \lambda_b b_u), \quad b_i \mathrel{+}= \eta (e - \lambda_b b_i),\\
        p_u &\mathrel{+}= \eta (e\, q_i^{eff} - \lambda_u p_u), \quad
        q_i \mathrel{+}= \eta (e\, p_u^{eff} - \lambda_i q_i),\\
        z_g &\mathrel{+}= \eta (e\, x_{ig}\, p_u^{eff} - \lambda_s z_g), \quad
        w_g \mathrel{+}= \eta (e\, x_{ig} - \lambda_s w_g) \quad (g \in x_i;\ \text{users' rows with } q_i^{eff})

    with :math:`\lambda_u` = ``reg_free`` when the user side has features, else ``reg`` (items
    likewise), :math:`\lambda_b` = ``reg_bias``, :math:`\lambda_s` = ``reg_side``.
    ``features_only``: a rating with a dropped part updates only the feature rows
    (:math:`z, w`) of the dropped side(s), nothing else.

    ``model = (P, Q, bu, bi)`` (the free parts) and the sides' ``Z``, ``w`` are updated IN PLACE;
    the arithmetic is float64, stored in the arrays' dtype, as in the C kernel. ``hyper`` is
    ``(mu, lr, reg, reg_bias, reg_free, reg_side, biased)``. Returns :math:`\sum e^2` (each
    :math:`e` before its update).
    """
    P, Q, bu, bi = model
    users, items, ratings = _check_triples(users, items, ratings)
    order = np.asarray(order)
    _require(order.ndim == 1, f"order must be 1-D, got shape {order.shape}")
    _require(drop is None or np.shape(drop) == order.shape, "drop must have one entry per position of order")
    mu, lr, reg, reg_bias, reg_free, reg_side = (float(h) for h in hyper[:6])
    biased = bool(hyper[6])
    k = P.shape[1]
    reg_u = reg_free if user_side is not None else reg
    reg_i = reg_free if item_side is not None else reg
    sse = 0.0
    for t, pos in enumerate(order.tolist()):
        u, i, r = int(users[pos]), int(items[pos]), float(ratings[pos])
        flag = 0 if drop is None else int(drop[t])
        du, di = bool(flag & 2), bool(flag & 1)
        fu, fbu, u_entries = _feature_part(user_side, u, k)
        fi, fbi, i_entries = _feature_part(item_side, i, k)
        p = P[u].astype(np.float64)
        q = Q[i].astype(np.float64)
        pe = (0.0 if du else p) + fu
        qe = (0.0 if di else q) + fi
        dot = float(pe @ qe)
        if biased:
            bue = (0.0 if du else float(bu[u])) + fbu
            bie = (0.0 if di else float(bi[i])) + fbi
            e = r - (((mu + bue) + bie) + dot)
        else:
            e = r - dot
        sse += e * e
        frozen = features_only and (du or di)
        if biased and not frozen:
            if not du:
                bu[u] = float(bu[u]) + lr * (e - reg_bias * float(bu[u]))
            if not di:
                bi[i] = float(bi[i]) + lr * (e - reg_bias * float(bi[i]))
        if not du and not frozen:
            P[u] = (1.0 - lr * reg_u) * p + (lr * e) * qe
        if not di and not frozen:
            Q[i] = (1.0 - lr * reg_i) * q + (lr * e) * pe
        for side, entries, other, dropped in ((user_side, u_entries, qe, du), (item_side, i_entries, pe, di)):
            if side is None or (frozen and not dropped):
                continue
            Z, w = side[3], side[4]
            for g, x in entries:
                z = Z[g].astype(np.float64)
                Z[g] = (1.0 - lr * reg_side) * z + (lr * (e * x)) * other
                if biased:
                    w[g] = float(w[g]) + lr * (e * x - reg_side * float(w[g]))
    return sse
