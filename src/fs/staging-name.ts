/**
 * The prefix of atomic uploads' hidden names (src/sftp/staged-upload.ts), here at the seam so that
 * FileSystem decorators (src/folders/) can tell the server's own hidden files from a client's.
 */
export const STAGING_PREFIX = '.sftp-chroot-upload.';
