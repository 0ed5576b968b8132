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
import { parseAuthorizedKey, authorizedKeyLines, describeHostKey, type AuthorizedKey } from '../parse/keys.js';
import { parsePasswordHash, type PasswordHash } from '../parse/password-hash.js';
import { FolderRules } from '../folders/rules.js';
import type { BandwidthSetting } from './bandwidth.js';
import type { QuotaSetting } from './quota.js';

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
  /** New uploads are staged under a hidden name and renamed into place on close (sftp/staged-upload.ts). */
  readonly atomicUploads: boolean;
  readonly denyRequests: ReadonlySet<RequestName>;
  readonly allowRequests?: ReadonlySet<RequestName>;
  readonly startDirectory: string;
  readonly allowFrom?: readonly string[];
  readonly maxSessions?: number;
  /** Bytes per second over all this user's sessions (the server's BandwidthRegistry); absent: unlimited. */
  readonly bandwidth?: BandwidthSetting;
  /** Bytes and files the root may hold (src/server/quota.ts); absent: no quota. */
  readonly quota?: QuotaSetting;
  readonly group?: string;
  /** Per-folder permissions (src/folders/); absent: no rules, no cost. */
  readonly folders?: FolderRules;
  /** Logins refused; running sessions end on reload (ssh/account.ts). */
  readonly disabled: boolean;
  /** Epoch milliseconds from which logins are refused and running sessions end. */
  readonly expiresAt?: number;
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

/** An errno name when there is one (ENOENT), else the message. */
function errorText(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? (e as Error).message;
}

export interface LoadOptions {
  /** Directory that relative paths in the config are resolved against. */
  baseDir: string;
  /** Check the filesystem (roots, key files). Default true. */
  checkFiles?: boolean;
}

/** What every validation step reads, and where it puts what it finds. */
interface Validation {
  readonly cfg: ParsedConfig;
  readonly baseDir: string;
  readonly checkFiles: boolean;
  readonly issues: Issue[];
  readonly warnings: string[];
}

type UserEntry = { user: UserConfig; path: string };
/** Settings a user may inherit from a group. */
type Settings = ParsedConfig['groups'][string];

const absolute = (v: Validation, p: string) => (isAbsolute(p) ? p : resolve(v.baseDir, p));

/** Validates an already-parsed JSON value. Throws ConfigError listing every problem. */
export function validateConfig(raw: unknown, opts: LoadOptions): ServerConfig {
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) throw new ConfigError(zodIssues(parsed.error));
  const v: Validation = { cfg: parsed.data, baseDir: opts.baseDir, checkFiles: opts.checkFiles !== false, issues: [], warnings: [] };
  const entries = userEntries(v);
  const seen = new Map<string, string>();
  const users: UserRecord[] = [];
  for (const entry of entries) {
    noteDuplicate(v, entry, seen);
    const user = resolveUser(v, entry);
    if (user) users.push(user);
  }
  const roots = rootPaths(v, users, entries);
  checkNesting(v, roots);
  checkSpool(v, roots);
  const hostKeys = checkHostKeys(v);
  if (v.issues.length) throw new ConfigError(v.issues);
  return finish(v, users, hostKeys);
}

/** The users of "users", then those of usersFile (same shape). */
function userEntries(v: Validation): UserEntry[] {
  const entries = v.cfg.users.map((user, i) => ({ user, path: `users[${i}]` }));
  if (v.cfg.usersFile) entries.push(...usersFromFile(v, absolute(v, v.cfg.usersFile)));
  if (entries.length === 0 && v.issues.length === 0) v.issues.push({ path: 'users', message: 'expected at least one user' });
  return entries;
}

function usersFromFile(v: Validation, file: string): UserEntry[] {
  const entries: UserEntry[] = [];
  try {
    const list: unknown = JSON.parse(readFileSync(file, 'utf8'));
    if (!Array.isArray(list)) v.issues.push({ path: 'usersFile', message: `${file} must hold a JSON array of users` });
    else
      list.forEach((u, i) => {
        const r = userSchema.safeParse(u);
        if (r.success) entries.push({ user: r.data, path: `usersFile[${i}]` });
        else v.issues.push(...zodIssues(r.error, `usersFile[${i}]`));
      });
  } catch (e) {
    v.issues.push({ path: 'usersFile', message: `cannot read ${file}: ${(e as Error).message}` });
  }
  return entries;
}

function noteDuplicate(v: Validation, { user, path }: UserEntry, seen: Map<string, string>): void {
  if (seen.has(user.username)) v.issues.push({ path: `${path}.username`, message: `"${user.username}" is already defined at ${seen.get(user.username)}` });
  seen.set(user.username, path);
}

/** One user with their group's settings filled in; undefined when there is no root to give them. */
function resolveUser(v: Validation, entry: UserEntry): UserRecord | undefined {
  const { user: u, path } = entry;
  const pick = settingsOf(v, entry);
  const rootTemplate = pick('root');
  if (rootTemplate === undefined) {
    v.issues.push({ path: `${path}.root`, message: 'expected a root directory (on the user or their group)' });
    return undefined;
  }
  const passwordHash = passwordHashOf(v, entry);
  if (u.password !== undefined) v.warnings.push(`user "${u.username}" has a plain-text password in the config; use "passwordHash" (sftp-chroot hash-password) outside development`);
  const keys = [...(u.authorizedKeys ?? []), ...keysFromFile(v, entry)];
  if (u.password === undefined && u.passwordHash === undefined && keys.length === 0 && u.authorizedKeysFile === undefined) {
    v.issues.push({ path, message: 'expected a way to log in: "password", "passwordHash", "authorizedKeys" or "authorizedKeysFile"' });
  }
  const credentials = { ...(passwordHash ? { passwordHash } : {}), ...(u.password !== undefined ? { password: u.password } : {}), authorizedKeys: keys };
  return userRecord(u, pick, absolute(v, expandRoot(rootTemplate, u.username)), credentials);
}

type SettingOf = <K extends keyof Settings>(k: K) => Settings[K];

/** A setting of the user's own, else their group's. */
function settingsOf(v: Validation, { user: u, path }: UserEntry): SettingOf {
  const group = u.group !== undefined ? v.cfg.groups[u.group] : undefined;
  if (u.group !== undefined && !group) v.issues.push({ path: `${path}.group`, message: `no group "${u.group}" in "groups" (have: ${Object.keys(v.cfg.groups).join(', ') || 'none'})` });
  return (k) => (u[k] !== undefined ? u[k] : group?.[k]);
}

function userRecord(u: UserConfig, pick: SettingOf, root: string, credentials: Pick<UserRecord, 'passwordHash' | 'password' | 'authorizedKeys'>): UserRecord {
  const createRoot = pick('createRoot');
  const allow = pick('allowRequests');
  const allowFrom = pick('allowFrom');
  const maxSessions = pick('maxSessions');
  const folders = pick('folders');
  const bandwidth = pick('bandwidth');
  const quota = pick('quota');
  return {
    username: u.username,
    root,
    createRoot: createRoot === true ? 0o750 : createRoot === false || createRoot === undefined ? false : createRoot,
    ...credentials,
    readOnly: pick('readOnly') ?? false,
    umask: pick('umask') ?? 0o022,
    atomicUploads: pick('atomicUploads') ?? true,
    denyRequests: new Set(pick('denyRequests') ?? []),
    ...(allow ? { allowRequests: new Set(allow) } : {}),
    startDirectory: pick('startDirectory') ?? '/',
    ...(allowFrom ? { allowFrom } : {}),
    ...(maxSessions !== undefined ? { maxSessions } : {}),
    ...(bandwidth !== undefined ? { bandwidth } : {}),
    ...(quota !== undefined ? { quota } : {}),
    ...(u.group !== undefined ? { group: u.group } : {}),
    disabled: pick('disabled') ?? false,
    ...(folders !== undefined && Object.keys(folders).length > 0 ? { folders: new FolderRules(folders) } : {}),
    ...(u.expiresAt !== undefined ? { expiresAt: u.expiresAt } : {}),
  };
}

function passwordHashOf(v: Validation, { user: u, path }: UserEntry): PasswordHash | undefined {
  if (u.passwordHash === undefined) return undefined;
  const h = parsePasswordHash(u.passwordHash);
  if (!(h instanceof Error)) return h;
  v.issues.push({ path: `${path}.passwordHash`, message: h.message });
  return undefined;
}

/** authorizedKeysFile's keys (its lines are checked here; inline keys were parsed by the schema). */
function keysFromFile(v: Validation, { user: u, path }: UserEntry): AuthorizedKey[] {
  if (u.authorizedKeysFile === undefined) return [];
  const file = absolute(v, expandRoot(u.authorizedKeysFile, u.username));
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    v.issues.push({ path: `${path}.authorizedKeysFile`, message: `cannot read ${file}: ${errorText(e)}` });
    return [];
  }
  const keys: AuthorizedKey[] = [];
  authorizedKeyLines(text).forEach((line, k) => {
    const key = parseAuthorizedKey(line);
    if (key instanceof Error) v.issues.push({ path: `${path}.authorizedKeysFile`, message: `${file} line ${k + 1}: ${key.message}` });
    else keys.push(key);
  });
  return keys;
}

/** Each user's root as the kernel resolves it (or as written, when files are not checked), by user name. */
function rootPaths(v: Validation, users: readonly UserRecord[], entries: readonly UserEntry[]): Map<string, string> {
  const paths = new Map<string, string>();
  for (const u of users) {
    const path = entries.find((e) => e.user.username === u.username)?.path ?? 'users';
    paths.set(u.username, v.checkFiles ? checkedRoot(v, u, path) : u.root);
  }
  return paths;
}

function checkedRoot(v: Validation, u: UserRecord, path: string): string {
  try {
    if (!statSync(u.root).isDirectory()) v.issues.push({ path: `${path}.root`, message: `${u.root} is not a directory` });
    return realpathSync(u.root);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    // A root created at start is still checked for nesting, on its lexical path.
    if (code === 'ENOENT' && u.createRoot === false) v.issues.push({ path: `${path}.root`, message: `${u.root} does not exist (create it, or set "createRoot": true)` });
    else if (code !== 'ENOENT') v.issues.push({ path: `${path}.root`, message: `${u.root} cannot be used: ${errorText(e)}` });
    return u.root;
  }
}

/** A root inside another user's root would let one tenant reach the other's files. */
function checkNesting(v: Validation, rootPaths: ReadonlyMap<string, string>): void {
  const list = [...rootPaths.entries()];
  for (let i = 0; i < list.length; i++)
    for (let j = 0; j < list.length; j++) {
      const [ua, ra] = list[i]!;
      const [ub, rb] = list[j]!;
      if (i !== j && isInside(ra, rb)) v.issues.push({ path: 'users', message: `root of "${ua}" (${ra}) is inside the root of "${ub}" (${rb}); roots must not nest` });
    }
}

function checkHostKeys(v: Validation): string[] {
  const hostKeys = v.cfg.hostKeys.map((p) => absolute(v, p));
  if (!v.checkFiles) return hostKeys;
  hostKeys.forEach((file, i) => {
    try {
      const info = describeHostKey(readFileSync(file));
      if (info instanceof Error) v.issues.push({ path: `hostKeys[${i}]`, message: `${file}: ${info.message}` });
    } catch (e) {
      v.issues.push({ path: `hostKeys[${i}]`, message: `cannot read ${file}: ${errorText(e)}` });
    }
  });
  return hostKeys;
}

/**
 * The hooks' spool must not share a tree with any root: inside one, its user could read other users'
 * records and plant files the hooks would deliver as notifications.
 */
function checkSpool(v: Validation, rootPaths: ReadonlyMap<string, string>): void {
  if (v.cfg.hooks.length === 0) return;
  const spool = v.checkFiles ? realOrLexical(absolute(v, v.cfg.spoolDir)) : absolute(v, v.cfg.spoolDir);
  for (const [user, root] of rootPaths) {
    if (spool === root || isInside(spool, root)) v.issues.push({ path: 'spoolDir', message: `${spool} is inside the root of "${user}" (${root}); the spool must be outside every root` });
    else if (isInside(root, spool)) v.issues.push({ path: 'spoolDir', message: `the root of "${user}" (${root}) is inside ${spool}; the spool must be outside every root` });
  }
}

/** A path as the kernel resolves it; one not created yet, through its nearest existing parent. */
function realOrLexical(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    const parent = dirname(p);
    return parent === p ? p : resolve(realOrLexical(parent), relative(parent, p));
  }
}

/** The validated config: paths absolute, users resolved, frozen. */
function finish(v: Validation, users: UserRecord[], hostKeys: string[]): ServerConfig {
  const { users: _u, groups: _g, hostKeys: _h, usersFile: _f, ...rest } = v.cfg;
  const log = v.cfg.log;
  return deepFreeze({
    ...rest,
    serverName: v.cfg.serverName ?? hostname(),
    hostKeys,
    keysDir: absolute(v, v.cfg.keysDir),
    spoolDir: absolute(v, v.cfg.spoolDir),
    users,
    baseDir: v.baseDir,
    warnings: v.warnings,
    log: { ...log, ...(log.file ? { file: absolute(v, log.file) } : {}), ...(log.xferlog ? { xferlog: absolute(v, log.xferlog) } : {}), ...(log.authLog ? { authLog: absolute(v, log.authLog) } : {}) },
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

