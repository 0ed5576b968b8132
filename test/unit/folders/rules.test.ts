import { describe, it, expect } from 'vitest';
import { tmpdir } from 'node:os';
import { FolderRules, covers, ruleKeyProblem } from '../../../src/folders/rules.js';
import { validateConfig } from '../../../src/config/load.js';
import { ConfigError } from '../../../src/errors.js';

describe('folder rules', () => {
  const rules = new FolderRules({ '/in': ['list', 'upload'], '/in/keep': ['list'], '/out': ['*'], '/none': [] });

  it('a prefix covers itself and what is below it, not a name that merely starts the same', () => {
    expect([covers('/in', '/in'), covers('/in', '/in/a'), covers('/in', '/inbox'), covers('/', '/x')]).toEqual([true, true, false, true]);
  });

  it('the longest prefix wins', () => {
    expect(rules.allows('/in/a', 'upload')).toBe(true);
    expect(rules.allows('/in/keep/a', 'upload')).toBe(false);
    expect(rules.ruleFor('/in/keep/x')?.prefix).toBe('/in/keep');
  });

  it('a path under no rule may do everything; "*" grants all; [] grants nothing', () => {
    expect(rules.allows('/elsewhere', 'delete')).toBe(true);
    expect(rules.allows('/out/x', 'chmod')).toBe(true);
    expect(rules.allows('/none/x', 'list')).toBe(false);
  });

  it('ruledAtOrBelow finds a rule a move of the path would drag along', () => {
    expect(rules.ruledAtOrBelow('/in')).toBeDefined();
    expect(rules.ruledAtOrBelow('/')).toBeDefined();
    expect(rules.ruledAtOrBelow('/in/a')).toBeUndefined();
  });

  it('rule keys must be plain absolute paths', () => {
    expect(['/', '/inbox', '/a/b'].map(ruleKeyProblem)).toEqual([undefined, undefined, undefined]);
    for (const bad of ['inbox', '/inbox/', '/a//b', '/a/../b', '/./a']) expect(ruleKeyProblem(bad), bad).toBeDefined();
  });

  it('a config names a bad folder key, and an unknown permission with the known ones', () => {
    const problems = (folders: unknown) => {
      try {
        validateConfig({ users: [{ username: 'u', password: 'p', root: tmpdir(), folders }] }, { baseDir: tmpdir() });
      } catch (e) {
        if (e instanceof ConfigError) return e.issues.map((i) => `${i.path}: ${i.message}`).join('\n');
        throw e;
      }
      return '';
    };
    expect(problems({ 'inbox/': ['list'] })).toMatch(/^users\[0\]\.folders\.inbox\/: expected an absolute virtual path/);
    expect(problems({ '/out': ['read'] })).toMatch(/^users\[0\]\.folders\.\/out\[0\]: .*"list"/);
  });
});
