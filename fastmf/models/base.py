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

Unknown ids (one policy for every public method that takes raw ids): ``unknown="raise"`` (the
default) raises :class:`KeyError` naming the first unknown id (and its position in an array);
``unknown="fallback"`` answers from what the model knows instead:

* ``predict``: the global mean plus any known bias (Popularity: 0 for an unknown item);
* ``recommend``: an unknown user gets the model's ranking for unknown users (item popularity; for
  rating models popularity-weighted ratings, see each model); unknown ids in ``items`` /
  ``exclude_items`` are left out;
* ``recommend_new`` / ``fold_in`` / ``partial_fit_users``: unknown items are ignored;
  ``partial_fit_users`` always raises for an unknown user (there is no row to update: use
  ``recommend_new`` / ``fold_in``);
* ``partial_fit_items`` (factor models): unknown users are ignored; an unknown item is not an
  error but a new item, added to the model;
* ``similar_items`` / ``similar_users``: an unknown id gets an empty row (ids -1 or "", scores -inf);
* ``describe_items``: an unknown id gets None values.

The index-level methods (``predict_indices``, ``recommend_indices``) take -1 for an unknown id and
always answer with the fallback (that is what :func:`fastmf.evaluate` uses).

Scores returned by ``recommend``, ``recommend_all`` and ``recommend_new`` of rating models
(``predicts_ratings``) are on the rating scale: clipped to the training data's ``rating_scale_``
(or, without a declared scale, to the range of the training ratings). Clipping happens after the
selection, so the order is that of the unclipped scores.
"""

from __future__ import annotations

import functools
import inspect
import os
import warnings
from typing import TYPE_CHECKING, Any, Callable, Dict, Literal, Optional, Sequence, Tuple, TypeVar, Union

import numpy as np
import numpy.typing as npt

from fastmf import _topk
from fastmf._validation import check_params, first_true, resolve_n_threads
from fastmf.data.ratings import Ids, Ratings
from fastmf.errors import ArgumentTypeError, NotFittedError, UnknownUserWarning

if TYPE_CHECKING:  # pragma: no cover
    import pandas

__all__ = ["Recommender", "NotFittedError", "UnknownUserWarning"]

#: the ``unknown=`` policies of every public method taking raw ids
UNKNOWN_POLICIES = ("raise", "fallback")
Unknown = Literal["raise", "fallback"]
#: a fit callback: ``cb(model, history_entry)`` after every epoch; a true result stops training
Callback = Callable[["Recommender", Dict[str, Any]], Any]
#: ``set_params`` returns the model it was called on, typed as its own class
_R = TypeVar("_R", bound="Recommender")

# Score blocks for recommend are cut so that one block holds about this many scores (bounded memory).
_SCORE_BLOCK = 1 << 22
#: the release that drops the old parameter names of ``_renamed_params``
_RENAMES_REMOVED_IN = "0.4"


def _accept_renamed(init):
    """Wrap a model's ``__init__`` so that it also takes the old names of its renamed parameters
    (keyword only, translated by :meth:`Recommender._new_param_names`). ``functools.wraps`` keeps
    ``__wrapped__``, so ``inspect.signature`` (and :meth:`Recommender._param_names`, ``repr``) still
    sees the signature with the new names only."""

    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        init(self, *args, **type(self)._new_param_names(kwargs))

    return __init__


def _fit_or_restore(fit):
    """Wrap a model's ``fit`` so that a fit that fails (bad input, divergence, MemoryError, Ctrl-C:
    any exception) leaves the estimator as it was before the call: its attributes are put back
    (a fit assigns new arrays and never writes into the ones it replaces, so the old values are
    intact). An unfitted model stays unfitted; a fitted one keeps its previous fit."""

    @functools.wraps(fit)
    def fit_or_restore(self, *args, **kwargs):
        before = dict(self.__dict__)
        try:
            return fit(self, *args, **kwargs)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(before)
            raise

    fit_or_restore._restores_on_failure = True  # type: ignore[attr-defined]
    return fit_or_restore


def _renamed_message(cls, old, new):
    return f"{cls.__name__}: {old} is renamed {new}; {old} will be removed in fastmf {_RENAMES_REMOVED_IN}"


class Recommender:
    """Base class of fastmf models (not used directly)."""

    #: parameter name -> constraint (or tuple of alternatives), checked by :meth:`_validate_params`
    _constraints: dict = {}
    #: True when ``predict`` returns ratings on the data's scale (RMSE makes sense), False for scores
    predicts_ratings = True
    #: recommend_new / fold_in need the new user's rating values (explicit-rating models)
    _new_user_needs_ratings = True
    #: predictions and rankings depend on the time (registry tag ``uses_time``): ``predict``,
    #: ``predict_indices`` and ``recommend_indices`` pass their timestamps to
    #: :meth:`_predict_pairs_at` / :meth:`_score_users_at`; other models never see them
    _uses_time = False

    #: old parameter name -> new name. The constructor and ``set_params`` accept the old name with a
    #: FutureWarning (both names at once: TypeError), ``get_params`` and ``repr`` show only the new
    #: one, reading the old attribute warns and returns the new one, and persistence maps the old
    #: names stored in older model files through it. Each model class declares its own.
    _renamed_params: Dict[str, str] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls._renamed_params and "__init__" in cls.__dict__:
            cls.__init__ = _accept_renamed(cls.__dict__["__init__"])  # type: ignore[method-assign]
        fit = cls.__dict__.get("fit")
        if callable(fit) and not getattr(fit, "_restores_on_failure", False):
            cls.fit = _fit_or_restore(fit)  # type: ignore[method-assign]

    @classmethod
    def _new_param_names(cls, params):
        """``params`` with the old names of :attr:`_renamed_params` replaced by the new ones (a
        FutureWarning for each old name; TypeError when a parameter is given under both names)."""
        renamed = cls._renamed_params
        if not any(name in renamed for name in params):
            return params
        out = {}
        for name, value in params.items():
            new = renamed.get(name)
            if new is None:
                out[name] = value
                continue
            if new in params:
                raise TypeError(f"{cls.__name__}: got both {name!r} and {new!r}; {name} is renamed {new}: "
                                f"pass only {new}")
            warnings.warn(_renamed_message(cls, name, new), FutureWarning, stacklevel=3)
            out[new] = value
        return out

    def __getattr__(self, name: str) -> Any:
        # only called when normal lookup fails: the old name of a renamed parameter reads the new one
        new = type(self)._renamed_params.get(name)
        if new is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        warnings.warn(_renamed_message(type(self), name, new), FutureWarning, stacklevel=2)
        return getattr(self, new)

    # ------------------------------------------------------------------ parameters
    @classmethod
    def _param_names(cls):
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values()
                if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]

    def get_params(self, deep: bool = False) -> Dict[str, Any]:
        """The constructor arguments as a dict (``deep`` is accepted for scikit-learn compatibility)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self: _R, **params: Any) -> _R:
        """Set constructor arguments; unknown names and invalid values raise ValueError. The old
        name of a renamed parameter (``_renamed_params``) sets the new one, with a FutureWarning."""
        params = self._new_param_names(params)
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
    if TYPE_CHECKING:  # every model defines fit(train, ...) -> self; declared for type checkers only
        def fit(self, train: Any, *args: Any, **kwargs: Any) -> Recommender: ...

    def _start_fit(self, train):
        """Validate the training data and hyper-parameters; record what every model keeps: the id
        maps, scale, global mean, item counts, the seen-items CSR and the metadata."""
        self._validate_params()
        if not isinstance(train, Ratings):
            raise ArgumentTypeError(f"{type(self).__name__}.fit expects a fastmf.Ratings as train, got {type(train).__name__}; "
                            "build one with fastmf.Ratings.from_arrays / from_dataframe / read_ratings")
        if len(train) == 0:
            raise ValueError(f"{type(self).__name__}.fit: the training set is empty")
        self.user_map_ = train.user_map
        self.item_map_ = train.item_map
        self.n_users_ = train.n_users
        self.n_items_ = train.n_items
        self.rating_scale_ = train.rating_scale
        r = train.rating
        self.rating_range_ = (float(r.min()), float(r.max()))
        self.global_mean_ = train.global_mean()
        self.item_counts_ = train.item_counts()
        csr = train.to_csr()
        self.user_counts_ = np.diff(csr.indptr).astype(np.int64, copy=False)
        self.seen_indptr_ = csr.indptr
        self.seen_indices_ = csr.indices
        self.item_info_ = train.item_info
        self.user_info_ = train.user_info
        return train

    def _check_continuation(self, train):
        """ValueError unless ``train`` is the data this model was fitted on (``partial_fit``): the
        same Ratings object, or one with the same id maps, the same (user, item) pairs and the same
        mean rating (for models that keep it), checked against the fitted state."""
        if not isinstance(train, Ratings):
            raise TypeError(f"{type(self).__name__}.partial_fit expects a fastmf.Ratings, got {type(train).__name__}")
        name = f"{type(self).__name__}.partial_fit"
        for side, id_map in (("user", self.user_map_), ("item", self.item_map_)):
            other = getattr(train, f"{side}_map")
            if other is not id_map and other != id_map:
                raise ValueError(f"{name}: train's {side} ids are not those the model was fitted on "
                                 f"({len(other)} vs {len(id_map)} {side}s); partial_fit continues a fit on the "
                                 "same data: call fit for new data")
        csr = train.to_csr()
        if not (np.array_equal(csr.indptr, self.seen_indptr_) and np.array_equal(csr.indices, self.seen_indices_)
                and (train.global_mean() == self.global_mean_ or not getattr(self, "biased", True))):
            raise ValueError(f"{name}: train holds other ratings than the data the model was fitted on "
                             f"({len(train)} vs {self.seen_indices_.size} ratings); partial_fit continues a fit "
                             "on the same data: call fit for new data")

    def _continue_from(self):
        """The epoch a continued fit starts at: the one after ``best_epoch_``, whose parameters the
        model holds (the history after it, undone by early stopping, is dropped)."""
        best = int(self.best_epoch_)
        self.history_ = list(self.history_[:best])
        return best + 1

    def _check_fitted(self):
        if not hasattr(self, "user_map_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit(train) first")

    # ------------------------------------------------------------------ persistence
    def save(self, path: Union[str, os.PathLike[str]]) -> str:
        """Write the fitted model to ``path`` as one ``.npz`` file (the name is used exactly as
        given), atomically; read it back with :func:`fastmf.load`. Returns the path as a str.
        See :func:`fastmf.persistence.save_model` for the format and the errors."""
        from fastmf.persistence import save_model

        return save_model(self, path)

    def history_frame(self) -> pandas.DataFrame:
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

    def _predict_pairs_at(self, u, i, timestamps):
        """:meth:`_predict_pairs` at ``timestamps`` (None, one number or one per pair; models with
        ``_uses_time``)."""
        return self._predict_pairs(u, i)

    def _score_users_at(self, u, timestamps):
        """:meth:`_score_users` at ``timestamps`` (None, or one per user; models with ``_uses_time``)."""
        return self._score_users(u)

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
    def predict(self, users: Ids, items: Ids, timestamps: Optional[npt.ArrayLike] = None, clip: bool = True,
                unknown: Unknown = "raise") -> Union[float, np.ndarray]:
        """Predicted ratings for raw (user, item) ids, scalars or arrays of one length.

        Parameters
        ----------
        users, items : raw id or array-like of raw ids
        timestamps : None, a number or an array-like of one per pair
            When each rating would be made (the time unit of the training data's timestamps), for
            models that use time (registry tag ``uses_time``); every other model ignores them, after
            checking that an array has one entry per pair (ValueError otherwise).
        clip : bool
            Clip to the training data's rating scale (ratings models only).
        unknown : {"raise", "fallback"}
            ``"raise"`` (default): KeyError naming the first unknown user or item (and its
            position). ``"fallback"``: predict for unknown users or items from what is known (the
            global mean plus any known bias; Popularity: 0 for an unknown item).
        """
        self._check_fitted()
        _check_unknown(unknown)
        scalar = np.ndim(users) == 0 and np.ndim(items) == 0
        u_raw, i_raw = _aligned_ids(users, items, ("users", "items"))
        _check_timestamps(timestamps, u_raw.size)
        u = self._to_index(self.user_map_, users if scalar else u_raw, unknown, "user")
        i = self._to_index(self.item_map_, items if scalar else i_raw, unknown, "item")
        u = np.atleast_1d(np.asarray(u, dtype=np.int64))
        i = np.atleast_1d(np.asarray(i, dtype=np.int64))
        pred = self._predict_pairs_at(u, i, timestamps) if self._uses_time else self._predict_pairs(u, i)
        if clip and self.predicts_ratings and self.rating_scale_ is not None:
            pred = np.clip(pred, *self.rating_scale_)
        return pred[0].item() if scalar else pred

    def predict_indices(self, user_index: npt.ArrayLike, item_index: npt.ArrayLike,
                        clip: bool = True, timestamps: Optional[npt.ArrayLike] = None) -> np.ndarray:
        """Predictions for dense index pairs of this model's id maps (-1 marks an unknown id), at
        ``timestamps`` as for :meth:`predict`."""
        self._check_fitted()
        u = np.asarray(user_index, dtype=np.int64)
        i = np.asarray(item_index, dtype=np.int64)
        if u.shape != i.shape or u.ndim != 1:
            raise ValueError("user_index and item_index must be 1-D arrays of one length")
        for name, arr, n in (("user_index", u, self.n_users_), ("item_index", i, self.n_items_)):
            bad = first_true((arr < -1) | (arr >= n))
            if bad >= 0:
                raise IndexError(f"{name}[{bad}] = {arr[bad]} is outside [-1, {n})")
        _check_timestamps(timestamps, u.size)
        pred = self._predict_pairs_at(u, i, timestamps) if self._uses_time else self._predict_pairs(u, i)
        if clip and self.predicts_ratings and self.rating_scale_ is not None:
            pred = np.clip(pred, *self.rating_scale_)
        return pred

    @staticmethod
    def _to_index(id_map, raw, unknown, name):
        """Dense indices of raw ids: KeyError naming the first unknown one (``unknown="raise"``) or
        -1 for it (``"fallback"``)."""
        try:
            return id_map.to_index(raw, missing="raise" if unknown == "raise" else -1, name=name)
        except OverflowError:  # an integer beyond int64 cannot be an id of this model
            pass
        arr = np.asarray(raw, dtype=object)
        flat = arr.reshape(-1)
        huge = np.array([isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                         and not -2**63 <= int(v) < 2**63 for v in flat.tolist()], dtype=bool)
        if unknown == "raise":
            first = int(np.flatnonzero(huge)[0]) if huge.any() else 0
            where = f" at position {first}" if arr.ndim else ""
            raise KeyError(f"unknown {name} id {flat[first]!r:.40}{where}: outside the int64 range, "
                           f"so not an id of this model")
        out = np.full(flat.size, -1, dtype=np.int64)
        if (~huge).any():
            out[~huge] = id_map.to_index(np.array(flat[~huge].tolist()), missing=-1, name=name)
        return out.reshape(arr.shape) if arr.ndim else out[0]

    # ------------------------------------------------------------------ recommendation
    def recommend(self, user: Ids, n: int = 10, exclude_seen: bool = True, items: Optional[Ids] = None,
                  exclude_items: Optional[Ids] = None, unknown: Unknown = "raise",
                  as_frame: bool = False, timestamps: Optional[npt.ArrayLike] = None
                  ) -> Union[Tuple[np.ndarray, np.ndarray], "pandas.DataFrame"]:
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
        unknown : {"raise", "fallback"}
            ``"raise"`` (default): KeyError naming the first unknown user or item id.
            ``"fallback"``: unknown users get the model's ranking for unknown users (see
            :meth:`_fallback_scores` of each model: item popularity, or for rating models the
            popularity-weighted rating); unknown ids in ``items``/``exclude_items`` are left out.
        as_frame : bool
            Return a pandas DataFrame (columns ``user``, ``item``, ``rank``, ``score``, plus
            ``title`` when the training data had titles; padding rows left out) instead of arrays.
            Needs pandas.
        timestamps : None, a number or one per user
            When the recommendations are made, for models that use time (registry tag
            ``uses_time``; their default: the last training time); ignored by the others.

        Returns
        -------
        ids, scores : ndarrays
            Raw item ids and their scores, best first; equal scores are ordered by item index.
            For rating models the scores are on the rating scale (each model documents what its
            score is); for the others they are the model's ranking scores.
        """
        self._check_fitted()
        _check_unknown(unknown)
        n = _check_n(n, self.n_items_)
        if not isinstance(as_frame, (bool, np.bool_)):
            raise ValueError(f"as_frame must be True or False, got {as_frame!r}")
        scalar = np.ndim(user) == 0
        raw = np.atleast_1d(np.asarray(user))
        if raw.ndim != 1:
            raise ValueError(f"user must be a raw id or a 1-D array of raw ids, got shape {raw.shape}")
        u = np.atleast_1d(np.asarray(self._to_index(self.user_map_, user if scalar else raw, unknown,
                                                    "user"), dtype=np.int64))
        candidates = self._candidate_mask(items, exclude_items, unknown)
        idx, scores = self.recommend_indices(u, n, exclude_seen=exclude_seen, candidates=candidates,
                                             timestamps=timestamps)
        ids = self._ids_of(idx)
        if as_frame:
            return self._frame(raw, ids, scores)
        return (ids[0], scores[0]) if scalar else (ids, scores)

    def recommend_all(self, n: int = 10, exclude_seen: bool = True, as_frame: bool = False
                      ) -> Union[Tuple[np.ndarray, np.ndarray, np.ndarray], "pandas.DataFrame"]:
        """Top-``n`` for every user the model knows, as one batch job (exact, multi-threaded, bounded
        memory): returns ``(users, ids, scores)`` with ``ids``/``scores`` of shape (n_users, n),
        scores as in :meth:`recommend`; with ``as_frame=True`` one pandas DataFrame in
        :meth:`recommend`'s long format (one row per user and rank)."""
        self._check_fitted()
        idx, scores = self.recommend_indices(np.arange(self.n_users_), n, exclude_seen=exclude_seen)
        users = self.user_map_.ids.copy()
        if as_frame:
            return self._frame(users, self._ids_of(idx), scores)
        return users, self._ids_of(idx), scores

    def _frame(self, users, ids, scores):
        """Long-format DataFrame of top-n results: user, rank, item, score (+ title)."""
        try:
            import pandas as pd
        except ImportError:  # pragma: no cover - depends on the environment
            raise ImportError("as_frame=True needs pandas (pip install pandas, or the 'pandas' extra "
                              "of fastmf)") from None
        ids = np.atleast_2d(ids)
        scores = np.atleast_2d(scores)
        keep = np.isfinite(scores)
        rows, ranks = np.nonzero(keep)
        frame = {"user": np.asarray(users)[rows], "item": ids[keep], "rank": ranks + 1,
                 "score": scores[keep]}
        info = self.item_info_
        if info is not None and "title" in info:
            frame["title"] = info.get(frame["item"], "title")
        return pd.DataFrame(frame)

    def describe_items(self, ids: Ids, unknown: Unknown = "raise") -> list:
        """Title, genres and year of raw item ids from the metadata the model was trained with (a
        list of dicts; values are None when the data carried no such column). An id the model does
        not know raises KeyError, or gets None values with ``unknown="fallback"``."""
        self._check_fitted()
        _check_unknown(unknown)
        arr = np.atleast_1d(np.asarray(ids))
        known = self._to_index(self.item_map_, arr, unknown, "item") >= 0
        info = self.item_info_
        rows = []
        for item, ok in zip(arr.tolist(), known.tolist()):
            row = {"item": item}
            for col in ("title", "genres", "year"):
                row[col] = info.get(item, col) if ok and info is not None and col in info else None
            rows.append(row)
        return rows

    def _candidate_mask(self, items, exclude_items, unknown="raise"):
        if items is None and exclude_items is None:
            return None
        mask = np.ones(self.n_items_, dtype=bool)
        if items is not None:
            mask[:] = False
            idx = self._to_index(self.item_map_, np.atleast_1d(items), unknown, "item")
            mask[idx[idx >= 0]] = True
        if exclude_items is not None:
            idx = self._to_index(self.item_map_, np.atleast_1d(exclude_items), unknown, "item")
            mask[idx[idx >= 0]] = False
        return mask

    def _ids_of(self, idx):
        return _raw_ids(self.item_map_, idx)

    def _score_scale(self):
        """(low, high) that the returned scores of a rating model are clipped to: the declared
        rating scale, else the range of the training ratings; None for other models."""
        if not self.predicts_ratings:
            return None
        scale = getattr(self, "rating_scale_", None)
        return scale if scale is not None else getattr(self, "rating_range_", None)

    def _clip_scores(self, scores):
        """Returned scores of rating models clipped to :meth:`_score_scale`, padding (-inf) kept."""
        scale = self._score_scale()
        if scale is not None:
            finite = np.isfinite(scores)
            scores[finite] = np.clip(scores[finite], *scale)
        return scores

    def recommend_indices(self, user_index: npt.ArrayLike, n: int = 10, exclude_seen: bool = True,
                          candidates: Optional[npt.ArrayLike] = None,
                          timestamps: Optional[npt.ArrayLike] = None) -> Tuple[np.ndarray, np.ndarray]:
        """Top-``n`` dense item indices for dense user indices (-1 = unknown user: fallback ranking),
        at ``timestamps`` (one, or one per user) for models that use time.

        Returns ``(items, scores)``: int64 and float64 arrays of shape ``(len(user_index), n)``,
        padded with -1 / -inf where a user has fewer than ``n`` candidates. ``candidates`` is an
        optional boolean mask over items. Users are scored in blocks, so memory stays bounded.
        Scores as in :meth:`recommend` (on the rating scale for rating models).
        """
        self._check_fitted()
        n = _check_n(n, self.n_items_)
        u = np.asarray(user_index, dtype=np.int64).reshape(-1)
        _check_result_memory(u.size, n, "recommend")
        bad = first_true((u < -1) | (u >= self.n_users_))
        if bad >= 0:
            raise IndexError(f"user_index[{bad}] = {u[bad]} is outside [-1, {self.n_users_})")
        _check_timestamps(timestamps, u.size, "user")
        ts = None
        if self._uses_time and timestamps is not None:
            ts = np.broadcast_to(np.asarray(timestamps), u.shape)
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
                scores[known] = (self._score_users(ub[known]) if ts is None
                                 else self._score_users_at(ub[known], ts[rows][known]))
            if not known.all():
                scores[~known] = self._fallback_scores()
            out_idx[rows], out_score[rows] = _topk.topk_rows(scores, n, users=ub, candidates=cand,
                                                             n_threads=nt, **seen)
        return out_idx, self._clip_scores(out_score)

    # ------------------------------------------------------------------ new users
    #: what the values given to recommend_new / fold_in are: "ratings" (checked against the
    #: model's rating scale) or "strengths" (interaction strengths >= 0, implicit models)
    _new_user_values = "ratings"

    def _new_user(self, items, ratings, unknown="raise"):
        """Dense indices and values of a new user's interactions (unknown items raise KeyError, or
        are dropped with ``unknown="fallback"``; a repeated item keeps its last value). Ratings are
        checked against the model's rating scale, interaction strengths for being >= 0."""
        _check_unknown(unknown)
        items = np.atleast_1d(np.asarray(items))
        if items.ndim != 1:
            raise ValueError(f"items must be a raw id or a 1-D array of raw ids, got shape {items.shape}")
        values = self._interaction_values(ratings, items.size, "recommend_new/fold_in need the new user's ratings")
        idx = np.asarray(self._to_index(self.item_map_, items, unknown, "item"), dtype=np.int64)
        known = idx >= 0
        idx, values = idx[known], values[known]
        # last value wins for a repeated item
        _, last = np.unique(idx[::-1], return_index=True)
        keep = np.sort(idx.size - 1 - last)
        return idx[keep], values[keep]

    def _interaction_values(self, ratings, n, needed):
        """The values of ``n`` interactions as float64 (all 1 when ``ratings`` is None, which only
        models without rating values accept: ValueError "<Model> predicts ratings: <needed>"),
        checked for length, finiteness and by :meth:`_check_new_values`."""
        if ratings is None:
            if self._new_user_needs_ratings:
                raise ValueError(f"{type(self).__name__} predicts ratings: {needed}")
            return np.ones(n)
        try:
            values = np.atleast_1d(np.asarray(ratings, dtype=np.float64))
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"ratings must be numbers (a scalar or a 1-D array), got {ratings!r:.60}") from None
        if values.shape != (n,):
            raise ValueError(f"items and ratings differ in length: {n} != {values.size}")
        bad = first_true(~np.isfinite(values))
        if bad >= 0:
            raise ValueError(f"ratings[{bad}] = {values[bad]} is not finite")
        self._check_new_values(values)
        return values

    def _check_new_values(self, values):
        if self._new_user_values == "strengths":
            bad = first_true(values < 0)
            if bad >= 0:
                raise ValueError(f"{type(self).__name__}: ratings[{bad}] = {values[bad]:g} is negative; "
                                 "interaction strengths must be >= 0")
            return
        scale = getattr(self, "rating_scale_", None)
        if scale is None:
            scale = getattr(self, "rating_range_", None)
        if scale is None:
            return
        lo, hi = scale
        bad = first_true((values < lo) | (values > hi))
        if bad >= 0:
            raise ValueError(f"{type(self).__name__}: ratings[{bad}] = {values[bad]:g} is outside the "
                             f"model's rating scale [{lo:g}, {hi:g}]")

    def _new_user_scores(self, idx, values):
        """Ranking scores over all items for a new user with interactions (idx, values); models that
        learn user parameters override this with a fold-in."""
        return self._fallback_scores()

    def recommend_new(self, items: Ids, ratings: Optional[Sequence[float]] = None, n: int = 10,
                      exclude_seen: bool = True, exclude_items: Optional[Ids] = None,
                      unknown: Unknown = "raise") -> Tuple[np.ndarray, np.ndarray]:
        """Top-``n`` items for a user the model was not trained on, from that user's items (and
        ratings, for models of explicit ratings), without retraining: latent-factor models fold the
        user in (:meth:`fold_in`), the others rank by their item scores. ``exclude_seen`` leaves out
        the given items. Returns ``(ids, scores)`` like :meth:`recommend` for one user.

        Ratings must lie in the model's rating scale (``rating_scale_``, else the range of the
        training ratings); implicit models take interaction strengths >= 0. ValueError names the
        position, the value and the allowed range. Items unknown to the model raise KeyError, or
        are ignored with ``unknown="fallback"``."""
        self._check_fitted()
        n = _check_n(n, self.n_items_)
        idx, values = self._new_user(items, ratings, unknown)
        # no item the model knows: the user is as unknown as one never seen
        scores = self._new_user_scores(idx, values) if idx.size else self._fallback_scores()
        scores = np.asarray(scores, dtype=np.float64).reshape(1, -1)
        seen = {}
        if exclude_seen:
            seen = dict(excl_indptr=np.array([0, idx.size], dtype=np.int64),
                        excl_indices=np.sort(idx).astype(np.int32))
        cand = self._candidate_mask(None, exclude_items, unknown)
        top, top_scores = _topk.topk_rows(np.ascontiguousarray(scores), n, users=np.zeros(1, np.int64),
                                          candidates=cand, **seen)
        return self._ids_of(top)[0], self._clip_scores(top_scores[0].astype(np.float64))

    def similar_items(self, item: Ids, n: int = 10, metric: str = "cosine",
                      unknown: Unknown = "raise") -> Tuple[np.ndarray, np.ndarray]:
        """The items most similar to ``item`` by learned factors: see
        :meth:`fastmf.models.factor.FactorModel.similar_items`. A model without factors raises
        TypeError."""
        return self._no_factors("item")

    def similar_users(self, user: Ids, n: int = 10, metric: str = "cosine",
                      unknown: Unknown = "raise") -> Tuple[np.ndarray, np.ndarray]:
        """The users most similar to ``user`` by learned factors: see
        :meth:`fastmf.models.factor.FactorModel.similar_users`. A model without factors raises
        TypeError."""
        return self._no_factors("user")

    def _no_factors(self, kind):
        self._check_fitted()
        raise TypeError(f"{type(self).__name__} has no {kind} factors; similar_{kind}s needs a "
                        "latent-factor model such as MatrixFactorization")


def topn_rows(scores: np.ndarray, n: int) -> Tuple[np.ndarray, np.ndarray]:
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


def _aligned_ids(first, second, names):
    """Two raw-id arguments (scalars or 1-D arrays of one length) as 1-D arrays; ValueError naming
    them otherwise."""
    a, b = np.atleast_1d(np.asarray(first)), np.atleast_1d(np.asarray(second))
    if a.ndim != 1 or b.ndim != 1:
        raise ValueError(f"{names[0]} and {names[1]} must be scalars or 1-D arrays")
    if a.shape != b.shape:
        raise ValueError(f"{names[0]} and {names[1]} differ in length: {a.shape[0]} != {b.shape[0]}")
    return a, b


def _check_unknown(unknown):
    if not isinstance(unknown, str) or unknown not in UNKNOWN_POLICIES:
        raise ValueError(f"unknown must be 'raise' or 'fallback', got {unknown!r}")


def _check_timestamps(timestamps, n, per="(user, item) pair"):
    """ValueError unless ``timestamps`` is None, one number, or ``n`` numbers (one per pair, or per
    ``per``)."""
    if timestamps is None:
        return
    ts = np.asarray(timestamps)
    if ts.dtype.kind not in "iufM" or ts.dtype == np.bool_:
        raise ValueError(f"timestamps must be numbers (or datetime64), got dtype {ts.dtype}")
    if ts.ndim > 1 or (ts.ndim == 1 and ts.size != n):
        raise ValueError(f"timestamps must be one number or one per {per} ({n}), got shape {ts.shape}")


def _check_n(n, cap=None):
    """``n`` as an int >= 1 (ValueError otherwise), capped at ``cap`` (the catalogue size: a list
    cannot hold more items than there are, so ``n=10**9`` costs what ``n=n_items`` does)."""
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    return int(n) if cap is None else max(1, min(int(n), int(cap)))


def _check_result_memory(rows, n, what):
    """The (rows, n) int64 ids + float64 scores of a top-n answer must fit in memory."""
    from fastmf._validation import check_memory

    check_memory(16 * int(rows) * int(n), f"{what} for {rows:,} rows x n={n:,}", "n or ask for fewer users at a time")


def _same(a, b):
    try:
        return bool(a == b) if not isinstance(a, np.ndarray) else False
    except Exception:
        return False
