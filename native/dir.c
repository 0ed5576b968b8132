/*
 * dir.c: directory streams. opendir resolves in the root; readdir returns up to `max` entries per
 * job, each with its lstat taken in the same job (one thread-pool round trip per batch, not per
 * name). The root's ".." is reported as the root itself: the host directory above is never read.
 */
#include "jail.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void run_opendir(job_t *j) {
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

/* Appends entries to j->entries until `max`, the end, or an error. Called with the lock held. */
static void read_entries(job_t *j, jail_dir_t *d) {
  int dfd = dirfd(d->dir);
  while (j->n_entries < j->max) {
    errno = 0;
    struct dirent *de = readdir(d->dir);
    if (de == NULL) {
      if (errno != 0) fail_errno(&j->f, "readdir");
      return;
    }
    dir_entry_t *e = &j->entries[j->n_entries];
    e->name = strdup(de->d_name);
    if (e->name == NULL) {
      fail(&j->f, ENOMEM, "readdir");
      return;
    }
    j->n_entries++;
    /* The root's ".." is the root: never stat the host directory above it. */
    if (d->is_root && strcmp(de->d_name, "..") == 0)
      e->has_stat = fstat(dfd, &e->st) == 0;
    else
      e->has_stat = fstatat(dfd, de->d_name, &e->st, AT_SYMLINK_NOFOLLOW) == 0;
  }
}

void run_readdir(job_t *j) {
  jail_dir_t *d = j->dir;
  pthread_mutex_lock(&d->lock);
  if (d->dir == NULL)
    fail(&j->f, EBADF, "readdir");
  else if ((j->entries = calloc(j->max, sizeof *j->entries)) == NULL)
    fail(&j->f, ENOMEM, "readdir");
  else
    read_entries(j, d);
  pthread_mutex_unlock(&d->lock);
}

static void close_dir(jail_dir_t *d) {
  pthread_mutex_lock(&d->lock);
  if (d->dir != NULL) closedir(d->dir);
  d->dir = NULL;
  pthread_mutex_unlock(&d->lock);
}

void run_closedir(job_t *j) { close_dir(j->dir); }

void free_dir(jail_dir_t *d) {
  close_dir(d);
  pthread_mutex_destroy(&d->lock);
  free(d);
}
