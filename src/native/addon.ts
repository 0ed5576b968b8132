/**
 * The native addon, loaded once: one .node file (native/*.c, built by node-gyp to
 * build/Release/jail.node, or shipped in prebuilds/<platform>-<arch>/) that holds two units, each
 * typed by its own module: the jail (src/jail/native.ts) and sockets and the service manager
 * (src/net/native.ts). Neither unit's module imports the other's; both load through here.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

// src/native/addon.ts and dist/native/addon.js (and the dist/cjs bundles) are all two levels below
// the package root, where node-gyp-build finds build/Release (built here) or prebuilds/.
const PACKAGE_ROOT = fileURLToPath(new URL('../..', import.meta.url));

let exports: object | undefined;
let error: Error | undefined;
try {
  const require = createRequire(import.meta.url);
  const nodeGypBuild = require('node-gyp-build') as { path(dir: string): string };
  exports = require(nodeGypBuild.path(PACKAGE_ROOT)) as object;
} catch (e) {
  error = e instanceof Error ? e : new Error(String(e));
}

/** The installed package's root, where build/Release or prebuilds/ hold the addon. */
export function packageRoot(): string {
  return PACKAGE_ROOT;
}

/** Why the addon could not be loaded, if it could not. */
export function loadError(): Error | undefined {
  return error;
}

/**
 * The addon's functions, typed by the caller's interface. If the addon did not load, every
 * function of it throws the load error when called, so importing never fails: the caller decides
 * when to fail (the jail's probe() answers false).
 */
export function addon<T extends object>(): T {
  if (exports !== undefined) return exports as T;
  const failed = error ?? new Error('native addon not loaded');
  return new Proxy({}, { get: () => () => { throw failed; } }) as T;
}
