/*
 * one-name.c: calls that create or remove one name (mkdir, rmdir, unlink, symlink). All go through
 * run_one_leaf: the parent is resolved in the root, and the *at() call gets the parent fd and one
 * plain leaf name, so the last component is never followed, not even when it is a symlink.
 */
#include "jail.h"

#include <unistd.h>

typedef void (*leaf_fn)(job_t *j, int parent_fd, const split_t *s);

/* Removing or replacing "/", "." or "..": EBUSY for the root, EINVAL for the dots, as rmdir(2). */
#define REMOVE_RULE(syscall) ((leaf_rule_t){EBUSY, EINVAL, syscall})

static void run_one_leaf(job_t *j, const char *path, leaf_rule_t rule, leaf_fn act) {
  split_t s;
  if (split_leaf(path, &s, rule, &j->f) < 0) return;
  int pfd = open_parent(j->root_fd, &s, &j->f);
  if (pfd < 0) return;
  act(j, pfd, &s);
  close(pfd);
}

static void mkdir_leaf(job_t *j, int pfd, const split_t *s) {
  if (mkdirat(pfd, s->leaf, j->mode & 0777) < 0) fail_errno(&j->f, "mkdirat");
}

static void rmdir_leaf(job_t *j, int pfd, const split_t *s) {
  if (unlinkat(pfd, s->leaf, AT_REMOVEDIR) < 0) fail_errno(&j->f, "unlinkat");
}

static void unlink_leaf(job_t *j, int pfd, const split_t *s) {
  if (s->trailing_slash) {
    /* unlink("x/") never removes anything: EISDIR for a directory, ENOTDIR otherwise. */
    if (leaf_must_be_dir(pfd, s->leaf, "unlinkat", &j->f) == 0) fail(&j->f, EISDIR, "unlinkat");
  } else if (unlinkat(pfd, s->leaf, 0) < 0) {
    fail_errno(&j->f, "unlinkat");
  }
}

/* The target string is stored verbatim; it only ever gets interpreted by openat2 in the root. */
static void symlink_leaf(job_t *j, int pfd, const split_t *s) {
  if (s->trailing_slash)
    refuse_new_name_with_slash(pfd, s->leaf, "symlinkat", &j->f);
  else if (symlinkat(j->path, pfd, s->leaf) < 0)
    fail_errno(&j->f, "symlinkat");
}

/* mkdir of an existing "/", "." or "..": EEXIST, as mkdir(2). */
void run_mkdir(job_t *j) { run_one_leaf(j, j->path, (leaf_rule_t){EEXIST, EEXIST, "mkdirat"}, mkdir_leaf); }
void run_rmdir(job_t *j) { run_one_leaf(j, j->path, REMOVE_RULE("unlinkat"), rmdir_leaf); }
void run_unlink(job_t *j) { run_one_leaf(j, j->path, REMOVE_RULE("unlinkat"), unlink_leaf); }
/* symlink(target = path, link = path2) */
void run_symlink(job_t *j) { run_one_leaf(j, j->path2, REMOVE_RULE("symlinkat"), symlink_leaf); }
