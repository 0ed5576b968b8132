// Measures how long the server takes to reject a wrong password for a known user and any password
// for an unknown user (issue 7: the two must be indistinguishable). Prints both distributions.
// Usage: npm run build && node bench/auth-timing.mjs [samples=60]
import net from 'node:net';
import ssh2 from 'ssh2';
import { startTestServer } from '../dist/testing.js';

const samples = Number(process.argv[2] ?? 60);

function attempt(port, username, password) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    sock.setNoDelay(true);
    const c = new ssh2.Client();
    let sent = 0n;
    c.on('error', () => undefined);
    c.connect({
      sock,
      username,
      authHandler: (methods, partial, next) => {
        if (sent === 0n) {
          sent = process.hrtime.bigint();
          return next({ type: 'password', username, password });
        }
        const ms = Number(process.hrtime.bigint() - sent) / 1e6;
        c.end();
        resolve(ms);
        return next(false);
      },
    });
    c.on('ready', () => reject(new Error('unexpected login')));
  });
}

const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  const mean = s.reduce((a, b) => a + b, 0) / s.length;
  return { n: s.length, p10: q(0.1), median: q(0.5), p90: q(0.9), mean };
};

// The production cost (scrypt N=2^15), not the test double's cheap default.
const s = await startTestServer({ config: { passwordCost: 15 } });
try {
  const known = [];
  const unknown = [];
  for (let i = 0; i < samples; i++) {
    // Interleave so drift and noise hit both equally.
    known.push(await attempt(s.port, s.username, `wrong-${i}`));
    unknown.push(await attempt(s.port, `nobody-${i}`, `wrong-${i}`));
  }
  const k = stats(known);
  const u = stats(unknown);
  const f = (x) => x.toFixed(1).padStart(7);
  console.log('rejection time (ms)        n     p10  median     p90    mean');
  console.log(`known user, wrong password ${String(k.n).padStart(3)} ${f(k.p10)} ${f(k.median)} ${f(k.p90)} ${f(k.mean)}`);
  console.log(`unknown user               ${String(u.n).padStart(3)} ${f(u.p10)} ${f(u.median)} ${f(u.p90)} ${f(u.mean)}`);
  console.log(`median difference: ${(u.median - k.median).toFixed(2)} ms (${(((u.median - k.median) / k.median) * 100).toFixed(1)} %)`);
} finally {
  await s.close();
}
