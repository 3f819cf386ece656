/* tensor.c -- storage, tensor lifetime, element access and shape strings. */
#include "autograd.h"
#include "half.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static const char *const dtype_names[NN_DTYPE_COUNT] = {"f32", "i64", "bf16", "f16"};
static const size_t dtype_sizes[NN_DTYPE_COUNT] = {4, 8, 2, 2};

const char *nn_dtype_name(nn_dtype d) { return dtype_names[d]; }
size_t nn_dtype_size(nn_dtype d) { return dtype_sizes[d]; }

static int64_t live_bytes; /* owned tensor storage, for the bindings' GC */
static int64_t allocated_bytes; /* all storage ever allocated (the profiler) */

int64_t nn_allocated_bytes(void) { return __atomic_load_n(&allocated_bytes, __ATOMIC_RELAXED); }

int64_t nn_live_bytes(void) {
    return __atomic_load_n(&live_bytes, __ATOMIC_RELAXED);
}

static int64_t memory_limit; /* 0: none */

int64_t nn_set_memory_limit(int64_t bytes) {
    return __atomic_exchange_n(&memory_limit, bytes > 0 ? bytes : 0, __ATOMIC_RELAXED);
}



int64_t nn_shape_numel(int ndim, const int64_t *shape) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    return n;
}

int64_t nn_row_numel(const nn_tensor *t) {
    return t->ndim ? nn_shape_numel(t->ndim - 1, t->shape + 1) : 1;
}

void nn_contiguous_strides(int ndim, const int64_t *shape, int64_t *stride) {
    int64_t s = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        stride[i] = s;
        s *= shape[i] > 0 ? shape[i] : 1;
    }
}

/* The one place sizes are checked: dims in range, no negative size, and
 * the product of the non-zero sizes fits in half the address space, so
 * numel, byte counts and offsets never overflow (an empty tensor may not
 * claim 2^62 x 2^62 x 0 elements either: loops over its dims would hang). */
int nn_shape_check(int arg, int ndim, const int64_t *shape, size_t elem) {
    if (ndim < 0 || ndim > NN_MAX_DIMS)
        return nn_failed(arg, "tensors have at most %d dims (got %d)",
                         NN_MAX_DIMS, ndim);
    int64_t n = 1, limit = (int64_t)(SIZE_MAX / 2 / elem);
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return nn_failed(arg, "negative size %lld in dim %d",
                             (long long)shape[i], i + 1);
        if (shape[i] && n > limit / shape[i])
            return nn_failed(arg, "tensor too large (%lld elements in dim %d)",
                             (long long)shape[i], i + 1);
        if (shape[i]) n *= shape[i];
    }
    return 0;
}

/* Tensor structs, and small tensors' storage blocks, freed on a thread are
 * kept for its next ones: a training loop frees them in bursts (the
 * collector's sweeps) and makes as many again, and glibc sends such a
 * burst past its small per-thread cache into the slow bins, which then
 * cost more than the op that made the tensor. A small tensor's storage and
 * data are one block, so a one-element op takes nothing from malloc. The
 * lists are given back when their thread ends. */
#define SPARE 4096
#define INLINE_BYTES 256
typedef struct {
    nn_storage s;
    unsigned char data[INLINE_BYTES]; /* 16-byte aligned: no kernel needs more */
} inline_storage;
typedef struct {
    int tensors, storages;
    nn_tensor *t[SPARE];
    inline_storage *s[SPARE];
} spare_lists;
static _Thread_local spare_lists spare;
static _Thread_local int spare_registered;
static pthread_key_t spare_key;
static bool spare_key_ok;
static pthread_once_t spare_once = PTHREAD_ONCE_INIT;

/* at thread exit (the lists are this thread's): give them back, and free
 * whatever is released after that straight away */
static void spare_free(void *p) {
    spare_lists *l = p;
    while (l->tensors) free(l->t[--l->tensors]);
    while (l->storages) free(l->s[--l->storages]);
    spare_registered = -1;
}

static void spare_key_make(void) { spare_key_ok = pthread_key_create(&spare_key, spare_free) == 0; }

/* whether this thread may keep blocks: its lists are freed at its exit */
static bool spare_ready(void) {
    if (spare_registered) return spare_registered > 0;
    pthread_once(&spare_once, spare_key_make);
    spare_registered = spare_key_ok && pthread_setspecific(spare_key, &spare) == 0 ? 1 : -1;
    return spare_registered > 0;
}

static nn_tensor *tensor_alloc(void) {
    nn_tensor *t = spare.tensors ? spare.t[--spare.tensors] : malloc(sizeof *t);
    if (t) memset(t, 0, sizeof *t);
    return t;
}

static void tensor_dispose(nn_tensor *t) {
    if (spare.tensors < SPARE && spare_ready()) spare.t[spare.tensors++] = t;
    else free(t);
}

static nn_storage *storage_alloc(size_t bytes) {
    if (bytes > INLINE_BYTES) {
        nn_storage *s = nn_zalloc(sizeof *s);
        void *data = s ? nn_alloc(bytes) : NULL;
        if (!data) {
            free(s);
            return NULL;
        }
        s->data = data;
        return s;
    }
    inline_storage *b = spare.storages ? spare.s[--spare.storages] : malloc(sizeof *b);
    if (!b) return NULL;
    memset(&b->s, 0, sizeof b->s);
    b->s.data = b->data;
    b->s.inline_data = 1;
    return &b->s;
}

static void storage_dispose(nn_storage *s) {
    if (s->inline_data && spare.storages < SPARE && spare_ready())
        spare.s[spare.storages++] = (inline_storage *)s;
    else
        free(s);
}

static nn_tensor *tensor_new(nn_storage *s, nn_dtype dtype, int ndim,
                             const int64_t *shape, const int64_t *stride,
                             int64_t offset) {
    nn_tensor *t = tensor_alloc();
    if (!t) return nn_fail(0, "out of memory");
    t->dtype = dtype;
    t->ndim = ndim;
    if (ndim > 0) { /* shape may be NULL for a 0-dim tensor */
        memcpy(t->shape, shape, ndim * sizeof *shape);
        memcpy(t->stride, stride, ndim * sizeof *stride);
    }
    t->offset = offset;
    t->storage = s;
    s->refcount++;
    t->refcount = 1;
    return t;
}

nn_tensor *nn_empty(nn_dtype dtype, int ndim, const int64_t *shape) {
    nn_sync_threads(); /* before this op's parallel loops */
    if (nn_shape_check(0, ndim, shape, dtype_sizes[dtype]) < 0) return NULL;
    size_t bytes = (size_t)nn_shape_numel(ndim, shape) * dtype_sizes[dtype];
    int64_t limit = __atomic_load_n(&memory_limit, __ATOMIC_RELAXED);
    if (limit && (int64_t)bytes > limit - nn_live_bytes())
        return nn_fail(0, "tensor memory limit of %lld bytes reached (%lld live, %zu more asked)",
                       (long long)limit, (long long)nn_live_bytes(), bytes);
    nn_storage *s = storage_alloc(bytes);
    if (!s) return nn_fail(0, "out of memory allocating %zu bytes", bytes);
    s->bytes = bytes;
    s->owns = 1;
    __atomic_add_fetch(&live_bytes, (int64_t)bytes, __ATOMIC_RELAXED);
    __atomic_add_fetch(&allocated_bytes, (int64_t)bytes, __ATOMIC_RELAXED);
    int64_t stride[NN_MAX_DIMS];
    nn_contiguous_strides(ndim, shape, stride);
    nn_tensor *t = tensor_new(s, dtype, ndim, shape, stride, 0);
    if (!t) {
        __atomic_sub_fetch(&live_bytes, (int64_t)bytes, __ATOMIC_RELAXED);
        if (!s->inline_data) nn_free(s->data);
        storage_dispose(s);
    }
    return t;
}

nn_tensor *nn_from_buffer(void *data, nn_dtype dtype, int ndim,
                          const int64_t *shape) {
    if (nn_shape_check(0, ndim, shape, dtype_sizes[dtype]) < 0) return NULL;
    if (!data) return nn_fail(1, "NULL buffer");
    nn_storage *s = nn_zalloc(sizeof *s);
    if (!s) return nn_fail(0, "out of memory");
    s->data = data;
    s->bytes = (size_t)nn_shape_numel(ndim, shape) * dtype_sizes[dtype];
    s->owns = 0;
    int64_t stride[NN_MAX_DIMS];
    nn_contiguous_strides(ndim, shape, stride);
    nn_tensor *t = tensor_new(s, dtype, ndim, shape, stride, 0);
    if (!t) free(s);
    return t;
}

nn_tensor *nn_make_view(nn_tensor *t, int ndim, const int64_t *shape,
                        const int64_t *stride, int64_t offset) {
    if (nn_shape_check(0, ndim, shape, dtype_sizes[t->dtype]) < 0) return NULL;
    return tensor_new(t->storage, t->dtype, ndim, shape, stride, offset);
}

nn_tensor *nn_retain(nn_tensor *t) {
    if (t) t->refcount++;
    return t;
}

void nn_release(nn_tensor *t) {
    if (!t) return;
#ifdef NN_DEBUG
    assert(t->refcount > 0 && t->storage->refcount > 0);
#endif
    if (--t->refcount > 0) return;
    if (t->node) nn_node_release(t->node);
    nn_free_tensor_hooks(t);
    nn_release(t->grad);
    nn_rowgrad_free(t->rowgrad);
    nn_storage *s = t->storage;
    if (--s->refcount == 0) {
        if (s->owns == 1) {
            __atomic_sub_fetch(&live_bytes, (int64_t)s->bytes, __ATOMIC_RELAXED);
            if (!s->inline_data) nn_free(s->data);
        } else if (s->owns == 2) {
            munmap(s->map_base, s->map_len);
        }
        storage_dispose(s);
    }
    tensor_dispose(t);
}

int64_t nn_numel(const nn_tensor *t) {
    return nn_shape_numel(t->ndim, t->shape);
}

int nn_is_contiguous(const nn_tensor *t) {
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->stride[i] != s) return 0;
        s *= t->shape[i];
    }
    return 1;
}

void *nn_data(const nn_tensor *t) {
    return (char *)t->storage->data + t->offset * dtype_sizes[t->dtype];
}

static int64_t elem_offset(const nn_tensor *t, const int64_t *index) {
    int64_t off = t->offset;
    for (int i = 0; i < t->ndim; i++) off += index[i] * t->stride[i];
    return off;
}

double nn_get(const nn_tensor *t, const int64_t *index) {
    return nn_load(t->dtype, t->storage->data, elem_offset(t, index));
}

int64_t nn_get_i64(const nn_tensor *t, const int64_t *index) {
    int64_t off = elem_offset(t, index);
    if (t->dtype == NN_I64) return ((int64_t *)t->storage->data)[off];
    return nn_double_to_i64(nn_load(t->dtype, t->storage->data, off));
}

void nn_set(nn_tensor *t, const int64_t *index, double v) {
    int64_t off = elem_offset(t, index);
    nn_store(t->dtype, t->storage->data, off, v);
    nn_bump_version(t);
}

double nn_item(const nn_tensor *t) {
    int64_t zero[NN_MAX_DIMS] = {0};
    return nn_get(t, zero);
}

int nn_same_shape(const nn_tensor *a, const nn_tensor *b) {
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return 1;
}

const char *nn_shape_str(const nn_tensor *t, char *buf, size_t n) {
    if (t->ndim == 0) {
        snprintf(buf, n, "scalar");
        return buf;
    }
    size_t used = 0;
    buf[0] = 0;
    for (int i = 0; i < t->ndim && used < n; i++)
        used += snprintf(buf + used, n - used, i ? "x%lld" : "%lld",
                         (long long)t->shape[i]);
    return buf;
}

nn_tensor *nn_map_file(const char *path, uint64_t offset, nn_dtype dtype, int ndim,
                       const int64_t *shape) {
    if (nn_shape_check(0, ndim, shape, dtype_sizes[dtype]) < 0) return NULL;
    uint64_t bytes = (uint64_t)nn_shape_numel(ndim, shape) * dtype_sizes[dtype];
    if (offset % dtype_sizes[dtype])
        return nn_fail(2, "offset %llu is not a multiple of %zu (the size of %s)",
                       (unsigned long long)offset, dtype_sizes[dtype], dtype_names[dtype]);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return nn_fail(1, "%s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || offset > (uint64_t)sb.st_size ||
        bytes > (uint64_t)sb.st_size - offset) {
        close(fd);
        return nn_fail(2, "%s: %llu bytes from offset %llu exceed the file", path,
                       (unsigned long long)bytes, (unsigned long long)offset);
    }
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE), start = offset / page * page;
    size_t len = (size_t)(offset - start + bytes);
    void *base = len ? mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, (off_t)start)
                     : NULL;
    close(fd);
    if (len && base == MAP_FAILED) return nn_fail(1, "%s: mmap: %s", path, strerror(errno));
    nn_storage *s = nn_zalloc(sizeof *s);
    if (!s) {
        if (len) munmap(base, len);
        return nn_fail(0, "out of memory");
    }
    static char empty[8];
    s->data = len ? (char *)base + (offset - start) : empty;
    s->bytes = (size_t)bytes;
    s->owns = len ? 2 : 0;
    s->map_base = base;
    s->map_len = len;
    int64_t stride[NN_MAX_DIMS];
    nn_contiguous_strides(ndim, shape, stride);
    nn_tensor *t = tensor_new(s, dtype, ndim, shape, stride, 0);
    if (!t) {
        if (len) munmap(base, len);
        free(s);
    }
    return t;
}
