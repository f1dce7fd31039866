"""Pure-Python twin of the rating-file parse behind :func:`fastmf.read_ratings`: the oracle the fuzz
tests compare the C tokenizer (``csrc/parse.c``) and the reader around it against.

Written for clarity, line by line, from the rules stated in ``read_ratings``' docstring, not from the
C code:

* lines split at ``\\n``; one ``\\r`` before it is dropped; blank lines and comment lines are skipped;
  with a header, the first other line is skipped; line numbers count every physical line (1-based);
* fields split at every occurrence of ``sep`` (left to right, no overlap); exactly ``len(columns)``;
  spaces (only ``" "``) around a field are ignored;
* user / item ids: integers (``[+-]digits``, inside int64) unless some field of the column is not,
  then the whole column is text (decoded with ``encoding``); an id is non-empty, holds no NUL byte
  and is at most :data:`MAX_ID_BYTES` bytes;
* ratings: ``[+-](digits[.digits*] | .digits)[(e|E)[+-]digits]``, finite (``nan``/``inf`` are errors),
  inside the declared scale; timestamps: integers; an empty timestamp drops the file's timestamps;
* the first bad line (in file order) is the error; a repeated (user, item) pair keeps the last one.

Quoted files (any ``"``): only the unambiguous form is modelled here (every ``"`` belongs to a field
that is quoted from its first to its last byte, inner quotes doubled, no bare ``\\r``, no tab or
``\\x1e``/``\\x1f`` inside a field); for anything else :class:`Unspecified` is raised and a caller may
only require a clean error or a result.
"""

from __future__ import annotations

import re
from typing import Optional, Sequence, Tuple, Union

__all__ = ["MAX_ID_BYTES", "RefParseError", "Unspecified", "parse_records", "read_ratings_reference"]

#: the longest id (in bytes, after trimming spaces) a rating file may hold; the same limit as
#: ``fastmf.data.readers.MAX_ID_BYTES``
MAX_ID_BYTES = 256

INT64_MIN, INT64_MAX = -(2 ** 63), 2 ** 63 - 1
_INT = re.compile(rb"[+-]?[0-9]+\Z")
_FLOAT = re.compile(rb"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")


class RefParseError(Exception):
    """The input is invalid: ``line`` (1-based, None when the error is not about one line), ``field``
    (1-based, 0 for the field count) and ``reason`` (the names of ``fastmf._parse.REASONS``, or
    ``"decode"`` / ``"no_ratings"``)."""

    def __init__(self, line: Optional[int], field: Optional[int], reason: str) -> None:
        super().__init__(f"line {line}, field {field}: {reason}")
        self.line, self.field, self.reason = line, field, reason


class Unspecified(Exception):
    """The input uses a form (unusual quoting) whose exact outcome this reference does not model."""


def _split_quoted(line: str, sep: str):
    """The fields of a line with RFC 4180 quotes, in the unambiguous form only."""
    fields, i, n = [], 0, len(line)
    while True:
        if i < n and line[i] == '"':
            j, buf = i + 1, []
            while True:
                k = line.find('"', j)
                if k < 0:
                    raise Unspecified("unterminated quote")
                buf.append(line[j:k])
                if k + 1 < n and line[k + 1] == '"':
                    buf.append('"')
                    j = k + 2
                    continue
                j = k + 1
                break
            if j < n and line[j] != sep:
                raise Unspecified("text after a closing quote")
            fields.append("".join(buf))
            if j >= n:
                return fields
            i = j + 1
        else:
            k = line.find(sep, i)
            field = line[i:] if k < 0 else line[i:k]
            if '"' in field:
                raise Unspecified("quote inside an unquoted field")
            fields.append(field)
            if k < 0:
                return fields
            i = k + 1


def _lines(data: bytes, sep: str, encoding: str):
    """(line number, list of raw field bytes or None for a blank line, the line's bytes)."""
    if b'"' not in data:
        sep_b = sep.encode(encoding)
        for no, line in enumerate(data.split(b"\n"), 1):
            if line.endswith(b"\r"):
                line = line[:-1]
            yield no, (line.split(sep_b) if line else None), line
        return
    if len(sep) != 1:
        raise RefParseError(None, None, "quote_sep")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        raise RefParseError(None, None, "decode") from None
    if re.search("\r(?!\n)", text):
        raise Unspecified("a bare carriage return in a quoted file")
    for no, line in enumerate(text.split("\n"), 1):
        if line.endswith("\r"):
            line = line[:-1]
        if not line:
            yield no, None, b""
            continue
        fields = _split_quoted(line, sep) if '"' in line else line.split(sep)
        if any(c in f for f in fields for c in "\t\x1e\x1f"):
            raise Unspecified("tab or an information separator inside a field")
        yield no, [f.encode(encoding) for f in fields], line.encode(encoding)


def _is_number(b: bytes, integer: bool) -> bool:
    try:
        int(b) if integer else float(b)
    except ValueError:
        return False
    return True


def _infer_header(rows, names) -> bool:
    """The documented ``header="infer"`` rule over the first two data rows (lists of fields)."""
    if not rows:
        return False
    fields = [f.strip(b" ") for f in rows[0]]
    if len(fields) != len(names):
        return False
    if any(n in ("rating", "timestamp") for n in names):
        return not any(_is_number(fields[i], False) for i, n in enumerate(names) if n is not None)
    ids = [i for i, n in enumerate(names) if n in ("user", "item")]
    if len(rows) < 2 or all(_is_number(fields[i], True) for i in ids):
        return False
    nxt = [f.strip(b" ") for f in rows[1]]
    return len(nxt) == len(names) and all(_is_number(nxt[i], True) for i in ids)


def _field(text: bytes, kind: str, scale):
    """(value, None) or (None, reason) for one field of kind "int", "float" or "text"."""
    t = text.strip(b" ")
    if kind == "skip":
        return None, None
    if not t:
        return None, "empty"
    if kind == "int":
        if not _INT.match(t):
            return None, "not_number"
        digits = t.lstrip(b"+-").lstrip(b"0")
        if len(digits) > 19:
            return None, "overflow"
        v = int(digits or b"0") * (-1 if t.startswith(b"-") else 1)
        return (v, None) if INT64_MIN <= v <= INT64_MAX else (None, "overflow")
    if kind == "text":
        if b"\x00" in t:
            return None, "nul"
        if len(t) > MAX_ID_BYTES:
            return None, "too_long"
        return t, None
    if not _FLOAT.match(t):
        body = t[1:] if t[:1] in (b"+", b"-") else t
        if body.lower() in (b"nan", b"inf", b"infinity"):
            return None, "not_finite"
        return None, "not_number"
    v = float(t)
    if v in (float("inf"), float("-inf")):
        return None, "overflow"
    if scale is not None and not (scale[0] <= v <= scale[1]):
        return None, "out_of_range"
    return v, None


def parse_records(data: bytes, sep: str, columns: Sequence[Optional[str]], header: Union[bool, str],
                  comment: Optional[str] = None, encoding: str = "utf-8",
                  rating_scale: Optional[Tuple[float, float]] = None) -> Tuple[dict, list, bool]:
    """Every record of ``data`` before repeats are resolved: ``(columns, records, header_used)``,
    where ``columns`` maps each present field name to its final kind and ``records`` is a list of
    ``(line, {name: value})``. Raises :class:`RefParseError` or :class:`Unspecified`."""
    if data.startswith(b"\xef\xbb\xbf") and encoding.lower().replace("_", "-") in ("utf-8", "utf8"):
        data = data[3:]
    names = [None if c in (None, "_", "skip") else c for c in columns]
    comment_b = comment.encode(encoding) if comment else None
    rows = []
    for no, fields, raw in _lines(data, sep, encoding):
        if fields is None or (comment_b is not None and raw.startswith(comment_b)):
            continue
        rows.append((no, fields))
    if header == "infer":
        header = _infer_header([f for _, f in rows[:2]], names)
    if header:
        rows = rows[1:]
    kinds = {"user": "int", "item": "int", "rating": "float", "timestamp": "int", None: "skip"}
    kind = [kinds[n] for n in names]
    while True:
        records, restart = [], False
        for no, fields in rows:
            if len(fields) != len(names):
                raise RefParseError(no, 0, "field_count")
            rec = {}
            for f, (name, text) in enumerate(zip(names, fields)):
                value, bad = _field(text, kind[f], rating_scale)
                if bad is None:
                    if name is not None:
                        rec[name] = value
                    continue
                if name in ("user", "item") and kind[f] == "int" and bad in ("not_number", "overflow"):
                    kind[f] = "text"
                elif name == "timestamp" and bad == "empty":
                    kind[f] = "skip"
                    names[f] = None
                else:
                    raise RefParseError(no, f + 1, bad)
                restart = True
                break
            if restart:
                break
            records.append((no, rec))
        if not restart:
            break
    if not records:
        raise RefParseError(None, None, "no_ratings")
    final = {n: k for n, k in zip(names, kind) if n is not None}
    for _, rec in records:
        for n in ("user", "item"):
            if final[n] == "text":
                try:
                    rec[n] = rec[n].decode(encoding)
                except UnicodeDecodeError:
                    raise RefParseError(None, None, "decode") from None
    return final, records, bool(header)


def read_ratings_reference(data: bytes, sep: str, columns: Sequence[Optional[str]], header: Union[bool, str],
                           comment: Optional[str] = None, encoding: str = "utf-8",
                           rating_scale: Optional[Tuple[float, float]] = None) -> Tuple[list, list, list,
                                                                                      Optional[list]]:
    """What ``read_ratings(path, sep, columns, header, rating_scale, duplicates="last",
    dtype="float64", comment, encoding).to_arrays()`` returns for a file holding ``data``, as lists:
    ``(users, items, ratings, timestamps or None)``."""
    final, records, _ = parse_records(data, sep, columns, header, comment, encoding, rating_scale)
    last = {}
    for pos, (_, rec) in enumerate(records):
        last[(rec["user"], rec["item"])] = pos
    keep = sorted(last.values())
    users = [records[p][1]["user"] for p in keep]
    items = [records[p][1]["item"] for p in keep]
    ratings = [records[p][1].get("rating", 1.0) for p in keep]
    ts = [records[p][1]["timestamp"] for p in keep] if "timestamp" in final else None
    return users, items, ratings, ts
