"""Validation helpers shared by every public entry point.

Hyper-parameter constraints are data (a dict of name -> constraint), checked by one helper,
:func:`check_params`, so each estimator states its rules in one place and every message has one shape:
``"<Owner>: <name> must be <rule>, got <value!r>"``.
"""

from __future__ import annotations

import math
import numbers
import operator
import os
from typing import Literal, Type, Union

import numpy as np

#: what every ``random_state`` / ``seed`` parameter accepts (see :class:`RandomState`)
SeedLike = Union[None, int, np.random.Generator]
#: the ``dtype`` of factors and ratings: float32 or float64, by name or by NumPy type
FloatDType = Union[Literal["float32", "float64"], Type[np.float32], Type[np.float64]]


class Interval:
    """A numeric range constraint. ``kind`` is ``"int"`` or ``"real"``; bounds may be None (unbounded);
    ``closed`` is one of ``"both"``, ``"left"``, ``"right"``, ``"neither"``."""

    def __init__(self, kind, low=None, high=None, closed="both"):
        self.kind, self.low, self.high, self.closed = kind, low, high, closed

    def accepts(self, value):
        if isinstance(value, (bool, np.bool_)):
            return False
        if self.kind == "int":
            if not isinstance(value, numbers.Integral):
                return False
        elif not isinstance(value, numbers.Real) or not np.isfinite(value):
            return False
        if self.low is not None:
            if value < self.low or (value == self.low and self.closed in ("right", "neither")):
                return False
        if self.high is not None:
            if value > self.high or (value == self.high and self.closed in ("left", "neither")):
                return False
        return True

    def __str__(self):
        lo = "-inf" if self.low is None else repr(self.low)
        hi = "inf" if self.high is None else repr(self.high)
        left = "[" if self.closed in ("both", "left") and self.low is not None else "("
        right = "]" if self.closed in ("both", "right") and self.high is not None else ")"
        what = "an int" if self.kind == "int" else "a finite number"
        return f"{what} in {left}{lo}, {hi}{right}"


class Options:
    """One of a fixed set of values (compared with ==)."""

    def __init__(self, *values):
        self.values = values

    def accepts(self, value):
        return any(value is v or (type(value) is type(v) and value == v) for v in self.values)

    def __str__(self):
        if len(self.values) == 1:
            return repr(self.values[0])
        return "one of " + ", ".join(repr(v) for v in self.values)


class RandomState:
    """None, a non-negative int, or a numpy.random.Generator."""

    def accepts(self, value):
        if value is None or isinstance(value, np.random.Generator):
            return True
        return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 0

    def __str__(self):
        return "None, a non-negative int or a numpy.random.Generator"


class Callable_:
    def accepts(self, value):
        return callable(value)

    def __str__(self):
        return "a callable"


def check_params(owner, params, constraints):
    """Raise ValueError for the first parameter of ``params`` that none of its constraints accepts.

    ``constraints`` maps a parameter name to one constraint or a tuple of alternatives; parameters
    without an entry are not checked.
    """
    for name, value in params.items():
        rule = constraints.get(name)
        if rule is None:
            continue
        alternatives = rule if isinstance(rule, tuple) else (rule,)
        if not any(c.accepts(value) for c in alternatives):
            allowed = " or ".join(str(c) for c in alternatives)
            raise ValueError(f"{owner}: {name} must be {allowed}, got {value!r}")


# ------------------------------------------------------------------ scalar arguments of the kernels
# One validator per kind, shared by the Cython wrappers (fastmf/_*.pyx): each returns the value as the
# Python type the C call takes, or raises ValueError "<what><name> must be <rule>, got <value>".
# Bools are never numbers here (True is not an int of 1 thread, nor a regularisation of 1.0).

def check_int(x, name, low=0, high=None, what=""):
    """``x`` as a Python int in ``[low, high]`` (``high`` None: unbounded), else ValueError. Accepts
    anything with ``__index__`` (Python and NumPy ints) except bools."""
    rule = f"an int in [{low}, {high}]" if high is not None else f"an int >= {low}"
    if isinstance(x, (bool, np.bool_)):
        raise ValueError(f"{what}{name} must be {rule}, got {x!r}")
    try:
        v = operator.index(x)
    except TypeError:
        raise ValueError(f"{what}{name} must be {rule}, got {x!r}") from None
    if v < low or (high is not None and v > high):
        raise ValueError(f"{what}{name} must be {rule}, got {v}")
    return v


def check_real(x, name, low=None, low_open=False, what=""):
    """``x`` as a finite Python float (``>= low``, or ``> low`` when ``low_open``), else ValueError.
    Bools, strings and bytes are refused."""
    if isinstance(x, (bool, np.bool_, str, bytes)):
        raise ValueError(f"{what}{name} must be a finite number, got {x!r}")
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise ValueError(f"{what}{name} must be a finite number, got {x!r}") from None
    if not math.isfinite(v):
        raise ValueError(f"{what}{name} must be a finite number, got {x!r}")
    if low is not None and (v < low or (low_open and v == low)):
        raise ValueError(f"{what}{name} must be {'>' if low_open else '>='} {low}, got {x!r}")
    return v


def check_option(x, name, options, what=""):
    """``options[x]`` for a string ``x`` among the keys of the dict ``options`` (e.g. a name -> C
    enum table), else ValueError listing them."""
    if not isinstance(x, str) or x not in options:
        raise ValueError(f"{what}{name} must be one of {', '.join(map(repr, options))}, got {x!r}")
    return options[x]


def check_random_state(random_state):
    """Turn None, an int seed or a Generator into a numpy.random.Generator (a Generator is used as is)."""
    if random_state is None or isinstance(random_state, numbers.Integral):
        return np.random.default_rng(random_state)
    if isinstance(random_state, np.random.Generator):
        return random_state
    raise ValueError(f"random_state must be None, an int or a numpy.random.Generator, got {random_state!r}")


def seed_from(random_state):
    """A uint64 seed for a C kernel's RNG, drawn from ``random_state`` (deterministic for an int)."""
    return int(check_random_state(random_state).integers(0, 2**63 - 1, dtype=np.int64))


def available_cores():
    """Cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


#: the largest ``n_threads`` any model or kernel accepts (a clear ValueError above it: libgomp aborts
#: or crashes when it cannot create tens of thousands of threads)
MAX_THREADS = 1024


def thread_limit():
    """The most OpenMP threads a kernel call starts: the available cores, but at least 8 (more
    threads than cores never speeds these kernels up; results do not depend on the count)."""
    return max(8, available_cores())


def check_threads(x, name="n_threads", what=""):
    """A kernel wrapper's ``n_threads``: an int in [1, MAX_THREADS] (ValueError otherwise),
    clamped to :func:`thread_limit`."""
    return min(check_int(x, name, 1, MAX_THREADS, what=what), thread_limit())


def resolve_n_threads(n_threads):
    """The one place that decides a kernel's thread count: None or -1 -> every available core,
    an int in [1, MAX_THREADS] -> that many, at most :func:`thread_limit` (1 when fastmf was built
    without OpenMP). The count is a property of the run, never of the fitted model."""
    from fastmf import _csr

    if n_threads is None or n_threads == -1:
        n = available_cores()
    elif isinstance(n_threads, numbers.Integral) and not isinstance(n_threads, bool) \
            and 1 <= n_threads <= MAX_THREADS:
        n = min(int(n_threads), thread_limit())
    else:
        raise ValueError(f"n_threads must be None, -1 or an int in [1, {MAX_THREADS}], got {n_threads!r}")
    return n if _csr.openmp_enabled() else 1


#: the most epochs (sweeps, rounds) a fit may ask for: far beyond any useful fit, and a bound on the
#: time and the history a request can imply
MAX_EPOCHS = 100_000


def total_memory():
    """Physical memory of this machine in bytes, or None when it cannot be told."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):  # pragma: no cover - non-POSIX
        return None


def check_memory(nbytes, what, lower):
    """Refuse a request whose arrays would take ``nbytes`` when that is more than the machine's
    physical memory: :class:`fastmf.errors.ResourceLimitError` naming ``what`` (the request) and
    ``lower`` (the arguments to lower), before anything is allocated."""
    from fastmf.errors import ResourceLimitError

    total = total_memory()
    if total is not None and nbytes > total:
        raise ResourceLimitError(f"{what} would need {_gib(nbytes)} of memory, more than this machine's "
                                 f"{_gib(total)}; lower {lower}", needed=int(nbytes), available=total)


def _gib(n):
    return f"{n / 2**30:,.1f} GiB" if n >= 2**30 else f"{n / 2**20:,.1f} MiB"


def first_true(mask):
    """Position of the first True in a boolean array, or -1."""
    pos = np.flatnonzero(mask)
    return int(pos[0]) if pos.size else -1


def show(value):
    """repr of a value for an error message, with NumPy scalars shown as plain Python values."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def check_kernel_array(x, name, dtype, ndim, writeable=False, what=""):
    """``x`` itself when it is a C-contiguous ndarray of ``dtype`` and ``ndim`` dimensions (and
    writeable when asked), else ValueError: the kernels' wrappers never copy a large array behind
    the caller's back. ``what`` prefixes the message (e.g. the function's name)."""
    if not isinstance(x, np.ndarray):
        raise ValueError(f"{what}{name} must be a numpy.ndarray, got {type(x).__name__}")
    if x.ndim != ndim:
        raise ValueError(f"{what}{name} must be {ndim}-D, got shape {x.shape}")
    if x.dtype != dtype:
        raise ValueError(f"{what}{name} must have dtype {np.dtype(dtype)}, got {x.dtype} "
                         f"(convert once with np.ascontiguousarray({name}, dtype=np.{np.dtype(dtype)}))")
    if not x.flags.c_contiguous:
        raise ValueError(f"{what}{name} must be C-contiguous (use np.ascontiguousarray)")
    if writeable and not x.flags.writeable:
        raise ValueError(f"{what}{name} is read-only; it is updated in place and must be writeable")
    return x


def check_row_matrix(x, name, dtypes, writeable=False):
    """``x`` itself when it is a 2-D ndarray of one of ``dtypes`` whose rows are contiguous (C
    order, or a row-padded view such as ``buf[:, :k]``), and writeable when asked; else ValueError.
    The factor kernels read such arrays through a row stride (:func:`row_stride`)."""
    if not isinstance(x, np.ndarray):
        raise ValueError(f"{name} must be a numpy.ndarray, got {type(x).__name__}")
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {x.shape}")
    if x.dtype not in dtypes:
        allowed = " or ".join(str(np.dtype(d)) for d in dtypes)
        raise ValueError(f"{name} must have dtype {allowed}, got {x.dtype}")
    size = x.itemsize
    rows_ok = x.shape[1] <= 1 or x.shape[0] == 0 or x.strides[1] == size
    stride_ok = (x.shape[0] <= 1 or x.shape[1] == 0
                 or (x.strides[0] >= x.shape[1] * size and x.strides[0] % size == 0))
    if not (rows_ok and stride_ok):
        raise ValueError(f"{name} must have contiguous rows (C order, or a row-padded view "
                         f"buf[:, :k]), got strides {x.strides}")
    if writeable and not x.flags.writeable:
        raise ValueError(f"{name} is read-only; it is updated in place and must be writeable")
    return x


def row_stride(x):
    """Row stride of an array accepted by :func:`check_row_matrix`, in elements."""
    if x.shape[0] <= 1 or x.shape[1] == 0:
        return x.shape[1]
    return x.strides[0] // x.itemsize
