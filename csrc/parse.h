/* Delimited-text tokenizer for rating files (one record per line, fields split by a fixed separator).
 *
 * Input: the whole file as bytes (buf, len; not NUL-terminated), a separator of one or more bytes and
 * the kind of each of the n_fields fields of a line:
 *   FASTMF_FIELD_SKIP     ignored (any content, may be empty)
 *   FASTMF_FIELD_INT64    decimal integer  [spaces] [+|-] digits [spaces]          -> int64_t out[k]
 *   FASTMF_FIELD_FLOAT64  decimal number   [spaces] [+|-] digits [. digits] [e[+|-]digits] [spaces]
 *                         (also ".5", "5."), finite, optionally inside [lo, hi]   -> double out[k]
 *   FASTMF_FIELD_SPAN     non-empty text without NUL bytes, at most opt->max_span bytes (when > 0),
 *                         kept as a byte span (surrounding spaces trimmed)
 *                         -> int64_t out[2k] = start offset in buf, out[2k+1] = length
 * NumPy equivalent of a successful parse (no quoting, no escapes):
 *   rows = [l.rstrip(b"\r") for l in buf.split(b"\n")];  rows = [r for r in rows if r and not comment]
 *   rows = rows[header:];  cols = zip(*(r.split(sep) for r in rows));  int(col) / float(col) per kind
 *
 * Lines: split at '\n'; a '\r' just before the '\n' (CRLF) is dropped; a last line without '\n' is
 * parsed. Blank lines (empty after dropping '\r') and lines starting with the comment prefix are
 * skipped; with opt->header != 0 the first line that is neither is skipped too. Line numbers are
 * 1-based physical line numbers and count every line, skipped or not.
 *
 * Numbers of any length are read (a mantissa of thousands of digits is rounded correctly: digits past
 * the 768th significant one only matter as a sticky bit, so they are summarised before strtod).
 *
 * Errors: the first malformed line stops the parse. The function returns FASTMF_ERR_PARSE (wrong field
 * count, empty field, not a number, integer overflow, a NUL byte or too many bytes in a SPAN) or
 * FASTMF_ERR_VALUE (a non-finite number or one outside [lo, hi]) and fills *err with the line, the 1-based field, the reason, the number of fields
 * found on that line and the byte range of the line; nothing is printed, outputs are then unspecified.
 * FASTMF_ERR_INDEX means more records than `capacity` (use fastmf_count_lines for the capacity).
 *
 * Ownership: the caller owns buf, the options and every output array; out[f] is NULL for SKIP fields
 * and points to `capacity` int64/double slots (2 * capacity int64 for SPAN). Single-threaded,
 * reentrant: no globals, no allocation, no locale use except strtod on rare long or huge numbers
 * (more than 19 significant digits or a decimal exponent beyond 22), which expects the "C" locale.
 * Time is linear in len (plus n_fields per line); memory is the caller's outputs only.
 */
#ifndef FASTMF_PARSE_H
#define FASTMF_PARSE_H

#include <stdint.h>
#include "common.h"

enum {
    FASTMF_FIELD_SKIP = 0,
    FASTMF_FIELD_INT64 = 1,
    FASTMF_FIELD_FLOAT64 = 2,
    FASTMF_FIELD_SPAN = 3
};

/* why a line was rejected (fastmf_parse_error.reason) */
enum {
    FASTMF_PARSE_OK = 0,
    FASTMF_PARSE_FIELD_COUNT = 1,  /* not n_fields fields on the line */
    FASTMF_PARSE_EMPTY = 2,        /* an INT64/FLOAT64/SPAN field is empty (or only spaces) */
    FASTMF_PARSE_NOT_NUMBER = 3,   /* not a decimal integer / number */
    FASTMF_PARSE_OVERFLOW = 4,     /* integer outside int64, or a number that overflows a double */
    FASTMF_PARSE_NOT_FINITE = 5,   /* nan / inf / infinity written out */
    FASTMF_PARSE_OUT_OF_RANGE = 6, /* a FLOAT64 value outside [lo, hi] (when check_range) */
    FASTMF_PARSE_CAPACITY = 7,     /* more records than capacity */
    FASTMF_PARSE_NUL = 8,          /* a SPAN field holds a NUL byte */
    FASTMF_PARSE_TOO_LONG = 9      /* a SPAN field is longer than max_span bytes */
};

typedef struct {
    const char *sep;          /* separator bytes, sep_len >= 1 */
    int64_t sep_len;
    int32_t n_fields;         /* fields per line, >= 1 */
    const int32_t *kinds;     /* n_fields FASTMF_FIELD_* */
    int32_t header;           /* 1: skip the first non-blank, non-comment line */
    const char *comment;      /* lines starting with these bytes are skipped; NULL or comment_len 0: none */
    int64_t comment_len;
    int32_t check_range;      /* 1: FLOAT64 values must lie in [lo, hi] */
    double lo, hi;
    int64_t max_span;         /* > 0: longest SPAN field accepted, in bytes (after trimming) */
} fastmf_parse_options;

typedef struct {
    int64_t line;             /* 1-based line number of the bad line */
    int32_t field;            /* 1-based field number at fault; 0 for a field-count error */
    int32_t reason;           /* FASTMF_PARSE_* */
    int64_t found_fields;     /* fields found on the bad line */
    int64_t line_start;       /* byte range [line_start, line_end) of the bad line, without EOL */
    int64_t line_end;
} fastmf_parse_error;

/* Upper bound on the records in buf: the number of '\n' bytes plus one. */
int64_t fastmf_count_lines(const char *buf, int64_t len);

/* Parse every record of buf; *n_records receives the number of records written to the outputs. */
fastmf_status fastmf_parse_delimited(const char *buf, int64_t len, const fastmf_parse_options *opt,
                                     int64_t capacity, void *const *out, int64_t *n_records,
                                     fastmf_parse_error *err);

/* 1-based line number of record `record` (0-based, as counted by fastmf_parse_delimited), or -1 when
 * there are fewer records. Used on error paths to name the line of an array position. */
int64_t fastmf_record_line(const char *buf, int64_t len, const fastmf_parse_options *opt, int64_t record);

/* Copy n spans (as written for a SPAN field) into a zero-padded n x width byte matrix (a NumPy
 * "S<width>" array); spans longer than width are truncated (the caller passes the maximum length). */
void fastmf_gather_spans(const char *buf, const int64_t *spans, int64_t n, int64_t width, char *out);

#endif
