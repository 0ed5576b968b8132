/*
 * addon.h: what every unit of the one .node file shares: errors as JS values, argument parsing,
 * and each unit's export function. The units: the jail (jail.h and its files), TCP options
 * (net.c) and sd_notify (notify.c). None of them includes another's header.
 */
#ifndef SFTP_CHROOT_ADDON_H
#define SFTP_CHROOT_ADDON_H

#include <node_api.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* --- errors (main thread only: strerror is not guaranteed thread-safe) ----------------------- */

/* errno -> "ENAME"; unknown numbers become "E<number>" in buf. */
const char *errno_name(int err, char *buf, size_t buflen);
/* An Error with .code, .errno and .syscall; the message is "CODE: text, syscall", never a path. */
napi_value coded_error(napi_env env, const char *code, int no, const char *text, const char *syscall);
/* The same for a real errno. */
napi_value errno_error(napi_env env, int err, const char *syscall);
/* Throws errno_error; returns NULL for the caller to return. */
napi_value throw_errno(napi_env env, int err, const char *syscall);

/* --- arguments: a wrong type throws a TypeError synchronously (a programming error) ----------- */

#define MAX_ARGS 6

typedef struct {
  napi_value argv[MAX_ARGS];
  size_t argc;
} args_t;

bool get_args(napi_env env, napi_callback_info info, args_t *a, size_t need);
bool type_error(napi_env env, const char *what);
bool is_type(napi_env env, napi_value v, napi_valuetype want);
bool get_int(napi_env env, napi_value v, int32_t *out, const char *what);
bool get_fd(napi_env env, napi_value v, int *out);
bool get_int64(napi_env env, napi_value v, int64_t *out, const char *what);
bool get_bool(napi_env env, napi_value v, bool *out, const char *what);

/* --- exports ---------------------------------------------------------------------------------- */

#define EXPORT(name, fn) {name, NULL, fn, NULL, NULL, NULL, napi_enumerable, NULL}

/* Each unit defines its functions on `exports` (addon.c calls them all). */
napi_status jail_define(napi_env env, napi_value exports);
napi_status net_define(napi_env env, napi_value exports);
napi_status notify_define(napi_env env, napi_value exports);

#endif
