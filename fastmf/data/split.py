"""Train/test splits of a :class:`~fastmf.Ratings`: random, k-fold, temporal, leave-last-out,
per-user holdout, and item-cold / user-cold splits.

Every function returns ``(train, test)`` built with :meth:`Ratings.subset`, so both sides share the
input's id maps (the very same :class:`~fastmf.IdMap` objects), rating scale and metadata, and each
side keeps the input's relative order of entries. A model trained on ``train`` therefore answers in
the raw ids of ``test``.

Cold-start handling is the same everywhere: after a split has chosen its test ratings, a test rating
is *cold* when its user or its item has no rating in train. ``cold`` says what happens to those:

* ``"keep"`` (default): they stay in test (``train`` and ``test`` partition the input);
* ``"drop"``: they are removed from test and appear in neither side;
* ``"move"``: they are moved to train, so every remaining test rating has a user and an item seen in
  train, and ``train`` and ``test`` still partition the input.

Moving a rating to train never makes another test rating cold, so one pass is exact: with
``"drop"`` or ``"move"`` no test rating of the result is cold.

All work is vectorised NumPy (a permutation or one sort by ``(user, key)`` plus group offsets from
``np.bincount``/``np.cumsum``); there is no Python loop per user or per rating.
"""

from __future__ import annotations

import datetime
import numbers
from typing import Iterator, Literal, Optional, Tuple, Union

import numpy as np

from fastmf._validation import Interval, Options, RandomState, SeedLike, check_random_state
from fastmf.data.ratings import Ratings, _check_data_params
from fastmf.errors import DataError

__all__ = ["random_split", "kfold", "temporal_split", "leave_last_out", "user_holdout", "item_cold_split",
           "user_cold_split"]

_INT64_MAX = np.iinfo(np.int64).max
_COLD = Options("keep", "drop", "move")
_FRACTION_OR_COUNT = (Interval("real", 0, 1, closed="neither"), Interval("int", 1, None))

#: what happens to test ratings of users or items absent from train (see the module docstring)
Cold = Literal["keep", "drop", "move"]
#: a cut-off time: seconds since the epoch, a numpy.datetime64 or a datetime.datetime
Cutoff = Union[int, float, np.datetime64, datetime.datetime]


# ---------------------------------------------------------------------- shared helpers
def _check_ds(owner, ds):
    if not isinstance(ds, Ratings):
        raise DataError(f"{owner}: ds must be a fastmf.Ratings, got {type(ds).__name__}")
    if len(ds) < 2:
        raise DataError(f"{owner}: ds must hold at least 2 ratings to split, got {len(ds)}")


def _global_n_test(owner, test_size, n, what="ratings"):
    """Number of test ratings for a global fraction (rounded half up) or count; both sides non-empty."""
    if isinstance(test_size, numbers.Integral):
        if test_size >= n:
            raise DataError(f"{owner}: test_size={test_size} must be smaller than the number of "
                             f"{what} ({n}) so that train is not empty")
        return int(test_size)
    n_test = int(np.floor(test_size * n + 0.5))
    if n_test == 0 or n_test == n:
        side = "test" if n_test == 0 else "train"
        raise DataError(f"{owner}: test_size={test_size!r} of {n} {what} rounds to {n_test} test "
                         f"{what}, leaving {side} empty; choose a test_size in (0, 1) further from "
                         f"{0 if n_test == 0 else 1} or give a count")
    return n_test


def _timestamps(owner, ds, hint=""):
    if ds.timestamp is None:
        raise DataError(f"{owner}: needs timestamps, but this Ratings has none (build it with "
                         f"timestamps=...){hint}")
    return ds.timestamp


def _apply_cold(ds, test, cold):
    """Boolean masks ``(train, test)`` after the cold policy; see the module docstring."""
    train = ~test
    if cold == "keep":
        return train, test
    u, i = ds.user_index, ds.item_index
    user_seen = np.bincount(u[train], minlength=ds.n_users) > 0
    item_seen = np.bincount(i[train], minlength=ds.n_items) > 0
    is_cold = test & ~(user_seen[u] & item_seen[i])
    test = test & ~is_cold
    if cold == "move":
        train = train | is_cold
    return train, test


def _finish(owner, ds, test, cold, context="", train_why=""):
    """Apply ``cold``, refuse an empty side (``context`` explains either, ``train_why`` an empty
    train only), and build the two subsets."""
    train, test = _apply_cold(ds, test, cold)
    n_train = int(np.count_nonzero(train))
    n_test = int(np.count_nonzero(test))
    if n_train == 0:
        raise DataError(f"{owner}: the split leaves train empty{train_why}{context}")
    if n_test == 0:
        why = (f" after cold={cold!r} removed every test rating whose user or item is absent from train"
               if cold != "keep" else "")
        raise DataError(f"{owner}: the split leaves test empty{why}{context}")
    # one mask and one copy at a time: the peak is the data, both copies and one mask
    train_set = ds.subset(train)
    del train
    return train_set, ds.subset(test)


def _order_by_user_then(user, key):
    """Permutation sorting by (user, key), ties in ``key`` broken by original position (stable)."""
    key = np.asarray(key, dtype=np.int64)
    n = user.shape[0]
    if n == 0:
        return np.empty(0, dtype=np.int64)
    kmin, kmax = int(key.min()), int(key.max())
    span = kmax - kmin + 1
    n_users = int(user.max()) + 1
    if n_users * span <= _INT64_MAX:
        # one int64 sort key: user * span + (key - kmin); the stable sort keeps input order on ties
        combined = user.astype(np.int64) * span + (key - kmin)
        return np.argsort(combined, kind="stable")
    return np.lexsort((key, user))  # lexsort is stable as well


def _cutoff_seconds(owner, cutoff):
    if isinstance(cutoff, (bool, np.bool_)):
        raise DataError(f"{owner}: cutoff must be a timestamp (int or float seconds, numpy.datetime64 "
                         f"or datetime.datetime) or None, got {cutoff!r}")
    if isinstance(cutoff, datetime.datetime):
        if cutoff.tzinfo is not None:
            return cutoff.timestamp()
        cutoff = np.datetime64(cutoff)
    if isinstance(cutoff, np.datetime64):
        if np.isnat(cutoff):
            raise DataError(f"{owner}: cutoff must not be NaT")
        # seconds since the epoch as a float, so sub-second cutoffs compare exactly
        return float(cutoff.astype("datetime64[us]").astype(np.int64)) / 1e6
    if isinstance(cutoff, numbers.Real) and np.isfinite(cutoff):
        return cutoff
    raise DataError(f"{owner}: cutoff must be a timestamp (int or float seconds, numpy.datetime64 "
                     f"or datetime.datetime) or None, got {cutoff!r}")


# ---------------------------------------------------------------------- splitters
def random_split(ds: Ratings, test_size: Union[float, int] = 0.2, random_state: SeedLike = None,
                 cold: Cold = "keep") -> Tuple[Ratings, Ratings]:
    """Split ratings uniformly at random into train and test.

    Parameters
    ----------
    ds : Ratings
        The ratings to split (at least 2).
    test_size : float in (0, 1) or int >= 1
        A float is the fraction of ratings that go to test; the test count is
        :math:`\\lfloor s\\,n + 1/2 \\rfloor` (rounded half up) for fraction :math:`s` and
        :math:`n` ratings, and must be neither 0 nor :math:`n`. An int is the exact number of test
        ratings, in ``[1, n - 1]``. (So ``test_size=1`` means one rating; ``1.0`` is an error.)
    random_state : None, int or numpy.random.Generator
        Source of randomness; the same int gives the same split.
    cold : {"keep", "drop", "move"}
        What to do with test ratings whose user or item has no train rating (see the module
        docstring): keep them in test, drop them, or move them to train.

    Returns
    -------
    train, test : Ratings
        Share ``ds``'s id maps, scale and metadata; each keeps ``ds``'s relative order. With
        ``cold="keep"``, exactly the chosen test count is in test and the rest in train.

    Raises
    ------
    ValueError
        For a bad parameter (naming it and its allowed range) or when a side would be empty.
    """
    owner = "random_split"
    _check_ds(owner, ds)
    _check_data_params(owner, {"test_size": test_size, "random_state": random_state, "cold": cold},
                 {"test_size": _FRACTION_OR_COUNT, "random_state": RandomState(), "cold": _COLD})
    n = len(ds)
    n_test = _global_n_test(owner, test_size, n)
    rng = check_random_state(random_state)
    test = np.zeros(n, dtype=bool)
    test[rng.permutation(n)[:n_test]] = True
    return _finish(owner, ds, test, cold)


def kfold(ds: Ratings, n_splits: int = 5, random_state: SeedLike = None, shuffle: bool = True,
          cold: Cold = "keep") -> Iterator[Tuple[Ratings, Ratings]]:
    """K-fold cross-validation over ratings: yields ``n_splits`` pairs ``(train, test)``.

    The ratings are put in a random order (``shuffle=True``) or kept in input order, then cut into
    ``n_splits`` consecutive folds; the first ``n % n_splits`` folds hold
    :math:`\\lfloor n / K \\rfloor + 1` ratings and the others :math:`\\lfloor n / K \\rfloor`, so fold
    sizes differ by at most one. Fold ``f``'s test set is fold ``f`` and its train set is every other
    fold. With ``cold="keep"`` the test sets are disjoint and cover every rating exactly once.

    Parameters
    ----------
    ds : Ratings
        The ratings to split.
    n_splits : int in [2, len(ds)]
        Number of folds K.
    random_state : None, int or numpy.random.Generator
        Shuffling seed; the same int gives the same folds. Ignored when ``shuffle=False``.
    shuffle : bool
        Assign ratings to folds at random (True) or in contiguous blocks of input order (False).
    cold : {"keep", "drop", "move"}
        Applied to each fold separately (see the module docstring). With ``"drop"`` or ``"move"``
        the folds' test sets no longer cover every rating: cold ratings of a fold are dropped or
        moved to that fold's train set.

    Yields
    ------
    train, test : Ratings
        Sharing ``ds``'s id maps, scale and metadata.

    Raises
    ------
    ValueError
        At the call (not at the first iteration) for a bad parameter; during iteration when the
        cold policy empties a fold's test set.
    """
    owner = "kfold"
    _check_ds(owner, ds)
    _check_data_params(owner, {"n_splits": n_splits, "random_state": random_state, "shuffle": shuffle,
                         "cold": cold},
                 {"n_splits": Interval("int", 2, None), "random_state": RandomState(),
                  "shuffle": Options(True, False), "cold": _COLD})
    n = len(ds)
    if n_splits > n:
        raise DataError(f"{owner}: n_splits={n_splits} exceeds the number of ratings ({n}); "
                         f"n_splits must be in [2, {n}]")
    n_splits = int(n_splits)
    order = check_random_state(random_state).permutation(n) if shuffle else np.arange(n)
    sizes = np.full(n_splits, n // n_splits, dtype=np.int64)
    sizes[: n % n_splits] += 1
    fold = np.empty(n, dtype=np.int64)
    fold[order] = np.repeat(np.arange(n_splits), sizes)
    return _kfold_iter(owner, ds, fold, n_splits, cold)


def _kfold_iter(owner, ds, fold, n_splits, cold):
    for f in range(n_splits):
        yield _finish(owner, ds, fold == f, cold, context=f" (fold {f} of {n_splits})")


def temporal_split(ds: Ratings, test_size: Union[float, int] = 0.2, cutoff: Optional[Cutoff] = None,
                   cold: Cold = "keep") -> Tuple[Ratings, Ratings]:
    """Split at one global point in time: the latest ratings go to test.

    Test holds every rating with timestamp :math:`t \\ge t^*` and train every rating with
    :math:`t < t^*`, so every train timestamp is strictly earlier than every test timestamp.
    :math:`t^*` is ``cutoff`` when given; otherwise it is the timestamp of the
    :math:`m`-th latest rating, :math:`m` being the test count that ``test_size`` asks for (as in
    :func:`random_split`: fraction rounded half up, or an int count).

    Ties: ratings sharing a timestamp always land on the same side. When several ratings share
    :math:`t^*` they all go to test, so test can hold more than :math:`m` ratings (never fewer).

    Parameters
    ----------
    ds : Ratings
        Ratings with timestamps.
    test_size : float in (0, 1) or int >= 1
        Target fraction or count of test ratings; ignored when ``cutoff`` is given.
    cutoff : None, int, float, numpy.datetime64 or datetime.datetime
        Split time in the unit of ``ds.timestamp`` (seconds since the epoch for MovieLens);
        datetimes are converted to seconds since the epoch (a naive ``datetime`` is read as UTC).
    cold : {"keep", "drop", "move"}
        What to do with test ratings whose user or item has no train rating (module docstring).
        With ``"move"`` the moved ratings break the time order of train vs test.

    Returns
    -------
    train, test : Ratings
        Sharing ``ds``'s id maps, scale and metadata.

    Raises
    ------
    ValueError
        When ``ds`` has no timestamps, for a bad parameter, or when a side would be empty (e.g. a
        cutoff after the latest rating, or all ratings sharing one timestamp).
    """
    owner = "temporal_split"
    _check_ds(owner, ds)
    _check_data_params(owner, {"cold": cold}, {"cold": _COLD})
    ts = _timestamps(owner, ds)
    n = len(ds)
    if cutoff is None:
        _check_data_params(owner, {"test_size": test_size}, {"test_size": _FRACTION_OR_COUNT})
        n_test = _global_n_test(owner, test_size, n)
        t_star = np.partition(ts, n - n_test)[n - n_test]
        context = ""
        train_why = (f" (all ratings share timestamps >= {int(t_star)}, the time of the "
                     f"{n_test}-th latest rating; ties go to test)")
    else:
        t_star = _cutoff_seconds(owner, cutoff)
        train_why = ""
        context = f" (cutoff={cutoff!r}; timestamps range over {int(ts.min())} .. {int(ts.max())})"
    return _finish(owner, ds, ts >= t_star, cold, context=context, train_why=train_why)


def leave_last_out(ds: Ratings, k: int = 1, min_train: int = 1, by: Literal["timestamp", "position"] = "timestamp",
                   cold: Cold = "keep") -> Tuple[Ratings, Ratings]:
    """Per user, the ``k`` latest ratings go to test and the rest to train.

    Each user's ratings are ordered by timestamp (``by="timestamp"``) with ties broken by position
    in ``ds`` (a later entry counts as later), or by position alone (``by="position"``, for data
    without timestamps whose rows are in time order). A user with :math:`n_u \\ge k + m` ratings
    (:math:`m` = ``min_train``) gives their last ``k`` to test; a user with fewer keeps all their
    ratings in train. With the defaults, users with one rating stay in train.

    Parameters
    ----------
    ds : Ratings
        The ratings to split.
    k : int >= 1
        Test ratings per user.
    min_train : int >= 0
        Train ratings a user must keep to contribute to test. ``min_train=0`` lets a user with
        exactly ``k`` ratings put all of them in test (a cold user, subject to ``cold``).
    by : {"timestamp", "position"}
        What "latest" means. ``"timestamp"`` needs timestamps (ValueError otherwise).
    cold : {"keep", "drop", "move"}
        What to do with test ratings whose user or item has no train rating (module docstring).

    Returns
    -------
    train, test : Ratings
        Sharing ``ds``'s id maps, scale and metadata.

    Raises
    ------
    ValueError
        For a bad parameter, missing timestamps with ``by="timestamp"``, or an empty side (for
        example when no user has ``k + min_train`` ratings).
    """
    owner = "leave_last_out"
    _check_ds(owner, ds)
    _check_data_params(owner, {"k": k, "min_train": min_train, "by": by, "cold": cold},
                 {"k": Interval("int", 1, None), "min_train": Interval("int", 0, None),
                  "by": Options("timestamp", "position"), "cold": _COLD})
    n = len(ds)
    u = ds.user_index
    if by == "timestamp":
        ts = _timestamps(owner, ds, hint=" or pass by='position' to use the input order")
        order = _order_by_user_then(u, ts)
    else:
        order = np.argsort(u, kind="stable")
    counts = np.bincount(u, minlength=ds.n_users)
    ends = np.cumsum(counts)
    us = u[order]
    from_end = ends[us] - 1 - np.arange(n)  # 0 for each user's latest rating
    chosen = (from_end < k) & (counts[us] >= int(k) + int(min_train))
    test = np.zeros(n, dtype=bool)
    test[order[chosen]] = True
    return _finish(owner, ds, test, cold,
                   context=f" (k={k}, min_train={min_train}: users need at least {int(k) + int(min_train)} "
                           f"ratings to contribute to test; the most any user has is {int(counts.max())})")


def user_holdout(ds: Ratings, test_size: Union[float, int] = 0.2, random_state: SeedLike = None,
                 min_train: int = 1, cold: Cold = "keep") -> Tuple[Ratings, Ratings]:
    """Per user, a random subset of that user's ratings goes to test.

    A user with :math:`n_u` ratings gives

    .. math:: t_u = \\min\\bigl(\\lfloor s\\,n_u + 1/2 \\rfloor,\\ \\max(n_u - m, 0)\\bigr)

    ratings to test for a fraction :math:`s` (rounded half up), or
    :math:`t_u = \\min(c, \\max(n_u - m, 0))` for an int count :math:`c`, where :math:`m` is
    ``min_train``; the :math:`t_u` test ratings are drawn uniformly without replacement among the
    user's ratings. Every user thus keeps at least ``min(n_u, min_train)`` ratings in train.

    Parameters
    ----------
    ds : Ratings
        The ratings to split.
    test_size : float in (0, 1) or int >= 1
        Fraction of each user's ratings, or number of ratings per user, for test.
    random_state : None, int or numpy.random.Generator
        Source of randomness; the same int gives the same split.
    min_train : int >= 0
        Ratings each user keeps in train at least (when they have that many).
    cold : {"keep", "drop", "move"}
        What to do with test ratings whose user or item has no train rating (module docstring).
        With ``min_train >= 1`` no test user is cold, only items can be.

    Returns
    -------
    train, test : Ratings
        Sharing ``ds``'s id maps, scale and metadata.

    Raises
    ------
    ValueError
        For a bad parameter or an empty side (e.g. a fraction too small for every user's count).
    """
    owner = "user_holdout"
    _check_ds(owner, ds)
    _check_data_params(owner, {"test_size": test_size, "random_state": random_state, "min_train": min_train,
                         "cold": cold},
                 {"test_size": _FRACTION_OR_COUNT, "random_state": RandomState(),
                  "min_train": Interval("int", 0, None), "cold": _COLD})
    n = len(ds)
    u = ds.user_index
    rng = check_random_state(random_state)
    # random order within each user: sort by the unique key user * n + (a random permutation)
    rank = rng.permutation(n)
    if (int(u.max()) + 1) * n <= _INT64_MAX:
        order = np.argsort(u.astype(np.int64) * n + rank)  # keys are distinct: any sort gives one order
    else:
        order = np.lexsort((rank, u))
    counts = np.bincount(u, minlength=ds.n_users)
    starts = np.cumsum(counts) - counts
    if isinstance(test_size, numbers.Integral):
        wanted = np.full(counts.shape, int(test_size), dtype=np.int64)
    else:
        wanted = np.floor(test_size * counts + 0.5).astype(np.int64)
    n_test_u = np.minimum(wanted, np.maximum(counts - int(min_train), 0))
    us = u[order]
    chosen = (np.arange(n) - starts[us]) < n_test_u[us]
    test = np.zeros(n, dtype=bool)
    test[order[chosen]] = True
    return _finish(owner, ds, test, cold, context=f" (test_size={test_size!r}, min_train={min_train})")


def item_cold_split(ds: Ratings, test_size: Union[float, int] = 0.2, random_state: SeedLike = None
                    ) -> Tuple[Ratings, Ratings]:
    """Hold out a random set of items with **all** their ratings: every test item is cold (it has
    no rating in train), the setting of item cold start (Gantner et al., ICDM 2010).

    Among the :math:`n` items that have ratings, :math:`t = \\lfloor s\\,n + 1/2 \\rfloor` for a
    fraction :math:`s` (rounded half up), or the count ``test_size``, are drawn uniformly without
    replacement; their ratings form test, all other ratings train. Both sides share ``ds``'s id maps
    and metadata (so a model fitted on train has rows for the held-out items, with no ratings: its
    ``item_counts_`` are 0 there), and ``train`` and ``test`` partition ``ds``.

    Parameters
    ----------
    ds : Ratings
    test_size : float in (0, 1) or int >= 1
        Fraction or number of the rated items to hold out.
    random_state : None, int or numpy.random.Generator
        The same int gives the same split.

    Returns
    -------
    train, test : Ratings

    Raises
    ------
    ValueError
        For a bad parameter, or a size that leaves either side without items.
    """
    return _cold_split("item_cold_split", ds, test_size, random_state, "item")


def user_cold_split(ds: Ratings, test_size: Union[float, int] = 0.2, random_state: SeedLike = None
                    ) -> Tuple[Ratings, Ratings]:
    """:func:`item_cold_split` for users: a random set of the users that have ratings is held out
    with all their ratings (user cold start); every test user has no rating in train."""
    return _cold_split("user_cold_split", ds, test_size, random_state, "user")


def _cold_split(owner, ds, test_size, random_state, kind):
    _check_ds(owner, ds)
    _check_data_params(owner, {"test_size": test_size, "random_state": random_state},
                       {"test_size": _FRACTION_OR_COUNT, "random_state": RandomState()})
    index = ds.item_index if kind == "item" else ds.user_index
    rated = np.flatnonzero(np.bincount(index, minlength=ds.n_items if kind == "item" else ds.n_users))
    if rated.size < 2:
        raise DataError(f"{owner}: needs at least 2 {kind}s with ratings, got {rated.size}")
    n_out = _global_n_test(owner, test_size, rated.size, f"rated {kind}s")
    rng = check_random_state(random_state)
    held = np.zeros(int(index.max()) + 1, dtype=bool)
    held[rng.choice(rated, size=n_out, replace=False)] = True
    test = held[index]
    return ds.subset(~test), ds.subset(test)
