# cython: language_level=3
"""Thin wrapper over csrc/parse.c, the delimited-text tokenizer behind :func:`fastmf.read_ratings`.

Private: callers pass the whole file as a bytes-like object plus the separator and the kind of each
field; the C kernel runs without the GIL and this layer turns its status into a :class:`ParseError`
(a ValueError) naming the file, the line, the field and the text of the offending line.
"""

import numpy as np

from fastmf.errors import ParseError

from libc.stdint cimport int32_t, int64_t
from fastmf._common cimport (fastmf_status, FASTMF_OK, FASTMF_ERR_NOMEM, FASTMF_ERR_INDEX,
                             FASTMF_ERR_VALUE, FASTMF_ERR_PARSE)

from libc.stdlib cimport free, malloc

cdef extern from "parse.h":
    enum:
        FASTMF_FIELD_SKIP
        FASTMF_FIELD_INT64
        FASTMF_FIELD_FLOAT64
        FASTMF_FIELD_SPAN
    enum:
        FASTMF_PARSE_OK
        FASTMF_PARSE_FIELD_COUNT
        FASTMF_PARSE_EMPTY
        FASTMF_PARSE_NOT_NUMBER
        FASTMF_PARSE_OVERFLOW
        FASTMF_PARSE_NOT_FINITE
        FASTMF_PARSE_OUT_OF_RANGE
        FASTMF_PARSE_CAPACITY
        FASTMF_PARSE_NUL
        FASTMF_PARSE_TOO_LONG
    ctypedef struct fastmf_parse_options:
        const char *sep
        int64_t sep_len
        int32_t n_fields
        const int32_t *kinds
        int32_t header
        const char *comment
        int64_t comment_len
        int32_t check_range
        double lo
        double hi
        int64_t max_span
    ctypedef struct fastmf_parse_error:
        int64_t line
        int32_t field
        int32_t reason
        int64_t found_fields
        int64_t line_start
        int64_t line_end
    int64_t fastmf_count_lines(const char *buf, int64_t len) nogil
    fastmf_status fastmf_parse_delimited(const char *buf, int64_t len, const fastmf_parse_options *opt,
                                         int64_t capacity, void *const *out, int64_t *n_records,
                                         fastmf_parse_error *err) nogil
    int64_t fastmf_record_line(const char *buf, int64_t len, const fastmf_parse_options *opt,
                               int64_t record) nogil
    void fastmf_gather_spans(const char *buf, const int64_t *spans, int64_t n, int64_t width,
                             char *out) nogil


SKIP = FASTMF_FIELD_SKIP
INT64 = FASTMF_FIELD_INT64
FLOAT64 = FASTMF_FIELD_FLOAT64
SPAN = FASTMF_FIELD_SPAN

REASONS = {
    FASTMF_PARSE_FIELD_COUNT: "field_count",
    FASTMF_PARSE_EMPTY: "empty",
    FASTMF_PARSE_NOT_NUMBER: "not_number",
    FASTMF_PARSE_OVERFLOW: "overflow",
    FASTMF_PARSE_NOT_FINITE: "not_finite",
    FASTMF_PARSE_OUT_OF_RANGE: "out_of_range",
    FASTMF_PARSE_CAPACITY: "capacity",
    FASTMF_PARSE_NUL: "nul",
    FASTMF_PARSE_TOO_LONG: "too_long",
}

MAX_LINE_TEXT = 120




cdef class _Options:
    """The C options struct plus the Python objects its pointers refer to (kept alive here)."""
    cdef fastmf_parse_options opt
    cdef bytes sep, comment
    cdef object kinds

    def __init__(self, bytes sep, kinds, bint header, bytes comment, rating_scale, int64_t max_span=0):
        if len(sep) == 0:
            raise ValueError("sep must not be empty")
        self.sep = sep
        self.comment = comment if comment is not None else b""
        self.kinds = np.ascontiguousarray(kinds, dtype=np.int32)
        cdef const int32_t[::1] k = self.kinds
        if k.shape[0] == 0:
            raise ValueError("at least one field is needed")
        self.opt.sep = self.sep
        self.opt.sep_len = len(self.sep)
        self.opt.n_fields = <int32_t>k.shape[0]
        self.opt.kinds = &k[0]
        self.opt.header = 1 if header else 0
        self.opt.comment = self.comment
        self.opt.comment_len = len(self.comment)
        if max_span < 0:
            raise ValueError(f"max_span must be >= 0 (0: no limit), got {max_span}")
        self.opt.max_span = max_span
        if rating_scale is None:
            self.opt.check_range = 0
            self.opt.lo = 0.0
            self.opt.hi = 0.0
        else:
            self.opt.check_range = 1
            self.opt.lo = float(rating_scale[0])
            self.opt.hi = float(rating_scale[1])


def _line_text(buf, int64_t a, int64_t b, str encoding):
    text = bytes(buf[a:min(b, a + 4 * MAX_LINE_TEXT)]).decode(encoding, errors="replace")
    return repr(text[:MAX_LINE_TEXT] + ("..." if len(text) > MAX_LINE_TEXT or b - a > 4 * MAX_LINE_TEXT else ""))


def _describe(fastmf_parse_error err, buf, bytes sep, kinds, labels, source, str encoding, rating_scale,
              max_span=0):
    """The message of a ParseError for ``err``."""
    where = f"{source}, line {err.line}"
    text = _line_text(buf, err.line_start, err.line_end, encoding)
    n_fields = len(kinds)
    reason = err.reason
    if reason == FASTMF_PARSE_FIELD_COUNT:
        return (f"{where}: expected {n_fields} fields separated by {sep.decode(encoding, 'replace')!r}, "
                f"found {err.found_fields}: {text}")
    if reason == FASTMF_PARSE_CAPACITY:
        return f"{where}: more records than lines counted (file changed while reading?)"
    f = err.field - 1
    raw = bytes(buf[err.line_start:err.line_end]).split(sep)[f].strip(b" ")
    value = raw[:MAX_LINE_TEXT].decode(encoding, errors="replace")
    label = f"field {err.field} ({labels[f]})"
    if reason == FASTMF_PARSE_EMPTY:
        return f"{where}: {label} is empty: {text}"
    if reason == FASTMF_PARSE_NUL:
        return (f"{where}: {label} {value!r} holds a NUL byte (\\x00); ids must not contain NUL bytes: "
                f"{text}")
    if reason == FASTMF_PARSE_TOO_LONG:
        return (f"{where}: {label} is {len(raw):,} bytes long, more than the limit of {max_span:,} bytes "
                f"for an id: {text}")
    if reason == FASTMF_PARSE_NOT_NUMBER:
        what = "an integer" if kinds[f] == FASTMF_FIELD_INT64 else "a number"
        return f"{where}: {label} {value!r} is not {what}: {text}"
    if reason == FASTMF_PARSE_OVERFLOW:
        if kinds[f] == FASTMF_FIELD_INT64:
            return f"{where}: {label} {value!r} does not fit in a 64-bit integer: {text}"
        return f"{where}: {label} {value!r} overflows a double: {text}"
    if reason == FASTMF_PARSE_NOT_FINITE:
        return f"{where}: {label} {value!r} is not finite (nan and inf are not valid values): {text}"
    if reason == FASTMF_PARSE_OUT_OF_RANGE:
        lo, hi = rating_scale
        return (f"{where}: {label} {value} is outside the rating scale [{lo:g}, {hi:g}] "
                f"(pass rating_scale=None to accept any value): {text}")
    return f"{where}: parse error {reason}: {text}"


def parse(const unsigned char[::1] buf, bytes sep, kinds, labels, *, bint header=False, bytes comment=None,
          rating_scale=None, source="<bytes>", str encoding="utf-8", int64_t max_span=0):
    """Parse ``buf`` into one array per field.

    ``kinds[f]`` is SKIP, INT64, FLOAT64 or SPAN; ``labels[f]`` names the field in messages. FLOAT64
    fields are checked against ``rating_scale`` (lo, hi) unless it is None. SPAN fields hold no NUL
    byte and, when ``max_span > 0``, at most ``max_span`` bytes. Returns a list holding, per
    field, None (SKIP), an int64 array (INT64), a float64 array (FLOAT64) or an (n, 2) int64 array of
    (start, length) byte spans (SPAN). Raises :class:`ParseError` on the first malformed line.
    """
    cdef _Options o = _Options(sep, kinds, header, comment, rating_scale, max_span)
    cdef int64_t length = buf.shape[0]
    cdef const char *p = <const char *>&buf[0] if length > 0 else <const char *>""
    cdef int64_t cap
    cdef int64_t n = 0
    cdef int nf = o.opt.n_fields
    cdef int f
    cdef fastmf_parse_error err
    cdef fastmf_status st
    cdef void **ptrs
    cdef int64_t[::1] iview
    cdef double[::1] dview
    kind_list = [int(x) for x in o.kinds]
    if len(labels) != nf:
        raise ValueError(f"{nf} fields but {len(labels)} labels")
    with nogil:
        cap = fastmf_count_lines(p, length)
    arrays = []
    ptrs = <void **>malloc(nf * sizeof(void *))
    if ptrs == NULL:
        raise MemoryError("parse: cannot allocate the field table")
    try:
        for f in range(nf):
            kind = kind_list[f]
            ptrs[f] = NULL
            if kind == FASTMF_FIELD_INT64:
                a = np.empty(cap, dtype=np.int64)
                iview = a
                ptrs[f] = &iview[0]
            elif kind == FASTMF_FIELD_FLOAT64:
                a = np.empty(cap, dtype=np.float64)
                dview = a
                ptrs[f] = &dview[0]
            elif kind == FASTMF_FIELD_SPAN:
                a = np.empty(2 * cap, dtype=np.int64)
                iview = a
                ptrs[f] = &iview[0]
            elif kind == FASTMF_FIELD_SKIP:
                a = None
            else:
                raise ValueError(f"unknown field kind {kind}")
            arrays.append(a)
        with nogil:
            st = fastmf_parse_delimited(p, length, &o.opt, cap, ptrs, &n, &err)
    finally:
        free(ptrs)
    if st != FASTMF_OK:
        msg = _describe(err, buf, sep, kind_list, labels, source, encoding, rating_scale, max_span)
        raise ParseError(msg, int(err.line), int(err.field), REASONS.get(err.reason, str(err.reason)))
    out = []
    for f in range(nf):
        a = arrays[f]
        if a is None:
            out.append(None)
        elif kind_list[f] == FASTMF_FIELD_SPAN:
            out.append(a[:2 * n].reshape(n, 2))
        else:
            out.append(a[:n])
    return out


def record_line(const unsigned char[::1] buf, bytes sep, kinds, *, bint header=False, bytes comment=None,
                int64_t record=0):
    """1-based line number of data record ``record`` (0-based), -1 past the end."""
    cdef _Options o = _Options(sep, kinds, header, comment, None)
    cdef int64_t length = buf.shape[0]
    cdef const char *p = <const char *>&buf[0] if length > 0 else <const char *>""
    cdef int64_t line
    with nogil:
        line = fastmf_record_line(p, length, &o.opt, record)
    return int(line)


def gather_spans(const unsigned char[::1] buf, const int64_t[:, ::1] spans):
    """The text of each (start, length) span as a NumPy ``S<width>`` array (width = longest span)."""
    cdef int64_t n = spans.shape[0]
    if spans.shape[1] != 2:
        raise ValueError("spans must have shape (n, 2)")
    cdef int64_t width = 1
    cdef int64_t k
    cdef int64_t length = buf.shape[0]
    for k in range(n):
        if spans[k, 0] < 0 or spans[k, 1] < 0 or spans[k, 0] + spans[k, 1] > length:
            raise IndexError(f"span {k} = ({spans[k, 0]}, {spans[k, 1]}) lies outside the buffer")
        if spans[k, 1] > width:
            width = spans[k, 1]
    out = np.empty(n, dtype=f"S{width}")
    if n == 0:
        return out
    cdef unsigned char[::1] view = out.view(np.uint8)
    cdef const char *p = <const char *>&buf[0]
    with nogil:
        fastmf_gather_spans(p, &spans[0, 0], n, width, <char *>&view[0])
    return out
