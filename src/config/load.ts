/**
 * Config loading: parse → validate (every problem at once, each with its JSON path) → resolve
 * users, groups and paths → deep-freeze. Nothing below this module reads files or env for config.
 */
import { readFileSync, statSync, realpathSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import { hostname } from 'node:os';
import type { z } from 'zod';
import { configSchema, userSchema, type ConfigInput, type ParsedConfig, type RequestName, type UserConfig } from './schema.js';
import { ConfigError } from '../errors.js';
import { parseAuthorizedKey, authorizedKeyLines, describeHostKey, type AuthorizedKey } from '../ssh/keys.js';
import { parsePasswordHash, type PasswordHash } from '../ssh/passwords.js';

export interface UserRecord {
  readonly username: string;
  /** Absolute host path of the user's root. */
  readonly root: string;
  readonly createRoot: number | false;
  readonly passwordHash?: PasswordHash;
  /** Plain-text password from config (development only; hashed in memory at start). */
  readonly password?: string;
  readonly authorizedKeys: readonly AuthorizedKey[];
  readonly readOnly: boolean;
  readonly umask: number;
  readonly denyRequests: ReadonlySet<RequestName>;
  readonly allowRequests?: ReadonlySet<RequestName>;
  readonly startDirectory: string;
  readonly allowFrom?: readonly string[];
  readonly maxSessions?: number;
  readonly group?: string;
}

export type ServerConfig = Readonly<
  Omit<ParsedConfig, 'users' | 'groups' | 'hostKeys' | 'usersFile'> & {
    serverName: string;
    /** Absolute host key paths (may be empty: one is generated in keysDir). */
    hostKeys: readonly string[];
    keysDir: string;
    users: readonly UserRecord[];
    /** Directory relative paths were resolved against. */
    baseDir: string;
    /** Warnings to log at start (plain passwords, …). */
    warnings: readonly string[];
  }
>;

type Issue = { path: string; message: string };

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? String(p) : `.${String(p)}`;
  return out;
}

function zodIssues(error: z.ZodError, prefix = ''): Issue[] {
  return error.issues.map((i) => {
    const path = formatPath(i.path as PropertyKey[]);
    return { path: prefix && path ? `${prefix}${path.startsWith('[') ? '' : '.'}${path}` : prefix || path, message: i.message };
  });
}

/** Expands %u (user name) and %% in a root template, as sshd's ChrootDirectory does. */
export function expandRoot(template: string, username: string): string {
  return template.replace(/%(.)/g, (all, c: string) => (c === 'u' ? username : c === '%' ? '%' : all));
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o) && !Buffer.isBuffer(o)) {
    Object.freeze(o);
    for (const v of Object.values(o as object)) deepFreeze(v);
  }
  return o;
}

function isInside(child: string, parent: string): boolean {
  const rel = relative(parent, child);
  return rel !== '' && !rel.startsWith('..' + sep) && rel !== '..' && !isAbsolute(rel);
}

export interface LoadOptions {
  /** Directory that relative paths in the config are resolved against. */
  baseDir: string;
  /** Check the filesystem (roots, key files). Default true. */
  checkFiles?: boolean;
}

/** Validates an already-parsed JSON value. Throws ConfigError listing every problem. */
export function validateConfig(raw: unknown, opts: LoadOptions): ServerConfig {
  const issues: Issue[] = [];
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) throw new ConfigError(zodIssues(parsed.error));
  const cfg = parsed.data;
  const base = opts.baseDir;
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(base, p));
  const checkFiles = opts.checkFiles !== false;
  const warnings: string[] = [];

  // Users may also come from a separate file (same shape as "users").
  let userEntries: { user: UserConfig; path: string }[] = cfg.users.map((user, i) => ({ user, path: `users[${i}]` }));
  if (cfg.usersFile) {
    const file = abs(cfg.usersFile);
    try {
      const list: unknown = JSON.parse(readFileSync(file, 'utf8'));
      if (!Array.isArray(list)) issues.push({ path: 'usersFile', message: `${file} must hold a JSON array of users` });
      else
        list.forEach((u, i) => {
          const r = userSchema.safeParse(u);
          if (r.success) userEntries.push({ user: r.data, path: `usersFile[${i}]` });
          else issues.push(...zodIssues(r.error, `usersFile[${i}]`));
        });
    } catch (e) {
      issues.push({ path: 'usersFile', message: `cannot read ${file}: ${(e as Error).message}` });
    }
  }
  if (userEntries.length === 0 && issues.length === 0) issues.push({ path: 'users', message: 'expected at least one user' });

  const seen = new Map<string, string>();
  const users: UserRecord[] = [];
  for (const { user: u, path } of userEntries) {
    if (seen.has(u.username)) issues.push({ path: `${path}.username`, message: `"${u.username}" is already defined at ${seen.get(u.username)}` });
    seen.set(u.username, path);
    const group = u.group !== undefined ? cfg.groups[u.group] : undefined;
    if (u.group !== undefined && !group) issues.push({ path: `${path}.group`, message: `no group "${u.group}" in "groups" (have: ${Object.keys(cfg.groups).join(', ') || 'none'})` });
    const pick = <K extends keyof UserConfig & keyof NonNullable<typeof group>>(k: K) => (u[k] !== undefined ? u[k] : group?.[k]);
    const rootTemplate = pick('root');
    if (rootTemplate === undefined) {
      issues.push({ path: `${path}.root`, message: 'expected a root directory (on the user or their group)' });
      continue;
    }
    const root = abs(expandRoot(rootTemplate, u.username));
    const createRootSetting = pick('createRoot');
    const createRoot = createRootSetting === true ? 0o750 : createRootSetting === false || createRootSetting === undefined ? false : createRootSetting;

    let passwordHash: PasswordHash | undefined;
    if (u.passwordHash !== undefined) {
      const h = parsePasswordHash(u.passwordHash);
      if (h instanceof Error) issues.push({ path: `${path}.passwordHash`, message: h.message });
      else passwordHash = h;
    }
    if (u.password !== undefined) warnings.push(`user "${u.username}" has a plain-text password in the config; use "passwordHash" (sftp-chroot hash-password) outside development`);
    const keys: AuthorizedKey[] = [];
    (u.authorizedKeys ?? []).forEach((line, k) => {
      const key = parseAuthorizedKey(line);
      if (key instanceof Error) issues.push({ path: `${path}.authorizedKeys[${k}]`, message: key.message });
      else keys.push(key);
    });
    if (u.authorizedKeysFile !== undefined) {
      const file = abs(expandRoot(u.authorizedKeysFile, u.username));
      try {
        authorizedKeyLines(readFileSync(file, 'utf8')).forEach((line, k) => {
          const key = parseAuthorizedKey(line);
          if (key instanceof Error) issues.push({ path: `${path}.authorizedKeysFile`, message: `${file} line ${k + 1}: ${key.message}` });
          else keys.push(key);
        });
      } catch (e) {
        issues.push({ path: `${path}.authorizedKeysFile`, message: `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` });
      }
    }
    if (u.password === undefined && u.passwordHash === undefined && keys.length === 0 && u.authorizedKeysFile === undefined) {
      issues.push({ path: path, message: 'expected a way to log in: "password", "passwordHash", "authorizedKeys" or "authorizedKeysFile"' });
    }
    const deny = pick('denyRequests');
    const allow = pick('allowRequests');
    const allowFrom = pick('allowFrom');
    const maxSessions = pick('maxSessions');
    const rec: UserRecord = {
      username: u.username,
      root,
      createRoot,
      ...(passwordHash ? { passwordHash } : {}),
      ...(u.password !== undefined ? { password: u.password } : {}),
      authorizedKeys: keys,
      readOnly: pick('readOnly') ?? false,
      umask: pick('umask') ?? 0o022,
      denyRequests: new Set(deny ?? []),
      ...(allow ? { allowRequests: new Set(allow) } : {}),
      startDirectory: pick('startDirectory') ?? '/',
      ...(allowFrom ? { allowFrom } : {}),
      ...(maxSessions !== undefined ? { maxSessions } : {}),
      ...(u.group !== undefined ? { group: u.group } : {}),
    };
    users.push(rec);
  }

  const rootPaths = new Map<string, string>();
  if (checkFiles) {
    users.forEach((u) => {
      const path = userEntries.find((e) => e.user.username === u.username)?.path ?? 'users';
      let real = u.root;
      try {
        const st = statSync(u.root);
        if (!st.isDirectory()) issues.push({ path: `${path}.root`, message: `${u.root} is not a directory` });
        real = realpathSync(u.root);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' && u.createRoot !== false) {
          // Created at start; nesting is still checked on the lexical path.
        } else if (code === 'ENOENT') issues.push({ path: `${path}.root`, message: `${u.root} does not exist (create it, or set "createRoot": true)` });
        else issues.push({ path: `${path}.root`, message: `${u.root} cannot be used: ${code ?? (e as Error).message}` });
      }
      rootPaths.set(u.username, real);
    });
  } else users.forEach((u) => rootPaths.set(u.username, u.root));

  // A root inside another user's root would let one tenant reach the other's files.
  const list = [...rootPaths.entries()];
  for (let i = 0; i < list.length; i++)
    for (let j = 0; j < list.length; j++) {
      const [ua, ra] = list[i]!;
      const [ub, rb] = list[j]!;
      if (i !== j && isInside(ra, rb))
        issues.push({ path: 'users', message: `root of "${ua}" (${ra}) is inside the root of "${ub}" (${rb}); roots must not nest` });
    }

  const hostKeys = cfg.hostKeys.map(abs);
  if (checkFiles)
    hostKeys.forEach((file, i) => {
      try {
        const info = describeHostKey(readFileSync(file));
        if (info instanceof Error) issues.push({ path: `hostKeys[${i}]`, message: `${file}: ${info.message}` });
      } catch (e) {
        issues.push({ path: `hostKeys[${i}]`, message: `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` });
      }
    });

  if (issues.length) throw new ConfigError(issues);
  const { users: _u, groups: _g, hostKeys: _h, usersFile: _f, ...rest } = cfg;
  return deepFreeze({
    ...rest,
    serverName: cfg.serverName ?? hostname(),
    hostKeys,
    keysDir: abs(cfg.keysDir),
    users,
    baseDir: base,
    warnings,
    log: { ...cfg.log, ...(cfg.log.file ? { file: abs(cfg.log.file) } : {}), ...(cfg.log.xferlog ? { xferlog: abs(cfg.log.xferlog) } : {}), ...(cfg.log.authLog ? { authLog: abs(cfg.log.authLog) } : {}) },
  });
}

/** Reads and validates a JSON config file; relative paths resolve against its directory. */
export function loadConfigFile(file: string, opts: Partial<LoadOptions> = {}): ServerConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError([{ path: '', message: `cannot read config file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` }]);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ConfigError([{ path: '', message: `${file} is not valid JSON: ${(e as Error).message}` }]);
  }
  return validateConfig(raw, { baseDir: dirname(resolve(file)), ...opts });
}

/** The embedded default for `npm start` with no arguments: a demo user in ./sandbox. */
export function defaultConfigInput(): ConfigInput {
  return {
    listen: { host: '127.0.0.1', port: 2222 },
    users: [{ username: 'demo', password: 'demo', root: './sandbox', createRoot: true }],
  };
}

