"""What every latent-factor model shares: :class:`FactorModel`.

A factor model scores a (user, item) pair as :math:`\\mu + b_u + b_i + x_u^\\top y_i` (the biases
may be absent) from ``user_factors_`` (n_users, k) and ``item_factors_`` (n_items, k). Written once
here, for :class:`fastmf.MatrixFactorization` and :class:`fastmf.ImplicitALS` alike:

* pair prediction (``_predict_pairs``), the ranking scores of known users (``_score_users``) and the
  fused top-k path (``_factor_scores``: ``recommend`` selects inside the C kernel);
* fold-in of a new user (``recommend_new``), ``partial_fit_users`` (re-solve existing users) and
  ``partial_fit_items`` (re-solve existing items, add new ones), all through one row solve;
* ``similar_items`` / ``similar_users`` by the learned factors;
* side features for cold items and users (``fit(..., item_features=, user_features=)``,
  ``add_items``, ``add_users``, ``similar_to_features``): :class:`fastmf.models.side.SideFeatureMap`.

A subclass supplies the hooks:

``_row_solver(side)``
    a function ``solve(idx, values) -> (factors, bias)`` giving one row of ``side`` (``"user"`` or
    ``"item"``) from its interactions ``idx`` (indices into the other side) and ``values``, with the
    other side fixed: the row update of that side's half-sweep in ``fit`` (MatrixFactorization:
    the biased ridge solve; ImplicitALS: the confidence-weighted solve). ``bias`` is 0.0 for a model
    without biases;
``_biases()``
    ``(mu, user_bias, item_bias)`` added to the dot product, ``(0.0, None, None)`` without biases;
``_extra_row_solver(side)`` (optional)
    None, or a function ``update(row, idx)`` re-solving extra per-row state after the factors
    (MatrixFactorization: its engagement model);
``_per_item_state``, ``_item_side_caches`` (class attributes)
    the per-item arrays ``partial_fit_items`` grows for new items (``item_factors_`` and, for
    MatrixFactorization, ``item_bias_``, ``item_engagement_``), and the cached item-side Gram
    matrices it invalidates.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence, Tuple, TypeVar

import numpy as np

from fastmf._validation import show
from fastmf.data.ratings import IdMap, Ids, Ratings, normalize_ids
from fastmf.models.base import Recommender, Unknown, _aligned_ids, _check_n, _check_result_memory, _check_unknown, _raw_ids
from fastmf.models.side import SideFeatureMap

__all__ = ["FactorModel"]

_F = TypeVar("_F", bound="FactorModel")
#: ``solve(idx, values) -> (factors, bias)`` of one row, the other side fixed
RowSolver = Callable[[np.ndarray, np.ndarray], Tuple[np.ndarray, float]]


class FactorModel(SideFeatureMap, Recommender):
    """Base class of latent-factor models (not used directly): see the module docstring."""

    #: per-item arrays that partial_fit_items grows (zero rows) for new items, when present
    _per_item_state: Tuple[str, ...] = ("item_factors_",)
    #: attributes caching something computed from the item rows (Gram matrices), dropped by
    #: partial_fit_items
    _item_side_caches: Tuple[str, ...] = ()

    # ------------------------------------------------------------------ hooks
    def _row_solver(self, side: str) -> RowSolver:  # pragma: no cover - abstract
        raise NotImplementedError

    def _biases(self) -> Tuple[float, Optional[np.ndarray], Optional[np.ndarray]]:
        return 0.0, None, None

    def _extra_row_solver(self, side: str) -> Optional[Callable[[int, np.ndarray], None]]:
        return None

    # ------------------------------------------------------------------ scoring
    def _predict_pairs(self, u, i):
        mu, user_bias, item_bias = self._biases()
        pred = np.full(u.shape, mu, dtype=np.float64)
        ku, ki = u >= 0, i >= 0
        if user_bias is not None:
            pred[ku] += user_bias[u[ku]]
            pred[ki] += item_bias[i[ki]]
        both = ku & ki
        if both.any():
            pred[both] += np.einsum("ij,ij->i", self.user_factors_[u[both]], self.item_factors_[i[both]],
                                    dtype=np.float64)
        return pred

    def _score_users(self, u):
        mu, user_bias, item_bias = self._biases()
        scores = self.user_factors_[u] @ self.item_factors_.T
        scores = scores.astype(np.float64, copy=False)
        if user_bias is not None:
            scores += (mu + user_bias[u].astype(np.float64))[:, None]
            scores += item_bias[None, :]
        return scores

    def _factor_scores(self):
        mu, user_bias, item_bias = self._biases()
        if user_bias is not None:
            return self.user_factors_, self.item_factors_, item_bias, mu + user_bias.astype(np.float64)
        return self.user_factors_, self.item_factors_, None, None

    # ------------------------------------------------------------------ new users (fold-in)
    def _fold_in(self, items, values, unknown, features=None):
        """``(factors in the model's dtype, bias)`` of a new user: the public ``fold_in`` of each
        model. With ``features`` (one row of the user features of fit) the solve is centred on the
        mapped parameters :math:`(\\hat p, \\hat b)` of :meth:`side_vectors` instead of zero (the
        ratings' residuals after the mapped prediction are solved for, and added to it); with no
        ratings the mapped parameters are the answer."""
        self._check_fitted()
        idx, vals = self._new_user(items, values, unknown)
        dtype = self.user_factors_.dtype
        if features is None:
            x, b = self._row_solver("user")(idx, vals)
            return np.asarray(x).astype(dtype), b
        if np.ndim(features) != 1:
            raise ValueError(f"features must be one row (n_features,), got shape {np.shape(features)}; "
                             "add_users takes many users at once")
        p, pb = self.side_vectors(features, "user")
        pb = 0.0 if pb is None else pb
        if idx.size == 0:
            return p, pb
        if self._new_user_values != "ratings":
            raise ValueError(f"{type(self).__name__}.fold_in takes features or interactions, not both: "
                             "its confidence-weighted solve has no target to centre on the mapped factors")
        _, _, item_bias = self._biases()
        offset = self.item_factors_[idx].astype(np.float64) @ p.astype(np.float64)
        if item_bias is not None:
            offset = offset + pb
        x, b = self._row_solver("user")(idx, vals - offset)
        return (p.astype(np.float64) + x).astype(dtype), (pb + b if item_bias is not None else 0.0)

    def _new_user_scores(self, idx, values):
        x, b = self._row_solver("user")(idx, values)
        scores = self.item_factors_.astype(np.float64) @ np.asarray(x, dtype=np.float64)
        mu, user_bias, item_bias = self._biases()
        if item_bias is not None:
            scores += mu + b + item_bias
        return scores

    # ------------------------------------------------------------------ partial fits
    def partial_fit_users(self: _F, ratings: Ratings, unknown: Unknown = "raise") -> _F:
        """Re-solve the factors (and biases, and any extra per-user state such as
        MatrixFactorization's engagement factors) of the users in ``ratings`` (a Ratings whose users
        the model knows; each user's rows there are taken as all of that user's ratings) against the
        fixed item factors, exactly as :meth:`fold_in` solves a new user; the other users and all
        items are unchanged, and so are the seen items used by ``recommend``. An unknown user always
        raises KeyError (there is no row to update; use ``fold_in`` / ``recommend_new``); unknown
        items raise KeyError, or are ignored with ``unknown="fallback"``. Returns self."""
        self._check_fitted()
        _check_unknown(unknown)
        if not isinstance(ratings, Ratings):
            raise TypeError(f"ratings must be a fastmf.Ratings, got {type(ratings).__name__}")
        users, items, values, _ = ratings.to_arrays()
        u = np.asarray(self.user_map_.to_index(users, missing="raise", name="user"), dtype=np.int64)
        i = np.asarray(self._to_index(self.item_map_, items, unknown, "item"), dtype=np.int64)
        self._check_new_values(values.astype(np.float64))
        self._before_partial_fit()
        self._solve_rows("user", u, i, values.astype(np.float64))
        return self

    def partial_fit_items(self: _F, items: Ids, users: Ids, ratings: Optional[Sequence[float]] = None,
                          unknown: Unknown = "raise") -> _F:
        """Solve the factors (and biases, and extra per-item state) of the items in ``items``
        against the fixed user factors: the mirror of :meth:`partial_fit_users`.

        ``items``, ``users`` and ``ratings`` are aligned arrays of raw ids and values (one entry per
        interaction; a repeated (item, user) pair keeps its last value); each item's entries are
        taken as all of that item's ratings. Each row is the exact row update of an item half-sweep
        of ``fit`` (the same solve as ``fold_in``, with users and items swapped). Ratings are checked
        like those of ``recommend_new``: they must lie in the model's rating scale, or be interaction
        strengths >= 0 for implicit models (which may omit ``ratings``: all 1).

        * An item the model knows is re-solved; the other items and all users are unchanged.
        * An item it does not know is **added**: its raw id is appended to ``item_map_`` (index
          ``n_items_``, ``n_items_ + 1``, ... in order of first appearance), every per-item array
          grows by one row (``item_factors_``, ``item_bias_``, ``item_engagement_`` when present,
          ``item_counts_``), and its (user, item) pairs are added to the seen items, so that
          ``recommend`` leaves it out for the users who rated it, as for the training data, and
          counts those users in ``item_counts_`` / ``user_counts_``. The seen items and counts of
          items already known are not changed (as ``partial_fit_users`` leaves those of users).
        * Users the model does not know raise KeyError (naming the first), or with
          ``unknown="fallback"`` their entries are ignored (a new item rated only by unknown users
          is added with zero factors and bias).

        Returns self.
        """
        self._check_fitted()
        _check_unknown(unknown)
        item_raw, user_raw = _aligned_ids(items, users, ("items", "users"))
        values = self._interaction_values(ratings, item_raw.size, "partial_fit_items needs the ratings")
        u = np.asarray(self._to_index(self.user_map_, user_raw, unknown, "user"), dtype=np.int64)
        i = np.asarray(self.item_map_.to_index(item_raw, missing=-1, name="item"), dtype=np.int64)
        self._before_partial_fit()
        new = i < 0
        if new.any():
            self._append_items(item_raw, i, u, new)
        # a repeated (item, user) pair keeps its last value
        key = i * max(self.n_users_ + 1, 1) + (u + 1)
        _, last = np.unique(key[::-1], return_index=True)
        keep = np.sort(key.size - 1 - last)
        self._solve_rows("item", i[keep], u[keep], values[keep])
        for stale in self._item_side_caches:  # computed from item rows that have just changed
            self.__dict__.pop(stale, None)
        return self

    def _before_partial_fit(self):
        """Called once before a partial fit changes anything (MatrixFactorization: make sure its
        engagement model exists)."""

    def _solve_rows(self, side, rows, fixed, values):
        """Re-solve each distinct row of ``side`` in ``rows`` from its entries (``fixed``: indices of
        the other side, -1 = ignored; ``values``), in place."""
        factors = self.user_factors_ if side == "user" else self.item_factors_
        _, user_bias, item_bias = self._biases()
        bias = user_bias if side == "user" else item_bias
        solve = self._row_solver(side)
        extra = self._extra_row_solver(side)
        order = np.argsort(rows, kind="stable")
        rows, fixed, values = rows[order], fixed[order], values[order]
        starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]]) if rows.size else np.empty(0, np.int64)
        for a, b in zip(starts, np.r_[starts[1:], rows.size]):
            keep = fixed[a:b] >= 0
            idx = fixed[a:b][keep]
            x, row_bias = solve(idx, values[a:b][keep])
            factors[rows[a]] = x
            if bias is not None:
                bias[rows[a]] = row_bias
            if extra is not None:
                extra(rows[a], idx)

    def _grow_rows(self, kind, raw, idx, new):
        """Append the raw ids ``raw[new]`` to the ``kind`` ("item" or "user") id map, in order of
        first appearance (``idx`` becomes their new indices, in place), and grow that side's
        per-row arrays (``_per_item_state`` and its user counterparts) by zero rows. Returns
        ``(n_old, n_new)``."""
        id_map = self.item_map_ if kind == "item" else self.user_map_
        fresh = normalize_ids(raw[new], f"{kind}s")
        if (fresh.dtype.kind == "U") != id_map.is_string:
            what = "strings" if id_map.is_string else "integers"
            raise ValueError(f"new {kind} ids must be {what}, as the model's {kind} ids are; got "
                             f"{show(fresh[0])}")
        uniq, first = np.unique(fresh, return_index=True)
        ids = uniq[np.argsort(first, kind="stable")]  # order of first appearance
        n_old, n_new = len(id_map), ids.size
        id_map = IdMap(np.concatenate([id_map.ids, ids]))
        setattr(self, f"{kind}_map_", id_map)
        setattr(self, f"n_{kind}s_", n_old + n_new)
        idx[new] = id_map.to_index(fresh, name=kind)
        for name in self._per_item_state:
            name = name if kind == "item" else name.replace("item_", "user_", 1)
            arr = self.__dict__.get(name)
            if arr is not None:
                setattr(self, name, _grown(arr, n_new))
        return n_old, n_new

    def _append_items(self, item_raw, i, u, new):
        """Add the raw ids ``item_raw[new]`` as new items (``i`` becomes their new indices, in place):
        grow the id map, the per-item arrays and counts, and record their pairs with known users
        (``u >= 0``) among the seen items."""
        n_old, n_new = self._grow_rows("item", item_raw, i, new)
        pair_u, pair_i = u[new & (u >= 0)], i[new & (u >= 0)]
        pairs = np.unique(pair_i * max(self.n_users_, 1) + pair_u)  # distinct (item, user) pairs
        pair_u, pair_i = pairs % max(self.n_users_, 1), pairs // max(self.n_users_, 1)
        self.item_counts_ = np.r_[self.item_counts_, np.bincount(pair_i - n_old, minlength=n_new)].astype(np.int64)
        self.user_counts_ = (self.user_counts_ + np.bincount(pair_u, minlength=self.n_users_)).astype(np.int64)
        rows = np.r_[np.repeat(np.arange(self.n_users_, dtype=np.int64), np.diff(self.seen_indptr_)), pair_u]
        cols = np.r_[self.seen_indices_.astype(np.int64), pair_i]
        order = np.lexsort((cols, rows))
        counts = np.bincount(rows, minlength=self.n_users_)
        self.seen_indptr_ = np.r_[0, np.cumsum(counts)].astype(np.int64)
        self.seen_indices_ = np.ascontiguousarray(cols[order], dtype=np.int32)

    def _append_users(self, user_raw, u, new):
        """Add the raw ids ``user_raw[new]`` as new users without ratings (``u`` becomes their new
        indices, in place): grow the id map, the per-user arrays, the counts and the seen-items CSR
        (empty rows)."""
        _, n_new = self._grow_rows("user", user_raw, u, new)
        self.user_counts_ = np.r_[self.user_counts_, np.zeros(n_new, dtype=np.int64)].astype(np.int64)
        self.seen_indptr_ = np.r_[self.seen_indptr_, np.full(n_new, self.seen_indptr_[-1])].astype(np.int64)

    # ------------------------------------------------------------------ similar items / users
    def similar_items(self, item: Ids, n: int = 10, metric: str = "cosine",
                      unknown: Unknown = "raise") -> Tuple[np.ndarray, np.ndarray]:
        """The ``n`` items most similar to a raw item id by their learned factors (1-D ids, scores),
        or to each of an array of ids (2-D, batched; bit-identical to single calls). The item itself
        is excluded; unknown ids raise KeyError, or get an empty row (ids -1 or "", scores -inf)
        with ``unknown="fallback"``; rows short of ``n`` are padded the same way. Best first, equal
        scores by item index. ``metric``: "cosine" (0 for a zero vector),
        "dot", "euclidean" (:math:`1/(1+\\lVert q_i-q_j\\rVert)`) or "pearson"; formulas in
        :func:`fastmf.similarity.similarity`. Biases are not part of the vectors."""
        return self._similar(item, n, metric, "item", unknown)

    def similar_users(self, user: Ids, n: int = 10, metric: str = "cosine",
                      unknown: Unknown = "raise") -> Tuple[np.ndarray, np.ndarray]:
        """:meth:`similar_items` for users: the ``n`` users closest to a raw user id (or to each of
        an array of them) by their learned factors, the user itself excluded."""
        return self._similar(user, n, metric, "user", unknown)

    def _similar(self, raw, n, metric, kind, unknown="raise"):
        from fastmf.similarity import check_metric, top_similar

        self._check_fitted()
        _check_unknown(unknown)
        n = _check_n(n, self.n_items_ if kind == "item" else self.n_users_)
        check_metric(metric)
        factors = getattr(self, f"{kind}_factors_")
        id_map = self.item_map_ if kind == "item" else self.user_map_
        scalar = np.ndim(raw) == 0
        ids = np.atleast_1d(np.asarray(raw))
        if ids.ndim != 1:
            raise ValueError(f"{kind} must be a raw id or a 1-D array of raw ids, got shape {ids.shape}")
        idx = np.atleast_1d(np.asarray(self._to_index(id_map, raw if scalar else ids, unknown, kind),
                                       dtype=np.int64))
        known = idx >= 0
        _check_result_memory(idx.size, n, f"similar_{kind}s")
        top = np.full((idx.size, n), -1, dtype=np.int64)
        scores = np.full((idx.size, n), -np.inf, dtype=np.float64)
        if known.any():
            # the factors are finite after fit (divergence raises), so the scan for NaN is skipped
            t, s = top_similar(factors[idx[known]], factors, n, metric, exclude=idx[known],
                               check_finite=False)
            top[known], scores[known] = t, s
        out = _raw_ids(id_map, top)
        return (out[0], scores[0]) if scalar else (out, scores)


def _grown(arr: np.ndarray, n_new: int) -> np.ndarray:
    """``arr`` with ``n_new`` zero rows appended, in the same layout: a row-padded, 64-byte aligned
    factor buffer (:func:`fastmf._sgd.aligned_factors`, what SGD fits keep) stays one."""
    if arr.ndim == 2 and arr.shape[1] and not arr.flags.c_contiguous and arr.ctypes.data % 64 == 0:
        from fastmf import _sgd

        out = _sgd.aligned_factors(arr.shape[0] + n_new, arr.shape[1], arr.dtype)
    else:
        out = np.zeros((arr.shape[0] + n_new,) + arr.shape[1:], dtype=arr.dtype)
    out[:arr.shape[0]] = arr
    return out
