/** The public API: the server as a library. Nothing else is exported. */
export { startServer, type RunningServer, type StartOptions } from './server.js';
export { validateConfig, loadConfigFile, type ServerConfig, type UserRecord } from './config/load.js';
export type { ConfigInput } from './config/schema.js';
export { ConfigError, SftpStatusError, type StatusName } from './errors.js';
export type { AuditEvent, AuditRecord, AuditEventType, AuditSink } from './audit/events.js';
export type { FileSystem, OpenFile, DirReader, FileStat, SetAttrs, OpenFlags, VfsStat } from './fs/file-system.js';
export { hashPassword } from './ssh/passwords.js';
export { startTestServer, type TestServer, type TestServerOptions, type TestUser, type TestUserOptions, type FixtureTree, type ConnectOptions } from './testing.js';
export type { FaultOp, FaultOptions, Faults } from './testing/faults.js';
