/*
 * setstat.c: size, mode and times. By name, everything acts on the one inode an O_PATH fd names
 * (nothing re-walks the path); by handle, on the open fd. Modes are masked to 0777: set-id and
 * sticky bits never reach the disk. Ownership is never changed.
 */
#include "jail.h"

#include <unistd.h>

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

/* Order as OpenSSH: size, then mode, then times (so the truncate does not overwrite the mtime). */
static void set_attrs_at(int fd, const attrs_t *a, failure_t *f) {
  char proc[32];
  proc_fd_path(fd, proc);
  struct timespec ts[2];
  if (a->has_size && truncate_path_fd(fd, a->size, f) < 0) return;
  /* On an O_PATH fd of a symlink this fails with EOPNOTSUPP: Linux has no symlink modes. */
  if (a->has_mode && chmod(proc, a->mode & 0777) < 0) {
    fail_errno(f, "chmod");
    return;
  }
  if (to_timespecs(a, ts) && utimensat(fd, "", ts, AT_EMPTY_PATH) < 0) fail_errno(f, "utimensat");
}

void run_setstat(job_t *j) {
  if (j->attrs.has_size && j->attrs.size < 0) {
    fail(&j->f, EINVAL, "truncate");
    return;
  }
  int fd = jail_open_f(j->root_fd, j->path, O_PATH | (j->flag ? 0 : O_NOFOLLOW), 0, &j->f);
  if (fd < 0) return;
  set_attrs_at(fd, &j->attrs, &j->f);
  close(fd);
}

void run_fsetstat(job_t *j) {
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
