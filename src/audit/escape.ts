/**
 * Escaping for text log lines: user-supplied strings (file names, user names) must never forge a
 * line or a field. ASCII control characters and backslashes become \xNN, a name byte that is not
 * UTF-8 becomes \xNN of that byte (80–ff), other non-printing code points \u{…}; JSON sinks need
 * none of this (JSON.stringify escapes on its own).
 */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\\\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff\ufffd]|[\ud800-\udfff]/gu;

export function escapeText(s: string, opts: { space?: string } = {}): string {
  let out = s.replace(UNSAFE, (c) => {
    const cp = c.codePointAt(0)!;
    // A name byte that is not UTF-8 (U+DC80–U+DCFF, src/sftp/names.ts) shows as that byte.
    if (cp >= 0xdc80 && cp <= 0xdcff) return `\\x${(cp - 0xdc00).toString(16)}`;
    return cp < 0x80 ? `\\x${cp.toString(16).padStart(2, '0')}` : `\\u{${cp.toString(16)}}`;
  });
  if (opts.space !== undefined) out = out.replace(/ /g, opts.space);
  return out || '""';
}

/** "1.2.3.4:5" or "[::1]:5" → ip and port. */
export function splitRemote(remote: string): { ip: string; port: string } {
  const m = /^\[?(.*?)\]?:(\d+)$/.exec(remote);
  return m ? { ip: m[1]!, port: m[2]! } : { ip: remote, port: '0' };
}

/** The `remote` core field: "1.2.3.4:5", or "[::1]:5" for IPv6 (splitRemote reads it back). */
export function formatRemote(ip: string | undefined, port: number | undefined): string {
  const host = ip ?? 'unknown';
  return host.includes(':') ? `[${host}]:${port ?? 0}` : `${host}:${port ?? 0}`;
}
