/** CIDR lists (users' allowFrom, listen.proxyTrusted): "10.0.0.0/8", "2001:db8::/32", "192.0.2.7". */
import { BlockList, isIPv6 } from 'node:net';

/** The addresses `list` names, or an Error naming the first entry that is not an address or range. */
export function parseCidrList(list: readonly string[]): BlockList | Error {
  const bl = new BlockList();
  for (const entry of list) {
    const [addr, bits] = entry.split('/');
    const type = isIPv6(addr ?? '') ? 'ipv6' : 'ipv4';
    try {
      if (bits === undefined) bl.addAddress(addr!, type);
      else {
        const prefix = Number(bits);
        if (!/^\d+$/.test(bits) || prefix > (type === 'ipv6' ? 128 : 32)) throw new Error('bad prefix');
        bl.addSubnet(addr!, prefix, type);
      }
    } catch {
      return new Error(`"${entry}" is not an IP address or CIDR range (expected e.g. "192.0.2.0/24" or "2001:db8::/32")`);
    }
  }
  return bl;
}

/** Whether `ip` is in `list`; an IPv4-mapped IPv6 address (::ffff:a.b.c.d) counts as its IPv4 one. */
export function addressInList(list: BlockList, ip: string): boolean {
  const plain = ip.startsWith('::ffff:') ? ip.slice(7) : ip;
  return list.check(plain, isIPv6(plain) ? 'ipv6' : 'ipv4');
}
