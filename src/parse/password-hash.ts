/** The passwordHash format: `$scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt b64>$<hash b64>` (written by hash-password). */

export interface PasswordHash {
  readonly ln: number;
  readonly r: number;
  readonly p: number;
  readonly salt: Buffer;
  readonly hash: Buffer;
}

/** The format's shape, also the config schema's pattern (config.schema.json shows it to editors). */
export const PASSWORD_HASH_PATTERN = /^\$scrypt\$ln=\d+,r=\d+,p=\d+\$[A-Za-z0-9+/]+=*\$[A-Za-z0-9+/]+=*$/;

export function parsePasswordHash(text: string): PasswordHash | Error {
  if (!PASSWORD_HASH_PATTERN.test(text)) return new Error('expected "$scrypt$ln=…,r=…,p=…$salt$hash"');
  const [, , params = '', salt = '', hash = ''] = text.split('$');
  const [ln, r, p] = params.split(',').map((kv) => Number(kv.slice(kv.indexOf('=') + 1))) as [number, number, number];
  if (ln < 1 || ln > 22 || r < 1 || r > 32 || p < 1 || p > 16) return new Error('scrypt parameters out of range (ln 1-22, r 1-32, p 1-16)');
  const key = Buffer.from(hash, 'base64');
  if (key.length < 16) return new Error('hash too short');
  return { ln, r, p, salt: Buffer.from(salt, 'base64'), hash: key };
}

export function formatPasswordHash(h: PasswordHash): string {
  return `$scrypt$ln=${h.ln},r=${h.r},p=${h.p}$${h.salt.toString('base64')}$${h.hash.toString('base64')}`;
}
