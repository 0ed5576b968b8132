/**
 * The cells of a scripted client (one that runs a driver, driver.ts) as tests: one `it` per auth
 * cell, each its own connection, and one `it` per op cell, all on one password session that the
 * first op cell opens and the file's afterAll closes.
 */
import { afterAll, expect, it, type TestContext } from 'vitest';
import { P, title, type AuthCell, type OpCell } from './cells.js';
import { check } from './checks.js';
import { prepare } from './disk.js';
import { Driver, loginOnce, type DriverProgram, type StepLine } from './driver.js';
import { keyFileFor } from './keys.js';
import type { Matrix } from './matrix.js';

export interface ScriptedClient {
  readonly name: string;
  /** Builds (or just names) the driver; called once, on first use. */
  readonly program: () => Promise<DriverProgram>;
  readonly authCells: readonly AuthCell[];
  readonly opCells: readonly OpCell[];
  /** Ops appended to the session after the op cells, for the file's own tests (`session.step`). */
  readonly extraOps?: readonly string[];
  /** Which key files the client reads: OpenSSH's format (default) or PEM (JSch). */
  readonly keyFormat?: 'openssh' | 'pem';
}

export interface Scripted {
  /** The op session (opened on first use). */
  session(): Promise<Driver>;
  /** One driver step that must succeed; its value. */
  step(op: string): Promise<unknown>;
}


const describeLine = (l: StepLine, stderr = '') => `${JSON.stringify(l)}${stderr ? `\nstderr: ${stderr.slice(-2000)}` : ''}`;

export function scriptedCells(m: Matrix, c: ScriptedClient): Scripted {
  let program: Promise<DriverProgram> | undefined;
  let session: Promise<Driver> | undefined;
  const getProgram = () => (program ??= c.program());
  const ops = c.opCells.flatMap((cell) => (cell === 'non-utf8-name' ? ['non-utf8-put', 'non-utf8-get'] : [cell])).concat(c.extraOps ?? []);

  const getSession = () =>
    (session ??= (async () => {
      const d = new Driver(await getProgram(), m.t, { auth: 'password', ops, local: m.local });
      const login = await d.login();
      if (!login.ok) throw new Error(`the op session's password login failed: ${describeLine(login, d.stderr)}`);
      return d;
    })());

  const step = async (op: string): Promise<unknown> => {
    const d = await getSession();
    const line = await d.step(op);
    expect(line.ok, `${op}: ${describeLine(line, d.stderr)}`).toBe(true);
    return line.value;
  };

  afterAll(async () => {
    await session?.then((d) => d.close(), () => undefined);
  });

  for (const cell of c.authCells) {
    it(title(c.name, cell), async (ctx: TestContext) => {
      const key = keyFileFor(m.t.keys, cell, c.keyFormat);
      const line = await loginOnce(await getProgram(), m.t, { auth: cell, key, local: m.local });
      expect(line.ok, describeLine(line, line.stderr)).toBe(true);
      const value = line.value as { method?: string; root?: string[]; algorithm?: string; keyRejected?: boolean };
      expect(value.root, 'names in /').toContain(P.base.slice(1));
      const method = ({ 'wrongkey-then-password': 'password', 'keyboard-interactive': 'keyboard-interactive', password: 'password' } as Record<string, string>)[cell] ?? 'publickey';
      expect(value.method).toBe(method);
      if (cell === 'wrongkey-then-password') expect(value.keyRejected, 'the unknown key was offered and refused first').toBe(true);
      if (value.algorithm) await ctx.annotate(`${c.name}: ${value.algorithm}`);
    });
  }

  for (const cell of c.opCells) {
    it(title(c.name, cell), async () => {
      await prepare(m.t, m.fx, cell);
      switch (cell) {
        case 'realpath-dotdot':
          return check.realpath((await step(cell)) as string[]);
        case 'list':
          return check.list((await step(cell)) as string[]);
        case 'stat':
          return check.stat((await step(cell)) as number);
        case 'symlink-readlink':
          return check.symlink(m, (await step(cell)) as string);
        case 'non-utf8-name':
          await check.nonUtf8Uploaded(m, (await step('non-utf8-put')) as string[]);
          await step('non-utf8-get');
          return check.nonUtf8Done(m);
        default:
          await step(cell);
          return afterOp[cell](m);
      }
    });
  }

  return { session: getSession, step };
}

/** Disk checks of the ops whose value is not the point. */
const afterOp: Record<'mkdir' | 'upload-5m' | 'download-5m' | 'download-20m' | 'rename' | 'chmod' | 'remove' | 'rmdir', (m: Matrix) => Promise<void>> = {
  mkdir: check.mkdir,
  'upload-5m': check.upload5m,
  'download-5m': (m) => check.download(m, '5m'),
  'download-20m': (m) => check.download(m, '20m'),
  rename: check.rename,
  chmod: check.chmod,
  remove: check.remove,
  rmdir: check.rmdir,
};
