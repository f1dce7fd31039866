"""Reading ratings from delimited text files (:func:`read_ratings`); the MovieLens data sets are in
:mod:`fastmf.data.movielens`.

Rating files are tokenised by a C kernel (``csrc/parse.c``) over the whole file at once: no Python
loop per line. Small metadata files (titles, genres, user attributes) are read in Python.
"""

from __future__ import annotations

import codecs
import csv
import io as io_module
import logging
import os
import re
import warnings
from pathlib import Path

import numpy as np

from typing import Any, Sequence

from fastmf.data.ratings import DUPLICATE_POLICIES, Metadata, Ratings, _FactorizedIds, _float_dtype
from fastmf.errors import DataError, DuplicateRatingsWarning, MissingTimestampsWarning, ParseError

__all__ = ["read_ratings", "guess_sep", "guess_columns", "MissingTimestampsWarning"]

logger = logging.getLogger(__name__)

FIELD_NAMES = ("user", "item", "rating", "timestamp")
SKIP_NAMES = ("_", "skip")
BASE_URL = "https://files.grouplens.org/datasets/movielens"
MISSING_YEAR = -1
#: The longest user or item id a rating file may hold, in bytes (after trimming spaces). While a file
#: is read, text ids are grouped by length so that no per-rating array is wider than twice its id;
#: but the id map stores the distinct ids in one fixed-width NumPy array (every id as wide as the
#: longest), so one huge id costs its length for every distinct id: the limit bounds that
#: (<= 1 KiB per distinct id). Longer ids raise a ParseError naming the file, line and field.
MAX_ID_BYTES = 256

# ---------------------------------------------------------------------------------------------- text


def _check_columns(columns):
    if isinstance(columns, str) or not hasattr(columns, "__iter__"):
        raise DataError(f"columns must be a sequence of field names, got {columns!r}")
    columns = tuple(columns)
    names = []
    for c in columns:
        if c is None or c in SKIP_NAMES:
            names.append(None)
        elif c in FIELD_NAMES:
            names.append(c)
        else:
            raise DataError(f"columns: unknown field name {c!r}; use {FIELD_NAMES} or None/'_'/'skip' "
                             "for a field to ignore")
    for c in FIELD_NAMES:
        if names.count(c) > 1:
            raise DataError(f"columns: {c!r} appears {names.count(c)} times in {columns!r}")
    for c in ("user", "item"):
        if c not in names:
            raise DataError(f"columns must include {c!r}, got {columns!r}")
    return names


def _check_scale(rating_scale):
    if rating_scale is None:
        return None
    try:
        lo, hi = (float(x) for x in rating_scale)
    except (TypeError, ValueError):
        raise DataError(f"rating_scale must be (low, high) or None, got {rating_scale!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise DataError(f"rating_scale must satisfy low < high (finite), got {rating_scale!r}")
    return (lo, hi)


def _encode(value, what, encoding):
    if not isinstance(value, str) or not value:
        raise DataError(f"{what} must be a non-empty string, got {value!r}")
    if "\n" in value or "\r" in value:
        raise DataError(f"{what} must not contain a line break, got {value!r}")
    return value.encode(encoding)


def _is_utf8(encoding):
    return codecs.lookup(encoding).name in ("utf-8", "utf-8-sig")


def _first_lines(data, comment_b, count):
    """The first ``count`` non-blank, non-comment lines of ``data`` (bytes, line ending removed)."""
    out = []
    start = 0
    while len(out) < count and start < len(data):
        end = data.find(b"\n", start)
        end = len(data) if end < 0 else end
        line = bytes(data[start:end])
        line = line[:-1] if line.endswith(b"\r") else line  # one CR, as the tokenizer drops
        start = end + 1
        if line and not (comment_b and line.startswith(comment_b)):
            out.append(line)
    return out


def _infer_header(data, sep_b, names, comment_b):
    """True when the first data line looks like a header: with a rating or timestamp field, no named
    field of it is a number; without, id fields that are not integers while those of the next line
    are."""
    lines = _first_lines(data, comment_b, 2)
    if not lines:
        return False
    fields = [f.strip(b" ") for f in lines[0].split(sep_b)]
    if len(fields) != len(names):
        return False

    def is_number(b, integer):
        try:
            int(b) if integer else float(b)
        except ValueError:
            return False
        return True

    numeric = [(i, n) for i, n in enumerate(names) if n in ("rating", "timestamp")]
    if numeric:
        # a header names its fields: none of them is a number ("1::7::4:5::1" is a bad data line)
        return not any(is_number(fields[i], False) for i, n in enumerate(names) if n is not None)
    ids = [i for i, n in enumerate(names) if n in ("user", "item")]
    if len(lines) < 2 or all(is_number(fields[i], True) for i in ids):
        return False
    nxt = [f.strip(b" ") for f in lines[1].split(sep_b)]
    return len(nxt) == len(names) and all(is_number(nxt[i], True) for i in ids)


def _decode_ids(raw, source, label, encoding):
    """S<width> bytes ids -> str array."""
    if raw.size == 0 or not (raw.view(np.uint8) >= 128).any():
        return raw.astype(str)
    try:
        return np.char.decode(raw, encoding)
    except UnicodeDecodeError as exc:
        raise DataError(f"{source}: {label} ids are not valid {encoding} ({exc.reason}); "
                         "pass the file's encoding=") from None


def _factorize_spans(data, spans, source, label, encoding):
    """Text ids from their (start, length) spans as a :class:`_FactorizedIds`, in memory
    proportional to the bytes of the ids: the spans are grouped by length class (up to 8, 16, 32 ...
    MAX_ID_BYTES bytes), each group is gathered into a NumPy bytes array of its own width (so a row
    costs at most twice its id, 8 bytes at least) and reduced to its distinct ids; only those are
    decoded to str. Ids of different lengths never compare equal (NUL bytes, which NumPy would
    drop, were rejected by the tokenizer), so the groups' distinct ids are the file's."""
    from fastmf import _parse

    n = spans.shape[0]
    if n == 0:
        return _FactorizedIds(np.empty(0, dtype=str), np.empty(0, dtype=np.int32))
    lengths = spans[:, 1]
    width_class = np.maximum(3, np.ceil(np.log2(np.maximum(lengths, 1))).astype(np.int64))
    codes = np.empty(n, dtype=np.int64)
    parts = []
    offset = 0
    for c in np.unique(width_class):
        rows = np.flatnonzero(width_class == c)
        raw = _parse.gather_spans(data, np.ascontiguousarray(spans[rows]))
        uniq, inverse = np.unique(raw, return_inverse=True)
        codes[rows] = inverse.reshape(-1) + offset
        offset += uniq.shape[0]
        parts.append(_decode_ids(uniq, source, label, encoding))
    ids = np.concatenate(parts) if len(parts) > 1 else parts[0]
    order = np.argsort(ids, kind="stable")
    rank = np.empty(order.shape[0], dtype=np.int32)
    rank[order] = np.arange(order.shape[0], dtype=np.int32)
    return _FactorizedIds(ids[order], rank[codes])


def _as_array(ids):
    """Per-rating raw ids, whether given as an array or as a :class:`_FactorizedIds`."""
    return ids.to_array() if isinstance(ids, _FactorizedIds) else ids


class _ParsedFile:
    """The raw columns of one rating file plus what is needed to name a record's line later."""

    def __init__(self, source, data, sep_b, kinds, header, comment_b, users, items, ratings, timestamps):
        self.source = source
        self._data = data
        self._sep_b = sep_b
        self._kinds = kinds
        self._header = header
        self._comment_b = comment_b
        self.users, self.items, self.ratings, self.timestamps = users, items, ratings, timestamps

    def line_of(self, record):
        from fastmf import _parse

        return _parse.record_line(self._data, self._sep_b, self._kinds, header=self._header,
                                  comment=self._comment_b, record=int(record))


_SEP_BY_SUFFIX = {".csv": ",", ".tsv": "\t", ".tab": "\t"}
_SEP_CANDIDATES = ("::", "\t", ",", ";", "|")
_COLUMNS_BY_COUNT = {2: ("user", "item"), 3: ("user", "item", "rating"),
                     4: ("user", "item", "rating", "timestamp")}


def guess_sep(path: str | os.PathLike, first_line: bytes | None = None) -> str:
    """The separator :func:`read_ratings` uses when ``sep=None``: ``","`` for ``.csv``, tab for
    ``.tsv``/``.tab``; otherwise the first of ``"::"``, tab, ``","``, ``";"``, ``"|"`` found outside
    quotes in the first non-blank line (tab when none is: a one-field line then fails with the field
    count)."""
    suffix = Path(os.fspath(path)).suffix.lower()
    if suffix in _SEP_BY_SUFFIX:
        return _SEP_BY_SUFFIX[suffix]
    if first_line is None:
        first_line = _peek_first_line(path)
    unquoted = re.sub(rb'"[^"]*"', b"", first_line)  # a separator inside quotes does not count
    for cand in _SEP_CANDIDATES:
        if cand.encode() in unquoted:
            return cand
    return "\t"


def _peek_first_line(path, limit=1 << 16):
    with open(os.fspath(path), "rb") as fh:
        head = fh.read(limit)
    lines = _first_lines(head, None, 1)
    return lines[0] if lines else b""


def guess_columns(path: str | os.PathLike, sep: str | None = None, first_line: bytes | None = None) -> tuple:
    """The columns :func:`read_ratings` uses when ``columns=None``, from the field count of the first
    non-blank line: 2 ``user,item`` (implicit), 3 ``user,item,rating``, 4
    ``user,item,rating,timestamp``; for another count the four columns (so reading fails with
    the file, line and field count)."""
    line = _peek_first_line(path) if first_line is None else first_line
    if sep is None:
        sep = guess_sep(path, line)
    if b'"' in line and len(sep) == 1:
        try:
            n = len(next(csv.reader([line.decode("utf-8", "replace")], delimiter=sep), []))
        except csv.Error:  # bad quoting or a huge field: the reader reports it with the line
            n = len(line.split(sep.encode()))
    else:
        n = len(line.split(sep.encode()))
    return _COLUMNS_BY_COUNT.get(n, FIELD_NAMES)


def _unquote(data, sep, source, encoding):
    """RFC 4180 text (quoted fields, doubled quotes) re-written as unquoted lines separated by a byte
    that no field contains (tab, else ``\\x1f``, else ``\\x1e``), one record per physical line
    (lines end at ``\\n``) so line numbers are kept. Returns ``(bytes, new separator)``."""
    if len(sep) != 1:
        raise DataError(f"{source}: quoted fields (\") need a one-character separator, not {sep!r}")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise DataError(f"{source}: not valid {encoding} ({exc.reason}); pass the file's encoding=") from None
    # the csv module refuses fields over its limit (128 KiB by default); raise it (never lower it:
    # another thread may be reading a large file) so the tokenizer's own checks name the problem
    if len(text) >= csv.field_size_limit():
        csv.field_size_limit(len(text) + 1)
    choices = ("\t", "\x1f", "\x1e") if sep != "\t" else ("\x1f", "\x1e")
    for out_sep in choices:
        try:
            return _unquote_text(text, sep, source, out_sep).encode(encoding), out_sep
        except _Resep:
            continue
    raise DataError(f"{source}: fields hold every one of {choices!r}, so no separator is left to "
                     "re-write the quoted file with")


def _rows(text, sep):
    # newline="\n": physical lines end at \n only, as in the tokenizer (a bare \r inside an unquoted
    # field is then a csv error naming its line, not a hidden line break that shifts line numbers)
    return csv.reader(io_module.StringIO(text, newline="\n"), delimiter=sep, quotechar='"', strict=True)


def _unquote_text(text, sep, source, out_sep):
    # fast path, all in the csv module's C code: re-write rows unquoted; it fails (then the checked
    # loop below names the line) when a field holds the new separator or a line break, or a row is
    # one empty field (which must not become a blank line)
    out = io_module.StringIO()
    writer = csv.writer(out, delimiter=out_sep, quoting=csv.QUOTE_NONE, quotechar=None,
                        escapechar=None, lineterminator="\n")
    try:
        writer.writerows(_rows(text, sep))
        result = out.getvalue()
        physical = text.count("\n") + (0 if text.endswith("\n") or not text else 1)
        # every row takes at least one physical line: as many rows as lines means one each
        if result.count("\n") == physical:
            return result
    except csv.Error:
        pass
    reader = _rows(text, sep)
    lines = []
    prev = 0
    try:
        for row in reader:
            if reader.line_num != prev + 1:
                raise DataError(f"{source}, line {prev + 1}: a quoted field spans lines; line breaks "
                                 "inside fields are not supported")
            prev = reader.line_num
            if any(out_sep in f for f in row):
                raise _Resep(out_sep)
            line = out_sep.join(f.strip(" ") for f in row)
            # a row that is not blank (`""`, `"  "`) must not become a blank line, which the
            # tokenizer skips: one space keeps it a (one-field) line that fails the field count
            lines.append(line if line or not row else " ")
    except csv.Error as exc:
        raise DataError(f"{source}, line {prev + 1}: bad quoting ({exc})") from None
    return "\n".join(lines) + "\n"


class _Resep(Exception):
    pass


def _count_empty(data, sep_b, field, header, comment_b):
    """(count, first line) of data lines whose ``field`` (0-based) is empty; the error path only."""
    count, first, seen_header = 0, None, not header
    for lineno, line in enumerate(data.split(b"\n"), 1):
        line = line.rstrip(b"\r")
        if not line or (comment_b and line.startswith(comment_b)):
            continue
        if not seen_header:
            seen_header = True
            continue
        parts = line.split(sep_b)
        if field < len(parts) and not parts[field].strip(b" "):
            count += 1
            first = lineno if first is None else first
    return count, first


def _parse_file(path, sep, columns, header, rating_scale, comment, encoding, data=None):
    """Read and tokenise one rating file; returns a :class:`_ParsedFile` with raw-id arrays.
    ``data``: the bytes to parse instead of the whole file (a chunk of whole lines of ``path``,
    for :mod:`fastmf.data.store`); ``path`` then only names the source in messages."""
    from fastmf import _parse

    if not isinstance(path, (str, bytes, os.PathLike)):
        raise DataError(f"path must be a file name (str or os.PathLike), got {type(path).__name__}")
    source = os.fspath(path)
    if isinstance(source, bytes):
        source = os.fsdecode(source)
    try:
        codecs.lookup(encoding)  # an unknown encoding fails before anything is read
    except (LookupError, TypeError):
        raise DataError(f"encoding: unknown encoding {encoding!r} (a name such as 'utf-8' or "
                        "'latin-1')") from None
    if columns is not None:
        _check_columns(columns)
    if sep is not None:
        _encode(sep, "sep", encoding)
    if comment is not None:
        _encode(comment, "comment", encoding)
    if header not in (True, False, "infer"):
        raise DataError(f"header must be True, False or 'infer', got {header!r}")
    if data is None:
        with open(source, "rb") as fh:
            data = fh.read()
    if data.startswith(codecs.BOM_UTF8) and _is_utf8(encoding):
        data = data[len(codecs.BOM_UTF8):]
    comment_b = None if comment is None else _encode(comment, "comment", encoding)
    first = _first_lines(data, comment_b, 1)
    first = first[0] if first else b""
    if sep is None:
        sep = guess_sep(source, first)
    sep_b = _encode(sep, "sep", encoding)
    if columns is None:
        columns = guess_columns(source, sep, first)
    names = _check_columns(columns)
    scale = _check_scale(rating_scale) if "rating" in names and not isinstance(rating_scale, str) else None
    if isinstance(rating_scale, str) and rating_scale != "infer":
        raise DataError(f"rating_scale must be 'infer', (low, high) or None, got {rating_scale!r}")
    if b'"' in data:
        data, new_sep = _unquote(data, sep, source, encoding)
        sep_b = new_sep.encode(encoding)
    if header == "infer":
        header = _infer_header(data, sep_b, names, comment_b)

    kind_of = {"user": _parse.INT64, "item": _parse.INT64, "rating": _parse.FLOAT64,
               "timestamp": _parse.INT64, None: _parse.SKIP}
    kinds = [kind_of[n] for n in names]
    labels = [n if n is not None else "skipped" for n in names]
    # Integer ids first; a user/item field that is not an integer (or overflows int64) switches that
    # whole column to string ids and the file is parsed again. An empty timestamp field drops the
    # timestamps (with a warning) and the file is parsed again without them.
    while True:
        try:
            cols = _parse.parse(data, sep_b, kinds, labels, header=bool(header), comment=comment_b,
                                rating_scale=scale, source=source, encoding=encoding,
                                max_span=MAX_ID_BYTES)
            break
        except _parse.ParseError as exc:
            f = exc.field - 1
            if (exc.reason in ("not_number", "overflow") and f >= 0 and names[f] in ("user", "item")
                    and kinds[f] == _parse.INT64):
                kinds[f] = _parse.SPAN
                continue
            if exc.reason == "empty" and f >= 0 and names[f] == "timestamp" and kinds[f] != _parse.SKIP:
                count, line = _count_empty(data, sep_b, f, bool(header), comment_b)
                warnings.warn(f"{source}: {count} line(s) have no timestamp (the first is line {line}); "
                              "the timestamps of this file are dropped (temporal splits need them)",
                              MissingTimestampsWarning, stacklevel=3)
                kinds[f] = _parse.SKIP
                names = list(names)
                names[f] = None
                continue
            raise
    n = None
    out = {}
    for f, name in enumerate(names):
        if name is None:
            continue
        col = cols[f]
        if kinds[f] == _parse.SPAN:
            col = _factorize_spans(data, np.ascontiguousarray(col), source, name, encoding)
        out[name] = col
        n = col.shape[0]
    if n == 0:
        what = "empty" if not data.strip() else "holds no data lines (only blank, comment or header lines)"
        raise DataError(f"{source}: no ratings, the file is {what}")
    return _ParsedFile(source, data, sep_b, kinds, bool(header), comment_b, out["user"], out["item"],
                       out.get("rating"), out.get("timestamp"))


def _first_duplicate(users, items):
    """(position, earlier position) of the first record that repeats an earlier (user, item) pair,
    or None."""
    ui = users.codes if isinstance(users, _FactorizedIds) else np.unique(users, return_inverse=True)[1]
    ii = items.codes if isinstance(items, _FactorizedIds) else np.unique(items, return_inverse=True)[1]
    key = ui.reshape(-1).astype(np.int64) * (int(ii.max()) + 1) + ii.reshape(-1)
    order = np.argsort(key, kind="stable")
    skey = key[order]
    dup = np.flatnonzero(skey[1:] == skey[:-1]) + 1
    if dup.size == 0:
        return None
    later = order[dup]
    pos = int(later.min())
    earlier = int(np.flatnonzero(key == key[pos])[0])
    return pos, earlier


def read_ratings(path: str | os.PathLike, sep: str | None = None, columns: Sequence[str | None] | None = None,
                 header: bool | str = "infer", rating_scale: Any = "infer", duplicates: str = "last",
                 dtype: Any = None, comment: str | None = None, encoding: str = "utf-8",
                 name: str | None = None, *, item_info: Metadata | None = None,
                 user_info: Metadata | None = None) -> Ratings:
    r"""Read a delimited text file of ratings, one rating per line, into a :class:`~fastmf.Ratings`.

    The whole file is tokenised by a C kernel without the GIL (no Python loop per line); ML-1M's
    ``ratings.dat`` parses in well under a second.

    Parameters
    ----------
    path : str or os.PathLike
        The file. ``FileNotFoundError`` when it does not exist.
    sep : str or None
        Field separator, one or more characters (``"\t"``, ``","``, ``"::"``). None (default): ``","``
        for a ``.csv`` file, tab for ``.tsv``, otherwise the first of ``"::"``, tab, ``","``, ``";"``,
        ``"|"`` present in the first line (:func:`guess_sep`; the CLI uses the same guess).
        Fields may be quoted as in RFC 4180 (``"a,b"``, ``""`` for a quote; one-character separators
        only); quotes are removed. A quoted field may not span lines. A file holding a ``"`` is
        unquoted by Python's :mod:`csv` module before the C tokenizer runs (about 1.5-2 s per
        million lines, against 0.05 s unquoted).
    columns : sequence of str or None
        The name of each field of a line, in order: ``"user"``, ``"item"`` (both required),
        ``"rating"`` (optional: without it the data is implicit feedback, every value 1, and no
        rating scale applies), ``"timestamp"`` (optional, integer), and ``None`` / ``"_"`` /
        ``"skip"`` for a field to ignore. Every line must have exactly ``len(columns)`` fields.
        None (default): from the first line's field count, 2 ``user,item``, 3 ``user,item,rating``,
        4 ``user,item,rating,timestamp`` (:func:`guess_columns`).
    header : bool or "infer"
        True skips the first data line (a header naming the fields; its names are not used, the
        fields are given by ``columns``). ``"infer"`` (default) skips it when none of its fields is a
        number (or, without rating and timestamp fields, when its ids are not integers but the next
        line's are), so ``userId,movieId,rating,timestamp`` is skipped, while ``1,31,2.5,...`` and a
        malformed ``1,31,x,9`` are data (the latter an error naming line 1).
    rating_scale : "infer", (low, high) or None
        ``"infer"`` (default): the ratings' min and max, as in every :class:`Ratings` constructor.
        A declared ``(low, high)``: a rating outside it raises ValueError naming the file and line.
        None: no scale.
    duplicates : {"last", "mean", "error"}
        Policy for a repeated (user, item) pair, see :meth:`Ratings.from_arrays`; ``"error"`` names the
        file and both lines.
    dtype : {None, "float32", "float64"}
        Rating dtype; None stores float32 (exact for star ratings; pass "float64" to keep every digit).
    comment : str, optional
        Lines starting with this string are skipped.
    encoding : str
        Encoding of the separator, of string ids and of the text quoted in error messages. A UTF-8
        byte-order mark at the start of the file is ignored.
    name : str, optional
        Name of the returned Ratings (default: the file name).
    item_info, user_info : Metadata, optional
        Attached to the result.

    Returns
    -------
    Ratings

    Notes
    -----
    *Lines.* Lines end with ``\n`` or ``\r\n``; the last line may lack its line ending. Blank lines
    (empty, or just ``\r``) are skipped wherever they are, and so are comment lines; line numbers in
    messages count every physical line (1-based). Spaces around a field are ignored.

    *Ids.* User and item fields are read as 64-bit integers (``"007"`` is ``7``). When a field of the
    column is not an integer (``"u12"``) or does not fit in int64, the whole column is read as strings
    instead (still in C; then decoded with ``encoding``), so integer-looking ids in that column become
    strings too (``"7"``).

    *Timestamps.* When some lines have an empty timestamp field the file's timestamps are dropped
    (every rating is kept) with a :class:`MissingTimestampsWarning` giving the count and the first
    such line; pass ``columns=("user", "item", "rating", None)`` to ignore them silently.

    *Repeats.* Resolved repeats of a (user, item) pair give a
    :class:`~fastmf.data.DuplicateRatingsWarning` with their count and the first repeat's line.

    *Errors.* Every malformed line raises ValueError with the file, the 1-based line, the field and
    the line's text: a wrong number of fields, an empty field, a rating or timestamp that is not a
    number, an integer overflow, a non-finite rating (nan, inf) or a rating outside ``rating_scale``.
    Ratings are always numeric: a non-numeric rating is an error, never a fallback. An empty file, or
    one with no data lines, is a ValueError.

    Examples
    --------
    >>> ds = read_ratings("ml-1m/ratings.dat")          # "::" found, 4 columns   # doctest: +SKIP
    >>> ds = read_ratings("ratings.csv")                # ",", header skipped      # doctest: +SKIP
    >>> clicks = read_ratings("clicks.tsv", columns=("user", "item"))         # doctest: +SKIP
    """
    if duplicates not in DUPLICATE_POLICIES:
        raise DataError(f"duplicates must be one of {DUPLICATE_POLICIES}, got {duplicates!r}")
    if dtype is not None:
        try:
            _float_dtype(dtype)
        except DataError:
            raise DataError(f"dtype must be None, 'float32' or 'float64', got {dtype!r}") from None
    parsed = _parse_file(path, sep, columns, header, rating_scale, comment, encoding)
    return _to_ratings(parsed, rating_scale, duplicates, dtype, item_info, user_info,
                       name if name is not None else os.path.basename(parsed.source))


def _to_ratings(parsed, rating_scale, duplicates, dtype, item_info, user_info, name):
    if duplicates == "error":
        dup = _first_duplicate(parsed.users, parsed.items)
        if dup is not None:
            pos, first = dup
            raise DataError(
                f"{parsed.source}, line {parsed.line_of(pos)}: duplicate rating for user "
                f"{parsed.users[pos].item()!r}, item {parsed.items[pos].item()!r} (first given on line "
                f"{parsed.line_of(first)}); pass duplicates='last' or 'mean' to resolve repeats")
    implicit = parsed.ratings is None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DuplicateRatingsWarning)
        out = Ratings.from_arrays(parsed.users, parsed.items, parsed.ratings, parsed.timestamps,
                                  rating_scale=None if implicit else rating_scale, duplicates=duplicates,
                                  dtype=dtype if dtype is not None else np.float32,
                                  item_info=item_info, user_info=user_info, name=name)
    for w in caught:
        msg = str(w.message)
        if issubclass(w.category, DuplicateRatingsWarning):
            m = re.search(r" at position (\d+)$", msg)
            if m:
                msg = msg[:m.start()] + f" on line {parsed.line_of(int(m.group(1)))}"
            msg = f"{parsed.source}: {msg}"
        warnings.warn(msg, w.category, stacklevel=3)
    return out
