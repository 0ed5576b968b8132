/**
 * One Jail per root, shared by every session of every user with that root. Lives beside the server
 * wiring, not in src/jail/: which roots are wanted follows the config and the open connections,
 * which the confinement layer knows nothing of.
 */
import { Jail } from '../jail/jail.js';
import type { FileSystem } from '../fs/file-system.js';
import { RuledFileSystem } from '../folders/ruled-fs.js';
import type { FolderRules } from '../folders/rules.js';
import type { ServerConfig, UserRecord } from '../config/load.js';

export interface JailRegistryOptions {
  /** Wraps each user's FileSystem (the test double's fault-injection seam). */
  wrap?: ((fs: FileSystem, user: UserRecord) => FileSystem) | undefined;
  /** Counts and limits the user's root's usage when it has a quota (src/server/quota.ts); fs itself otherwise. */
  quota?: ((fs: FileSystem, user: UserRecord) => FileSystem) | undefined;
  /** Whether a connection still works in `root` (its jail must stay open). */
  inUse(root: string): boolean;
}

export class JailRegistry {
  readonly #jails = new Map<string, Jail>();
  /** Jails that refuse symlinks, for users with per-folder rules (src/folders/ruled-fs.ts). */
  readonly #strict = new Map<string, Jail>();
  /** Each user's per-folder rules as the config now says (reload replaces them; a removed user keeps the last). */
  readonly #rules = new Map<string, FolderRules | undefined>();
  readonly #opts: JailRegistryOptions;

  constructor(opts: JailRegistryOptions) {
    this.#opts = opts;
  }

  /** The FileSystem for a user's root, opened at first use. */
  fileSystem(user: UserRecord): FileSystem {
    const jail = opened(this.#jails, user.root, () => new Jail(user.root));
    const name = user.username;
    this.#rules.set(name, user.folders);
    // Every user passes the rules layer: a reload that gives a connected user rules applies at once;
    // without rules it calls the jail straight through.
    const ruled = new RuledFileSystem(jail, () => opened(this.#strict, user.root, () => new Jail(user.root, { noSymlinks: true })), () => this.#rules.get(name));
    // Outside the rules: a refused request changes nothing, so it is never counted.
    const fs = this.#opts.quota ? this.#opts.quota(ruled, user) : ruled;
    return this.#opts.wrap ? this.#opts.wrap(fs, user) : fs;
  }

  /** Jails of roots no user of `config` has and no connection uses close once their last operation ends. */
  reload(config: ServerConfig): void {
    for (const u of config.users) if (this.#rules.has(u.username)) this.#rules.set(u.username, u.folders);
    const roots = new Set(config.users.map((u) => u.root));
    for (const jails of [this.#jails, this.#strict])
      for (const [root, jail] of jails) {
        if (roots.has(root) || this.#opts.inUse(root)) continue;
        jails.delete(root);
        void jail.close();
      }
  }

  async close(): Promise<void> {
    for (const j of [...this.#jails.values(), ...this.#strict.values()]) await j.close();
    this.#jails.clear();
    this.#strict.clear();
  }
}

function opened(jails: Map<string, Jail>, root: string, open: () => Jail): Jail {
  let jail = jails.get(root);
  if (!jail) {
    jail = open();
    jails.set(root, jail);
  }
  return jail;
}
