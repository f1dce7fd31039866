"""Model selection: cross-validation, hyper-parameter search with successive halving, comparison.

::

    import fastmf
    from fastmf.tune import FloatLog, IntLog, search, cross_validate, compare

    train, test = fastmf.split.random_split(ds, test_size=0.2, random_state=0)
    found = search("mf", data=train, metric="rmse", budget=64)     # validation carved out of train
    found.best_params_, found.best_epochs_, found.to_frame()
    fastmf.evaluate(found.best_model_, test)                      # the test split: only now

    cross_validate(fastmf.Biases(), ds, cv=5).to_frame()          # per fold, then mean and std
    compare(["mf", "als", "ials", "biases", "popularity"], ds, split="random:0.2").to_frame()

Nothing here needs more than NumPy: the Sobol sampler uses scipy, the TPE sampler optuna (the
``fastmf[optuna]`` extra), DataFrames pandas, each imported only when asked for.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from fastmf._space import Choice, Distribution, Float, FloatLog, Int, IntLog, SearchSpec
from fastmf.data.ratings import Ratings
from fastmf.tune._common import Table, carve, clone, int_seed, machine, resolve_model, split_cores
from fastmf.tune._search import SAMPLERS, SearchResult, halving_rungs, propose, search

__all__ = ["search", "cross_validate", "compare", "default_space", "SearchResult", "Table",
           "Float", "FloatLog", "Int", "IntLog", "Choice", "Distribution", "SearchSpec", "SAMPLERS",
           "propose", "halving_rungs"]

_NOT_METRICS = ("n_users",)


def default_space(model: Any) -> SearchSpec:
    """The default search of ``model`` (an instance or a registry name), from its registry entry:
    ``.space`` (parameter -> distribution), ``.budget`` (the parameter halving grows),
    ``.max_budget`` and ``.doc``."""
    from fastmf.models import registry

    base, entry = resolve_model(model, "default_space")
    return registry.search_spec(entry, base.get_params())


def _scores(model: Any, test: Ratings, k: int, metrics: Optional[Sequence[str]], owner: str) -> Dict[str, float]:
    import warnings

    from fastmf.evaluation import evaluate

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cold test ids are the split's choice
        scores = evaluate(model, test, k=k)
    if metrics is None:
        return {m: float(v) for m, v in scores.items() if m not in _NOT_METRICS}
    out = {}
    for m in metrics:
        if m not in scores:
            raise ValueError(f"{owner}: metric {m!r} is not reported by fastmf.evaluate for "
                             f"{type(model).__name__} at k={k} (reported: {', '.join(scores)})")
        out[m] = float(scores[m])
    return out


def _fold_pairs(data: Ratings, cv: Any, seed: int, owner: str) -> List[Tuple[Ratings, Ratings]]:
    from fastmf.data import split

    if isinstance(cv, int) and not isinstance(cv, bool):
        if cv < 2:
            raise ValueError(f"{owner}: cv must be an int >= 2, a split function or (train, test) pairs, got {cv}")
        return list(split.kfold(data, n_splits=cv, random_state=seed))
    pairs = cv(data) if callable(cv) else cv
    try:
        pairs = list(pairs)
    except TypeError:
        raise ValueError(f"{owner}: cv must be an int >= 2, a split function or (train, test) pairs, "
                         f"got {type(cv).__name__}") from None
    for i, pair in enumerate(pairs):
        if not (isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(p, Ratings) for p in pair)):
            raise ValueError(f"{owner}: fold {i} of cv is not a (train, test) pair of Ratings")
    if not pairs:
        raise ValueError(f"{owner}: cv gave no folds")
    return pairs


def _mean_std(records: List[Dict[str, Any]], keys: Sequence[str]) -> List[Dict[str, Any]]:
    mean = {"fold": "mean"}
    std = {"fold": "std"}
    for key in keys:
        values = np.array([r[key] for r in records], dtype=np.float64)
        mean[key] = float(values.mean())
        std[key] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return [mean, std]


def cross_validate(model: Any, data: Ratings, cv: Any = 5, metrics: Optional[Sequence[str]] = None, *,
                   k: int = 10, random_state: Any = 0, n_jobs: Optional[int] = None) -> Table:
    """Fit ``model`` on each fold's train part and measure it on the held-out part.

    Parameters
    ----------
    model : a fastmf model or a registry name
        Copied for every fold (the instance given is not fitted).
    data : Ratings
    cv : int, callable or iterable of (train, test)
        An int K: :func:`fastmf.split.kfold` with K folds, seeded with ``random_state``; a function
        ``cv(data)`` giving (train, test) pairs (``lambda d: [fastmf.split.temporal_split(d)]``);
        or the pairs themselves.
    metrics : sequence of str, optional
        Keys of :func:`fastmf.evaluate` (default: every one it reports for the model).
    k : int
        Cut-off of the ranking metrics.
    n_jobs : int, optional
        Folds fitted at once (threads); each model gets the cores divided among them unless its
        ``n_threads`` is set. The results do not depend on it.

    Returns
    -------
    Table
        One record per fold (``fold``, ``n_train``, ``n_test``, the metrics, ``fit_seconds``),
        then a ``"mean"`` and a ``"std"`` record (sample standard deviation over the folds).
    """
    owner = "cross_validate"
    base, entry = resolve_model(model, owner)
    seed = int_seed(random_state, owner)
    pairs = _fold_pairs(data, cv, seed, owner)
    params = base.get_params()
    jobs, threads = split_cores(n_jobs, params.get("n_threads") if "n_threads" in params else 1, len(pairs), owner)
    extra = {"n_threads": threads} if "n_threads" in params else {}
    if params.get("random_state", 0) is None:
        extra["random_state"] = seed

    def one(i):
        train, test = pairs[i]
        m = clone(base, **extra)
        t0 = time.perf_counter()
        m.fit(train)
        seconds = time.perf_counter() - t0
        return {"fold": i, "n_train": len(train), "n_test": len(test), **_scores(m, test, k, metrics, owner),
                "fit_seconds": seconds}

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        records = list(pool.map(one, range(len(pairs))))
    keys = [key for key in records[0] if key not in ("fold", "n_train", "n_test")]
    table = Table(records + _mean_std(records, keys), title=f"cross_validate {entry.key}")
    table.machine = machine()
    return table


def _split_pair(data: Ratings, split: Any, seed: int, owner: str) -> Tuple[Ratings, Ratings, str, str]:
    """``(train, test, description, validation protocol)``: the validation a tuned model uses is
    temporal when the test split is."""
    from fastmf.data import split as splits

    if isinstance(split, tuple) and len(split) == 2 and all(isinstance(p, Ratings) for p in split):
        return split[0], split[1], "given", "random"
    if callable(split):
        train, test = split(data)
        return train, test, getattr(split, "__name__", "a function"), "random"
    kinds = "'random:F', 'temporal:F' (F in (0, 1)), a (train, test) pair or a function"
    if not isinstance(split, str) or ":" not in split:
        raise ValueError(f"{owner}: split must be {kinds}, got {split!r}")
    kind, _, arg = split.partition(":")
    try:
        f = float(arg)
    except ValueError:
        f = -1.0
    if not 0 < f < 1 or kind not in ("random", "temporal"):
        raise ValueError(f"{owner}: split must be {kinds}, got {split!r}")
    if kind == "random":
        train, test = splits.random_split(data, test_size=f, random_state=seed)
        return train, test, f"random {f:g}, seed {seed}", "random"
    train, test = splits.temporal_split(data, test_size=f)
    return train, test, f"temporal, latest {f:g}", "temporal"


def compare(models: Optional[Sequence[Any]] = None, data: Optional[Ratings] = None, split: Any = "random:0.2", *,
            k: int = 10, metrics: Optional[Sequence[str]] = None, random_state: Any = 0,
            n_threads: Optional[int] = None, tune: Optional[int] = None, tune_metric: Optional[str] = None,
            validation: Union[float, str] = 0.1, callback: Optional[Callable[[Dict[str, Any]], Any]] = None) -> Table:
    """Fit several models on one split and measure them on its test part: the comparison table.

    Parameters
    ----------
    models : sequence of models or registry names, or a dict name -> model, optional
        Default: every registered model and preset (``mf``, ``als``, ``ials``, ``biases``...).
        Rows are named by the registry name given, the dict's key, or the model's registry key.
    data : Ratings
    split : str, (train, test) or callable
        ``"random:F"`` (seeded with ``random_state``), ``"temporal:F"`` (the latest F), a pair, or
        a function of the data giving a pair.
    k, metrics :
        The cut-off of the ranking metrics; the keys of :func:`fastmf.evaluate` to report
        (default: all, empty where a model does not report one: a ranking-only model has no RMSE).
    n_threads : int, optional
        Threads of every model that takes them (None: its own setting).
    tune : int, optional
        A budget: each model with a search space is first tuned by :func:`search` on the train
        part only (validation carved from it: the latest ``validation`` fraction when the split is
        temporal, a random one otherwise; or a :func:`search` validation spec such as
        ``"kfold:5"``) with ``tune_metric`` (default rmse for rating models,
        ndcg@k for the others), and its ``best_model_`` is measured. The test part is read only
        to measure the final models.
    callback : callable, optional
        Called with each row when it is done (for progress).

    Returns
    -------
    Table
        One record per model: ``model``, the metrics, ``fit_seconds``, ``threads``, ``tuned``
        (the parameters found, with ``tune``), and ``cpu``; ``table.machine`` holds the machine.
    """
    from fastmf.models import registry
    from fastmf._validation import resolve_n_threads

    owner = "compare"
    if data is None:
        raise ValueError("compare: give the data (a fastmf.Ratings)")
    if models is None:
        models = list(registry.presets())
    seed = int_seed(random_state, owner)
    train, test, described, protocol = _split_pair(data, split, seed, owner)
    info = machine()
    rows = []
    named = list(models.items()) if isinstance(models, Mapping) else [(None, m) for m in models]
    resolved = [(key, m, *resolve_model(m, owner)) for key, m in named]
    for key, given, base, entry in resolved:
        name = key if key is not None else given if isinstance(given, str) else entry.key
        params = base.get_params()
        if n_threads is not None and "n_threads" in params:
            base.set_params(n_threads=n_threads)
        tuned = None
        t0 = time.perf_counter()
        if tune is not None and registry.search_spec(entry, params).space:
            metric = tune_metric or ("rmse" if base.predicts_ratings else f"ndcg@{k}")
            spec = validation if isinstance(validation, str) else f"{protocol}:{validation}"
            found = search(base, None, train, validation=spec, metric=metric, budget=tune, random_state=seed)
            model, tuned = found.best_model_, dict(found.best_params_, epochs=found.refit_epochs_)
        else:
            model = clone(base)
            model.fit(train)
        seconds = time.perf_counter() - t0
        threads = model.get_params().get("n_threads", 1)
        row = {"model": name, **_compare_scores(model, test, k, metrics, owner), "fit_seconds": seconds,
               "threads": resolve_n_threads(threads) if "n_threads" in params else 1}
        if tune is not None:
            row["tuned"] = tuned
        row["cpu"] = info["cpu"]
        rows.append(row)
        if callback is not None:
            callback(row)
    table = Table(rows, title=f"compare: {described}")
    table.machine = info
    table.split = described
    return table


def _compare_scores(model, test, k, metrics, owner):
    scores = _scores(model, test, k, None, owner)
    if metrics is None:
        keys = ("rmse", "mae", f"precision@{k}", f"recall@{k}", f"ndcg@{k}", f"map@{k}", f"hit_rate@{k}", "coverage")
        return {key: scores.get(key) for key in keys}
    out = {}
    for m in metrics:
        out[m] = scores.get(m)
    return out
