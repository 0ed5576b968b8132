/**
 * Credential checks. Unknown users take the same path and time as wrong passwords: both run one
 * scrypt with the server's cost parameters. Public keys are compared by blob in constant time and
 * the signature is verified here (ssh2 does not); SHA-1 RSA signatures are refused.
 */
import { timingSafeEqual } from 'node:crypto';
import type { UserRecord } from '../config/load.js';
import type { AuthorizedKey } from '../parse/keys.js';
import type { PasswordHash } from '../parse/password-hash.js';
import { makePasswordHash, verifyPassword, VerifiedPasswordCache } from './passwords.js';
import type { AuthFailureReason } from '../audit/codes.js';

export type AuthResult = { ok: true; key?: AuthorizedKey } | { ok: false; reason: AuthFailureReason };

export interface PublicKeyOffer {
  algo: string;
  data: Buffer;
  /** Undefined for the "would this key be accepted?" query. */
  signature?: Buffer | undefined;
  blob?: Buffer | undefined;
  hashAlgo?: string | undefined;
}

export class Authenticator {
  readonly #users: ReadonlyMap<string, UserRecord>;
  readonly #derived = new Map<string, Promise<PasswordHash>>();
  readonly #cache = new VerifiedPasswordCache();
  #dummy: Promise<PasswordHash>;

  constructor(users: readonly UserRecord[], passwordCost: number) {
    this.#users = new Map(users.map((u) => [u.username, u]));
    // Plain-text passwords are hashed in the background so checks cost the same as for hashed ones.
    for (const u of users) if (u.password !== undefined && !u.passwordHash) this.#derived.set(u.username, makePasswordHash(u.password, passwordCost));
    this.#dummy = makePasswordHash(`dummy-${Math.random()}`, passwordCost);
    // Avoid unhandled rejections if the process exits mid-derivation.
    for (const p of [...this.#derived.values(), this.#dummy]) p.catch(() => undefined);
  }

  user(name: string): UserRecord | undefined {
    return this.#users.get(name);
  }

  async password(username: string, password: string): Promise<AuthResult> {
    const u = this.#users.get(username);
    if (u && (u.passwordHash || u.password !== undefined)) {
      if (this.#cache.has(username, password)) return { ok: true };
      const stored = u.passwordHash ?? (await this.#derived.get(username));
      if (stored && (await verifyPassword(password, stored))) {
        this.#cache.remember(username, password);
        return { ok: true };
      }
      return { ok: false, reason: 'bad-password' };
    }
    // Unknown user, or a user without a password: same work, same answer.
    await verifyPassword(password, await this.#dummy);
    return { ok: false, reason: u ? 'method-not-allowed' : 'unknown-user' };
  }

  /** `signature` undefined: the client asks whether the key would be accepted (PK_OK). */
  publickey(username: string, offer: PublicKeyOffer): AuthResult {
    const u = this.#users.get(username);
    if (!u) return { ok: false, reason: 'unknown-user' };
    // ssh2 reports rsa-sha2-* as 'ssh-rsa' with hashAlgo set; a bare ssh-rsa means SHA-1.
    if (offer.algo === 'ssh-rsa' && offer.signature && !offer.hashAlgo) return { ok: false, reason: 'bad-key' };
    const key = u.authorizedKeys.find((k) => k.type === offer.algo && k.blob.length === offer.data.length && timingSafeEqual(k.blob, offer.data));
    if (!key) return { ok: false, reason: u.authorizedKeys.length ? 'bad-key' : 'method-not-allowed' };
    if (offer.signature === undefined) return { ok: true, key };
    if (!offer.blob || !key.verify(offer.blob, offer.signature, offer.hashAlgo)) return { ok: false, reason: 'bad-key' };
    return { ok: true, key };
  }
}
