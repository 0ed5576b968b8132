import { it } from 'vitest';
import { formatFigures, runFuzz } from './run.js';
it('scratch', async () => {
  let last = Date.now();
  const f = await runFuzz({ seed: Number(process.env.SEED ?? 1), packets: Number(process.env.P ?? 20000), seconds: Number(process.env.S ?? 10), window: Number(process.env.W ?? 128), framingRate: Number(process.env.FR ?? 0.002),
    onBatch: (p) => { const now = Date.now(); if (process.env.V) console.log(`batch ${p.batches} ${p.packets} ${now - last} ms rss ${p.rssMiB.toFixed(0)} by ${p.bystanderOps}`); last = now; } });
  console.log(formatFigures(f));
}, 600_000);
