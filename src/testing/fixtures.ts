/**
 * Fixture trees (`files: { 'in/a.csv': 'x,y\n', 'empty/': null }`): checked whole before anything
 * is created, then written through the jail like any helper write. A key is a path inside the root;
 * one that would climb out of it is a mistake in the test, reported by name, never rewritten.
 */
import { virtualPath, type RootFiles } from './files.js';

export type FixtureValue = string | Buffer | null;
export type FixtureTree = Record<string, FixtureValue>;

const ACCEPTED = 'a string, a Buffer, or null (a directory)';

/** Why `key` names no place inside the root, or undefined if it does. */
function keyProblem(key: string): string | undefined {
  if (key === '') return 'is empty';
  if (key.includes('\0')) return 'contains a NUL byte';
  let depth = 0;
  for (const part of key.split('/')) {
    if (part === '..') depth--;
    else if (part !== '' && part !== '.') depth++;
    if (depth < 0) return 'leaves the root (fixture keys are paths inside it; ".." may not climb above "/")';
  }
  return undefined;
}

/** A key ending in "/" or a null value makes a directory. */
export const isDirectoryFixture = (key: string, value: FixtureValue) => value === null || key.endsWith('/');

/** Throws the first problem of `files`, naming the key (`where` says whose: `files` or `users[1].files`). */
export function checkFixtures(files: unknown, where: string): asserts files is FixtureTree {
  if (files === null || typeof files !== 'object' || Array.isArray(files) || Buffer.isBuffer(files)) {
    throw new TypeError(`${where} must be an object of path → ${ACCEPTED}, got ${Array.isArray(files) ? 'an array' : String(files)}`);
  }
  for (const [key, value] of Object.entries(files)) {
    const name = `${where}[${JSON.stringify(key)}]`;
    const problem = keyProblem(key);
    if (problem) throw new Error(`${name} ${problem}`);
    if (value !== null && typeof value !== 'string' && !Buffer.isBuffer(value)) {
      throw new TypeError(`${name} must be ${ACCEPTED}, got ${describe(value)}`);
    }
    if (key.endsWith('/') && value !== null && value.length > 0) {
      throw new TypeError(`${name} ends in "/", so it is a directory: its value must be null, not file content`);
    }
    if (!isDirectoryFixture(key, value) && virtualPath(key) === '/') throw new Error(`${name} names the root itself, which is a directory, not a file`);
  }
}

function describe(v: unknown): string {
  if (v instanceof Uint8Array) return 'a Uint8Array (wrap it: Buffer.from(…))';
  if (typeof v === 'object') return `an object (${(v as object).constructor?.name ?? 'no prototype'})`;
  return v === undefined ? 'undefined' : `${typeof v} ${String(v)}`;
}

/** Writes a checked tree: directories and parents first-come, files replaced. */
export async function writeFixtures(files: RootFiles, tree: FixtureTree): Promise<void> {
  for (const [key, value] of Object.entries(tree)) {
    if (isDirectoryFixture(key, value)) await files.mkdir(key);
    else await files.writeFile(key, value!);
  }
}
