/*
 * copy.c: copy-data between two open files, with copy_file_range (in the kernel, no bytes through
 * user space) where the files allow it, by pread/pwrite where they do not.
 */
#include "jail.h"

#include <stdlib.h>
#include <unistd.h>

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

void run_copy(job_t *j) {
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
