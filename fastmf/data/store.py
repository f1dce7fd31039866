r"""Ratings larger than memory: an on-disk store of memory-mapped blocks in block order.

:func:`write_store` converts a rating file (any file :func:`fastmf.read_ratings` parses: the
MovieLens ``::`` formats, CSV, TSV) into a directory, reading it in chunks of whole lines, so the
file never has to fit in memory; :func:`open_store` opens one (fully validated);
``MatrixFactorization(solver="sgd").fit(store)`` trains on it, reading the blocks through the
memory maps, and gives bit for bit the model that fitting ``read_ratings`` of the same file gives
with the same ``n_blocks`` and seed.

Layout. Users and items are cut into :math:`B` = ``n_blocks`` groups each exactly as the blocked
SGD schedule cuts them (:func:`fastmf._sgd.make_block_plan`: contiguous index ranges of near-equal
rating counts, from the degrees); block :math:`(a, b)` holds the ratings of user group :math:`a` and
item group :math:`b`, stored as the range ``block_ptr[a B + b] : block_ptr[a B + b + 1]`` of three
arrays, in file order within a block -- the copy ``x[block_order]`` that an in-memory blocked fit
builds, so the SGD kernel runs over the maps themselves and the operating system pages blocks in and
out as the schedule visits them. Files (NumPy ``.npy``, read with ``allow_pickle=False``)::

    store.json        {"format": "fastmf-rating-store", "version": 1, "n_ratings", "n_users",
                       "n_items", "n_blocks", "dtype", "rating_scale", "source", "files": {name:
                       {"dtype", "shape"}}}
    users.npy items.npy      int32, dense indices, block order
    ratings.npy              float32 (or float64), block order
    csr_indptr.npy csr_indices.npy csr_data.npy   the same ratings as a users x items CSR (items
                             ascending in each row): the model's seen items, with no sort in memory
    block_ptr.npy            int64 (B^2 + 1)       user_block.npy / item_block.npy  int32
    user_ids.npy item_ids.npy    the raw ids, sorted (the id maps of read_ratings)

Conversion makes three passes over the file: the distinct ids; the degrees; the scatter of every
rating to its block (then the CSR from the blocks, by chunks) (memory: the id maps, the degrees and one chunk; the output is written through
memory maps). Duplicate (user, item) pairs are refused (``read_ratings``' ``duplicates="error"``):
resolving them would change the degrees the layout was cut from.

What stays in memory during ``fit(store)``: the factors, the plan and the id maps; the rating
triples and the seen-items CSR (the model's ``seen_indices_`` is the stored map) are read through
the maps. With ``ranking="engagement"`` (the default) the engagement model builds its transposed
seen matrix and its values (8 bytes per rating) in memory while it is fitted.

The mean rating is summed in float64 in block order, as an in-memory fit sums it in file order: the
two are equal whenever the sum is exact (ratings on a grid of whole or half stars, every MovieLens
set and :func:`fastmf.make_ratings` data); for continuous ratings they may differ in the last bit,
and so may the models.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any, Optional, Sequence

import numpy as np

from fastmf.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    from fastmf.data.ratings import Ratings

__all__ = ["RatingStore", "write_store", "open_store", "STORE_FORMAT"]

STORE_FORMAT = "fastmf-rating-store"
_VERSION = 1
_HEADER = "store.json"
# ratings validated per step on open (int64 keys: 8 bytes each)
_CHECK_CHUNK = 1 << 22


def _assign_groups(deg: np.ndarray, n_blocks: int) -> np.ndarray:
    """The groups of ``fastmf_block_plan`` (csrc/blocks.c assign_groups), in NumPy: row r covers
    the ratings [c_r, c_r + deg_r) of the running count and goes to group
    floor(B (2 c_r + deg_r) / (2 total)) (rows cut evenly when there are no ratings)."""
    n = deg.shape[0]
    total = int(deg.sum())
    if n == 0:
        return np.zeros(0, dtype=np.int32)
    if total == 0:
        g = np.arange(n, dtype=np.int64) * n_blocks // n
    else:
        before = np.cumsum(deg) - deg
        g = ((2 * before + deg) * n_blocks) // (2 * total)
    return np.minimum(g, n_blocks - 1).astype(np.int32)


def _chunks(path: str, chunk_bytes: int):
    """``(data, first_line)``: the file in pieces of about ``chunk_bytes`` cut after a newline."""
    line = 1
    with open(path, "rb") as fh:
        rest = b""
        while True:
            piece = fh.read(chunk_bytes)
            if not piece:
                if rest.strip():
                    yield rest, line
                return
            data = rest + piece
            cut = data.rfind(b"\n")
            if cut < 0:
                rest = data
                continue
            data, rest = data[:cut + 1], data[cut + 1:]
            yield data, line
            line += data.count(b"\n")


def _parse_chunks(path, sep, columns, header, comment, encoding, chunk_bytes):
    """``(users, items, ratings)`` raw arrays of each chunk (ratings None for implicit data),
    parsed by the reader of :func:`fastmf.read_ratings`; errors name the file and line."""
    from fastmf.data.readers import _parse_file

    first = True
    for data, line in _chunks(path, chunk_bytes):
        if not data.strip():
            continue
        try:
            parsed = _parse_file(path, sep, columns, header if first else False, None, comment,
                                 encoding, data=data)
        except DataError as exc:
            raise DataError(f"{path}: in the chunk from line {line}: {exc}") from None
        first = False
        users, items = parsed.users, parsed.items
        yield (np.asarray(users.to_array() if hasattr(users, "to_array") else users),
               np.asarray(items.to_array() if hasattr(items, "to_array") else items),
               None if parsed.ratings is None else np.asarray(parsed.ratings), len(data))


def _merge_ids(a: Optional[np.ndarray], b: np.ndarray, what: str, path: str) -> np.ndarray:
    b = np.unique(b)
    if a is None:
        return b
    if (a.dtype.kind == "U") != (b.dtype.kind == "U"):
        raise DataError(f"{path}: the {what} ids are integers in one part of the file and strings in "
                        f"another; convert the file to one kind of id")
    return np.union1d(a, b)


def write_store(path: str | os.PathLike, directory: str | os.PathLike, n_blocks: int, *,
                sep: Optional[str] = None, columns: Optional[Sequence[Optional[str]]] = None,
                header: Any = "infer", rating_scale: Any = "infer", comment: Optional[str] = None,
                encoding: str = "utf-8", dtype: Any = "float32", chunk_bytes: int = 64 << 20,
                progress: Any = False) -> RatingStore:
    """Convert the rating file ``path`` into a store in ``directory`` (created; it must not hold a
    store already), laid out in ``n_blocks`` blocks per side, reading ``chunk_bytes`` of the file
    at a time. ``sep``, ``columns``, ``header``, ``rating_scale``, ``comment``, ``encoding`` are
    those of :func:`fastmf.read_ratings` (guessed from the first line the same way); timestamps
    are not stored. ``progress``: a bar per pass (``True`` / ``"auto"``, as ``fit``). Returns the
    opened store.

    Train with the same ``n_blocks``: ``MatrixFactorization(n_blocks=n_blocks).fit(store)``.
    """
    from fastmf._progress import progress_bar
    from fastmf.data.ratings import _check_scale
    from fastmf._validation import check_int

    source = os.fspath(path)
    if not os.path.isfile(source):
        raise FileNotFoundError(f"{source}: no such rating file")
    B = check_int(n_blocks, "n_blocks", 1, 1024)
    chunk_bytes = check_int(chunk_bytes, "chunk_bytes", 1)
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise DataError(f"dtype must be float32 or float64, got {dt}")
    out = os.fspath(directory)
    if os.path.exists(os.path.join(out, _HEADER)):
        raise DataError(f"{out}: already holds a rating store ({_HEADER}); choose another directory")
    os.makedirs(out, exist_ok=True)
    size = os.path.getsize(source)

    def passes(desc):
        bar = progress_bar(progress, size, desc, "B")
        try:
            for users, items, ratings, nbytes in _parse_chunks(source, sep, columns, header, comment,
                                                               encoding, chunk_bytes):
                yield users, items, ratings
                if bar is not None:
                    bar.update(nbytes)
        finally:
            if bar is not None:
                bar.close()

    # pass 1: the distinct ids (the sorted id maps of read_ratings), the count, the range
    user_ids = item_ids = None
    n, lo, hi, implicit = 0, np.inf, -np.inf, False
    for users, items, ratings in passes("store: ids"):
        user_ids = _merge_ids(user_ids, users, "user", source)
        item_ids = _merge_ids(item_ids, items, "item", source)
        n += users.shape[0]
        if ratings is None:
            implicit = True
        elif ratings.size:
            lo, hi = min(lo, float(ratings.min())), max(hi, float(ratings.max()))
    if n == 0:
        raise DataError(f"{source}: no ratings")
    scale = None
    if not implicit:
        if isinstance(rating_scale, str) and rating_scale == "infer":
            scale = _check_scale(np.array([lo, hi]), "infer", "ratings")
        elif rating_scale is not None:
            scale = _check_scale(np.array(rating_scale, dtype=np.float64), rating_scale, "rating_scale")
            if lo < scale[0] or hi > scale[1]:
                raise DataError(f"{source}: ratings span [{lo:g}, {hi:g}], outside rating_scale "
                                f"[{scale[0]:g}, {scale[1]:g}]")
    n_users, n_items = user_ids.shape[0], item_ids.shape[0]

    def indices(users, items):
        return (np.searchsorted(user_ids, users).astype(np.int32),
                np.searchsorted(item_ids, items).astype(np.int32))

    # pass 2: the degrees, and from them the groups and the block offsets of the plan
    deg_u = np.zeros(n_users, dtype=np.int64)
    deg_i = np.zeros(n_items, dtype=np.int64)
    for users, items, _ in passes("store: degrees"):
        u, i = indices(users, items)
        deg_u += np.bincount(u, minlength=n_users)
        deg_i += np.bincount(i, minlength=n_items)
    user_block, item_block = _assign_groups(deg_u, B), _assign_groups(deg_i, B)
    del deg_u, deg_i
    counts = np.zeros(B * B, dtype=np.int64)
    for users, items, _ in passes("store: blocks"):
        u, i = indices(users, items)
        counts += np.bincount(user_block[u].astype(np.int64) * B + item_block[i], minlength=B * B)
    block_ptr = np.r_[0, np.cumsum(counts)].astype(np.int64)

    # pass 3: every rating to its block, in file order within a block
    files = {"users": (np.int32, n), "items": (np.int32, n), "ratings": (dt, n)}
    maps = {name: np.lib.format.open_memmap(os.path.join(out, name + ".npy"), mode="w+", dtype=d, shape=(m,))
            for name, (d, m) in files.items()}
    cursor = block_ptr[:-1].copy()
    for users, items, ratings in passes("store: scatter"):
        u, i = indices(users, items)
        block = user_block[u].astype(np.int64) * B + item_block[i]
        order = np.argsort(block, kind="stable")
        sb = block[order]
        starts = np.flatnonzero(np.r_[True, sb[1:] != sb[:-1]])
        run = np.diff(np.r_[starts, sb.size])
        ids = sb[starts]
        pos = np.repeat(cursor[ids] - starts, run) + np.arange(sb.size)
        cursor[ids] += run
        maps["users"][pos] = u[order]
        maps["items"][pos] = i[order]
        maps["ratings"][pos] = 1.0 if ratings is None else ratings[order]
    for m in maps.values():
        m.flush()
    repeat = _first_repeat(maps["users"], maps["items"], block_ptr, n_items)
    if repeat is None:
        _write_csr(out, maps, n, n_users, dt)
    del maps
    if repeat is not None:
        raise DataError(f"{source}: duplicate rating for user {user_ids[repeat[0]].item()!r}, item "
                        f"{item_ids[repeat[1]].item()!r}; a store takes each (user, item) pair once "
                        "(resolve repeats first, e.g. read_ratings(..., duplicates='last') and save the result)")
    for name, arr in (("block_ptr", block_ptr), ("user_block", user_block), ("item_block", item_block),
                      ("user_ids", user_ids), ("item_ids", item_ids)):
        np.save(os.path.join(out, name + ".npy"), arr, allow_pickle=False)
    header_doc = {"format": STORE_FORMAT, "version": _VERSION, "n_ratings": int(n), "n_users": int(n_users),
                  "n_items": int(n_items), "n_blocks": int(B), "dtype": dt.name,
                  "rating_scale": None if scale is None else [float(scale[0]), float(scale[1])],
                  "source": os.path.basename(source), "files": _expected_files(n, n_users, n_items, B, dt,
                                                                             user_ids.dtype, item_ids.dtype)}
    tmp = os.path.join(out, _HEADER + ".tmp")
    with open(tmp, "w") as fh:
        json.dump(header_doc, fh, indent=1)
    os.replace(tmp, os.path.join(out, _HEADER))  # the header last: a half-written store does not open
    return open_store(out)


def _write_csr(out, maps, n, n_users, dt):
    """The users x items CSR of the stored ratings (``csr_indptr/indices/data.npy``, items
    ascending in each row), from the block files: one scatter by user over chunks of the blocks
    (a user's ratings in block order), then each chunk of whole rows sorted by item."""
    users, items, ratings = maps["users"], maps["items"], maps["ratings"]
    deg = np.zeros(n_users, dtype=np.int64)
    for lo in range(0, n, _CHECK_CHUNK):
        deg += np.bincount(np.asarray(users[lo:lo + _CHECK_CHUNK]), minlength=n_users)
    indptr = np.r_[0, np.cumsum(deg)].astype(np.int64)
    np.save(os.path.join(out, "csr_indptr.npy"), indptr, allow_pickle=False)
    ind = np.lib.format.open_memmap(os.path.join(out, "csr_indices.npy"), mode="w+", dtype=np.int32, shape=(n,))
    val = np.lib.format.open_memmap(os.path.join(out, "csr_data.npy"), mode="w+", dtype=dt, shape=(n,))
    cursor = indptr[:-1].copy()
    for lo in range(0, n, _CHECK_CHUNK):
        u = np.asarray(users[lo:lo + _CHECK_CHUNK])
        order = np.argsort(u, kind="stable")
        su = u[order]
        starts = np.flatnonzero(np.r_[True, su[1:] != su[:-1]])
        run = np.diff(np.r_[starts, su.size])
        ids = su[starts]
        pos = np.repeat(cursor[ids] - starts, run) + np.arange(su.size)
        cursor[ids] += run
        ind[pos] = np.asarray(items[lo:lo + _CHECK_CHUNK])[order]
        val[pos] = np.asarray(ratings[lo:lo + _CHECK_CHUNK])[order]
    row = 0
    while row < n_users:  # rows of about _CHECK_CHUNK ratings at a time, items sorted
        stop = min(max(int(np.searchsorted(indptr, indptr[row] + _CHECK_CHUNK, side="right")) - 1, row + 1), n_users)
        lo, hi = int(indptr[row]), int(indptr[stop])
        rows = np.repeat(np.arange(stop - row), np.diff(indptr[row:stop + 1]))
        i = np.asarray(ind[lo:hi])
        order = np.lexsort((i, rows))
        ind[lo:hi] = i[order]
        val[lo:hi] = np.asarray(val[lo:hi])[order]
        row = stop
    ind.flush()
    val.flush()


def _fingerprint(users, items, ratings, lo, hi):
    """An order-independent hash of the ratings [lo, hi): the sum (mod 2^64) of a mix of each
    (user, item, rating bits); the blocks and the CSR of a valid store have the same sum."""
    u = np.asarray(users[lo:hi]).astype(np.uint64)
    i = np.asarray(items[lo:hi]).astype(np.uint64)
    r = np.asarray(ratings[lo:hi])
    bits = r.view(np.uint32 if r.dtype == np.float32 else np.uint64).astype(np.uint64)
    with np.errstate(over="ignore"):
        x = (u * np.uint64(0x9E3779B97F4A7C15)) ^ (i * np.uint64(0xC2B2AE3D27D4EB4F)) ^ (bits * np.uint64(0x165667B19E3779F9))
        x ^= x >> np.uint64(31)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(29)
        return int(x.sum(dtype=np.uint64))


def _expected_files(n, n_users, n_items, B, dt, uid_dtype, iid_dtype):
    return {"csr_indptr": {"dtype": "int64", "shape": [n_users + 1]},
            "csr_indices": {"dtype": "int32", "shape": [n]},
            "csr_data": {"dtype": np.dtype(dt).name, "shape": [n]},"users": {"dtype": "int32", "shape": [n]}, "items": {"dtype": "int32", "shape": [n]},
            "ratings": {"dtype": np.dtype(dt).name, "shape": [n]},
            "block_ptr": {"dtype": "int64", "shape": [B * B + 1]},
            "user_block": {"dtype": "int32", "shape": [n_users]},
            "item_block": {"dtype": "int32", "shape": [n_items]},
            "user_ids": {"dtype": np.dtype(uid_dtype).str, "shape": [n_users]},
            "item_ids": {"dtype": np.dtype(iid_dtype).str, "shape": [n_items]}}


class RatingStore:
    """An opened rating store (:func:`open_store`): the header's sizes and the memory-mapped arrays.

    Attributes
    ----------
    directory : str
    n_ratings, n_users, n_items, n_blocks : int
    rating_scale : (low, high) or None
    users, items, ratings : read-only memory maps, block order
    block_ptr, user_block, item_block : the block plan (in memory)
    user_ids, item_ids : the raw ids, sorted
    """

    def __init__(self, directory: str, header: dict, arrays: dict) -> None:
        self.directory = directory
        self.n_ratings = header["n_ratings"]
        self.n_users = header["n_users"]
        self.n_items = header["n_items"]
        self.n_blocks = header["n_blocks"]
        scale = header["rating_scale"]
        self.rating_scale = None if scale is None else (float(scale[0]), float(scale[1]))
        self.source = header.get("source")
        for name, arr in arrays.items():
            setattr(self, name, arr)
        self._ratings = None

    def __len__(self) -> int:
        return self.n_ratings

    def __repr__(self) -> str:
        return (f"RatingStore({self.directory!r}: {self.n_ratings} ratings, {self.n_users} users x "
                f"{self.n_items} items, {self.n_blocks} x {self.n_blocks} blocks)")

    def plan(self) -> Any:
        """The :class:`fastmf._sgd.BlockPlan` of the stored layout (``block_order`` None: the ratings
        are stored in block order)."""
        from fastmf._sgd import BlockPlan

        return BlockPlan(self.n_blocks, self.block_ptr, None, self.user_block, self.item_block)

    def ratings(self) -> "Ratings":
        """A :class:`fastmf.Ratings` over the memory maps (block order; nothing is copied), with
        the stored layout attached, so a blocked SGD fit with ``n_blocks = self.n_blocks`` runs over
        the maps. Other uses (``to_csr``, ALS, splits) work as on any Ratings and build their
        arrays in memory."""
        if self._ratings is None:
            from fastmf.data.ratings import IdMap, Ratings

            r = Ratings(self.users, self.items, self.ratings_, None, user_map=IdMap(self.user_ids),
                        item_map=IdMap(self.item_ids), rating_scale=self.rating_scale,
                        name=self.source, _validated=True)
            layout = (self.users, self.items, self.ratings_, self.plan())
            r.cached(("fastmf.sgd.blocked", self.n_blocks, self.ratings_.dtype.str), lambda: layout)
            r.cached("fastmf.store.n_blocks", lambda: self.n_blocks)
            from fastmf.data.ratings import CSR

            r.cached("csr", lambda: CSR(self.csr_indptr, self.csr_indices, self.csr_data,
                                        (self.n_users, self.n_items)))
            self._ratings = r
        return self._ratings


def _fail(path, what):
    raise DataError(f"{path}: {what}; not a valid fastmf rating store (rewrite it with write_store)")


def open_store(directory: str | os.PathLike) -> RatingStore:
    """Open the store in ``directory`` and validate all of it: the header's fields, each file's
    dtype and shape against the header, the id maps (sorted, distinct), the plan (groups
    contiguous and non-decreasing in ``[0, n_blocks)``, offsets rising from 0 to ``n_ratings``),
    every rating (indices in range, inside its block, finite, within the scale) and no repeated
    (user, item) pair. A store that opens is fully valid; otherwise DataError naming the file and
    the field. The data is read in chunks; nothing is loaded but the plan and the id maps."""
    d = os.fspath(directory)
    head = os.path.join(d, _HEADER)
    if not os.path.isfile(head):
        raise DataError(f"{d}: no {_HEADER}; not a fastmf rating store (write one with write_store)")
    try:
        with open(head) as fh:
            header = json.load(fh)
    except (OSError, ValueError) as exc:
        _fail(head, f"unreadable JSON ({exc})")
    if not isinstance(header, dict) or header.get("format") != STORE_FORMAT:
        _fail(head, f"field 'format' must be {STORE_FORMAT!r}")
    if header.get("version") != _VERSION:
        _fail(head, f"field 'version' is {header.get('version')!r}; this fastmf reads version {_VERSION}")
    for key in ("n_ratings", "n_users", "n_items", "n_blocks"):
        v = header.get(key)
        if isinstance(v, bool) or not isinstance(v, int) or v < (1 if key != "n_items" else 0):
            _fail(head, f"field {key!r} must be a positive int, got {v!r}")
    n, nu, ni, B = (header[k] for k in ("n_ratings", "n_users", "n_items", "n_blocks"))
    if B > 1024:
        _fail(head, f"field 'n_blocks' must be at most 1024, got {B}")
    if header.get("dtype") not in ("float32", "float64"):
        _fail(head, f"field 'dtype' must be 'float32' or 'float64', got {header.get('dtype')!r}")
    scale = header.get("rating_scale")
    if scale is not None and not (isinstance(scale, list) and len(scale) == 2
                                  and all(isinstance(x, (int, float)) and np.isfinite(x) for x in scale)
                                  and scale[0] < scale[1]):
        _fail(head, f"field 'rating_scale' must be null or [low, high] with low < high, got {scale!r}")
    files = header.get("files")
    if not isinstance(files, dict):
        _fail(head, "field 'files' is missing")
    arrays = {}
    for name, mmap in (("users", True), ("items", True), ("ratings", True), ("csr_indices", True),
                       ("csr_data", True), ("csr_indptr", False), ("block_ptr", False),
                       ("user_block", False), ("item_block", False), ("user_ids", False), ("item_ids", False)):
        entry = files.get(name)
        if not isinstance(entry, dict):
            _fail(head, f"field 'files' has no entry {name!r}")
        fpath = os.path.join(d, name + ".npy")
        try:
            arr = np.load(fpath, mmap_mode="r" if mmap else None, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            _fail(fpath, f"cannot be read as a .npy array without pickle ({exc})")
        ids = name.endswith("_ids")
        want_dtype = {"users": "int32", "items": "int32", "ratings": header["dtype"], "block_ptr": "int64",
                      "csr_indices": "int32", "csr_data": header["dtype"], "csr_indptr": "int64",
                      "user_block": "int32", "item_block": "int32"}.get(name)
        if ids:
            if arr.dtype.kind not in "iU" or (arr.dtype.kind == "i" and arr.dtype != np.int64):
                _fail(fpath, f"ids must be int64 or str, got dtype {arr.dtype}")
        elif arr.dtype != np.dtype(want_dtype):
            _fail(fpath, f"dtype is {arr.dtype}, expected {want_dtype}")
        if entry.get("dtype") != (arr.dtype.str if ids else arr.dtype.name):
            _fail(head, f"files[{name!r}]['dtype'] is {entry.get('dtype')!r} but {name}.npy holds {arr.dtype}")
        want_shape = {"users": (n,), "items": (n,), "ratings": (n,), "block_ptr": (B * B + 1,),
                      "csr_indices": (n,), "csr_data": (n,), "csr_indptr": (nu + 1,),
                      "user_block": (nu,), "item_block": (ni,), "user_ids": (nu,), "item_ids": (ni,)}[name]
        if arr.shape != want_shape or list(want_shape) != entry.get("shape"):
            _fail(fpath, f"shape is {arr.shape}, the header says {entry.get('shape')!r} and expects {list(want_shape)}")
        if mmap and not arr.flags.c_contiguous:
            _fail(fpath, "array is not C-contiguous")
        arrays[name] = arr
    arrays["ratings_"] = arrays.pop("ratings")
    for name in ("user_ids", "item_ids"):
        ids = arrays[name]
        if ids.size > 1 and not bool(np.all(ids[1:] > ids[:-1])):
            bad = int(np.flatnonzero(~(ids[1:] > ids[:-1]))[0]) + 1
            _fail(os.path.join(d, name + ".npy"), f"ids must be sorted and distinct; position {bad} is not")
    ptr = arrays["block_ptr"]
    if ptr[0] != 0 or ptr[-1] != n or np.any(np.diff(ptr) < 0):
        _fail(os.path.join(d, "block_ptr.npy"), f"offsets must rise from 0 to n_ratings = {n}")
    for name in ("user_block", "item_block"):
        g = arrays[name]
        if g.size and (g[0] < 0 or g[-1] >= B or np.any(np.diff(g) < 0)):
            _fail(os.path.join(d, name + ".npy"), f"groups must be non-decreasing in [0, {B})")
    _check_ratings(d, arrays, n, nu, ni, B, None if scale is None else tuple(scale))
    return RatingStore(d, header, arrays)


def _check_ratings(d, arrays, n, nu, ni, B, scale):
    """Every rating in range, in its block, finite and within the scale; no repeated pair; the
    CSR holds the same ratings (degrees, items ascending within rows, the same fingerprint)."""
    users, items, ratings, ptr = arrays["users"], arrays["items"], arrays["ratings_"], arrays["block_ptr"]
    ub, ib = arrays["user_block"], arrays["item_block"]
    deg = np.zeros(nu, dtype=np.int64)
    fingerprint = 0
    for lo in range(0, n, _CHECK_CHUNK):
        hi = min(n, lo + _CHECK_CHUNK)
        u, i, r = np.asarray(users[lo:hi]), np.asarray(items[lo:hi]), np.asarray(ratings[lo:hi])
        for name, a, size in (("users", u, nu), ("items", i, ni)):
            bad = np.flatnonzero((a < 0) | (a >= size))
            if bad.size:
                _fail(os.path.join(d, name + ".npy"), f"entry {lo + int(bad[0])} = {a[bad[0]]} is outside [0, {size})")
        bad = np.flatnonzero(~np.isfinite(r) if scale is None else ~((r >= scale[0]) & (r <= scale[1])))
        if bad.size:
            _fail(os.path.join(d, "ratings.npy"), f"entry {lo + int(bad[0])} = {r[bad[0]]} is "
                  + ("not finite" if scale is None else f"outside the rating scale {list(scale)}"))
        block = ub[u].astype(np.int64) * B + ib[i]
        want = np.searchsorted(ptr, np.arange(lo, hi), side="right") - 1
        bad = np.flatnonzero(block != want)
        if bad.size:
            _fail(os.path.join(d, "users.npy"), f"rating {lo + int(bad[0])} (user {u[bad[0]]}, item "
                  f"{i[bad[0]]}) lies outside its block {int(want[bad[0]])} of block_ptr.npy")
        deg += np.bincount(u, minlength=nu)
        fingerprint += _fingerprint(users, items, ratings, lo, hi)
    repeat = _first_repeat(users, items, ptr, ni)
    if repeat is not None:
        _fail(os.path.join(d, "users.npy"), f"the pair (user {repeat[0]}, item {repeat[1]}) is stored twice")
    _check_csr(d, arrays, n, nu, ni, deg, fingerprint % (1 << 64))


def _check_csr(d, arrays, n, nu, ni, deg, fingerprint):
    indptr, indices, data = arrays["csr_indptr"], arrays["csr_indices"], arrays["csr_data"]
    if indptr[0] != 0:
        _fail(os.path.join(d, "csr_indptr.npy"), f"must start at 0, got {indptr[0]}")
    wrong = np.flatnonzero(np.diff(indptr) != deg)
    if wrong.size:
        bad = int(wrong[0])
        _fail(os.path.join(d, "csr_indptr.npy"), f"row {bad} does not hold the user's {int(deg[bad])} "
              "ratings of the blocks")
    rows_fp, row = 0, 0
    while row < nu:
        stop = min(max(int(np.searchsorted(indptr, indptr[row] + _CHECK_CHUNK, side="right")) - 1, row + 1), nu)
        lo, hi = int(indptr[row]), int(indptr[stop])
        i = np.asarray(indices[lo:hi])
        if i.size and (i.min() < 0 or i.max() >= ni):
            k = int(np.flatnonzero((i < 0) | (i >= ni))[0])
            _fail(os.path.join(d, "csr_indices.npy"), f"entry {lo + k} = {i[k]} is outside [0, {ni})")
        rows = np.repeat(np.arange(row, stop, dtype=np.int32), np.diff(indptr[row:stop + 1]))
        same_row = rows[1:] == rows[:-1]
        bad = np.flatnonzero(same_row & (i[1:] <= i[:-1]))
        if bad.size:
            _fail(os.path.join(d, "csr_indices.npy"), f"entries {lo + int(bad[0])}, {lo + int(bad[0]) + 1} "
                  "are not ascending within their row")
        rows_fp += _fingerprint(rows, i, np.asarray(data[lo:hi]), 0, hi - lo)
        row = stop
    if rows_fp % (1 << 64) != fingerprint:
        _fail(os.path.join(d, "csr_data.npy"), "the CSR does not hold the same ratings as the blocks")


def _first_repeat(users, items, ptr, n_items):
    """``(user, item)`` of a pair stored twice, or None. A pair's ratings share a block, so runs of
    whole blocks of about _CHECK_CHUNK ratings are checked one at a time."""
    nb, ni64, bid = ptr.shape[0] - 1, max(n_items, 1), 0
    while bid < nb:
        lo = int(ptr[bid])
        stop = bid + 1
        while stop < nb and ptr[stop + 1] - lo <= _CHECK_CHUNK:
            stop += 1
        hi = int(ptr[stop])
        key = np.asarray(users[lo:hi]).astype(np.int64) * ni64 + np.asarray(items[lo:hi])
        key.sort()
        dup = np.flatnonzero(key[1:] == key[:-1])
        if dup.size:
            k = int(key[dup[0]])
            return k // ni64, k % ni64
        bid = stop
    return None
