/**
 * Per-folder permissions: rules by virtual path prefix, the longest prefix wins; a path under no
 * rule may do everything (the user's other settings, readOnly and the request lists, still apply).
 * Pure: which permission a request needs, and on which path, is ruled-fs.ts's business.
 */

/** The vocabulary, as the config names it. `*` in a rule grants them all. */
export const PERMISSIONS = ['list', 'download', 'upload', 'overwrite', 'delete', 'rename', 'mkdir', 'symlink', 'chmod'] as const;
export type Permission = (typeof PERMISSIONS)[number];

/** What a name's content lets a client do: a rename or hard link must not add any of these. */
export const CONTENT_PERMISSIONS: readonly Permission[] = ['download', 'overwrite', 'chmod'];

const ALL: ReadonlySet<Permission> = new Set(PERMISSIONS);

export interface FolderRule {
  readonly prefix: string;
  readonly allow: ReadonlySet<Permission>;
}

/** Whether `path` is `prefix` or below it ("/in" covers "/in" and "/in/a", not "/inbox"). */
export function covers(prefix: string, path: string): boolean {
  return prefix === '/' || path === prefix || path.startsWith(prefix + '/');
}

/** A rule key as the config must write it: absolute, no "." or ".." or empty part, no trailing "/". */
export function ruleKeyProblem(key: string): string | undefined {
  if (!key.startsWith('/')) return 'expected an absolute virtual path such as "/inbox"';
  if (key === '/') return undefined;
  if (key.endsWith('/') || key.split('/').slice(1).some((p) => p === '' || p === '.' || p === '..'))
    return 'expected a path without "." or ".." parts, double or trailing slashes, such as "/inbox"';
  return undefined;
}

export class FolderRules {
  readonly #rules: readonly FolderRule[];

  /** `rules`: virtual path prefix → permissions ("*" for all), as the config has them. */
  constructor(rules: Readonly<Record<string, readonly (Permission | '*')[]>>) {
    // Longest first: the first rule that covers a path is the one that applies.
    this.#rules = Object.entries(rules)
      .map(([prefix, list]) => ({ prefix, allow: list.includes('*') ? ALL : new Set(list.filter((p): p is Permission => p !== '*')) }))
      .sort((a, b) => b.prefix.length - a.prefix.length);
  }

  /** The rule that applies to `path`, or undefined when none does (everything allowed). */
  ruleFor(path: string): FolderRule | undefined {
    return this.#rules.find((r) => covers(r.prefix, path));
  }

  allows(path: string, p: Permission): boolean {
    return this.ruleFor(path)?.allow.has(p) ?? true;
  }

  /** Some rule's prefix is `path` or lies below it: moving `path` would change what that rule covers. */
  ruledAtOrBelow(path: string): string | undefined {
    return this.#rules.find((r) => covers(path, r.prefix))?.prefix;
  }
}
