/**
 * Which hook events an audit record is, and whether a hook wants it (event, user/group, path glob).
 */
import type { AuditRecord } from '../audit/events.js';
import type { HookConfig, HookEvent } from './config.js';

/** The hook event an audit record stands for, if any; only successful changes notify. */
export function hookEventOf(r: AuditRecord): HookEvent | undefined {
  switch (r.event) {
    case 'transfer':
      if (r.direction === 'upload' || r.direction === 'both') return r.status === 'complete' ? 'upload' : 'upload-failed';
      return r.direction === 'download' && r.status === 'complete' ? 'download' : undefined;
    case 'remove': case 'rename': case 'mkdir': case 'rmdir': case 'symlink': case 'link': case 'setstat': case 'copy':
      return r.ok ? r.event : undefined;
    case 'auth.success':
      return 'login';
    case 'auth.failure':
      return r.probe ? undefined : 'login-failed';
    case 'session.close':
      return 'logout';
    default:
      return undefined;
  }
}

/** The virtual paths a record names (a rename or link names two). */
export function pathsOf(r: AuditRecord): string[] {
  const o = r as Partial<Record<'path' | 'from' | 'to', unknown>>;
  return [o.path, o.from, o.to].filter((p): p is string => typeof p === 'string');
}

/**
 * A glob as a RegExp: `*` and `?` stay within one name, `**` crosses folders; a pattern without a
 * "/" matches the last name only ("*.csv"), one with a "/" the whole virtual path ("/in/**").
 */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*' && glob[i + 1] === '*') {
      re += '.*';
      i++;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(glob.includes('/') ? `^${re}$` : `(?:^|/)${re}$`);
}

export interface HookFilter {
  wants(r: AuditRecord, event: HookEvent): boolean;
}

/** The filter of one hook; `groupOf` tells a user's group (from the running config). */
export function hookFilter(h: HookConfig, groupOf: (user: string) => string | undefined): HookFilter {
  const events = new Set(h.events);
  const users = h.users ? new Set(h.users) : undefined;
  const groups = h.groups ? new Set(h.groups) : undefined;
  const globs = h.paths?.map(globToRegExp);
  return {
    wants(r, event) {
      if (!events.has(event)) return false;
      const user = (r as { user?: string }).user;
      if (users && (user === undefined || !users.has(user))) return false;
      if (groups) {
        const g = user === undefined ? undefined : groupOf(user);
        if (g === undefined || !groups.has(g)) return false;
      }
      // Events without a path (logins) are not filtered by paths.
      const paths = pathsOf(r);
      return !globs || paths.length === 0 || paths.some((p) => globs.some((g) => g.test(p)));
    },
  };
}
