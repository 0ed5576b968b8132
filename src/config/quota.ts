/** The quota setting (users and groups): bytes and files a user's root may hold (src/quota/). */
import { z } from 'zod';

export const quotaSchema = z
  .strictObject({
    bytes: z
      .number()
      .int()
      .positive()
      .max(Number.MAX_SAFE_INTEGER)
      .optional()
      .describe('Bytes the root may hold: the sizes of its regular files, each hard-linked file once; absent: not limited'),
    files: z
      .number()
      .int()
      .positive()
      .max(Number.MAX_SAFE_INTEGER)
      .optional()
      .describe('Files, directories and symlinks the root may hold (each hard-linked file once); absent: not limited'),
  })
  .optional()
  .describe(
    'Disk quota of the root: a write, truncation, copy or new name past it fails with "Quota exceeded"; df in sftp shows it. A user\'s own value replaces the group\'s; absent: no quota and no cost',
  );

export type QuotaSetting = NonNullable<z.output<typeof quotaSchema>>;
