"""Pure NumPy/Python reference implementations: the oracle every C kernel is tested against.

Everything here is written for clarity, in the notation of the docstrings, not for speed: the SGD
epoch is a Python loop over ratings and the ALS sweeps solve one small system per row. The C kernels
(``csrc/``) and their wrappers compute the same quantities; tests run both on the same inputs.

Notation (explicit feedback). A rating ``r_ui`` of user ``u`` for item ``i`` is predicted by

.. math::

    \\hat r_{ui} = \\mu + b_u + b_i + p_u^\\top q_i
    \\qquad (\\text{unbiased model: } \\hat r_{ui} = p_u^\\top q_i)

with global mean :math:`\\mu`, user and item biases :math:`b_u, b_i` (arrays ``bu``, ``bi``) and factor
rows :math:`p_u = P[u]`, :math:`q_i = Q[i]`. Both SGD (Funk; Koren, Bell & Volinsky 2009, "Matrix
factorization techniques for recommender systems") and ALS (Zhou et al. 2008, "Large-scale parallel
collaborative filtering for the Netflix prize") minimise

.. math::

    \\sum_{(u,i)} (r_{ui} - \\hat r_{ui})^2
    + \\sum_u \\big(\\lambda_u \\lVert p_u\\rVert^2 + \\lambda^b_u b_u^2\\big)
    + \\sum_i \\big(\\lambda_i \\lVert q_i\\rVert^2 + \\lambda^b_i b_i^2\\big)

with :math:`\\lambda_u = \\mathrm{reg}` (or :math:`\\mathrm{reg}\\cdot n_u` when ``weighted``, the
"weighted-lambda" regularisation of Zhou et al.) and :math:`\\lambda^b` the same with ``reg_bias``.

Implicit feedback follows Hu, Koren & Volinsky 2008, "Collaborative filtering for implicit feedback
datasets": confidences :math:`c_{uj}` and preferences :math:`p_{uj} = [r_{uj} > 0]`.

Sparse matrices are passed as CSR triples ``(indptr, indices, data)``: row ``r`` holds the columns
``indices[indptr[r]:indptr[r+1]]`` with values ``data[indptr[r]:indptr[r+1]]``. Validation of the
inputs is the callers' job; this module only checks that shapes and dtypes agree.
"""

from __future__ import annotations

from typing import Literal, Optional, Sequence, Tuple

import numpy as np
import numpy.typing as npt

#: the confidence scaling of implicit ALS
Scaling = Literal["linear", "log"]

__all__ = [
    "permutation",
    "block_permutations",
    "predict",
    "rmse",
    "sgd_epoch",
    "als_half_sweep",
    "als_sweep",
    "objective",
    "cholesky_solve",
    "confidence",
    "ials_half_sweep",
    "ials_objective",
]


# ---------------------------------------------------------------------------------------- helpers
def _require(condition, message):
    if not condition:
        raise ValueError(message)


def _check_model(P, Q, bu, bi, biased):
    """Shape/dtype agreement of the factor and bias arrays; returns the factors' dtype."""
    _require(P.ndim == 2 and Q.ndim == 2, f"P and Q must be 2-D, got shapes {P.shape} and {Q.shape}")
    _require(P.shape[1] == Q.shape[1], f"P and Q must have the same number of factors, "
                                       f"got {P.shape[1]} and {Q.shape[1]}")
    _require(P.dtype == Q.dtype, f"P and Q must share a dtype, got {P.dtype} and {Q.dtype}")
    if biased:
        _require(bu is not None and bi is not None, "bu and bi are required when biased=True")
        _require(bu.shape == (P.shape[0],), f"bu must have shape ({P.shape[0]},), got {bu.shape}")
        _require(bi.shape == (Q.shape[0],), f"bi must have shape ({Q.shape[0]},), got {bi.shape}")
    return P.dtype


def _check_triples(users: npt.ArrayLike, items: npt.ArrayLike,
                   ratings: npt.ArrayLike) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    users, items, ratings = np.asarray(users), np.asarray(items), np.asarray(ratings)
    _require(users.ndim == 1 and users.shape == items.shape == ratings.shape,
             f"users, items and ratings must be 1-D of one length, "
             f"got shapes {users.shape}, {items.shape}, {ratings.shape}")
    return users, items, ratings


def _check_csr(indptr, indices, data, n_rows, n_cols, what):
    _require(indptr.shape == (n_rows + 1,),
             f"{what}: indptr must have {n_rows + 1} entries (rows + 1), got shape {indptr.shape}")
    _require(indices.shape == data.shape == (int(indptr[-1]),),
             f"{what}: indices and data must have indptr[-1] = {int(indptr[-1])} entries, "
             f"got shapes {indices.shape} and {data.shape}")
    _require(indices.size == 0 or (indices.min() >= 0 and indices.max() < n_cols),
             f"{what}: indices must lie in [0, {n_cols}) (the rows of the fixed side)")


def cholesky_solve(A: npt.ArrayLike, b: npt.ArrayLike) -> np.ndarray:
    """Solve the symmetric positive definite system ``A x = b`` by Cholesky, in float64.

    .. math::  A = L L^\\top,\\qquad L y = b \\ (\\text{forward}),\\qquad L^\\top x = y \\ (\\text{backward})

    Raises
    ------
    numpy.linalg.LinAlgError
        When ``A`` is not (numerically) positive definite.
    """
    A = np.asarray(A, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    L = np.linalg.cholesky(A)
    n = b.shape[0]
    y = np.empty(n)
    for i in range(n):                      # forward substitution: L y = b
        y[i] = (b[i] - L[i, :i] @ y[:i]) / L[i, i]
    x = np.empty(n)
    for i in range(n - 1, -1, -1):          # back substitution: L^T x = y
        x[i] = (y[i] - L[i + 1:, i] @ x[i + 1:]) / L[i, i]
    return x


# ------------------------------------------------------------------------------------- prediction
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


def _splitmix64(x):
    """(next state, output) of splitmix64 (Steele, Lea & Flood 2014) from state ``x``."""
    x = (x + 0x9E3779B97F4A7C15) & _M64
    z = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return x, z ^ (z >> 31)


class _Xoshiro256:
    """xoshiro256** (Blackman & Vigna 2018) seeded from (seed, a, b) through splitmix64, with the
    32-bit draws (high half, then low half of each output) and bounded draws of the C kernels."""

    def __init__(self, seed, a, b):
        x, h = _splitmix64(seed & _M64)
        x, h = _splitmix64(h ^ a)
        x = h ^ b
        self.s = []
        for _ in range(4):
            x, v = _splitmix64(x)
            self.s.append(v)
        if not any(self.s):
            self.s[0] = 1
        self.spare = None

    def next64(self):
        s = self.s

        def rotl(v, r):
            return ((v << r) | (v >> (64 - r))) & _M64

        result = (rotl((s[1] * 5) & _M64, 7) * 9) & _M64
        t = (s[1] << 17) & _M64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return result

    def next32(self):
        if self.spare is not None:
            v, self.spare = self.spare, None
            return v
        x = self.next64()
        self.spare = x & _M32
        return x >> 32

    def below(self, bound):
        """Uniform in [0, bound): Lemire's multiply-shift with rejection below 2**32, else plain
        rejection sampling."""
        if bound <= _M32:
            m = self.next32() * bound
            if (m & _M32) < bound:
                threshold = ((1 << 32) - bound) % bound
                while (m & _M32) < threshold:
                    m = self.next32() * bound
            return m >> 32
        threshold = ((1 << 64) - bound) % bound
        while True:
            x = self.next64()
            if x >= threshold:
                return x % bound


def _fisher_yates(a, g):
    for i in range(len(a) - 1, 0, -1):
        j = g.below(i + 1)
        a[i], a[j] = a[j], a[i]


def permutation(n: int, seed: int, stream: int = 0) -> np.ndarray:
    """The permutation of ``0..n-1`` that ``fastmf._sgd.permutation(n, seed, stream)`` computes in C
    (Fisher-Yates with xoshiro256** seeded from ``(seed, stream)``), in pure Python: the order the
    ``"shuffle"`` schedule visits in each epoch (``stream`` = the epoch)."""
    a = list(range(n))
    _fisher_yates(a, _Xoshiro256(seed, stream, 0))
    return np.array(a, dtype=np.int64)


def normals(n: int, seed: int, stream: int = 0) -> np.ndarray:
    """``n`` standard normal draws of the xoshiro256** stream seeded from ``(seed, stream)``, as
    ``fastmf._sgd.normals`` draws them in C (csrc/rng.h, for Gibbs sampling): Marsaglia's polar
    method on uniforms ``U = (x >> 11) 2**-53`` of the 64-bit outputs ``x``, returning both normals
    of each accepted pair, the first first::

        u, v = 2 U1 - 1, 2 U2 - 1     until 0 < s = u**2 + v**2 < 1
        f = sqrt(-2 log(s) / s);  draws u f, v f

    The two agree up to the rounding of ``log`` (and FMA contraction of ``s`` on some CPUs)."""
    g = _Xoshiro256(seed, stream, 0)
    out = np.empty(n, dtype=np.float64)
    i = 0
    while i < n:
        while True:
            u = 2.0 * ((g.next64() >> 11) * 2.0**-53) - 1.0
            v = 2.0 * ((g.next64() >> 11) * 2.0**-53) - 1.0
            s = u * u + v * v
            if 0.0 < s < 1.0:
                break
        f = np.sqrt(-2.0 * np.log(s) / s)
        out[i] = u * f
        if i + 1 < n:
            out[i + 1] = v * f
        i += 2
    return out


def block_permutations(block_ptr: Sequence[int], block_order: npt.ArrayLike, seed: int, epoch: int) -> np.ndarray:
    """``block_order`` with each block's segment ``block_ptr[b] .. block_ptr[b + 1] - 1`` shuffled
    by the stream of ``(seed, epoch, b + 1)``: what ``fastmf._sgd`` does to every block of a blocked
    epoch before running it (pure Python)."""
    out = np.array(block_order, dtype=np.int64)
    for b in range(len(block_ptr) - 1):
        seg = out[block_ptr[b]:block_ptr[b + 1]].tolist()
        _fisher_yates(seg, _Xoshiro256(seed, epoch, b + 1))
        out[block_ptr[b]:block_ptr[b + 1]] = seg
    return out


# -------------------------------------------------------------------------------------------- SGD
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
