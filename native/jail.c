/*
 * jail.c: the jail unit's exported functions. Each parses its arguments into a job (main thread;
 * type errors throw, a path the kernel could not receive intact rejects) and queues it; see jail.h
 * for what is confined and how.
 */
#include "jail.h"
#include "addon.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * Copy a path argument ("" is kept: it names the root). A path the kernel could not receive intact
 * (embedded NUL, too long) is not a type error: it is recorded in `f` and the promise rejects,
 * like any other bad path from a client.
 */
static bool get_path(napi_env env, napi_value v, char **out, failure_t *f) {
  if (!is_type(env, v, napi_string)) return type_error(env, "path must be a string");
  size_t n16;
  napi_get_value_string_utf16(env, v, NULL, 0, &n16);
  if (n16 >= PATH_MAX) {
    fail(f, ENAMETOOLONG, "path");
    n16 = 0;
  }
  /* At most 3 bytes per UTF-16 unit (a surrogate pair: 4 bytes for 2 units). */
  char16_t *u = malloc((n16 + 1) * sizeof(char16_t));
  char *buf = malloc(3 * n16 + 1);
  if (u == NULL || buf == NULL) {
    free(u);
    free(buf);
    napi_throw_error(env, "ERR_JAIL_NOMEM", "out of memory");
    return false;
  }
  size_t len = 0;
  if (n16 > 0) {
    napi_get_value_string_utf16(env, v, u, n16 + 1, &n16);
    len = encode_name(u, n16, buf);
    if (len >= PATH_MAX) {
      fail(f, ENAMETOOLONG, "path");
      len = 0;
    }
  }
  free(u);
  buf[len] = '\0';
  if (strlen(buf) != len) fail(f, EINVAL, "path"); /* embedded NUL would truncate the path */
  *out = buf;
  return true;
}

static bool get_attrs(napi_env env, napi_value v, attrs_t *a) {
  if (!is_type(env, v, napi_object)) return type_error(env, "attrs must be an object");
  static const char *const keys[] = {"mode", "size", "atime", "mtime"};
  for (int i = 0; i < 4; i++) {
    napi_value x;
    if (napi_get_named_property(env, v, keys[i], &x) != napi_ok) return false;
    if (is_type(env, x, napi_undefined)) continue;
    int64_t n;
    if (!get_int64(env, x, &n, "attrs fields must be numbers")) return false;
    switch (i) {
      case 0: a->has_mode = true; a->mode = (mode_t)n; break;
      case 1: a->has_size = true; a->size = n; break;
      case 2: a->has_atime = true; a->atime = n; break;
      default: a->has_mtime = true; a->mtime = n; break;
    }
  }
  return true;
}

static bool get_dir(napi_env env, napi_value v, job_t *j) {
  bool tagged = false;
  if (!is_type(env, v, napi_external) || napi_check_object_type_tag(env, v, &DIR_TAG, &tagged) != napi_ok ||
      !tagged)
    return type_error(env, "not a Dir");
  void *data;
  napi_get_value_external(env, v, &data);
  j->dir = data;
  return napi_create_reference(env, v, 1, &j->dir_ref) == napi_ok;
}

/*
 * probe(): openat2 with RESOLVE_IN_ROOT works here (not too old a kernel, not blocked by seccomp),
 * ".." at the root stays there, and /proc/self/fd links read back as paths (open and realpath
 * depend on them). Callers fail closed on false.
 */
static napi_value js_probe(napi_env env, napi_callback_info info) {
  bool ok = false;
  int rfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rfd >= 0) {
    int fd = jail_open(rfd, "/..", O_PATH | O_DIRECTORY, 0);
    if (fd >= 0) {
      struct stat a, b;
      ok = fstat(rfd, &a) == 0 && fstat(fd, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
      char host[PATH_MAX];
      failure_t f = {0, NULL};
      ok = ok && fd_host_path(fd, host, &f) == 0 && strcmp(host, "/") == 0;
      close(fd);
    }
    close(rfd);
  }
  napi_value r;
  napi_get_boolean(env, ok, &r);
  return r;
}

static napi_value js_open_root(napi_env env, napi_callback_info info) {
  args_t a;
  if (!get_args(env, info, &a, 1)) return NULL;
  failure_t f = {0, NULL};
  char *path;
  if (!get_path(env, a.argv[0], &path, &f)) return NULL;
  if (f.err != 0) {
    free(path);
    return throw_errno(env, f.err, f.syscall);
  }
  int fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
  int err = errno;
  free(path);
  if (fd < 0) return throw_errno(env, err, "open");
  bool strict = false;
  if (a.argc > 1) napi_get_value_bool(env, a.argv[1], &strict);
  /* A leftover mark from an fd number closed elsewhere must not make a plain root strict. */
  if (!jail_mark_strict(fd, strict)) {
    close(fd);
    return throw_errno(env, EMFILE, "open");
  }
  napi_value r;
  napi_create_int32(env, fd, &r);
  return r;
}

static napi_value js_close_fd(napi_env env, napi_callback_info info) {
  args_t a;
  int fd;
  if (!get_args(env, info, &a, 1) || !get_fd(env, a.argv[0], &fd)) return NULL;
  jail_mark_strict(fd, false);
  /* On Linux the fd is released even when close() reports EINTR; never retry. */
  if (close(fd) < 0 && errno != EINTR) return throw_errno(env, errno, "close");
  return NULL;
}

/* Shared front half of the (rootFd, path, ...) functions. */
static job_t *rooted_job(napi_env env, args_t *a, size_t need, napi_callback_info info, run_fn run,
                         result_fn result) {
  if (!get_args(env, info, a, need)) return NULL;
  job_t *j = new_job_or_throw(env, run, result);
  if (j == NULL) return NULL;
  if (!get_fd(env, a->argv[0], &j->root_fd) || !get_path(env, a->argv[1], &j->path, &j->f)) {
    abandon(env, j);
    return NULL;
  }
  return j;
}

static napi_value js_open(napi_env env, napi_callback_info info) {
  args_t a;
  job_t *j = rooted_job(env, &a, 4, info, run_open, result_open);
  if (j == NULL) return NULL;
  int32_t mode;
  if (!get_int(env, a.argv[2], &j->flags, "flags must be a number") ||
      !get_int(env, a.argv[3], &mode, "mode must be a number"))
    return abandon(env, j);
  j->mode = (mode_t)mode;
  /* Optional 5th argument: prefetch size, at most 1 MiB. */
  napi_valuetype t = napi_undefined;
  if (a.argc > 4) napi_typeof(env, a.argv[4], &t);
  if (t != napi_undefined) {
    int32_t prefetch;
    if (!get_int(env, a.argv[4], &prefetch, "prefetch must be a number")) return abandon(env, j);
    j->prefetch = prefetch > 0 ? (uint32_t)(prefetch < (1 << 20) ? prefetch : (1 << 20)) : 0;
  }
  return job_queue(env, j, "jail.open");
}

static napi_value js_stat(napi_env env, napi_callback_info info) {
  args_t a;
  job_t *j = rooted_job(env, &a, 3, info, run_stat, result_stat);
  if (j == NULL) return NULL;
  if (!get_bool(env, a.argv[2], &j->flag, "follow must be a boolean")) return abandon(env, j);
  return job_queue(env, j, "jail.stat");
}

static napi_value js_mkdir(napi_env env, napi_callback_info info) {
  args_t a;
  job_t *j = rooted_job(env, &a, 3, info, run_mkdir, NULL);
  if (j == NULL) return NULL;
  int32_t mode;
  if (!get_int(env, a.argv[2], &mode, "mode must be a number")) return abandon(env, j);
  j->mode = (mode_t)mode;
  return job_queue(env, j, "jail.mkdir");
}

#define SIMPLE_ROOTED(fn, runner, result, name)                      \
  static napi_value fn(napi_env env, napi_callback_info info) {      \
    args_t a;                                                        \
    job_t *j = rooted_job(env, &a, 2, info, runner, result);         \
    return j == NULL ? NULL : job_queue(env, j, name);               \
  }

SIMPLE_ROOTED(js_rmdir, run_rmdir, NULL, "jail.rmdir")
SIMPLE_ROOTED(js_unlink, run_unlink, NULL, "jail.unlink")
SIMPLE_ROOTED(js_readlink, run_readlink, result_string, "jail.readlink")
SIMPLE_ROOTED(js_realpath, run_realpath, result_string, "jail.realpath")
SIMPLE_ROOTED(js_statvfs, run_statvfs, result_statvfs, "jail.statvfs")
SIMPLE_ROOTED(js_opendir, run_opendir, result_dir, "jail.opendir")

/* (rootFd, path, path2): rename and link. */
static job_t *two_path_job(napi_env env, args_t *a, size_t need, napi_callback_info info, run_fn run) {
  job_t *j = rooted_job(env, a, need, info, run, NULL);
  if (j == NULL) return NULL;
  if (!get_path(env, a->argv[2], &j->path2, &j->f)) {
    abandon(env, j);
    return NULL;
  }
  return j;
}

static napi_value js_rename(napi_env env, napi_callback_info info) {
  args_t a;
  job_t *j = two_path_job(env, &a, 4, info, run_rename);
  if (j == NULL) return NULL;
  if (!get_bool(env, a.argv[3], &j->flag, "noReplace must be a boolean")) return abandon(env, j);
  return job_queue(env, j, "jail.rename");
}

static napi_value js_rename_compat(napi_env env, napi_callback_info info) {
  args_t a;
  job_t *j = two_path_job(env, &a, 3, info, run_rename_compat);
  return j == NULL ? NULL : job_queue(env, j, "jail.renameCompat");
}

static napi_value js_link(napi_env env, napi_callback_info info) {
  args_t a;
  job_t *j = two_path_job(env, &a, 3, info, run_link);
  return j == NULL ? NULL : job_queue(env, j, "jail.link");
}

/* symlink(rootFd, target, linkPath): the target is not resolved, but it must reach the kernel intact. */
static napi_value js_symlink(napi_env env, napi_callback_info info) {
  args_t a;
  job_t *j = two_path_job(env, &a, 3, info, run_symlink);
  if (j == NULL) return NULL;
  if (j->path[0] == '\0' && j->f.err == 0) fail(&j->f, ENOENT, "symlinkat"); /* as symlink(2) */
  return job_queue(env, j, "jail.symlink");
}

static napi_value js_setstat(napi_env env, napi_callback_info info) {
  args_t a;
  job_t *j = rooted_job(env, &a, 4, info, run_setstat, NULL);
  if (j == NULL) return NULL;
  if (!get_bool(env, a.argv[2], &j->flag, "follow must be a boolean") || !get_attrs(env, a.argv[3], &j->attrs))
    return abandon(env, j);
  return job_queue(env, j, "jail.setstat");
}

static napi_value js_fsetstat(napi_env env, napi_callback_info info) {
  args_t a;
  if (!get_args(env, info, &a, 2)) return NULL;
  job_t *j = new_job_or_throw(env, run_fsetstat, NULL);
  if (j == NULL) return NULL;
  if (!get_fd(env, a.argv[0], &j->fd) || !get_attrs(env, a.argv[1], &j->attrs)) return abandon(env, j);
  return job_queue(env, j, "jail.fsetstat");
}

static napi_value js_fstatvfs(napi_env env, napi_callback_info info) {
  args_t a;
  if (!get_args(env, info, &a, 1)) return NULL;
  job_t *j = new_job_or_throw(env, run_fstatvfs, result_statvfs);
  if (j == NULL) return NULL;
  if (!get_fd(env, a.argv[0], &j->fd)) return abandon(env, j);
  return job_queue(env, j, "jail.fstatvfs");
}

static napi_value js_readdir(napi_env env, napi_callback_info info) {
  args_t a;
  if (!get_args(env, info, &a, 2)) return NULL;
  job_t *j = new_job_or_throw(env, run_readdir, result_entries);
  if (j == NULL) return NULL;
  int32_t max;
  if (!get_dir(env, a.argv[0], j) || !get_int(env, a.argv[1], &max, "max must be a number"))
    return abandon(env, j);
  j->max = max < 1 ? 1 : max > READDIR_MAX ? READDIR_MAX : (uint32_t)max;
  return job_queue(env, j, "jail.readdir");
}

static napi_value js_closedir(napi_env env, napi_callback_info info) {
  args_t a;
  if (!get_args(env, info, &a, 1)) return NULL;
  job_t *j = new_job_or_throw(env, run_closedir, NULL);
  if (j == NULL) return NULL;
  if (!get_dir(env, a.argv[0], j)) return abandon(env, j);
  return job_queue(env, j, "jail.closedir");
}

static napi_value js_copy_range(napi_env env, napi_callback_info info) {
  args_t a;
  if (!get_args(env, info, &a, 5)) return NULL;
  job_t *j = new_job_or_throw(env, run_copy, result_copied);
  if (j == NULL) return NULL;
  if (!get_fd(env, a.argv[0], &j->fd) || !get_int64(env, a.argv[1], &j->off_in, "offIn must be a number") ||
      !get_int64(env, a.argv[2], &j->len, "len must be a number") || !get_fd(env, a.argv[3], &j->fd2) ||
      !get_int64(env, a.argv[4], &j->off_out, "offOut must be a number"))
    return abandon(env, j);
  return job_queue(env, j, "jail.copyRange");
}

napi_status jail_define(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      EXPORT("probe", js_probe),         EXPORT("openRoot", js_open_root),
      EXPORT("closeFd", js_close_fd),    EXPORT("open", js_open),
      EXPORT("stat", js_stat),           EXPORT("mkdir", js_mkdir),
      EXPORT("rmdir", js_rmdir),         EXPORT("unlink", js_unlink),
      EXPORT("rename", js_rename),       EXPORT("renameCompat", js_rename_compat),
      EXPORT("link", js_link),           EXPORT("symlink", js_symlink),
      EXPORT("readlink", js_readlink),   EXPORT("realpath", js_realpath),
      EXPORT("setstat", js_setstat),     EXPORT("fsetstat", js_fsetstat),
      EXPORT("statvfs", js_statvfs),     EXPORT("fstatvfs", js_fstatvfs),
      EXPORT("opendir", js_opendir),     EXPORT("readdir", js_readdir),
      EXPORT("closedir", js_closedir),   EXPORT("copyRange", js_copy_range),
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
