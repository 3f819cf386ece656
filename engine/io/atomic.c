/* atomic.c -- replacing a file so that a crash, a kill or a full disk leaves
 * either the old file or the new one, never a mix.
 *
 * The data goes to "<path>.tmp.<pid>.<thread>.<n>" in the same directory
 * (unique per call: two threads or two lua_States saving to one path each
 * write their own), is flushed and fsynced, renamed over the path, and the
 * directory is fsynced so the rename itself survives a power cut. Temp files
 * of that pattern left by processes that died mid-save are removed. */
#include "internal.h"
#include "nn_io.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static unsigned long long counter; /* atomically incremented */

/* the directory and the file name of path (dir "." when there is none) */
static void split_path(const char *path, char *dir, size_t dn, const char **base) {
    const char *slash = strrchr(path, '/');
    *base = slash ? slash + 1 : path;
    if (!slash) snprintf(dir, dn, ".");
    else if (slash == path) snprintf(dir, dn, "/");
    else snprintf(dir, dn, "%.*s", (int)(slash - path), path);
}

/* Removes "<base>.tmp.<pid>.*" in dir when process pid no longer exists
 * and the file is older than `before`: a save that was killed. */
static void remove_stale(const char *dir, const char *base, time_t before) {
    DIR *d = opendir(dir);
    if (!d) return;
    size_t bl = strlen(base);
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        if (strncmp(n, base, bl) || strncmp(n + bl, ".tmp.", 5)) continue;
        char *end;
        long pid = strtol(n + bl + 5, &end, 10);
        if (end == n + bl + 5 || *end != '.' || pid <= 0) continue;
        if (pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno == EPERM)
            continue; /* its writer may still be at work */
        char full[PATH_MAX];
        struct stat st;
        if (snprintf(full, sizeof full, "%s/%s", dir, n) >= (int)sizeof full) continue;
        if (lstat(full, &st) == 0 && S_ISREG(st.st_mode) && st.st_mtime < before)
            unlink(full);
    }
    closedir(d);
}

int nn_atomic_open(nn_atomic_file *a, const char *path) {
    memset(a, 0, sizeof *a);
    size_t plen = strlen(path);
    if (plen == 0) return nn_failed(1, "empty path");
    if (!(a->path = strdup(path)) || !(a->tmp = malloc(plen + 64))) {
        nn_atomic_abort(a);
        return nn_failed(0, "out of memory");
    }
    unsigned long long n = __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
    snprintf(a->tmp, plen + 64, "%s.tmp.%ld.%ld.%llu", path, (long)getpid(),
             (long)syscall(SYS_gettid), n);
    int fd = open(a->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 || !(a->f = fdopen(fd, "wb"))) {
        int err = errno;
        if (fd >= 0) close(fd);
        free(a->tmp);
        a->tmp = NULL; /* nothing to unlink */
        nn_atomic_abort(a);
        return nn_failed(1, "%s: %s", path, strerror(err));
    }
    char dir[PATH_MAX];
    const char *base;
    split_path(path, dir, sizeof dir, &base);
    remove_stale(dir, base, time(NULL));
    return 0;
}

int nn_atomic_write(nn_atomic_file *a, const void *data, size_t n) {
    if (n && fwrite(data, 1, n, a->f) != n)
        return nn_failed(1, "%s: %s", a->path, strerror(errno));
    return 0;
}

int nn_atomic_commit(nn_atomic_file *a) {
    int rc = 0;
    if (fflush(a->f) != 0 || fsync(fileno(a->f)) != 0)
        rc = nn_failed(1, "%s: %s", a->path, strerror(errno));
    if (fclose(a->f) != 0 && rc == 0) rc = nn_failed(1, "%s: %s", a->path, strerror(errno));
    a->f = NULL;
    if (rc == 0 && rename(a->tmp, a->path) != 0)
        rc = nn_failed(1, "%s: %s", a->path, strerror(errno));
    if (rc == 0) { /* the rename is durable once the directory is synced */
        char dir[PATH_MAX];
        const char *base;
        split_path(a->path, dir, sizeof dir, &base);
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
        free(a->tmp);
        a->tmp = NULL;
    }
    nn_atomic_abort(a);
    return rc;
}

void nn_atomic_abort(nn_atomic_file *a) {
    if (a->f) fclose(a->f);
    if (a->tmp) unlink(a->tmp);
    free(a->tmp);
    free(a->path);
    memset(a, 0, sizeof *a);
}

int nn_write_file_atomic(const char *path, const void *data, size_t n) {
    nn_atomic_file a;
    if (nn_atomic_open(&a, path) < 0) return -1;
    if (nn_atomic_write(&a, data, n) < 0) {
        nn_atomic_abort(&a);
        return -1;
    }
    return nn_atomic_commit(&a);
}
