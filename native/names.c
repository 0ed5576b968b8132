/*
 * names.c: names are bytes on the disk and strings in JS. A byte that does not start a well-formed
 * UTF-8 sequence travels as the lone code unit U+DC80-U+DCFF ("surrogate escape", as
 * src/sftp/names.ts and Python's PEP 383): a name that is not UTF-8 keeps its exact bytes both ways.
 */
#include "jail.h"

#include <stdlib.h>

/* Length of the well-formed UTF-8 sequence at b[i], or 0 if none starts there. */
static size_t utf8_seq_len(const unsigned char *b, size_t i, size_t n) {
  unsigned char b0 = b[i];
  if (b0 < 0x80) return 1;
#define CONT(k, lo, hi) (i + (k) < n && b[i + (k)] >= (lo) && b[i + (k)] <= (hi))
  if (b0 >= 0xc2 && b0 <= 0xdf) return CONT(1, 0x80, 0xbf) ? 2 : 0;
  if (b0 == 0xe0) return CONT(1, 0xa0, 0xbf) && CONT(2, 0x80, 0xbf) ? 3 : 0;
  if (b0 == 0xed) return CONT(1, 0x80, 0x9f) && CONT(2, 0x80, 0xbf) ? 3 : 0;
  if (b0 >= 0xe1 && b0 <= 0xef) return CONT(1, 0x80, 0xbf) && CONT(2, 0x80, 0xbf) ? 3 : 0;
  if (b0 == 0xf0) return CONT(1, 0x90, 0xbf) && CONT(2, 0x80, 0xbf) && CONT(3, 0x80, 0xbf) ? 4 : 0;
  if (b0 >= 0xf1 && b0 <= 0xf3) return CONT(1, 0x80, 0xbf) && CONT(2, 0x80, 0xbf) && CONT(3, 0x80, 0xbf) ? 4 : 0;
  if (b0 == 0xf4) return CONT(1, 0x80, 0x8f) && CONT(2, 0x80, 0xbf) && CONT(3, 0x80, 0xbf) ? 4 : 0;
#undef CONT
  return 0;
}

static bool is_utf8(const unsigned char *b, size_t from, size_t n) {
  for (size_t k = from; k < n;) {
    size_t len = utf8_seq_len(b, k, n);
    if (len == 0) return false;
    k += len;
  }
  return true;
}

/* The code point of the `len`-byte sequence at b (len from utf8_seq_len, 1 to 4). */
static uint32_t decode_utf8(const unsigned char *b, size_t len) {
  if (len == 1) return b[0];
  if (len == 2) return ((b[0] & 0x1fu) << 6) | (b[1] & 0x3fu);
  if (len == 3) return ((b[0] & 0x0fu) << 12) | ((b[1] & 0x3fu) << 6) | (b[2] & 0x3fu);
  return ((b[0] & 0x07u) << 18) | ((b[1] & 0x3fu) << 12) | ((b[2] & 0x3fu) << 6) | (b[3] & 0x3fu);
}

/* UTF-16 of bytes that are not all UTF-8: at most one unit per byte (a 4-byte sequence makes 2). */
static size_t to_utf16_escaped(const unsigned char *b, size_t n, char16_t *u) {
  size_t m = 0;
  for (size_t k = 0; k < n;) {
    size_t len = utf8_seq_len(b, k, n);
    if (len == 0) {
      u[m++] = (char16_t)(0xdc00 + b[k]);
      k++;
      continue;
    }
    uint32_t cp = decode_utf8(b + k, len);
    if (cp >= 0x10000) {
      cp -= 0x10000;
      u[m++] = (char16_t)(0xd800 + (cp >> 10));
      u[m++] = (char16_t)(0xdc00 + (cp & 0x3ffu));
    } else {
      u[m++] = (char16_t)cp;
    }
    k += len;
  }
  return m;
}

napi_status create_name(napi_env env, const char *s, size_t n, napi_value *out) {
  const unsigned char *b = (const unsigned char *)s;
  size_t i = 0;
  while (i < n && b[i] < 0x80) i++;
  if (i == n) return napi_create_string_latin1(env, s, n, out);
  if (is_utf8(b, i, n)) return napi_create_string_utf8(env, s, n, out);
  char16_t *u = malloc((n + 1) * sizeof(char16_t));
  if (u == NULL) return napi_generic_failure;
  napi_status st = napi_create_string_utf16(env, u, to_utf16_escaped(b, n, u), out);
  free(u);
  return st;
}

/* One code point as UTF-8 into out; returns the bytes written (1 to 4). */
static size_t put_utf8(uint32_t c, char *out) {
  if (c < 0x80) {
    out[0] = (char)c;
    return 1;
  }
  if (c < 0x800) {
    out[0] = (char)(0xc0 | (c >> 6));
    out[1] = (char)(0x80 | (c & 0x3f));
    return 2;
  }
  if (c < 0x10000) {
    out[0] = (char)(0xe0 | (c >> 12));
    out[1] = (char)(0x80 | ((c >> 6) & 0x3f));
    out[2] = (char)(0x80 | (c & 0x3f));
    return 3;
  }
  out[0] = (char)(0xf0 | (c >> 18));
  out[1] = (char)(0x80 | ((c >> 12) & 0x3f));
  out[2] = (char)(0x80 | ((c >> 6) & 0x3f));
  out[3] = (char)(0x80 | (c & 0x3f));
  return 4;
}

/* The inverse of create_name: UTF-16 to bytes, U+DC80-U+DCFF alone back to its byte. */
size_t encode_name(const char16_t *u, size_t n, char *out) {
  size_t m = 0;
  for (size_t i = 0; i < n; i++) {
    uint32_t c = u[i];
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < n && u[i + 1] >= 0xdc00 && u[i + 1] <= 0xdfff) {
      c = 0x10000 + ((c - 0xd800) << 10) + (u[i + 1] - 0xdc00u);
      i++;
    } else if (c >= 0xdc80 && c <= 0xdcff) {
      out[m++] = (char)(c - 0xdc00);
      continue;
    } else if (c >= 0xd800 && c <= 0xdfff) {
      c = 0xfffd; /* any other lone surrogate: as Buffer.from(s, 'utf8') does */
    }
    m += put_utf8(c, out + m);
  }
  return m;
}
