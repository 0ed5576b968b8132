import { describe, it, expect } from 'vitest';
import { ScanOverlay } from '../../../src/quota/scan-overlay.js';
import { regular } from '../../../src/quota/usage.js';

describe('usage while the start-up walk runs', () => {
  it('counts a hard-linked inode once however often the walk meets it', () => {
    const o = new ScanOverlay();
    o.walked('1:10', regular(100));
    o.walked('1:10', regular(100));
    o.walked('1:11', regular(5));
    expect(o.usage).toEqual({ bytes: 105, files: 2 });
  });

  it('counts a file written before the walk reaches it at its new size, once', () => {
    const o = new ScanOverlay();
    o.changed('1:10', regular(100), regular(150));
    o.walked('1:10', regular(150));
    expect(o.usage).toEqual({ bytes: 150, files: 1 });
  });

  it('replaces what the walk counted when the file changes after it passed', () => {
    const o = new ScanOverlay();
    o.walked('1:10', regular(100));
    o.changed('1:10', regular(100), regular(40));
    o.changed('1:10', regular(40), regular(70));
    expect(o.usage).toEqual({ bytes: 70, files: 1 });
  });

  it('drops a file removed before or after the walk met it, even if the walk meets it late', () => {
    const o = new ScanOverlay();
    o.walked('1:10', regular(100));
    o.changed('1:10', regular(100), null);
    o.changed('1:11', regular(7), null);
    o.walked('1:11', regular(7));
    expect(o.usage).toEqual({ bytes: 0, files: 0 });
  });

  it('counts a file created during the walk whether or not the walk sees it', () => {
    const o = new ScanOverlay();
    o.changed('1:12', null, regular(0));
    o.changed('1:12', regular(0), regular(30));
    o.walked('1:12', regular(30));
    o.changed('1:13', null, regular(0));
    expect(o.usage).toEqual({ bytes: 30, files: 2 });
  });
});
