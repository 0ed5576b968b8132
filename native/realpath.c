/*
 * realpath.c: the canonical *virtual* path of a name: resolved in the root, read back from the
 * fd's /proc/self/fd link, and the host root stripped. Nothing outside the root is ever named:
 * a result that is not under the root (the root was moved on the host) is EXDEV, not a guess.
 */
#include "jail.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
 * `path` did not resolve (ENOENT). If its parent does and the leaf is missing, the answer is the
 * parent's path + leaf (1). If the leaf exists, it is a dangling symlink: `path` becomes its
 * target, to try again (0). -1: failed.
 */
static int missing_leaf(job_t *j, char path[PATH_MAX], char virt[PATH_MAX]) {
  split_t s;
  if (split_leaf(path, &s, (leaf_rule_t){ENOENT, ENOENT, "openat2"}, &j->f) < 0) return -1;
  int pfd = open_parent(j->root_fd, &s, &j->f);
  if (pfd < 0) return -1;
  struct stat st;
  if (fstatat(pfd, s.leaf, &st, AT_SYMLINK_NOFOLLOW) == 0) {
    /* Exists but did not resolve: a dangling symlink (or a concurrent create; just retry). */
    close(pfd);
    return follow_dangling(j->root_fd, path, &j->f);
  }
  int rc = virtual_path_of(pfd, j->root_fd, virt, &j->f);
  close(pfd);
  if (rc < 0 || append_leaf(virt, s.leaf, &j->f) < 0) return -1;
  return 1;
}

/*
 * Like OpenSSH, the last component may be missing. A dangling symlink as the last component is
 * followed the way open(O_CREAT) would, so the answer names the file a create would make.
 */
void run_realpath(job_t *j) {
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
    int rc = missing_leaf(j, path, virt);
    if (rc < 0) return;
    if (rc > 0) {
      j->out_str = strdup(virt);
      return;
    }
  }
  fail(&j->f, ELOOP, "openat2");
}
