"""Model files: :func:`save_model` writes a fitted model to one ``.npz`` file, :func:`load_model`
reads it back. No pickle is involved at any point.

File format ("fastmf-model", format version 2; version 1 files are read too)
----------------------------------------------
A zip archive of ``.npy`` members (what :func:`numpy.savez` writes, readable with
``numpy.load(path, allow_pickle=False)``); numeric members are stored uncompressed (fast to write
and read; factors do not compress), string members (the manifest, string ids, titles) deflated:

``__manifest__``
    a 0-d unicode array holding a JSON object::

        {"format": "fastmf-model", "format_version": 2, "fastmf_version": "...",
         "numpy_version": "...", "model": "mf", "class": "fastmf.models.mf.MatrixFactorization",
         "params": {...constructor arguments...}, "notes": [...],
         "attributes": {"user_factors_": {"kind": "array", "arrays": {"user_factors_":
                        {"dtype": "<f4", "shape": [943, 100]}}, "layout": "aligned64", ...}, ...}}

one member per array of the fitted state
    named after the attribute (``user_factors_``, ``seen_indptr_``, ``user_map_``) or, for metadata,
    ``item_info_/ids`` and ``item_info_/col0``, ``item_info_/col1``... (column names in the manifest).
    Only numeric, boolean and fixed-width string dtypes: never object arrays.

``model`` is the model's key in :mod:`fastmf.models.registry`, the only thing that decides which class
is built (``class`` is information for people; format 1 stored only ``class``, as "module.qualname"
of fastmf 0.1, which the registry entries' ``legacy_classes`` map to keys). The fitted state is what
the registry entry declares: the public ``*_`` attributes (the scikit-learn convention), each with
its kind, dtype and shape; ``save`` and ``load`` run the same check against that declaration, so a
model that saves is a model that loads. Each value is stored by kind:

========== ====================================================== =================================
kind       value                                                  stored as
========== ====================================================== =================================
none       ``None``                                               manifest
scalar     bool, int, float, str or a NumPy scalar                manifest (JSON; NumPy dtype kept)
tuple      tuple of scalars (``rating_scale_``)                   manifest
list       list of scalars                                        manifest
records    list of dicts of scalars (``history_``)                manifest
array      ndarray (any non-object dtype)                         one member
idmap      :class:`fastmf.data.IdMap` (int64 or unicode ids)      one member
metadata   :class:`fastmf.data.Metadata`                          ids + one member per column
========== ====================================================== =================================

Floats in the manifest are written with Python's shortest round-trip ``repr``, so they come back
bit-identical; non-finite ones are written as ``{"float": "nan"}`` (strict JSON). 2-D float arrays
held in row-padded, 64-byte aligned buffers (the factors ``fit`` trains, see
:func:`fastmf._sgd.aligned_factors`) are marked ``"layout": "aligned64"`` and re-created the same way
on load: the SGD kernels are fastest on that layout, and keeping each array's row stride keeps
predictions bit-identical (a BLAS product may round differently with another stride). Arrays that
were read-only (the seen-items CSR shared with the training data) are marked ``"readonly": true``
and come back read-only. A ``numpy.random.Generator`` given as ``random_state`` cannot be written: the file stores ``None``
and says so in ``notes``; a NumPy dtype given as ``dtype`` is stored by name (``"float32"``).

Loading validates everything before building the model: the archive, the manifest, the model (a
registry key, never an arbitrary import), the parameters (with the model's own constraints; names
an older version used are mapped through the class's ``_renamed_params``), every member's presence,
dtype and shape against the manifest, the state against the registry's declaration (every array's
dtype and shape in n_users, n_items, k... sizes) and against itself (the seen-items CSR structure,
counts, finiteness of float arrays). Any problem
raises :class:`ModelFileError` (a ``ValueError``) naming the file and what is wrong.
"""

from __future__ import annotations

import contextlib
import json
import math
import numbers
import os
import re
import struct
import time
import zipfile
import zlib
from typing import TYPE_CHECKING, Any, Dict, Optional, Union

import numpy as np

from fastmf.errors import ModelFileError
from fastmf.models import registry

if TYPE_CHECKING:  # pragma: no cover - fastmf.base is imported where a model is saved or built
    from fastmf.models.base import Recommender

__all__ = ["save_model", "load_model", "load", "read_manifest", "ModelFileError",
           "FORMAT_NAME", "FORMAT_VERSION", "DEFAULT_MAX_BYTES"]

FORMAT_NAME = "fastmf-model"
#: the newest format this fastmf writes and reads
FORMAT_VERSION = 2
MANIFEST = "__manifest__"

# member timestamps are fixed so that the same model always gives the same bytes
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_ALLOWED_KINDS = "biufcUSmM"  # numeric, bool, fixed-width strings, datetimes: never object/void
_SCALAR_DTYPE_KINDS = "biuf"




# ====================================================================== saving
def save_model(model: Recommender, path: Union[str, os.PathLike[str]]) -> str:
    """Write a fitted fastmf model to ``path`` as one ``.npz`` file, atomically.

    Parameters
    ----------
    model : fastmf.base.Recommender
        A fitted model of one of fastmf's own classes (``MatrixFactorization``, ``Biases``...).
    path : str or os.PathLike
        Destination, used exactly as given (no ``.npz`` is appended; the conventional suffix is
        ``.npz``). An existing file there is replaced.

    Returns
    -------
    str
        The path written.

    Notes
    -----
    The file is first written to a temporary file in the destination folder, flushed and
    ``fsync``-ed, then moved onto ``path`` with :func:`os.replace` (atomic on POSIX and Windows).
    If anything fails, the temporary file is removed and a previous file at ``path`` is left
    untouched, so a crash never leaves a half-written model. See the module docstring for the
    format.

    Raises
    ------
    fastmf.base.NotFittedError
        The model has not been fitted.
    ValueError
        The model is not a fastmf model class, or holds state that cannot be written without pickle
        (the message names the attribute or parameter).
    """
    from fastmf.models.base import NotFittedError, Recommender

    if not isinstance(model, Recommender):
        raise ValueError(f"save_model expects a fitted fastmf model, got {type(model).__name__}")
    model._check_fitted()
    try:
        entry = registry.for_class(type(model))
    except KeyError as exc:
        raise ValueError(f"cannot save a {type(model).__name__}: {exc.args[0]}; only fastmf's registered "
                         "model classes can be saved") from None
    fitted = _fitted_attributes(model)
    if not fitted:  # pragma: no cover - _check_fitted guarantees user_map_
        raise NotFittedError(f"this {type(model).__name__} has no fitted state to save")
    # the very checks load_model runs (the declared state, then finiteness, bounds, the seen-items
    # CSR and counts): a model that saves is a model that loads
    _check_consistency("cannot save this model", entry, model.get_params(), fitted, error=ValueError)

    notes: list = []
    params = {name: _encode_param(name, value, notes) for name, value in model.get_params().items()}
    try:  # load_model rebuilds the model from them with the same check
        model._validate_params()
    except ValueError as exc:
        raise ValueError(f"cannot save this model: invalid parameters: {exc}") from None
    arrays: dict = {}
    attributes = {}
    for name, value in fitted.items():
        attributes[name] = _encode_attribute(name, value, arrays)
    manifest = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "fastmf_version": _fastmf_version(),
        "numpy_version": np.__version__,
        "model": entry.key,
        "class": _class_name(type(model)),
        "params": params,
        "notes": notes,
        "attributes": attributes,
    }
    text = json.dumps(manifest, allow_nan=False, ensure_ascii=False)
    members = {MANIFEST: np.array(text)}
    members.update(arrays)

    target = os.fspath(path)
    if isinstance(target, bytes):
        target = os.fsdecode(target)
    if os.path.isdir(target):
        raise ValueError(f"cannot save the model to {target!r}: it is a folder; give a file name")
    folder = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"cannot save the model to {target!r}: folder {folder!r} does not exist")
    _remove_stale_temps(folder, os.path.basename(target))
    tmp, fh = _create_temp(folder, os.path.basename(target))
    try:
        with fh:
            _write_npz(fh, members)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_folder(folder)
    return target


#: a temporary file older than this whose writer cannot be identified is stale (seconds)
_STALE_AFTER = 3600.0


def _remove_stale_temps(folder, base):
    """Delete the temporary files an earlier save of ``base`` left in ``folder`` when its process
    died (``kill -9``, power loss): ``.<base>.<pid>-<random>.tmp`` whose process no longer runs
    (POSIX), or, when that cannot be told (no pid in the name, Windows), older than an hour. Only
    names of exactly this pattern are touched; a save running in another process keeps its file."""
    pattern = re.compile(r"\." + re.escape(base) + r"\.(?:(\d+)-)?[0-9a-f]{12}\.tmp")
    try:
        names = os.listdir(folder)
    except OSError:
        return
    now = time.time()
    for entry in names:
        m = pattern.fullmatch(entry)
        if m is None:
            continue
        path = os.path.join(folder, entry)
        pid = int(m.group(1)) if m.group(1) else None
        if pid is not None and os.name == "posix":
            if pid == os.getpid() or _process_alive(pid):
                continue
        else:
            try:
                if now - os.stat(path).st_mtime < _STALE_AFTER:
                    continue
            except OSError:
                continue
        try:
            os.unlink(path)
        except OSError:  # removed meanwhile, or not ours to remove
            pass


def _process_alive(pid):
    try:
        os.kill(pid, 0)  # POSIX only: signal 0 checks that the process exists
    except ProcessLookupError:
        return False
    except (PermissionError, OSError, OverflowError):
        return True  # exists (another user's), or cannot tell: keep the file
    return True


def _create_temp(folder, base):
    """A new file ``.<base>.<pid>-<random>.tmp`` in ``folder`` opened for binary writing (the pid
    lets a later save tell a dead writer's leftover from a running save's file). Created with
    ``O_EXCL`` and mode 0o666 so the process umask applies (``mkstemp`` would force 0o600 onto the
    final file)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = os.path.join(folder, f".{base}.{os.getpid()}-{os.urandom(6).hex()}.tmp")
        try:
            fd = os.open(tmp, flags, 0o666)
        except FileExistsError:  # pragma: no cover - 48 random bits
            continue
        return tmp, os.fdopen(fd, "wb")
    raise FileExistsError(f"could not create a temporary file in {folder!r}")  # pragma: no cover


def _fsync_folder(folder):
    """Make the rename durable (POSIX); a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platform dependent
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - platform dependent
        pass
    finally:
        os.close(fd)


def _write_npz(fh, members):
    """The .npz layout of :func:`numpy.savez` (one ``NAME.npy`` member per array), written with
    fixed member timestamps and ``allow_pickle=False``. String members are deflated (UTF-32 text
    shrinks 30-80x for milliseconds); numeric members are stored: float factors barely compress
    (about 7%) and deflating them would make saving about 25x slower."""
    with zipfile.ZipFile(fh, "w", allowZip64=True) as zf:
        for key, arr in members.items():
            info = zipfile.ZipInfo(key + ".npy", date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED if arr.dtype.kind in "US" else zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            with zf.open(info, "w", force_zip64=True) as out:
                _write_array(out, arr)


def _write_array(out, arr):
    np.lib.format.write_array(out, arr, allow_pickle=False)


def _fitted_attributes(model):
    return {name: value for name, value in vars(model).items()
            if name.endswith("_") and not name.startswith("_")}


def _class_name(cls):
    return f"{cls.__module__}.{cls.__qualname__}"


def _entry_of(manifest, error):
    """The registry entry a manifest names: its ``model`` key (format 2), or for format 1 the
    ``module.qualname`` that version stored, mapped through the entries' ``legacy_classes``;
    ``error(message)`` builds the exception otherwise. Nothing named in a file is ever imported:
    only registered classes can come out."""
    if manifest["format_version"] >= 2:
        key = manifest.get("model")
        if not isinstance(key, str):
            raise error(f"the manifest's 'model' must be a registry key (a string), got {key!r:.60}")
        try:
            return registry.get(key)
        except KeyError:
            raise error(f"unknown model {key!r} (registered: "
                        f"{', '.join(e.key for e in registry.entries())})") from None
    name = manifest["class"]
    entry = registry.key_of(name)
    if entry is None or entry.key == name:  # format 1 stored class names, never keys
        raise error(f"unknown model class {name!r}")
    return entry


def _fastmf_version():
    from fastmf._version import __version__

    return __version__


def _encode_scalar(value, where):
    """A JSON value for a Python or NumPy scalar: floats keep every bit (shortest round-trip repr);
    non-finite floats become ``{"float": "nan" | "inf" | "-inf"}``."""
    if value is None or isinstance(value, (bool, str)):
        return str(value) if isinstance(value, np.str_) else value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return f if math.isfinite(f) else {"float": repr(f)}
    raise ValueError(f"cannot save {where}: a {type(value).__name__} is not a bool, int, float, str "
                     "or None")


def _is_scalar(value):
    return value is None or isinstance(value, (bool, int, float, str, np.bool_, np.integer, np.floating))


def _encode_param(name, value, notes):
    if isinstance(value, np.random.Generator):
        notes.append(f"parameter {name!r} was a numpy.random.Generator, which cannot be saved; "
                     "stored as None")
        return None
    if isinstance(value, np.dtype) or (isinstance(value, type) and issubclass(value, np.generic)):
        return np.dtype(value).name
    if hasattr(value, "shape") or type(value).__name__ == "Ratings":
        # data passed as a parameter (SVDpp's implicit= matrix): what fit learned from it is in the
        # fitted state; the data itself is not a setting
        notes.append(f"parameter {name!r} held data ({type(value).__name__}), which is not saved; "
                     "stored as None (the fitted state holds what fit learned from it)")
        return None
    return _encode_scalar(value, f"parameter {name!r}")


def _check_array(arr, where):
    if arr.dtype.hasobject or arr.dtype.kind not in _ALLOWED_KINDS:
        raise ValueError(f"cannot save {where}: dtype {arr.dtype} is not supported without pickle "
                         "(numbers, booleans or fixed-width strings only)")


def _spec(arr):
    return {"dtype": arr.dtype.str, "shape": list(arr.shape)}


def _encode_attribute(name, value, arrays):
    """Manifest entry of one fitted attribute; its arrays go into ``arrays``."""
    from fastmf.data.ratings import IdMap, Metadata

    where = f"attribute {name!r}"
    if value is None:
        return {"kind": "none"}
    if isinstance(value, np.ndarray):
        _check_array(value, where)
        arrays[name] = value
        entry = {"kind": "array", "arrays": {name: _spec(value)}}
        if _is_aligned64(value):
            entry["layout"] = "aligned64"
        if not value.flags.writeable:
            entry["readonly"] = True
        return entry
    if _is_scalar(value):
        entry = {"kind": "scalar", "value": _encode_scalar(value, where)}
        if isinstance(value, np.generic):
            entry["dtype"] = value.dtype.str
        return entry
    if isinstance(value, tuple):
        return {"kind": "tuple", "items": [_encode_scalar(v, f"{where}[{j}]") for j, v in enumerate(value)]}
    if isinstance(value, list):
        if value and all(isinstance(v, dict) for v in value):
            records = []
            for j, rec in enumerate(value):
                for key in rec:
                    if not isinstance(key, str):
                        raise ValueError(f"cannot save {where}[{j}]: key {key!r} is not a string")
                records.append({k: _encode_scalar(v, f"{where}[{j}][{k!r}]") for k, v in rec.items()})
            return {"kind": "records", "records": records}
        return {"kind": "list", "items": [_encode_scalar(v, f"{where}[{j}]") for j, v in enumerate(value)]}
    if isinstance(value, IdMap):
        ids = value.ids
        _check_array(ids, where)
        arrays[name] = ids
        return {"kind": "idmap", "arrays": {name: _spec(ids)}}
    if isinstance(value, Metadata):
        ids = value.map.ids
        _check_array(ids, where)
        arrays[f"{name}/ids"] = ids
        specs = {f"{name}/ids": _spec(ids)}
        columns = []
        for j, (col_name, col) in enumerate(value.columns.items()):
            col = _column_for_saving(col, f"{where}, column {col_name!r}")
            key = f"{name}/col{j}"
            arrays[key] = col
            specs[key] = _spec(col)
            columns.append(col_name)
        return {"kind": "metadata", "columns": columns, "arrays": specs}
    raise ValueError(f"cannot save {where}: values of type {type(value).__name__} are not supported "
                     "(arrays, scalars, tuples, lists, lists of dicts, IdMap, Metadata or None)")


def _column_for_saving(col, where):
    """Metadata columns are saved as they are, except object columns of strings, which become
    fixed-width unicode (values unchanged)."""
    if col.dtype.kind == "O":
        if all(isinstance(v, str) for v in col.tolist()):
            return col.astype(str)
        raise ValueError(f"cannot save {where}: an object column must hold only strings")
    _check_array(col, where)
    return col


def _aligned_row_stride(dtype, n_cols):
    """Row stride in bytes of :func:`fastmf._sgd.aligned_factors`: rows padded to 64 bytes."""
    per_line = 64 // dtype.itemsize
    return -(-n_cols // per_line) * per_line * dtype.itemsize


def _is_aligned64(arr):
    """True for a 2-D float32/float64 array laid out like :func:`fastmf._sgd.aligned_factors`
    (64-byte aligned start, rows padded to a multiple of 64 bytes)."""
    return (arr.ndim == 2 and arr.dtype in (np.float32, np.float64) and arr.shape[0] > 1
            and arr.strides[1] == arr.dtype.itemsize
            and arr.strides[0] == _aligned_row_stride(arr.dtype, arr.shape[1])
            and arr.ctypes.data % 64 == 0)


# ====================================================================== loading
def load_model(path: Union[str, os.PathLike[str]], max_bytes: Optional[int] = None) -> Recommender:
    """Read a model written by :func:`save_model` (``fastmf.load``).

    Parameters
    ----------
    path : str or os.PathLike
    max_bytes : int, optional
        The most memory the model's arrays may take (their total size once loaded, as the manifest
        declares and the archive confirms): a larger file raises ModelFileError before anything is
        decompressed. None (default): no limit. The command line passes
        :data:`DEFAULT_MAX_BYTES` unless told otherwise. Whatever the limit, every member's
        declared size is checked against the archive before it is read, so a small file cannot
        make the loader allocate more than it declares.

    Returns
    -------
    fastmf.base.Recommender
        A fitted model of the saved class with the saved hyper-parameters; ``predict``,
        ``recommend`` and ``similar_*`` give results identical to the saved model's.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ModelFileError
        (a ValueError) The file is not a fastmf model, is truncated or corrupted, was written by a
        newer fastmf (format version above :data:`FORMAT_VERSION`), names an unknown class, or its
        content is inconsistent (missing or extra entries, wrong dtype or shape, object arrays...).
        The message names the file and the problem. Nothing is ever unpickled.
    """
    name = os.fspath(path)
    limit = _check_max_bytes(max_bytes)
    with _open_npz(name) as npz:
        manifest = _manifest(name, npz)
        entry = _entry_of(manifest, lambda msg: ModelFileError(f"{name}: {msg}"))
        cls = entry.cls
        params = _decode_params(name, cls, manifest)
        _check_declared_sizes(name, npz, manifest["attributes"], limit)
        values = _read_attributes(name, npz, manifest["attributes"])
    _check_consistency(name, entry, params, values)
    model = cls(**params)
    for f in entry.fields:  # optional state an older file lacks is None, as the declaration allows
        if f.optional and f.name not in values:
            values[f.name] = None
    for attr, value in values.items():
        setattr(model, attr, value)
    return model


#: ``fastmf.load``
load = load_model


def read_manifest(path: Union[str, os.PathLike[str]]) -> Dict[str, Any]:
    """The validated manifest of a model file (a dict: format, versions, class, params, notes,
    attributes), without reading the arrays. Raises like :func:`load_model`."""
    name = os.fspath(path)
    with _open_npz(name) as npz:
        manifest = _manifest(name, npz)
    _entry_of(manifest, lambda msg: ModelFileError(f"{name}: {msg}"))
    return manifest


#: the size limit the command line and the service apply by default (``--max-model-bytes``)
DEFAULT_MAX_BYTES = 4 << 30
#: the largest manifest read (its .npy member: UTF-32 JSON); a history of 100,000 epochs is ~40 MB
MAX_MANIFEST_BYTES = 256 << 20
#: the largest .npy header fastmf accepts (numpy writes 64..4096 bytes for these arrays)
_MAX_HEADER = 1 << 16
_READ_CHUNK = 16 << 20
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, zlib.error, ValueError,
               RuntimeError, NotImplementedError, OverflowError, struct.error)


def _check_max_bytes(max_bytes):
    if max_bytes is None:
        return None
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, numbers.Integral) or max_bytes < 0:
        raise ModelFileError(f"max_bytes must be None or an int >= 0, got {max_bytes!r}")
    return int(max_bytes)


class _Archive:
    """A model file's zip archive: its members by name (without ``.npy``), each read only after
    its declared size has been checked against the zip directory."""

    def __init__(self, name, zf):
        self.name, self.zf, self.infos = name, zf, {}
        for info in zf.infolist():
            if not info.filename.endswith(".npy") or info.is_dir():
                raise ModelFileError(f"{name}: not a fastmf model file: unexpected entry "
                                     f"{info.filename!r} in the archive (a fastmf model file holds "
                                     ".npy members only)")
            key = info.filename[:-len(".npy")]
            if key in self.infos:
                raise ModelFileError(f"{name}: entry {key!r} appears twice in the archive")
            self.infos[key] = info
        self.files = list(self.infos)

    def size(self, key):
        """Uncompressed size of member ``key`` as the zip directory records it."""
        return self.infos[key].file_size

    def header(self, key, expected=None):
        """(shape, fortran_order, dtype) of member ``key`` from its .npy header alone (a few
        hundred bytes decompressed), checked: no pickle, an allowed dtype, the ``expected``
        (dtype, shape) of the manifest when given, and a data size that matches the member's
        size in the zip directory."""
        try:
            with self.zf.open(self.infos[key]) as fh:
                return self._header(fh, key, expected)
        except ModelFileError:
            raise
        except _ZIP_ERRORS as exc:
            raise ModelFileError(f"{self.name}: truncated or corrupted model file (entry {key!r}: "
                                 f"{exc})") from None

    def _header(self, fh, key, expected):
        name, info = self.name, self.infos[key]
        try:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
            elif version in ((2, 0), (3, 0)):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
            else:
                raise ModelFileError(f"{name}: entry {key!r}: unsupported .npy version {version}")
        except (ModelFileError, *_ZIP_ERRORS):
            raise
        except Exception as exc:  # NumPy parses the header's dict literal: a corrupted one raises
            # ValueError, SyntaxError or tokenize.TokenError (not a ValueError) depending on the bytes
            raise ModelFileError(f"{name}: entry {key!r}: corrupted .npy header ({type(exc).__name__}: "
                                 f"{exc})") from None
        header = fh.tell()
        if dtype.hasobject:
            raise ModelFileError(f"{name}: entry {key!r} holds a pickled object array; fastmf "
                                 "model files never contain pickles and are never unpickled")
        if dtype.kind not in _ALLOWED_KINDS or dtype.fields is not None or dtype.subdtype is not None:
            raise ModelFileError(f"{name}: entry {key!r}: dtype {dtype} is not allowed in a model file")
        if expected is not None:
            want_dtype, want_shape = expected
            if dtype != want_dtype:
                raise ModelFileError(f"{name}: entry {key!r} has dtype {dtype}, the manifest says "
                                     f"{want_dtype}")
            if tuple(shape) != tuple(want_shape):
                raise ModelFileError(f"{name}: entry {key!r} has shape {tuple(shape)}, the manifest "
                                     f"says {tuple(want_shape)}")
        nbytes = math.prod(shape) * dtype.itemsize
        if header > _MAX_HEADER or header + nbytes != info.file_size:
            raise ModelFileError(f"{name}: entry {key!r} declares {dtype} {tuple(shape)} ({nbytes} "
                                 f"bytes) but the archive holds {info.file_size - header} bytes "
                                 "of data for it (truncated or corrupted model file)")
        return tuple(shape), fortran, dtype

    def read(self, key, expected=None, max_bytes=None):
        """Member ``key`` as an array in native byte order: its .npy header is read and checked
        (:meth:`header`; at most ``max_bytes`` of data) before the array is allocated; then its
        data, in chunks."""
        name, info = self.name, self.infos[key]
        try:
            with self.zf.open(info) as fh:
                shape, fortran, dtype = self._header(fh, key, expected)
                count = math.prod(shape)
                nbytes = count * dtype.itemsize
                if max_bytes is not None and nbytes > max_bytes:
                    raise ModelFileError(f"{name}: entry {key!r} is {nbytes} bytes, above the limit of "
                                         f"{max_bytes}")
                flat = np.empty(count, dtype=dtype)
                buf = flat.view(np.uint8)
                done = 0
                while done < nbytes:
                    chunk = fh.read(min(_READ_CHUNK, nbytes - done))
                    if not chunk:
                        raise EOFError(f"the data ends after {done} of {nbytes} bytes")
                    buf[done:done + len(chunk)] = np.frombuffer(chunk, dtype=np.uint8)
                    done += len(chunk)
                if fh.read(1):  # also makes zipfile check the member's CRC
                    raise ModelFileError(f"{name}: entry {key!r} holds data after its array")
        except ModelFileError:
            raise
        except MemoryError:
            raise ModelFileError(f"{name}: entry {key!r} does not fit in memory ({info.file_size} "
                                 "bytes)") from None
        except _ZIP_ERRORS as exc:
            raise ModelFileError(f"{name}: truncated or corrupted model file (entry {key!r}: "
                                 f"{exc})") from None
        arr = flat.reshape(shape, order="F" if fortran else "C")
        if not arr.dtype.isnative:
            arr = arr.astype(arr.dtype.newbyteorder("="))
        return arr


@contextlib.contextmanager
def _open_npz(name):
    """The :class:`_Archive` of ``name`` (never with pickle), or ModelFileError; closed on exit."""
    with open(name, "rb") as fh:  # FileNotFoundError / IsADirectoryError name the path
        head = fh.read(6)
        if head.startswith(b"\x93NUMPY"):
            raise ModelFileError(f"{name}: not a fastmf model file: it holds a single .npy array, "
                                 "not an .npz archive")
        if not head.startswith(b"PK\x03\x04"):
            what = "the file is empty" if not head else "it is not an .npz (zip) archive"
            raise ModelFileError(f"{name}: not a fastmf model file: {what}")
        fh.seek(0)
        try:
            zf = zipfile.ZipFile(fh)
        except _ZIP_ERRORS as exc:
            raise ModelFileError(f"{name}: truncated or corrupted model file (unreadable zip "
                                 f"archive: {exc})") from None
        with zf:
            yield _Archive(name, zf)


def _read_member(name, npz, key, expected=None, max_bytes=None):
    """``npz[key]`` in native byte order, or ModelFileError."""
    return npz.read(key, expected, max_bytes)


def _manifest(name, npz):
    if MANIFEST not in npz.files:
        raise ModelFileError(f"{name}: not a fastmf model file: the archive has no {MANIFEST!r} entry "
                             f"(entries: {sorted(npz.files)[:8]})")
    if npz.size(MANIFEST) > MAX_MANIFEST_BYTES:
        raise ModelFileError(f"{name}: the manifest is {npz.size(MANIFEST)} bytes, above the limit of "
                             f"{MAX_MANIFEST_BYTES} (not a model fastmf wrote)")
    arr = _read_member(name, npz, MANIFEST, max_bytes=MAX_MANIFEST_BYTES)
    if arr.dtype.kind != "U" or arr.ndim != 0:
        raise ModelFileError(f"{name}: the manifest must be a 0-d unicode array, got dtype {arr.dtype} "
                             f"and shape {arr.shape}")
    try:
        man = json.loads(str(arr[()]), parse_constant=_refuse_constant)
    except RecursionError:
        raise ModelFileError(f"{name}: the manifest is nested too deeply to be a fastmf manifest "
                             "(corrupted or hostile file)") from None
    except ValueError as exc:
        raise ModelFileError(f"{name}: the manifest is not valid JSON ({exc})") from None
    if not isinstance(man, dict) or man.get("format") != FORMAT_NAME:
        raise ModelFileError(f"{name}: not a fastmf model file (manifest format "
                             f"{man.get('format') if isinstance(man, dict) else man!r:.60}, expected "
                             f"{FORMAT_NAME!r})")
    version = man.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ModelFileError(f"{name}: invalid format_version {version!r} (a positive int)")
    if version > FORMAT_VERSION:
        raise ModelFileError(f"{name}: written by a newer fastmf (format {version}, fastmf "
                             f"{man.get('fastmf_version', '?')}); this fastmf {_fastmf_version()} reads "
                             f"format <= {FORMAT_VERSION}: upgrade fastmf")
    for key, kind in (("class", str), ("params", dict), ("attributes", dict)):
        if not isinstance(man.get(key), kind):
            raise ModelFileError(f"{name}: the manifest's {key!r} is missing or not a {kind.__name__}")
    if not isinstance(man.get("notes", []), list):
        raise ModelFileError(f"{name}: the manifest's 'notes' is not a list")
    expected = {MANIFEST}
    for attr, entry in man["attributes"].items():
        _check_entry(name, attr, entry)
        expected.update(entry.get("arrays", {}))
    present = set(npz.files)
    missing = sorted(expected - present)
    if missing:
        raise ModelFileError(f"{name}: missing entr{'y' if len(missing) == 1 else 'ies'} {missing} "
                             "(truncated or corrupted model file)")
    extra = sorted(present - expected)
    if extra:
        raise ModelFileError(f"{name}: unexpected entr{'y' if len(extra) == 1 else 'ies'} {extra} not "
                             "described by the manifest")
    return man


_KINDS = ("none", "scalar", "tuple", "list", "records", "array", "idmap", "metadata")


def _refuse_constant(token):
    """json.loads hook: NaN / Infinity are not JSON (fastmf writes {"float": "nan"})."""
    raise ValueError(f"{token} is not a JSON value")


def _check_declared_sizes(name, npz, attributes, max_bytes):
    """Before any array's data is read: each member's .npy header (only the header is
    decompressed) agrees with the manifest's dtype and shape, and its data size with the member's
    size in the zip directory; the declared total is at most ``max_bytes``. ModelFileError
    otherwise."""
    total = 0
    for attr, entry in attributes.items():
        for key, spec in entry.get("arrays", {}).items():
            dtype, shape = _spec_dtype_shape(name, key, spec)
            npz.header(key, (dtype, shape))
            total += math.prod(shape) * dtype.itemsize
    if max_bytes is not None and total > max_bytes:
        raise ModelFileError(f"{name}: the model's arrays take {total} bytes, above the limit of "
                             f"{max_bytes} bytes (pass a larger max_bytes, or --max-model-bytes on the "
                             "command line, if the file is trusted)")


def _check_entry(name, attr, entry):
    """Structure of one manifest attribute entry (values are checked when decoded)."""
    where = f"{name}: attribute {attr!r}"
    if not (isinstance(attr, str) and attr.endswith("_") and not attr.startswith("_")):
        raise ModelFileError(f"{name}: invalid attribute name {attr!r} in the manifest")
    if not isinstance(entry, dict) or entry.get("kind") not in _KINDS:
        kind = entry.get("kind") if isinstance(entry, dict) else entry
        raise ModelFileError(f"{where}: unknown kind {kind!r} (one of {', '.join(_KINDS)})")
    kind = entry["kind"]
    arrays = entry.get("arrays")
    if kind in ("array", "idmap", "metadata"):
        if not isinstance(arrays, dict) or not arrays:
            raise ModelFileError(f"{where}: the manifest lists no arrays")
        if kind in ("array", "idmap") and list(arrays) != [attr]:
            raise ModelFileError(f"{where}: expected one entry named {attr!r}, the manifest lists {list(arrays)}")
        if kind == "metadata":
            cols = entry.get("columns")
            if not isinstance(cols, list) or not all(isinstance(c, str) for c in cols):
                raise ModelFileError(f"{where}: 'columns' must be a list of names")
            keys = [f"{attr}/ids"] + [f"{attr}/col{j}" for j in range(len(cols))]
            if list(arrays) != keys:
                raise ModelFileError(f"{where}: expected entries {keys}, the manifest lists {list(arrays)}")
        for key, spec in arrays.items():
            _spec_dtype_shape(name, key, spec)
    elif arrays is not None:
        raise ModelFileError(f"{where}: kind {kind!r} has no arrays, the manifest lists {list(arrays)}")


def _spec_dtype_shape(name, key, spec):
    if not isinstance(spec, dict):
        raise ModelFileError(f"{name}: entry {key!r}: invalid array description {spec!r}")
    try:
        dtype = np.dtype(spec.get("dtype"))
    except (TypeError, ValueError):
        raise ModelFileError(f"{name}: entry {key!r}: invalid dtype {spec.get('dtype')!r}") from None
    if (dtype.hasobject or dtype.kind not in _ALLOWED_KINDS or dtype.fields is not None
            or dtype.subdtype is not None):
        raise ModelFileError(f"{name}: entry {key!r}: dtype {dtype} is not allowed in a model file "
                             "(object and structured arrays are never stored)")
    shape = spec.get("shape")
    if not (isinstance(shape, list) and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0
                                            for s in shape)):
        raise ModelFileError(f"{name}: entry {key!r}: invalid shape {shape!r}")
    return dtype, tuple(shape)


def _decode_scalar(name, value, where):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict) and list(value) == ["float"] and value["float"] in ("nan", "inf", "-inf"):
        return float(value["float"])
    raise ModelFileError(f"{name}: {where}: invalid value {value!r:.80}")


def _decode_params(name, cls, manifest):
    valid = cls._param_names()
    renamed = getattr(cls, "_renamed_params", {})
    params = {}
    for key, value in manifest["params"].items():
        key = renamed.get(key, key) if key not in valid else key  # files of older versions
        if key in params:
            raise ModelFileError(f"{name}: parameter {key!r} is given twice (under its old and new names)")
        if key not in valid:
            raise ModelFileError(f"{name}: unknown parameter {key!r} for {cls.__name__} (valid: {valid})")
        params[key] = _decode_scalar(name, value, f"parameter {key!r}")
    threads = getattr(cls, "_constraints", {}).get("n_threads")
    if "n_threads" in params and threads is not None:
        # how many threads to run on is the machine's business, not the model's: a count this
        # fastmf does not accept (another machine's, or an older fastmf's up to 65536) loads as None
        rules = threads if isinstance(threads, tuple) else (threads,)
        if not any(rule.accepts(params["n_threads"]) for rule in rules):
            params["n_threads"] = None
    try:
        cls(**params)._validate_params()
    except (ValueError, TypeError) as exc:
        raise ModelFileError(f"{name}: invalid parameters for {cls.__name__}: {exc}") from None
    return params


def _read_attributes(name, npz, attributes):
    from fastmf.data.ratings import IdMap, Metadata

    values = {}
    for attr, entry in attributes.items():
        kind = entry["kind"]
        where = f"attribute {attr!r}"
        arrays = {}
        for key, spec in entry.get("arrays", {}).items():
            dtype, shape = _spec_dtype_shape(name, key, spec)
            arr = _read_member(name, npz, key, (dtype, shape), math.prod(shape) * dtype.itemsize)
            arrays[key] = arr
        try:
            if kind == "none":
                values[attr] = None
            elif kind == "scalar":
                values[attr] = _decode_scalar_attr(name, entry, where)
            elif kind in ("tuple", "list"):
                items = entry.get("items")
                if not isinstance(items, list):
                    raise ModelFileError(f"{name}: {where}: 'items' must be a list")
                dec = [_decode_scalar(name, v, f"{where}[{j}]") for j, v in enumerate(items)]
                values[attr] = tuple(dec) if kind == "tuple" else dec
            elif kind == "records":
                values[attr] = _decode_records(name, entry, where)
            elif kind == "array":
                values[attr] = _restore_array(name, attr, entry, arrays[attr])
            elif kind == "idmap":
                ids = arrays[attr]
                _check_ids(name, attr, ids)
                values[attr] = IdMap(ids)
            else:  # metadata
                ids = arrays[f"{attr}/ids"]
                _check_ids(name, f"{attr}/ids", ids)
                cols = {c: arrays[f"{attr}/col{j}"] for j, c in enumerate(entry["columns"])}
                if len(cols) != len(entry["columns"]):
                    raise ModelFileError(f"{name}: {where}: repeated column names {entry['columns']}")
                values[attr] = Metadata(ids, cols)
        except ModelFileError:
            raise
        except ValueError as exc:  # IdMap (duplicate ids) / Metadata (column lengths)
            raise ModelFileError(f"{name}: {where}: {exc}") from None
    return values


def _decode_scalar_attr(name, entry, where):
    value = _decode_scalar(name, entry.get("value"), where)
    if "dtype" not in entry:
        return value
    try:
        dtype = np.dtype(entry["dtype"])
    except (TypeError, ValueError):
        raise ModelFileError(f"{name}: {where}: invalid dtype {entry['dtype']!r}") from None
    if dtype.kind not in _SCALAR_DTYPE_KINDS or isinstance(value, (str, type(None))):
        raise ModelFileError(f"{name}: {where}: invalid NumPy scalar {value!r} of dtype {dtype}")
    try:
        return dtype.type(value)
    except (OverflowError, ValueError, TypeError):
        raise ModelFileError(f"{name}: {where}: {value!r} does not fit dtype {dtype}") from None


def _decode_records(name, entry, where):
    records = entry.get("records")
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise ModelFileError(f"{name}: {where}: 'records' must be a list of objects")
    return [{k: _decode_scalar(name, v, f"{where}[{j}][{k!r}]") for k, v in rec.items()}
            for j, rec in enumerate(records)]


def _restore_array(name, attr, entry, arr):
    if entry.get("layout") == "aligned64":
        if arr.ndim != 2 or arr.dtype not in (np.float32, np.float64):
            raise ModelFileError(f"{name}: entry {attr!r}: the aligned layout needs a 2-D float32/float64 "
                                 f"array, got {arr.dtype} with {arr.ndim} dimension(s)")
        from fastmf import _sgd

        out = _sgd.aligned_factors(arr.shape[0], arr.shape[1], arr.dtype)
        out[...] = arr
        arr = out
    elif entry.get("layout") is not None:
        raise ModelFileError(f"{name}: entry {attr!r}: unknown layout {entry['layout']!r}")
    if entry.get("readonly", False):
        arr.flags.writeable = False
    return arr


def _check_ids(name, key, ids):
    if ids.ndim != 1 or not (ids.dtype == np.int64 or ids.dtype.kind == "U"):
        raise ModelFileError(f"{name}: entry {key!r}: ids must be a 1-D int64 or unicode array, got "
                             f"dtype {ids.dtype} and shape {ids.shape}")


def _check_consistency(name, entry, params, values, error=ModelFileError):
    """The declared state (:func:`fastmf.models.registry.check_state`: kinds, dtypes, shapes,
    finite and bounded floats, scalar bounds), then what a declaration cannot say: a valid
    seen-items CSR, counts that add up. ``save`` runs it too (``error=ValueError``)."""

    def fail(msg):
        raise error(f"{name}: {msg}")

    try:
        registry.check_state(entry, params, values)
        model_check = getattr(entry.cls, "_check_state", None)  # a model's own invariants, if any
        if model_check is not None:
            model_check(values)
    except ValueError as exc:
        fail(str(exc))
    sizes = {"user": values["n_users_"], "item": values["n_items_"]}
    for attr, value in values.items():
        if isinstance(value, np.ndarray) and value.dtype.kind in "fc":
            bad = np.flatnonzero(~np.isfinite(value.reshape(-1)))
            if bad.size:
                pos = np.unravel_index(bad[0], value.shape)
                fail(f"{attr}{list(map(int, pos))} = {value[pos]} is not finite")
    indptr, indices = values["seen_indptr_"], values["seen_indices_"]  # dtypes and shapes: declared
    if indptr[0] != 0 or indptr[-1] != indices.shape[0]:
        fail(f"seen_indptr_ must run from 0 to len(seen_indices_) = {indices.shape[0]}, got "
             f"{indptr[0]} .. {indptr[-1]}")
    bad = np.flatnonzero(np.diff(indptr) < 0)
    if bad.size:
        fail(f"seen_indptr_ decreases at position {bad[0] + 1}")
    bad = np.flatnonzero((indices < 0) | (indices >= sizes["item"]))
    if bad.size:
        fail(f"seen_indices_[{bad[0]}] = {indices[bad[0]]} is outside [0, n_items_ = {sizes['item']})")
    for who in ("user", "item"):
        counts = values[f"{who}_counts_"]
        if (counts.size and counts.min() < 0) or int(counts.sum()) != indices.shape[0]:
            fail(f"{who}_counts_ must be non-negative and sum to the number of training ratings "
                 f"{indices.shape[0]}")
    scale = values.get("rating_scale_")
    if scale is not None and not (isinstance(scale, tuple) and len(scale) == 2
                                  and all(isinstance(v, (int, float)) and math.isfinite(v) for v in scale)
                                  and scale[0] < scale[1]):
        fail(f"rating_scale_ must be None or (low, high) with low < high, got {scale!r}")
    mu = values.get("global_mean_")
    if mu is not None and not (isinstance(mu, (int, float)) and math.isfinite(mu)):
        fail(f"global_mean_ must be a finite number, got {mu!r}")
