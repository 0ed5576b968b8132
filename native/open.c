/*
 * open.c: regular files only. The path is resolved with O_PATH (opens nothing, so a FIFO swapped
 * in cannot block a pool thread), its type is checked on that fd, and the same inode is reopened
 * through /proc/self/fd: no second walk of the path, so no race between the check and the open.
 */
#include "jail.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Refuse anything but a regular file, then reopen `path_fd`'s inode with the requested access. */
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

/*
 * O_CREAT|O_EXCL never opens an existing name (not even a symlink), so it can't hit a FIFO.
 * Returns the new fd; -1 with errno kept (the caller decides whether EEXIST is an error).
 */
static int create_new(int root_fd, const char *path, int flags, mode_t mode, struct stat *st, failure_t *f) {
  int fd = jail_open(root_fd, path, flags | O_CREAT | O_EXCL | O_NONBLOCK | O_NOCTTY, mode & 0777);
  if (fd < 0) return -1;
  if (fstat(fd, st) < 0) {
    fail_errno(f, "fstat");
    close(fd);
    return -1;
  }
  return fd;
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

/*
 * Without O_EXCL, an existing name is opened; a missing one is created exclusively; a name that
 * exists yet does not resolve (a dangling symlink) is followed by hand, hop by hop, in the root.
 */
static void open_file(job_t *j) {
  int flags = j->flags & OPEN_FLAGS_ALLOWED;
  char path[PATH_MAX];
  strcpy(path, j->path);

  if ((flags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL)) {
    j->out_fd = create_new(j->root_fd, path, flags, j->mode, &j->st, &j->f);
    if (j->out_fd < 0 && j->f.err == 0) fail_errno(&j->f, "openat2");
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
    j->out_fd = create_new(j->root_fd, path, flags, j->mode, &j->st, &j->f);
    if (j->out_fd >= 0 || j->f.err != 0) return;
    if (errno != EEXIST) {
      fail_errno(&j->f, "openat2");
      return;
    }
    /* Did not resolve, yet exists: a dangling symlink, or a concurrent create. */
    if (follow_dangling(j->root_fd, path, &j->f) < 0) return;
  }
  fail(&j->f, ELOOP, "openat2");
}

void run_open(job_t *j) {
  open_file(j);
  if (j->f.err == 0) prefetch_head(j);
}
