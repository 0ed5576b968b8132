/*
 * notify.c: sd_notify(3) for sftp-chroot: one datagram to the service manager's socket
 * (src/net/native.ts). In the addon because Node cannot send unix datagrams.
 *
 * sdNotify(socketPath, message) sends `message` ("READY=1\nSTATUS=...") as one AF_UNIX SOCK_DGRAM
 * datagram to `socketPath`, the value of $NOTIFY_SOCKET: a filesystem path ("/run/systemd/notify"),
 * or an abstract socket when it starts with '@' (the '@' stands for the leading NUL byte).
 * Synchronous, as libsystemd's sd_notify: a datagram to a local socket does not wait on the network.
 * Throws an Error with .code, .errno and .syscall on failure (ENOENT: no such socket, ECONNREFUSED:
 * nobody bound it, EAFNOSUPPORT: an address form other than a path or '@name').
 */
#include "addon.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* A JS string as a malloc'd UTF-8 C string (*len without the NUL), or NULL with a TypeError thrown. */
static char *string_arg(napi_env env, napi_value v, size_t *len, const char *what) {
  if (napi_get_value_string_utf8(env, v, NULL, 0, len) != napi_ok) {
    napi_throw_type_error(env, NULL, what);
    return NULL;
  }
  char *s = malloc(*len + 1);
  if (s == NULL) {
    throw_errno(env, ENOMEM, "malloc");
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

static napi_value js_sd_notify(napi_env env, napi_callback_info info) {
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
  return err != 0 ? throw_errno(env, err, syscall) : NULL;
}

napi_status notify_define(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {EXPORT("sdNotify", js_sd_notify)};
  return napi_define_properties(env, exports, 1, props);
}
