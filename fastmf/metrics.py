"""Accuracy and ranking metrics: plain functions over NumPy arrays.

Rating metrics take the true and predicted ratings as two aligned 1-D arrays. Ranking metrics take

``recommended``
    a 2-D integer array ``(n_users, k)`` of item indices in rank order (best first), padded at the end
    of a row with ``-1`` when a user has fewer than ``k`` recommendations. An item may appear at most
    once in a row.
``relevant``
    each user's set of relevant items, row-aligned with ``recommended``, in one of three forms:

    * a tuple ``(indptr, indices)``: user ``u``'s items are ``indices[indptr[u]:indptr[u + 1]]``
      (compressed sparse row layout);
    * any object with ``indptr`` and ``indices`` attributes (a :data:`fastmf.data.CSR` from
      ``Ratings.to_csr()``, a ``scipy.sparse`` CSR matrix; only the sparsity structure is read);
    * a list of per-user sequences of item indices (converted once to the form above).

    A tuple is always read as ``(indptr, indices)``; give per-user sets as a list.

Every ranking metric is computed for all users at once: the relevant pairs become sorted int64 keys
``user * n_cols + item`` and each recommended pair is looked up with one ``np.searchsorted``, giving a
boolean hit matrix ``H`` (``H[u, i]`` is True when the item at rank ``i + 1`` is relevant to ``u``).
The metrics are then row reductions of ``H`` (no Python loop over users).

Users with no relevant item have no defined recall, nDCG or AP; they are **excluded from the mean** of
every ranking metric (so that all five metrics average over the same users) and get ``NaN`` in the
``per_user=True`` output. Which users to evaluate is the caller's decision: pass only those rows.
"""

from __future__ import annotations

import numbers
from typing import Any, Dict, Optional, Protocol, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

from fastmf._validation import first_true

__all__ = [
    "rmse",
    "mae",
    "precision_at_k",
    "recall_at_k",
    "ndcg_at_k",
    "map_at_k",
    "hit_rate_at_k",
    "ranking_metrics",
    "coverage",
]

RANKING_METRICS = ("precision", "recall", "ndcg", "map", "hit_rate")


class CSRLike(Protocol):
    """Anything with CSR ``indptr`` and ``indices`` arrays: :data:`fastmf.data.CSR`, a
    ``scipy.sparse.csr_matrix``..."""

    indptr: Any
    indices: Any


#: each user's relevant items: ``(indptr, indices)``, a CSR-like object or one array-like per user
Relevant = Union[Tuple[npt.ArrayLike, npt.ArrayLike], CSRLike, Sequence[npt.ArrayLike]]


# ---------------------------------------------------------------------- rating metrics
def _check_pair(y_true, y_pred):
    """Both arrays as float64, 1-D, of one non-zero length and finite; else ValueError naming where."""
    arrays = []
    for name, values in (("y_true", y_true), ("y_pred", y_pred)):
        arr = np.asarray(values)
        if arr.ndim != 1:
            raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
        if arr.dtype.kind not in "biuf":
            raise ValueError(f"{name} must hold numbers, got dtype {arr.dtype}")
        arrays.append(arr)
    t, p = arrays
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred differ in length: {t.shape[0]} != {p.shape[0]}")
    if t.shape[0] == 0:
        raise ValueError("y_true and y_pred are empty")
    for name, arr in (("y_true", t), ("y_pred", p)):
        if arr.dtype.kind == "f":
            bad = first_true(~np.isfinite(arr))
            if bad >= 0:
                raise ValueError(f"{name}[{bad}] = {float(arr[bad])} is not finite")
    return t.astype(np.float64, copy=False), p.astype(np.float64, copy=False)


def rmse(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> float:
    r"""Root mean squared error.

    .. math::

        \mathrm{RMSE} = \sqrt{\frac{1}{n} \sum_{j=1}^{n} (\hat r_j - r_j)^2}

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n,)
        True and predicted ratings, aligned. Accumulated in float64 whatever their dtype.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        On empty input, different lengths, a non-numeric dtype, or a NaN/inf (the message names the
        array and the position).
    """
    t, p = _check_pair(y_true, y_pred)
    d = p - t
    return float(np.sqrt(np.dot(d, d) / d.shape[0]))


def mae(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> float:
    r"""Mean absolute error.

    .. math::

        \mathrm{MAE} = \frac{1}{n} \sum_{j=1}^{n} |\hat r_j - r_j|

    Parameters and errors as :func:`rmse` (float64 accumulation).
    """
    t, p = _check_pair(y_true, y_pred)
    return float(np.mean(np.abs(p - t)))


# ---------------------------------------------------------------------- input checks for ranking
def _check_k(k, n_cols):
    if k is None:
        return n_cols
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, numbers.Integral) or k < 1:
        raise ValueError(f"k must be None or a positive int, got {k!r}")
    if k > n_cols:
        raise ValueError(f"k={k} exceeds the {n_cols} columns of recommended; pad rows with -1 to "
                         "evaluate at a larger k")
    return int(k)


def _check_recommended(recommended, k):
    """``recommended[:, :k]`` as int64 after checking shape, dtype, padding and duplicates."""
    rec = np.asarray(recommended)
    if rec.ndim != 2:
        raise ValueError(f"recommended must be 2-D (n_users, k), got shape {rec.shape}")
    if rec.shape[0] == 0:
        raise ValueError("recommended is empty: it has no rows (users)")
    if rec.shape[1] == 0:
        raise ValueError("recommended has no columns (no recommendations)")
    if rec.dtype.kind not in "iu":
        raise ValueError(f"recommended must hold integer item indices, got dtype {rec.dtype}")
    k = _check_k(k, rec.shape[1])
    rec = np.ascontiguousarray(rec[:, :k], dtype=np.int64)
    bad = first_true((rec < -1).reshape(-1))
    if bad >= 0:
        r, c = divmod(bad, k)
        raise ValueError(f"recommended[{r}, {c}] = {rec[r, c]} is negative; only -1 (padding) is allowed")
    pad = rec < 0
    bad = first_true((pad[:, :-1] & ~pad[:, 1:]).reshape(-1))
    if bad >= 0:
        r, c = divmod(bad, k - 1)
        raise ValueError(f"recommended[{r}, {c + 1}] = {rec[r, c + 1]} follows -1 padding in row {r}; "
                         "padding must come at the end of a row")
    if k > 1:
        srt = np.sort(rec, axis=1)
        dup = (srt[:, 1:] == srt[:, :-1]) & (srt[:, 1:] >= 0)
        bad = first_true(dup.reshape(-1))
        if bad >= 0:
            r, c = divmod(bad, k - 1)
            raise ValueError(f"recommended row {r} lists item {srt[r, c]} more than once")
    return rec, k


def _int_1d(values, name):
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.dtype.kind not in "iu":
        if arr.size == 0:
            return np.empty(0, dtype=np.int64)
        raise ValueError(f"{name} must hold integer item indices, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def _relevant_csr(relevant, n_users):
    """``(indptr, indices)`` int64 arrays, row-aligned with the ``n_users`` rows of recommended."""
    if hasattr(relevant, "indptr") and hasattr(relevant, "indices"):
        indptr, indices = relevant.indptr, relevant.indices
    elif isinstance(relevant, tuple):
        if len(relevant) != 2:
            raise ValueError(f"a tuple relevant must be (indptr, indices), got a tuple of {len(relevant)} "
                             "items; give per-user item sets as a list")
        indptr, indices = relevant
    elif isinstance(relevant, (list, np.ndarray)) or hasattr(relevant, "__len__"):
        if len(relevant) != n_users:
            raise ValueError(f"relevant has {len(relevant)} users but recommended has {n_users} rows")
        rows = []
        for u, items in enumerate(relevant):
            if isinstance(items, (set, frozenset)):
                items = sorted(items)
            rows.append(_int_1d(items, f"relevant[{u}]"))
        counts = np.fromiter((r.shape[0] for r in rows), dtype=np.int64, count=n_users)
        indptr = np.concatenate([[0], np.cumsum(counts)])
        indices = np.concatenate(rows) if rows else np.empty(0, dtype=np.int64)
        bad = first_true(indices < 0)
        if bad >= 0:
            u = int(np.searchsorted(indptr, bad, side="right") - 1)
            raise ValueError(f"relevant[{u}] holds a negative item index {indices[bad]}")
        return indptr, indices
    else:
        raise ValueError("relevant must be (indptr, indices), a CSR-like object or a list of per-user "
                         f"item arrays, got {type(relevant).__name__}")
    indptr = np.asarray(indptr)
    if indptr.ndim != 1 or indptr.dtype.kind not in "iu":
        raise ValueError(f"relevant indptr must be a 1-D integer array, got shape {indptr.shape}, "
                         f"dtype {indptr.dtype}")
    if indptr.shape[0] != n_users + 1:
        raise ValueError(f"relevant indptr has {indptr.shape[0]} entries (so {indptr.shape[0] - 1} users) "
                         f"but recommended has {n_users} rows; indptr needs {n_users + 1}")
    indptr = indptr.astype(np.int64, copy=False)
    indices = _int_1d(indices, "relevant indices")
    if indptr[0] != 0:
        raise ValueError(f"relevant indptr[0] must be 0, got {indptr[0]}")
    bad = first_true(indptr[1:] < indptr[:-1])
    if bad >= 0:
        raise ValueError(f"relevant indptr decreases at position {bad + 1} "
                         f"({indptr[bad]} -> {indptr[bad + 1]})")
    if indptr[-1] != indices.shape[0]:
        raise ValueError(f"relevant indptr[-1] = {indptr[-1]} but indices has {indices.shape[0]} entries")
    bad = first_true(indices < 0)
    if bad >= 0:
        u = int(np.searchsorted(indptr, bad, side="right") - 1)
        raise ValueError(f"relevant indices[{bad}] = {indices[bad]} is negative (user row {u})")
    return indptr, indices


def _hits(recommended, relevant, k):
    """The boolean hit matrix ``H`` (n_users, k), the relevant-set sizes and k.

    NumPy equivalent, per user ``u``: ``H[u] = np.isin(rec[u], rel[u]) & (rec[u] >= 0)``.
    """
    rec, k = _check_recommended(recommended, k)
    n_users = rec.shape[0]
    indptr, indices = _relevant_csr(relevant, n_users)
    n_rel = np.diff(indptr)
    n_cols = int(max(rec.max(initial=-1), indices.max(initial=-1))) + 1
    n_cols = max(n_cols, 1)
    if n_users * n_cols >= 2**62:
        raise ValueError(f"{n_users} users x {n_cols} items is too large for int64 pair keys")
    rel_keys = np.repeat(np.arange(n_users, dtype=np.int64) * n_cols, n_rel) + indices
    rel_keys.sort()
    dup = first_true(rel_keys[1:] == rel_keys[:-1])
    if dup >= 0:
        u, item = divmod(int(rel_keys[dup]), n_cols)
        raise ValueError(f"relevant items of user row {u} list item {item} more than once")
    rec_keys = np.arange(n_users, dtype=np.int64)[:, None] * n_cols + rec
    if rel_keys.size:
        pos = np.searchsorted(rel_keys, rec_keys)
        np.minimum(pos, rel_keys.size - 1, out=pos)
        hits = (rel_keys[pos] == rec_keys) & (rec >= 0)
    else:
        hits = np.zeros(rec.shape, dtype=bool)
    return hits, n_rel, k


def _from_hits(hits, n_rel, k, which):
    """Per-user values (float64, NaN where the user has no relevant item) of the metrics in ``which``."""
    has_rel = n_rel > 0
    n_rel_f = np.where(has_rel, n_rel, 1).astype(np.float64)
    denom_k = np.minimum(n_rel_f, k)
    n_hits = hits.sum(axis=1, dtype=np.int64).astype(np.float64)
    out = {}
    for name in which:
        if name == "precision":
            v = n_hits / k
        elif name == "recall":
            v = n_hits / n_rel_f
        elif name == "hit_rate":
            v = (n_hits > 0).astype(np.float64)
        elif name == "ndcg":
            discount = 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))
            dcg = hits @ discount
            idcg = np.cumsum(discount)[denom_k.astype(np.int64) - 1]
            v = dcg / idcg
        elif name == "map":
            # P@i at every rank i, counted only where rank i is a hit
            prec_at = np.cumsum(hits, axis=1, dtype=np.int64) / np.arange(1, k + 1, dtype=np.float64)
            v = np.where(hits, prec_at, 0.0).sum(axis=1) / denom_k
        else:  # pragma: no cover - internal
            raise ValueError(f"unknown ranking metric {name!r}")
        out[name] = np.where(has_rel, v, np.nan)
    return out


def _reduce(values, n_rel, per_user):
    if per_user:
        return values
    has_rel = n_rel > 0
    if not has_rel.any():
        raise ValueError("no user has a relevant item, so the mean of a ranking metric is undefined")
    return float(np.mean(values[has_rel]))


def _one(name, recommended, relevant, k, per_user):
    hits, n_rel, k = _hits(recommended, relevant, k)
    return _reduce(_from_hits(hits, n_rel, k, (name,))[name], n_rel, per_user)


# ---------------------------------------------------------------------- ranking metrics
_COMMON = """
    Parameters
    ----------
    recommended : array-like of int, shape (n_users, n_cols)
        Item indices in rank order, padded at the end of a row with -1; no item twice in a row.
    relevant : (indptr, indices), CSR-like object or list of arrays
        Each row's relevant items (see the module docstring); row-aligned with ``recommended``.
    k : int, optional
        Cut-off, ``1 <= k <= n_cols``; None means ``n_cols``. Only ``recommended[:, :k]`` is read.
    per_user : bool
        Return the per-user values (float64, NaN for users without relevant items) instead of the mean.

    Returns
    -------
    float or ndarray
        The mean over users with at least one relevant item, or the per-user array.

    Raises
    ------
    ValueError
        On empty or misaligned input, negative indices other than trailing -1 padding, a repeated item
        in a row or in a relevant set, ``k`` out of range, or (for the mean) no user with a relevant item.
"""


def _doc(text):
    def wrap(f):
        f.__doc__ = text + _COMMON
        return f
    return wrap


@_doc(r"""Precision at k: the fraction of the top k slots holding a relevant item.

    .. math::

        P@k(u) = \frac{1}{k} \sum_{i=1}^{k} \mathrm{rel}_u(i)

    where :math:`\mathrm{rel}_u(i)` is 1 when the item at rank i is relevant to u, else 0. A padded slot
    (-1) counts as a miss: a user with fewer than k recommendations is still divided by k.
""")
def precision_at_k(recommended: npt.ArrayLike, relevant: Relevant, k: Optional[int] = None, *,
                   per_user: bool = False) -> Union[float, np.ndarray]:
    return _one("precision", recommended, relevant, k, per_user)


@_doc(r"""Recall at k: the fraction of a user's relevant items found in the top k.

    .. math::

        R@k(u) = \frac{1}{|\mathrm{Rel}_u|} \sum_{i=1}^{k} \mathrm{rel}_u(i)

    This is the standard definition, which cannot reach 1 when :math:`|\mathrm{Rel}_u| > k`. Some
    libraries divide by :math:`\min(k, |\mathrm{Rel}_u|)` instead (sometimes called "capped" recall or
    R-precision-like recall); that variant equals ``n_hits / min(k, n_rel)`` and is not computed here.
""")
def recall_at_k(recommended: npt.ArrayLike, relevant: Relevant, k: Optional[int] = None, *,
                per_user: bool = False) -> Union[float, np.ndarray]:
    return _one("recall", recommended, relevant, k, per_user)


@_doc(r"""Normalised discounted cumulative gain at k, with binary gains and a log2 discount.

    .. math::

        \mathrm{DCG}@k(u) = \sum_{i=1}^{k} \frac{\mathrm{rel}_u(i)}{\log_2(i + 1)}, \qquad
        \mathrm{IDCG}@k(u) = \sum_{i=1}^{\min(k, |\mathrm{Rel}_u|)} \frac{1}{\log_2(i + 1)}, \qquad
        \mathrm{nDCG}@k(u) = \frac{\mathrm{DCG}@k(u)}{\mathrm{IDCG}@k(u)}

    The ideal DCG places all relevant items first, so nDCG is 1 exactly when the first
    :math:`\min(k, |\mathrm{Rel}_u|)` ranks are all relevant.
""")
def ndcg_at_k(recommended: npt.ArrayLike, relevant: Relevant, k: Optional[int] = None, *,
              per_user: bool = False) -> Union[float, np.ndarray]:
    return _one("ndcg", recommended, relevant, k, per_user)


@_doc(r"""Mean average precision at k.

    .. math::

        \mathrm{AP}@k(u) = \frac{1}{\min(k, |\mathrm{Rel}_u|)} \sum_{i=1}^{k} P@i(u)\, \mathrm{rel}_u(i),
        \qquad \mathrm{MAP}@k = \operatorname{mean}_u \mathrm{AP}@k(u)

    The normaliser :math:`\min(k, |\mathrm{Rel}_u|)` is the largest number of hits possible in k
    slots, so AP@k is 1 exactly when the first :math:`\min(k, |\mathrm{Rel}_u|)` ranks are relevant
    (the convention of the common ``apk`` implementation; dividing by :math:`|\mathrm{Rel}_u|` instead
    would penalise users with more than k relevant items).
""")
def map_at_k(recommended: npt.ArrayLike, relevant: Relevant, k: Optional[int] = None, *,
             per_user: bool = False) -> Union[float, np.ndarray]:
    return _one("map", recommended, relevant, k, per_user)


@_doc(r"""Hit rate at k: 1 when at least one of the top k items is relevant, else 0.

    .. math::

        \mathrm{HR}@k(u) = \mathbb{1}\Big[\sum_{i=1}^{k} \mathrm{rel}_u(i) > 0\Big]
""")
def hit_rate_at_k(recommended: npt.ArrayLike, relevant: Relevant, k: Optional[int] = None, *,
                  per_user: bool = False) -> Union[float, np.ndarray]:
    return _one("hit_rate", recommended, relevant, k, per_user)


def ranking_metrics(recommended: npt.ArrayLike, relevant: Relevant, k: Optional[int] = None, *,
                    per_user: bool = False) -> Dict[str, Union[float, np.ndarray]]:
    r"""Precision, recall, nDCG, MAP and hit rate at k from one membership pass.

    Same inputs and definitions as :func:`precision_at_k`, :func:`recall_at_k`, :func:`ndcg_at_k`,
    :func:`map_at_k` and :func:`hit_rate_at_k`; cheaper than calling them one by one.

    Returns
    -------
    dict
        Keys ``"precision"``, ``"recall"``, ``"ndcg"``, ``"map"``, ``"hit_rate"``; values are means
        over users with a relevant item (floats) or, with ``per_user=True``, per-user float64 arrays
        with NaN for users without one.
    """
    hits, n_rel, k = _hits(recommended, relevant, k)
    values = _from_hits(hits, n_rel, k, RANKING_METRICS)
    return {name: _reduce(v, n_rel, per_user) for name, v in values.items()}


def coverage(recommended: npt.ArrayLike, n_items: int, k: Optional[int] = None) -> float:
    r"""Catalog coverage: the share of the catalog that appears in at least one top-k list.

    .. math::

        \mathrm{coverage} = \frac{\big|\bigcup_u \mathrm{top}_k(u)\big|}{n_\mathrm{items}}

    where :math:`\mathrm{top}_k(u)` is the set of items in the first k slots of row u.

    Parameters
    ----------
    recommended : array-like of int, shape (n_users, n_cols)
        As for :func:`precision_at_k` (-1 padding is ignored).
    n_items : int
        Catalog size; every recommended index must lie in ``[0, n_items)``.
    k : int, optional
        Cut-off, ``1 <= k <= n_cols``; None means ``n_cols``.

    Returns
    -------
    float in [0, 1]
    """
    if isinstance(n_items, (bool, np.bool_)) or not isinstance(n_items, numbers.Integral) or n_items < 1:
        raise ValueError(f"n_items must be a positive int, got {n_items!r}")
    rec, k = _check_recommended(recommended, k)
    bad = first_true((rec >= n_items).reshape(-1))
    if bad >= 0:
        r, c = divmod(bad, k)
        raise ValueError(f"recommended[{r}, {c}] = {rec[r, c]} is outside the catalog [0, {n_items})")
    seen = np.zeros(int(n_items), dtype=bool)
    seen[rec[rec >= 0]] = True
    return float(np.count_nonzero(seen) / n_items)
