/*
 * One TikTok report page (the raw JSON body) -> typed Arrow column buffers, in one pass.
 *
 * Why C: an ad-level row holds ~100 metrics, every one a JSON string ("35.50", "4952", "-").
 * Any path through Python objects (orjson, msgspec, pyarrow.json, polars, duckdb were all
 * measured) costs 20-40 us of CPU per row on this service's 2-core machines, 2-4x the budget,
 * because it creates and converts a Python object per cell. This reader writes each cell
 * straight into its column buffer (Arrow layout: validity bitmap, int64/double values, or
 * int32 offsets + UTF-8 bytes), and hands Python the envelope's other fields as byte spans.
 *
 * It is deliberately conservative: anything it does not fully understand (a duplicate key,
 * a number it cannot parse exactly, an integer metric written "12.0", a non-string id,
 * a "-" or "" dimension, more rows than a page holds) makes tt_parse return TT_FALLBACK,
 * and the Python caller reads the page with orjson + pyarrow instead, with that path's
 * exact semantics and error messages. It validates all of the body as strictly as orjson
 * does, what it skips as well as what it reads (UTF-8, escapes, number syntax and range),
 * so it never types a body orjson would refuse. Semantics match controller/normalize.py:
 * "-" and "" are null in every metric column, a missing key is null, numbers may come as
 * JSON strings or JSON numbers (a bare number is typed as str() of orjson's value would
 * be: a bare -0 is 0.0). fuzz/ holds the differential fuzzer that checks all of this.
 *
 * Build: python controller/native/build.py (cc -O3 -shared -fPIC). No Python headers: ctypes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef TT_SOURCE_HASH
#define TT_SOURCE_HASH "unknown"
#endif
/* Checked by the loader against the source it sits beside (see build.py). */
const char *tt_source_hash(void) { return TT_SOURCE_HASH; }

#define TT_OK 0
#define TT_FALLBACK 1
#define TT_NOMEM 2

enum { KIND_STRING = 0, KIND_INT = 1, KIND_FLOAT = 2 };
enum { SECTION_DIMENSIONS = 0, SECTION_METRICS = 1 };
#define MAX_SPANS 32
#define HASH_SIZE 1024 /* power of two, > 2x the ~100 columns of a level */

/* The part Python reads (mirrored by a ctypes.Structure): keep the order. */
typedef struct {
    int64_t null_count;
    uint8_t *valid;  /* bitmap, bit i = row i is not null */
    char *data;      /* int64/double values, or the UTF-8 bytes of a string column */
    int64_t data_len;
    int32_t *offsets; /* string columns: rows + 1 offsets */
    /* private */
    int32_t kind;
    int32_t section;
    int64_t filled_row;
    const char *name;
    size_t name_len;
    size_t valid_cap, data_cap, offsets_cap;
} tt_column;

typedef struct {
    int32_t section, column;
    const char *name;
    size_t len;
} entry;

typedef struct {
    int64_t rows;
    int32_t span_count;
    int64_t spans[MAX_SPANS][5]; /* in_data, key_start, key_len, value_start, value_len */
    int32_t has_list;
    int32_t has_data;
    /* tt_finish: the int64 and the double columns each in one column-major block (one
     * Arrow array apiece for Python, sliced per column: a call per column costs more). */
    char *block_values[2];
    uint8_t *block_valid[2];
    int64_t block_nulls[2];
    /* private */
    int32_t ncols;
    tt_column *cols;
    entry table[HASH_SIZE];
    char *names; /* the names' bytes, owned */
    int32_t *order[2]; /* per section: the column met at each key position (-1: none yet) */
    int64_t cap_rows;  /* rows every column has room for */
    int64_t max_rows;  /* more rows than a page can hold: declined (bounds the memory) */
    int32_t order_len[2];
    int32_t lists;     /* "list" members met in data: a second one is declined */
    const char *base;
    const char *list_start; /* where the rows begin: sizes the reservations (reserve_rows) */
} tt_reader;

typedef struct {
    const char *p, *end;
} cursor;

static uint32_t hash(int32_t section, const char *s, size_t n) {
    uint32_t h = 2166136261u ^ (uint32_t)section;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

static int grow(void **buf, size_t *cap, size_t need, size_t unit) {
    if (need <= *cap) return 0;
    size_t cap2 = *cap ? *cap : (need > 64 ? need : 64);
    while (cap2 < need) cap2 *= 2;
    void *p = realloc(*buf, cap2 * unit);
    if (!p) return -1;
    if (unit == 1 && buf != NULL && cap2 > *cap) memset((char *)p + *cap, 0, cap2 - *cap);
    *buf = p;
    *cap = cap2;
    return 0;
}

void tt_free(tt_reader *r);

/* spec: one record per column: a section byte ('0' dimensions, '1' metrics), a kind byte
 * ('0' string, '1' int64, '2' double), the name, a NUL. At most HASH_SIZE / 2 columns. */
tt_reader *tt_new(const char *spec, int32_t spec_len, int32_t ncols, int64_t max_rows) {
    if (ncols < 0 || ncols > HASH_SIZE / 2 || max_rows < 0) return NULL;
    tt_reader *r = calloc(1, sizeof(tt_reader));
    if (!r) return NULL;
    r->ncols = ncols;
    r->max_rows = max_rows;
    r->cols = calloc((size_t)ncols, sizeof(tt_column));
    r->names = malloc((size_t)spec_len);
    r->order[0] = calloc((size_t)ncols + 1, sizeof(int32_t));
    r->order[1] = calloc((size_t)ncols + 1, sizeof(int32_t));
    if (!r->cols || !r->names || !r->order[0] || !r->order[1]) {
        tt_free(r);
        return NULL;
    }
    memcpy(r->names, spec, (size_t)spec_len);
    for (int32_t i = 0; i <= ncols; i++) r->order[0][i] = r->order[1][i] = -1;
    const char *s = r->names;
    for (int32_t c = 0; c < ncols; c++) {
        int32_t section = s[0] - '0', kind = s[1] - '0';
        const char *name = s + 2;
        size_t len = strlen(name);
        r->cols[c].kind = kind;
        r->cols[c].section = section;
        r->cols[c].name = name;
        r->cols[c].name_len = len;
        r->cols[c].filled_row = -1;
        uint32_t h = hash(section, name, len) & (HASH_SIZE - 1);
        while (r->table[h].name) h = (h + 1) & (HASH_SIZE - 1);
        r->table[h] = (entry){section, c, name, len};
        s = name + len + 1;
    }
    return r;
}

void tt_free(tt_reader *r) {
    if (!r) return;
    for (int32_t c = 0; r->cols && c < r->ncols; c++) {
        free(r->cols[c].valid);
        free(r->cols[c].data);
        free(r->cols[c].offsets);
    }
    free(r->cols);
    free(r->names);
    free(r->order[0]);
    free(r->order[1]);
    for (int b = 0; b < 2; b++) {
        free(r->block_values[b]);
        free(r->block_valid[b]);
    }
    free(r);
}

tt_column *tt_column_at(tt_reader *r, int32_t i) { return &r->cols[i]; }

static int lookup(const tt_reader *r, int32_t section, const char *s, size_t n) {
    if (n == 0) return -1;
    uint32_t h = hash(section, s, n) & (HASH_SIZE - 1);
    while (r->table[h].name) {
        const entry *e = &r->table[h];
        if (e->section == section && e->len == n && memcmp(e->name, s, n) == 0) return e->column;
        h = (h + 1) & (HASH_SIZE - 1);
    }
    return -1;
}

static inline void ws(cursor *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\n' || *c->p == '\r' || *c->p == '\t'))
        c->p++;
}

static inline int expect(cursor *c, char ch) {
    ws(c);
    if (c->p >= c->end || *c->p != ch) return -1;
    c->p++;
    return 0;
}

/* One UTF-8 sequence at p (its lead byte is >= 0x80): its length, or 0 when it is not
 * valid UTF-8 (a stray continuation byte, an overlong form, a surrogate, above U+10FFFF,
 * cut short): the sequences orjson refuses. */
static inline int utf8_sequence(const unsigned char *p, const unsigned char *end) {
    unsigned char b = p[0];
    int n;
    unsigned char lo = 0x80, hi = 0xBF; /* the range of the second byte */
    if (b >= 0xC2 && b <= 0xDF) {
        n = 2;
    } else if (b >= 0xE0 && b <= 0xEF) {
        n = 3;
        if (b == 0xE0) lo = 0xA0;
        if (b == 0xED) hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
        n = 4;
        if (b == 0xF0) lo = 0x90;
        if (b == 0xF4) hi = 0x8F;
    } else {
        return 0;
    }
    if (end - p < n || p[1] < lo || p[1] > hi) return 0;
    for (int i = 2; i < n; i++)
        if ((p[i] & 0xC0) != 0x80) return 0;
    return n;
}

static int hexval(char ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

static int hex4(const char *p, const char *end, uint32_t *out) {
    if (end - p < 4) return -1;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p[i]);
        if (h < 0) return -1;
        v = (v << 4) | (uint32_t)h;
    }
    *out = v;
    return 0;
}

/* After the opening quote: the end of the string's content; *escaped says whether it holds
 * a backslash. The whole string is checked as orjson checks it, whether it is read or
 * skipped: no raw control character, only JSON's escapes, a \u high surrogate followed by
 * a \u low one and no lone low one, valid UTF-8. So unescape() never meets a bad escape. */
static int scan_string(cursor *c, const char **content_end, int *escaped) {
    const char *p = c->p, *end = c->end;
    *escaped = 0;
    while (p < end) {
        unsigned char ch = (unsigned char)*p;
        if (ch == '"') {
            *content_end = p;
            c->p = p + 1;
            return 0;
        }
        if (ch == '\\') {
            *escaped = 1;
            if (p + 1 >= end) return -1;
            switch (p[1]) {
                case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
                    p += 2;
                    continue;
                case 'u': break;
                default: return -1;
            }
            uint32_t cp, low;
            if (hex4(p + 2, end, &cp)) return -1;
            p += 6;
            if (cp >= 0xDC00 && cp <= 0xDFFF) return -1; /* a low surrogate first */
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, end, &low) ||
                    low < 0xDC00 || low > 0xDFFF)
                    return -1;
                p += 6;
            }
            continue;
        }
        if (ch < 0x20) return -1;
        if (ch >= 0x80) {
            int n = utf8_sequence((const unsigned char *)p, (const unsigned char *)end);
            if (!n) return -1;
            p += n;
            continue;
        }
        p++;
    }
    return -1;
}

/* JSON string content with escapes (checked by scan_string) -> UTF-8 into dst (never longer
 * than the source). */
static int64_t unescape(const char *s, const char *end, char *dst) {
    char *o = dst;
    while (s < end) {
        if (*s != '\\') {
            *o++ = *s++;
            continue;
        }
        s++;
        switch (*s++) {
            case '"': *o++ = '"'; break;
            case '\\': *o++ = '\\'; break;
            case '/': *o++ = '/'; break;
            case 'b': *o++ = '\b'; break;
            case 'f': *o++ = '\f'; break;
            case 'n': *o++ = '\n'; break;
            case 'r': *o++ = '\r'; break;
            case 't': *o++ = '\t'; break;
            case 'u': {
                uint32_t cp, lo;
                if (hex4(s, end, &cp)) return -1;
                s += 4;
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    if (end - s < 6 || s[0] != '\\' || s[1] != 'u' || hex4(s + 2, end, &lo) ||
                        lo < 0xDC00 || lo > 0xDFFF)
                        return -1;
                    s += 6;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    return -1;
                }
                if (cp < 0x80) {
                    *o++ = (char)cp;
                } else if (cp < 0x800) {
                    *o++ = (char)(0xC0 | (cp >> 6));
                    *o++ = (char)(0x80 | (cp & 0x3F));
                } else if (cp < 0x10000) {
                    *o++ = (char)(0xE0 | (cp >> 12));
                    *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
                    *o++ = (char)(0x80 | (cp & 0x3F));
                } else {
                    *o++ = (char)(0xF0 | (cp >> 18));
                    *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
                    *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
                    *o++ = (char)(0x80 | (cp & 0x3F));
                }
                break;
            }
            default: return -1;
        }
    }
    return o - dst;
}

/* After a member or element: 1 at ',' (another follows), 0 at `close` (the container ends),
 * -1 at anything else. */
static int next_member(cursor *c, char close) {
    ws(c);
    if (c->p >= c->end) return -1;
    char ch = *c->p++;
    return ch == ',' ? 1 : ch == close ? 0 : -1;
}

static int skip_value(cursor *c, int depth);

static int skip_container(cursor *c, char close, int depth) {
    ws(c);
    if (c->p < c->end && *c->p == close) {
        c->p++;
        return 0;
    }
    for (;;) {
        if (close == '}') {
            const char *e;
            int esc;
            if (expect(c, '"') || scan_string(c, &e, &esc) || expect(c, ':')) return -1;
        }
        if (skip_value(c, depth + 1)) return -1;
        int more = next_member(c, close);
        if (more <= 0) return more;
    }
}

static int literal(cursor *c, const char *word, size_t n) {
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0) return -1;
    c->p += n;
    return 0;
}

/* A JSON number at the cursor, checked as orjson checks it: -?(0|[1-9]d*)(.d+)?([eE][+-]?d+)?
 * and finite as a double. Its range is judged from the decimal exponent of its leading
 * digit: below 10**308 it is finite; from there on it is declined (orjson refuses from
 * ~1.8e308; the few numbers in between are left to it). *shape: 0 an integer, 1 with a
 * fraction, 2 with an exponent. */
static int scan_number(cursor *c, int *shape) {
    const char *p = c->p, *end = c->end;
    if (p < end && *p == '-') p++;
    if (p >= end || (unsigned)(*p - '0') >= 10u) return -1;
    int64_t lead = 0; /* the decimal exponent of the first non-zero digit */
    int nonzero = 0;
    *shape = 0;
    if (*p == '0') {
        p++;
    } else {
        const char *digits = p;
        while (p < end && (unsigned)(*p - '0') < 10u) p++;
        lead = (int64_t)(p - digits) - 1;
        nonzero = 1;
    }
    if (p < end && *p == '.') {
        p++;
        const char *digits = p;
        while (p < end && (unsigned)(*p - '0') < 10u) {
            if (!nonzero && *p != '0') {
                lead = -(int64_t)(p - digits) - 1;
                nonzero = 1;
            }
            p++;
        }
        if (p == digits) return -1;
        *shape = 1;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        int negative = 0;
        if (p < end && (*p == '+' || *p == '-')) negative = *p++ == '-';
        const char *digits = p;
        int64_t exponent = 0;
        while (p < end && (unsigned)(*p - '0') < 10u) {
            if (exponent < 1000000000000000LL) exponent = exponent * 10 + (*p - '0');
            p++;
        }
        if (p == digits) return -1;
        lead += negative ? -exponent : exponent;
        *shape = 2;
    }
    if (nonzero && lead >= 308) return -1;
    c->p = p;
    return 0;
}

static int skip_number(cursor *c) {
    int shape;
    return scan_number(c, &shape);
}

static int skip_value(cursor *c, int depth) {
    if (depth > 64) return -1;
    ws(c);
    if (c->p >= c->end) return -1;
    const char *e;
    int esc;
    switch (*c->p) {
        case '"': c->p++; return scan_string(c, &e, &esc);
        case '{': c->p++; return skip_container(c, '}', depth);
        case '[': c->p++; return skip_container(c, ']', depth);
        case 't': return literal(c, "true", 4);
        case 'f': return literal(c, "false", 5);
        case 'n': return literal(c, "null", 4);
        default: return skip_number(c);
    }
}

static const double POW10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                               1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                               1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* "-?d+(.d+)?" exactly: a mantissa below 2**53 over an exact power of ten is one correctly
 * rounded IEEE division (Clinger's fast path), the same double every correct parser gives.
 * Anything else (exponents, 16+ significant digits) is left to the Python path. */
static int parse_decimal(const char *s, const char *end, int allow_fraction, int64_t *ival,
                         double *dval) {
    int negative = 0;
    if (s < end && *s == '-') {
        negative = 1;
        s++;
    }
    if (s >= end) return -1;
    uint64_t m = 0;
    int digits = 0, fraction = 0;
    while (s < end && *s >= '0' && *s <= '9') {
        m = m * 10 + (uint64_t)(*s++ - '0');
        if (++digits > 18) return -1;
    }
    if (digits == 0) return -1;
    if (s < end && *s == '.') {
        if (!allow_fraction) return -1;
        s++;
        while (s < end && *s >= '0' && *s <= '9') {
            m = m * 10 + (uint64_t)(*s++ - '0');
            fraction++;
            if (++digits > 18) return -1;
        }
        if (fraction == 0) return -1;
    }
    if (s != end) return -1;
    if (allow_fraction) {
        if (m >= (1ull << 53) || fraction > 22) return -1;
        double v = (double)m / POW10[fraction];
        *dval = negative ? -v : v;
    } else {
        *ival = negative ? -(int64_t)m : (int64_t)m;
    }
    return 0;
}

static void set_valid(tt_column *col, int64_t row) { col->valid[row >> 3] |= (uint8_t)(1u << (row & 7)); }

/* Make room for row `row` (< max_rows) in every column: checked once per row, not per cell.
 * The room follows what has been read, not what a row could be: 64 rows first, then the
 * rows the body's remaining bytes hold at the size of the rows so far (at least twice the
 * room), never more than max_rows. A body of a million empty rows "{}" thus costs one
 * page's worth of columns before it is declined; TikTok's pages, 2 allocations a column. */
static int reserve_rows(tt_reader *r, const cursor *c, int64_t row) {
    if (row < r->cap_rows) return 0;
    int64_t cap = 64;
    if (row > 0) {
        int64_t per_row = (int64_t)(c->p - r->list_start) / row;
        int64_t estimate = row + 1 + (int64_t)(c->end - c->p) / (per_row > 0 ? per_row : 1);
        cap = r->cap_rows * 2 > estimate ? r->cap_rows * 2 : estimate;
    }
    if (cap > r->max_rows) cap = r->max_rows;
    if (cap <= row) cap = row + 1;
    for (int32_t i = 0; i < r->ncols; i++) {
        tt_column *col = &r->cols[i];
        if (grow((void **)&col->valid, &col->valid_cap, (size_t)(cap >> 3) + 1, 1)) return -1;
        if (col->kind == KIND_STRING) {
            if (grow((void **)&col->offsets, &col->offsets_cap, (size_t)cap + 1, sizeof(int32_t)))
                return -1;
            col->offsets[0] = 0;
        } else if (grow((void **)&col->data, &col->data_cap, (size_t)cap * 8, 1)) {
            return -1;
        }
    }
    r->cap_rows = cap;
    return 0;
}

static void set_null(tt_column *col, int64_t row) {
    col->null_count++;
    if (col->kind == KIND_STRING) {
        col->offsets[row + 1] = col->offsets[row];
    } else {
        memset(col->data + row * 8, 0, 8);
    }
}

/* The common cell in one pass: "123" in an int64 column, "12.34" in a double column (the
 * general path below would scan it, then parse it). 0: not that shape, nothing consumed. */
static inline int read_plain_number(cursor *c, tt_column *col, int64_t row) {
    const char *p = c->p + 1, *end = c->end; /* after the opening quote */
    int negative = p < end && *p == '-';
    p += negative;
    uint64_t m = 0;
    int digits = 0, fraction = 0;
    while (p < end && (unsigned)(*p - '0') < 10u && digits <= 18) {
        m = m * 10 + (uint64_t)(*p++ - '0');
        digits++;
    }
    if (digits == 0 || digits > 18) return 0;
    if (p < end && *p == '.') {
        if (col->kind != KIND_FLOAT) return 0;
        p++;
        while (p < end && (unsigned)(*p - '0') < 10u && digits <= 18) {
            m = m * 10 + (uint64_t)(*p++ - '0');
            digits++;
            fraction++;
        }
        if (fraction == 0 || digits > 18) return 0;
    }
    if (p >= end || *p != '"') return 0;
    if (col->kind == KIND_FLOAT) {
        if (m >= (1ull << 53)) return 0;
        double v = (double)m / POW10[fraction];
        if (negative) v = -v;
        memcpy(col->data + row * 8, &v, 8);
    } else {
        int64_t v = negative ? -(int64_t)m : (int64_t)m;
        memcpy(col->data + row * 8, &v, 8);
    }
    c->p = p + 1;
    return 1;
}

/* One value of a known column, at the cursor. TT_FALLBACK when the value is not one this
 * reader types exactly like the Python path. */
static int read_cell(cursor *c, tt_column *col, int64_t row) {
    ws(c);
    if (c->p >= c->end) return TT_FALLBACK;
    if (col->kind != KIND_STRING && *c->p == '"' && read_plain_number(c, col, row)) {
        col->data_len = (row + 1) * 8;
        set_valid(col, row);
        return TT_OK;
    }
    const char *start, *stop;
    int escaped = 0;
    if (*c->p == '"') {
        c->p++;
        start = c->p;
        if (scan_string(c, &stop, &escaped)) return TT_FALLBACK;
        size_t n = (size_t)(stop - start);
        if (n == 0 || (n == 1 && start[0] == '-')) {
            /* Not applicable: null in a metric; the Python path reads a dimension verbatim
             * (a "-" ad_id is missing, a "-" stat_time_day a bad date), so it decides. */
            if (col->section == SECTION_DIMENSIONS) return TT_FALLBACK;
            set_null(col, row);
            return TT_OK;
        }
    } else if (*c->p == 'n') {
        if (literal(c, "null", 4)) return TT_FALLBACK;
        set_null(col, row);
        return TT_OK;
    } else if (*c->p == '-' || (*c->p >= '0' && *c->p <= '9')) {
        if (col->kind == KIND_STRING) return TT_FALLBACK; /* the Python path str()s it */
        start = c->p;
        int shape;
        if (scan_number(c, &shape) || shape == 2) return TT_FALLBACK;
        stop = c->p;
        if (shape == 0 && col->kind == KIND_FLOAT) {
            /* orjson reads a bare integer as an int, which the Python path str()s: "-0"
             * becomes "0", so 0.0, not -0.0. */
            int64_t iv;
            double dv = 0;
            if (parse_decimal(start, stop, 0, &iv, &dv) || iv >= (1LL << 53) || iv <= -(1LL << 53))
                return TT_FALLBACK;
            dv = (double)iv;
            memcpy(col->data + row * 8, &dv, 8);
            col->data_len = (row + 1) * 8;
            set_valid(col, row);
            return TT_OK;
        }
    } else {
        return TT_FALLBACK;
    }
    if (col->kind == KIND_STRING) {
        size_t n = (size_t)(stop - start);
        int64_t at = col->offsets[row];
        if ((uint64_t)at + n > INT32_MAX) return TT_FALLBACK;
        if (grow((void **)&col->data, &col->data_cap, (size_t)at + n, 1)) return TT_NOMEM;
        int64_t written = (int64_t)n;
        if (escaped) {
            written = unescape(start, stop, col->data + at);
            if (written < 0) return TT_FALLBACK;
            if (written == 0 || (written == 1 && col->data[at] == '-')) {
                if (col->section == SECTION_DIMENSIONS) return TT_FALLBACK; /* as above */
                set_null(col, row);
                return TT_OK;
            }
        } else {
            memcpy(col->data + at, start, n);
        }
        col->offsets[row + 1] = (int32_t)(at + written);
        col->data_len = at + written;
    } else {
        if (escaped) return TT_FALLBACK;
        int64_t iv = 0;
        double dv = 0;
        if (parse_decimal(start, stop, col->kind == KIND_FLOAT, &iv, &dv)) return TT_FALLBACK;
        if (col->kind == KIND_FLOAT)
            memcpy(col->data + row * 8, &dv, 8);
        else
            memcpy(col->data + row * 8, &iv, 8);
        col->data_len = (row + 1) * 8;
    }
    set_valid(col, row);
    return TT_OK;
}

/* "dimensions" or "metrics" of one row: an object of cells, or null. */
static int read_section(tt_reader *r, cursor *c, int32_t section, int64_t row) {
    ws(c);
    if (c->p < c->end && *c->p == 'n') return literal(c, "null", 4) ? TT_FALLBACK : TT_OK;
    if (expect(c, '{')) return TT_FALLBACK;
    ws(c);
    if (c->p < c->end && *c->p == '}') {
        c->p++;
        return TT_OK;
    }
    int32_t position = 0;
    for (;;) {
        const char *key, *key_end;
        int escaped;
        if (expect(c, '"')) return TT_FALLBACK;
        key = c->p;
        /* TikTok writes the keys of every row in the same order: try the column met at this
         * position in the last row before scanning and hashing the key. */
        int column = -1;
        int32_t guess = position < r->order_len[section] ? r->order[section][position] : -1;
        if (guess >= 0) { /* a position no known key filled yet guesses nothing */
            const tt_column *g = &r->cols[guess];
            size_t n = g->name_len;
            if ((size_t)(c->end - key) > n && key[n] == '"' && memcmp(g->name, key, n) == 0) {
                column = guess;
                c->p = key + n + 1;
            }
        }
        if (column < 0) {
            if (scan_string(c, &key_end, &escaped) || escaped) return TT_FALLBACK;
            column = lookup(r, section, key, (size_t)(key_end - key));
            if (column >= 0 && position <= r->ncols) {
                r->order[section][position] = column;
                if (r->order_len[section] <= position) r->order_len[section] = position + 1;
            }
        }
        if (expect(c, ':')) return TT_FALLBACK;
        position++;
        if (column < 0) {
            if (skip_value(c, 3)) return TT_FALLBACK;
        } else {
            tt_column *col = &r->cols[column];
            if (col->filled_row == row) return TT_FALLBACK; /* duplicate key */
            col->filled_row = row;
            int rc = read_cell(c, col, row);
            if (rc) return rc;
        }
        int more = next_member(c, '}');
        if (more <= 0) return more < 0 ? TT_FALLBACK : TT_OK;
    }
}

static int read_row(tt_reader *r, cursor *c) {
    int64_t row = r->rows;
    int seen[2] = {0, 0};
    if (row >= r->max_rows) return TT_FALLBACK; /* more rows than TikTok sends in a page */
    if (reserve_rows(r, c, row)) return TT_NOMEM;
    if (expect(c, '{')) return TT_FALLBACK;
    ws(c);
    if (c->p < c->end && *c->p == '}') {
        c->p++;
    } else {
        for (;;) {
            const char *key, *key_end;
            int escaped, rc;
            if (expect(c, '"')) return TT_FALLBACK;
            key = c->p;
            if (scan_string(c, &key_end, &escaped) || escaped || expect(c, ':'))
                return TT_FALLBACK;
            size_t n = (size_t)(key_end - key);
            int32_t section = -1;
            if (n == 10 && memcmp(key, "dimensions", 10) == 0) section = SECTION_DIMENSIONS;
            if (n == 7 && memcmp(key, "metrics", 7) == 0) section = SECTION_METRICS;
            if (section < 0) {
                if (skip_value(c, 2)) return TT_FALLBACK;
            } else {
                if (seen[section]++) return TT_FALLBACK;
                rc = read_section(r, c, section, row);
                if (rc) return rc;
            }
            int more = next_member(c, '}');
            if (more < 0) return TT_FALLBACK;
            if (more == 0) break;
        }
    }
    for (int32_t i = 0; i < r->ncols; i++) { /* the row's missing keys are nulls */
        tt_column *col = &r->cols[i];
        if (col->filled_row != row) set_null(col, row);
    }
    r->rows++;
    return TT_OK;
}

static int read_list(tt_reader *r, cursor *c) {
    ws(c);
    if (c->p < c->end && *c->p == 'n') return literal(c, "null", 4) ? TT_FALLBACK : TT_OK;
    if (expect(c, '[')) return TT_FALLBACK;
    r->has_list = 1;
    ws(c);
    r->list_start = c->p;
    if (c->p < c->end && *c->p == ']') {
        c->p++;
        return TT_OK;
    }
    for (;;) {
        int rc = read_row(r, c);
        if (rc) return rc;
        int more = next_member(c, ']');
        if (more <= 0) return more < 0 ? TT_FALLBACK : TT_OK;
    }
}

/* An object whose members are recorded as spans, except data (top level) and list (in data). */
static int read_object(tt_reader *r, cursor *c, int in_data) {
    if (expect(c, '{')) return TT_FALLBACK;
    ws(c);
    if (c->p < c->end && *c->p == '}') {
        c->p++;
        return TT_OK;
    }
    for (;;) {
        const char *key, *key_end;
        int escaped, rc;
        if (expect(c, '"')) return TT_FALLBACK;
        key = c->p;
        if (scan_string(c, &key_end, &escaped) || escaped || expect(c, ':')) return TT_FALLBACK;
        size_t n = (size_t)(key_end - key);
        ws(c);
        /* A repeated "data" or "list": orjson keeps the last; declined (so is a "data"
         * object beside a "data" of another type: _envelope in __init__.py checks). */
        if (!in_data && n == 4 && memcmp(key, "data", 4) == 0 && c->p < c->end && *c->p == '{') {
            if (r->has_data++) return TT_FALLBACK;
            rc = read_object(r, c, 1);
            if (rc) return rc;
        } else if (in_data && n == 4 && memcmp(key, "list", 4) == 0) {
            if (r->lists++) return TT_FALLBACK;
            rc = read_list(r, c);
            if (rc) return rc;
        } else {
            const char *value = c->p;
            if (skip_value(c, 1) || r->span_count >= MAX_SPANS) return TT_FALLBACK;
            int64_t *span = r->spans[r->span_count++];
            span[0] = in_data;
            span[1] = key - r->base;
            span[2] = (int64_t)n;
            span[3] = value - r->base;
            span[4] = c->p - value;
        }
        int more = next_member(c, '}');
        if (more <= 0) return more < 0 ? TT_FALLBACK : TT_OK;
    }
}

/* Parse a whole body. The reader is single use. */
int32_t tt_parse(tt_reader *r, const char *body, int64_t len) {
    cursor c = {body, body + len};
    r->base = body;
    int rc = read_object(r, &c, 0);
    if (rc) return rc;
    ws(&c);
    return c.p == c.end ? TT_OK : TT_FALLBACK;
}

/* Gather the numeric columns into their blocks (KIND_INT -> block 0, KIND_FLOAT -> block 1),
 * in column order. */
int32_t tt_finish(tt_reader *r) {
    int64_t rows = r->rows, at[2] = {0, 0};
    int32_t count[2] = {0, 0};
    for (int32_t i = 0; i < r->ncols; i++)
        if (r->cols[i].kind != KIND_STRING) count[r->cols[i].kind - 1]++;
    for (int b = 0; b < 2; b++) {
        size_t cells = (size_t)(rows * count[b]);
        r->block_values[b] = malloc(cells * 8 + 8);
        r->block_valid[b] = calloc(cells / 8 + 1, 1);
        if (!r->block_values[b] || !r->block_valid[b]) return TT_NOMEM;
    }
    for (int32_t i = 0; i < r->ncols && rows > 0; i++) {
        tt_column *col = &r->cols[i];
        if (col->kind == KIND_STRING) continue;
        int b = col->kind - 1;
        int64_t start = at[b];
        memcpy(r->block_values[b] + start * 8, col->data, (size_t)rows * 8);
        uint8_t *valid = r->block_valid[b];
        if (col->null_count == 0 && (start & 7) == 0) {
            memset(valid + (start >> 3), 0xFF, (size_t)(rows >> 3));
            for (int64_t row = rows & ~7LL; row < rows; row++)
                valid[(start + row) >> 3] |= (uint8_t)(1u << ((start + row) & 7));
        } else {
            for (int64_t row = 0; row < rows; row++)
                if (col->valid[row >> 3] & (1u << (row & 7)))
                    valid[(start + row) >> 3] |= (uint8_t)(1u << ((start + row) & 7));
        }
        r->block_nulls[b] += col->null_count;
        at[b] += rows;
    }
    return TT_OK;
}
