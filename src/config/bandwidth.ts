/**
 * Bandwidth settings (users, groups and limits.bandwidth): bytes per second per direction, as a
 * number or a size such as "10MiB" or "500KB" (per second). Absent means unlimited.
 */
import { z } from 'zod';

const UNITS: Readonly<Record<string, number>> = { '': 1, B: 1, KB: 1e3, MB: 1e6, GB: 1e9, KIB: 1024, MIB: 1024 ** 2, GIB: 1024 ** 3 };
const SIZE = /^\s*(\d+(?:\.\d+)?)\s*([KMG]i?B|B)?\s*(?:\/s)?\s*$/i;

/** Bytes per second from "10MiB", "1.5 MB/s", "800000"; undefined when it is not such a size. */
export function parseRate(text: string): number | undefined {
  const m = SIZE.exec(text);
  if (!m) return undefined;
  const bytes = Math.floor(Number(m[1]) * UNITS[(m[2] ?? '').toUpperCase()]!);
  return bytes > 0 ? bytes : undefined;
}

const RATE_MESSAGE = 'expected bytes per second: a positive integer or a size such as "10MiB", "500KB", "2GB"';

const rate = z
  .union([z.number(), z.string()])
  .transform((v, ctx) => {
    const n = typeof v === 'number' ? (Number.isSafeInteger(v) && v > 0 ? v : undefined) : parseRate(v);
    if (n !== undefined) return n;
    ctx.addIssue({ code: 'custom', message: RATE_MESSAGE });
    return z.NEVER;
  })
  .optional();

export const bandwidthSchema = z
  .strictObject({
    uploadBytesPerSecond: rate.describe('Upload limit in bytes per second (a number, or a size such as "10MiB" or "500KB"); absent: unlimited'),
    downloadBytesPerSecond: rate.describe('Download limit in bytes per second (a number, or a size such as "10MiB" or "500KB"); absent: unlimited'),
  })
  .optional();

export type BandwidthSetting = NonNullable<z.output<typeof bandwidthSchema>>;
