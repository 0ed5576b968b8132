/**
 * Every request the server answers, described once. The config's request names, the read-only
 * policy, the extensions VERSION lists, the test double's fault names and the dispatch are all
 * derived from this table. It imports nothing, so config/ and testing/ may import it.
 * To add an OpenSSH extension: a row here, a file in extensions/ exporting its handler, and that
 * handler in dispatch.ts's SERVE (the compiler asks for it); then `npm run schema` for the new name.
 */

/** One row of the table. */
export interface RequestSpec {
  /** As config's denyRequests/allowRequests, audit records and metrics name it. */
  readonly name: string;
  /** The ssh2 request event that carries it (an SFTP v3 packet)… */
  readonly packet?: string;
  /** …or the EXTENDED request name and the version VERSION announces, as OpenSSH's sftp-server. */
  readonly extension?: readonly [wireName: string, version: string];
  /** Changes files: refused for read-only users. OPEN changes files when its flags say so. */
  readonly writes: boolean | 'by-open-flags';
  /** The FileSystem operation the test double's failNext() names to make it fail, if any. */
  readonly fault?: string;
}

/** In the order config.schema.json lists the names. */
export const REQUESTS = [
  { name: 'open', packet: 'OPEN', writes: 'by-open-flags', fault: 'open' },
  { name: 'close', packet: 'CLOSE', writes: false, fault: 'close' },
  { name: 'read', packet: 'READ', writes: false, fault: 'read' },
  { name: 'write', packet: 'WRITE', writes: true, fault: 'write' },
  { name: 'lstat', packet: 'LSTAT', writes: false, fault: 'lstat' },
  { name: 'fstat', packet: 'FSTAT', writes: false, fault: 'fstat' },
  { name: 'setstat', packet: 'SETSTAT', writes: true, fault: 'setstat' },
  { name: 'fsetstat', packet: 'FSETSTAT', writes: true, fault: 'fsetstat' },
  { name: 'opendir', packet: 'OPENDIR', writes: false, fault: 'opendir' },
  { name: 'readdir', packet: 'READDIR', writes: false, fault: 'readdir' },
  { name: 'remove', packet: 'REMOVE', writes: true, fault: 'remove' },
  { name: 'mkdir', packet: 'MKDIR', writes: true, fault: 'mkdir' },
  { name: 'rmdir', packet: 'RMDIR', writes: true, fault: 'rmdir' },
  { name: 'realpath', packet: 'REALPATH', writes: false, fault: 'realpath' },
  { name: 'stat', packet: 'STAT', writes: false, fault: 'stat' },
  { name: 'rename', packet: 'RENAME', writes: true, fault: 'rename' },
  { name: 'readlink', packet: 'READLINK', writes: false, fault: 'readlink' },
  { name: 'symlink', packet: 'SYMLINK', writes: true, fault: 'symlink' },
  { name: 'posix-rename', extension: ['posix-rename@openssh.com', '1'], writes: true, fault: 'posix-rename' },
  { name: 'statvfs', extension: ['statvfs@openssh.com', '2'], writes: false, fault: 'statvfs' },
  { name: 'fstatvfs', extension: ['fstatvfs@openssh.com', '2'], writes: false, fault: 'fstatvfs' },
  { name: 'hardlink', extension: ['hardlink@openssh.com', '1'], writes: true, fault: 'hardlink' },
  { name: 'fsync', extension: ['fsync@openssh.com', '1'], writes: false, fault: 'fsync' },
  { name: 'lsetstat', extension: ['lsetstat@openssh.com', '1'], writes: true, fault: 'lsetstat' },
  { name: 'limits', extension: ['limits@openssh.com', '1'], writes: false },
  // Resolves with the filesystem's realpath: failNext('realpath') fails it too.
  { name: 'expand-path', extension: ['expand-path@openssh.com', '1'], writes: false, fault: 'realpath' },
  { name: 'copy-data', extension: ['copy-data', '1'], writes: true, fault: 'copy-data' },
  { name: 'home-directory', extension: ['home-directory', '1'], writes: false },
  { name: 'users-groups-by-id', extension: ['users-groups-by-id@openssh.com', '1'], writes: false },
] as const satisfies readonly RequestSpec[];

type Row = (typeof REQUESTS)[number];
export type RequestName = Row['name'];
/** The names as a tuple type, for z.enum(). */
type NamesOf<T extends readonly { name: string }[]> = { readonly [K in keyof T]: T[K] extends { name: infer N } ? N : never };
type Names = NamesOf<typeof REQUESTS>;

export const REQUEST_NAMES = REQUESTS.map((r) => r.name) as unknown as Names;

/** Requests refused for read-only users (OPEN decides by its flags: changesFiles()). */
export const WRITES: ReadonlySet<RequestName> = new Set(REQUESTS.filter((r) => r.writes === true).map((r) => r.name));

/** The extensions VERSION lists, with the versions OpenSSH announces. */
export const SERVER_EXTENSIONS: readonly (readonly [string, string])[] = REQUESTS.flatMap((r) => ('extension' in r ? [r.extension] : []));

export type FaultName = Extract<Row, { fault: string }>['fault'];
/** The test double's failNext() names, each once. */
export const FAULT_NAMES: readonly FaultName[] = [...new Set(REQUESTS.flatMap((r) => ('fault' in r ? [r.fault] : [])))];

/** ssh2's request events to the request each carries. */
export const PACKET_REQUESTS: readonly (readonly [event: string, request: RequestName])[] = REQUESTS.flatMap((r) =>
  'packet' in r ? [[r.packet, r.name] as const] : [],
);

/** The session has always accepted EXTENDED names with or without "@openssh.com". */
const unsuffixed = (wireName: string): string => wireName.replace(/@openssh\.com$/, '');
const BY_EXTENSION: ReadonlyMap<string, RequestName> = new Map(
  REQUESTS.flatMap((r) => ('extension' in r ? [[unsuffixed(r.extension[0]), r.name] as const] : [])),
);

/** The request an EXTENDED name carries; undefined for one this server does not know. */
export function extensionRequest(wireName: string): RequestName | undefined {
  return BY_EXTENSION.get(unsuffixed(wireName));
}
