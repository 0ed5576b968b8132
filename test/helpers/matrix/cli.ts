/**
 * Small pieces shared by the files of command-line clients (sftp, psftp, lftp, curl, rclone, …):
 * an op cell as a test that starts from its prepared state, and reading names out of listings.
 */
import { it } from 'vitest';
import { title, type OpCell } from './cells.js';
import { prepare } from './disk.js';
import type { Matrix } from './matrix.js';

/**
 * `it(title(client, cell))` that first brings the disk to the state the cell starts from. `name`
 * replaces the title where a client can do only part of the cell.
 */
export function opCell(m: Matrix, client: string, cell: OpCell, body: () => Promise<void>, opts: { name?: string; timeoutMs?: number } = {}): void {
  it(opts.name ?? title(client, cell), async () => {
    await prepare(m.t, m.fx, cell);
    await body();
  }, opts.timeoutMs);
}

/** The lines of a client's output, as bytes (names that are not UTF-8 survive). */
export function lines(out: Buffer): Buffer[] {
  const result: Buffer[] = [];
  let start = 0;
  for (let i = out.indexOf(0x0a); i >= 0; start = i + 1, i = out.indexOf(0x0a, start)) result.push(out.subarray(start, i).subarray(0, out[i - 1] === 0x0d ? -1 : undefined));
  if (start < out.length) result.push(out.subarray(start));
  return result;
}

/** The last path component of a listed line (`/w/hello.txt` → `hello.txt`). */
export function basename(line: Buffer): Buffer {
  return line.subarray(line.lastIndexOf(0x2f) + 1);
}

/** The last lines of a client's messages, where it says why it stopped (for assertion messages). */
export function tail(text: string, n = 3): string {
  return text.trim().split('\n').slice(-n).join(' | ');
}
