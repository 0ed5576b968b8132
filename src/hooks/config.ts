/**
 * The `hooks` settings: what to notify, when, and where. Described for editors (config.schema.json)
 * and checked with every other setting by config/schema.ts.
 */
import { z } from 'zod';

export const HOOK_EVENTS = [
  'upload', 'upload-failed', 'download', 'remove', 'rename', 'mkdir', 'rmdir', 'symlink', 'link', 'setstat', 'copy', 'login', 'login-failed', 'logout',
] as const;
export type HookEvent = (typeof HOOK_EVENTS)[number];

const seconds = (dflt: number, what: string) => z.number().positive().default(dflt).describe(what);

const commandTarget = z.strictObject({
  argv: z.array(z.string().min(1)).min(1).describe('Program and arguments, run without a shell; the JSON record on stdin, the main fields as SFTP_CHROOT_* environment variables. Exit 0 means delivered.'),
  timeoutSeconds: seconds(30, 'Killed (and retried) after this long'),
  concurrency: z.number().int().positive().max(64).default(2).describe('Commands of this hook running at once'),
});

const httpTarget = z.strictObject({
  url: z.url({ protocol: /^https?$/ }).describe('The JSON record is POSTed here; a 2xx answer means delivered'),
  timeoutSeconds: seconds(10, 'A request that takes longer counts as failed (and is retried)'),
  secret: z.string().min(16, 'expected at least 16 characters').optional().describe('HMAC-SHA256 key: the body is signed in the X-Sftp-Chroot-Signature header ("sha256=<hex>")'),
  headers: z.record(z.string(), z.string()).default({}).describe('Extra request headers (e.g. Authorization)'),
  concurrency: z.number().int().positive().max(64).default(4).describe('Requests of this hook in flight at once'),
});

export const hookSchema = z
  .strictObject({
    name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, 'expected 1-64 lower-case letters, digits, "-" or "_"').describe('Names the hook in logs, metrics and its spool folder'),
    events: z.array(z.enum(HOOK_EVENTS)).min(1).describe('Which events notify'),
    users: z.array(z.string()).optional().describe('Only these users (default: all)'),
    groups: z.array(z.string()).optional().describe('Only users of these groups (default: all)'),
    paths: z.array(z.string()).optional().describe('Only paths matching one of these globs ("/in/**", "*.csv"; * within a name, ** across folders); events without a path (logins) are not filtered by it'),
    command: commandTarget.optional(),
    http: httpTarget.optional(),
    maxBacklog: z.number().int().positive().default(10_000).describe('Undelivered notifications kept at most; beyond it new ones are refused and logged'),
    retryMaxSeconds: seconds(300, 'Retries back off from 1 s, doubling up to this'),
  })
  .refine((h) => (h.command === undefined) !== (h.http === undefined), { message: 'expected exactly one of "command" or "http" (make two hooks for both)' });
export type HookConfig = z.output<typeof hookSchema>;

export const hooksSchema = z
  .array(hookSchema)
  .default([])
  .superRefine((hooks, ctx) => {
    const seen = new Set<string>();
    for (const [i, h] of hooks.entries()) {
      if (seen.has(h.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `duplicate hook name "${h.name}"` });
      seen.add(h.name);
    }
  })
  .describe('Notifications: run a command or POST to a URL on chosen events, at least once, stored durably first');

export const spoolDirSchema = z.string().default('spool').describe('Where undelivered notifications are kept (one folder per hook); put it on another filesystem than the users\' roots');
