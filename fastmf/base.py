"""The estimator base class shared by every fastmf model.

:class:`Recommender` holds everything that does not depend on how a model scores: hyper-parameter
handling in the scikit-learn shape (``__init__`` stores its arguments, ``get_params``/``set_params``,
validation from one table of constraints), the training data's id maps, raw-id translation for
``predict`` and ``recommend``, exclusion of seen items and an exact, deterministic, batched top-n.

A subclass implements ``fit`` (calling :meth:`Recommender._start_fit` first) and two scoring hooks:

``_predict_pairs(u, i)``
    predictions for dense index pairs where ``-1`` marks an unknown user or item (the subclass applies
    its fallback, e.g. the global mean plus the known bias);
``_score_users(u)``
    a ``(len(u), n_items)`` score matrix for known user indices (the ranking scores).
"""

from __future__ import annotations

import inspect
import warnings

import numpy as np

from fastmf import _topk
from fastmf._validation import check_params, first_true, resolve_n_threads
from fastmf.data import Ratings

__all__ = ["Recommender", "NotFittedError", "UnknownUserWarning"]

# Score blocks for recommend are cut so that one block holds about this many scores (bounded memory).
_SCORE_BLOCK = 1 << 22


class NotFittedError(ValueError, AttributeError):
    """Raised when a model is used before ``fit``."""


class UnknownUserWarning(UserWarning):
    """``recommend`` was asked for users the model has never seen; they got the fallback ranking."""


class Recommender:
    """Base class of fastmf models (not used directly)."""

    #: parameter name -> constraint (or tuple of alternatives), checked by :meth:`_validate_params`
    _constraints: dict = {}
    #: True when ``predict`` returns ratings on the data's scale (RMSE makes sense), False for scores
    predicts_ratings = True
    #: recommend_new / fold_in need the new user's rating values (explicit-rating models)
    _new_user_needs_ratings = True

    # ------------------------------------------------------------------ parameters
    @classmethod
    def _param_names(cls):
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values()
                if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]

    def get_params(self, deep=False):
        """The constructor arguments as a dict (``deep`` is accepted for scikit-learn compatibility)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params):
        """Set constructor arguments; unknown names and invalid values raise ValueError."""
        valid = self._param_names()
        for name in params:
            if name not in valid:
                raise ValueError(f"{type(self).__name__}: unknown parameter {name!r}; valid: {valid}")
        check_params(type(self).__name__, params, self._constraints)
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def _validate_params(self):
        check_params(type(self).__name__, self.get_params(), self._constraints)

    def __repr__(self):
        sig = inspect.signature(type(self).__init__)
        shown = []
        for name, value in self.get_params().items():
            default = sig.parameters[name].default
            if default is inspect.Parameter.empty or not _same(value, default):
                shown.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(shown)})"

    # ------------------------------------------------------------------ fitting
    def _start_fit(self, train):
        """Validate the training data and hyper-parameters; record what every model keeps: the id
        maps, scale, global mean, item counts, the seen-items CSR and the metadata."""
        self._validate_params()
        if not isinstance(train, Ratings):
            raise TypeError(f"{type(self).__name__}.fit expects a fastmf.Ratings, got {type(train).__name__}; "
                            "build one with fastmf.Ratings.from_arrays / from_dataframe / read_ratings")
        if len(train) == 0:
            raise ValueError(f"{type(self).__name__}.fit: the training set is empty")
        self.user_map_ = train.user_map
        self.item_map_ = train.item_map
        self.n_users_ = train.n_users
        self.n_items_ = train.n_items
        self.rating_scale_ = train.rating_scale
        self.global_mean_ = train.global_mean()
        self.item_counts_ = train.item_counts()
        csr = train.to_csr()
        self.user_counts_ = np.diff(csr.indptr).astype(np.int64, copy=False)
        self.seen_indptr_ = csr.indptr
        self.seen_indices_ = csr.indices
        self.item_info_ = train.item_info
        self.user_info_ = train.user_info
        return train

    def _check_fitted(self):
        if not hasattr(self, "user_map_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit(train) first")

    # ------------------------------------------------------------------ persistence
    def save(self, path):
        """Write the fitted model to ``path`` as one ``.npz`` file (the name is used exactly as
        given), atomically; read it back with :func:`fastmf.load`. Returns the path as a str.
        See :func:`fastmf.persistence.save_model` for the format and the errors."""
        from fastmf.persistence import save_model

        return save_model(self, path)

    def history_frame(self):
        """The training history ``history_`` as a pandas DataFrame: one row per epoch (sweep),
        indexed by ``epoch``, one column per recorded key (``train_rmse``, ``eval_rmse``,
        ``train_loss``, ``eval_ndcg@10``, ``seconds``, ...). Needs pandas (imported here only);
        ValueError for a model without a training history (unfitted, or not iterative)."""
        history = getattr(self, "history_", None)
        if history is None:
            raise ValueError(f"{type(self).__name__} has no training history (history_); fit an "
                             "iterative model first (MatrixFactorization, ImplicitALS)")
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("history_frame needs pandas: pip install 'fastmf[pandas]'") from None
        frame = pd.DataFrame.from_records(list(history))
        if "epoch" in frame.columns:
            frame = frame.set_index("epoch")
        return frame

    # ------------------------------------------------------------------ hooks for subclasses
    def _predict_pairs(self, u, i):  # pragma: no cover - abstract
        raise NotImplementedError

    def _score_users(self, u):  # pragma: no cover - abstract
        raise NotImplementedError

    def _factor_scores(self):
        """``(U, V, item_bias, user_offset)`` when the ranking score of known user ``u`` for item ``i`` is
        ``(U[u] . V[i] + user_offset[u]) + item_bias[i]`` (either term may be None): ``recommend`` then
        selects with the C kernel ``fastmf._topk.topk_factors`` and never builds a score matrix.
        None (the default): scores come from :meth:`_score_users` in blocks."""
        return None

    def _fallback_scores(self):
        """Ranking scores for a user the model does not know: item popularity in the training data."""
        return self.item_counts_.astype(np.float64)

    # ------------------------------------------------------------------ prediction
    def predict(self, users, items, clip=True, unknown="default"):
        """Predicted ratings for raw (user, item) ids, scalars or arrays of one length.

        Parameters
        ----------
        users, items : raw id or array-like of raw ids
        clip : bool
            Clip to the training data's rating scale (ratings models only).
        unknown : {"default", "raise"}
            ``"default"`` predicts for unknown users or items from what is known (the model's
            fallback: global mean plus any known bias); ``"raise"`` raises KeyError naming the id.
        """
        self._check_fitted()
        if unknown not in ("default", "raise"):
            raise ValueError(f"unknown must be 'default' or 'raise', got {unknown!r}")
        scalar = np.ndim(users) == 0 and np.ndim(items) == 0
        u_raw = np.atleast_1d(np.asarray(users))
        i_raw = np.atleast_1d(np.asarray(items))
        if u_raw.ndim != 1 or i_raw.ndim != 1:
            raise ValueError("users and items must be scalars or 1-D arrays")
        if u_raw.shape != i_raw.shape:
            raise ValueError(f"users and items differ in length: {u_raw.shape[0]} != {i_raw.shape[0]}")
        missing = -1 if unknown == "default" else "raise"
        u = self.user_map_.to_index(u_raw, missing=missing, name="user")
        i = self.item_map_.to_index(i_raw, missing=missing, name="item")
        pred = self._predict_pairs(np.asarray(u, dtype=np.int64), np.asarray(i, dtype=np.int64))
        if clip and self.predicts_ratings and self.rating_scale_ is not None:
            pred = np.clip(pred, *self.rating_scale_)
        return pred[0].item() if scalar else pred

    def predict_indices(self, user_index, item_index, clip=True):
        """Predictions for dense index pairs of this model's id maps (-1 marks an unknown id)."""
        self._check_fitted()
        u = np.asarray(user_index, dtype=np.int64)
        i = np.asarray(item_index, dtype=np.int64)
        if u.shape != i.shape or u.ndim != 1:
            raise ValueError("user_index and item_index must be 1-D arrays of one length")
        for name, arr, n in (("user_index", u, self.n_users_), ("item_index", i, self.n_items_)):
            bad = first_true((arr < -1) | (arr >= n))
            if bad >= 0:
                raise IndexError(f"{name}[{bad}] = {arr[bad]} is outside [-1, {n})")
        pred = self._predict_pairs(u, i)
        if clip and self.predicts_ratings and self.rating_scale_ is not None:
            pred = np.clip(pred, *self.rating_scale_)
        return pred

    # ------------------------------------------------------------------ recommendation
    def recommend(self, user, n=10, exclude_seen=True, items=None, exclude_items=None):
        """Top-``n`` items for a raw user id (1-D results) or an array of them (2-D results, batched).

        Parameters
        ----------
        user : raw id or array-like of raw ids
        n : int
            How many items; fewer exist when the candidates run out, and the rest of the row is
            padded (id -1 for integer ids or "" for string ids, score -inf).
        exclude_seen : bool
            Leave out the items the user rated in the training data.
        items : array-like of raw item ids, optional
            Restrict the candidates to these items.
        exclude_items : array-like of raw item ids, optional
            Never recommend these items.

        Returns
        -------
        ids, scores : ndarrays
            Raw item ids and their scores, best first; equal scores are ordered by item index.
            Users the model has never seen get the fallback ranking (item popularity) and an
            :class:`UnknownUserWarning`.
        """
        self._check_fitted()
        n = _check_n(n)
        scalar = np.ndim(user) == 0
        raw = np.atleast_1d(np.asarray(user))
        if raw.ndim != 1:
            raise ValueError(f"user must be a raw id or a 1-D array of raw ids, got shape {raw.shape}")
        u = self.user_map_.to_index(raw, missing=-1)
        unknown = np.flatnonzero(u < 0)
        if unknown.size:
            warnings.warn(f"{unknown.size} unknown user(s) (first: {raw[unknown[0]].tolist()!r}) got the "
                          "popularity fallback", UnknownUserWarning, stacklevel=2)
        candidates = self._candidate_mask(items, exclude_items)
        idx, scores = self.recommend_indices(u, n, exclude_seen=exclude_seen, candidates=candidates)
        ids = self._ids_of(idx)
        return (ids[0], scores[0]) if scalar else (ids, scores)

    def recommend_all(self, n=10, exclude_seen=True):
        """Top-``n`` for every user the model knows, as one batch job (exact, multi-threaded, bounded
        memory): returns ``(users, ids, scores)`` with ``ids``/``scores`` of shape (n_users, n)."""
        self._check_fitted()
        idx, scores = self.recommend_indices(np.arange(self.n_users_), n, exclude_seen=exclude_seen)
        return self.user_map_.ids.copy(), self._ids_of(idx), scores

    def describe_items(self, ids):
        """Title, genres and year of raw item ids from the metadata the model was trained with (a
        list of dicts; values are None when the data carried no such column or the id is unknown)."""
        self._check_fitted()
        info = self.item_info_
        rows = []
        for item in np.atleast_1d(np.asarray(ids)).tolist():
            row = {"item": item}
            for col in ("title", "genres", "year"):
                row[col] = info.get(item, col) if info is not None and col in info else None
            rows.append(row)
        return rows

    def _candidate_mask(self, items, exclude_items):
        if items is None and exclude_items is None:
            return None
        mask = np.ones(self.n_items_, dtype=bool)
        if items is not None:
            mask[:] = False
            mask[self.item_map_.to_index(np.atleast_1d(items), missing="raise", name="item")] = True
        if exclude_items is not None:
            idx = self.item_map_.to_index(np.atleast_1d(exclude_items), missing=-1)
            mask[idx[idx >= 0]] = False
        return mask

    def _ids_of(self, idx):
        return _raw_ids(self.item_map_, idx)

    def recommend_indices(self, user_index, n=10, exclude_seen=True, candidates=None):
        """Top-``n`` dense item indices for dense user indices (-1 = unknown user: fallback ranking).

        Returns ``(items, scores)``: int64 and float64 arrays of shape ``(len(user_index), n)``,
        padded with -1 / -inf where a user has fewer than ``n`` candidates. ``candidates`` is an
        optional boolean mask over items. Users are scored in blocks, so memory stays bounded.
        """
        self._check_fitted()
        n = _check_n(n)
        u = np.asarray(user_index, dtype=np.int64).reshape(-1)
        bad = first_true((u < -1) | (u >= self.n_users_))
        if bad >= 0:
            raise IndexError(f"user_index[{bad}] = {u[bad]} is outside [-1, {self.n_users_})")
        nt = resolve_n_threads(getattr(self, "n_threads", None))
        cand = None if candidates is None else np.ascontiguousarray(candidates, dtype=bool)
        seen = dict(excl_indptr=self.seen_indptr_, excl_indices=self.seen_indices_) if exclude_seen else {}
        out_idx = np.full((u.size, n), -1, dtype=np.int64)
        out_score = np.full((u.size, n), -np.inf, dtype=np.float64)
        factors = self._factor_scores()
        rest = np.arange(u.size) if factors is None else np.flatnonzero(u < 0)
        if rest.size < u.size:  # known users of a factor model: scores computed inside the kernel
            known = u >= 0
            U, V, bias, offset = factors
            out_idx[known], out_score[known] = _topk.topk_factors(
                U, V, n, users=u[known], item_bias=bias, user_offset=offset, candidates=cand,
                n_threads=nt, **seen)
        block = max(1, _SCORE_BLOCK // max(1, self.n_items_))
        for start in range(0, rest.size, block):
            rows = rest[start:start + block]
            ub = u[rows]
            scores = np.empty((ub.size, self.n_items_), dtype=np.float64)
            known = ub >= 0
            if known.any():
                scores[known] = self._score_users(ub[known])
            if not known.all():
                scores[~known] = self._fallback_scores()
            out_idx[rows], out_score[rows] = _topk.topk_rows(scores, n, users=ub, candidates=cand,
                                                             n_threads=nt, **seen)
        return out_idx, out_score

    # ------------------------------------------------------------------ new users
    def _new_user(self, items, ratings):
        """Dense indices and values of a new user's interactions (unknown items dropped, a repeated
        item keeps its last value)."""
        items = np.atleast_1d(np.asarray(items))
        if items.ndim != 1:
            raise ValueError(f"items must be a raw id or a 1-D array of raw ids, got shape {items.shape}")
        if ratings is None:
            if self._new_user_needs_ratings:
                raise ValueError(f"{type(self).__name__} predicts ratings: recommend_new/fold_in need "
                                 "the new user's ratings")
            values = np.ones(items.size)
        else:
            values = np.atleast_1d(np.asarray(ratings, dtype=np.float64))
            if values.shape != items.shape:
                raise ValueError(f"items and ratings differ in length: {items.size} != {values.size}")
            bad = first_true(~np.isfinite(values))
            if bad >= 0:
                raise ValueError(f"ratings[{bad}] = {values[bad]} is not finite")
        idx = np.asarray(self.item_map_.to_index(items, missing=-1), dtype=np.int64)
        known = idx >= 0
        idx, values = idx[known], values[known]
        # last value wins for a repeated item
        _, last = np.unique(idx[::-1], return_index=True)
        keep = np.sort(idx.size - 1 - last)
        return idx[keep], values[keep]

    def _new_user_scores(self, idx, values):
        """Ranking scores over all items for a new user with interactions (idx, values); models that
        learn user parameters override this with a fold-in."""
        return self._fallback_scores()

    def recommend_new(self, items, ratings=None, n=10, exclude_seen=True, exclude_items=None):
        """Top-``n`` items for a user the model was not trained on, from that user's items (and
        ratings, for models of explicit ratings), without retraining: latent-factor models fold the
        user in (:meth:`fold_in`), the others rank by their item scores. Items unknown to the model are
        ignored. ``exclude_seen`` leaves out the given items. Returns ``(ids, scores)`` like
        :meth:`recommend` for one user."""
        self._check_fitted()
        n = _check_n(n)
        idx, values = self._new_user(items, ratings)
        scores = np.asarray(self._new_user_scores(idx, values), dtype=np.float64).reshape(1, -1)
        seen = {}
        if exclude_seen:
            seen = dict(excl_indptr=np.array([0, idx.size], dtype=np.int64),
                        excl_indices=np.sort(idx).astype(np.int32))
        cand = self._candidate_mask(None, exclude_items)
        top, top_scores = _topk.topk_rows(np.ascontiguousarray(scores), n, users=np.zeros(1, np.int64),
                                          candidates=cand, **seen)
        return self._ids_of(top)[0], top_scores[0].astype(np.float64)

    def similar_items(self, item, n=10, metric="cosine"):
        """The ``n`` items most similar to a raw item id by their learned factors (1-D ids, scores),
        or to each of an array of ids (2-D, batched; bit-identical to single calls). The item itself
        is excluded; unknown ids raise KeyError; rows short of ``n`` are padded (id -1 or "", score
        -inf). Best first, equal scores by item index. ``metric``: "cosine" (0 for a zero vector),
        "dot", "euclidean" (:math:`1/(1+\\lVert q_i-q_j\\rVert)`) or "pearson"; formulas in
        :func:`fastmf.similarity.similarity`. Biases are not part of the vectors."""
        return self._similar(item, n, metric, "item")

    def similar_users(self, user, n=10, metric="cosine"):
        """:meth:`similar_items` for users: the ``n`` users closest to a raw user id (or to each of
        an array of them) by their learned factors, the user itself excluded."""
        return self._similar(user, n, metric, "user")

    def _similar(self, raw, n, metric, kind):
        from fastmf.similarity import check_metric, top_similar

        self._check_fitted()
        n = _check_n(n)
        check_metric(metric)
        factors = getattr(self, f"{kind}_factors_", None)
        if factors is None:
            raise TypeError(f"{type(self).__name__} has no {kind} factors; similar_{kind}s needs a "
                            "latent-factor model such as MatrixFactorization")
        id_map = self.item_map_ if kind == "item" else self.user_map_
        scalar = np.ndim(raw) == 0
        ids = np.atleast_1d(np.asarray(raw))
        if ids.ndim != 1:
            raise ValueError(f"{kind} must be a raw id or a 1-D array of raw ids, got shape {ids.shape}")
        idx = np.atleast_1d(np.asarray(id_map.to_index(raw if scalar else ids, missing="raise", name=kind),
                                       dtype=np.int64))
        # the factors are finite after fit (divergence raises), so the scan for NaN is skipped
        top, scores = top_similar(factors[idx], factors, n, metric, exclude=idx, check_finite=False)
        out = _raw_ids(id_map, top)
        return (out[0], scores[0]) if scalar else (out, scores)


def topn_rows(scores, n):
    """Exact top-``n`` of each row of ``scores``: (indices, values), best first, ties by lower index.

    Entries equal to -inf are never selected (their slots come back as index -1, value -inf).
    NumPy equivalent of the selection: ``np.lexsort((arange, -scores))[:n]`` per row, vectorised as a
    partition to find each row's n-th largest value ``t``, every entry > t, and the lowest-index
    entries == t to fill up to n.
    """
    m, n_items = scores.shape
    if n == 0 or m == 0:
        return np.empty((m, n), dtype=np.int64), np.empty((m, n))
    kth = n_items - n
    t = np.partition(scores, kth, axis=1)[:, kth][:, None]
    gt = scores > t
    need = n - gt.sum(axis=1, keepdims=True)
    eq = scores == t
    chosen = gt | (eq & (np.cumsum(eq, axis=1) <= need))
    rows, cols = np.nonzero(chosen)  # exactly n per row, cols ascending within a row
    cols = cols.reshape(m, n)
    vals = scores[rows, cols.reshape(-1)].reshape(m, n)
    # cols ascend within each row, so a stable sort on -vals orders ties by lower index
    order = np.argsort(-vals, axis=1, kind="stable")
    cols = np.take_along_axis(cols, order, axis=1)
    vals = np.take_along_axis(vals, order, axis=1)
    cols = np.where(np.isneginf(vals), -1, cols)
    return cols.astype(np.int64), vals


def _raw_ids(id_map, idx):
    """Raw ids of dense indices ``idx`` of ``id_map``; -1 (padding) becomes -1 or "" for string ids."""
    ids = id_map.ids
    out = ids[np.maximum(idx, 0)]
    pad = idx < 0
    if pad.any():
        out = out.copy()
        out[pad] = "" if ids.dtype.kind == "U" else -1
    return out


def _check_n(n):
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    return int(n)


def _same(a, b):
    try:
        return bool(a == b) if not isinstance(a, np.ndarray) else False
    except Exception:
        return False
