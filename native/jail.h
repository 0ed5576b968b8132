/*
 * jail.h: what the jail unit's files share. Race-free path resolution inside a per-user root.
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
 *   - A root opened strict (openRoot(path, true)) refuses symlinks in every walk: see jail_mark_strict.
 *
 * THREADING
 *   Everything but probe/openRoot/closeFd runs as napi_async_work on the libuv thread pool and
 *   returns a Promise. Worker code (the run_* functions) touches no napi_* API; results are turned
 *   into JS values in the completion callback, on the main thread.
 *
 * ERRORS
 *   Rejections are Errors with .code (errno name), .errno (positive number) and .syscall. Messages
 *   never contain a path: the caller may forward them, and a host path is an information leak.
 *
 * FILES, one capability each. Worker side (run_* on a pool thread, no napi_* calls):
 *   resolve.c     openat2 in the root; a name split into parent + leaf; dangling-link hops
 *   open.c        regular files: O_PATH, type check, reopen via /proc; create; small-file prefetch
 *   stat.c        stat/lstat, readlink, statvfs
 *   realpath.c    the virtual path of a name
 *   setstat.c     size, mode, times
 *   one-name.c    mkdir, rmdir, unlink, symlink: one helper, parent fd + leaf
 *   two-names.c   rename, renameCompat, link: both parents resolved, then the two leaves
 *   dir.c         opendir, batched readdir, closedir
 *   copy.c        copy_file_range, and pread/pwrite where it cannot
 * Main-thread side (N-API glue):
 *   names.c       a name's bytes as a JS string and back
 *   job.c         async work: queue, settle the promise, free
 *   results.c     job outputs as JS values
 *   jail.c        argument parsing and the exported functions
 * addon.h/addon.c (errors, argument helpers, module init) are shared with net.c and notify.c.
 */
#ifndef SFTP_CHROOT_JAIL_H
#define SFTP_CHROOT_JAIL_H

#include <node_api.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <uchar.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif

/* The kernel's own limit on symlinks followed in one lookup (MAXSYMLINKS). */
#define MAX_SYMLINK_HOPS 40
/* Pseudo errno for "open() refused a special file"; reported as code ENOTREG, errno EINVAL. */
#define JAIL_ENOTREG 100000
/* The only open(2) flags a client may ask for; everything else is ignored. */
#define OPEN_FLAGS_ALLOWED (O_ACCMODE | O_CREAT | O_EXCL | O_TRUNC | O_APPEND)
#define READDIR_MAX 4096

/* --- failures --------------------------------------------------------------------------------- */

typedef struct {
  int err;             /* 0, a positive errno, or JAIL_ENOTREG */
  const char *syscall; /* static string */
} failure_t;

static inline int fail(failure_t *f, int err, const char *syscall) {
  f->err = err;
  f->syscall = syscall;
  return -1;
}

static inline int fail_errno(failure_t *f, const char *syscall) { return fail(f, errno, syscall); }

/* --- resolve.c: the only ways a path becomes a descriptor ----------------------------------- */

/* Open `path` with the root fd as "/". Returns an fd, or -1 with errno set. */
int jail_open(int root_fd, const char *path, int flags, mode_t mode);
/*
 * A root fd marked strict also refuses every symlink on the way (RESOLVE_NO_SYMLINKS; a trailing
 * one is still opened as itself with O_PATH|O_NOFOLLOW): per-folder rules resolve a path first,
 * check it, then act on it strictly, so a symlink swapped in between fails instead of redirecting.
 * Marked and unmarked on the main thread while no job holds the fd. Returns false if fd is too big.
 */
bool jail_mark_strict(int root_fd, bool strict);
/* Same, recording the failure. */
int jail_open_f(int root_fd, const char *path, int flags, mode_t mode, failure_t *f);
/* fstat that also works on an O_PATH fd of a symlink (it reports the link itself). */
int fstat_any(int fd, struct stat *st);
void proc_fd_path(int fd, char buf[32]);
/* Target of the symlink an O_PATH|O_NOFOLLOW fd refers to, NUL-terminated; returns its length. */
ssize_t read_link_fd(int fd, char out[PATH_MAX], failure_t *f);
/* Host path of an fd, from its /proc/self/fd link. */
int fd_host_path(int fd, char out[PATH_MAX], failure_t *f);
/* Rewrites `path`, a dangling symlink, into its target as the kernel would continue the walk. */
int follow_dangling(int root_fd, char path[PATH_MAX], failure_t *f);

/*
 * A name split into parent directory + leaf. Trailing slashes are stripped first; the flag
 * remembers them because "x/" promises a directory.
 */
typedef enum { TARGET_NAME, TARGET_ROOT, TARGET_DOT } target_kind_t;

typedef struct {
  target_kind_t kind;
  bool trailing_slash;
  const char *parent; /* "." , "/" or a prefix inside buf */
  const char *leaf;   /* inside buf */
  char buf[PATH_MAX];
} split_t;

/* What a call answers when its name is the root itself or "."/"..", and under which syscall. */
typedef struct {
  int root, dot;
  const char *syscall;
} leaf_rule_t;

/* Split `path`; refuse (per `rule`) anything but a plain last name. 0, or -1 with `f` set. */
int split_leaf(const char *path, split_t *s, leaf_rule_t rule, failure_t *f);
/* The parent of a split name, resolved in the root: an O_PATH directory fd, or -1. */
int open_parent(int root_fd, const split_t *s, failure_t *f);
/* "x/" promises a directory: ENOTDIR (or the lookup's errno) unless the leaf is one. */
int leaf_must_be_dir(int parent_fd, const char *leaf, const char *syscall, failure_t *f);
/* A *new* name with a trailing slash cannot be created except by mkdir: EEXIST or ENOENT. */
int refuse_new_name_with_slash(int parent_fd, const char *leaf, const char *syscall, failure_t *f);

/* --- jobs: one call's inputs and outputs ------------------------------------------------------ */

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

/* --- worker side: one file per capability, each run_* on a thread-pool thread --------------- */

void run_open(job_t *j);
void run_stat(job_t *j);
void run_readlink(job_t *j);
void run_statvfs(job_t *j);
void run_fstatvfs(job_t *j);
void run_realpath(job_t *j);
void run_setstat(job_t *j);
void run_fsetstat(job_t *j);
void run_mkdir(job_t *j);
void run_rmdir(job_t *j);
void run_unlink(job_t *j);
void run_symlink(job_t *j);
void run_rename(job_t *j);
void run_rename_compat(job_t *j);
void run_link(job_t *j);
void run_opendir(job_t *j);
void run_readdir(job_t *j);
void run_closedir(job_t *j);
void run_copy(job_t *j);
/* Closes a directory stream and frees it: after the last job on it, or when it was never handed out. */
void free_dir(jail_dir_t *d);

/* --- main-thread side ------------------------------------------------------------------------- */

/* names.c: a name's bytes as a JS string and back; bytes that are not UTF-8 survive both ways. */
napi_status create_name(napi_env env, const char *s, size_t n, napi_value *out);
size_t encode_name(const char16_t *u, size_t n, char *out);

/* job.c */
job_t *new_job_or_throw(napi_env env, run_fn run, result_fn result);
napi_value job_queue(napi_env env, job_t *j, const char *name);
napi_value abandon(napi_env env, job_t *j);

/* results.c */
extern const napi_type_tag DIR_TAG;
napi_value result_open(napi_env env, job_t *j);
napi_value result_stat(napi_env env, job_t *j);
napi_value result_string(napi_env env, job_t *j);
napi_value result_statvfs(napi_env env, job_t *j);
napi_value result_entries(napi_env env, job_t *j);
napi_value result_copied(napi_env env, job_t *j);
napi_value result_dir(napi_env env, job_t *j);

#endif
