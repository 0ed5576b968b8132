/**
 * The configuration schema: the only definition of what a config file may hold.
 * Unknown keys are errors (typos are the common mistake). Defaults live here too.
 */
import { z } from 'zod';
import { REQUEST_NAMES } from '../sftp/requests.js';
import { parseAuthorizedKey, type AuthorizedKey } from '../parse/keys.js';
import { parseCidrList } from '../parse/cidr.js';
import { PASSWORD_HASH_PATTERN } from '../parse/password-hash.js';
import { SUPPORTED, unsupported, type AlgorithmCategory, type AlgorithmsSetting } from '../parse/algorithms.js';
import { hooksSchema, spoolDirSchema } from '../hooks/config.js';
import { PERMISSIONS, ruleKeyProblem } from '../folders/rules.js';
import { bandwidthSchema } from './bandwidth.js';
import { quotaSchema } from './quota.js';
import { sharedSchema } from './shared.js';

/** One OpenSSH authorized_keys line, parsed here (once) so key errors come with the other schema errors. */
const authorizedKeyLine = z.string().transform((line, ctx): AuthorizedKey => {
  const k = parseAuthorizedKey(line);
  if (!(k instanceof Error)) return k;
  ctx.addIssue({ code: 'custom', message: k.message });
  return z.NEVER;
});

/** Addresses and CIDR ranges; kept as strings, turned into lists where they are used. */
const cidrList = z.array(z.string()).superRefine((list, ctx) => {
  const r = parseCidrList(list);
  if (r instanceof Error) ctx.addIssue({ code: 'custom', message: r.message });
});

const octalMode = z
  .string()
  .regex(/^0?[0-7]{3}$/, 'expected an octal mode string such as "0022"')
  .transform((s) => parseInt(s, 8));

/** denyRequests/allowRequests names: those of the SFTP layer's request table. */
export { REQUEST_NAMES, type RequestName } from '../sftp/requests.js';

/** Settings a user may carry or inherit from a group. */
const userSettings = {
  root: z.string().min(1, 'expected a directory path (may contain %u)').optional(),
  readOnly: z.boolean().optional(),
  umask: octalMode.optional(),
  atomicUploads: z
    .boolean()
    .optional()
    .describe('New uploads are written under a hidden name and renamed over the final name when the client closes them; a cut upload leaves the final name as it was (default true)'),
  denyRequests: z.array(z.enum(REQUEST_NAMES)).optional(),
  allowRequests: z.array(z.enum(REQUEST_NAMES)).optional(),
  startDirectory: z.string().startsWith('/', 'expected an absolute path inside the root, e.g. "/upload"').optional(),
  createRoot: z.union([z.boolean(), octalMode]).optional(),
  allowFrom: cidrList.optional(),
  maxSessions: z.number().int().positive().optional(),
  bandwidth: bandwidthSchema.describe(
    "This user's transfer rate over all their sessions, per direction; a user's own value replaces the group's (other users are not slowed)",
  ),
  folders: z
    .record(z.string(), z.array(z.enum([...PERMISSIONS, '*'])))
    .superRefine((rules, ctx) => {
      for (const key of Object.keys(rules)) {
        const problem = ruleKeyProblem(key);
        if (problem) ctx.addIssue({ code: 'custom', path: [key], message: problem });
      }
    })
    .optional()
    .describe(
      'Per-folder permissions by virtual path, the longest prefix wins, e.g. {"/inbox": ["list", "upload"], "/outbox": ["list", "download"]}; a path under no rule may do everything. Checked after symlinks are resolved. A user\'s own folders replace the group\'s',
    ),
  quota: quotaSchema,
  disabled: z
    .boolean()
    .optional()
    .describe('Refuse logins (auth.failure reason "account-disabled"); on reload, running sessions end. On a group: every member'),
};

/** "2027-01-31" (00:00 UTC that day) or a date-time with its zone ("2027-01-31T18:00:00+01:00"), as milliseconds. */
const expiryDate = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?$/, 'expected a date "2027-01-31" (00:00 UTC) or a date-time with a zone "2027-01-31T18:00:00Z"')
  .transform((s, ctx) => {
    // Date.parse rolls 2027-02-30 over to March 2: check the calendar day first.
    const [y, m, d] = s.slice(0, 10).split('-').map(Number) as [number, number, number];
    const realDay = m >= 1 && m <= 12 && d >= 1 && d <= new Date(Date.UTC(y, m, 0)).getUTCDate();
    const ms = Date.parse(s.length === 10 ? `${s}T00:00:00Z` : s);
    if (realDay && Number.isFinite(ms)) return ms;
    ctx.addIssue({ code: 'custom', message: `"${s}" is not a real date` });
    return z.NEVER;
  });

export const userSchema = z.strictObject({
  username: z
    .string()
    .regex(/^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$/, 'expected 1-64 characters of letters, digits, ".", "_" or "-", not starting with "." or "-"'),
  password: z.string().min(1, 'expected a non-empty password').optional(),
  passwordHash: z
    .string()
    .regex(PASSWORD_HASH_PATTERN, 'expected a hash made by `sftp-chroot hash-password` ("$scrypt$ln=…,r=…,p=…$salt$hash")')
    .optional(),
  authorizedKeys: z.array(authorizedKeyLine).optional(),
  authorizedKeysFile: z.string().optional(),
  group: z.string().optional(),
  expiresAt: expiryDate
    .optional()
    .describe('From this moment logins are refused (auth.failure reason "account-expired") and running sessions end: "2027-01-31" (00:00 UTC) or "2027-01-31T18:00:00+01:00"'),
  ...userSettings,
});
export type UserConfig = z.infer<typeof userSchema>;

const groupSchema = z.strictObject(userSettings);

const hostPort = z.strictObject({
  host: z.string().default('127.0.0.1'),
  port: z.number().int().min(0).max(65535).default(2222),
});

/** The SSH listener: host and port, plus the PROXY protocol (HAProxy and other TCP load balancers). */
const listenSchema = hostPort.extend({
  /** Read a PROXY protocol v1/v2 header before SSH: off, optional (header or not), required. */
  proxyProtocol: z.enum(['off', 'optional', 'required']).default('off'),
  /** Addresses (CIDR) allowed to send PROXY headers: the load balancers. */
  proxyTrusted: cidrList.default(['127.0.0.0/8', '::1/128']),
});

export const logSchema = z.strictObject({
  level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  /** JSON log file (appended; reopened on SIGUSR1). Without it, JSON goes to stdout. */
  file: z.string().optional(),
  /** Classic 14-field xferlog file. */
  xferlog: z.string().optional(),
  /** OpenSSH-style authentication lines for fail2ban. */
  authLog: z.string().optional(),
  /** Hash uploads written sequentially from offset 0. */
  hashUploads: z.enum(['sha256', 'off']).default('off'),
  /** Human-readable output when stdout is a terminal. */
  pretty: z.enum(['auto', 'always', 'never']).default('auto'),
  /** Also log the root-relative host path beside the virtual path. */
  hostPaths: z.boolean().default(false),
});

/** maxSessionsPerUser's default: no cap (a shared store then takes no leases). */
export const UNLIMITED_SESSIONS = 0x7fffffff;

export const limitsSchema = z.strictObject({
  loginGraceSeconds: z.number().positive().default(30),
  maxAuthTries: z.number().int().positive().default(6),
  maxStartups: z
    .string()
    .regex(/^\d+(:\d+:\d+)?$/, 'expected "start:rate:full" such as "10:30:100", or a single number')
    .default('10:30:100'),
  maxConnections: z.number().int().positive().default(1000),
  maxConnectionsPerSource: z.number().int().positive().default(20),
  idleTimeoutSeconds: z.number().min(0).default(0),
  maxSessionsPerUser: z.number().int().positive().default(UNLIMITED_SESSIONS),
  maxSessionsPerConnection: z.number().int().positive().default(10),
  maxHandlesPerSession: z.number().int().positive().max(100000).default(512),
  // Larger budgets made 20 concurrent OpenSSH downloads slower, not faster (bench/README.md, Run D).
  maxInflightBytesPerSession: z.number().int().positive().default(512 * 1024),
  maxRequestsInFlight: z.number().int().positive().default(256),
  bandwidth: bandwidthSchema.describe('Transfer rate of all users together, per direction, on top of per-user limits; absent: unlimited'),
  penalty: z
    .strictObject({
      enabled: z.boolean().default(true),
      authFailSeconds: z.number().min(0).default(5),
      maxSeconds: z.number().min(0).default(600),
      threshold: z.number().int().positive().default(5),
    })
    .prefault({}),
});

const algorithmList = (category: AlgorithmCategory, what: string) =>
  z
    .array(z.string())
    .min(1, `expected at least one ${what}`)
    .superRefine((list, ctx) => {
      const bad = unsupported(category, list);
      if (bad.length) ctx.addIssue({ code: 'custom', message: `unsupported ${what} ${bad.map((b) => JSON.stringify(b)).join(', ')}; expected some of: ${SUPPORTED[category].join(', ')}` });
    })
    .optional();

/** "compatible" (default), "strict" (ssh-audit clean), or a profile with some lists replaced. */
const algorithmsSchema = z
  .union([
    z.enum(['compatible', 'strict']),
    z.strictObject({
      profile: z.enum(['compatible', 'strict']).default('compatible'),
      kex: algorithmList('kex', 'key exchange'),
      hostKey: algorithmList('hostKey', 'host key algorithm'),
      cipher: algorithmList('cipher', 'cipher'),
      mac: algorithmList('mac', 'MAC'),
    }),
  ])
  .default('compatible')
  .transform((a): AlgorithmsSetting => (typeof a === 'string' ? { profile: a } : a));

export const configSchema = z.strictObject({
  $schema: z.string().optional(),
  /** Instance name in every log record (default: the host name). */
  serverName: z.string().optional(),
  listen: listenSchema.prefault({}),
  hostKeys: z.array(z.string()).default([]),
  /** Where a host key is generated when hostKeys is empty. */
  keysDir: z.string().default('keys'),
  banner: z.string().optional(),
  /** SSH algorithms offered: "compatible" (default), "strict", or explicit lists per category. */
  algorithms: algorithmsSchema,
  /** scrypt cost (log2 N) for plain-text passwords and for unknown users. */
  passwordCost: z.number().int().min(10).max(20).default(15),
  usersFile: z.string().optional(),
  groups: z.record(z.string(), groupSchema).default({}),
  users: z.array(userSchema).default([]),
  log: logSchema.prefault({}),
  limits: limitsSchema.prefault({}),
  shutdownGraceSeconds: z.number().min(0).default(30),
  /** Worker processes sharing the listening socket (node:cluster); 1 runs in one process. */
  workers: z.number().int().min(1).max(64).default(1),
  admin: z.strictObject({ listen: hostPort }).optional(),
  /** Notifications (src/hooks/): a command or an HTTP POST on chosen events, stored in spoolDir first. */
  hooks: hooksSchema,
  spoolDir: spoolDirSchema,
  shared: sharedSchema,
});

export type ConfigInput = z.input<typeof configSchema>;
export type ParsedConfig = z.output<typeof configSchema>;
