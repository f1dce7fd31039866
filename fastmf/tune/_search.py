"""Hyper-parameter search with successive halving on epochs: :func:`search`."""

from __future__ import annotations

import itertools
import math
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from fastmf._space import Choice, Distribution, check_space
from fastmf.data.ratings import Ratings
from fastmf.errors import DivergenceError
from fastmf.tune._common import Table, carve, clone, int_seed, machine, resolve_model, split_cores

__all__ = ["search", "SearchResult", "SAMPLERS", "propose", "halving_rungs"]

SAMPLERS = ("grid", "random", "sobol", "tpe")
_RATING_METRICS = ("rmse", "mae")


# ====================================================================== samplers
def propose(dists: Mapping[str, Distribution], budget: int, sampler: str, seed: int) -> List[Dict[str, Any]]:
    """The configurations of a grid, random or Sobol search over ``dists`` (name -> distribution).

    ``"grid"``: every combination of the options of each :class:`Choice` and ``L`` evenly spread
    values of each other distribution (on the log scale for the log ones), with ``L`` the largest
    level count whose grid has at most ``budget`` points (ValueError when the choices alone make
    more). ``"random"``: ``budget`` independent draws from a NumPy Generator seeded with ``seed``.
    ``"sobol"``: the first ``budget`` points of a scrambled Sobol sequence (scipy, seeded), which
    cover the space more evenly than random draws.
    """
    names = list(dists)
    if not names:
        return [{}]
    if sampler == "grid":
        n_choice = math.prod(d.size for d in dists.values() if isinstance(d, Choice))
        numeric = [d for d in dists.values() if not isinstance(d, Choice)]
        if n_choice > budget:
            raise ValueError(f"search: the grid's choices alone make {n_choice} combinations, more than "
                             f"budget={budget}")
        levels = 1
        if numeric:
            while True:
                trial = levels + 1
                size = n_choice * math.prod(min(trial, d.size) if d.size else trial for d in numeric)
                if size > budget or all(d.size is not None and d.size < trial for d in numeric):
                    break
                levels = trial
        axes = [d.grid(levels) for d in dists.values()]
        return [dict(zip(names, values)) for values in itertools.product(*axes)]
    if sampler == "random":
        unit = np.random.default_rng(seed).random((budget, len(names)))
    elif sampler == "sobol":
        try:
            from scipy.stats import qmc
        except ImportError:
            raise ImportError("sampler='sobol' needs scipy: pip install 'fastmf[scipy]' (or use sampler='random')") \
                from None
        with warnings.catch_warnings():  # a budget that is not a power of two is fine here
            warnings.simplefilter("ignore")
            unit = qmc.Sobol(d=len(names), scramble=True, seed=seed).random(budget)
    else:  # pragma: no cover - checked by search
        raise ValueError(f"unknown sampler {sampler!r}")
    return [{n: dists[n].from_unit(float(u)) for n, u in zip(names, row)} for row in unit]


def halving_rungs(n_configs: int, min_epochs: int, max_epochs: int, eta: int) -> List[Tuple[int, int]]:
    """``[(epochs, trials run), ...]`` of successive halving: rung 0 trains all ``n_configs``
    configurations for ``min_epochs``; each next rung keeps the best ``1/eta`` of the trials (at
    least one) for about ``eta`` times the epochs, the epochs spread geometrically from
    ``min_epochs`` to ``max_epochs`` (the last rung) in ``round(log_eta(max / min))`` steps."""
    if min_epochs >= max_epochs:
        return [(max_epochs, n_configs)]
    steps = max(1, int(round(math.log(max_epochs / min_epochs) / math.log(eta))))
    rungs: List[Tuple[int, int]] = []
    for i in range(steps + 1):
        epochs = int(round(min_epochs * (max_epochs / min_epochs) ** (i / steps)))
        epochs = max(epochs, rungs[-1][0] + 1 if rungs else 1)
        rungs.append((min(epochs, max_epochs) if i < steps else max_epochs, max(1, n_configs // eta ** i)))
    return rungs


def _default_min_epochs(n_configs: int, max_epochs: int, eta: int) -> int:
    """Rung 0's epochs: ``max_epochs / eta^s`` with ``s`` the halvings that leave one trial of
    ``n_configs`` (at least 1 epoch)."""
    s = 0
    while eta ** (s + 1) <= n_configs:
        s += 1
    return max(1, int(round(max_epochs / eta ** s)))


# ====================================================================== trials
class _Trial:
    """One configuration: its models (one per fold), the epochs they have run and the
    validation metric measured at the epochs ``evaluated``."""

    def __init__(self, index: int, params: Dict[str, Any], models: List[Any]) -> None:
        self.index, self.params, self.models = index, params, models
        self.epochs = 0
        self.evaluated: List[Tuple[int, float]] = []
        self.seconds = 0.0
        self.error: Optional[str] = None
        self.evaluators: List[Any] = []
        self.scale = 1.0  # epochs of this trial per rung epoch (SearchSpec.epochs_scale)

    def targets(self, checkpoints: Sequence[int]) -> List[int]:
        return sorted({max(1, int(round(c * self.scale))) for c in checkpoints})

    def last(self, direction: int) -> float:
        if self.error is not None or not self.evaluated:
            return -math.inf
        return direction * self.evaluated[-1][1]

    def best(self, direction: int) -> Tuple[float, int]:
        if self.error is not None or not self.evaluated:
            return -math.inf, 0
        value, epoch = max((direction * v, -e) for e, v in self.evaluated)
        return value, -epoch


class _Runner:
    """Fits and measures trials: ``advance(trial, checkpoints)`` trains each of the trial's models
    to every epoch count of ``checkpoints`` (partial fits) and records the fold-mean metric there."""

    def __init__(self, folds, metric, budget_param, iterative):
        self.folds, self.metric = folds, metric
        self.budget_param, self.iterative = budget_param, iterative

    def _measure(self, trial):
        from fastmf.training.loop import EvalSet

        if not trial.evaluators:
            trial.evaluators = [EvalSet(m, valid, [self.metric]) for m, (_, valid) in zip(trial.models, self.folds)]
        return float(np.mean([ev()[f"eval_{self.metric}"] for ev in trial.evaluators]))

    def advance(self, trial: _Trial, checkpoints: Sequence[int]) -> _Trial:
        if trial.error is not None:
            return trial
        t0 = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # evaluation warnings about cold ids: the protocol's choice
                for target in checkpoints:
                    if target <= trial.epochs:
                        continue
                    for model, (fit_part, _) in zip(trial.models, self.folds):
                        if self.iterative:
                            model.partial_fit(fit_part, target - trial.epochs)
                        else:
                            model.fit(fit_part)
                    trial.epochs = target
                    value = self._measure(trial)
                    if not math.isfinite(value):
                        raise FloatingPointError(f"validation {self.metric} is {value}")
                    trial.evaluated.append((target, value))
        except (DivergenceError, FloatingPointError) as exc:
            trial.error = f"diverged: {exc}"
        trial.seconds += time.perf_counter() - t0
        return trial


# ====================================================================== the result
class SearchResult:
    """What :func:`search` found.

    Attributes
    ----------
    best_params_ : dict
        The searched parameters of the best trial.
    best_epochs_ : int or None
        Its best epoch count on the validation data (None for a model without epochs).
    best_score_ : float
        Its validation metric at ``best_epochs_`` (mean over folds for ``"kfold:K"``).
    best_model_ : model or None
        The best configuration refitted on all of ``data`` (fit part and validation together) for
        ``refit_epochs_`` epochs: ``best_epochs_`` scaled by the ratio of the refit data's size to
        the fit part's (``scale_epochs``; not for SGD MF by default), with the model's own
        parameters otherwise; None with ``refit=False``.
    refit_epochs_ : int or None
    records : list of dict
        One per trial: ``trial``, the searched parameters, ``epochs`` (reached), the metric at the
        last evaluated epoch, ``best_epoch`` and ``best_<metric>``, ``rung`` (the last rung it ran),
        ``status`` ("ok" or "diverged: ..."), ``seconds`` (its training and measuring time).
    rungs : list of dict
        One per rung of successive halving: ``rung``, ``epochs``, ``trials`` (run), ``kept``.
    metric, direction, validation, n_jobs, n_threads, seconds, machine
        The metric (direction -1: lower is better), the validation protocol, the jobs and the
        threads per trial, the wall time, the machine.
    """

    def __init__(self, **kw: Any) -> None:
        self.__dict__.update(kw)

    def to_frame(self) -> Any:
        """The trial records as a pandas DataFrame, best first."""
        return self.table().to_frame()

    def table(self) -> Table:
        """The trial records as a :class:`Table`, best first (failed trials last)."""
        key = f"best_{self.metric}"

        def rank(r):
            ok = r["status"] == "ok"
            return (not ok, -self.direction * r[key] if ok else 0.0, -(r["epochs"] or 0), r["trial"])

        return Table(sorted(self.records, key=rank), title=f"search: {self.metric}")

    def __repr__(self) -> str:
        return (f"<SearchResult {self.metric}={self.best_score_:.6g} at {self.best_epochs_} epochs, "
                f"{self.best_params_}; {len(self.records)} trials>")


# ====================================================================== search
def search(model: Any, space: Optional[Mapping[str, Any]] = None, data: Optional[Ratings] = None, *,
           validation: Union[str, Ratings] = "random:0.1", metric: Optional[str] = None, budget: int = 64,
           max_epochs: Optional[int] = None, min_epochs: Optional[int] = None, sampler: str = "random",
           n_jobs: Optional[int] = None, random_state: Any = 0, refit: bool = True, eta: int = 3,
           halving: bool = True, scale_epochs: Optional[bool] = None, progress: Any = False,
           callback: Optional[Callable[[Dict[str, Any]], Any]] = None, study: Any = None) -> SearchResult:
    """Search hyper-parameters of ``model`` on ``data`` with successive halving on epochs.

    Parameters
    ----------
    model : a fastmf model or a registry name
        The base configuration ("mf", "als", "ials", "biases" or a model instance, whose
        parameters stay fixed except those of ``space``).
    space : dict, optional
        Parameter -> :class:`Float`, :class:`FloatLog`, :class:`Int`, :class:`IntLog`,
        :class:`Choice` or a fixed value. None: the model's default space, declared in its
        registry entry (``fastmf.tune.default_space(model)`` shows it).
    data : Ratings
        The training data. The validation data is carved out of it (the test split is never
        given to the search): ``validation="random:F"`` (a random fraction F), ``"temporal:F"``
        (the latest F: use it when the test split is temporal), ``"kfold:K"`` (every trial on K
        folds, the metric averaged), or a Ratings (then ``data`` is the fit part).
    metric : str, optional
        Any key of :func:`fastmf.evaluate`: ``"rmse"``, ``"mae"`` (lower is better),
        ``"ndcg@10"``, ``"recall@20"``... (higher is better). Default ``"rmse"`` for a model that
        predicts ratings, ``"ndcg@10"`` for a ranking-only one.
    budget : int
        Configurations to try (the grid sampler makes at most this many).
    max_epochs, min_epochs : int, optional
        Epochs (SGD) or sweeps (ALS) of the last and of the first rung; default ``max_epochs``
        from the registry's search space (100 for SGD MF, 20 sweeps for ALS and iALS) and
        ``min_epochs = max_epochs / eta^s``, s the halvings down to one trial.
    sampler : {"random", "grid", "sobol", "tpe"}
        How configurations are drawn. ``"sobol"`` needs scipy, ``"tpe"`` optuna (the
        ``fastmf[optuna]`` extra): it proposes configurations in batches of 8, each batch
        informed by the rung-0 results of the ones before; pass ``study`` (an ``optuna.Study``,
        e.g. with a storage) to keep or continue a study.
    n_jobs : int, optional
        Trials trained at once, in threads (the kernels release the GIL). Default: one per core.
        Each trial's model gets ``cores // n_jobs`` threads unless its ``n_threads`` is set;
        ``n_jobs x n_threads`` above the cores is a ValueError. The result does not depend on
        ``n_jobs`` (the models are the same for any thread count; results are gathered in trial
        order).
    random_state : int, Generator or None
        Seeds the sampler, the validation split and, when the model's own ``random_state`` is
        None, every trial's model (the same seed for all: trials differ only by their parameters).
    refit : bool
        Refit the best configuration on all of ``data`` (``best_model_``).
    eta : int
        Halving rate: each rung keeps the best 1/eta of the trials for eta times the epochs.
    halving : bool
        False: every configuration trains ``max_epochs`` (a plain search, for comparison).
    scale_epochs : bool, optional
        Whether the refit multiplies the best epoch count by (refit data size / fit part size).
        None: the model's registry choice (``SearchSpec.scale_refit_epochs``): True, except for
        SGD MatrixFactorization, whose epochs already visit every rating of the larger set.
    progress : bool or "auto"
        A tqdm bar on stderr, one step per trial and rung.
    callback : callable, optional
        Called with a record ``{"rung", "epochs", "trial", "params", "value", "status"}`` after
        each trial's rung (for the command line's progress).

    Returns
    -------
    SearchResult
        ``best_params_``, ``best_epochs_``, ``best_score_``, ``best_model_``, ``records`` and
        ``to_frame()``.

    Notes
    -----
    Successive halving (Jamieson & Talwalkar 2016; Li et al. 2018): all configurations train
    ``min_epochs``, are measured on the validation data, and the best ``1/eta`` continue
    (:meth:`~fastmf.MatrixFactorization.partial_fit`, bit for bit a straight fit) to ``eta``
    times the epochs, up to ``max_epochs``. With 64 configurations and eta=3, the epochs trained
    add up to about six fits of ``max_epochs``. The last rung is measured at up to 8 epoch counts,
    and ``best_epochs_`` is the best of them.
    """
    from fastmf.models import registry
    from fastmf.training.loop import metric_direction

    owner = "search"
    t_start = time.perf_counter()
    base, entry = resolve_model(model, owner)
    if data is None:
        raise ValueError("search: give the training data (a fastmf.Ratings) as data")
    if sampler not in SAMPLERS:
        raise ValueError(f"search: sampler must be one of {', '.join(map(repr, SAMPLERS))}, got {sampler!r}")
    for name, value, low in (("budget", budget, 1), ("eta", eta, 2)):
        if not (isinstance(value, int) and not isinstance(value, bool) and value >= low):
            raise ValueError(f"search: {name} must be an int >= {low}, got {value!r}")
    if metric is None:
        metric = "rmse" if getattr(base, "predicts_ratings", True) else "ndcg@10"
    direction = metric_direction(metric, bool(getattr(base, "predicts_ratings", True)))
    spec = registry.search_spec(entry, base.get_params())
    if space is None:
        space = spec.space
    params = base.get_params()
    dists, fixed = check_space(owner, space, params, base._constraints)
    iterative = entry.has("iterative") and spec.budget is not None and hasattr(base, "partial_fit")
    budget_param = spec.budget if iterative else None
    if budget_param is not None and budget_param in dists:
        raise ValueError(f"search: {budget_param} is the halving budget (max_epochs / min_epochs), not a "
                         "dimension of the space")
    if iterative:
        max_epochs = _check_epochs("max_epochs", max_epochs if max_epochs is not None else spec.max_budget, 1)
    elif max_epochs is not None or min_epochs is not None:
        raise ValueError(f"search: {entry.class_name} trains in one pass; max_epochs and min_epochs apply "
                         "to iterative models only")
    seed = int_seed(random_state, owner)
    folds, refit_data, described = carve(data, validation, seed, owner)

    # the trials' models
    if sampler == "tpe":
        configs = None
        n_configs = budget
    else:
        configs = propose(dists, budget, sampler, seed)
        n_configs = len(configs)
    if iterative and halving:
        if min_epochs is None:
            min_epochs = min(max_epochs, _default_min_epochs(n_configs, max_epochs, eta))
        min_epochs = _check_epochs("min_epochs", min_epochs, 1)
        if min_epochs > max_epochs:
            raise ValueError(f"search: min_epochs={min_epochs} is more than max_epochs={max_epochs}")
        rungs = halving_rungs(n_configs, min_epochs, max_epochs, eta)
    else:
        rungs = [(max_epochs if iterative else 1, n_configs)]
    user_threads = params.get("n_threads")
    if "n_threads" in params and not entry.has("thread_invariant"):
        user_threads = 1  # the model depends on its thread count: keep it fixed, whatever n_jobs is
    jobs, threads = split_cores(n_jobs, user_threads if "n_threads" in params else 1, n_configs * len(folds),
                                owner)
    # the model's thread count is ours to choose: it was left to fastmf and the model is the same
    # for any (so the result does not depend on n_jobs)
    spread_threads = ("n_threads" in params and params["n_threads"] in (None, -1) and "n_threads" not in dists
                      and "n_threads" not in fixed and entry.has("thread_invariant"))
    trial_fixed = dict(fixed)
    own_seed = params.get("random_state")
    if "random_state" in params and "random_state" not in fixed and (own_seed is None or isinstance(own_seed, np.random.Generator)):
        # one int seed for every trial (and the refit): trials differ only by their parameters
        trial_fixed["random_state"] = seed if own_seed is None else int_seed(own_seed, owner)
    if "n_threads" in params:
        trial_fixed["n_threads"] = threads
    if metric in _RATING_METRICS:
        trial_fixed.update({k: v for k, v in spec.rating_trial_params.items() if k in params})

    scale_by = spec.epochs_scale if iterative and spec.epochs_scale and spec.epochs_scale[0] in dists else None

    def make_trial(i, config):
        merged = {**trial_fixed, **config}
        models = [clone(base, **merged) for _ in folds]
        trial = _Trial(i, dict(config), models)
        if scale_by is not None:
            name, reference = scale_by
            trial.scale = min(1.0, reference / float(models[0].get_params()[name]))
        return trial

    runner = _Runner(folds, metric, budget_param, iterative)
    from fastmf.training.progress import progress_bar

    bar = progress_bar(progress, sum(n for _, n in rungs), "search", "trial")
    rung_log: List[Dict[str, Any]] = []

    def run(pool, trials, checkpoints_of, rung_index, epochs, keep=None):
        """Advance ``trials`` in the pool; with ``keep``, free the models of every trial that has
        fallen out of the best ``keep`` so far (the same set as ranking the whole rung at the end,
        since results arrive in trial order), so a rung holds about ``keep`` fitted models."""
        done = []
        top: List[_Trial] = []
        if spread_threads:
            # fewer models than jobs (the last rungs): give each the cores the idle jobs leave; the
            # models are the same for any thread count (thread_invariant), so the result is too
            n_models = sum(len(t.models) for t in trials)
            per = max(threads, (jobs * threads) // max(1, min(jobs, n_models)))
            for t in trials:
                for m in t.models:
                    m.set_params(n_threads=per)
        for t in pool.map(lambda t: runner.advance(t, t.targets(checkpoints_of(t))), trials):
            done.append(t)
            if keep is not None:
                top.append(t)
                top.sort(key=lambda x: (-x.last(direction), x.index))
                for out in top[keep:]:
                    out.models, out.evaluators = [], []
                del top[keep:]
            if bar is not None:
                bar.update(1)
            if callback is not None:
                callback({"rung": rung_index, "epochs": epochs, "trial": t.index, "params": t.params,
                          "value": t.evaluated[-1][1] if t.evaluated and t.error is None else None,
                          "status": t.error or "ok"})
        return done

    try:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            first_epochs = rungs[0][0]
            first = [first_epochs] if len(rungs) > 1 else _checkpoints(0, first_epochs)
            if configs is None:
                trials = _tpe_trials(pool, run, make_trial, dists, budget, seed, direction, study, first)
            else:
                trials = [make_trial(i, c) for i, c in enumerate(configs)]
                trials = run(pool, trials, lambda t: first, 0, first_epochs,
                             keep=rungs[1][1] if len(rungs) > 1 else None)
            alive = trials
            rung_log.append({"rung": 0, "epochs": first_epochs, "trials": len(trials),
                             "kept": len(trials) if len(rungs) == 1 else rungs[1][1]})
            for r in range(1, len(rungs)):
                epochs, kept = rungs[r]
                ranked = sorted(alive, key=lambda t: (-t.last(direction), t.index))
                alive = [t for t in ranked[:kept] if t.error is None] or ranked[:1]
                for t in ranked[kept:]:
                    t.models, t.evaluators = [], []  # free the factors of trials that stop here
                last = r == len(rungs) - 1
                prev = rungs[r - 1][0]
                checkpoints = _checkpoints(prev, epochs) if last else [epochs]
                alive = run(pool, alive, lambda t: checkpoints, r, epochs,
                            keep=rungs[r + 1][1] if not last else None)
                rung_log.append({"rung": r, "epochs": epochs, "trials": len(alive),
                                 "kept": len(alive) if last else rungs[r + 1][1]})
    finally:
        if bar is not None:
            bar.close()

    finalists = [t for t in alive if t.error is None]
    if not finalists:
        raise DivergenceError(f"search: every configuration of the last rung diverged ({alive[0].error}); "
                              "narrow the space (smaller learning rates, more regularisation)")
    winner = min(finalists, key=lambda t: (-t.best(direction)[0], t.index))
    score, best_epochs = winner.best(direction)
    best_score = direction * score
    records = []
    for t in trials:
        value = t.evaluated[-1][1] if t.evaluated else math.nan
        b_val, b_ep = t.best(direction)
        records.append({"trial": t.index, **t.params, "epochs": t.epochs if iterative else None, metric: value,
                        "best_epoch": b_ep if iterative else None,
                        f"best_{metric}": direction * b_val if t.evaluated and t.error is None else math.nan,
                        "rung": _rung_of(t.epochs, rungs), "status": t.error or "ok",
                        "seconds": t.seconds})
    best_model = None
    refit_epochs = None
    if iterative:
        fit_size = float(np.mean([len(f) for f, _ in folds]))
        scale = spec.scale_refit_epochs if scale_epochs is None else bool(scale_epochs)
        refit_epochs = max(1, int(round(best_epochs * len(refit_data) / fit_size))) if scale else best_epochs
    if refit:
        final = dict(fixed, **winner.params)
        if budget_param is not None:
            final[budget_param] = refit_epochs
        if "random_state" in trial_fixed:
            final["random_state"] = trial_fixed["random_state"]
        best_model = clone(base, **final).fit(refit_data)
    return SearchResult(
        best_params_=dict(winner.params), best_epochs_=best_epochs if iterative else None,
        best_score_=best_score, best_model_=best_model, refit_epochs_=refit_epochs, records=records,
        rungs=rung_log, metric=metric, direction=direction, validation=described, n_jobs=jobs,
        n_threads=threads, seconds=time.perf_counter() - t_start, machine=machine(), model=entry.key,
        space=dict(space), sampler=sampler)


def _check_epochs(name, value, low):
    if not (isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= low):
        raise ValueError(f"search: {name} must be an int >= {low}, got {value!r}")
    return int(value)


def _checkpoints(prev: int, last: int) -> List[int]:
    """Up to 8 evenly spread epoch counts in (prev, last], last included."""
    n = min(8, last - prev)
    return sorted({int(round(prev + (last - prev) * (j + 1) / n)) for j in range(n)}) if n > 0 else [last]


def _rung_of(epochs: int, rungs: Sequence[Tuple[int, int]]) -> int:
    r = 0
    for i, (e, _) in enumerate(rungs):
        if epochs >= e:
            r = i
    return r


# ====================================================================== TPE (optuna)
_TPE_BATCH = 8


def _tpe_trials(pool, run, make_trial, dists, budget, seed, direction, study, first):
    """Trials proposed by optuna's TPE sampler in batches of :data:`_TPE_BATCH` (a fixed size, so
    the result does not depend on n_jobs), each told its rung-0 validation value."""
    try:
        import optuna
    except ImportError:
        raise ImportError("sampler='tpe' needs optuna: pip install 'fastmf[optuna]' (or use sampler='random' "
                          "or 'sobol')") from None
    if study is None:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(direction="minimize" if direction < 0 else "maximize",
                                    sampler=optuna.samplers.TPESampler(seed=seed))
    trials: List[_Trial] = []
    while len(trials) < budget:
        batch = []
        for _ in range(min(_TPE_BATCH, budget - len(trials))):
            ot = study.ask()
            batch.append((ot, make_trial(len(trials) + len(batch), _suggest(ot, dists))))
        done = run(pool, [t for _, t in batch], lambda t: first, 0, first[-1])
        for (ot, _), t in zip(batch, done):
            if t.error is None and t.evaluated:
                study.tell(ot, t.evaluated[-1][1])
            else:
                study.tell(ot, state=optuna.trial.TrialState.FAIL)
        trials.extend(done)
    return trials


def _suggest(ot, dists):
    from fastmf._space import Float, FloatLog, Int, IntLog

    out = {}
    for name, d in dists.items():
        if isinstance(d, Choice):
            out[name] = d.options[ot.suggest_categorical(name, list(range(len(d.options))))]
        elif isinstance(d, IntLog):
            out[name] = ot.suggest_int(name, d.low, d.high, log=True)
        elif isinstance(d, Int):
            out[name] = ot.suggest_int(name, d.low, d.high)
        elif isinstance(d, FloatLog):
            out[name] = ot.suggest_float(name, d.low, d.high, log=True)
        elif isinstance(d, Float):
            out[name] = ot.suggest_float(name, d.low, d.high)
        else:  # pragma: no cover - check_space accepts only these
            raise ValueError(f"search: {name}: cannot pass {d!r} to optuna")
    return out
