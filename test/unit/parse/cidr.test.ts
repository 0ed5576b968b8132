import { describe, it, expect } from 'vitest';
import { addressInList, parseCidrList } from '../../../src/parse/cidr.js';

function list(entries: string[]) {
  const l = parseCidrList(entries);
  if (l instanceof Error) throw l;
  return l;
}

describe('CIDR lists', () => {
  it('hold single addresses and ranges of both families', () => {
    const l = list(['192.0.2.7', '10.0.0.0/8', '2001:db8::/32']);
    expect(addressInList(l, '192.0.2.7')).toBe(true);
    expect(addressInList(l, '192.0.2.8')).toBe(false);
    expect(addressInList(l, '10.255.0.1')).toBe(true);
    expect(addressInList(l, '2001:db8:1::5')).toBe(true);
    expect(addressInList(l, '2001:db9::5')).toBe(false);
  });

  it('match an IPv4-mapped IPv6 address as its IPv4 address', () => {
    expect(addressInList(list(['10.0.0.0/8']), '::ffff:10.1.2.3')).toBe(true);
  });

  it('name the first entry that is not an address or range', () => {
    for (const bad of ['10.0.0.0/33', '::/129', 'example.org', '10.0.0.0/8x', '10.0.0.0/']) {
      expect(parseCidrList(['127.0.0.1', bad])).toEqual(new Error(`"${bad}" is not an IP address or CIDR range (expected e.g. "192.0.2.0/24" or "2001:db8::/32")`));
    }
  });

  it('empty lists match nothing', () => {
    expect(addressInList(list([]), '127.0.0.1')).toBe(false);
  });
});
