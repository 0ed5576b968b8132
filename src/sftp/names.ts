/**
 * File names are bytes on the wire and on the disk; inside the server they are strings. A name that
 * is not valid UTF-8 keeps its bytes through the "surrogate escape" Python uses for the same job
 * (PEP 383): each byte that does not start a valid UTF-8 sequence becomes the lone code unit
 * U+DC80–U+DCFF, which valid UTF-8 can never produce, so decode and encode are exact inverses.
 * The jail addon (native/jail.c) applies the same mapping at the kernel boundary, and the audit
 * log shows such a unit as `\xNN` (src/audit/escape.ts).
 */

/** A lone low surrogate U+DC80–U+DCFF (one escaped byte), not the second half of a pair. */
const ESCAPED_BYTE = /(?<![\uD800-\uDBFF])[\uDC80-\uDCFF]/;

/** Bytes from the client (or the disk) to the server's string. */
export function decodeName(bytes: Buffer): string {
  const s = bytes.toString('utf8');
  // Node replaces every invalid sequence with U+FFFD: without one, the bytes were valid UTF-8.
  if (!s.includes('\uFFFD')) return s;
  return decodeEscaping(bytes);
}

/** The server's string back to the exact bytes it came from. */
export function encodeName(name: string): Buffer {
  if (!ESCAPED_BYTE.test(name)) return Buffer.from(name, 'utf8');
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    const escaped = c >= 0xdc80 && c <= 0xdcff && !(i > 0 && isHigh(name.charCodeAt(i - 1)));
    if (!escaped) continue;
    if (i > start) parts.push(Buffer.from(name.slice(start, i), 'utf8'));
    parts.push(Buffer.of(c - 0xdc00));
    start = i + 1;
  }
  if (start < name.length) parts.push(Buffer.from(name.slice(start), 'utf8'));
  return Buffer.concat(parts);
}

/** For ssh2's NAME replies: the string itself when it is plain UTF-8 (the common case), else its bytes. */
export function wireName(name: string): string | Buffer {
  return ESCAPED_BYTE.test(name) ? encodeName(name) : name;
}

function isHigh(c: number): boolean {
  return c >= 0xd800 && c <= 0xdbff;
}

function decodeEscaping(b: Buffer): string {
  let out = '';
  let i = 0;
  while (i < b.length) {
    const n = validSequence(b, i);
    if (n === 0) {
      out += String.fromCharCode(0xdc00 + b[i]!);
      i++;
    } else {
      out += b.toString('utf8', i, i + n);
      i += n;
    }
  }
  return out;
}

/** Length of the well-formed UTF-8 sequence at `i` (RFC 3629 table), or 0 if there is none. */
function validSequence(b: Buffer, i: number): number {
  const b0 = b[i]!;
  if (b0 < 0x80) return 1;
  const cont = (k: number, lo = 0x80, hi = 0xbf) => i + k < b.length && b[i + k]! >= lo && b[i + k]! <= hi;
  if (b0 >= 0xc2 && b0 <= 0xdf) return cont(1) ? 2 : 0;
  if (b0 === 0xe0) return cont(1, 0xa0) && cont(2) ? 3 : 0;
  // 0xED 0xA0–0xBF would encode a surrogate: invalid, so escaped bytes can never be forged.
  if (b0 === 0xed) return cont(1, 0x80, 0x9f) && cont(2) ? 3 : 0;
  if (b0 >= 0xe1 && b0 <= 0xef) return cont(1) && cont(2) ? 3 : 0;
  if (b0 === 0xf0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (b0 >= 0xf1 && b0 <= 0xf3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (b0 === 0xf4) return cont(1, 0x80, 0x8f) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}
