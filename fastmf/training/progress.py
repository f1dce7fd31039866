"""Progress bars of fastmf: one place, on top of tqdm.

``fit(..., progress=...)`` of the iterative models and the command line (training, ``recommend
--all``) all draw through :func:`epoch_bar` / :func:`progress_bar`, so a bar looks the same from the
API and the CLI. ``progress`` is False (default of the API: the library prints nothing), True (always
draw on stderr) or ``"auto"`` (draw only when stderr is a terminal: bars at a terminal, nothing in
pipes and log files; what the CLI uses).

tqdm is a runtime dependency: it is what Python users in this field already have installed (every
notebook stack pulls it in), it is small, pure Python, and has no dependencies of its own.
"""

from __future__ import annotations

import math
import os
import sys
from typing import Any, Mapping, Optional, TextIO, Union

ProgressArg = Union[bool, str, None]

# history keys not shown in the bar's postfix (bookkeeping, or a near-duplicate of a shown one)
_HIDDEN = ("epoch", "iteration", "seconds", "eval_mae")


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def wants_bar(progress: ProgressArg, stream: Optional[TextIO] = None) -> bool:
    """Whether ``progress`` asks for a bar on ``stream`` (default stderr); ValueError for a value
    other than True, False, None or "auto"."""
    if progress is None or progress is False:
        return False
    if progress is True:
        return True
    if progress == "auto":
        return _isatty(sys.stderr if stream is None else stream)
    raise ValueError(f"progress must be True, False or 'auto', got {progress!r}")


def progress_bar(progress: ProgressArg, total: Optional[int], desc: str, unit: str,
                 stream: Optional[TextIO] = None, bar_format: Optional[str] = None) -> Any:
    """A ``tqdm`` bar on ``stream`` (stderr) when :func:`wants_bar` says so, else None."""
    stream = sys.stderr if stream is None else stream
    if not wants_bar(progress, stream):
        return None
    from tqdm import tqdm

    # a pseudo-terminal without a size (script(1) off a terminal, CI) reports 0 x 0, with which tqdm
    # draws nothing (it hides bars below the screen's last row): assume 80 x 24 there
    sized = {}
    try:
        size = os.get_terminal_size(stream.fileno())
        if size.columns <= 0 or size.lines <= 0:
            sized = {"ncols": 80, "nrows": 24}
    except (AttributeError, OSError, ValueError):
        sized = {"ncols": 80, "nrows": 24}
    return tqdm(total=total, desc=desc, unit=unit, file=stream, leave=True, dynamic_ncols=not sized,
                mininterval=0.1, bar_format=bar_format, **sized)


def _number(value: float) -> str:
    return f"{value:.4f}" if abs(value) < 1e4 else f"{value:.4g}"


def entry_metrics(entry: Mapping[str, Any], limit: Optional[int] = None) -> dict:
    """The numbers of a ``history_`` entry worth showing, formatted (4 decimals; 4 significant
    digits from 10,000 on): every finite number other than ``epoch``, ``seconds`` and
    ``eval_mae``, in the entry's order; at most ``limit`` of them."""
    out = {}
    for key, value in entry.items():
        if key in _HIDDEN or isinstance(value, bool):
            continue
        if isinstance(value, (int, float)) and math.isfinite(value):
            out[key] = _number(value)
        if limit is not None and len(out) == limit:
            break
    return out


def format_entry(entry: Mapping[str, Any], total: Optional[int]) -> str:
    """One plain line for an epoch: ``epoch 3/20  train_rmse 0.9123  eval_rmse 0.9345  0.01 s``
    (the log line of ``verbose`` fits and of ``fastmf train --verbose`` off a terminal)."""
    done = entry.get("epoch", entry.get("iteration", "?"))
    head = f"epoch {done}/{total}" if total is not None else f"epoch {done}"
    parts = [head] + [f"{k} {v}" for k, v in entry_metrics(entry).items()]
    if "seconds" in entry:
        parts.append(f"{entry['seconds']:.2f} s")
    return "  ".join(parts)


# "epoch 12/40 |###       | 00:01, train_rmse=0.8812, eval_rmse=0.9301" (fits 80 columns)
EPOCH_FORMAT = "{desc} {n_fmt}/{total_fmt} |{bar:10}| {elapsed}{postfix}"


class EpochBar:
    """A fit callback drawing one bar step per epoch with the entry's metrics as the postfix. It
    never stops training (returns None). :meth:`close` ends the bar."""

    def __init__(self, bar: Any) -> None:
        self.bar = bar

    def __call__(self, model: Any, entry: Mapping[str, Any]) -> None:
        # the line must fit 80 columns: the first two metrics (the train one, then the eval one)
        self.bar.set_postfix(entry_metrics(entry, limit=2), refresh=False)
        self.bar.update(1)
        return None

    def close(self) -> None:
        self.bar.close()


def epoch_bar(progress: ProgressArg, total: Optional[int], desc: str = "epoch",
              stream: Optional[TextIO] = None) -> Optional[EpochBar]:
    """The :class:`EpochBar` of a fit of ``total`` epochs, or None when no bar is wanted."""
    bar = progress_bar(progress, total, desc, "epoch", stream, bar_format=EPOCH_FORMAT)
    return None if bar is None else EpochBar(bar)
