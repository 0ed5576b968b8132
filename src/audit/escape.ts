/**
 * Escaping for text log lines: user-supplied strings (file names, user names) must never forge a
 * line or a field. Control characters, backslashes and non-printing code points become \xNN or
 * \u{…}; JSON sinks need none of this (JSON.stringify escapes on its own).
 */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\\\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff\ufffd]|[\ud800-\udfff]/gu;

export function escapeText(s: string, opts: { space?: string } = {}): string {
  let out = s.replace(UNSAFE, (c) => {
    const cp = c.codePointAt(0)!;
    return cp <= 0xff ? `\\x${cp.toString(16).padStart(2, '0')}` : `\\u{${cp.toString(16)}}`;
  });
  if (opts.space !== undefined) out = out.replace(/ /g, opts.space);
  return out || '""';
}

/** "1.2.3.4:5" or "[::1]:5" → ip and port. */
export function splitRemote(remote: string): { ip: string; port: string } {
  const m = /^\[?(.*?)\]?:(\d+)$/.exec(remote);
  return m ? { ip: m[1]!, port: m[2]! } : { ip: remote, port: '0' };
}
