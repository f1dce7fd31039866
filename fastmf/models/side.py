r"""Side features for cold items and users: the feature-to-factor map, ``side="map"``.

Written once here for every factor model (:class:`fastmf.MatrixFactorization` with either solver,
:class:`fastmf.ImplicitALS`, :class:`fastmf.BayesianMF`): :class:`SideFeatureMap` is a base of
:class:`fastmf.models.factor.FactorModel`.

The map (Gantner et al., "Learning Attribute-to-Feature Mappings for Cold-Start Recommendations",
ICDM 2010)
------------------------------------------------------------------------------------------------
The model is trained on the ratings exactly as without features, so warm predictions are untouched.
Then, for each side given features (``fit(train, item_features=..., user_features=...)``), a ridge
regression from an item's feature row :math:`x_i` (scaled to unit L2 norm, plus a constant 1) to
its learned parameters :math:`t_i = [q_i, b_i, e_i]` (factors, bias when the model has one,
engagement factors when it ranks by engagement) is fitted on the items that have ratings:

.. math::

    W = \arg\min_W \sum_{i:\,n_i > 0} n_i \lVert t_i - W^\top \tilde x_i \rVert^2
        + \lambda \bar n \lVert W_{1:F} \rVert_F^2, \qquad \tilde x_i = [x_i, 1],

solved in closed form, :math:`W = (\tilde X^\top N \tilde X + \lambda \bar n D)^{-1} \tilde X^\top N T`
with :math:`N = \mathrm{diag}(n_i)` the items' rating counts, :math:`\bar n` their mean and :math:`D`
the identity except for a 0 on the intercept (``side_reg`` is :math:`\lambda`, in units of an
average item). The weight :math:`n_i` makes the fit one of ratings rather than of items: on ml-100k
item-cold (20% of the items, 3 seeds, genres + year) the unweighted map gave RMSE 1.054 on the cold
items, :math:`\sqrt{n_i}` 1.022 and :math:`n_i` 1.010, since a popular item's parameters are better
determined and it carries more of the held-out ratings. Every item
of the model without ratings (``item_counts_ == 0``: the held-out items of
:func:`fastmf.split.item_cold_split`, or items of the id map with no training rating) then gets
:math:`\hat t_i = W^\top \tilde x_i` as its factors, bias and engagement row, so ``predict``,
``recommend`` (cold items can be recommended; ``items=`` restricts the candidates),
``similar_items`` and ``evaluate`` answer for it like for any item. Users likewise. An empty feature
row gives the intercept: the parameters of an average item (user).

New ids that the model has never seen are added with :meth:`SideFeatureMap.add_items` /
:meth:`SideFeatureMap.add_users` (batched); :meth:`SideFeatureMap.side_vectors` gives the mapped
parameters of any feature rows, and :meth:`SideFeatureMap.similar_to_features` the items closest to a
feature row. ``fold_in(items, ratings, features=x)`` folds in a new user with features and a few
ratings: the row solve is centred on the mapped parameters instead of zero
(:meth:`fastmf.models.factor.FactorModel._fold_in`).

Joint mode (``side="joint"``, :class:`fastmf.MatrixFactorization` with SGD)
------------------------------------------------------------------------
The feature factors are learned with the model instead (Koren, Bell & Volinsky 2009, eq. 6 on the
item side; Chen et al., "SVDFeature", JMLR 2012): :math:`q_i^{eff} = q_i + \sum_g x_{ig} z_g`,
:math:`b_i^{eff} = b_i + \sum_g x_{ig} w_g` (users likewise), with a penalty ``side_reg_free`` on
the free part :math:`q_i` so that what items share moves into :math:`z_g`, and feature dropout
(``side_dropout``: a rating's free part left out of its prediction and update) so the feature part
is trained to predict alone, as it must for a cold item. The kernel is csrc/sgd_side.c (twin
``fastmf.reference.sgd_side_epoch``); the model keeps the effective parameters in its factor and
bias arrays and :math:`[Z, w]` as the map :math:`W` above with a zero intercept row
(:meth:`SideFeatureMap._fit_side` with ``learned``), so everything below works unchanged: a row
without ratings has free part 0 and gets :math:`W^\top \tilde x_i`, its feature part. The
engagement columns of the map are the ridge fit above in either mode.

Not here yet: joint mode for ALS and the other factor models; the
features are not used by ``recommend_new`` (add the user with :meth:`add_users`, then
``recommend``); ``partial_fit`` drops the map. Fitted state (declared in the registry, saved in the model file): ``item_side_map_``
(float64, ``(n_item_features + 1, width)``), ``item_side_names_`` (feature names),
``item_side_targets_`` (which arrays the columns of the map fill), the same for users.
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np

from fastmf._validation import Interval, Options, show
from fastmf.data.features import Features, as_feature_rows, normalize_rows
from fastmf.data.ratings import IdMap, Ids, normalize_ids

__all__ = ["SideFeatureMap", "SIDE_CONSTRAINTS", "JOINT_CONSTRAINTS", "feature_csr"]

#: the parameters of side features, merged into each factor model's ``_constraints``
SIDE_CONSTRAINTS = {
    "side": Options("map"),
    "side_reg": Interval("real", 0, None),
}

#: the parameters of ``side="joint"`` (the models that train it: MatrixFactorization with SGD or ALS)
JOINT_CONSTRAINTS = {
    **SIDE_CONSTRAINTS,
    "side": Options("map", "joint"),
    "side_reg_free": (Options(None), Interval("real", 0, None)),
    "side_reg_features": Interval("real", 0, None),
    "side_dropout": Interval("real", 0, 1, closed="left"),
    "side_dropout_mode": Options("all", "features"),
}


def feature_csr(X: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The CSR triple ``(indptr int64, indices int32, values float64)`` of the nonzeros of a dense
    feature matrix (rows in order, columns rising): the form the joint kernel reads."""
    rows, cols = np.nonzero(X)
    indptr = np.zeros(X.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=X.shape[0]), out=indptr[1:])
    return indptr, cols.astype(np.int32), np.ascontiguousarray(X[rows, cols], dtype=np.float64)

_KINDS = ("item", "user")


class SideFeatureMap:
    """The feature-to-parameter map of the factor models (module docstring)."""

    # ------------------------------------------------------------------ fit
    def _side_inputs(self, train, item_features, user_features):
        """Check and align the features given to ``fit`` (before training, so bad input fails
        fast): ``{kind: (X normalised, names)}``."""
        out = {}
        for kind, given in (("item", item_features), ("user", user_features)):
            if given is not None:
                X, names = as_feature_rows(given, train.item_map if kind == "item" else train.user_map, kind)
                out[kind] = (normalize_rows(X), names)
        return out

    def _fit_side(self, inputs, learned=None):
        """After training: fit the map of each side in ``inputs`` on its rows with ratings and give
        the rows without ratings their mapped parameters. ``learned``: ``{kind: (Z, w)}``, the
        feature factors and biases of a side trained with ``side="joint"``, which replace the
        fitted map's factor and bias columns (no intercept: a cold row's parameters are its feature
        part; the engagement columns, when present, are still the fitted map's). Returns self."""
        self._drop_side()
        learned = learned or {}
        for kind, (X, names) in inputs.items():
            targets = self._side_target_names(kind)
            T = np.hstack([self._side_column_block(t) for t in targets])
            counts = self._side_counts(kind)
            warm = counts > 0
            n = counts[warm].astype(np.float64)
            Xa = np.hstack([X[warm], np.ones((int(warm.sum()), 1))])
            reg = np.full(Xa.shape[1], float(self.side_reg) * n.mean())
            reg[-1] = 0.0  # the intercept is not penalised
            A = (Xa * n[:, None]).T @ Xa + np.diag(reg)
            rhs = (Xa * n[:, None]).T @ T[warm]
            try:
                W = np.linalg.solve(A, rhs)
            except np.linalg.LinAlgError:  # side_reg = 0 and collinear features
                W = np.linalg.lstsq(A, rhs, rcond=None)[0]
            if kind in learned:
                Z, w = learned[kind]
                k = Z.shape[1]
                W[:-1, :k], W[-1, :k] = Z, 0.0
                if f"{kind}_bias_" in targets:
                    W[:-1, k], W[-1, k] = w, 0.0
            setattr(self, f"{kind}_side_map_", np.ascontiguousarray(W, dtype=np.float64))
            setattr(self, f"{kind}_side_names_", list(names))
            setattr(self, f"{kind}_side_targets_", list(targets))
            cold = np.flatnonzero(~warm)
            if cold.size:
                self._side_assign(kind, cold, X[cold])
        return self

    @classmethod
    def _check_state(cls, values):
        """The side state's invariants the registry cannot declare (persistence runs this on save
        and load): map, names and targets come together; one name per feature row of the map;
        the targets are this side's factors, then optionally its bias and engagement rows, and
        their widths add up to the map's columns."""
        for kind in _KINDS:
            W, names, targets = (values.get(f"{kind}_side_{n}") for n in ("map_", "names_", "targets_"))
            if W is None and names is None and targets is None:
                continue
            if W is None or names is None or targets is None:
                raise ValueError(f"{cls.__name__}: {kind}_side_map_, {kind}_side_names_ and "
                                 f"{kind}_side_targets_ must be given together")
            if len(names) != W.shape[0] - 1:
                raise ValueError(f"{cls.__name__}: {kind}_side_names_ has {len(names)} names for the "
                                 f"{W.shape[0] - 1} feature rows of {kind}_side_map_")
            allowed = [f"{kind}_factors_", f"{kind}_bias_", f"{kind}_engagement_"]
            if (not targets or targets[0] != allowed[0] or len(set(targets)) != len(targets)
                    or any(t not in allowed for t in targets)):
                raise ValueError(f"{cls.__name__}: {kind}_side_targets_ must be {allowed[0]!r} followed by "
                                 f"any of {allowed[1:]}, got {targets!r:.80}")
            width = 0
            for t in targets:
                arr = values.get(t)
                if arr is None:
                    raise ValueError(f"{cls.__name__}: {kind}_side_targets_ names {t}, which the model lacks")
                width += 1 if arr.ndim == 1 else arr.shape[1]
            if width != W.shape[1]:
                raise ValueError(f"{cls.__name__}: {kind}_side_map_ has {W.shape[1]} columns but its "
                                 f"targets {targets} are {width} wide")

    def _drop_side(self):
        """Forget the feature maps of an earlier fit (a fit without features, or partial_fit: the
        factors they were fitted to change): the side state is None, as a model file without it
        loads."""
        for kind in _KINDS:
            for name in ("map_", "names_", "targets_"):
                setattr(self, f"{kind}_side_{name}", None)

    def _side_counts(self, kind):
        return self.item_counts_ if kind == "item" else self.user_counts_

    def _side_target_names(self, kind):
        """The per-row arrays of ``kind`` the map predicts: factors, the bias when the model has
        one, the engagement factors when present."""
        names = [f"{kind}_factors_"]
        _, user_bias, item_bias = self._biases()
        if (user_bias if kind == "user" else item_bias) is not None:
            names.append(f"{kind}_bias_")
        if self.__dict__.get(f"{kind}_engagement_") is not None:
            names.append(f"{kind}_engagement_")
        return names

    def _side_column_block(self, name):
        arr = np.asarray(getattr(self, name), dtype=np.float64)
        return arr.reshape(arr.shape[0], -1)

    def _side_map(self, kind):
        W = self.__dict__.get(f"{kind}_side_map_")
        if W is None:
            self._check_fitted()
            raise ValueError(f"{type(self).__name__} was fitted without {kind} features: pass "
                             f"{kind}_features= to fit (e.g. ds.{kind}_features(...)) to map features "
                             f"to {kind} factors")
        return W

    def _side_assign(self, kind, rows, X):
        """Write the mapped parameters of feature rows ``X`` (normalised) into rows ``rows``."""
        pred = self._side_predict(kind, X)
        col = 0
        for name in self.__dict__[f"{kind}_side_targets_"]:
            arr = getattr(self, name)
            width = 1 if arr.ndim == 1 else arr.shape[1]
            block = pred[:, col:col + width]
            arr[rows] = (block[:, 0] if arr.ndim == 1 else block).astype(arr.dtype)
            col += width

    def _side_predict(self, kind, X):
        W = self._side_map(kind)
        return X @ W[:-1] + W[-1]

    # ------------------------------------------------------------------ feature rows of a request
    def _side_rows(self, kind, ids, features):
        """Normalised feature rows for the raw ``ids`` (1-D): ``features`` an array with one row per
        id, or a Features / DataFrame keyed by raw id (every id must be there; columns matched by
        name with those of fit)."""
        W = self._side_map(kind)
        names = self.__dict__[f"{kind}_side_names_"]
        where = f"{kind} features"
        keyed = isinstance(features, Features) or type(features).__name__ == "DataFrame"
        if keyed:
            given_names = list(features.names if isinstance(features, Features) else map(str, features.columns))
            missing = [n for n in names if n not in given_names]
            if missing:
                raise ValueError(f"{where}: the columns {missing[:5]} the model was fitted with are missing")
            X, _ = as_feature_rows(features, IdMap(ids), kind, where)
            keys = (features.ids if isinstance(features, Features) else np.asarray(features.index))
            present = IdMap(normalize_ids(np.asarray(keys), where)).to_index(ids, missing=-1)
            absent = np.flatnonzero(np.atleast_1d(present) < 0)
            if absent.size:
                raise KeyError(f"{where}: no row for {kind} id {show(ids[absent[0]])} (position {absent[0]})")
            X = X[:, [given_names.index(n) for n in names]]
        else:
            X, _ = as_feature_rows(np.atleast_2d(features) if np.ndim(features) == 1 else features,
                                   IdMap(np.arange(ids.size)), kind, where)
            if X.shape[1] != W.shape[0] - 1:
                raise ValueError(f"{where}: {X.shape[1]} columns, but the model was fitted with "
                                 f"{W.shape[0] - 1} ({', '.join(names[:5])}{', ...' if len(names) > 5 else ''})")
        return normalize_rows(X)

    def side_vectors(self, features: Any, kind: str = "item") -> Tuple[np.ndarray, Optional[np.ndarray]]:
        """The mapped ``(factors, bias)`` of feature rows (an array ``(n, n_features)`` in the
        columns of fit, or one row ``(n_features,)``): what a cold item (``kind="item"``) or user
        with these features gets. ``bias`` is None for a model without biases. Rows are L2
        normalised first, as in fit."""
        if kind not in _KINDS:
            raise ValueError(f"kind must be 'item' or 'user', got {kind!r}")
        one = np.ndim(features) == 1
        X = self._side_rows(kind, np.arange(1 if one else len(features)), features)
        pred = self._side_predict(kind, X)
        own = getattr(self, f"{kind}_factors_")
        k = own.shape[1]
        targets = self.__dict__[f"{kind}_side_targets_"]
        factors = pred[:, :k].astype(own.dtype)
        bias = pred[:, k] if f"{kind}_bias_" in targets else None
        if one:
            return factors[0], (None if bias is None else float(bias[0]))
        return factors, bias

    # ------------------------------------------------------------------ new ids
    def add_items(self, items: Ids, features: Any) -> "SideFeatureMap":
        """Add items by their features alone (batched): each raw id in ``items`` the model does not
        know is appended to ``item_map_`` (as :meth:`partial_fit_items` adds one), with the mapped
        factors, bias and engagement row; an id it knows that has no rating (``item_counts_`` 0)
        gets its rows re-mapped from the given features. An id with ratings raises ValueError (its
        factors are learned from them; use ``partial_fit_items`` to re-solve it).

        ``features``: an array with one row per id of ``items`` (the columns of fit), or a Features /
        DataFrame keyed by raw id holding every id (columns matched by name). Afterwards ``predict``,
        ``recommend`` (the new items are candidates), ``similar_items`` and ``save`` cover them.
        Returns self."""
        return self._add("item", items, features)

    def add_users(self, users: Ids, features: Any) -> "SideFeatureMap":
        """:meth:`add_items` for users: new users (or known users without ratings) from their
        features; ``recommend`` then answers for them from the mapped factors and bias."""
        return self._add("user", users, features)

    def _add(self, kind, raw, features):
        self._check_fitted()
        self._side_map(kind)
        ids = normalize_ids(np.atleast_1d(np.asarray(raw)), f"{kind}s")
        if ids.ndim != 1:
            raise ValueError(f"{kind}s must be a raw id or a 1-D array of raw ids, got shape {ids.shape}")
        X = self._side_rows(kind, ids, features)
        id_map = self.item_map_ if kind == "item" else self.user_map_
        idx = np.atleast_1d(np.asarray(id_map.to_index(ids, missing=-1, name=kind), dtype=np.int64))
        warm = np.flatnonzero((idx >= 0) & (self._side_counts(kind)[np.maximum(idx, 0)] > 0))
        if warm.size:
            raise ValueError(f"{kind} {ids[warm[0]]!r} (position {warm[0]}) has ratings: its factors are "
                             f"learned from them; add_{kind}s takes new {kind}s or {kind}s without ratings")
        new = idx < 0
        if new.any():
            n_old = self.n_items_ if kind == "item" else self.n_users_
            if kind == "item":
                self._append_items(ids, idx, np.full(ids.size, -1, dtype=np.int64), new)
            else:
                self._append_users(ids, idx, new)
            self._rows_added(kind, n_old)
        self._side_assign(kind, idx, X)
        if kind == "item":
            for stale in self._item_side_caches:
                self.__dict__.pop(stale, None)
        return self

    def _rows_added(self, kind, n_old):
        """Called after new rows of ``kind`` got their parameters (BayesianMF: grow its kept draws)."""

    # ------------------------------------------------------------------ similar items from features
    def similar_to_features(self, features: Any, n: int = 10, metric: str = "cosine"
                            ) -> Tuple[np.ndarray, np.ndarray]:
        """The ``n`` items whose factors are closest to the mapped factors of item feature rows:
        similar items for an item given only its features (one row: 1-D ids and scores; an array
        of rows: 2-D, batched). ``metric`` as in ``similar_items``."""
        from fastmf.models.base import _check_n, _raw_ids
        from fastmf.similarity import check_metric, top_similar

        n = _check_n(n, self.n_items_)
        check_metric(metric)
        factors, _ = self.side_vectors(features, "item")
        top, scores = top_similar(np.atleast_2d(factors), self.item_factors_, n, metric)
        out = _raw_ids(self.item_map_, top)
        return (out[0], scores[0]) if np.ndim(factors) == 1 else (out, scores)
