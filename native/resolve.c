/*
 * resolve.c: the only ways a client's path becomes a descriptor. openat2 in the root for a whole
 * path; for a call on a name (mkdir, rename, ...), the parent resolved that way and the leaf kept
 * as one plain name for the *at() call, so the last component is never followed.
 */
#include "jail.h"

#include <linux/openat2.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define JAIL_RESOLVE (RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
/* openat2 answers EAGAIN when a concurrent rename could have let ".." escape: retry, bounded. */
#define EAGAIN_RETRIES 64

static int sys_openat2(int dirfd, const char *path, int flags, mode_t mode, uint64_t resolve) {
  struct open_how how;
  memset(&how, 0, sizeof how);
  how.flags = (uint64_t)(unsigned)flags;
  /* openat2 rejects a non-zero mode unless something may be created. */
  how.mode = (flags & O_CREAT) ? (uint64_t)mode : 0;
  how.resolve = resolve;
  return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

/* One bit per fd number: written on the main thread, read by pool threads. */
#define STRICT_FD_LIMIT 65536
static _Atomic unsigned char strict_fds[STRICT_FD_LIMIT / 8];

bool jail_mark_strict(int root_fd, bool strict) {
  if (root_fd < 0 || root_fd >= STRICT_FD_LIMIT) return !strict;
  unsigned char bit = (unsigned char)(1u << (root_fd % 8));
  if (strict) atomic_fetch_or(&strict_fds[root_fd / 8], bit);
  else atomic_fetch_and(&strict_fds[root_fd / 8], (unsigned char)~bit);
  return true;
}

static bool is_strict(int root_fd) {
  return root_fd >= 0 && root_fd < STRICT_FD_LIMIT && (atomic_load(&strict_fds[root_fd / 8]) & (1u << (root_fd % 8)));
}

int jail_open(int root_fd, const char *path, int flags, mode_t mode) {
  if (path[0] == '\0') path = "."; /* "" names the root, as "/" does */
  uint64_t resolve = JAIL_RESOLVE | (is_strict(root_fd) ? RESOLVE_NO_SYMLINKS : 0);
  for (int attempt = 0;; attempt++) {
    int fd = sys_openat2(root_fd, path, flags | O_CLOEXEC, mode, resolve);
    if (fd >= 0 || errno != EAGAIN || attempt >= EAGAIN_RETRIES) return fd;
  }
}

int jail_open_f(int root_fd, const char *path, int flags, mode_t mode, failure_t *f) {
  int fd = jail_open(root_fd, path, flags, mode);
  if (fd < 0) fail_errno(f, "openat2");
  return fd;
}

int fstat_any(int fd, struct stat *st) { return fstatat(fd, "", st, AT_EMPTY_PATH); }

void proc_fd_path(int fd, char buf[32]) { snprintf(buf, 32, "/proc/self/fd/%d", fd); }

/*
 * readlinkat(fd, "") on something that is not a symlink answers ENOENT (not EINVAL, as
 * readlink(2) on a path would), so look at the type to give the usual EINVAL.
 */
ssize_t read_link_fd(int fd, char out[PATH_MAX], failure_t *f) {
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

int fd_host_path(int fd, char out[PATH_MAX], failure_t *f) {
  char proc[32];
  proc_fd_path(fd, proc);
  ssize_t n = readlink(proc, out, PATH_MAX);
  if (n < 0) return fail_errno(f, "readlink");
  if (n >= PATH_MAX) return fail(f, ENAMETOOLONG, "readlink");
  out[n] = '\0';
  return 0;
}

/*
 * `path` names an entry that exists but does not resolve: a dangling symlink. Rewrite `path` into
 * the link's target the way the kernel would continue the walk: an absolute target restarts at
 * the root, a relative one continues in the link's directory. The next openat2 resolves the result
 * inside the root again, so nothing here needs to be trusted. We do the hop ourselves instead of
 * letting open(O_CREAT) follow it, because that open would also open a FIFO swapped in meanwhile.
 * If the entry is no longer a symlink (a concurrent change), leave `path` as is: the caller retries.
 */
int follow_dangling(int root_fd, char path[PATH_MAX], failure_t *f) {
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
int split_leaf(const char *path, split_t *s, leaf_rule_t rule, failure_t *f) {
  split_path(path, s);
  if (s->kind == TARGET_ROOT) return fail(f, rule.root, rule.syscall);
  if (s->kind == TARGET_DOT) return fail(f, rule.dot, rule.syscall);
  return 0;
}

int open_parent(int root_fd, const split_t *s, failure_t *f) {
  return jail_open_f(root_fd, s->parent, O_PATH | O_DIRECTORY, 0, f);
}

/*
 * The kernel enforces "x/" when it walks the string itself; we strip the slash before the *at()
 * call, so check the leaf. The check races with the call, but the race can only change which
 * error a client sees inside its own root, never where the call lands.
 */
int leaf_must_be_dir(int parent_fd, const char *leaf, const char *syscall, failure_t *f) {
  struct stat st;
  if (fstatat(parent_fd, leaf, &st, AT_SYMLINK_NOFOLLOW) < 0) return fail_errno(f, syscall);
  if (!S_ISDIR(st.st_mode)) return fail(f, ENOTDIR, syscall);
  return 0;
}

int refuse_new_name_with_slash(int parent_fd, const char *leaf, const char *syscall, failure_t *f) {
  struct stat st;
  if (fstatat(parent_fd, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0) return fail(f, EEXIST, syscall);
  return fail_errno(f, syscall);
}
