"""Search-space distributions for hyper-parameter search (:mod:`fastmf.tune`), and the default
search of a model (:class:`SearchSpec`), which the registry declares with each entry.

A leaf module (no fastmf imports, NumPy imported on first use) so that the registry can declare
the default spaces without importing the tuner. The public names are re-exported by
:mod:`fastmf.tune`: ``Float``, ``FloatLog``, ``Int``, ``IntLog``, ``Choice``.

Every distribution maps a point ``u`` of [0, 1) to a value (``from_unit``: how the random and
Sobol samplers draw), gives ``n`` evenly spread values for the grid sampler (``grid``; on the
log scale for the log distributions) and says whether a value lies in it (``contains``).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

__all__ = ["Distribution", "Float", "FloatLog", "Int", "IntLog", "Choice", "SearchSpec", "check_space"]


def _real(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x)


def _int(x: Any) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


class Distribution:
    """Base class of the search-space distributions."""

    def from_unit(self, u: float) -> Any:  # pragma: no cover - every distribution has one
        raise NotImplementedError

    def grid(self, n: int) -> List[Any]:  # pragma: no cover
        raise NotImplementedError

    def contains(self, value: Any) -> bool:  # pragma: no cover
        raise NotImplementedError

    @property
    def size(self) -> Optional[int]:
        """Number of distinct values (None: a continuum)."""
        return None


@dataclass(frozen=True)
class Float(Distribution):
    """A float drawn uniformly from [low, high]."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not (_real(self.low) and _real(self.high) and self.low < self.high):
            raise ValueError(f"{type(self).__name__}: need finite low < high, got low={self.low!r}, high={self.high!r}")

    def _to(self, t: float) -> float:
        return float(self.low + t * (self.high - self.low))

    def from_unit(self, u: float) -> float:
        return min(self._to(u), float(self.high))

    def grid(self, n: int) -> List[float]:
        if n <= 1:
            return [self._to(0.5)]
        return [self._to(j / (n - 1)) for j in range(n)]

    def contains(self, value: Any) -> bool:
        return _real(value) and self.low <= value <= self.high


@dataclass(frozen=True)
class FloatLog(Float):
    """A float whose logarithm is uniform on [log low, log high] (learning rates, penalties);
    0 < low < high."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.low <= 0:
            raise ValueError(f"FloatLog: low must be > 0 (a log scale), got {self.low!r}")

    def _to(self, t: float) -> float:
        a, b = math.log(self.low), math.log(self.high)
        return float(min(max(math.exp(a + t * (b - a)), self.low), self.high))


@dataclass(frozen=True)
class Int(Distribution):
    """An int drawn uniformly from low..high (both included)."""

    low: int
    high: int

    def __post_init__(self) -> None:
        if not (_int(self.low) and _int(self.high) and self.low < self.high):
            raise ValueError(f"{type(self).__name__}: need ints low < high, got low={self.low!r}, high={self.high!r}")

    def _to(self, t: float) -> int:
        # each of the high - low + 1 values gets an equal share of [0, 1)
        return int(min(self.low + math.floor(t * (self.high - self.low + 1)), self.high))

    def from_unit(self, u: float) -> int:
        return self._to(u)

    def _grid_point(self, t: float) -> int:
        return int(round(self.low + t * (self.high - self.low)))

    def grid(self, n: int) -> List[int]:
        if n <= 1:
            return [self._grid_point(0.5)]
        values = [self._grid_point(j / (n - 1)) for j in range(n)]
        return sorted(set(values))

    def contains(self, value: Any) -> bool:
        return _int(value) and self.low <= value <= self.high

    @property
    def size(self) -> int:
        return int(self.high - self.low + 1)


@dataclass(frozen=True)
class IntLog(Int):
    """An int whose logarithm is uniform on [log low, log(high + 1)) (factor counts); 1 <= low < high."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.low < 1:
            raise ValueError(f"IntLog: low must be >= 1 (a log scale), got {self.low!r}")

    def _to(self, t: float) -> int:
        a, b = math.log(self.low), math.log(self.high + 1)
        return int(min(max(math.floor(math.exp(a + t * (b - a))), self.low), self.high))

    def _grid_point(self, t: float) -> int:
        a, b = math.log(self.low), math.log(self.high)
        return int(min(max(round(math.exp(a + t * (b - a))), self.low), self.high))


class Choice(Distribution):
    """One of a few values, each equally likely: ``Choice("cg", "cholesky")``."""

    def __init__(self, *options: Any) -> None:
        if len(options) == 1 and isinstance(options[0], (list, tuple)):
            options = tuple(options[0])
        if not options:
            raise ValueError("Choice: give at least one option")
        self.options = tuple(options)

    def __repr__(self) -> str:
        return f"Choice({', '.join(map(repr, self.options))})"

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, Choice) and self.options == other.options

    def __hash__(self) -> int:
        return hash(self.options)

    def from_unit(self, u: float) -> Any:
        return self.options[min(int(u * len(self.options)), len(self.options) - 1)]

    def grid(self, n: int) -> List[Any]:
        return list(self.options)

    def contains(self, value: Any) -> bool:
        return any(value is o or (type(value) is type(o) and value == o) for o in self.options)

    @property
    def size(self) -> int:
        return len(self.options)


@dataclass(frozen=True)
class SearchSpec:
    """A model's default search (declared in its registry entry).

    ``space``: parameter -> distribution (or a fixed value). ``budget``: the parameter successive
    halving grows (``"n_epochs"``: epochs of SGD, sweeps of ALS; None for a model fitted in one
    pass, whose trials are plain fits) and ``max_budget`` its default maximum (``max_epochs`` of
    :func:`fastmf.tune.search`). ``rating_trial_params``: parameters the trials of a search on a
    rating metric (rmse, mae) use, which change only how the model *ranks*, not what it
    predicts, so the metric is the same without their cost (the refit keeps the model's own).
    ``epochs_scale``: ``(parameter, reference)`` when a trial's progress per epoch is
    proportional to that parameter (SGD's learning rate): a trial then trains the rung's epochs
    times ``reference / value``, so halving compares configurations at equal progress (learning
    rate x epochs) instead of favouring the fast, less accurate ones at every rung; the factor
    is at most 1, so no trial trains more than ``max_epochs`` (the epochs at the reference, the
    smallest value of the default space). It applies when that parameter is searched. ``scale_refit_epochs``: whether the refit on the
    larger data multiplies the best epoch count by the ratio of the sizes (the default of
    :func:`fastmf.tune.search`'s ``scale_epochs``).
    """

    space: Mapping[str, Any] = field(default_factory=dict)
    budget: Optional[str] = None
    max_budget: Optional[int] = None
    rating_trial_params: Mapping[str, Any] = field(default_factory=dict)
    epochs_scale: Optional[Tuple[str, float]] = None
    scale_refit_epochs: bool = True
    doc: str = ""


def check_space(owner: str, space: Mapping[str, Any], params: Mapping[str, Any],
                constraints: Mapping[str, Any]) -> Tuple[Dict[str, Distribution], Dict[str, Any]]:
    """Split ``space`` into (distributions, fixed values); ValueError for a name that is not one
    of ``params`` (the model's parameters) and for a distribution whose ends (or a fixed value,
    or an option) the model's constraint refuses, naming the parameter and the allowed values."""
    from fastmf._validation import check_params

    if not isinstance(space, Mapping):
        raise ValueError(f"{owner}: space must be a dict of parameter -> distribution, got {type(space).__name__}")
    dists: Dict[str, Distribution] = {}
    fixed: Dict[str, Any] = {}
    for name, value in space.items():
        if name not in params:
            raise ValueError(f"{owner}: space names {name!r}, which is not a parameter of the model "
                             f"(parameters: {', '.join(params)})")
        if isinstance(value, Distribution):
            ends = value.options if isinstance(value, Choice) else (value.low, value.high)
            for v in ends:
                try:
                    check_params(owner, {name: v}, constraints)
                except ValueError as exc:
                    raise ValueError(f"{owner}: space[{name!r}] = {value!r} reaches {v!r}, which the model "
                                     f"refuses: {exc}") from None
            dists[name] = value
        else:
            check_params(owner, {name: value}, constraints)
            fixed[name] = value
    return dists, fixed
