/* A failing disk for tests: an LD_PRELOAD library that makes chosen file operations of the
 * process fail with a chosen error while a rules file says so. The files are real and every
 * other operation reaches them unchanged.
 *
 * FAULTYDISK_RULES names the rules file, read again at every operation on a file (so a test
 * turns faults on and off while the process runs; a missing or empty file is a healthy
 * disk). One rule per line:
 *
 *     <path pattern> <operation> <error>
 *
 * The pattern matches a path that contains it, or, ending in `$`, a path that ends with the
 * rest. Operations: `open`, `write` (the first call writes half of what it was given, as a
 * filling disk does, the next one fails), `sync` (fsync and fdatasync), `truncate`
 * (ftruncate) and `rename` (matched on the new name). Errors: EIO, ENOSPC, EFBIG, EROFS. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAX_FD 65536

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static char *paths[MAX_FD];   /* the path each descriptor was opened with */
static char half_written[MAX_FD]; /* a torn write happened; the next write fails */

static int (*real_open)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_close)(int);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_ftruncate)(int, off_t);
static int (*real_rename)(const char *, const char *);

static pthread_once_t resolved = PTHREAD_ONCE_INIT;

static void resolve_all(void) {
    real_open = dlsym(RTLD_NEXT, "open64");
    real_openat = dlsym(RTLD_NEXT, "openat64");
    real_close = dlsym(RTLD_NEXT, "close");
    real_write = dlsym(RTLD_NEXT, "write");
    real_pwrite = dlsym(RTLD_NEXT, "pwrite64");
    real_fsync = dlsym(RTLD_NEXT, "fsync");
    real_fdatasync = dlsym(RTLD_NEXT, "fdatasync");
    real_ftruncate = dlsym(RTLD_NEXT, "ftruncate64");
    real_rename = dlsym(RTLD_NEXT, "rename");
}

static void resolve(void) { pthread_once(&resolved, resolve_all); }

static int errno_named(const char *name) {
    if (strcmp(name, "EIO") == 0) return EIO;
    if (strcmp(name, "ENOSPC") == 0) return ENOSPC;
    if (strcmp(name, "EFBIG") == 0) return EFBIG;
    if (strcmp(name, "EROFS") == 0) return EROFS;
    return 0;
}

static int pattern_matches(const char *pattern, const char *path) {
    size_t n = strlen(pattern);
    if (n > 0 && pattern[n - 1] == '$') {
        size_t len = strlen(path);
        return len >= n - 1 && strncmp(path + len - (n - 1), pattern, n - 1) == 0;
    }
    return strstr(path, pattern) != NULL;
}

/* The error the rules give `op` on `path`, or 0 when it succeeds. */
static int fault(const char *path, const char *op) {
    const char *rules = getenv("FAULTYDISK_RULES");
    if (!rules || !path) return 0;
    int fd = real_open(rules, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    char text[4096];
    ssize_t got = read(fd, text, sizeof text - 1);
    real_close(fd);
    if (got <= 0) return 0;
    text[got] = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char pattern[PATH_MAX], rule_op[32], name[32];
        if (sscanf(line, "%4095s %31s %31s", pattern, rule_op, name) != 3) continue;
        if (strcmp(rule_op, op) == 0 && pattern_matches(pattern, path)) return errno_named(name);
    }
    return 0;
}

/* The error the rules give `op` on descriptor `fd`. */
static int fd_fault(int fd, const char *op) {
    if (fd < 0 || fd >= MAX_FD) return 0;
    pthread_mutex_lock(&mu);
    char *path = paths[fd] ? strdup(paths[fd]) : NULL;
    pthread_mutex_unlock(&mu);
    int e = path ? fault(path, op) : 0;
    free(path);
    return e;
}

static void track(int fd, const char *path) {
    if (fd < 0 || fd >= MAX_FD) return;
    pthread_mutex_lock(&mu);
    free(paths[fd]);
    paths[fd] = strdup(path);
    half_written[fd] = 0;
    pthread_mutex_unlock(&mu);
}

int open64(const char *path, int flags, ...) {
    resolve();
    va_list ap;
    va_start(ap, flags);
    mode_t mode = (flags & (O_CREAT | O_TMPFILE)) ? va_arg(ap, mode_t) : 0;
    va_end(ap);
    int e = fault(path, "open");
    if (e) { errno = e; return -1; }
    int fd = real_open(path, flags, mode);
    track(fd, path);
    return fd;
}
int open(const char *path, int flags, ...) __attribute__((alias("open64")));

int openat64(int dirfd, const char *path, int flags, ...) {
    resolve();
    va_list ap;
    va_start(ap, flags);
    mode_t mode = (flags & (O_CREAT | O_TMPFILE)) ? va_arg(ap, mode_t) : 0;
    va_end(ap);
    int e = fault(path, "open");
    if (e) { errno = e; return -1; }
    int fd = real_openat(dirfd, path, flags, mode);
    track(fd, path);
    return fd;
}
int openat(int dirfd, const char *path, int flags, ...) __attribute__((alias("openat64")));

int close(int fd) {
    resolve();
    if (fd >= 0 && fd < MAX_FD) {
        pthread_mutex_lock(&mu);
        free(paths[fd]);
        paths[fd] = NULL;
        half_written[fd] = 0;
        pthread_mutex_unlock(&mu);
    }
    return real_close(fd);
}

/* A filling disk: half of the first write lands, the next write fails. */
static ssize_t faulty_write(int fd, size_t count, ssize_t (*land)(size_t)) {
    int e = fd_fault(fd, "write");
    if (!e) return land(count);
    pthread_mutex_lock(&mu);
    int torn = half_written[fd];
    half_written[fd] = !torn;
    pthread_mutex_unlock(&mu);
    if (torn || count < 2) { errno = e; return -1; }
    return land(count / 2);
}

static __thread int w_fd;
static __thread const void *w_buf;
static __thread off_t w_off;
static ssize_t land_write(size_t n) { return real_write(w_fd, w_buf, n); }
static ssize_t land_pwrite(size_t n) { return real_pwrite(w_fd, w_buf, n, w_off); }

ssize_t write(int fd, const void *buf, size_t count) {
    resolve();
    w_fd = fd;
    w_buf = buf;
    return faulty_write(fd, count, land_write);
}

ssize_t pwrite64(int fd, const void *buf, size_t count, off_t offset) {
    resolve();
    w_fd = fd;
    w_buf = buf;
    w_off = offset;
    return faulty_write(fd, count, land_pwrite);
}
ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset)
    __attribute__((alias("pwrite64")));

int fsync(int fd) {
    resolve();
    int e = fd_fault(fd, "sync");
    if (e) { errno = e; return -1; }
    return real_fsync(fd);
}

int fdatasync(int fd) {
    resolve();
    int e = fd_fault(fd, "sync");
    if (e) { errno = e; return -1; }
    return real_fdatasync(fd);
}

int ftruncate64(int fd, off_t length) {
    resolve();
    int e = fd_fault(fd, "truncate");
    if (e) { errno = e; return -1; }
    return real_ftruncate(fd, length);
}
int ftruncate(int fd, off_t length) __attribute__((alias("ftruncate64")));

int rename(const char *from, const char *to) {
    resolve();
    int e = fault(to, "rename");
    if (e) { errno = e; return -1; }
    return real_rename(from, to);
}
