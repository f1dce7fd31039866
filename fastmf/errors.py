"""Every exception and warning type fastmf raises or emits, in one place.

Each is also reachable where it was first defined (``fastmf.persistence.ModelFileError``,
``fastmf.base.NotFittedError``...): those names are these same classes.
"""

from __future__ import annotations

__all__ = ["NotFittedError", "UnknownUserWarning", "DuplicateRatingsWarning", "MissingTimestampsWarning",
           "ParseError", "DatasetNotFoundError", "ModelFileError", "DivergenceError", "EvaluationWarning",
           "MatplotlibMissingError", "UserError"]


# ------------------------------------------------------------------------------------------- models
class NotFittedError(ValueError, AttributeError):
    """Raised when a model is used before ``fit``."""


class UnknownUserWarning(UserWarning):
    """Kept for compatibility: fastmf no longer warns about unknown users. ``recommend`` raises
    KeyError for them, or gives the fallback ranking with ``unknown="fallback"``."""


class DivergenceError(FloatingPointError):
    """Training produced non-finite values (the learning rate is too large for the data)."""


# --------------------------------------------------------------------------------------------- data
class DuplicateRatingsWarning(UserWarning):
    """Repeated (user, item) pairs were resolved by the ``duplicates`` policy; the message gives the
    count, the policy and the first repeat."""


class MissingTimestampsWarning(UserWarning):
    """Some lines of a rating file have an empty timestamp field: the file's timestamps were dropped."""


class ParseError(ValueError):
    """A malformed line of a rating file: ``line`` (1-based), ``field`` (1-based, 0 for a field-count
    error) and ``reason`` (one of ``fastmf._parse.REASONS``) describe where and why."""

    def __init__(self, message: str, line: int, field: int, reason: str) -> None:
        super().__init__(message)
        self.line = line
        self.field = field
        self.reason = reason


class DatasetNotFoundError(FileNotFoundError):
    """A MovieLens set is neither in any searched folder nor downloadable; the message lists the
    folders searched and where to put the files."""


# ------------------------------------------------------------------------------------- files, tools
class ModelFileError(ValueError):
    """A model file cannot be read: not a fastmf model, truncated or corrupted, from a newer format,
    or inconsistent. The message names the file and the problem."""


class EvaluationWarning(UserWarning):
    """The evaluation is probably not what was meant: the test ratings overlap the model's training
    data, look like another data set (ratings outside the model's scale, most ids unknown to the
    model while some collide), or are all unknown to the model."""


class MatplotlibMissingError(ImportError):
    """matplotlib is not installed; install the plot extra: ``pip install 'fastmf[plot]'``."""


class UserError(Exception):
    """A mistake the user can fix; the command line reports it as one line, no traceback."""
