/** Users' roots made ready before they are served: created when configured, start directory inside. */
import { mkdir } from 'node:fs/promises';
import { Jail } from '../jail/jail.js';
import type { UserRecord } from '../config/load.js';

export async function prepareRoots(users: readonly UserRecord[]): Promise<void> {
  for (const u of users) {
    if (u.createRoot !== false) await mkdir(u.root, { recursive: true, mode: u.createRoot });
    if (u.startDirectory !== '/') await makeStartDirectory(u);
  }
}

/** Made inside the root through the jail, like any client request. */
async function makeStartDirectory(u: UserRecord): Promise<void> {
  const jail = new Jail(u.root);
  try {
    const parts = u.startDirectory.split('/').filter(Boolean);
    for (let i = 1; i <= parts.length; i++) {
      await jail.mkdir('/' + parts.slice(0, i).join('/'), 0o755 & ~u.umask).catch((e: unknown) => {
        if ((e as { code?: string }).code !== 'EEXIST') throw e;
      });
    }
  } finally {
    await jail.close();
  }
}
