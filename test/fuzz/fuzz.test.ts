/**
 * Protocol fuzzer (see run.ts and generator.ts). `npm test` runs a short deterministic run;
 * `npm run fuzz` a long one (FUZZ_PACKETS, FUZZ_SECONDS, FUZZ_SEED override the defaults) and
 * prints its figures either way.
 */
import { describe, expect, it } from 'vitest';
import { formatFigures, runFuzz, type FuzzFigures } from './run.js';

const env = (name: string, fallback: number): number => {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name}=${v} is not a number`);
  return n;
};

const SEED = env('FUZZ_SEED', 0x5f7c_2024);
const PACKETS = env('FUZZ_PACKETS', 20_000);
const SECONDS = env('FUZZ_SECONDS', 15);
const LONG = process.env.FUZZ_PACKETS !== undefined;

describe('protocol fuzzer', () => {
  it(
    `${PACKETS} packets or ${SECONDS} s (seed ${SEED}): no crash, no escape, bystander unharmed, RSS bounded, every owed reply sent`,
    async () => {
      const figures: FuzzFigures = await runFuzz({
        seed: SEED,
        packets: PACKETS,
        seconds: SECONDS,
        onBatch: (p) => {
          if (LONG && p.batches % 200 === 0) console.log(`fuzz: ${p.packets} packets, ${(p.elapsedMs / 1000).toFixed(0)} s, RSS ${p.rssMiB.toFixed(0)} MiB, ${p.channelResets} resets, ${p.bystanderOps} bystander ops`);
        },
      });
      console.log(formatFigures(figures));

      expect(figures.crashes, 'uncaught exceptions / unhandled rejections').toEqual([]);
      expect(figures.escapes, 'changes outside the root, secrets or host paths in replies').toEqual([]);
      expect(figures.bystanderErrors, 'errors seen by the bystander session').toEqual([]);
      expect(figures.bystanderOps).toBeGreaterThan(0);
      expect(figures.rssExceeded, `RSS over ${figures.rssLimitMiB.toFixed(0)} MiB`).toBe(0);
      expect(figures.pingFailures, 'liveness pings not answered').toBe(0);
      expect(figures.missingReplies, 'requests owed a reply that got none').toBe(0);
      expect(figures.unexpectedReplies, 'replies nobody asked for').toBe(0);
      expect(figures.badReplies, 'unparseable or wrong-type replies').toBe(0);
      expect(figures.fatalNotClosed, 'broken framing must close the channel').toBe(0);
      // Whatever ran, it ran for real: a bounded run still sent a fair share of its packets.
      expect(figures.packets).toBeGreaterThan(Math.min(PACKETS, 1000) - 1);
      const owed = figures.byExpect.reply ?? 0;
      expect(figures.repliesTotal).toBeGreaterThanOrEqual(owed);
    },
    (SECONDS + 120) * 1000,
  );
});
