/** The `shared` setting: a Redis or Valkey server several instances keep common state in (src/shared/). */
import { z } from 'zod';

export const sharedSchema = z
  .strictObject({
    redis: z
      .string()
      .regex(/^(rediss?:\/\/.+|unix:\/\/\/.+)$/, 'expected "redis://host:6379", "rediss://…" (TLS) or "unix:///path/to/redis.sock"')
      .describe('The Redis or Valkey server: "redis://[user:password@]host:6379[/db]", "rediss://…" for TLS, or "unix:///run/redis/redis.sock"'),
    keyPrefix: z.string().default('sftp-chroot:').describe('Prefix of every key this server writes; instances that share roots must share it'),
    leaseSeconds: z
      .number()
      .int()
      .min(5)
      .max(3600)
      .default(30)
      .describe("How long a vanished instance's sessions and bandwidth shares keep counting (renewed every third of it while it runs)"),
  })
  .optional()
  .describe(
    'State shared by several instances behind a load balancer: sessions per user, bandwidth limits and quota usage count across all of them. Absent: each process counts alone (one instance needs nothing more)',
  );

export type SharedSetting = NonNullable<z.output<typeof sharedSchema>>;
