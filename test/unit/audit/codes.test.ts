import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { AUTH_FAILURE_REASONS, HOOK_REFUSED_REASONS, WARNING_CODES } from '../../../src/audit/codes.js';

const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');

/** The `code` words after `after` in the README audit table row for `event`. */
function listed(event: string, after: string): string[] {
  const row = readme.split('\n').find((l) => l.startsWith(`| \`${event}\` |`))!;
  const text = row.split('|')[2]!;
  return [...text.slice(text.indexOf(after) + after.length).matchAll(/`([a-z-]+)`/g)].map((m) => m[1]!).sort();
}

describe('audit codes', () => {
  it('every auth.failure reason is listed in the README audit table, and no other', () => {
    expect(listed('auth.failure', '`reason`:')).toEqual([...AUTH_FAILURE_REASONS].sort());
  });

  it('every server.warning code is listed in the README audit table, and no other', () => {
    expect(listed('server.*', '`code`:')).toEqual([...WARNING_CODES].sort());
  });

  it('every hook.refused reason is listed in the README audit table, and no other', () => {
    expect(listed('hook.refused', '`reason`:')).toEqual([...HOOK_REFUSED_REASONS].sort());
  });
});
