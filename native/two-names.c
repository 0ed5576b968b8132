/*
 * two-names.c: calls on two names (rename, renameCompat, link). Both sides are confined the same
 * way as one-name calls: each parent resolved in the root, the *at() call on the two leaves.
 */
#include "jail.h"

#include <stdio.h> /* renameat */
#include <sys/syscall.h>
#include <unistd.h>

typedef void (*two_leaf_fn)(job_t *j, int ofd, const split_t *from, int nfd, const split_t *to);

/* Both names are checked before either parent is opened, so a bad name wins over a missing parent. */
static void run_two_leaves(job_t *j, const char *syscall, two_leaf_fn act) {
  split_t from, to;
  leaf_rule_t rule = {EBUSY, EINVAL, syscall};
  if (split_leaf(j->path, &from, rule, &j->f) < 0) return;
  if (split_leaf(j->path2, &to, rule, &j->f) < 0) return;
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

/* "x/" on either side of a rename promises that the source is a directory. */
static int slash_means_dir(job_t *j, int ofd, const split_t *from, const split_t *to, const char *syscall) {
  if (!from->trailing_slash && !to->trailing_slash) return 0;
  return leaf_must_be_dir(ofd, from->leaf, syscall, &j->f);
}

static void rename_leaves(job_t *j, int ofd, const split_t *from, int nfd, const split_t *to) {
  if (slash_means_dir(j, ofd, from, to, "renameat2") < 0) return;
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
  if (slash_means_dir(j, ofd, from, to, "renameat") < 0) return;
  rename_noreplace_compat(j, ofd, from->leaf, nfd, to->leaf);
}

static void link_leaves(job_t *j, int ofd, const split_t *from, int nfd, const split_t *to) {
  if (from->trailing_slash && leaf_must_be_dir(ofd, from->leaf, "linkat", &j->f) < 0) return;
  if (to->trailing_slash && refuse_new_name_with_slash(nfd, to->leaf, "linkat", &j->f) < 0) return;
  /* flags 0: never follow the source, so linking a symlink links the symlink itself. */
  if (linkat(ofd, from->leaf, nfd, to->leaf, 0) < 0) fail_errno(&j->f, "linkat");
}

void run_rename(job_t *j) { run_two_leaves(j, "renameat2", rename_leaves); }
void run_rename_compat(job_t *j) { run_two_leaves(j, "renameat", rename_compat_leaves); }
void run_link(job_t *j) { run_two_leaves(j, "linkat", link_leaves); }
