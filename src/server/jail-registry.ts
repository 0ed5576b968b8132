/**
 * One Jail per root, shared by every session of every user with that root. Lives beside the server
 * wiring, not in src/jail/: which roots are wanted follows the config and the open connections,
 * which the confinement layer knows nothing of.
 */
import { Jail } from '../jail/jail.js';
import type { FileSystem } from '../fs/file-system.js';
import type { ServerConfig, UserRecord } from '../config/load.js';

export interface JailRegistryOptions {
  /** Wraps each user's FileSystem (the test double's fault-injection seam). */
  wrap?: ((fs: FileSystem, user: UserRecord) => FileSystem) | undefined;
  /** Whether a connection still works in `root` (its jail must stay open). */
  inUse(root: string): boolean;
}

export class JailRegistry {
  readonly #jails = new Map<string, Jail>();
  readonly #opts: JailRegistryOptions;

  constructor(opts: JailRegistryOptions) {
    this.#opts = opts;
  }

  /** The FileSystem for a user's root, opened at first use. */
  fileSystem(user: UserRecord): FileSystem {
    let jail = this.#jails.get(user.root);
    if (!jail) {
      jail = new Jail(user.root);
      this.#jails.set(user.root, jail);
    }
    return this.#opts.wrap ? this.#opts.wrap(jail, user) : jail;
  }

  /** Jails of roots no user of `config` has and no connection uses close once their last operation ends. */
  reload(config: ServerConfig): void {
    const roots = new Set(config.users.map((u) => u.root));
    for (const [root, jail] of this.#jails) {
      if (roots.has(root) || this.#opts.inUse(root)) continue;
      this.#jails.delete(root);
      void jail.close();
    }
  }

  async close(): Promise<void> {
    for (const j of this.#jails.values()) await j.close();
    this.#jails.clear();
  }
}
