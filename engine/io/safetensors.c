/* safetensors.c -- checkpoints in the safetensors format, written atomically
 * and read by a strict parser.
 *
 * Format: an 8-byte little-endian header length N, N bytes of JSON
 *   {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}, ...,
 *    "__metadata__": {"key": "value", ...}}
 * padded with spaces to a multiple of 8, then the tensors' bytes (offsets
 * relative to the end of the header). The file is untrusted input: every
 * length, offset and shape is checked against the file's size before a
 * byte is read, names are valid UTF-8 and unique, and the tensors must tile
 * the data exactly (no gaps, no overlaps). Writes go to a temporary file in
 * the same directory, are flushed and fsync'ed, then renamed over the old
 * file, so a crash mid-save leaves the previous checkpoint intact. */
#include "internal.h"
#include "nn_io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* the file's names of nnlua's dtypes, by nn_dtype */
static const char *const st_dtypes[NN_DTYPE_COUNT] = {"F32", "I64", "BF16", "F16"};

#define MAX_HEADER ((uint64_t)100 << 20)

/* ---- writing ---------------------------------------------------------------- */

typedef struct { char *s; size_t len, cap; int oom; } sbuf;

static void put(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->cap ? b->cap * 2 : 1024) + n;
        char *p = realloc(b->s, cap);
        if (!p) { b->oom = 1; return; }
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
}

static void puts_(sbuf *b, const char *s) { put(b, s, strlen(s)); }

static void put_json_string(sbuf *b, const char *s) {
    put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        if (c == '"' || c == '\\') { esc[0] = '\\'; esc[1] = (char)c; put(b, esc, 2); }
        else if (c < 0x20) { snprintf(esc, sizeof esc, "\\u%04x", c); puts_(b, esc); }
        else put(b, (const char *)&c, 1);
    }
    put(b, "\"", 1);
}

int nn_safetensors_save(const char *path, int n, const char *const *names,
                        nn_tensor *const *ts, int nmeta, const char *const *meta_keys,
                        const char *const *meta_values) {
    sbuf h = {0};
    uint64_t offset = 0;
    char num[64];
    puts_(&h, "{");
    for (int i = 0; i < n; i++) {
        if (i) puts_(&h, ",");
        put_json_string(&h, names[i]);
        puts_(&h, ":{\"dtype\":");
        puts_(&h, "\"");
        puts_(&h, st_dtypes[ts[i]->dtype]);
        puts_(&h, "\"");
        puts_(&h, ",\"shape\":[");
        for (int d = 0; d < ts[i]->ndim; d++) {
            snprintf(num, sizeof num, d ? ",%lld" : "%lld", (long long)ts[i]->shape[d]);
            puts_(&h, num);
        }
        uint64_t bytes = (uint64_t)nn_numel(ts[i]) * nn_dtype_size(ts[i]->dtype);
        snprintf(num, sizeof num, "],\"data_offsets\":[%llu,%llu]}",
                 (unsigned long long)offset, (unsigned long long)(offset + bytes));
        puts_(&h, num);
        offset += bytes;
    }
    if (nmeta > 0) {
        puts_(&h, n ? ",\"__metadata__\":{" : "\"__metadata__\":{");
        for (int i = 0; i < nmeta; i++) {
            if (i) puts_(&h, ",");
            put_json_string(&h, meta_keys[i]);
            puts_(&h, ":");
            put_json_string(&h, meta_values[i]);
        }
        puts_(&h, "}");
    }
    puts_(&h, "}");
    while (!h.oom && h.len % 8) puts_(&h, " ");
    if (h.oom) {
        free(h.s);
        return nn_failed(0, "out of memory writing the header");
    }
    nn_atomic_file f;
    int rc = nn_atomic_open(&f, path);
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)h.len >> (8 * i));
    if (rc == 0) rc = nn_atomic_write(&f, len8, 8);
    if (rc == 0) rc = nn_atomic_write(&f, h.s, h.len);
    for (int i = 0; rc == 0 && i < n; i++) {
        nn_tensor *c = nn_contiguous(ts[i]); /* little-endian on every target we build */
        size_t bytes = (size_t)nn_numel(ts[i]) * nn_dtype_size(ts[i]->dtype);
        rc = c ? nn_atomic_write(&f, nn_data(c), bytes) : -1;
        nn_release(c);
    }
    if (rc == 0) rc = nn_atomic_commit(&f);
    else nn_atomic_abort(&f);
    free(h.s);
    return rc;
}

/* ---- a strict parser for exactly the header grammar ------------------------- */

typedef struct { const char *p, *end; const char *err; } lexer;

static void skip_ws(lexer *x) {
    while (x->p < x->end && (*x->p == ' ' || *x->p == '\t' || *x->p == '\n' || *x->p == '\r'))
        x->p++;
}

static int expect(lexer *x, char c) {
    skip_ws(x);
    if (x->p >= x->end || *x->p != c) {
        if (!x->err) x->err = "malformed JSON header";
        return -1;
    }
    x->p++;
    return 0;
}

static int peek(lexer *x, char c) {
    skip_ws(x);
    return x->p < x->end && *x->p == c;
}

/* valid UTF-8 without overlongs or surrogates */
static int utf8_ok(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (!len || i + len > n) return 0;
        uint32_t cp = len == 1 ? c : c & (0x7f >> len);
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return 0;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += len;
    }
    return 1;
}

/* a JSON string into a new malloc'ed C string (escapes decoded) */
static char *parse_string(lexer *x) {
    if (expect(x, '"') < 0) return NULL;
    sbuf b = {0};
    while (x->p < x->end && *x->p != '"') {
        unsigned char c = (unsigned char)*x->p++;
        if (c < 0x20) { x->err = "control character in a JSON string"; free(b.s); return NULL; }
        if (c != '\\') { put(&b, (const char *)&c, 1); continue; }
        if (x->p >= x->end) break;
        char e = *x->p++;
        const char *map = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
        const char *at = strchr(map, e);
        if (e && at) { put(&b, to + (at - map), 1); continue; }
        if (e != 'u' || x->end - x->p < 4) { x->err = "bad escape in a JSON string"; free(b.s); return NULL; }
        unsigned v = 0;
        for (int i = 0; i < 4; i++) {
            char h = *x->p++;
            int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10
                  : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
            if (d < 0) { x->err = "bad \\u escape"; free(b.s); return NULL; }
            v = v * 16 + (unsigned)d;
        }
        if (v >= 0xd800 && v <= 0xdfff) { x->err = "surrogate \\u escape"; free(b.s); return NULL; }
        char u[4];
        size_t len;
        if (v < 0x80) { u[0] = (char)v; len = 1; }
        else if (v < 0x800) { u[0] = (char)(0xc0 | v >> 6); u[1] = (char)(0x80 | (v & 0x3f)); len = 2; }
        else { u[0] = (char)(0xe0 | v >> 12); u[1] = (char)(0x80 | (v >> 6 & 0x3f));
               u[2] = (char)(0x80 | (v & 0x3f)); len = 3; }
        put(&b, u, len);
    }
    if (x->p >= x->end) { x->err = "unterminated JSON string"; free(b.s); return NULL; }
    x->p++;
    if (b.oom) { x->err = "out of memory"; free(b.s); return NULL; }
    if (!b.s) b.s = calloc(1, 1);
    if (b.s && !utf8_ok((const unsigned char *)b.s, b.len)) {
        x->err = "a name is not valid UTF-8";
        free(b.s);
        return NULL;
    }
    return b.s;
}

/* a non-negative integer below 2^53 */
static int parse_uint(lexer *x, uint64_t *out) {
    skip_ws(x);
    uint64_t v = 0;
    const char *start = x->p;
    while (x->p < x->end && *x->p >= '0' && *x->p <= '9') {
        v = v * 10 + (uint64_t)(*x->p++ - '0');
        if (v > ((uint64_t)1 << 53)) { x->err = "integer too large in header"; return -1; }
    }
    if (x->p == start || (x->p - start > 1 && *start == '0')) {
        if (!x->err) x->err = "expected a non-negative integer";
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_uint_list(lexer *x, uint64_t *vals, int max, int *n) {
    *n = 0;
    if (expect(x, '[') < 0) return -1;
    if (peek(x, ']')) { x->p++; return 0; }
    for (;;) {
        if (*n == max) { x->err = "too many entries in a list"; return -1; }
        if (parse_uint(x, &vals[(*n)++]) < 0) return -1;
        if (peek(x, ',')) { x->p++; continue; }
        return expect(x, ']');
    }
}

typedef struct {
    char *name;
    nn_dtype dtype;
    int f64;       /* stored as F64: read as f32 */
    int ndim;
    int64_t shape[NN_MAX_DIMS];
    uint64_t begin, end;
} entry;

static int parse_entry(lexer *x, entry *e) {
    int have_dtype = 0, have_shape = 0, have_off = 0;
    if (expect(x, '{') < 0) return -1;
    for (;;) {
        char *key = parse_string(x);
        if (!key || expect(x, ':') < 0) { free(key); return -1; }
        int rc = 0;
        if (!strcmp(key, "dtype") && !have_dtype) {
            char *dt = parse_string(x);
            if (!dt) rc = -1;
            else if (!strcmp(dt, "F64")) e->dtype = NN_F32, e->f64 = 1;
            else {
                int k = 0;
                while (k < NN_DTYPE_COUNT && strcmp(dt, st_dtypes[k])) k++;
                if (k < NN_DTYPE_COUNT) e->dtype = (nn_dtype)k;
                else { x->err = "unsupported dtype (nnlua reads F32, F64, I64, BF16 and F16)"; rc = -1; }
            }
            free(dt);
            have_dtype = 1;
        } else if (!strcmp(key, "shape") && !have_shape) {
            uint64_t v[NN_MAX_DIMS];
            rc = parse_uint_list(x, v, NN_MAX_DIMS, &e->ndim);
            for (int i = 0; rc == 0 && i < e->ndim; i++) e->shape[i] = (int64_t)v[i];
            have_shape = 1;
        } else if (!strcmp(key, "data_offsets") && !have_off) {
            uint64_t v[2];
            int cnt;
            rc = parse_uint_list(x, v, 2, &cnt);
            if (rc == 0 && cnt != 2) { x->err = "data_offsets needs two numbers"; rc = -1; }
            e->begin = v[0];
            e->end = v[1];
            have_off = 1;
        } else {
            x->err = "unexpected or repeated field in a tensor entry";
            rc = -1;
        }
        free(key);
        if (rc < 0) return -1;
        if (peek(x, ',')) { x->p++; continue; }
        if (expect(x, '}') < 0) return -1;
        break;
    }
    if (!have_dtype || !have_shape || !have_off) {
        x->err = "a tensor entry lacks dtype, shape or data_offsets";
        return -1;
    }
    return 0;
}

static int cmp_begin(const void *a, const void *b) {
    const entry *x = a, *y = b;
    return (x->begin > y->begin) - (x->begin < y->begin);
}

static int cmp_name(const void *a, const void *b) {
    return strcmp(((const entry *)a)->name, ((const entry *)b)->name);
}

void nn_safetensors_free(nn_safetensors *st) {
    if (!st) return;
    for (int i = 0; i < st->n; i++) {
        free(st->names[i]);
        nn_release(st->tensors[i]);
    }
    for (int i = 0; i < st->nmeta; i++) {
        free(st->meta_keys[i]);
        free(st->meta_values[i]);
    }
    free(st->names);
    free(st->tensors);
    free(st->meta_keys);
    free(st->meta_values);
    free(st);
}

static int parse_metadata(lexer *x, nn_safetensors *st) {
    if (expect(x, '{') < 0) return -1;
    if (peek(x, '}')) { x->p++; return 0; }
    for (;;) {
        char *k = parse_string(x), *v = NULL;
        if (k && expect(x, ':') == 0) v = parse_string(x);
        if (!k || !v) { free(k); free(v); return -1; }
        char **nk = realloc(st->meta_keys, (st->nmeta + 1) * sizeof *nk);
        char **nv = nk ? realloc(st->meta_values, (st->nmeta + 1) * sizeof *nv) : NULL;
        if (nk) st->meta_keys = nk;
        if (nv) st->meta_values = nv;
        if (!nk || !nv) { free(k); free(v); x->err = "out of memory"; return -1; }
        st->meta_keys[st->nmeta] = k;
        st->meta_values[st->nmeta++] = v;
        if (peek(x, ',')) { x->p++; continue; }
        return expect(x, '}');
    }
}

nn_safetensors *nn_safetensors_load(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return nn_fail(1, "%s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0) { fclose(f); return nn_fail(1, "%s: %s", path, strerror(errno)); }
    uint64_t size = (uint64_t)sb.st_size;
    unsigned char len8[8];
    if (size < 8 || fread(len8, 1, 8, f) != 8) {
        fclose(f);
        return nn_fail(1, "%s: too short for a safetensors file", path);
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | len8[i];
    if (hlen > MAX_HEADER || hlen > size - 8) {
        fclose(f);
        return nn_fail(1, "%s: header length %llu exceeds the file (%llu bytes)", path,
                       (unsigned long long)hlen, (unsigned long long)size);
    }
    char *hdr = malloc(hlen + 1);
    nn_safetensors *st = calloc(1, sizeof *st);
    entry *es = NULL;
    int ne = 0, cap = 0;
    const char *err = NULL;
    if (!hdr || !st) err = "out of memory";
    else if (fread(hdr, 1, hlen, f) != hlen) err = "truncated header";
    lexer x = {hdr, hdr ? hdr + hlen : NULL, NULL};
    if (!err && expect(&x, '{') == 0 && !peek(&x, '}')) {
        for (;;) {
            char *name = parse_string(&x);
            if (!name || expect(&x, ':') < 0) { free(name); break; }
            if (!strcmp(name, "__metadata__")) {
                free(name);
                if (st->meta_keys || parse_metadata(&x, st) < 0) {
                    if (!x.err) x.err = "repeated __metadata__";
                    break;
                }
            } else {
                if (ne == cap) {
                    cap = cap ? 2 * cap : 16;
                    entry *g = realloc(es, cap * sizeof *g);
                    if (!g) { free(name); x.err = "out of memory"; break; }
                    es = g;
                }
                memset(&es[ne], 0, sizeof es[ne]);
                es[ne].name = name;
                if (parse_entry(&x, &es[ne++]) < 0) break;
            }
            if (peek(&x, ',')) { x.p++; continue; }
            expect(&x, '}');
            break;
        }
    } else if (!err && peek(&x, '}')) {
        x.p++;
    }
    if (!err && x.err) err = x.err;
    if (!err) { /* only padding may follow the object */
        skip_ws(&x);
        if (x.p != x.end) err = "trailing bytes after the JSON header";
    }
    uint64_t data_size = size - 8 - hlen;
    if (!err && ne > 1) {
        qsort(es, ne, sizeof *es, cmp_name);
        for (int i = 1; i < ne && !err; i++)
            if (!strcmp(es[i].name, es[i - 1].name)) err = "duplicate tensor name";
    }
    if (!err) { /* every tensor: size agrees with its shape; together they tile the data */
        if (ne > 1) qsort(es, ne, sizeof *es, cmp_begin); /* es may be NULL when empty */
        uint64_t at = 0;
        for (int i = 0; i < ne && !err; i++) {
            uint64_t numel = 1;
            for (int d = 0; d < es[i].ndim; d++) {
                if (es[i].shape[d] && numel > ((uint64_t)1 << 53) / (uint64_t)es[i].shape[d]) {
                    err = "shape too large";
                    break;
                }
                numel *= (uint64_t)es[i].shape[d];
            }
            if (err) break;
            uint64_t esize = es[i].f64 ? 8 : nn_dtype_size(es[i].dtype);
            if (es[i].end < es[i].begin || es[i].end - es[i].begin != numel * esize)
                err = "a tensor's data_offsets do not match its shape and dtype";
            else if (es[i].begin != at)
                err = "tensors overlap or leave gaps in the data";
            else if (es[i].end > data_size)
                err = "data_offsets point past the end of the file";
            at = es[i].end;
        }
        if (!err && at != data_size) err = "the data is longer than its tensors";
    }
    if (!err) {
        st->names = calloc(ne ? ne : 1, sizeof *st->names);
        st->tensors = calloc(ne ? ne : 1, sizeof *st->tensors);
        if (!st->names || !st->tensors) err = "out of memory";
    }
    for (int i = 0; !err && i < ne; i++) {
        nn_tensor *t = nn_empty(es[i].dtype, es[i].ndim, es[i].shape);
        size_t bytes = (size_t)(es[i].end - es[i].begin);
        if (!t) { err = nn_last_error(); break; }
        double *wide = es[i].f64 && bytes ? malloc(bytes) : NULL;
        if (es[i].f64 && bytes && !wide) {
            nn_release(t);
            err = "out of memory";
            break;
        }
        if (bytes && fread(wide ? (void *)wide : nn_data(t), 1, bytes, f) != bytes) {
            free(wide);
            nn_release(t);
            err = "truncated data";
            break;
        }
        for (size_t k = 0; wide && k < bytes / 8; k++) nn_f32(t)[k] = (float)wide[k];
        free(wide);
        st->names[st->n] = es[i].name;
        st->tensors[st->n++] = t;
        es[i].name = NULL;
    }
    for (int i = 0; i < ne; i++) free(es[i].name);
    free(es);
    free(hdr);
    fclose(f);
    if (err) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", err);
        nn_safetensors_free(st);
        return nn_fail(1, "%s: %s", path, msg);
    }
    return st;
}
