"""Twin of the factor scoring of the top-k kernels (``csrc/topk.c``: ``fastmf_topk_factors_*`` and
``fastmf_score_factors_*``).

The score of user ``u`` for item ``i`` is

.. math::

    s_{ui} = (t_{ui} + o_u) + b_i, \\qquad t_{ui} = \\sum_{j=0}^{k-1} U_{uj} V_{ij},

with :math:`t` accumulated in the factors' dtype in the order j = 0, 1, ..., k-1, each product
rounded before it is added (no FMA), then converted to float64; a term whose array is None is left
out, not added as 0. The kernels compute the same bits on every machine.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import numpy.typing as npt

__all__ = ["factor_scores"]


def factor_scores(U: npt.ArrayLike, V: npt.ArrayLike, users: Optional[npt.ArrayLike] = None,
                  item_bias: Optional[npt.ArrayLike] = None, user_offset: Optional[npt.ArrayLike] = None) -> np.ndarray:
    """``(m, n_items)`` float64 scores of ``users`` (default: every row of ``U``) by the formula above."""
    U = np.asarray(U)
    V = np.asarray(V)
    if U.dtype != V.dtype or U.ndim != 2 or V.ndim != 2 or U.shape[1] != V.shape[1]:
        raise ValueError(f"U {U.shape} {U.dtype} and V {V.shape} {V.dtype} must be matrices of one "
                         f"dtype and one number of columns")
    users = np.arange(U.shape[0]) if users is None else np.asarray(users, dtype=np.int64).reshape(-1)
    Uu = U[users]
    t = np.zeros((users.size, V.shape[0]), dtype=U.dtype)
    for j in range(U.shape[1]):
        t = t + Uu[:, j:j + 1] * V[:, j]
    s = t.astype(np.float64)
    if user_offset is not None:
        s = s + np.asarray(user_offset, dtype=np.float64)[users][:, None]
    if item_bias is not None:
        s = s + np.asarray(item_bias, dtype=np.float64)[None, :]
    return s
