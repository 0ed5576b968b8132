/*
 * stat.c: questions about one inode that change nothing: stat/lstat, readlink, statvfs. Each opens
 * the name O_PATH in the root (O_NOFOLLOW on the last component where the call must not follow)
 * and asks the fd, so nothing re-walks the path.
 */
#include "jail.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void run_stat(job_t *j) {
  int fd = jail_open_f(j->root_fd, j->path, O_PATH | (j->flag ? 0 : O_NOFOLLOW), 0, &j->f);
  if (fd < 0) return;
  if (fstat_any(fd, &j->st) < 0) fail_errno(&j->f, "fstat");
  close(fd);
}

/* Non-links answer EINVAL, as readlink(2) does. */
void run_readlink(job_t *j) {
  int fd = jail_open_f(j->root_fd, j->path, O_PATH | O_NOFOLLOW, 0, &j->f);
  if (fd < 0) return;
  char target[PATH_MAX];
  if (read_link_fd(fd, target, &j->f) >= 0) j->out_str = strdup(target);
  close(fd);
}

void run_statvfs(job_t *j) {
  int fd = jail_open_f(j->root_fd, j->path, O_PATH, 0, &j->f);
  if (fd < 0) return;
  if (fstatvfs(fd, &j->vfs) < 0) fail_errno(&j->f, "fstatvfs");
  close(fd);
}

void run_fstatvfs(job_t *j) {
  if (fstatvfs(j->fd, &j->vfs) < 0) fail_errno(&j->f, "fstatvfs");
}
