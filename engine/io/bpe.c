/* bpe.c -- byte-level BPE: train merges on a corpus, encode, decode.
 *
 * Ids 0..255 are the bytes; merge r (0-based) makes id 256 + r from a pair
 * of earlier ids. Text is first cut into chunks (an optional leading space
 * plus a run of letters, of digits, or of other symbols; or a run of
 * whitespace) and merges never cross a chunk, as in GPT-2. Training counts
 * unique chunks once, then repeatedly merges the most frequent pair (ties:
 * the smaller pair), updating pair counts only around the merge sites.
 * Encoding applies merges by rank inside each chunk and caches chunks, so
 * repeated words cost one hash lookup. */
#include "internal.h"
#include "nn_io.h"

#include <stdlib.h>
#include <string.h>

/* ---- a small open-addressing map: byte strings or u64 keys -> i64 ------- */

typedef struct {
    uint64_t *keys;   /* u64 keys (pairs), or hashes for string keys */
    char **skeys;     /* string keys (NULL for u64 maps) */
    size_t *slens;
    int64_t *vals;
    size_t cap, n;
    int strings;
} map;

static uint64_t hash_bytes(const uint8_t *s, size_t n) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 1099511628211ULL;
    return h | 1; /* never 0: 0 marks an empty slot */
}

static uint64_t mix(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return k;
}

static int map_init(map *m, size_t cap, int strings) {
    memset(m, 0, sizeof *m);
    m->cap = cap;
    m->strings = strings;
    m->keys = calloc(cap, sizeof *m->keys);
    m->vals = calloc(cap, sizeof *m->vals);
    if (strings) {
        m->skeys = calloc(cap, sizeof *m->skeys);
        m->slens = calloc(cap, sizeof *m->slens);
    }
    return m->keys && m->vals && (!strings || (m->skeys && m->slens)) ? 0 : -1;
}

static void map_free(map *m) {
    if (m->skeys)
        for (size_t i = 0; i < m->cap; i++) free(m->skeys[i]);
    free(m->keys); free(m->vals); free(m->skeys); free(m->slens);
}

/* the slot of a key (found, or where it would go) */
static size_t slot_u64(const map *m, uint64_t key) {
    size_t i = mix(key) & (m->cap - 1);
    while (m->keys[i] && m->keys[i] != key) i = (i + 1) & (m->cap - 1);
    return i;
}

static size_t slot_str(const map *m, const uint8_t *s, size_t n, uint64_t h) {
    size_t i = h & (m->cap - 1);
    while (m->keys[i] && !(m->keys[i] == h && m->slens[i] == n && !memcmp(m->skeys[i], s, n)))
        i = (i + 1) & (m->cap - 1);
    return i;
}

static int grow(map *m) {
    map bigger;
    if (map_init(&bigger, m->cap * 2, m->strings) < 0) return -1;
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->keys[i]) continue;
        size_t j = m->strings ? slot_str(&bigger, (uint8_t *)m->skeys[i], m->slens[i], m->keys[i])
                              : slot_u64(&bigger, m->keys[i]);
        bigger.keys[j] = m->keys[i];
        bigger.vals[j] = m->vals[i];
        if (m->strings) {
            bigger.skeys[j] = m->skeys[i];
            bigger.slens[j] = m->slens[i];
            m->skeys[i] = NULL;
        }
    }
    bigger.n = m->n;
    map_free(m);
    *m = bigger;
    return 0;
}

/* adds delta to the count of a u64 key (creating it); -1 on OOM */
static int add_u64(map *m, uint64_t key, int64_t delta) {
    if (2 * (m->n + 1) > m->cap && grow(m) < 0) return -1;
    size_t i = slot_u64(m, key);
    if (!m->keys[i]) { m->keys[i] = key; m->n++; }
    m->vals[i] += delta;
    return 0;
}

static int64_t *find_u64(const map *m, uint64_t key) {
    size_t i = slot_u64(m, key);
    return m->keys[i] ? &m->vals[i] : NULL;
}

/* the slot of a string key, inserted with value `fresh` if new */
static int64_t *get_str(map *m, const uint8_t *s, size_t n, int64_t fresh, int *created) {
    if (2 * (m->n + 1) > m->cap && grow(m) < 0) return NULL;
    uint64_t h = hash_bytes(s, n);
    size_t i = slot_str(m, s, n, h);
    *created = 0;
    if (!m->keys[i]) {
        if (!(m->skeys[i] = malloc(n ? n : 1))) return NULL;
        memcpy(m->skeys[i], s, n);
        m->keys[i] = h;
        m->slens[i] = n;
        m->vals[i] = fresh;
        m->n++;
        *created = 1;
    }
    return &m->vals[i];
}

/* ---- chunks ------------------------------------------------------------------ */

static int kind(uint8_t c) {
    if ((c | 32) >= 'a' && (c | 32) <= 'z') return 1;
    if (c >= '0' && c <= '9') return 2;
    if (c == ' ' || c == '\n' || c == '\t' || c == '\r') return 3;
    return c >= 0x80 ? 1 : 4; /* UTF-8 bytes stay with letters */
}

/* length of the chunk starting at s[0] */
static size_t chunk_len(const uint8_t *s, size_t n) {
    size_t i = 0;
    if (s[0] == ' ' && n > 1 && kind(s[1]) != 3) i = 1; /* " word" */
    int k = kind(s[i]);
    while (i < n && kind(s[i]) == k) i++;
    return i ? i : 1;
}

/* ---- the model ------------------------------------------------------------------- */

struct nn_bpe {
    int nmerges;
    int32_t (*merges)[2]; /* merge r joins merges[r][0] and merges[r][1] */
    map ranks;            /* pair -> rank */
    uint8_t **pieces;     /* bytes of every id */
    size_t *piece_len;
    map cache;            /* chunk -> index into cached ids */
    int64_t *cached;
    size_t ncached, cached_cap;
};

static uint64_t pair_key(int32_t a, int32_t b) {
    return ((uint64_t)(uint32_t)a << 32 | (uint32_t)b) + 1; /* never 0 */
}

void nn_bpe_free(nn_bpe *b) {
    if (!b) return;
    for (int i = 0; b->pieces && i < 256 + b->nmerges; i++) free(b->pieces[i]);
    free(b->pieces); free(b->piece_len); free(b->merges); free(b->cached);
    map_free(&b->ranks);
    map_free(&b->cache);
    free(b);
}

/* builds ranks and pieces from merges[0..nmerges) */
static nn_bpe *finish(int32_t (*merges)[2], int nmerges) {
    nn_bpe *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->merges = merges;
    b->nmerges = nmerges;
    int n = 256 + nmerges;
    b->pieces = calloc(n, sizeof *b->pieces);
    b->piece_len = calloc(n, sizeof *b->piece_len);
    int ok = b->pieces && b->piece_len && map_init(&b->ranks, 64, 0) == 0 &&
             map_init(&b->cache, 1024, 1) == 0;
    for (int i = 0; ok && i < 256; i++) {
        ok = (b->pieces[i] = malloc(1)) != NULL;
        if (ok) b->pieces[i][0] = (uint8_t)i;
        b->piece_len[i] = 1;
    }
    for (int r = 0; ok && r < nmerges; r++) {
        int32_t x = merges[r][0], y = merges[r][1];
        if (x < 0 || y < 0 || x >= 256 + r || y >= 256 + r) { ok = 0; break; }
        size_t lx = b->piece_len[x], ly = b->piece_len[y];
        ok = (b->pieces[256 + r] = malloc(lx + ly)) != NULL;
        if (!ok) break;
        memcpy(b->pieces[256 + r], b->pieces[x], lx);
        memcpy(b->pieces[256 + r] + lx, b->pieces[y], ly);
        b->piece_len[256 + r] = lx + ly;
        uint64_t k = pair_key(x, y);
        if (find_u64(&b->ranks, k)) continue; /* a repeated merge: the first wins */
        ok = add_u64(&b->ranks, k, r + 1) == 0; /* stored rank + 1 (0: absent) */
    }
    if (!ok) {
        b->merges = NULL; /* still the caller's */
        nn_bpe_free(b);
        return NULL;
    }
    return b;
}

int nn_bpe_vocab_size(const nn_bpe *b) { return 256 + b->nmerges; }

/* ---- training ----------------------------------------------------------------- */

typedef struct { int32_t *ids; int len; int64_t count; } word;

nn_bpe *nn_bpe_train(const uint8_t *text, size_t n, int vocab_size) {
    if (vocab_size < 256) return nn_fail(2, "a byte-level vocabulary has at least 256 ids");
    map uniq;
    if (map_init(&uniq, 1024, 1) < 0) return nn_fail(0, "out of memory");
    word *words = NULL;
    size_t nwords = 0, cap = 0;
    int oom = 0;
    for (size_t at = 0; at < n && !oom;) { /* unique chunks and their counts */
        size_t len = chunk_len(text + at, n - at);
        int created;
        int64_t *slot = get_str(&uniq, text + at, len, (int64_t)nwords, &created);
        if (!slot) { oom = 1; break; }
        if (created) {
            if (nwords == cap) {
                cap = cap ? 2 * cap : 1024;
                word *g = realloc(words, cap * sizeof *g);
                if (!g) { oom = 1; break; }
                words = g;
            }
            word *w = &words[nwords++];
            w->ids = malloc(len * sizeof *w->ids);
            w->len = (int)len;
            w->count = 0;
            if (!w->ids) { oom = 1; break; }
            for (size_t i = 0; i < len; i++) w->ids[i] = text[at + i];
        }
        words[*slot].count++;
        at += len;
    }
    map_free(&uniq);
    int nmerges = vocab_size - 256, done = 0;
    int32_t (*merges)[2] = malloc((nmerges ? nmerges : 1) * sizeof *merges);
    map pairs;
    if (!merges || map_init(&pairs, 1024, 0) < 0) oom = 1;
    for (size_t w = 0; w < nwords && !oom; w++)
        for (int i = 0; i + 1 < words[w].len; i++)
            if (add_u64(&pairs, pair_key(words[w].ids[i], words[w].ids[i + 1]), words[w].count) < 0)
                oom = 1;
    while (!oom && done < nmerges) {
        uint64_t best = 0;
        int64_t best_count = 0;
        for (size_t i = 0; i < pairs.cap; i++)
            if (pairs.keys[i] && (pairs.vals[i] > best_count ||
                                  (pairs.vals[i] == best_count && pairs.keys[i] < best)))
                best = pairs.keys[i], best_count = pairs.vals[i];
        if (best_count < 1) break; /* nothing left to merge */
        int32_t a = (int32_t)((best - 1) >> 32), c = (int32_t)((best - 1) & 0xffffffff);
        int32_t id = 256 + done;
        merges[done][0] = a;
        merges[done][1] = c;
        done++;
        for (size_t w = 0; w < nwords && !oom; w++) { /* apply, adjusting neighbours */
            word *wd = &words[w];
            int out = 0;
            for (int i = 0; i < wd->len; i++) {
                if (i + 1 < wd->len && wd->ids[i] == a && wd->ids[i + 1] == c) {
                    int64_t k = wd->count;
                    if (out > 0) {
                        add_u64(&pairs, pair_key(wd->ids[out - 1], a), -k);
                        add_u64(&pairs, pair_key(wd->ids[out - 1], id), k);
                    }
                    if (i + 2 < wd->len) {
                        add_u64(&pairs, pair_key(c, wd->ids[i + 2]), -k);
                        add_u64(&pairs, pair_key(id, wd->ids[i + 2]), k);
                    }
                    add_u64(&pairs, best, -k);
                    wd->ids[out++] = id;
                    i++;
                } else {
                    wd->ids[out++] = wd->ids[i];
                }
            }
            wd->len = out;
        }
    }
    for (size_t w = 0; w < nwords; w++) free(words[w].ids);
    free(words);
    map_free(&pairs);
    if (oom) {
        free(merges);
        return nn_fail(0, "out of memory training BPE");
    }
    nn_bpe *b = finish(merges, done);
    if (!b) free(merges);
    return b ? b : nn_fail(0, "out of memory");
}

nn_bpe *nn_bpe_from_merges(const int32_t *pairs, int nmerges) {
    int32_t (*merges)[2] = malloc((nmerges ? nmerges : 1) * sizeof *merges);
    if (!merges) return nn_fail(0, "out of memory");
    memcpy(merges, pairs, (size_t)nmerges * sizeof *merges);
    nn_bpe *b = finish(merges, nmerges);
    if (!b) {
        free(merges);
        return nn_fail(1, "invalid merges: each must join two earlier ids");
    }
    return b;
}

const int32_t *nn_bpe_merges(const nn_bpe *b, int *n) {
    *n = b->nmerges;
    return (const int32_t *)b->merges;
}

/* ---- encoding and decoding --------------------------------------------------------- */

/* the ids of one chunk by merge rank: repeatedly merge the lowest-ranked
 * adjacent pair; returns the count written into ids */
static int encode_chunk(const nn_bpe *b, const uint8_t *s, int n, int32_t *ids) {
    for (int i = 0; i < n; i++) ids[i] = s[i];
    for (;;) {
        int64_t best = 0;
        int at = -1;
        for (int i = 0; i + 1 < n; i++) {
            int64_t *r = find_u64(&b->ranks, pair_key(ids[i], ids[i + 1]));
            if (r && (at < 0 || *r < best)) best = *r, at = i;
        }
        if (at < 0) return n;
        ids[at] = 256 + (int32_t)(best - 1);
        memmove(ids + at + 1, ids + at + 2, (size_t)(n - at - 2) * sizeof *ids);
        n--;
    }
}

int nn_bpe_encode(nn_bpe *b, const uint8_t *text, size_t n, int64_t **out, size_t *count) {
    size_t cap = n + 1, len = 0;
    int64_t *ids = malloc(cap * sizeof *ids);
    int32_t *tmp = NULL;
    size_t tmp_cap = 0;
    if (!ids) return nn_failed(0, "out of memory");
    for (size_t at = 0; at < n;) {
        size_t clen = chunk_len(text + at, n - at);
        int created;
        int64_t *slot = get_str(&b->cache, text + at, clen, (int64_t)b->ncached, &created);
        if (!slot) goto oom;
        if (created) {
            if (tmp_cap < clen) {
                int32_t *g = realloc(tmp, clen * sizeof *g);
                if (!g) goto oom;
                tmp = g;
                tmp_cap = clen;
            }
            int k = encode_chunk(b, text + at, (int)clen, tmp);
            if (b->ncached + (size_t)k + 1 > b->cached_cap) {
                size_t c2 = (b->cached_cap ? 2 * b->cached_cap : 4096) + (size_t)k + 1;
                int64_t *g = realloc(b->cached, c2 * sizeof *g);
                if (!g) goto oom;
                b->cached = g;
                b->cached_cap = c2;
            }
            b->cached[b->ncached] = k; /* length, then the ids */
            for (int i = 0; i < k; i++) b->cached[b->ncached + 1 + i] = tmp[i];
            b->ncached += (size_t)k + 1;
        }
        const int64_t *c = b->cached + *slot;
        memcpy(ids + len, c + 1, (size_t)c[0] * sizeof *ids);
        len += (size_t)c[0];
        at += clen;
    }
    free(tmp);
    *out = ids;
    *count = len;
    return 0;
oom:
    free(tmp);
    free(ids);
    return nn_failed(0, "out of memory encoding");
}

int nn_bpe_decode(const nn_bpe *b, const int64_t *ids, size_t n, uint8_t **out, size_t *len) {
    size_t total = 0, vocab = (size_t)(256 + b->nmerges);
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || (size_t)ids[i] >= vocab)
            return nn_failed(1, "id %lld outside the vocabulary (0..%zu)", (long long)ids[i], vocab - 1);
        total += b->piece_len[ids[i]];
    }
    uint8_t *s = malloc(total ? total : 1);
    if (!s) return nn_failed(0, "out of memory");
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(s + at, b->pieces[ids[i]], b->piece_len[ids[i]]);
        at += b->piece_len[ids[i]];
    }
    *out = s;
    *len = total;
    return 0;
}
