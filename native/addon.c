/*
 * addon.c: the module's init, and the error and argument helpers every unit uses (addon.h).
 */
#include "addon.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const struct {
  int no;
  const char *name;
} ERRNO_NAMES[] = {
    {EPERM, "EPERM"},         {ENOENT, "ENOENT"},         {EINTR, "EINTR"},
    {EIO, "EIO"},             {ENXIO, "ENXIO"},           {EBADF, "EBADF"},
    {EAGAIN, "EAGAIN"},       {ENOMEM, "ENOMEM"},         {EACCES, "EACCES"},
    {EFAULT, "EFAULT"},       {EBUSY, "EBUSY"},           {EEXIST, "EEXIST"},
    {EXDEV, "EXDEV"},         {ENODEV, "ENODEV"},         {ENOTDIR, "ENOTDIR"},
    {EISDIR, "EISDIR"},       {EINVAL, "EINVAL"},         {ENFILE, "ENFILE"},
    {EMFILE, "EMFILE"},       {ETXTBSY, "ETXTBSY"},       {EFBIG, "EFBIG"},
    {ENOSPC, "ENOSPC"},       {ESPIPE, "ESPIPE"},         {EROFS, "EROFS"},
    {EMLINK, "EMLINK"},       {ERANGE, "ERANGE"},         {ENAMETOOLONG, "ENAMETOOLONG"},
    {ENOSYS, "ENOSYS"},       {ENOTEMPTY, "ENOTEMPTY"},   {ELOOP, "ELOOP"},
    {EOVERFLOW, "EOVERFLOW"}, {EOPNOTSUPP, "EOPNOTSUPP"}, {EDQUOT, "EDQUOT"},
    {ESTALE, "ESTALE"},       {ECANCELED, "ECANCELED"},   {ENODATA, "ENODATA"},
    /* what a notify socket adds */
    {ECONNREFUSED, "ECONNREFUSED"}, {EAFNOSUPPORT, "EAFNOSUPPORT"},
    {ENOBUFS, "ENOBUFS"},           {EMSGSIZE, "EMSGSIZE"},
};

/* By table: strerrorname_np needs glibc 2.32. */
const char *errno_name(int err, char *buf, size_t buflen) {
  for (size_t i = 0; i < sizeof ERRNO_NAMES / sizeof ERRNO_NAMES[0]; i++)
    if (ERRNO_NAMES[i].no == err) return ERRNO_NAMES[i].name;
  snprintf(buf, buflen, "E%d", err);
  return buf;
}

napi_value coded_error(napi_env env, const char *code, int no, const char *text, const char *syscall) {
  char msg[192];
  snprintf(msg, sizeof msg, "%s: %s, %s", code, text, syscall);
  napi_value jcode, jmsg, jno, jsys, e;
  napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &jcode);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &jmsg);
  napi_create_error(env, jcode, jmsg, &e);
  napi_create_int32(env, no, &jno);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &jsys);
  napi_set_named_property(env, e, "errno", jno);
  napi_set_named_property(env, e, "syscall", jsys);
  return e;
}

napi_value errno_error(napi_env env, int err, const char *syscall) {
  char codebuf[24];
  return coded_error(env, errno_name(err, codebuf, sizeof codebuf), err, strerror(err), syscall);
}

napi_value throw_errno(napi_env env, int err, const char *syscall) {
  napi_throw(env, errno_error(env, err, syscall));
  return NULL;
}

bool get_args(napi_env env, napi_callback_info info, args_t *a, size_t need) {
  a->argc = MAX_ARGS;
  if (napi_get_cb_info(env, info, &a->argc, a->argv, NULL, NULL) != napi_ok) return false;
  if (a->argc < need) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "missing arguments");
    return false;
  }
  return true;
}

bool type_error(napi_env env, const char *what) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", what);
  return false;
}

bool is_type(napi_env env, napi_value v, napi_valuetype want) {
  napi_valuetype t;
  return napi_typeof(env, v, &t) == napi_ok && t == want;
}

bool get_int(napi_env env, napi_value v, int32_t *out, const char *what) {
  if (!is_type(env, v, napi_number)) return type_error(env, what);
  napi_get_value_int32(env, v, out);
  return true;
}

bool get_fd(napi_env env, napi_value v, int *out) {
  if (!get_int(env, v, out, "fd must be a number")) return false;
  if (*out < 0) return type_error(env, "fd must be >= 0");
  return true;
}

bool get_int64(napi_env env, napi_value v, int64_t *out, const char *what) {
  if (!is_type(env, v, napi_number)) return type_error(env, what);
  napi_get_value_int64(env, v, out);
  return true;
}

bool get_bool(napi_env env, napi_value v, bool *out, const char *what) {
  if (!is_type(env, v, napi_boolean)) return type_error(env, what);
  napi_get_value_bool(env, v, out);
  return true;
}

/* One .node file for all units: one build, one prebuild per arch, one thing to load. */
NAPI_MODULE_INIT() {
  if (jail_define(env, exports) != napi_ok || net_define(env, exports) != napi_ok ||
      notify_define(env, exports) != napi_ok)
    return NULL;
  return exports;
}
