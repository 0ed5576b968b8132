/**
 * The config connections read, and the Authenticator built from it. Both are replaced whole on
 * reload: a login or session already under way keeps the objects it took.
 */
import type { ServerConfig } from '../config/load.js';
import { Authenticator } from '../ssh/auth.js';

export class LiveConfig {
  #config: ServerConfig;
  #auth: Authenticator;

  constructor(config: ServerConfig) {
    this.#config = config;
    this.#auth = new Authenticator(config.users, config.passwordCost);
  }

  reload(config: ServerConfig): void {
    this.#config = config;
    this.#auth = new Authenticator(config.users, config.passwordCost);
  }

  get config(): ServerConfig {
    return this.#config;
  }

  get auth(): Authenticator {
    return this.#auth;
  }
}
