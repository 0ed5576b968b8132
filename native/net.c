/*
 * net.c: TCP socket options Node does not offer, for per-connection tuning (src/net/native.ts).
 * Synchronous: a getsockopt/setsockopt on a local socket does not wait on anything. Neither
 * function throws for a descriptor that is not a TCP socket: tuning is best-effort.
 */
#include "addon.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>

/* setQuickAck(fd): setsockopt(TCP_QUICKACK, 1); false on failure. */
static napi_value js_set_quick_ack(napi_env env, napi_callback_info info) {
  args_t a;
  int fd;
  if (!get_args(env, info, &a, 1) || !get_fd(env, a.argv[0], &fd)) return NULL;
  int one = 1;
  bool ok = setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one) == 0;
  napi_value r;
  napi_get_boolean(env, ok, &r);
  return r;
}

/* The lowest round-trip time the kernel has seen on a TCP socket, in microseconds (TCP_INFO
 * tcpi_min_rtt), or -1. The minimum, not the smoothed RTT: on a busy machine the smoothed one
 * includes scheduling and delayed-ACK waits (1-7 ms on loopback with 20 clients on 2 vCPUs).
 * glibc's struct tcp_info stops before tcpi_min_rtt (Linux 4.6; this addon needs 5.8); the kernel
 * only appends fields, so its offset in <linux/tcp.h>, 148, is stable. */
#define TCPI_MIN_RTT_OFFSET 148
static napi_value js_tcp_min_rtt(napi_env env, napi_callback_info info) {
  args_t a;
  int fd;
  if (!get_args(env, info, &a, 1) || !get_fd(env, a.argv[0], &fd)) return NULL;
  uint8_t ti[256];
  socklen_t len = sizeof ti;
  uint32_t v;
  int64_t rtt = -1;
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, ti, &len) == 0 && len >= TCPI_MIN_RTT_OFFSET + sizeof v) {
    memcpy(&v, ti + TCPI_MIN_RTT_OFFSET, sizeof v);
    rtt = v;
  }
  napi_value r;
  napi_create_int64(env, rtt, &r);
  return r;
}

napi_status net_define(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      EXPORT("setQuickAck", js_set_quick_ack),
      EXPORT("tcpMinRtt", js_tcp_min_rtt),
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
