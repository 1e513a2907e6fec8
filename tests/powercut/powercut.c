/* A power cut for tests: an LD_PRELOAD library that keeps, beside every file under
 * POWERCUT_ROOT, a shadow copy in POWERCUT_SHADOW holding only what a disk would still hold
 * after power loss: a file's data reaches its shadow when the file is fsync'ed or
 * fdatasync'ed, and a rename reaches the shadows when its directory is fsync'ed. Kill the
 * process and replace the data directory with the shadow one: that is the state a machine
 * comes back with. Nothing is written to the real files; the process sees its own writes.
 *
 * Assumes what Durin's store does: files are appended to (or cut shorter), never rewritten
 * in the middle; paths under the root are absolute. */
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
#include <sys/stat.h>
#include <unistd.h>

#define MAX_FD 65536
#define MAX_RENAMES 1024

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static char *paths[MAX_FD]; /* path relative to the root of each tracked descriptor */
static struct { char *from, *to; } renames[MAX_RENAMES];
static int n_renames;

static const char *root(void) { return getenv("POWERCUT_ROOT"); }
static const char *shadow(void) { return getenv("POWERCUT_SHADOW"); }

static int (*real_open)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_close)(int);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_rename)(const char *, const char *);
static int (*real_unlink)(const char *);

static pthread_once_t resolved = PTHREAD_ONCE_INIT;

static void resolve_all(void) {
    real_open = dlsym(RTLD_NEXT, "open64");
    real_openat = dlsym(RTLD_NEXT, "openat64");
    real_close = dlsym(RTLD_NEXT, "close");
    real_fsync = dlsym(RTLD_NEXT, "fsync");
    real_fdatasync = dlsym(RTLD_NEXT, "fdatasync");
    real_rename = dlsym(RTLD_NEXT, "rename");
    real_unlink = dlsym(RTLD_NEXT, "unlink");
}

/* Every entry point resolves the real functions once, whichever thread comes first. */
static void resolve(void) { pthread_once(&resolved, resolve_all); }

/* The path relative to the root ("" for the root itself), or NULL when outside it. */
static char *relative(const char *path) {
    const char *r = root();
    if (!r || !shadow() || !path || path[0] != '/') return NULL;
    size_t n = strlen(r);
    if (strncmp(path, r, n) != 0) return NULL;
    if (path[n] == '\0') return strdup("");
    if (path[n] != '/') return NULL;
    return strdup(path + n + 1);
}

static void shadow_path(char *out, const char *rel) {
    snprintf(out, PATH_MAX, "%s/%s", shadow(), rel);
}

static void make_parents(const char *path) {
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(tmp, 0755);
            *p = '/';
        }
    }
}

static void track(int fd, const char *path, int flags) {
    if (fd < 0 || fd >= MAX_FD) return;
    char *rel = relative(path);
    if (!rel) return;
    pthread_mutex_lock(&mu);
    free(paths[fd]);
    paths[fd] = rel;
    pthread_mutex_unlock(&mu);
    if (flags & O_CREAT) {
        /* A new file exists (empty) as soon as it is created: kind to the program. */
        char sp[PATH_MAX];
        shadow_path(sp, rel);
        struct stat st;
        if (rel[0] && stat(sp, &st) != 0) {
            make_parents(sp);
            int s = real_open(sp, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
            if (s >= 0) real_close(s);
        }
    }
}

/* Makes the shadow of the file at `rel` equal to the real file's synced content: cut to the
 * real length if that is shorter, then the appended bytes copied. */
static void sync_file(const char *rel) {
    char real_path[PATH_MAX], sp[PATH_MAX];
    snprintf(real_path, sizeof real_path, "%s/%s", root(), rel);
    shadow_path(sp, rel);
    make_parents(sp);
    int in = real_open(real_path, O_RDONLY | O_CLOEXEC);
    if (in < 0) return;
    int out = real_open(sp, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (out < 0) { real_close(in); return; }
    struct stat rs, ss;
    fstat(in, &rs);
    fstat(out, &ss);
    off_t from = ss.st_size;
    if (rs.st_size < from) {
        if (ftruncate(out, rs.st_size) != 0) { /* leave it */ }
        from = rs.st_size;
    }
    char buf[1 << 16];
    for (off_t at = from; at < rs.st_size;) {
        ssize_t got = pread(in, buf, sizeof buf, at);
        if (got <= 0) break;
        if (pwrite(out, buf, (size_t)got, at) != got) break;
        at += got;
    }
    real_close(out);
    real_close(in);
}

/* Renames in directory `dir` (relative) become durable. */
static void sync_dir(const char *dir) {
    size_t n = strlen(dir);
    for (int i = 0; i < n_renames; i++) {
        const char *to = renames[i].to;
        if (!to) continue; /* already durable */
        const char *slash = strrchr(to, '/');
        size_t parent = slash ? (size_t)(slash - to) : 0;
        if (parent != n || strncmp(to, dir, n) != 0) continue;
        char a[PATH_MAX], b[PATH_MAX];
        shadow_path(a, renames[i].from);
        shadow_path(b, renames[i].to);
        real_rename(a, b);
        free(renames[i].from);
        free(renames[i].to);
        renames[i].from = renames[i].to = NULL;
    }
}

static int after_sync(int fd, int result) {
    if (result != 0 || fd < 0 || fd >= MAX_FD) return result;
    /* A disk that acknowledges syncs and keeps nothing: the test's proof that it can fail. */
    if (getenv("POWERCUT_LIE")) return result;
    pthread_mutex_lock(&mu);
    char *rel = paths[fd] ? strdup(paths[fd]) : NULL;
    if (rel) {
        struct stat st;
        if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) sync_dir(rel);
        else sync_file(rel);
    }
    pthread_mutex_unlock(&mu);
    free(rel);
    return result;
}

int open64(const char *path, int flags, ...) {
    resolve();
    mode_t mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) {
        va_list ap;
        va_start(ap, flags);
        mode = va_arg(ap, mode_t);
        va_end(ap);
    }
    int fd = real_open(path, flags, mode);
    track(fd, path, flags);
    return fd;
}

int open(const char *path, int flags, ...) __attribute__((alias("open64")));

int openat64(int dirfd, const char *path, int flags, ...) {
    resolve();
    mode_t mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) {
        va_list ap;
        va_start(ap, flags);
        mode = va_arg(ap, mode_t);
        va_end(ap);
    }
    int fd = real_openat(dirfd, path, flags, mode);
    if (dirfd == AT_FDCWD || (path && path[0] == '/')) track(fd, path, flags);
    return fd;
}

int openat(int dirfd, const char *path, int flags, ...) __attribute__((alias("openat64")));

int close(int fd) {
    resolve();
    if (fd >= 0 && fd < MAX_FD) {
        pthread_mutex_lock(&mu);
        free(paths[fd]);
        paths[fd] = NULL;
        pthread_mutex_unlock(&mu);
    }
    return real_close(fd);
}

int fsync(int fd) {
    resolve();
    return after_sync(fd, real_fsync(fd));
}

int fdatasync(int fd) {
    resolve();
    return after_sync(fd, real_fdatasync(fd));
}

int rename(const char *from, const char *to) {
    resolve();
    int r = real_rename(from, to);
    if (r == 0) {
        char *a = relative(from), *b = relative(to);
        pthread_mutex_lock(&mu);
        if (a && b && n_renames < MAX_RENAMES) {
            renames[n_renames].from = a;
            renames[n_renames].to = b;
            n_renames++;
            a = b = NULL;
        }
        pthread_mutex_unlock(&mu);
        free(a);
        free(b);
    }
    return r;
}

int unlink(const char *path) {
    resolve();
    int r = real_unlink(path);
    char *rel = relative(path);
    if (r == 0 && rel && rel[0]) {
        char sp[PATH_MAX];
        shadow_path(sp, rel);
        real_unlink(sp);
    }
    free(rel);
    return r;
}
