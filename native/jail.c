/*
 * jail.c: race-free path resolution inside a per-user root, for sftp-chroot.
 *
 * WHAT IS CONFINED
 *   Every path argument is a *virtual* path. The kernel resolves it with
 *     openat2(rootFd, path, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
 *   so that, for this one lookup, rootFd acts as "/": absolute paths and absolute symlink targets
 *   start at the root and ".." at the root stays at the root, the answer chroot(2) would give.
 *   The kernel does the whole walk in one call, so there is no window between a check and a use
 *   that a concurrent RENAME or SYMLINK could exploit.
 *   Mutations (mkdir, rmdir, unlink, rename, link, symlink) resolve only the *parent* that way and
 *   then call the *at() syscall on (parentFd, leaf), where leaf is one plain name. The final
 *   component is therefore never followed by a mutation.
 *   Regular files are opened in two steps: O_PATH first (opens nothing, has no side effect), check
 *   the type with fstat, then reopen that same inode through /proc/self/fd/N. A FIFO, socket or
 *   device is never opened, not even for an instant.
 *
 * LIMITS
 *   - Mount points inside a root are followed: RESOLVE_NO_XDEV is not set. A bind mount under a
 *     root exposes whatever it mounts.
 *   - /proc must be a real procfs: open() reopens via /proc/self/fd/N and realpath() reads those
 *     links. probe() checks both.
 *   - The root is the directory the root fd refers to. If it is moved on the host, paths follow it,
 *     and realpath() then fails with EXDEV instead of guessing.
 *   - Hard links made by the host from inside a root to a file outside are not detectable.
 *   - Needs Linux >= 5.8: openat2 is 5.6, utimensat(AT_EMPTY_PATH) is 5.8.
 *
 * THREADING
 *   Everything but probe/openRoot/closeFd/setQuickAck/tcpMinRtt and sdNotify (native/notify.c) runs
 *   as napi_async_work on the libuv thread pool and returns a Promise. Worker code touches no
 *   napi_* API; results are turned into JS values in the completion callback, on the main thread.
 *
 * ERRORS
 *   Rejections are Errors with .code (errno name), .errno (positive number) and .syscall. Messages
 *   never contain a path: the caller may forward them, and a host path is an information leak.
 */
#define _GNU_SOURCE
#include <node_api.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <uchar.h>
#include <unistd.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif

#define JAIL_RESOLVE (RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
/* openat2 answers EAGAIN when a concurrent rename could have let ".." escape: retry, bounded. */
#define EAGAIN_RETRIES 64
/* The kernel's own limit on symlinks followed in one lookup (MAXSYMLINKS). */
#define MAX_SYMLINK_HOPS 40
/* Pseudo errno for "open() refused a special file"; reported as code ENOTREG, errno EINVAL. */
#define JAIL_ENOTREG 100000
/* The only open(2) flags a client may ask for; everything else is ignored. */
#define OPEN_FLAGS_ALLOWED (O_ACCMODE | O_CREAT | O_EXCL | O_TRUNC | O_APPEND)
#define READDIR_MAX 4096

/* ------------------------------------------------------------------------------------------ */
/* Failures                                                                                     */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
  int err;             /* 0, a positive errno, or JAIL_ENOTREG */
  const char *syscall; /* static string */
} failure_t;

static int fail(failure_t *f, int err, const char *syscall) {
  f->err = err;
  f->syscall = syscall;
  return -1;
}

static int fail_errno(failure_t *f, const char *syscall) { return fail(f, errno, syscall); }

static const struct {
  int no;
  const char *name;
} ERRNO_NAMES[] = {
    {EPERM, "EPERM"},         {ENOENT, "ENOENT"},       {EINTR, "EINTR"},
    {EIO, "EIO"},             {ENXIO, "ENXIO"},         {EBADF, "EBADF"},
    {EAGAIN, "EAGAIN"},       {ENOMEM, "ENOMEM"},       {EACCES, "EACCES"},
    {EFAULT, "EFAULT"},       {EBUSY, "EBUSY"},         {EEXIST, "EEXIST"},
    {EXDEV, "EXDEV"},         {ENODEV, "ENODEV"},       {ENOTDIR, "ENOTDIR"},
    {EISDIR, "EISDIR"},       {EINVAL, "EINVAL"},       {ENFILE, "ENFILE"},
    {EMFILE, "EMFILE"},       {ETXTBSY, "ETXTBSY"},     {EFBIG, "EFBIG"},
    {ENOSPC, "ENOSPC"},       {ESPIPE, "ESPIPE"},       {EROFS, "EROFS"},
    {EMLINK, "EMLINK"},       {ERANGE, "ERANGE"},       {ENAMETOOLONG, "ENAMETOOLONG"},
    {ENOSYS, "ENOSYS"},       {ENOTEMPTY, "ENOTEMPTY"}, {ELOOP, "ELOOP"},
    {EOVERFLOW, "EOVERFLOW"}, {EOPNOTSUPP, "EOPNOTSUPP"}, {EDQUOT, "EDQUOT"},
    {ESTALE, "ESTALE"},       {ECANCELED, "ECANCELED"}, {ENODATA, "ENODATA"},
};

/* errno → "ENAME"; unknown numbers become "E<number>" in buf. */
static const char *errno_name(int err, char *buf, size_t buflen) {
  if (err == JAIL_ENOTREG) return "ENOTREG";
  for (size_t i = 0; i < sizeof ERRNO_NAMES / sizeof ERRNO_NAMES[0]; i++)
    if (ERRNO_NAMES[i].no == err) return ERRNO_NAMES[i].name;
  snprintf(buf, buflen, "E%d", err);
  return buf;
}

/* Main thread only (strerror is not guaranteed thread-safe). */
static napi_value make_error(napi_env env, int err, const char *syscall) {
  char codebuf[24], msg[192];
  const char *code = errno_name(err, codebuf, sizeof codebuf);
  int no = err == JAIL_ENOTREG ? EINVAL : err;
  const char *text = err == JAIL_ENOTREG ? "not a regular file" : strerror(err);
  snprintf(msg, sizeof msg, "%s: %s, %s", code, text, syscall);

  napi_value jcode, jmsg, jno, jsys, e;
  napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &jcode);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &jmsg);
  napi_create_error(env, jcode, jmsg, &e);
  napi_create_int32(env, no, &jno);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &jsys);
  napi_set_named_property(env, e, "errno", jno);
  napi_set_named_property(env, e, "syscall", jsys);
  return e;
}

static napi_value throw_errno(napi_env env, int err, const char *syscall) {
  napi_throw(env, make_error(env, err, syscall));
  return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Resolution inside the root                                                                   */
/* ------------------------------------------------------------------------------------------ */

static int sys_openat2(int dirfd, const char *path, int flags, mode_t mode, uint64_t resolve) {
  struct open_how how;
  memset(&how, 0, sizeof how);
  how.flags = (uint64_t)(unsigned)flags;
  /* openat2 rejects a non-zero mode unless something may be created. */
  how.mode = (flags & O_CREAT) ? (uint64_t)mode : 0;
  how.resolve = resolve;
  return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

/* Open `path` with the root fd as "/". Returns an fd, or -1 with errno set. */
static int jail_open(int root_fd, const char *path, int flags, mode_t mode) {
  if (path[0] == '\0') path = "."; /* "" names the root, as "/" does */
  for (int attempt = 0;; attempt++) {
    int fd = sys_openat2(root_fd, path, flags | O_CLOEXEC, mode, JAIL_RESOLVE);
    if (fd >= 0 || errno != EAGAIN || attempt >= EAGAIN_RETRIES) return fd;
  }
}

/* Same, recording the failure. */
static int jail_open_f(int root_fd, const char *path, int flags, mode_t mode, failure_t *f) {
  int fd = jail_open(root_fd, path, flags, mode);
  if (fd < 0) fail_errno(f, "openat2");
  return fd;
}

/* fstat that also works on an O_PATH fd of a symlink (it reports the link itself). */
static int fstat_any(int fd, struct stat *st) { return fstatat(fd, "", st, AT_EMPTY_PATH); }

static void proc_fd_path(int fd, char buf[32]) { snprintf(buf, 32, "/proc/self/fd/%d", fd); }

/*
 * Target of the symlink an O_PATH|O_NOFOLLOW fd refers to, NUL-terminated; returns its length.
 * readlinkat(fd, "") on something that is not a symlink answers ENOENT (not EINVAL, as
 * readlink(2) on a path would), so look at the type to give the usual EINVAL.
 */
static ssize_t read_link_fd(int fd, char out[PATH_MAX], failure_t *f) {
  ssize_t n = readlinkat(fd, "", out, PATH_MAX);
  if (n < 0) {
    struct stat st;
    if (errno == ENOENT && fstat_any(fd, &st) == 0 && !S_ISLNK(st.st_mode))
      return fail(f, EINVAL, "readlinkat");
    return fail_errno(f, "readlinkat");
  }
  if (n >= PATH_MAX) return fail(f, ENAMETOOLONG, "readlinkat");
  out[n] = '\0';
  return n;
}

/*
 * A mutation target split into parent directory + leaf name.
 * Trailing slashes are stripped first; the flag remembers them because "x/" promises a directory.
 */
typedef enum { TARGET_NAME, TARGET_ROOT, TARGET_DOT } target_kind_t;

typedef struct {
  target_kind_t kind;
  bool trailing_slash;
  const char *parent; /* "." , "/" or a prefix inside buf */
  const char *leaf;   /* inside buf */
  char buf[PATH_MAX];
} split_t;

static void split_path(const char *path, split_t *s) {
  size_t len = strlen(path); /* callers guarantee len < PATH_MAX */
  memcpy(s->buf, path, len + 1);
  s->trailing_slash = false;
  while (len > 0 && s->buf[len - 1] == '/') {
    s->buf[--len] = '\0';
    s->trailing_slash = true;
  }
  if (len == 0) { /* "", "/", "///": the root itself */
    s->kind = TARGET_ROOT;
    s->parent = "/";
    s->leaf = ".";
    return;
  }
  char *slash = strrchr(s->buf, '/');
  if (slash == NULL) {
    s->parent = ".";
    s->leaf = s->buf;
  } else {
    s->leaf = slash + 1;
    if (slash == s->buf) {
      s->parent = "/";
    } else {
      *slash = '\0';
      s->parent = s->buf;
    }
  }
  bool dot = strcmp(s->leaf, ".") == 0 || strcmp(s->leaf, "..") == 0;
  s->kind = dot ? TARGET_DOT : TARGET_NAME;
}

/*
 * Refuse targets that are not a plain name: the root itself, or "."/"..", which would let a
 * mutation act on a directory the client did not name (e.g. rmdir "a/.." removing a's parent).
 */
static int check_target(const split_t *s, int err_root, int err_dot, const char *syscall,
                        failure_t *f) {
  if (s->kind == TARGET_ROOT) return fail(f, err_root, syscall);
  if (s->kind == TARGET_DOT) return fail(f, err_dot, syscall);
  return 0;
}

static int open_parent(int root_fd, const split_t *s, failure_t *f) {
  return jail_open_f(root_fd, s->parent, O_PATH | O_DIRECTORY, 0, f);
}

/*
 * "x/" promises a directory. The kernel enforces that when it walks the string itself; we strip
 * the slash before the *at() call, so check the leaf. The check races with the call, but the race
 * can only change which error a client sees inside its own root, never where the call lands.
 */
static int leaf_must_be_dir(int parent_fd, const char *leaf, const char *syscall, failure_t *f) {
  struct stat st;
  if (fstatat(parent_fd, leaf, &st, AT_SYMLINK_NOFOLLOW) < 0) return fail_errno(f, syscall);
  if (!S_ISDIR(st.st_mode)) return fail(f, ENOTDIR, syscall);
  return 0;
}

/* A *new* name with a trailing slash cannot be created except by mkdir: EEXIST or ENOENT. */
static int refuse_new_name_with_slash(int parent_fd, const char *leaf, const char *syscall,
                                      failure_t *f) {
  struct stat st;
  if (fstatat(parent_fd, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0) return fail(f, EEXIST, syscall);
  return fail_errno(f, syscall);
}

/* ------------------------------------------------------------------------------------------ */
/* Jobs                                                                                         */
/* ------------------------------------------------------------------------------------------ */

typedef struct jail_dir {
  pthread_mutex_t lock; /* serializes readdir/closedir running on different pool threads */
  DIR *dir;             /* NULL once closed */
  bool is_root;         /* opened directory is the root itself: its ".." is the root */
} jail_dir_t;

typedef struct {
  char *name;
  bool has_stat;
  struct stat st;
} dir_entry_t;

typedef struct {
  bool has_mode, has_size, has_atime, has_mtime;
  mode_t mode;
  int64_t size;
  int64_t atime, mtime;
} attrs_t;

typedef struct job job_t;
typedef void (*run_fn)(job_t *);
typedef napi_value (*result_fn)(napi_env, job_t *);

struct job {
  napi_async_work work;
  napi_deferred deferred;
  run_fn run;
  result_fn result; /* NULL: resolve with undefined */
  failure_t f;

  /* inputs */
  int root_fd, fd, fd2;
  char *path, *path2;
  int flags;
  mode_t mode;
  bool flag; /* follow / noReplace */
  int64_t off_in, off_out, len;
  attrs_t attrs;
  jail_dir_t *dir;
  napi_ref dir_ref; /* keeps the Dir object (and its memory) alive while a job uses it */
  uint32_t max;
  uint32_t prefetch; /* open: read a read-only file smaller than this in the same job */

  /* outputs */
  int out_fd;
  struct stat st;
  struct statvfs vfs;
  char *out_str;
  dir_entry_t *entries;
  uint32_t n_entries;
  int64_t copied;
  jail_dir_t *new_dir;
  char *head; /* open: the prefetched content (head_len bytes), or NULL */
  int64_t head_len;
};

/* --- open ------------------------------------------------------------------------------------ */

/*
 * `path_fd` is an O_PATH fd. Refuse anything but a regular file, then reopen the same inode with
 * the requested access through its /proc/self/fd link: no second path walk, so no race.
 */
static int reopen_regular(int path_fd, int flags, struct stat *st, failure_t *f) {
  if (fstat_any(path_fd, st) < 0) return fail_errno(f, "fstat");
  if (S_ISDIR(st->st_mode)) return fail(f, EISDIR, "open");
  if (!S_ISREG(st->st_mode)) return fail(f, JAIL_ENOTREG, "open");

  char proc[32];
  proc_fd_path(path_fd, proc);
  int fd = open(proc, (flags & ~(O_CREAT | O_EXCL)) | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return fail_errno(f, "open");
  struct stat again;
  if (fstat(fd, &again) < 0) {
    fail_errno(f, "fstat");
    close(fd);
    return -1;
  }
  /* Same inode, or /proc is not what we think it is. */
  if (again.st_dev != st->st_dev || again.st_ino != st->st_ino) {
    close(fd);
    return fail(f, EXDEV, "open");
  }
  *st = again;
  return fd;
}

/* O_CREAT|O_EXCL never opens an existing name (not even a symlink), so it can't hit a FIFO. */
static int create_exclusive(int root_fd, const char *path, int flags, mode_t mode, struct stat *st,
                            failure_t *f) {
  int fd = jail_open(root_fd, path, flags | O_CREAT | O_EXCL | O_NONBLOCK | O_NOCTTY, mode & 0777);
  if (fd < 0) return fail_errno(f, "openat2");
  if (fstat(fd, st) < 0) {
    fail_errno(f, "fstat");
    close(fd);
    return -1;
  }
  return fd;
}

/*
 * `path` names an entry that exists but does not resolve: a dangling symlink. Rewrite `path` into
 * the link's target the way the kernel would continue the walk: an absolute target restarts at
 * the root, a relative one continues in the link's directory. The next openat2 resolves the result
 * inside the root again, so nothing here needs to be trusted. We do the hop ourselves instead of
 * letting open(O_CREAT) follow it, because that open would also open a FIFO swapped in meanwhile.
 * If the entry is no longer a symlink (a concurrent change), leave `path` as is: the caller retries.
 */
static int follow_dangling(int root_fd, char path[PATH_MAX], failure_t *f) {
  int lfd = jail_open(root_fd, path, O_PATH | O_NOFOLLOW, 0);
  if (lfd < 0) return errno == ENOENT ? 0 : fail_errno(f, "openat2");
  char target[PATH_MAX];
  failure_t why = {0, NULL};
  ssize_t n = read_link_fd(lfd, target, &why);
  close(lfd);
  if (n < 0) return why.err == EINVAL ? 0 : fail(f, why.err, why.syscall);
  if (n == 0) return fail(f, ENOENT, "readlinkat");

  if (target[0] == '/') {
    memcpy(path, target, (size_t)n + 1);
    return 0;
  }
  /* dirname(path) + "/" + target */
  size_t dlen = strlen(path);
  while (dlen > 0 && path[dlen - 1] == '/') dlen--;
  while (dlen > 0 && path[dlen - 1] != '/') dlen--;
  if (dlen == 0) { /* link is in the current directory (the root): target as is */
    memcpy(path, target, (size_t)n + 1);
    return 0;
  }
  if (dlen + (size_t)n + 1 > PATH_MAX) return fail(f, ENAMETOOLONG, "readlinkat");
  memcpy(path + dlen, target, (size_t)n + 1); /* path[dlen - 1] is the '/' */
  return 0;
}

/*
 * A small file opened for reading is read whole in the same job: most downloads are then one
 * thread-pool round trip instead of three (open, read, read at EOF). A read error is not an open
 * error: the head is left out and the client's READ meets the error itself.
 */
static void prefetch_head(job_t *j) {
  if (j->prefetch == 0 || j->out_fd < 0 || (j->flags & O_ACCMODE) != O_RDONLY) return;
  if (!S_ISREG(j->st.st_mode) || j->st.st_size >= (off_t)j->prefetch) return;
  char *buf = malloc(j->prefetch);
  if (buf == NULL) return;
  ssize_t n;
  do n = pread(j->out_fd, buf, j->prefetch, 0);
  while (n < 0 && errno == EINTR);
  if (n < 0 || n >= (ssize_t)j->prefetch) { /* failed, or grew since fstat: not the whole file */
    free(buf);
    return;
  }
  j->head = buf;
  j->head_len = n;
}

static void open_file(job_t *j);
static void run_open(job_t *j) {
  open_file(j);
  if (j->f.err == 0) prefetch_head(j);
}

static void open_file(job_t *j) {
  int flags = j->flags & OPEN_FLAGS_ALLOWED;
  char path[PATH_MAX];
  strcpy(path, j->path);

  if ((flags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL)) {
    j->out_fd = create_exclusive(j->root_fd, path, flags, j->mode, &j->st, &j->f);
    return;
  }
  for (int hop = 0; hop <= MAX_SYMLINK_HOPS; hop++) {
    int pfd = jail_open(j->root_fd, path, O_PATH, 0);
    if (pfd >= 0) {
      j->out_fd = reopen_regular(pfd, flags, &j->st, &j->f);
      close(pfd);
      return;
    }
    if (errno != ENOENT || !(flags & O_CREAT)) {
      fail_errno(&j->f, "openat2");
      return;
    }
    int fd = jail_open(j->root_fd, path, flags | O_CREAT | O_EXCL | O_NONBLOCK | O_NOCTTY,
                       j->mode & 0777);
    if (fd >= 0) {
      if (fstat(fd, &j->st) < 0) {
        fail_errno(&j->f, "fstat");
        close(fd);
        return;
      }
      j->out_fd = fd;
      return;
    }
    if (errno != EEXIST) {
      fail_errno(&j->f, "openat2");
      return;
    }
    /* Did not resolve, yet exists: a dangling symlink, or a concurrent create. */
    if (follow_dangling(j->root_fd, path, &j->f) < 0) return;
  }
  fail(&j->f, ELOOP, "openat2");
}

/* --- stat / realpath / readlink ------------------------------------------------------------- */

static void run_stat(job_t *j) {
  int fd = jail_open_f(j->root_fd, j->path, O_PATH | (j->flag ? 0 : O_NOFOLLOW), 0, &j->f);
  if (fd < 0) return;
  if (fstat_any(fd, &j->st) < 0) fail_errno(&j->f, "fstat");
  close(fd);
}

/* Host path of an fd, from its /proc/self/fd link. */
static int fd_host_path(int fd, char out[PATH_MAX], failure_t *f) {
  char proc[32];
  proc_fd_path(fd, proc);
  ssize_t n = readlink(proc, out, PATH_MAX);
  if (n < 0) return fail_errno(f, "readlink");
  if (n >= PATH_MAX) return fail(f, ENAMETOOLONG, "readlink");
  out[n] = '\0';
  return 0;
}

/*
 * Strip the host root from a host path. Compare against root + "/", never a bare prefix: root
 * "/srv/alice" must not claim "/srv/alice2/x". Anything else is outside the root: EXDEV.
 */
static int host_to_virtual(const char *host, const char *root, char out[PATH_MAX], failure_t *f) {
  size_t rlen = strlen(root);
  const char *rest;
  if (strcmp(host, root) == 0) {
    rest = "";
  } else if (strcmp(root, "/") == 0 && host[0] == '/') {
    rest = host; /* a root of "/" (odd, but legal) */
  } else if (strncmp(host, root, rlen) == 0 && host[rlen] == '/') {
    rest = host + rlen;
  } else {
    return fail(f, EXDEV, "realpath");
  }
  if (rest[0] == '\0') rest = "/";
  if (strlen(rest) >= PATH_MAX) return fail(f, ENAMETOOLONG, "realpath");
  strcpy(out, rest);
  return 0;
}

static int virtual_path_of(int fd, int root_fd, char out[PATH_MAX], failure_t *f) {
  char host[PATH_MAX], root[PATH_MAX];
  if (fd_host_path(root_fd, root, f) < 0) return -1;
  if (fd_host_path(fd, host, f) < 0) return -1;
  /* Removed since we opened it: the link now reads "<path> (deleted)", which names nothing. */
  struct stat st;
  if (fstat_any(fd, &st) < 0) return fail_errno(f, "fstat");
  if (st.st_nlink == 0) return fail(f, ENOENT, "realpath");
  return host_to_virtual(host, root, out, f);
}

/* "/" + leaf appended to a virtual directory path. */
static int append_leaf(char virt[PATH_MAX], const char *leaf, failure_t *f) {
  size_t vlen = strlen(virt);
  if (vlen == 1) vlen = 0; /* "/" + leaf, not "//" + leaf */
  if (vlen + 1 + strlen(leaf) >= PATH_MAX) return fail(f, ENAMETOOLONG, "realpath");
  virt[vlen] = '/';
  strcpy(virt + vlen + 1, leaf);
  return 0;
}

/*
 * Canonical virtual path. Like OpenSSH, the last component may be missing: then the parent is
 * resolved and the leaf appended. A dangling symlink as the last component is followed the way
 * open(O_CREAT) would, so the answer names the file a create would make.
 */
static void run_realpath(job_t *j) {
  char path[PATH_MAX], virt[PATH_MAX];
  strcpy(path, j->path);
  for (int hop = 0; hop <= MAX_SYMLINK_HOPS; hop++) {
    int fd = jail_open(j->root_fd, path, O_PATH, 0);
    if (fd >= 0) {
      int rc = virtual_path_of(fd, j->root_fd, virt, &j->f);
      close(fd);
      if (rc == 0) j->out_str = strdup(virt);
      return;
    }
    if (errno != ENOENT) {
      fail_errno(&j->f, "openat2");
      return;
    }
    split_t s;
    split_path(path, &s);
    if (s.kind != TARGET_NAME) {
      fail(&j->f, ENOENT, "openat2");
      return;
    }
    int pfd = open_parent(j->root_fd, &s, &j->f);
    if (pfd < 0) return;
    struct stat st;
    if (fstatat(pfd, s.leaf, &st, AT_SYMLINK_NOFOLLOW) == 0) {
      /* Exists but did not resolve: a dangling symlink (or a concurrent create; just retry). */
      close(pfd);
      if (follow_dangling(j->root_fd, path, &j->f) < 0) return;
      continue;
    }
    int rc = virtual_path_of(pfd, j->root_fd, virt, &j->f);
    close(pfd);
    if (rc == 0 && append_leaf(virt, s.leaf, &j->f) == 0) j->out_str = strdup(virt);
    return;
  }
  fail(&j->f, ELOOP, "openat2");
}

/*
 * Open the link itself (O_NOFOLLOW on the last component; earlier components resolve inside the
 * root) and read it through the fd. Non-links answer EINVAL as readlink(2) does.
 */
static void run_readlink(job_t *j) {
  int fd = jail_open_f(j->root_fd, j->path, O_PATH | O_NOFOLLOW, 0, &j->f);
  if (fd < 0) return;
  char target[PATH_MAX];
  if (read_link_fd(fd, target, &j->f) >= 0) j->out_str = strdup(target);
  close(fd);
}

/* --- mutations ------------------------------------------------------------------------------ */

static void run_mkdir(job_t *j) {
  split_t s;
  split_path(j->path, &s);
  if (check_target(&s, EEXIST, EEXIST, "mkdirat", &j->f) < 0) return;
  int pfd = open_parent(j->root_fd, &s, &j->f);
  if (pfd < 0) return;
  if (mkdirat(pfd, s.leaf, j->mode & 0777) < 0) fail_errno(&j->f, "mkdirat");
  close(pfd);
}

static void run_rmdir(job_t *j) {
  split_t s;
  split_path(j->path, &s);
  if (check_target(&s, EBUSY, EINVAL, "unlinkat", &j->f) < 0) return;
  int pfd = open_parent(j->root_fd, &s, &j->f);
  if (pfd < 0) return;
  if (unlinkat(pfd, s.leaf, AT_REMOVEDIR) < 0) fail_errno(&j->f, "unlinkat");
  close(pfd);
}

static void run_unlink(job_t *j) {
  split_t s;
  split_path(j->path, &s);
  if (check_target(&s, EBUSY, EINVAL, "unlinkat", &j->f) < 0) return;
  int pfd = open_parent(j->root_fd, &s, &j->f);
  if (pfd < 0) return;
  if (s.trailing_slash) {
    /* unlink("x/") never removes anything: EISDIR for a directory, ENOTDIR otherwise. */
    if (leaf_must_be_dir(pfd, s.leaf, "unlinkat", &j->f) == 0) fail(&j->f, EISDIR, "unlinkat");
  } else if (unlinkat(pfd, s.leaf, 0) < 0) {
    fail_errno(&j->f, "unlinkat");
  }
  close(pfd);
}

/* A call on two names (rename, link): both parents resolved in the root, then `act` on the leaves. */
typedef void (*two_leaf_fn)(job_t *j, int ofd, const split_t *from, int nfd, const split_t *to);
static void run_two_leaves(job_t *j, const char *syscall, two_leaf_fn act) {
  split_t from, to;
  split_path(j->path, &from);
  split_path(j->path2, &to);
  if (check_target(&from, EBUSY, EINVAL, syscall, &j->f) < 0) return;
  if (check_target(&to, EBUSY, EINVAL, syscall, &j->f) < 0) return;
  int ofd = open_parent(j->root_fd, &from, &j->f);
  if (ofd < 0) return;
  int nfd = open_parent(j->root_fd, &to, &j->f);
  if (nfd >= 0) {
    act(j, ofd, &from, nfd, &to);
    close(nfd);
  }
  close(ofd);
}

/*
 * A rename that must not replace, where renameat2's flag is refused (EINVAL: NFS, some FUSE
 * filesystems). As OpenSSH's sftp-server does: a regular file gets the new name as a hard link —
 * atomic, EEXIST if the name is taken — and loses the old one; anything else (or a filesystem
 * without hard links) is renamed once the new name is seen to be free, with the race that implies.
 */
static void rename_noreplace_compat(job_t *j, int ofd, const char *oleaf, int nfd, const char *nleaf) {
  struct stat st;
  if (fstatat(ofd, oleaf, &st, AT_SYMLINK_NOFOLLOW) < 0) {
    fail_errno(&j->f, "fstatat");
    return;
  }
  if (S_ISREG(st.st_mode)) {
    if (linkat(ofd, oleaf, nfd, nleaf, 0) == 0) {
      if (unlinkat(ofd, oleaf, 0) < 0) fail_errno(&j->f, "unlinkat");
      return;
    }
    if (errno != EPERM && errno != EOPNOTSUPP && errno != EMLINK) {
      fail_errno(&j->f, "linkat");
      return;
    }
  }
  if (fstatat(nfd, nleaf, &st, AT_SYMLINK_NOFOLLOW) == 0)
    fail(&j->f, EEXIST, "renameat");
  else if (errno != ENOENT)
    fail_errno(&j->f, "fstatat");
  else if (renameat(ofd, oleaf, nfd, nleaf) < 0)
    fail_errno(&j->f, "renameat");
}

static void rename_leaves(job_t *j, int ofd, const split_t *from, int nfd, const split_t *to) {
  if ((from->trailing_slash || to->trailing_slash) && leaf_must_be_dir(ofd, from->leaf, "renameat2", &j->f) < 0)
    return;
  if (syscall(SYS_renameat2, ofd, from->leaf, nfd, to->leaf, j->flag ? RENAME_NOREPLACE : 0) == 0) return;
  /* EINVAL on a no-replace rename: the filesystem refuses the flag, or the move is impossible (a
   * directory into itself), which the compat path reports the same way. */
  if (errno == EINVAL && j->flag)
    rename_noreplace_compat(j, ofd, from->leaf, nfd, to->leaf);
  else
    fail_errno(&j->f, "renameat2");
}

/* The compat path alone (renameCompat), so it can be tested where renameat2 takes the flag. */
static void rename_compat_leaves(job_t *j, int ofd, const split_t *from, int nfd, const split_t *to) {
  if ((from->trailing_slash || to->trailing_slash) && leaf_must_be_dir(ofd, from->leaf, "renameat", &j->f) < 0)
    return;
  rename_noreplace_compat(j, ofd, from->leaf, nfd, to->leaf);
}

static void link_leaves(job_t *j, int ofd, const split_t *from, int nfd, const split_t *to) {
  if (from->trailing_slash && leaf_must_be_dir(ofd, from->leaf, "linkat", &j->f) < 0) return;
  if (to->trailing_slash && refuse_new_name_with_slash(nfd, to->leaf, "linkat", &j->f) < 0) return;
  /* flags 0: never follow the source, so linking a symlink links the symlink itself. */
  if (linkat(ofd, from->leaf, nfd, to->leaf, 0) < 0) fail_errno(&j->f, "linkat");
}

static void run_rename(job_t *j) { run_two_leaves(j, "renameat2", rename_leaves); }
static void run_rename_compat(job_t *j) { run_two_leaves(j, "renameat", rename_compat_leaves); }
static void run_link(job_t *j) { run_two_leaves(j, "linkat", link_leaves); }

/* The target string is stored verbatim; it only ever gets interpreted by openat2 in the root. */
static void run_symlink(job_t *j) {
  split_t s;
  split_path(j->path2, &s);
  if (check_target(&s, EBUSY, EINVAL, "symlinkat", &j->f) < 0) return;
  int pfd = open_parent(j->root_fd, &s, &j->f);
  if (pfd < 0) return;
  if (s.trailing_slash)
    refuse_new_name_with_slash(pfd, s.leaf, "symlinkat", &j->f);
  else if (symlinkat(j->path, pfd, s.leaf) < 0)
    fail_errno(&j->f, "symlinkat");
  close(pfd);
}

/* --- setstat -------------------------------------------------------------------------------- */

static int to_timespecs(const attrs_t *a, struct timespec ts[2]) {
  if (!a->has_atime && !a->has_mtime) return 0;
  ts[0].tv_sec = a->atime;
  ts[0].tv_nsec = a->has_atime ? 0 : UTIME_OMIT;
  ts[1].tv_sec = a->mtime;
  ts[1].tv_nsec = a->has_mtime ? 0 : UTIME_OMIT;
  return 1;
}

/* Truncate the regular file behind an O_PATH fd, reopening it via /proc like open() does. */
static int truncate_path_fd(int path_fd, int64_t size, failure_t *f) {
  struct stat st;
  if (fstat_any(path_fd, &st) < 0) return fail_errno(f, "fstat");
  if (S_ISDIR(st.st_mode)) return fail(f, EISDIR, "truncate");
  if (!S_ISREG(st.st_mode)) return fail(f, EINVAL, "truncate");
  char proc[32];
  proc_fd_path(path_fd, proc);
  int fd = open(proc, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return fail_errno(f, "open");
  int rc = ftruncate(fd, size);
  if (rc < 0) fail_errno(f, "ftruncate");
  close(fd);
  return rc;
}

/*
 * Order as OpenSSH: size, then mode, then times (so the truncate does not overwrite the mtime).
 * Everything acts on the one inode the O_PATH fd names; nothing re-walks the path.
 */
static void run_setstat(job_t *j) {
  const attrs_t *a = &j->attrs;
  if (a->has_size && a->size < 0) {
    fail(&j->f, EINVAL, "truncate");
    return;
  }
  int fd = jail_open_f(j->root_fd, j->path, O_PATH | (j->flag ? 0 : O_NOFOLLOW), 0, &j->f);
  if (fd < 0) return;
  char proc[32];
  proc_fd_path(fd, proc);
  struct timespec ts[2];
  if (a->has_size && truncate_path_fd(fd, a->size, &j->f) < 0) goto out;
  /* On an O_PATH fd of a symlink this fails with EOPNOTSUPP: Linux has no symlink modes. */
  if (a->has_mode && chmod(proc, a->mode & 0777) < 0) {
    fail_errno(&j->f, "chmod");
    goto out;
  }
  if (to_timespecs(a, ts) && utimensat(fd, "", ts, AT_EMPTY_PATH) < 0) fail_errno(&j->f, "utimensat");
out:
  close(fd);
}

static void run_fsetstat(job_t *j) {
  const attrs_t *a = &j->attrs;
  struct timespec ts[2];
  if (a->has_size) {
    if (a->size < 0) {
      fail(&j->f, EINVAL, "ftruncate");
      return;
    }
    if (ftruncate(j->fd, a->size) < 0) {
      fail_errno(&j->f, "ftruncate");
      return;
    }
  }
  if (a->has_mode && fchmod(j->fd, a->mode & 0777) < 0) {
    fail_errno(&j->f, "fchmod");
    return;
  }
  if (to_timespecs(a, ts) && futimens(j->fd, ts) < 0) fail_errno(&j->f, "futimens");
}

/* --- statvfs -------------------------------------------------------------------------------- */

static void run_statvfs(job_t *j) {
  int fd = jail_open_f(j->root_fd, j->path, O_PATH, 0, &j->f);
  if (fd < 0) return;
  if (fstatvfs(fd, &j->vfs) < 0) fail_errno(&j->f, "fstatvfs");
  close(fd);
}

static void run_fstatvfs(job_t *j) {
  if (fstatvfs(j->fd, &j->vfs) < 0) fail_errno(&j->f, "fstatvfs");
}

/* --- directories ---------------------------------------------------------------------------- */

static void run_opendir(job_t *j) {
  /* O_DIRECTORY is checked before anything is opened: a FIFO answers ENOTDIR, unopened. */
  int fd = jail_open_f(j->root_fd, j->path, O_RDONLY | O_DIRECTORY, 0, &j->f);
  if (fd < 0) return;
  struct stat dst, rst;
  if (fstat(fd, &dst) < 0 || fstat(j->root_fd, &rst) < 0) {
    fail_errno(&j->f, "fstat");
    close(fd);
    return;
  }
  jail_dir_t *d = calloc(1, sizeof *d);
  if (d == NULL) {
    fail(&j->f, ENOMEM, "opendir");
    close(fd);
    return;
  }
  d->dir = fdopendir(fd);
  if (d->dir == NULL) {
    fail_errno(&j->f, "fdopendir");
    close(fd);
    free(d);
    return;
  }
  pthread_mutex_init(&d->lock, NULL);
  d->is_root = dst.st_dev == rst.st_dev && dst.st_ino == rst.st_ino;
  j->new_dir = d;
}

static void run_readdir(job_t *j) {
  jail_dir_t *d = j->dir;
  pthread_mutex_lock(&d->lock);
  if (d->dir == NULL) {
    fail(&j->f, EBADF, "readdir");
    goto out;
  }
  j->entries = calloc(j->max, sizeof *j->entries);
  if (j->entries == NULL) {
    fail(&j->f, ENOMEM, "readdir");
    goto out;
  }
  int dfd = dirfd(d->dir);
  while (j->n_entries < j->max) {
    errno = 0;
    struct dirent *de = readdir(d->dir);
    if (de == NULL) {
      if (errno != 0) fail_errno(&j->f, "readdir");
      break;
    }
    dir_entry_t *e = &j->entries[j->n_entries];
    e->name = strdup(de->d_name);
    if (e->name == NULL) {
      fail(&j->f, ENOMEM, "readdir");
      break;
    }
    j->n_entries++;
    /* The root's ".." is the root: never stat the host directory above it. */
    if (d->is_root && strcmp(de->d_name, "..") == 0)
      e->has_stat = fstat(dfd, &e->st) == 0;
    else
      e->has_stat = fstatat(dfd, de->d_name, &e->st, AT_SYMLINK_NOFOLLOW) == 0;
  }
out:
  pthread_mutex_unlock(&d->lock);
}

static void close_dir(jail_dir_t *d) {
  pthread_mutex_lock(&d->lock);
  if (d->dir != NULL) closedir(d->dir);
  d->dir = NULL;
  pthread_mutex_unlock(&d->lock);
}

static void run_closedir(job_t *j) { close_dir(j->dir); }

/* --- copy ----------------------------------------------------------------------------------- */

/* Copy with pread/pwrite when copy_file_range can't (different fs, special files, old kernel). */
static int copy_by_hand(job_t *j, int64_t *off_in, int64_t *off_out, int64_t *left, bool until_eof) {
  enum { CHUNK = 64 * 1024 };
  char *buf = malloc(CHUNK);
  if (buf == NULL) return fail(&j->f, ENOMEM, "copy");
  int rc = 0;
  while (until_eof || *left > 0) {
    size_t want = (!until_eof && *left < CHUNK) ? (size_t)*left : CHUNK;
    ssize_t n = pread(j->fd, buf, want, *off_in);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      rc = fail_errno(&j->f, "pread");
      break;
    }
    if (n == 0) break;
    for (ssize_t done = 0; done < n;) {
      ssize_t w = pwrite(j->fd2, buf + done, (size_t)(n - done), *off_out);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) {
        rc = fail_errno(&j->f, "pwrite");
        goto out;
      }
      done += w;
      *off_out += w;
      j->copied += w;
    }
    *off_in += n;
    *left -= n;
  }
out:
  free(buf);
  return rc;
}

static void run_copy(job_t *j) {
  if (j->off_in < 0 || j->off_out < 0 || j->len < 0) {
    fail(&j->f, EINVAL, "copy_file_range");
    return;
  }
  bool until_eof = j->len == 0;
  int64_t off_in = j->off_in, off_out = j->off_out, left = j->len;
  /* copy_file_range refuses an O_APPEND target; pwrite on one appends, as OpenSSH's copy would. */
  int out_flags = fcntl(j->fd2, F_GETFL);
  bool by_hand = out_flags >= 0 && (out_flags & O_APPEND);
  while (!by_hand && (until_eof || left > 0)) {
    size_t want = (until_eof || left > (1 << 30)) ? (size_t)1 << 30 : (size_t)left;
    loff_t in = off_in, out = off_out;
    ssize_t n = copy_file_range(j->fd, &in, j->fd2, &out, want, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)) {
      by_hand = true;
      break;
    }
    if (n < 0) {
      fail_errno(&j->f, "copy_file_range");
      return;
    }
    if (n == 0) return; /* end of input */
    off_in += n;
    off_out += n;
    left -= n;
    j->copied += n;
  }
  if (by_hand) copy_by_hand(j, &off_in, &off_out, &left, until_eof);
}

/* ------------------------------------------------------------------------------------------ */
/* JS values                                                                                    */
/* ------------------------------------------------------------------------------------------ */

static void set_number(napi_env env, napi_value obj, const char *key, double v) {
  napi_value n;
  napi_create_double(env, v, &n);
  napi_set_named_property(env, obj, key, n);
}

static napi_value stat_to_js(napi_env env, const struct stat *st) {
  napi_value o;
  napi_create_object(env, &o);
  set_number(env, o, "mode", st->st_mode);
  set_number(env, o, "uid", st->st_uid);
  set_number(env, o, "gid", st->st_gid);
  set_number(env, o, "size", (double)st->st_size);
  set_number(env, o, "atime", (double)st->st_atim.tv_sec);
  set_number(env, o, "mtime", (double)st->st_mtim.tv_sec);
  set_number(env, o, "nlink", (double)st->st_nlink);
  set_number(env, o, "ino", (double)st->st_ino);
  set_number(env, o, "dev", (double)st->st_dev);
  set_number(env, o, "blocks", (double)st->st_blocks);
  return o;
}

static napi_value result_open(napi_env env, job_t *j) {
  napi_value o, fd;
  napi_create_object(env, &o);
  napi_create_int32(env, j->out_fd, &fd);
  napi_set_named_property(env, o, "fd", fd);
  napi_set_named_property(env, o, "stat", stat_to_js(env, &j->st));
  if (j->head != NULL) {
    napi_value head;
    if (napi_create_buffer_copy(env, (size_t)j->head_len, j->head, NULL, &head) == napi_ok)
      napi_set_named_property(env, o, "head", head);
  }
  j->out_fd = -1; /* ownership moved to JS */
  return o;
}

static napi_value result_stat(napi_env env, job_t *j) { return stat_to_js(env, &j->st); }

/*
 * Names are bytes on the disk and strings in JS. A byte that does not start a well-formed UTF-8
 * sequence travels as the lone code unit U+DC80-U+DCFF ("surrogate escape", as src/sftp/names.ts
 * and Python's PEP 383): a name that is not UTF-8 keeps its exact bytes both ways.
 */
static size_t utf8_seq_len(const unsigned char *b, size_t i, size_t n) {
  unsigned char b0 = b[i];
  if (b0 < 0x80) return 1;
#define CONT(k, lo, hi) (i + (k) < n && b[i + (k)] >= (lo) && b[i + (k)] <= (hi))
  if (b0 >= 0xc2 && b0 <= 0xdf) return CONT(1, 0x80, 0xbf) ? 2 : 0;
  if (b0 == 0xe0) return CONT(1, 0xa0, 0xbf) && CONT(2, 0x80, 0xbf) ? 3 : 0;
  if (b0 == 0xed) return CONT(1, 0x80, 0x9f) && CONT(2, 0x80, 0xbf) ? 3 : 0;
  if (b0 >= 0xe1 && b0 <= 0xef) return CONT(1, 0x80, 0xbf) && CONT(2, 0x80, 0xbf) ? 3 : 0;
  if (b0 == 0xf0) return CONT(1, 0x90, 0xbf) && CONT(2, 0x80, 0xbf) && CONT(3, 0x80, 0xbf) ? 4 : 0;
  if (b0 >= 0xf1 && b0 <= 0xf3) return CONT(1, 0x80, 0xbf) && CONT(2, 0x80, 0xbf) && CONT(3, 0x80, 0xbf) ? 4 : 0;
  if (b0 == 0xf4) return CONT(1, 0x80, 0x8f) && CONT(2, 0x80, 0xbf) && CONT(3, 0x80, 0xbf) ? 4 : 0;
#undef CONT
  return 0;
}

static napi_status create_name(napi_env env, const char *s, size_t n, napi_value *out) {
  const unsigned char *b = (const unsigned char *)s;
  size_t i = 0;
  while (i < n && b[i] < 0x80) i++;
  if (i == n) return napi_create_string_latin1(env, s, n, out);
  bool valid = true;
  for (size_t k = i; k < n;) {
    size_t len = utf8_seq_len(b, k, n);
    if (len == 0) {
      valid = false;
      break;
    }
    k += len;
  }
  if (valid) return napi_create_string_utf8(env, s, n, out);
  /* At most one UTF-16 unit per byte: a 4-byte sequence makes 2 units. */
  char16_t *u = malloc((n + 1) * sizeof(char16_t));
  if (u == NULL) return napi_generic_failure;
  size_t m = 0;
  for (size_t k = 0; k < n;) {
    size_t len = utf8_seq_len(b, k, n);
    uint32_t cp;
    if (len == 0) {
      u[m++] = (char16_t)(0xdc00 + b[k]);
      k++;
      continue;
    }
    if (len == 1) cp = b[k];
    else if (len == 2) cp = ((b[k] & 0x1fu) << 6) | (b[k + 1] & 0x3fu);
    else if (len == 3) cp = ((b[k] & 0x0fu) << 12) | ((b[k + 1] & 0x3fu) << 6) | (b[k + 2] & 0x3fu);
    else cp = ((b[k] & 0x07u) << 18) | ((b[k + 1] & 0x3fu) << 12) | ((b[k + 2] & 0x3fu) << 6) | (b[k + 3] & 0x3fu);
    if (cp >= 0x10000) {
      cp -= 0x10000;
      u[m++] = (char16_t)(0xd800 + (cp >> 10));
      u[m++] = (char16_t)(0xdc00 + (cp & 0x3ffu));
    } else {
      u[m++] = (char16_t)cp;
    }
    k += len;
  }
  napi_status st = napi_create_string_utf16(env, u, m, out);
  free(u);
  return st;
}

/* The inverse of create_name: UTF-16 to bytes, U+DC80-U+DCFF alone back to its byte. */
static size_t encode_name(const char16_t *u, size_t n, char *out) {
  size_t m = 0;
  for (size_t i = 0; i < n; i++) {
    uint32_t c = u[i];
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < n && u[i + 1] >= 0xdc00 && u[i + 1] <= 0xdfff) {
      c = 0x10000 + ((c - 0xd800) << 10) + (u[i + 1] - 0xdc00u);
      i++;
    } else if (c >= 0xdc80 && c <= 0xdcff) {
      out[m++] = (char)(c - 0xdc00);
      continue;
    } else if (c >= 0xd800 && c <= 0xdfff) {
      c = 0xfffd; /* any other lone surrogate: as Buffer.from(s, 'utf8') does */
    }
    if (c < 0x80) {
      out[m++] = (char)c;
    } else if (c < 0x800) {
      out[m++] = (char)(0xc0 | (c >> 6));
      out[m++] = (char)(0x80 | (c & 0x3f));
    } else if (c < 0x10000) {
      out[m++] = (char)(0xe0 | (c >> 12));
      out[m++] = (char)(0x80 | ((c >> 6) & 0x3f));
      out[m++] = (char)(0x80 | (c & 0x3f));
    } else {
      out[m++] = (char)(0xf0 | (c >> 18));
      out[m++] = (char)(0x80 | ((c >> 12) & 0x3f));
      out[m++] = (char)(0x80 | ((c >> 6) & 0x3f));
      out[m++] = (char)(0x80 | (c & 0x3f));
    }
  }
  return m;
}

static napi_value result_string(napi_env env, job_t *j) {
  napi_value s;
  create_name(env, j->out_str, strlen(j->out_str), &s);
  return s;
}

static napi_value result_statvfs(napi_env env, job_t *j) {
  const struct statvfs *v = &j->vfs;
  napi_value o;
  napi_create_object(env, &o);
  set_number(env, o, "bsize", (double)v->f_bsize);
  set_number(env, o, "frsize", (double)v->f_frsize);
  set_number(env, o, "blocks", (double)v->f_blocks);
  set_number(env, o, "bfree", (double)v->f_bfree);
  set_number(env, o, "bavail", (double)v->f_bavail);
  set_number(env, o, "files", (double)v->f_files);
  set_number(env, o, "ffree", (double)v->f_ffree);
  set_number(env, o, "favail", (double)v->f_favail);
  set_number(env, o, "fsid", (double)v->f_fsid);
  set_number(env, o, "flag", (double)v->f_flag);
  set_number(env, o, "namemax", (double)v->f_namemax);
  return o;
}

static napi_value result_entries(napi_env env, job_t *j) {
  napi_value arr;
  napi_create_array_with_length(env, j->n_entries, &arr);
  for (uint32_t i = 0; i < j->n_entries; i++) {
    const dir_entry_t *e = &j->entries[i];
    napi_value o, name, st;
    napi_create_object(env, &o);
    create_name(env, e->name, strlen(e->name), &name);
    if (e->has_stat)
      st = stat_to_js(env, &e->st);
    else
      napi_get_null(env, &st);
    napi_set_named_property(env, o, "name", name);
    napi_set_named_property(env, o, "stat", st);
    napi_set_element(env, arr, i, o);
  }
  return arr;
}

static napi_value result_copied(napi_env env, job_t *j) {
  napi_value n;
  napi_create_double(env, (double)j->copied, &n);
  return n;
}

/* Dir objects are externals with a type tag, so a stray external from elsewhere is refused. */
static const napi_type_tag DIR_TAG = {0x6a61696c2d646972ULL, 0x9d3c1f0b52a7e481ULL};

static void dir_finalize(napi_env env, void *data, void *hint) {
  jail_dir_t *d = data;
  close_dir(d); /* JS forgot closedir(); no job can be running: each holds a reference */
  pthread_mutex_destroy(&d->lock);
  free(d);
}

static napi_value result_dir(napi_env env, job_t *j) {
  napi_value ext;
  if (napi_create_external(env, j->new_dir, dir_finalize, NULL, &ext) != napi_ok) return NULL;
  j->new_dir = NULL; /* owned by the external now */
  napi_type_tag_object(env, ext, &DIR_TAG);
  return ext;
}

/* ------------------------------------------------------------------------------------------ */
/* Async plumbing                                                                               */
/* ------------------------------------------------------------------------------------------ */

static void job_execute(napi_env env, void *data) {
  job_t *j = data;
  if (j->f.err == 0) j->run(j); /* an argument error was found before queueing */
}

static void job_free(napi_env env, job_t *j) {
  if (j->out_fd >= 0) close(j->out_fd); /* opened, but never handed to JS */
  if (j->new_dir != NULL) {
    close_dir(j->new_dir);
    pthread_mutex_destroy(&j->new_dir->lock);
    free(j->new_dir);
  }
  for (uint32_t i = 0; i < j->n_entries; i++) free(j->entries[i].name);
  free(j->entries);
  free(j->path);
  free(j->path2);
  free(j->out_str);
  free(j->head);
  if (j->dir_ref != NULL) napi_delete_reference(env, j->dir_ref);
  napi_delete_async_work(env, j->work);
  free(j);
}

static void job_complete(napi_env env, napi_status status, void *data) {
  job_t *j = data;
  if (status != napi_ok && j->f.err == 0) fail(&j->f, ECANCELED, "async");
  /* A string result that could not be copied out of the worker is an allocation failure. */
  if (j->f.err == 0 && j->result == result_string && j->out_str == NULL) fail(&j->f, ENOMEM, "strdup");

  if (j->f.err != 0) {
    napi_reject_deferred(env, j->deferred, make_error(env, j->f.err, j->f.syscall));
  } else {
    napi_value v = NULL;
    if (j->result != NULL) v = j->result(env, j);
    if (v == NULL) napi_get_undefined(env, &v);
    napi_resolve_deferred(env, j->deferred, v);
  }
  job_free(env, j);
}

static job_t *job_new(run_fn run, result_fn result) {
  job_t *j = calloc(1, sizeof *j);
  if (j == NULL) return NULL;
  j->run = run;
  j->result = result;
  j->root_fd = j->fd = j->fd2 = j->out_fd = -1;
  return j;
}

/* Queue the job and return its promise. On failure, frees the job and leaves an exception. */
static napi_value job_queue(napi_env env, job_t *j, const char *name) {
  napi_value promise, resource;
  if (napi_create_promise(env, &j->deferred, &promise) != napi_ok) goto fail;
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource);
  if (napi_create_async_work(env, NULL, resource, job_execute, job_complete, j, &j->work) != napi_ok)
    goto fail;
  if (napi_queue_async_work(env, j->work) != napi_ok) {
    napi_delete_async_work(env, j->work);
    goto fail;
  }
  return promise;
fail:
  free(j->path);
  free(j->path2);
  if (j->dir_ref != NULL) napi_delete_reference(env, j->dir_ref);
  free(j);
  napi_throw_error(env, "ERR_JAIL_QUEUE", "could not queue native work");
  return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Argument parsing (main thread). Type errors throw synchronously; path errors reject.         */
/* ------------------------------------------------------------------------------------------ */

#define MAX_ARGS 6

typedef struct {
  napi_value argv[MAX_ARGS];
  size_t argc;
} args_t;

static bool get_args(napi_env env, napi_callback_info info, args_t *a, size_t need) {
  a->argc = MAX_ARGS;
  if (napi_get_cb_info(env, info, &a->argc, a->argv, NULL, NULL) != napi_ok) return false;
  if (a->argc < need) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "missing arguments");
    return false;
  }
  return true;
}

static bool type_error(napi_env env, const char *what) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", what);
  return false;
}

static bool is_type(napi_env env, napi_value v, napi_valuetype want) {
  napi_valuetype t;
  return napi_typeof(env, v, &t) == napi_ok && t == want;
}

static bool get_int(napi_env env, napi_value v, int32_t *out, const char *what) {
  if (!is_type(env, v, napi_number)) return type_error(env, what);
  napi_get_value_int32(env, v, out);
  return true;
}

static bool get_fd(napi_env env, napi_value v, int *out) {
  if (!get_int(env, v, out, "fd must be a number")) return false;
  if (*out < 0) return type_error(env, "fd must be >= 0");
  return true;
}

static bool get_int64(napi_env env, napi_value v, int64_t *out, const char *what) {
  if (!is_type(env, v, napi_number)) return type_error(env, what);
  napi_get_value_int64(env, v, out);
  return true;
}

static bool get_bool(napi_env env, napi_value v, bool *out, const char *what) {
  if (!is_type(env, v, napi_boolean)) return type_error(env, what);
  napi_get_value_bool(env, v, out);
  return true;
}

/*
 * Copy a path argument ("" is kept: it names the root). A path the kernel could not receive intact
 * (embedded NUL, too long) is not a type error: it is recorded in `f` and the promise rejects,
 * like any other bad path from a client.
 */
static bool get_path(napi_env env, napi_value v, char **out, failure_t *f) {
  if (!is_type(env, v, napi_string)) return type_error(env, "path must be a string");
  size_t n16;
  napi_get_value_string_utf16(env, v, NULL, 0, &n16);
  if (n16 >= PATH_MAX) {
    fail(f, ENAMETOOLONG, "path");
    n16 = 0;
  }
  /* At most 3 bytes per UTF-16 unit (a surrogate pair: 4 bytes for 2 units). */
  char16_t *u = malloc((n16 + 1) * sizeof(char16_t));
  char *buf = malloc(3 * n16 + 1);
  if (u == NULL || buf == NULL) {
    free(u);
    free(buf);
    napi_throw_error(env, "ERR_JAIL_NOMEM", "out of memory");
    return false;
  }
  size_t len = 0;
  if (n16 > 0) {
    napi_get_value_string_utf16(env, v, u, n16 + 1, &n16);
    len = encode_name(u, n16, buf);
    if (len >= PATH_MAX) {
      fail(f, ENAMETOOLONG, "path");
      len = 0;
    }
  }
  free(u);
  buf[len] = '\0';
  if (strlen(buf) != len) fail(f, EINVAL, "path"); /* embedded NUL would truncate the path */
  *out = buf;
  return true;
}

static bool get_attrs(napi_env env, napi_value v, attrs_t *a) {
  if (!is_type(env, v, napi_object)) return type_error(env, "attrs must be an object");
  static const char *const keys[] = {"mode", "size", "atime", "mtime"};
  for (int i = 0; i < 4; i++) {
    napi_value x;
    if (napi_get_named_property(env, v, keys[i], &x) != napi_ok) return false;
    if (is_type(env, x, napi_undefined)) continue;
    int64_t n;
    if (!get_int64(env, x, &n, "attrs fields must be numbers")) return false;
    switch (i) {
      case 0: a->has_mode = true; a->mode = (mode_t)n; break;
      case 1: a->has_size = true; a->size = n; break;
      case 2: a->has_atime = true; a->atime = n; break;
      default: a->has_mtime = true; a->mtime = n; break;
    }
  }
  return true;
}

static bool get_dir(napi_env env, napi_value v, job_t *j) {
  bool tagged = false;
  if (!is_type(env, v, napi_external) || napi_check_object_type_tag(env, v, &DIR_TAG, &tagged) != napi_ok ||
      !tagged)
    return type_error(env, "not a Dir");
  void *data;
  napi_get_value_external(env, v, &data);
  j->dir = data;
  return napi_create_reference(env, v, 1, &j->dir_ref) == napi_ok;
}

/* Allocate a job or throw. */
static job_t *new_job_or_throw(napi_env env, run_fn run, result_fn result) {
  job_t *j = job_new(run, result);
  if (j == NULL) napi_throw_error(env, "ERR_JAIL_NOMEM", "out of memory");
  return j;
}

static napi_value abandon(napi_env env, job_t *j) {
  free(j->path);
  free(j->path2);
  if (j->dir_ref != NULL) napi_delete_reference(env, j->dir_ref);
  free(j);
  return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Exported functions                                                                           */
/* ------------------------------------------------------------------------------------------ */

/*
 * probe(): openat2 with RESOLVE_IN_ROOT works here (not too old a kernel, not blocked by seccomp),
 * ".." at the root stays there, and /proc/self/fd links read back as paths (open and realpath
 * depend on them). Callers fail closed on false.
 */
static napi_value js_probe(napi_env env, napi_callback_info info) {
  bool ok = false;
  int rfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rfd >= 0) {
    int fd = jail_open(rfd, "/..", O_PATH | O_DIRECTORY, 0);
    if (fd >= 0) {
      struct stat a, b;
      ok = fstat(rfd, &a) == 0 && fstat(fd, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
      char host[PATH_MAX];
      failure_t f = {0, NULL};
      ok = ok && fd_host_path(fd, host, &f) == 0 && strcmp(host, "/") == 0;
      close(fd);
    }
    close(rfd);
  }
  napi_value r;
  napi_get_boolean(env, ok, &r);
  return r;
}

static napi_value js_open_root(napi_env env, napi_callback_info info) {
  args_t a;
  if (!get_args(env, info, &a, 1)) return NULL;
  failure_t f = {0, NULL};
  char *path;
  if (!get_path(env, a.argv[0], &path, &f)) return NULL;
  if (f.err != 0) {
    free(path);
    return throw_errno(env, f.err, f.syscall);
  }
  int fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
  int err = errno;
  free(path);
  if (fd < 0) return throw_errno(env, err, "open");
  napi_value r;
  napi_create_int32(env, fd, &r);
  return r;
}

static napi_value js_close_fd(napi_env env, napi_callback_info info) {
  args_t a;
  int fd;
  if (!get_args(env, info, &a, 1) || !get_fd(env, a.argv[0], &fd)) return NULL;
  /* On Linux the fd is released even when close() reports EINTR; never retry. */
  if (close(fd) < 0 && errno != EINTR) return throw_errno(env, errno, "close");
  return NULL;
}

static napi_value js_set_quick_ack(napi_env env, napi_callback_info info) {
  args_t a;
  int fd;
  if (!get_args(env, info, &a, 1) || !get_fd(env, a.argv[0], &fd)) return NULL;
  int one = 1;
  bool ok = setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one) == 0;
  napi_value r;
  napi_get_boolean(env, ok, &r);
  return r;
}

/* The lowest round-trip time the kernel has seen on a TCP socket, in microseconds (TCP_INFO
 * tcpi_min_rtt), or -1. The minimum, not the smoothed RTT: on a busy machine the smoothed one
 * includes scheduling and delayed-ACK waits (1-7 ms on loopback with 20 clients on 2 vCPUs).
 * glibc's struct tcp_info stops before tcpi_min_rtt (Linux 4.6; this addon needs 5.8); the kernel
 * only appends fields, so its offset in <linux/tcp.h>, 148, is stable. */
#define TCPI_MIN_RTT_OFFSET 148
static napi_value js_tcp_min_rtt(napi_env env, napi_callback_info info) {
  args_t a;
  int fd;
  if (!get_args(env, info, &a, 1) || !get_fd(env, a.argv[0], &fd)) return NULL;
  uint8_t ti[256];
  socklen_t len = sizeof ti;
  uint32_t v;
  int64_t rtt = -1;
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, ti, &len) == 0 && len >= TCPI_MIN_RTT_OFFSET + sizeof v) {
    memcpy(&v, ti + TCPI_MIN_RTT_OFFSET, sizeof v);
    rtt = v;
  }
  napi_value r;
  napi_create_int64(env, rtt, &r);
  return r;
}

/* Shared front half of the (rootFd, path, ...) functions. */
static job_t *rooted_job(napi_env env, args_t *a, size_t need, napi_callback_info info, run_fn run,
                         result_fn result) {
  if (!get_args(env, info, a, need)) return NULL;
  job_t *j = new_job_or_throw(env, run, result);
  if (j == NULL) return NULL;
  if (!get_fd(env, a->argv[0], &j->root_fd) || !get_path(env, a->argv[1], &j->path, &j->f)) {
    abandon(env, j);
    return NULL;
  }
  return j;
}

static napi_value js_open(napi_env env, napi_callback_info info) {
  args_t a;
  job_t *j = rooted_job(env, &a, 4, info, run_open, result_open);
  if (j == NULL) return NULL;
  int32_t mode;
  if (!get_int(env, a.argv[2], &j->flags, "flags must be a number") ||
      !get_int(env, a.argv[3], &mode, "mode must be a number"))
    return abandon(env, j);
  j->mode = (mode_t)mode;
  /* Optional 5th argument: prefetch size, at most 1 MiB. */
  napi_valuetype t = napi_undefined;
  if (a.argc > 4) napi_typeof(env, a.argv[4], &t);
  if (t != napi_undefined) {
    int32_t prefetch;
    if (!get_int(env, a.argv[4], &prefetch, "prefetch must be a number")) return abandon(env, j);
    j->prefetch = prefetch > 0 ? (uint32_t)(prefetch < (1 << 20) ? prefetch : (1 << 20)) : 0;
  }
  return job_queue(env, j, "jail.open");
}

static napi_value js_stat(napi_env env, napi_callback_info info) {
  args_t a;
  job_t *j = rooted_job(env, &a, 3, info, run_stat, result_stat);
  if (j == NULL) return NULL;
  if (!get_bool(env, a.argv[2], &j->flag, "follow must be a boolean")) return abandon(env, j);
  return job_queue(env, j, "jail.stat");
}

static napi_value js_mkdir(napi_env env, napi_callback_info info) {
  args_t a;
  job_t *j = rooted_job(env, &a, 3, info, run_mkdir, NULL);
  if (j == NULL) return NULL;
  int32_t mode;
  if (!get_int(env, a.argv[2], &mode, "mode must be a number")) return abandon(env, j);
  j->mode = (mode_t)mode;
  return job_queue(env, j, "jail.mkdir");
}

#define SIMPLE_ROOTED(fn, runner, result, name)                      \
  static napi_value fn(napi_env env, napi_callback_info info) {      \
    args_t a;                                                        \
    job_t *j = rooted_job(env, &a, 2, info, runner, result);         \
    return j == NULL ? NULL : job_queue(env, j, name);               \
  }

SIMPLE_ROOTED(js_rmdir, run_rmdir, NULL, "jail.rmdir")
SIMPLE_ROOTED(js_unlink, run_unlink, NULL, "jail.unlink")
SIMPLE_ROOTED(js_readlink, run_readlink, result_string, "jail.readlink")
SIMPLE_ROOTED(js_realpath, run_realpath, result_string, "jail.realpath")
SIMPLE_ROOTED(js_statvfs, run_statvfs, result_statvfs, "jail.statvfs")
SIMPLE_ROOTED(js_opendir, run_opendir, result_dir, "jail.opendir")

/* (rootFd, path, path2): rename and link. */
static job_t *two_path_job(napi_env env, args_t *a, size_t need, napi_callback_info info, run_fn run) {
  job_t *j = rooted_job(env, a, need, info, run, NULL);
  if (j == NULL) return NULL;
  if (!get_path(env, a->argv[2], &j->path2, &j->f)) {
    abandon(env, j);
    return NULL;
  }
  return j;
}

static napi_value js_rename(napi_env env, napi_callback_info info) {
  args_t a;
  job_t *j = two_path_job(env, &a, 4, info, run_rename);
  if (j == NULL) return NULL;
  if (!get_bool(env, a.argv[3], &j->flag, "noReplace must be a boolean")) return abandon(env, j);
  return job_queue(env, j, "jail.rename");
}

static napi_value js_rename_compat(napi_env env, napi_callback_info info) {
  args_t a;
  job_t *j = two_path_job(env, &a, 3, info, run_rename_compat);
  return j == NULL ? NULL : job_queue(env, j, "jail.renameCompat");
}

static napi_value js_link(napi_env env, napi_callback_info info) {
  args_t a;
  job_t *j = two_path_job(env, &a, 3, info, run_link);
  return j == NULL ? NULL : job_queue(env, j, "jail.link");
}

/* symlink(rootFd, target, linkPath): the target is not resolved, but it must reach the kernel intact. */
static napi_value js_symlink(napi_env env, napi_callback_info info) {
  args_t a;
  job_t *j = two_path_job(env, &a, 3, info, run_symlink);
  if (j == NULL) return NULL;
  if (j->path[0] == '\0' && j->f.err == 0) fail(&j->f, ENOENT, "symlinkat"); /* as symlink(2) */
  return job_queue(env, j, "jail.symlink");
}

static napi_value js_setstat(napi_env env, napi_callback_info info) {
  args_t a;
  job_t *j = rooted_job(env, &a, 4, info, run_setstat, NULL);
  if (j == NULL) return NULL;
  if (!get_bool(env, a.argv[2], &j->flag, "follow must be a boolean") || !get_attrs(env, a.argv[3], &j->attrs))
    return abandon(env, j);
  return job_queue(env, j, "jail.setstat");
}

static napi_value js_fsetstat(napi_env env, napi_callback_info info) {
  args_t a;
  if (!get_args(env, info, &a, 2)) return NULL;
  job_t *j = new_job_or_throw(env, run_fsetstat, NULL);
  if (j == NULL) return NULL;
  if (!get_fd(env, a.argv[0], &j->fd) || !get_attrs(env, a.argv[1], &j->attrs)) return abandon(env, j);
  return job_queue(env, j, "jail.fsetstat");
}

static napi_value js_fstatvfs(napi_env env, napi_callback_info info) {
  args_t a;
  if (!get_args(env, info, &a, 1)) return NULL;
  job_t *j = new_job_or_throw(env, run_fstatvfs, result_statvfs);
  if (j == NULL) return NULL;
  if (!get_fd(env, a.argv[0], &j->fd)) return abandon(env, j);
  return job_queue(env, j, "jail.fstatvfs");
}

static napi_value js_readdir(napi_env env, napi_callback_info info) {
  args_t a;
  if (!get_args(env, info, &a, 2)) return NULL;
  job_t *j = new_job_or_throw(env, run_readdir, result_entries);
  if (j == NULL) return NULL;
  int32_t max;
  if (!get_dir(env, a.argv[0], j) || !get_int(env, a.argv[1], &max, "max must be a number"))
    return abandon(env, j);
  j->max = max < 1 ? 1 : max > READDIR_MAX ? READDIR_MAX : (uint32_t)max;
  return job_queue(env, j, "jail.readdir");
}

static napi_value js_closedir(napi_env env, napi_callback_info info) {
  args_t a;
  if (!get_args(env, info, &a, 1)) return NULL;
  job_t *j = new_job_or_throw(env, run_closedir, NULL);
  if (j == NULL) return NULL;
  if (!get_dir(env, a.argv[0], j)) return abandon(env, j);
  return job_queue(env, j, "jail.closedir");
}

static napi_value js_copy_range(napi_env env, napi_callback_info info) {
  args_t a;
  if (!get_args(env, info, &a, 5)) return NULL;
  job_t *j = new_job_or_throw(env, run_copy, result_copied);
  if (j == NULL) return NULL;
  if (!get_fd(env, a.argv[0], &j->fd) || !get_int64(env, a.argv[1], &j->off_in, "offIn must be a number") ||
      !get_int64(env, a.argv[2], &j->len, "len must be a number") || !get_fd(env, a.argv[3], &j->fd2) ||
      !get_int64(env, a.argv[4], &j->off_out, "offOut must be a number"))
    return abandon(env, j);
  return job_queue(env, j, "jail.copyRange");
}

#define EXPORT(name, fn) {name, NULL, fn, NULL, NULL, NULL, napi_enumerable, NULL}

napi_value js_sd_notify(napi_env env, napi_callback_info info); /* native/notify.c */

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      EXPORT("probe", js_probe),         EXPORT("openRoot", js_open_root),
      EXPORT("closeFd", js_close_fd),    EXPORT("setQuickAck", js_set_quick_ack),
      EXPORT("tcpMinRtt", js_tcp_min_rtt),
      EXPORT("open", js_open),           EXPORT("stat", js_stat),
      EXPORT("mkdir", js_mkdir),         EXPORT("rmdir", js_rmdir),
      EXPORT("unlink", js_unlink),       EXPORT("rename", js_rename),
      EXPORT("renameCompat", js_rename_compat),
      EXPORT("link", js_link),           EXPORT("symlink", js_symlink),
      EXPORT("readlink", js_readlink),   EXPORT("realpath", js_realpath),
      EXPORT("setstat", js_setstat),     EXPORT("fsetstat", js_fsetstat),
      EXPORT("statvfs", js_statvfs),     EXPORT("fstatvfs", js_fstatvfs),
      EXPORT("opendir", js_opendir),     EXPORT("readdir", js_readdir),
      EXPORT("closedir", js_closedir),   EXPORT("copyRange", js_copy_range),
      EXPORT("sdNotify", js_sd_notify),
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
