/* Delimited-text tokenizer: see parse.h for the contract. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

/* 10^0 .. 10^22 are exact in a double; m * 10^k and m / 10^k with m <= 2^53 are then correctly rounded
 * (one IEEE operation on exact operands). */
static const double POW10[23] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22
};

#define MAX_EXACT_MANTISSA ((uint64_t)1 << 53)
/* A double halfway between two neighbours has at most 767 significant decimal digits, so a decimal
 * number cut to its first MAX_SIG_DIGITS significant digits plus one nonzero "sticky" digit (when a
 * nonzero digit was cut) rounds like the full number. */
#define MAX_SIG_DIGITS 780
#define STRTOD_BUF (MAX_SIG_DIGITS + 40)

int64_t fastmf_count_lines(const char *buf, int64_t len)
{
    int64_t n = 1;
    const char *p = buf, *end = buf + len;
    while (p < end) {
        const char *nl = (const char *)memchr(p, '\n', (size_t)(end - p));
        if (nl == NULL) break;
        ++n;
        p = nl + 1;
    }
    return n;
}

/* ------------------------------------------------------------------ lines */

typedef struct {
    const char *p, *end;
    int64_t line;          /* physical line number of the line last returned */
    int need_header;
} line_iter;

/* Advance to the next data line (not blank, not a comment, not the header); [*ls, *le) is its text
 * without the line ending. Returns 0 at the end of the buffer. */
static int next_record(line_iter *it, const fastmf_parse_options *opt, const char **ls, const char **le)
{
    while (it->p < it->end) {
        const char *p = it->p;
        const char *nl = (const char *)memchr(p, '\n', (size_t)(it->end - p));
        const char *e = nl ? nl : it->end;
        it->p = nl ? nl + 1 : it->end;
        it->line++;
        if (e > p && e[-1] == '\r') --e;
        if (e == p) continue;                                           /* blank line */
        if (opt->comment_len > 0 && e - p >= opt->comment_len
            && memcmp(p, opt->comment, (size_t)opt->comment_len) == 0) continue;
        if (it->need_header) { it->need_header = 0; continue; }
        *ls = p;
        *le = e;
        return 1;
    }
    return 0;
}

static void iter_init(line_iter *it, const char *buf, int64_t len, const fastmf_parse_options *opt)
{
    it->p = buf;
    it->end = buf + len;
    it->line = 0;
    it->need_header = opt->header != 0;
}

/* First occurrence of the separator in [s, e), or e. */
static const char *find_sep(const char *s, const char *e, const char *sep, int64_t sep_len)
{
    if (sep_len == 1) {
        const char *q = (const char *)memchr(s, sep[0], (size_t)(e - s));
        return q ? q : e;
    }
    while (e - s >= sep_len) {
        const char *q = (const char *)memchr(s, sep[0], (size_t)(e - s - sep_len + 1));
        if (q == NULL) return e;
        if (memcmp(q + 1, sep + 1, (size_t)(sep_len - 1)) == 0) return q;
        s = q + 1;
    }
    return e;
}

static int64_t count_fields(const char *s, const char *e, const char *sep, int64_t sep_len)
{
    int64_t n = 1;
    for (;;) {
        const char *q = find_sep(s, e, sep, sep_len);
        if (q == e) return n;
        ++n;
        s = q + sep_len;
    }
}

/* ------------------------------------------------------------------ numbers */

static void trim_spaces(const char **s, const char **e)
{
    while (*s < *e && **s == ' ') ++*s;
    while (*e > *s && (*e)[-1] == ' ') --*e;
}

/* int(text) for [s, e): returns a FASTMF_PARSE_* reason. */
static int parse_int64(const char *s, const char *e, int64_t *out)
{
    int neg = 0, over = 0;
    uint64_t acc = 0, limit;
    trim_spaces(&s, &e);
    if (s == e) return FASTMF_PARSE_EMPTY;
    if (*s == '+' || *s == '-') { neg = (*s == '-'); ++s; }
    if (s == e) return FASTMF_PARSE_NOT_NUMBER;
    limit = neg ? (uint64_t)INT64_MAX + 1u : (uint64_t)INT64_MAX;
    for (; s < e; ++s) {
        unsigned d = (unsigned)((unsigned char)*s - '0');
        if (d > 9) return FASTMF_PARSE_NOT_NUMBER;
        if (acc > (limit - d) / 10) over = 1;
        else acc = acc * 10 + d;
    }
    if (over) return FASTMF_PARSE_OVERFLOW;
    /* -(acc) without signed overflow for acc == 2^63 */
    *out = neg ? (acc == 0 ? 0 : -(int64_t)(acc - 1) - 1) : (int64_t)acc;
    return FASTMF_PARSE_OK;
}

static int lower_eq(const char *s, const char *e, const char *word)
{
    size_t n = strlen(word);
    size_t i;
    if ((size_t)(e - s) != n) return 0;
    for (i = 0; i < n; ++i) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
        if (c != word[i]) return 0;
    }
    return 1;
}

/* strtod of a number of any length, [s, e) already checked to be [+|-] digits [. digits] [e[+|-]digits]
 * with a nonzero digit: rewritten as [-] D e X with D its first MAX_SIG_DIGITS significant digits (and a
 * sticky 1 when nonzero digits were cut), so the text fits a fixed buffer and rounds the same. */
static double long_decimal(const char *s, const char *e)
{
    char tmp[STRTOD_BUF];
    size_t n = 0;
    int64_t p = 0, ex = 0, total;
    int seen = 0, point = 0, sticky = 0, eneg = 0, nd = 0;
    if (*s == '+' || *s == '-') { if (*s == '-') tmp[n++] = '-'; ++s; }
    for (; s < e && *s != 'e' && *s != 'E'; ++s) {
        int d;
        if (*s == '.') { point = 1; continue; }
        d = *s - '0';
        if (!seen) {
            if (d == 0) { if (point) --p; continue; }     /* leading zeros: only move the point */
            seen = 1;
        }
        if (!point) ++p;                                  /* value = 0.D x 10^p */
        if (nd < MAX_SIG_DIGITS) { tmp[n++] = *s; ++nd; }
        else if (d != 0) sticky = 1;
    }
    if (s < e) {                                          /* exponent */
        ++s;
        if (s < e && (*s == '+' || *s == '-')) { eneg = (*s == '-'); ++s; }
        for (; s < e; ++s)
            if (ex < 100000000) ex = ex * 10 + (*s - '0');  /* beyond any double: the cap keeps it so */
        if (eneg) ex = -ex;
    }
    if (sticky) { tmp[n++] = '1'; ++nd; }
    total = p + ex - nd;                                  /* value = D x 10^total */
    tmp[n++] = 'e';
    if (total < 0) { tmp[n++] = '-'; total = -total; }
    {
        char rev[24];
        int r = 0;
        do { rev[r++] = (char)('0' + total % 10); total /= 10; } while (total > 0 && r < 23);
        while (r > 0) tmp[n++] = rev[--r];
    }
    tmp[n] = '\0';
    return strtod(tmp, NULL);
}

/* float(text) for [s, e): returns a FASTMF_PARSE_* reason. */
static int parse_float64(const char *s, const char *e, double *out)
{
    const char *start;
    int neg = 0, any = 0, inexact = 0, nd = 0;
    uint64_t m = 0;
    int64_t exp10 = 0;
    double v;

    trim_spaces(&s, &e);
    if (s == e) return FASTMF_PARSE_EMPTY;
    start = s;
    if (*s == '+' || *s == '-') { neg = (*s == '-'); ++s; }
    {
        const char *body = s;
        for (; s < e && (unsigned)((unsigned char)*s - '0') <= 9; ++s) {
            unsigned d = (unsigned)(*s - '0');
            any = 1;
            if (m == 0 && d == 0) continue;                   /* leading zero */
            if (nd < 19) { m = m * 10 + d; ++nd; }
            else { ++exp10; inexact = 1; }
        }
        if (s < e && *s == '.') {
            ++s;
            for (; s < e && (unsigned)((unsigned char)*s - '0') <= 9; ++s) {
                unsigned d = (unsigned)(*s - '0');
                any = 1;
                if (m == 0 && d == 0) { --exp10; continue; }
                if (nd < 19) { m = m * 10 + d; ++nd; --exp10; }
                else if (d != 0) inexact = 1;
            }
        }
        if (!any) {
            if (lower_eq(body, e, "nan") || lower_eq(body, e, "inf") || lower_eq(body, e, "infinity"))
                return FASTMF_PARSE_NOT_FINITE;
            return FASTMF_PARSE_NOT_NUMBER;
        }
    }
    if (s < e && (*s == 'e' || *s == 'E')) {
        int eneg = 0;
        int64_t ex = 0;
        ++s;
        if (s < e && (*s == '+' || *s == '-')) { eneg = (*s == '-'); ++s; }
        if (s == e) return FASTMF_PARSE_NOT_NUMBER;
        for (; s < e; ++s) {
            unsigned d = (unsigned)((unsigned char)*s - '0');
            if (d > 9) return FASTMF_PARSE_NOT_NUMBER;
            if (ex < 100000) ex = ex * 10 + d;
        }
        exp10 += eneg ? -ex : ex;
    }
    if (s != e) return FASTMF_PARSE_NOT_NUMBER;

    if (m == 0) {
        v = 0.0;
    } else if (!inexact && m <= MAX_EXACT_MANTISSA && exp10 >= -22 && exp10 <= 22) {
        v = exp10 < 0 ? (double)m / POW10[-exp10] : (double)m * POW10[exp10];
    } else {
        /* rare: many digits or a large exponent; let strtod round it correctly */
        v = long_decimal(start, e);
        if (isinf(v)) return FASTMF_PARSE_OVERFLOW;
        *out = v;
        return FASTMF_PARSE_OK;
    }
    *out = neg ? -v : v;
    return FASTMF_PARSE_OK;
}

/* ------------------------------------------------------------------ fast paths
 * The common case, a plain number directly followed by the separator or the line end, is parsed in
 * one pass without first searching for the separator. They return the end of the field, or NULL when
 * the text is anything else (spaces, exponent, many digits, an error): the general path then parses
 * the field again and reports the error. Only used when the separator cannot start with a character
 * of a number (see sep_is_safe), so the first separator cannot lie inside the digits read. */

static int sep_is_safe(const fastmf_parse_options *opt)
{
    char c = opt->sep[0];
    return !((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.' || c == 'e' || c == 'E' || c == ' ');
}

static const char *field_end(const char *p, const char *le, const fastmf_parse_options *opt)
{
    if (p == le) return p;
    if (*p != opt->sep[0]) return NULL;
    if (opt->sep_len > 1 && (le - p < opt->sep_len || memcmp(p + 1, opt->sep + 1, (size_t)(opt->sep_len - 1)) != 0))
        return NULL;
    return p;
}

static const char *fast_int64(const char *s, const char *le, const fastmf_parse_options *opt, int64_t *out)
{
    const char *p = s, *d0;
    uint64_t acc = 0;
    int neg = 0;
    if (p < le && *p == '-') { neg = 1; ++p; }
    d0 = p;
    while (p < le && (unsigned)((unsigned char)*p - '0') <= 9 && p - d0 < 18) acc = acc * 10 + (unsigned)(*p++ - '0');
    if (p == d0) return NULL;
    p = field_end(p, le, opt);
    if (p != NULL) *out = neg ? -(int64_t)acc : (int64_t)acc;
    return p;
}

static const char *fast_float64(const char *s, const char *le, const fastmf_parse_options *opt, double *out)
{
    const char *p = s, *d0;
    uint64_t m = 0;
    int frac = 0, nd;
    while (p < le && (unsigned)((unsigned char)*p - '0') <= 9 && p - s < 15) m = m * 10 + (unsigned)(*p++ - '0');
    nd = (int)(p - s);
    if (p < le && *p == '.') {
        d0 = ++p;
        while (p < le && (unsigned)((unsigned char)*p - '0') <= 9 && nd + (p - d0) < 15) m = m * 10 + (unsigned)(*p++ - '0');
        frac = (int)(p - d0);
        nd += frac;
    }
    if (nd == 0) return NULL;
    p = field_end(p, le, opt);
    if (p != NULL) *out = (double)m / POW10[frac];   /* m < 10^15 < 2^53: exact, one rounding */
    return p;
}

/* ------------------------------------------------------------------ records */

fastmf_status fastmf_parse_delimited(const char *buf, int64_t len, const fastmf_parse_options *opt,
                                     int64_t capacity, void *const *out, int64_t *n_records,
                                     fastmf_parse_error *err)
{
    line_iter it;
    const char *ls, *le;
    int64_t k = 0;
    const int32_t nf = opt->n_fields;
    const int fast = sep_is_safe(opt);

    iter_init(&it, buf, len, opt);
    err->line = 0;
    err->field = 0;
    err->reason = FASTMF_PARSE_OK;
    err->found_fields = 0;
    err->line_start = err->line_end = 0;
    *n_records = 0;

    while (next_record(&it, opt, &ls, &le)) {
        const char *fs = ls;
        int32_t f;
        int bad_reason = FASTMF_PARSE_OK, bad_field = 0, count_ok = 1;

        if (k >= capacity) {
            err->line = it.line;
            err->reason = FASTMF_PARSE_CAPACITY;
            err->line_start = ls - buf;
            err->line_end = le - buf;
            return FASTMF_ERR_INDEX;
        }
        for (f = 0; f < nf; ++f) {
            const char *fe = NULL;
            int r = FASTMF_PARSE_OK, done = 0;
            if (fast && bad_reason == FASTMF_PARSE_OK) {
                if (opt->kinds[f] == FASTMF_FIELD_INT64) {
                    fe = fast_int64(fs, le, opt, (int64_t *)out[f] + k);
                } else if (opt->kinds[f] == FASTMF_FIELD_FLOAT64) {
                    double *dst = (double *)out[f] + k;
                    fe = fast_float64(fs, le, opt, dst);
                    if (fe != NULL && opt->check_range && !(*dst >= opt->lo && *dst <= opt->hi))
                        r = FASTMF_PARSE_OUT_OF_RANGE;
                }
                done = fe != NULL;
            }
            if (fe == NULL) fe = find_sep(fs, le, opt->sep, opt->sep_len);
            if ((f < nf - 1 && fe == le) || (f == nf - 1 && fe != le)) { count_ok = 0; break; }
            if (done) {
                if (r != FASTMF_PARSE_OK) { bad_reason = r; bad_field = f + 1; }
            } else if (bad_reason == FASTMF_PARSE_OK) {
                switch (opt->kinds[f]) {
                case FASTMF_FIELD_INT64:
                    r = parse_int64(fs, fe, (int64_t *)out[f] + k);
                    break;
                case FASTMF_FIELD_FLOAT64: {
                    double *dst = (double *)out[f] + k;
                    r = parse_float64(fs, fe, dst);
                    if (r == FASTMF_PARSE_OK && opt->check_range && !(*dst >= opt->lo && *dst <= opt->hi))
                        r = FASTMF_PARSE_OUT_OF_RANGE;
                    break;
                }
                case FASTMF_FIELD_SPAN: {
                    const char *a = fs, *b = fe;
                    int64_t *dst = (int64_t *)out[f] + 2 * k;
                    trim_spaces(&a, &b);
                    if (a == b) r = FASTMF_PARSE_EMPTY;
                    else if (memchr(a, '\0', (size_t)(b - a)) != NULL) r = FASTMF_PARSE_NUL;
                    else if (opt->max_span > 0 && b - a > opt->max_span) r = FASTMF_PARSE_TOO_LONG;
                    dst[0] = a - buf;
                    dst[1] = b - a;
                    break;
                }
                default:
                    break;
                }
                if (r != FASTMF_PARSE_OK) { bad_reason = r; bad_field = f + 1; }
            }
            fs = fe + opt->sep_len;
        }
        if (!count_ok || bad_reason != FASTMF_PARSE_OK) {
            err->line = it.line;
            err->line_start = ls - buf;
            err->line_end = le - buf;
            err->found_fields = count_fields(ls, le, opt->sep, opt->sep_len);
            if (!count_ok) {
                err->reason = FASTMF_PARSE_FIELD_COUNT;
                err->field = 0;
                return FASTMF_ERR_PARSE;
            }
            err->reason = bad_reason;
            err->field = bad_field;
            return (bad_reason == FASTMF_PARSE_NOT_FINITE || bad_reason == FASTMF_PARSE_OUT_OF_RANGE)
                ? FASTMF_ERR_VALUE : FASTMF_ERR_PARSE;
        }
        ++k;
    }
    *n_records = k;
    return FASTMF_OK;
}

int64_t fastmf_record_line(const char *buf, int64_t len, const fastmf_parse_options *opt, int64_t record)
{
    line_iter it;
    const char *ls, *le;
    int64_t k = 0;
    iter_init(&it, buf, len, opt);
    while (next_record(&it, opt, &ls, &le)) {
        if (k == record) return it.line;
        ++k;
    }
    return -1;
}

void fastmf_gather_spans(const char *buf, const int64_t *spans, int64_t n, int64_t width, char *out)
{
    int64_t k;
    for (k = 0; k < n; ++k) {
        int64_t len = spans[2 * k + 1];
        char *dst = out + k * width;
        if (len > width) len = width;
        memcpy(dst, buf + spans[2 * k], (size_t)len);
        if (len < width) memset(dst + len, 0, (size_t)(width - len));
    }
}
