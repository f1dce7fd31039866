"""Every exception and warning type fastmf raises or emits, in one place.

Each is also reachable where it was first defined (``fastmf.persistence.ModelFileError``,
``fastmf.base.NotFittedError``...): those names are these same classes.
"""

from __future__ import annotations

__all__ = ["NotFittedError", "UnknownUserWarning", "DuplicateRatingsWarning", "MissingTimestampsWarning",
           "DataError", "ParseError", "UnverifiedDownloadWarning", "DatasetNotFoundError", "ModelFileError", "DivergenceError", "EvaluationWarning",
           "MatplotlibMissingError", "UserError", "UnknownModelError", "ModelUnavailableError",
           "UnknownIdError", "DataSpecError", "OptionError", "CapabilityError", "TitleSearchError",
           "ResourceLimitError", "ArgumentTypeError", "WorkerLostError"]


# ------------------------------------------------------------------------------------------- models
class NotFittedError(ValueError, AttributeError):
    """Raised when a model is used before ``fit``."""


class UnknownUserWarning(UserWarning):
    """Kept for compatibility: fastmf no longer warns about unknown users. ``recommend`` raises
    KeyError for them, or gives the fallback ranking with ``unknown="fallback"``."""


class ResourceLimitError(ValueError):
    """A request that would need more memory than this machine has (a fit with too many factors
    for its data, a top-n list for too many users at once...), refused before anything is
    allocated: ``needed`` and ``available`` are in bytes, and the message names the arguments that
    set the size."""

    def __init__(self, message: str, needed: int = 0, available: int = 0) -> None:
        super().__init__(message)
        self.needed = needed
        self.available = available


class ArgumentTypeError(ValueError, TypeError):
    """An argument of the wrong type (``fit`` given something that is not a Ratings): a
    ValueError like every bad input fastmf refuses, and a TypeError as before."""


class DivergenceError(FloatingPointError):
    """Training produced non-finite values (the learning rate is too large for the data)."""


class WorkerLostError(RuntimeError):
    """A distributed fit (:func:`fastmf.distributed.fit`) lost workers and could not recompute what
    they held; the model was left unfitted rather than trained on part of the data."""


# --------------------------------------------------------------------------------------------- data
class DuplicateRatingsWarning(UserWarning):
    """Repeated (user, item) pairs were resolved by the ``duplicates`` policy; the message gives the
    count, the policy and the first repeat."""


class MissingTimestampsWarning(UserWarning):
    """Some lines of a rating file have an empty timestamp field: the file's timestamps were dropped."""


class DataError(ValueError):
    """Bad input data or a bad argument to the data layer (readers, :class:`~fastmf.Ratings`
    constructors, id maps, splits, MovieLens loading and downloads): the message names the file and
    line, or the argument (and position) and what is allowed."""


class UnverifiedDownloadWarning(UserWarning):
    """A download was accepted on the strength of a checksum published by the same server
    (``trust_server_checksum=True``), not a digest pinned in fastmf or given as ``checksum=``."""


class ParseError(DataError):
    """A malformed line of a rating file: ``line`` (1-based), ``field`` (1-based, 0 for a field-count
    error) and ``reason`` (one of ``fastmf._parse.REASONS``) describe where and why."""

    def __init__(self, message: str, line: int, field: int, reason: str) -> None:
        super().__init__(message)
        self.line = line
        self.field = field
        self.reason = reason


class DatasetNotFoundError(FileNotFoundError):
    """A MovieLens set is neither in any searched folder nor downloadable; the message lists the
    folders searched and where to put the files.

    ``dataset`` is the set's name; ``reason`` says why the search ended: ``"offline"`` (not found
    locally, ``download=False``), ``"download_failed"`` (not found locally, and the download failed:
    ``detail`` holds the network error), or None (a folder given as ``path=`` lacks the files).
    """

    def __init__(self, message: str, *, dataset: str | None = None, reason: str | None = None,
                 detail: str | None = None) -> None:
        super().__init__(message)
        self.dataset = dataset
        self.reason = reason
        self.detail = detail


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


# -------------------------------------------------- the service layer (fastmf.app.service) and its fronts
# Each is a UserError: the command line prints it as one line. Each carries the values it is about
# as attributes, so another front (the web page) can phrase its own message.
class UnknownModelError(UserError, KeyError):
    """A model name that is not one of the registry's presets; ``name`` and ``known`` (the names)."""

    def __init__(self, message: str, name: str = "", known: tuple = ()) -> None:
        super().__init__(message)
        self.name = name
        self.known = tuple(known)

    def __str__(self) -> str:  # a KeyError would quote its message
        return str(self.args[0]) if self.args else ""


class ModelUnavailableError(UnknownModelError):
    """A registered model name whose class (or preset) this version of fastmf cannot provide."""


class UnknownIdError(UserError, KeyError):
    """A raw user or item id the model does not know (or that cannot be one of its ids): ``kind``
    (``"user"`` or ``"item"``) and ``id``."""

    def __init__(self, message: str, kind: str = "", id: object = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.id = id

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class DataSpecError(UserError, FileNotFoundError):
    """A data spec (a MovieLens name, a folder, a file) that resolves to no data; ``spec``."""

    def __init__(self, message: str, spec: str = "") -> None:
        super().__init__(message)
        self.spec = spec


class OptionError(UserError, ValueError):
    """An option (or parameter) that does not apply to the model or the command, or a malformed
    one; ``option`` names it."""

    def __init__(self, message: str, option: str = "") -> None:
        super().__init__(message)
        self.option = option


class CapabilityError(UserError, TypeError):
    """The model cannot do what was asked (similar items without factors, a learning curve without
    a training history); ``needs`` is the registry tag or attribute it lacks."""

    def __init__(self, message: str, needs: str = "") -> None:
        super().__init__(message)
        self.needs = needs


class TitleSearchError(UserError, LookupError):
    """A title search that matched no item or several: ``query`` and ``matches`` (a list of
    ``(raw id, title)``, empty when nothing matched)."""

    def __init__(self, message: str, query: str = "", matches: list | None = None) -> None:
        super().__init__(message)
        self.query = query
        self.matches = list(matches or ())
