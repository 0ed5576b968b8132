/*
 * notify.c: sd_notify(3) for sftp-chroot: one datagram to the service manager's socket.
 *
 * Registered in jail.c's init as "sdNotify".
 *
 * sdNotify(socketPath, message) sends `message` ("READY=1\nSTATUS=...") as one AF_UNIX SOCK_DGRAM
 * datagram to `socketPath`, the value of $NOTIFY_SOCKET: a filesystem path ("/run/systemd/notify"),
 * or an abstract socket when it starts with '@' (the '@' stands for the leading NUL byte).
 * Synchronous, as libsystemd's sd_notify: a datagram to a local socket does not wait on the network.
 * Throws an Error with .code, .errno and .syscall on failure (ENOENT: no such socket, ECONNREFUSED:
 * nobody bound it, EAFNOSUPPORT: an address form other than a path or '@name').
 */
#define _GNU_SOURCE
#include <node_api.h>

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* The errors a notify socket gives, by name (strerrorname_np needs glibc 2.32). */
static const char *notify_errno_name(int err, char *buf, size_t len) {
  static const struct { int no; const char *name; } names[] = {
      {ENOENT, "ENOENT"},   {ECONNREFUSED, "ECONNREFUSED"}, {EAFNOSUPPORT, "EAFNOSUPPORT"},
      {EACCES, "EACCES"},   {EPERM, "EPERM"},               {ENAMETOOLONG, "ENAMETOOLONG"},
      {EAGAIN, "EAGAIN"},   {ENOBUFS, "ENOBUFS"},           {EMSGSIZE, "EMSGSIZE"},
      {ENOMEM, "ENOMEM"},   {ENOTDIR, "ENOTDIR"},           {EMFILE, "EMFILE"},
  };
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (names[i].no == err) return names[i].name;
  snprintf(buf, len, "E%d", err);
  return buf;
}

static napi_value notify_throw(napi_env env, int err, const char *syscall) {
  char namebuf[24], msg[160];
  const char *name = notify_errno_name(err, namebuf, sizeof namebuf);
  snprintf(msg, sizeof msg, "%s: %s, %s", name, strerror(err), syscall);
  napi_value code, text, no, sys, e;
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text);
  napi_create_error(env, code, text, &e);
  napi_create_int32(env, err, &no);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &sys);
  napi_set_named_property(env, e, "errno", no);
  napi_set_named_property(env, e, "syscall", sys);
  napi_throw(env, e);
  return NULL;
}

/* A JS string as a malloc'd UTF-8 C string (*len without the NUL), or NULL with a TypeError thrown. */
static char *string_arg(napi_env env, napi_value v, size_t *len, const char *what) {
  if (napi_get_value_string_utf8(env, v, NULL, 0, len) != napi_ok) {
    napi_throw_type_error(env, NULL, what);
    return NULL;
  }
  char *s = malloc(*len + 1);
  if (s == NULL) {
    notify_throw(env, ENOMEM, "malloc");
    return NULL;
  }
  napi_get_value_string_utf8(env, v, s, *len + 1, len);
  return s;
}

/* Fills `sa` for a NOTIFY_SOCKET value; returns the address length, or -1 with errno set. */
static int notify_address(const char *path, size_t len, struct sockaddr_un *sa) {
  memset(sa, 0, sizeof *sa);
  sa->sun_family = AF_UNIX;
  if (len < 2 || (path[0] != '/' && path[0] != '@')) return errno = EAFNOSUPPORT, -1;
  if (len >= sizeof sa->sun_path) return errno = ENAMETOOLONG, -1;
  memcpy(sa->sun_path, path, len);
  if (path[0] == '@') sa->sun_path[0] = '\0'; /* abstract: the name is exactly `len` bytes */
  return (int)(offsetof(struct sockaddr_un, sun_path) + len + (path[0] == '/' ? 1 : 0));
}

napi_value js_sd_notify(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2) {
    napi_throw_type_error(env, NULL, "sdNotify(socketPath, message)");
    return NULL;
  }
  size_t plen, mlen;
  char *path = string_arg(env, argv[0], &plen, "socketPath must be a string");
  if (path == NULL) return NULL;
  char *msg = string_arg(env, argv[1], &mlen, "message must be a string");
  if (msg == NULL) {
    free(path);
    return NULL;
  }

  struct sockaddr_un sa;
  int salen = notify_address(path, plen, &sa);
  int err = 0;
  const char *syscall = "sendto";
  if (salen < 0) {
    err = errno;
  } else {
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      err = errno, syscall = "socket";
    } else {
      ssize_t n = sendto(fd, msg, mlen, MSG_NOSIGNAL, (struct sockaddr *)&sa, (socklen_t)salen);
      if (n < 0) err = errno, syscall = "sendto";
      else if ((size_t)n != mlen) err = EMSGSIZE, syscall = "sendto";
      close(fd);
    }
  }
  free(path);
  free(msg);
  return err != 0 ? notify_throw(env, err, syscall) : NULL;
}
