"""One-call evaluation of a fitted model on a test :class:`~fastmf.data.Ratings`: :func:`evaluate`."""

from __future__ import annotations

import numbers
import warnings
from typing import Any

import numpy as np

from fastmf import metrics
from fastmf._validation import first_true
from fastmf.data.ratings import Ratings
from fastmf.errors import EvaluationWarning

__all__ = ["evaluate", "EvaluationWarning"]



# share of test ids unknown to the model above which the test looks like another data set
_FOREIGN_SHARE = 0.5

# test pairs per predict_indices call (bounds the model's temporaries for big test sets)
_PREDICT_CHUNK = 1 << 18


def evaluate(model: Any, test: Ratings, k: int = 10, threshold: float | None = None,
             exclude_seen: bool = True, users: Any = None, batch_size: int = 2048,
             per_user: bool = False, cold_warm: bool = False) -> dict | tuple:
    r"""Rating and top-k ranking metrics of a fitted model on held-out ratings.

    Rating metrics (only when ``getattr(model, "predicts_ratings", True)`` is true) compare the
    model's prediction with every test rating of the evaluated users:
    :func:`fastmf.metrics.rmse` and :func:`fastmf.metrics.mae`.

    Ranking metrics ask the model for each evaluated user's top ``k`` items
    (``model.recommend_indices(users, k, exclude_seen=exclude_seen)``, so the user's training items
    are left out by default) and score them against the user's **relevant items**: the items of that
    user in ``test``, restricted to ``rating >= threshold`` when a threshold is given. A user is
    evaluated when they have at least one relevant item; users without one are left out of every
    ranking metric. With binary relevance :math:`\mathrm{rel}_u(i)` of the item at rank i:

    * ``precision@k`` :math:`= \frac1k \sum_{i\le k} \mathrm{rel}_u(i)` (padding counts as a miss),
    * ``recall@k`` :math:`= \frac{1}{|\mathrm{Rel}_u|} \sum_{i\le k} \mathrm{rel}_u(i)`,
    * ``ndcg@k`` with gains 1 and discount :math:`1/\log_2(i+1)`, normalised by the ideal DCG of
      :math:`\min(k, |\mathrm{Rel}_u|)` hits,
    * ``map@k``: AP@k :math:`= \frac{1}{\min(k, |\mathrm{Rel}_u|)} \sum_{i\le k} P@i\,\mathrm{rel}_u(i)`,
    * ``hit_rate@k``: 1 when any of the top k is relevant,

    each averaged over the evaluated users (see :mod:`fastmf.metrics` for details), and ``coverage``:
    the number of distinct items in the evaluated users' top-k lists divided by the model's catalog
    size ``model.n_items_``.

    Id maps: when the model was trained on a split of the same data (the usual case) its maps are the
    test's and dense indices are used directly. Otherwise test ids are translated through the raw ids;
    a test user or item the model never saw is passed as index -1, which the model answers with its
    documented fallback (predictions from the global mean and known biases; the popularity ranking for
    an unknown user). Such users are evaluated like any other, and relevant items the model does not
    know stay in the relevant set (they can never be recommended, which lowers recall honestly).

    Parameters
    ----------
    model : fitted fastmf model
        Anything with ``predict_indices``, ``recommend_indices``, ``user_map_``, ``item_map_`` and
        ``n_items_`` (every :class:`fastmf.base.Recommender`).
    test : Ratings
        Held-out ratings, e.g. the second output of a :mod:`fastmf.split` function.
    k : int
        Cut-off of the ranking metrics (appears in the keys, e.g. ``"ndcg@10"``).
    threshold : float, optional
        Only test ratings ``>= threshold`` count as relevant (the rating metrics still use all of them).
    exclude_seen : bool
        Passed to ``recommend_indices``: leave out the items each user rated in the training data.
    users : array-like of raw user ids, optional
        Evaluate only these users: both the rating metrics and the ranking metrics are restricted to
        their test ratings. Every id must be in ``test.user_map`` (KeyError otherwise).
    batch_size : int
        Users per ``recommend_indices`` call, bounding memory to about ``batch_size * n_items`` scores.
    per_user : bool
        Also return a per-user table (see Returns).
    cold_warm : bool
        Also report the metrics of the cold and warm test rows separately (see Returns).

    Returns
    -------
    dict, or (dict, table) with ``per_user=True``
        ``"rmse"``, ``"mae"`` (rating models only), ``"precision@k"``, ``"recall@k"``, ``"ndcg@k"``,
        ``"map@k"``, ``"hit_rate@k"``, ``"coverage"`` (floats) and ``"n_users"`` (int, the number of
        users in the ranking metrics).
        **Time** (models that use time, registry tag ``uses_time``, on a test with timestamps):
        predictions are made at each test rating's time and each user's list at the time of their
        first test rating; the rating metrics are also reported on the test ratings whose (user,
        day) the model saw in training and on the others: ``"rmse_day_seen"``, ``"mae_day_seen"``,
        ``"n_day_seen"``, ``"rmse_day_unseen"``, ``"mae_day_unseen"``, ``"n_day_unseen"`` (the
        errors only for a part that has ratings; the model's ``day_seen(user_index, timestamps)``
        decides).
        **Cold and warm rows** (``cold_warm=True``): when some test ratings have a *cold* item or user (one with no
        training rating: unknown to the model, or ``item_counts_`` / ``user_counts_`` 0, as after
        :func:`fastmf.split.item_cold_split`), the rating metrics are also reported on each part:
        ``"rmse_warm"``, ``"mae_warm"``, ``"n_warm"`` (both known with ratings),
        ``"rmse_cold_items"``, ``"mae_cold_items"``, ``"n_cold_items"`` (a cold item) and
        ``"..._cold_users"`` likewise; and the ranking metrics **among the cold items** the model
        has rows for (``"ndcg@k_cold_items"``, ...: each user's top k drawn from those items only,
        relevant = that user's test items among them), the question of cold-item recommendation.
        The table has one row per user with a test rating in scope, ordered by the test's user index:
        ``user`` (raw id), ``n_test`` (test ratings), ``n_relevant``, ``rmse`` and ``mae`` (rating
        models) over that user's test ratings, and each ranking metric (``"ndcg@10"``...; NaN for a
        user with no relevant item, who is left out of the averages). It is a pandas DataFrame when
        pandas is installed, else a dict of equal-length NumPy arrays; the averages of the dict equal
        the ranking metrics' means over the rows that are not NaN.

    Warns
    -----
    EvaluationWarning
        When test pairs are also in the model's training data (count and share; the metrics are then
        optimistic and, with ``exclude_seen``, those items cannot be recommended); when test ratings
        lie outside the model's rating scale, or more than half of the test's users or items are
        unknown to the model while some ids are known (ids that collide across two data sets); and
        when no test pair has a user and an item the model knows (every answer is a fallback).

    Raises
    ------
    ValueError
        On an empty test set, bad parameters, no user with a relevant item, or a model answer of the
        wrong shape or with non-finite predictions.

    Examples
    --------
    >>> train, test = fastmf.split.random_split(ds, test_size=0.2, random_state=0)  # doctest: +SKIP
    >>> fastmf.evaluate(fastmf.Biases().fit(train), test, k=10, threshold=4)       # doctest: +SKIP
    """
    if not isinstance(test, Ratings):
        raise TypeError(f"evaluate: test must be a fastmf.Ratings, got {type(test).__name__}")
    if len(test) == 0:
        raise ValueError("evaluate: the test set is empty")
    k = _check_positive_int(k, "k")
    batch_size = _check_positive_int(batch_size, "batch_size")
    if threshold is not None and (isinstance(threshold, (bool, np.bool_))
                                  or not isinstance(threshold, numbers.Real) or not np.isfinite(threshold)):
        raise ValueError(f"evaluate: threshold must be None or a finite number, got {threshold!r}")
    if not isinstance(exclude_seen, (bool, np.bool_)):
        raise ValueError(f"evaluate: exclude_seen must be True or False, got {exclude_seen!r}")
    for attr in ("user_map_", "item_map_", "n_items_"):
        if not hasattr(model, attr):
            from fastmf.models.base import NotFittedError

            raise NotFittedError(f"evaluate: {type(model).__name__} has no {attr}; fit the model first")

    # ---- which test entries take part
    in_scope = np.ones(len(test), dtype=bool)
    if users is not None:
        wanted = np.atleast_1d(np.asarray(users))
        if wanted.size == 0:
            raise ValueError("evaluate: users is empty")
        chosen = np.zeros(test.n_users, dtype=bool)
        chosen[test.user_map.to_index(wanted.reshape(-1), missing="raise", name="user")] = True
        in_scope = chosen[test.user_index]
        if not in_scope.any():
            raise ValueError("evaluate: none of the given users has a rating in the test set")

    # ---- translation between the test's dense indices and the model's
    same_users = model.user_map_ is test.user_map or model.user_map_ == test.user_map
    same_items = model.item_map_ is test.item_map or model.item_map_ == test.item_map
    user_to_model = None if same_users else model.user_map_.to_index(test.user_map.ids, missing=-1)
    item_to_model = None if same_items else model.item_map_.to_index(test.item_map.ids, missing=-1)

    if not isinstance(per_user, (bool, np.bool_)):
        raise ValueError(f"evaluate: per_user must be True or False, got {per_user!r}")
    _check_test_data(model, test, in_scope, user_to_model, item_to_model)

    result = {}
    table: dict = {}
    if getattr(model, "predicts_ratings", True):
        result.update(_rating_metrics(model, test, in_scope, user_to_model, item_to_model,
                                      table if per_user else None))
    result.update(_ranking_metrics(model, test, in_scope, k, threshold, exclude_seen, batch_size,
                                   user_to_model, same_items, table if per_user else None))
    if not isinstance(cold_warm, (bool, np.bool_)):
        raise ValueError(f"evaluate: cold_warm must be True or False, got {cold_warm!r}")
    if cold_warm:
        result.update(_cold_warm_metrics(model, test, in_scope, k, threshold, exclude_seen, batch_size,
                                         user_to_model, item_to_model, same_items))
    if not per_user:
        return result
    return result, _per_user_table(test, in_scope, table)


def _warn(message):
    warnings.warn(message, EvaluationWarning, stacklevel=4)


def _check_test_data(model, test, in_scope, user_to_model, item_to_model):
    """EvaluationWarnings for a test set that overlaps training, is foreign, or is all unknown."""
    u = test.user_index[in_scope].astype(np.int64)
    i = test.item_index[in_scope].astype(np.int64)
    n = u.shape[0]
    mu = u if user_to_model is None else user_to_model[u]
    mi = i if item_to_model is None else item_to_model[i]
    known = (mu >= 0) & (mi >= 0)
    n_known = int(np.count_nonzero(known))
    if n_known == 0:
        _warn(f"evaluate: none of the {n} test ratings has a user and an item the model knows: every "
              "prediction and list is the model's fallback (is this test set from another data set?)")
    # ids of another data set: most test ids unknown while some collide with the model's
    for what, to_model, idx in (("users", user_to_model, u), ("items", item_to_model, i)):
        if to_model is None:
            continue
        present = np.unique(idx)
        unknown = int(np.count_nonzero(to_model[present] < 0))
        share = unknown / max(present.size, 1)
        if share > _FOREIGN_SHARE and unknown < present.size:
            _warn(f"evaluate: {unknown} of the test's {present.size} {what} ({share:.0%}) are unknown "
                  f"to the model while {present.size - unknown} ids match: the test set looks like another "
                  "data set whose ids collide with the training data's")
    scale = getattr(model, "rating_scale_", None)
    if scale is not None and getattr(model, "predicts_ratings", True):
        r = test.rating[in_scope]
        outside = int(np.count_nonzero((r < scale[0]) | (r > scale[1])))
        if outside:
            _warn(f"evaluate: {outside} of {n} test ratings ({outside / n:.1%}) are outside the model's "
                  f"rating scale [{scale[0]:g}, {scale[1]:g}] (test ratings span "
                  f"[{float(r.min()):g}, {float(r.max()):g}]): is this test set from another data set?")
    # overlap with the training data (the model's seen-items CSR)
    indptr = getattr(model, "seen_indptr_", None)
    indices = getattr(model, "seen_indices_", None)
    if indptr is None or indices is None or n_known == 0:
        return
    overlap = _seen_overlap(np.asarray(indptr, dtype=np.int64), np.asarray(indices),
                            int(model.n_items_), mu[known], mi[known])
    if overlap:
        _warn(f"evaluate: {overlap} of the {n} test ratings ({overlap / n:.1%}) are (user, item) pairs of "
              "the model's training data: the metrics are optimistic (evaluate on a held-out split, "
              "e.g. fastmf.split.random_split)")


# training ratings turned into search keys at a time by _seen_overlap (8 bytes each)
_OVERLAP_CHUNK = 1 << 22


def _seen_overlap(indptr, indices, n_items, users, items):
    """How many of the pairs ``(users[j], items[j])`` are entries of the seen-items CSR
    ``(indptr, indices)``: the sorted keys ``user * n_items + item`` of both sides, matched by
    binary search over consecutive row ranges of about _OVERLAP_CHUNK training ratings, so the
    training side never needs more than a chunk of int64 keys (not 16-24 bytes per rating)."""
    keys = np.sort(users.astype(np.int64) * n_items + items)
    n_rows = indptr.shape[0] - 1
    overlap, row = 0, 0
    while row < n_rows and keys.size:
        stop = int(np.searchsorted(indptr, indptr[row] + _OVERLAP_CHUNK, side="right")) - 1
        stop = min(max(stop, row + 1), n_rows)
        lo, hi = int(indptr[row]), int(indptr[stop])
        if hi > lo:
            chunk = np.repeat(np.arange(row, stop, dtype=np.int64), np.diff(indptr[row:stop + 1]))
            chunk *= n_items
            chunk += indices[lo:hi]
            chunk.sort()
            a, b = np.searchsorted(keys, [row * n_items, stop * n_items])
            part = keys[a:b]
            pos = np.minimum(np.searchsorted(chunk, part), chunk.size - 1)
            overlap += int(np.count_nonzero(chunk[pos] == part))
        row = stop
    return overlap


def _per_user_table(test, in_scope, table):
    users = np.flatnonzero(np.bincount(test.user_index[in_scope], minlength=test.n_users))
    n_test = np.bincount(test.user_index[in_scope], minlength=test.n_users)
    out = {"user": test.user_map.ids[users], "n_test": n_test[users].astype(np.int64)}
    for name, col in table.items():
        out[name] = col[users]
    try:
        import pandas as pd
    except ImportError:
        return out
    return pd.DataFrame(out)


def _check_positive_int(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"evaluate: {name} must be a positive int, got {value!r}")
    return int(value)


def _rating_metrics(model, test, in_scope, user_to_model, item_to_model, table=None):
    u = test.user_index[in_scope].astype(np.int64)
    i = test.item_index[in_scope].astype(np.int64)
    truth = test.rating[in_scope]
    mu = u if user_to_model is None else user_to_model[u]
    mi = i if item_to_model is None else item_to_model[i]
    # the test's times, for models that use them (the others ignore them)
    ts = test.timestamp[in_scope] if test.timestamp is not None and getattr(model, "_uses_time", False) else None
    pred = np.empty(u.shape[0], dtype=np.float64)
    for start in range(0, u.shape[0], _PREDICT_CHUNK):
        stop = start + _PREDICT_CHUNK
        when = {} if ts is None else {"timestamps": ts[start:stop]}
        p = np.asarray(model.predict_indices(mu[start:stop], mi[start:stop], **when))
        if p.shape != (mu[start:stop].shape[0],):
            raise ValueError(f"evaluate: model.predict_indices returned shape {p.shape} for "
                             f"{mu[start:stop].shape[0]} pairs")
        pred[start:stop] = p
    bad = first_true(~np.isfinite(pred))
    if bad >= 0:
        raise ValueError(f"evaluate: the model predicted {float(pred[bad])} for user "
                         f"{test.user_map.ids[u[bad]].item()!r}, item {test.item_map.ids[i[bad]].item()!r}")
    if table is not None:
        count = np.bincount(u, minlength=test.n_users).astype(np.float64)
        err = pred - truth
        with np.errstate(invalid="ignore", divide="ignore"):
            table["rmse"] = np.sqrt(np.bincount(u, err * err, minlength=test.n_users) / count)
            table["mae"] = np.bincount(u, np.abs(err), minlength=test.n_users) / count
    out = {"rmse": metrics.rmse(truth, pred), "mae": metrics.mae(truth, pred)}
    day_seen = getattr(model, "day_seen", None)
    if ts is not None and callable(day_seen):
        out.update(_by_day_seen(np.asarray(day_seen(mu, ts), dtype=bool), truth, pred))
    return out


def _by_day_seen(seen, truth, pred):
    """The rating metrics of the test ratings on a (user, day) the model saw in training and of
    the others: ``rmse_day_seen``, ``mae_day_seen``, ``n_day_seen`` and ``..._day_unseen`` (the
    errors only for a part with ratings)."""
    out = {}
    for name, part in (("day_seen", seen), ("day_unseen", ~seen)):
        out[f"n_{name}"] = int(np.count_nonzero(part))
        if part.any():
            out[f"rmse_{name}"] = metrics.rmse(truth[part], pred[part])
            out[f"mae_{name}"] = metrics.mae(truth[part], pred[part])
    return out


def _cold_warm_metrics(model, test, in_scope, k, threshold, exclude_seen, batch_size,
                       user_to_model, item_to_model, same_items):
    """The rating metrics of the warm, cold-item and cold-user test rows, and the ranking metrics
    among cold items (see :func:`evaluate`); {} when no test row in scope is cold."""
    u = test.user_index.astype(np.int64)
    i = test.item_index.astype(np.int64)
    mu = u if user_to_model is None else user_to_model[u]
    mi = i if item_to_model is None else item_to_model[i]
    cold_item, cold_user = mi < 0, mu < 0  # unknown to the model, or known without a rating
    for cold, to_model, counts in ((cold_item, mi, getattr(model, "item_counts_", None)),
                                   (cold_user, mu, getattr(model, "user_counts_", None))):
        if counts is not None:
            cold |= np.asarray(counts)[np.maximum(to_model, 0)] == 0
    if not (in_scope & (cold_item | cold_user)).any():
        return {}
    out = {}
    if getattr(model, "predicts_ratings", True):
        for label, rows in (("warm", ~cold_item & ~cold_user), ("cold_items", cold_item), ("cold_users", cold_user)):
            part = in_scope & rows
            out[f"n_{label}"] = int(np.count_nonzero(part))
            if part.any():
                got = _rating_metrics(model, test, part, user_to_model, item_to_model)
                out[f"rmse_{label}"], out[f"mae_{label}"] = got["rmse"], got["mae"]
    # ranking among the cold items the model has rows for
    rows = in_scope & cold_item & (mi >= 0)
    if threshold is not None:
        rows &= test.rating >= threshold
    if rows.any():
        candidates = np.zeros(int(model.n_items_), dtype=bool)
        candidates[mi[rows]] = True
        got = _ranking_metrics(model, test, rows, k, None, exclude_seen, batch_size, user_to_model,
                               same_items, candidates=candidates)
        out.update({f"{name}_cold_items": value for name, value in got.items() if name != "coverage"})
    return out


def _ranking_metrics(model, test, in_scope, k, threshold, exclude_seen, batch_size,
                     user_to_model, same_items, table=None, candidates=None):
    relevant = in_scope if threshold is None else in_scope & (test.rating >= threshold)
    # relevant items grouped by user: the test CSR (built once, cached) filtered by the mask
    csr = test.to_csr()
    keep = relevant[test.csr_order()]
    rel_indices = csr.indices[keep].astype(np.int64)
    rel_counts = np.bincount(test.user_index[relevant], minlength=test.n_users).astype(np.int64)
    rel_indptr = np.concatenate([[0], np.cumsum(rel_counts)])
    evaluated = np.flatnonzero(rel_counts)
    if evaluated.size == 0:
        rule = "" if threshold is None else f" (rating >= threshold={threshold!r})"
        raise ValueError(f"evaluate: no test user has a relevant item{rule}; ranking metrics are undefined")

    n_model_items = int(model.n_items_)
    if same_items:
        item_to_test = None
    else:
        # model item -> test item; items the test does not know get distinct indices past the
        # test catalog so they occupy their rank but never match a relevant item
        item_to_test = test.item_map.to_index(model.item_map_.ids, missing=-1)
        unknown = item_to_test < 0
        item_to_test[unknown] = test.n_items + np.flatnonzero(unknown)

    # models that use time rank each user's list at the time of that user's first test rating
    when = None
    if test.timestamp is not None and getattr(model, "_uses_time", False):
        when = np.full(test.n_users, np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(when, test.user_index[in_scope], test.timestamp[in_scope])
    covered = np.zeros(n_model_items, dtype=bool)
    sums = dict.fromkeys(metrics.RANKING_METRICS, 0.0)
    if table is not None:
        table["n_relevant"] = rel_counts
        for name in metrics.RANKING_METRICS:
            table[f"{name}@{k}"] = np.full(test.n_users, np.nan)
    for start in range(0, evaluated.size, batch_size):
        ub = evaluated[start:start + batch_size]
        counts = rel_counts[ub]
        b_indptr = np.concatenate([[0], np.cumsum(counts)])
        offsets = np.arange(b_indptr[-1]) - np.repeat(b_indptr[:-1], counts)
        b_indices = rel_indices[np.repeat(rel_indptr[ub], counts) + offsets]

        mu = ub if user_to_model is None else user_to_model[ub]
        extra = {} if candidates is None else {"candidates": candidates}
        if when is not None:
            extra["timestamps"] = when[ub]
        items, _ = model.recommend_indices(mu, k, exclude_seen=exclude_seen, **extra)
        items = np.asarray(items)
        if items.ndim != 2 or items.shape[0] != ub.size or items.dtype.kind not in "iu":
            raise ValueError(f"evaluate: model.recommend_indices returned {items.dtype} shape {items.shape} "
                             f"for {ub.size} users; expected integer (n_users, {k})")
        items = items[:, :k].astype(np.int64, copy=False)
        if items.shape[1] < k:
            items = np.pad(items, ((0, 0), (0, k - items.shape[1])), constant_values=-1)
        bad = first_true((items.reshape(-1) >= n_model_items) | (items.reshape(-1) < -1))
        if bad >= 0:
            raise ValueError(f"evaluate: model.recommend_indices returned item index "
                             f"{items.reshape(-1)[bad]} outside [-1, {n_model_items})")
        covered[items[items >= 0]] = True
        if item_to_test is not None:
            items = np.where(items >= 0, item_to_test[np.maximum(items, 0)], -1)

        per_user = metrics.ranking_metrics(items, (b_indptr, b_indices), k=k, per_user=True)
        for name, values in per_user.items():
            sums[name] += float(values.sum())
            if table is not None:
                table[f"{name}@{k}"][ub] = values

    n = evaluated.size
    out = {f"{name}@{k}": sums[name] / n for name in metrics.RANKING_METRICS}
    out["coverage"] = float(np.count_nonzero(covered) / max(n_model_items, 1))
    out["n_users"] = int(n)
    return out
