"""The epoch loop shared by every iterative model (SGD and ALS of :class:`fastmf.MatrixFactorization`,
:class:`fastmf.ImplicitALS`, and the models to come).

History schema (one dict per epoch, in ``model.history_``; this is the one place it is defined)::

    {"epoch": 1-based int, "train_<metric>": float ... (from the model's step),
     "eval_<metric>": float ... (one per eval metric, with an eval_set), "seconds": float}

in that key order, the same keys for every epoch of a fit. The train metric is what the model's
step measures: ``train_rmse`` for :class:`fastmf.MatrixFactorization` (SGD: the running loss of
the epoch; ALS: the RMSE after the sweep), ``train_loss`` for :class:`fastmf.ImplicitALS` (the
full objective; absent with ``calculate_loss=False``). ``seconds`` times the step and the eval.
``model.best_epoch_`` is the 1-based epoch whose parameters the model holds.

Eval metrics are keys of :func:`fastmf.evaluate`: ``"rmse"``, ``"mae"`` (rating models only) and
``"precision@k"``, ``"recall@k"``, ``"ndcg@k"``, ``"map@k"``, ``"hit_rate@k"``, ``"coverage@k"``
(ranking, any cut-off k). Early stopping watches one of them; lower is better for rmse and mae,
higher for the ranking metrics.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from fastmf.errors import DivergenceError

import numpy as np

__all__ = ["run_epochs", "Trainer", "StepTrainer", "EvalSet", "check_fit_options", "metric_direction",
           "DivergenceError"]

Step = Callable[[int], Dict[str, float]]
Callback = Callable[[Any, Dict[str, Any]], Any]

class Trainer:
    """One solver's training as :func:`run_epochs` drives it (the trainer protocol).

    ``start()`` once before the first epoch; ``epoch(n)`` for n = 1, 2, ... returns that epoch's
    training metrics (``{"train_rmse": ...}``; raise FloatingPointError for non-finite values);
    ``finish()`` once at the end, also after an early stop or an error. ``state`` lists the arrays
    that make up the fitted parameters (early stopping copies them at the best epoch and writes
    them back into the same buffers); ``describe(exc)`` is what a divergence message adds after
    "<Model>: training diverged in epoch <n>" (the settings that matter, then the kernel's words).
    """

    state: Sequence[np.ndarray] = ()

    def start(self) -> None:
        """Before epoch 1 (plans, scratch buffers)."""

    def epoch(self, n: int) -> Dict[str, float]:  # pragma: no cover - the protocol's one must
        raise NotImplementedError

    def finish(self) -> None:
        """After the last epoch (free scratch), also when training stopped early or failed."""

    def describe(self, exc: BaseException) -> str:
        return f": {exc}"


class StepTrainer(Trainer):
    """A :class:`Trainer` from a step function ``step(n) -> metrics`` (what the solvers of
    MatrixFactorization and ImplicitALS are: closures over their prepared kernels)."""

    def __init__(self, step: Step, state: Sequence[np.ndarray],
                 describe: Optional[Callable[[BaseException], str]] = None) -> None:
        self.step = step
        self.state = state
        self._describe = describe

    def epoch(self, n: int) -> Dict[str, float]:
        return self.step(n)

    def describe(self, exc: BaseException) -> str:
        return self._describe(exc) if self._describe is not None else super().describe(exc)


_RATING = ("rmse", "mae")
_RANKING = ("precision", "recall", "ndcg", "map", "hit_rate", "coverage")
_METRIC = re.compile(r"^(precision|recall|ndcg|map|hit_rate|coverage)@([1-9][0-9]*)$")




def metric_direction(metric: str, predicts_ratings: bool = True) -> int:
    """-1 when lower is better (rmse, mae), +1 when higher is (ranking metrics); ValueError for a
    key :func:`fastmf.evaluate` does not report, or a rating metric of a model without ratings."""
    if metric in _RATING:
        if not predicts_ratings:
            raise ValueError(f"eval metric {metric!r} needs a model that predicts ratings; this model "
                             f"ranks only: use a ranking metric such as 'ndcg@10'")
        return -1
    if isinstance(metric, str) and _METRIC.match(metric):
        return 1
    raise ValueError(f"unknown eval metric {metric!r}: expected 'rmse', 'mae' or one of "
                     f"{', '.join(m + '@k' for m in _RANKING)} with k a positive int (e.g. 'ndcg@10')")


class EvalSet:
    """Measures ``metrics`` of ``model`` on ``ratings`` (a Ratings) after each epoch, as
    ``{"eval_<metric>": value}``. Rating metrics use the ids translated once; ranking metrics ask
    :func:`fastmf.evaluate` (training items excluded), once per cut-off k."""

    def __init__(self, model: Any, ratings: Any, metrics: Sequence[str]) -> None:
        from fastmf.data.ratings import Ratings

        if not isinstance(ratings, Ratings):
            raise TypeError(f"eval_set must be a fastmf.Ratings, got {type(ratings).__name__}")
        if len(ratings) == 0:
            raise ValueError("eval_set is empty")
        predicts = bool(getattr(model, "predicts_ratings", True))
        for m in metrics:
            metric_direction(m, predicts)
        self.model, self.ratings, self.metrics = model, ratings, tuple(metrics)
        self.cutoffs = sorted({int(m.split("@")[1]) for m in self.metrics if "@" in m})
        if any(m in _RATING for m in self.metrics):
            if ratings.user_map is model.user_map_ and ratings.item_map is model.item_map_:
                self.u = ratings.user_index.astype(np.int64)
                self.i = ratings.item_index.astype(np.int64)
            else:
                u, i, _, _ = ratings.to_arrays()
                self.u = np.asarray(model.user_map_.to_index(u, missing=-1), dtype=np.int64)
                self.i = np.asarray(model.item_map_.to_index(i, missing=-1), dtype=np.int64)
            self.r = ratings.rating.astype(np.float64)
            # models that use time predict at the eval set's times (others ignore them)
            self.t = ratings.timestamp if getattr(model, "_uses_time", False) else None

    def __call__(self) -> Dict[str, float]:
        values: Dict[str, float] = {}
        if any(m in _RATING for m in self.metrics):
            when = {} if self.t is None else {"timestamps": self.t}
            err = self.model.predict_indices(self.u, self.i, **when) - self.r
            values["rmse"] = float(np.sqrt(np.mean(err * err)))
            values["mae"] = float(np.mean(np.abs(err)))
        if self.cutoffs:
            import warnings

            from fastmf.evaluation import evaluate

            for k in self.cutoffs:
                with warnings.catch_warnings():  # the split is the caller's choice, warned about once
                    warnings.simplefilter("ignore")
                    scores = evaluate(self.model, self.ratings, k=k)
                for name in _RANKING:
                    key = "coverage" if name == "coverage" else f"{name}@{k}"
                    if key in scores:
                        values[f"{name}@{k}"] = float(scores[key])
        return {f"eval_{m}": values[m] for m in self.metrics}


def check_fit_options(model: Any, eval_set: Any, callbacks: Optional[Sequence[Callback]],
                      early_stopping_rounds: Optional[int], early_stopping: Optional[str],
                      eval_metrics: Sequence[str], progress: Any) -> Tuple[List[Callback], Optional[str]]:
    """Validate the loop's arguments of a ``fit`` before any work: returns the callbacks as a list
    and the watched metric (``early_stopping``, or the first of ``eval_metrics``; None without
    early stopping)."""
    from fastmf.training.progress import wants_bar
    from fastmf._validation import Interval

    callbacks = list(callbacks or [])
    for cb in callbacks:
        if not callable(cb):
            raise ValueError(f"callbacks must be callables, got {cb!r}")
    if early_stopping is not None and early_stopping_rounds is None:
        raise ValueError("early_stopping names the metric to watch; also give early_stopping_rounds "
                         "(the epochs without improvement before stopping)")
    watched = None
    if early_stopping_rounds is not None:
        if eval_set is None:
            raise ValueError("early_stopping_rounds needs an eval_set")
        if not Interval("int", 1, None).accepts(early_stopping_rounds):
            raise ValueError(f"early_stopping_rounds must be a positive int, got {early_stopping_rounds!r}")
        watched = early_stopping if early_stopping is not None else eval_metrics[0]
        metric_direction(watched, bool(getattr(model, "predicts_ratings", True)))
    wants_bar(progress)  # a bad value fails before the work
    return callbacks, watched


def run_epochs(model: Any, trainer: Union[Trainer, Step], n_epochs: int,
               state: Optional[Sequence[np.ndarray]] = None, *,
               eval_set: Any = None, eval_metrics: Sequence[str] = (), callbacks: Sequence[Callback] = (),
               early_stopping_rounds: Optional[int] = None, watched: Optional[str] = None,
               progress: Any = False, verbose: bool = False,
               divergence: Optional[Callable[[BaseException], str]] = None, start_epoch: int = 1) -> None:
    """Run ``trainer`` (a :class:`Trainer`, or a step function with its ``state`` and
    ``divergence``, wrapped in a :class:`StepTrainer`) for epochs 1..``n_epochs`` and record
    ``model.history_`` and ``model.best_epoch_``.

    ``start_epoch`` > 1 continues a fit (a model's ``partial_fit``): the trainer runs epochs
    ``start_epoch .. start_epoch + n_epochs - 1`` and their entries are appended to
    ``model.history_``, which must hold exactly the ``start_epoch - 1`` epochs before them. A
    trainer whose epoch ``n`` depends only on its state and on ``n`` (every fastmf solver: the
    shuffles are drawn from the seed and the epoch number) then gives bit for bit the model of
    one run over all the epochs. Early stopping looks only at the epochs of this call.

    Early stopping copies the trainer's ``state`` at the best epoch and writes that copy back into
    the same buffers at the end (so row-padded, aligned factor buffers stay what they are). An epoch
    raising FloatingPointError (non-finite values) ends the fit with :class:`DivergenceError`:
    "<Model>: training diverged in epoch <n>" followed by ``trainer.describe(exc)`` (the model's
    settings and the kernel's message). ``verbose`` logs one line
    per epoch at INFO to the logger named after the model's module (``"fastmf.models.mf"``). Each
    callback is called as ``cb(model, entry)`` after every epoch; one returning True stops.
    """
    from fastmf.training.progress import epoch_bar, format_entry

    if not isinstance(trainer, Trainer):
        trainer = StepTrainer(trainer, () if state is None else state, divergence)
    elif state is not None or divergence is not None:
        raise TypeError("run_epochs: state and divergence belong to the Trainer; pass them only with a "
                        "step function")
    watch = [*eval_metrics]
    if watched is not None and watched not in watch:
        watch.append(watched)
    evaluator = EvalSet(model, eval_set, watch) if eval_set is not None else None
    direction = metric_direction(watched, bool(getattr(model, "predicts_ratings", True))) \
        if watched is not None else 0
    callbacks = list(callbacks)
    if not (isinstance(start_epoch, int) and start_epoch >= 1):
        raise ValueError(f"run_epochs: start_epoch must be an int >= 1, got {start_epoch!r}")
    if start_epoch == 1:
        model.history_ = []
        model.best_epoch_ = 0
    elif len(model.history_) != start_epoch - 1:
        raise ValueError(f"run_epochs: start_epoch={start_epoch} continues a fit of {start_epoch - 1} epochs, "
                         f"but the model's history_ holds {len(model.history_)}")
    last = start_epoch - 1 + n_epochs
    bar = epoch_bar(progress, n_epochs)
    if bar is not None:
        callbacks.insert(0, bar)  # first, so a callback that stops training cannot skip it
    best: Optional[Tuple[float, int, List[np.ndarray]]] = None
    name = type(model).__name__
    state = trainer.state
    trainer.start()
    try:
        for epoch in range(start_epoch, last + 1):
            t0 = time.perf_counter()
            try:
                entry: Dict[str, Any] = {"epoch": epoch, **trainer.epoch(epoch)}
            except FloatingPointError as exc:
                raise DivergenceError(f"{name}: training diverged in epoch {epoch}"
                                      f"{trainer.describe(exc)}") from None
            if evaluator is not None:
                entry.update(evaluator())
            entry["seconds"] = time.perf_counter() - t0
            model.history_.append(entry)
            model.best_epoch_ = epoch
            if verbose:
                log = logging.getLogger(type(model).__module__)
                _verbose_handler(log)
                log.info(f"{name} {format_entry(entry, last)}")
            stop = any(bool(cb(model, entry)) for cb in callbacks)
            if watched is not None:
                value = direction * entry[f"eval_{watched}"]
                if best is None or value > best[0]:
                    best = (value, epoch, [a.copy() for a in state])
                elif epoch - best[1] >= early_stopping_rounds:
                    stop = True
            if stop:
                break
    finally:
        if bar is not None:
            bar.close()
        trainer.finish()
    if best is not None and best[1] != model.best_epoch_:
        for dst, src in zip(state, best[2]):
            dst[...] = src
        model.best_epoch_ = best[1]


_VERBOSE_HANDLER = None


def _verbose_handler(log: logging.Logger) -> None:
    """``verbose=True`` must show its lines without the user configuring logging, and must never
    touch the root logger: when no handler would receive the records, add one stderr handler to the
    package's own ``fastmf`` logger (once), and let that logger pass INFO records."""
    global _VERBOSE_HANDLER
    pkg = logging.getLogger("fastmf")
    if _VERBOSE_HANDLER is None and not log.hasHandlers():
        _VERBOSE_HANDLER = logging.StreamHandler()
        _VERBOSE_HANDLER.setFormatter(logging.Formatter("%(message)s"))
        pkg.addHandler(_VERBOSE_HANDLER)
    if not log.isEnabledFor(logging.INFO):
        pkg.setLevel(logging.INFO)
