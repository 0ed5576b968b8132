/**
 * Account lifecycle: whether a user may log in, or stay logged in, at a given moment. Checked after
 * the credentials (so a guesser learns nothing about the account), and again for running sessions on
 * reload and when expiresAt passes.
 */
import type { UserRecord } from '../config/load.js';

export type AccountRefusal = 'account-disabled' | 'account-expired';

export function accountRefusal(user: Pick<UserRecord, 'disabled' | 'expiresAt'>, now = Date.now()): AccountRefusal | undefined {
  if (user.disabled) return 'account-disabled';
  if (user.expiresAt !== undefined && now >= user.expiresAt) return 'account-expired';
  return undefined;
}
