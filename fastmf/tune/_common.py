"""What the tuner's parts share: result tables, model resolution, validation protocols, threads."""

from __future__ import annotations

import numbers
import platform
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from fastmf.data.ratings import Ratings

__all__ = ["Table", "resolve_model", "clone", "carve", "split_cores", "machine", "int_seed"]


class Table:
    """Rows of a result (a list of dicts with the same keys), as ``records`` and as a DataFrame.

    ``table.records`` is the list; ``table.to_frame()`` (also ``table.frame``) the pandas DataFrame
    (pandas is imported then, only); ``len``, iteration and ``table[i]`` work on the records.
    """

    def __init__(self, records: Sequence[Dict[str, Any]], title: str = "") -> None:
        self.records: List[Dict[str, Any]] = [dict(r) for r in records]
        self.title = title

    @property
    def columns(self) -> List[str]:
        seen: Dict[str, None] = {}
        for r in self.records:
            for k in r:
                seen.setdefault(k)
        return list(seen)

    def to_frame(self) -> Any:
        """The records as a pandas DataFrame (one row each, columns in first-seen order)."""
        try:
            import pandas as pd
        except ImportError:  # pragma: no cover - pandas is in the test extra
            raise ImportError("Table.to_frame needs pandas: pip install 'fastmf[pandas]'") from None
        return pd.DataFrame.from_records(self.records, columns=self.columns)

    frame = property(to_frame)

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[Dict[str, Any]]:
        return iter(self.records)

    def __getitem__(self, i: int) -> Dict[str, Any]:
        return self.records[i]

    def __repr__(self) -> str:
        return f"<Table {self.title!r}: {len(self.records)} rows, columns {self.columns}>"


def int_seed(random_state: Any, owner: str) -> int:
    """An int seed from None (0), an int, or a numpy Generator (one draw)."""
    if random_state is None:
        return 0
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**63 - 1))
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool) and random_state >= 0:
        return int(random_state)
    raise ValueError(f"{owner}: random_state must be None, an int >= 0 or a numpy.random.Generator, "
                     f"got {random_state!r}")


def resolve_model(model: Any, owner: str) -> Tuple[Any, Any]:
    """``(a fresh, unfitted copy of the model, its registry entry)`` for a model instance, a
    registry key or a preset name ("mf", "als", "ials", "biases", ...)."""
    from fastmf.models import registry
    from fastmf.models.base import Recommender

    if isinstance(model, str):
        found = registry.presets().get(model)
        if found is None:
            raise KeyError(f"{owner}: unknown model {model!r}; the registered models: "
                           f"{', '.join(registry.presets())}")
        entry, params, _ = found
        return entry.cls(**params), entry
    if isinstance(model, Recommender):
        try:
            entry = registry.for_class(type(model))
        except KeyError as exc:
            raise ValueError(f"{owner}: {exc.args[0]}") from None
        return clone(model), entry
    raise ValueError(f"{owner}: model must be a fastmf model or a registry name, got {type(model).__name__}")


def clone(model: Any, **params: Any) -> Any:
    """A new unfitted model of the same class with the same parameters (and ``params`` set)."""
    out = type(model)(**model.get_params())
    if params:
        out.set_params(**params)
    return out


def _fraction(text: str, spec: str, owner: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 1:
        raise ValueError(f"{owner}: validation={spec!r}: the fraction must be a number in (0, 1), got {text!r}")
    return value


def carve(data: Ratings, validation: Union[str, Ratings], seed: int, owner: str
          ) -> Tuple[List[Tuple[Ratings, Ratings]], Ratings, str]:
    """``(folds, refit data, description)``: the (fit part, validation part) pairs of a search
    or cross-validation, carved out of ``data`` (``"random:F"``, ``"temporal:F"`` or
    ``"kfold:K"``) or given (a Ratings: ``data`` is the fit part and the refit data is both)."""
    from fastmf.data import split

    if not isinstance(data, Ratings):
        raise ValueError(f"{owner}: data must be a fastmf.Ratings, got {type(data).__name__}")
    if isinstance(validation, Ratings):
        if len(validation) == 0:
            raise ValueError(f"{owner}: the validation Ratings is empty")
        return [(data, validation)], data.concat(validation), f"given ({len(validation):,} ratings)"
    kinds = "'random:F', 'temporal:F' (F a fraction in (0, 1)), 'kfold:K' (K >= 2) or a Ratings"
    if not isinstance(validation, str) or ":" not in validation:
        raise ValueError(f"{owner}: validation must be {kinds}, got {validation!r}")
    kind, _, arg = validation.partition(":")
    if kind == "random":
        f = _fraction(arg, validation, owner)
        return [split.random_split(data, test_size=f, random_state=seed)], data, \
            f"random {f:g} of the data, seed {seed}"
    if kind == "temporal":
        f = _fraction(arg, validation, owner)
        if data.timestamp is None:
            raise ValueError(f"{owner}: validation={validation!r} needs timestamps, and the data has none")
        return [split.temporal_split(data, test_size=f)], data, f"the latest {f:g} of the data (temporal)"
    if kind == "kfold":
        try:
            k = int(arg)
        except ValueError:
            k = 0
        if k < 2 or str(k) != arg.strip():
            raise ValueError(f"{owner}: validation={validation!r}: K must be an int >= 2, got {arg!r}")
        return list(split.kfold(data, n_splits=k, random_state=seed)), data, f"{k}-fold, seed {seed}"
    raise ValueError(f"{owner}: validation must be {kinds}, got {validation!r}")


def split_cores(n_jobs: Optional[int], n_threads: Optional[int], n_tasks: int, owner: str) -> Tuple[int, int]:
    """``(jobs, threads per job)`` with jobs x threads <= the cores fastmf may use; ValueError
    naming both when the caller's choice exceeds them. ``n_jobs`` None: as many jobs as cores
    (at most ``n_tasks``); ``n_threads`` None: the cores divided among the jobs."""
    from fastmf._validation import available_cores, resolve_n_threads

    cores = max(1, resolve_n_threads(None))
    if n_jobs is None or n_jobs == -1:
        jobs = max(1, min(cores, n_tasks))
        if n_threads is not None and n_threads != -1:
            jobs = max(1, min(jobs, cores // n_threads))
    elif isinstance(n_jobs, numbers.Integral) and not isinstance(n_jobs, bool) and n_jobs >= 1:
        jobs = int(n_jobs)
    else:
        raise ValueError(f"{owner}: n_jobs must be None, -1 or a positive int, got {n_jobs!r}")
    threads = max(1, cores // jobs) if n_threads is None or n_threads == -1 else int(n_threads)
    if jobs * threads > max(cores, 1) and not (jobs == 1 and threads == 1):
        raise ValueError(f"{owner}: n_jobs={jobs} x n_threads={threads} = {jobs * threads} threads, more than the "
                         f"{cores} cores available (os.sched_getaffinity: {available_cores()}); lower n_jobs "
                         "or the model's n_threads")
    return jobs, threads


def machine() -> Dict[str, Any]:
    """The CPU model, its caches, the core count and Python/NumPy versions, for result tables."""
    from fastmf._machine import cache_sizes, cpu_model
    from fastmf._validation import available_cores

    return {"cpu": cpu_model(), "caches": " ".join(cache_sizes()) or "unknown", "cores": available_cores(),
            "python": platform.python_version(), "numpy": np.__version__}