/**
 * Client addresses as bucket keys. The address itself comes from the framework (Express `req.ip`,
 * Fastify `request.ip`, Koa `ctx.ip`), which applies the app's trust-proxy setting; this module only
 * normalizes it:
 * - IPv4 stays as it is (`203.0.113.7`);
 * - IPv4 written as IPv6 counts as the IPv4 address: mapped `::ffff:203.0.113.7` (what a dual-stack
 *   socket reports), its hex form `::ffff:cb00:7107`, and NAT64 `64:ff9b::203.0.113.7` (an IPv4 client
 *   seen through a translator; grouping those by /56 would put the whole IPv4 internet in one bucket);
 * - other IPv6 addresses are grouped by their first `subnet` bits (56 by default), because one
 *   subscriber usually holds a whole /56 or /64 and could otherwise rotate through billions of keys.
 */
import { FloodgateError, show } from './errors.js';

/** How many leading bits of an IPv6 address identify one client, or false for the whole address. */
export type Ipv6Subnet = number | false;

export const DEFAULT_IPV6_SUBNET = 56;

/** Validate the `ipv6Subnet` option once, at construction. */
export function checkIpv6Subnet(value: unknown): Ipv6Subnet {
  if (value === undefined) return DEFAULT_IPV6_SUBNET;
  if (value === false) return false;
  if (typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= 128) return value;
  throw new FloodgateError(
    'FLOODGATE_INVALID_OPTION',
    `ipv6Subnet ${show(value)} must be a prefix length from 1 to 128 (like 56 or 64), or false to key on the whole address`,
  );
}

/**
 * The bucket key for a client address: IPv4 as is, IPv4-in-IPv6 as IPv4, IPv6 as its subnet in
 * RFC 5952 form with the prefix length (`2001:db8:ab00::/56`). Returns undefined when there is no
 * address (the socket is already closed, or the server listens on a Unix socket without a proxy
 * telling it the client): the caller must not fall back to one shared bucket.
 * A string that is not an IP address (a misconfigured proxy header) is returned unchanged, so it
 * still counts on its own.
 */
export function ipKey(
  ip: string | undefined | null,
  subnet: Ipv6Subnet = DEFAULT_IPV6_SUBNET,
): string | undefined {
  if (typeof ip !== 'string' || ip.length === 0) return undefined;
  // The common case, IPv4, costs one scan and no allocation.
  if (ip.indexOf(':') === -1) return ip;
  const groups = parseIpv6(ip);
  if (groups === undefined) return ip;
  const ipv4 = embeddedIpv4(groups);
  if (ipv4 !== undefined) return ipv4;
  if (subnet === false || subnet === 128) return formatIpv6(groups);
  maskGroups(groups, subnet);
  return `${formatIpv6(groups)}/${subnet}`;
}

/** Eight 16-bit groups, or undefined when `text` is not an IPv6 address. A zone (`%eth0`) is dropped. */
export function parseIpv6(text: string): number[] | undefined {
  const zone = text.indexOf('%');
  if (zone !== -1) text = text.slice(0, zone);
  if (text.length > 45) return undefined;
  // A trailing dotted IPv4 part ("::ffff:1.2.3.4") is the last two groups written in decimal.
  const lastColon = text.lastIndexOf(':');
  if (text.indexOf('.', lastColon) !== -1) {
    const v4 = parseIpv4(text.slice(lastColon + 1));
    if (v4 === undefined) return undefined;
    const high = ((v4[0] << 8) | v4[1]).toString(16);
    const low = ((v4[2] << 8) | v4[3]).toString(16);
    text = `${text.slice(0, lastColon + 1)}${high}:${low}`;
  }
  const double = text.indexOf('::');
  if (double !== -1 && text.indexOf('::', double + 1) !== -1) return undefined;
  const head = double === -1 ? text : text.slice(0, double);
  const rest = double === -1 ? '' : text.slice(double + 2);
  const headGroups = head === '' ? [] : parseGroups(head);
  const restGroups = rest === '' ? [] : parseGroups(rest);
  if (headGroups === undefined || restGroups === undefined) return undefined;
  const known = headGroups.length + restGroups.length;
  if (double === -1 ? known !== 8 : known > 7) return undefined;
  const zeros = new Array<number>(8 - known).fill(0);
  return [...headGroups, ...zeros, ...restGroups];
}

function parseGroups(text: string): number[] | undefined {
  const parts = text.split(':');
  const groups: number[] = [];
  for (const part of parts) {
    if (part.length === 0 || part.length > 4) return undefined;
    const value = Number.parseInt(part, 16);
    if (Number.isNaN(value) || !/^[0-9a-f]+$/i.test(part)) return undefined;
    groups.push(value);
  }
  return groups;
}

function parseIpv4(text: string): number[] | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const bytes: number[] = [];
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part)) return undefined;
    const value = Number(part);
    if (value > 255) return undefined;
    bytes.push(value);
  }
  return bytes;
}

/** The IPv4 address inside an IPv4-mapped (::ffff:0:0/96) or NAT64 (64:ff9b::/96) address. */
function embeddedIpv4(g: readonly number[]): string | undefined {
  const mapped = g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff;
  const nat64 = g[0] === 0x64 && g[1] === 0xff9b && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0;
  if (!mapped && !nat64) return undefined;
  return `${g[6] >> 8}.${g[6] & 0xff}.${g[7] >> 8}.${g[7] & 0xff}`;
}

function maskGroups(groups: number[], bits: number): void {
  for (let i = 0; i < 8; i++) {
    const keep = Math.min(16, Math.max(0, bits - i * 16));
    groups[i] = keep === 0 ? 0 : groups[i] & ((0xffff << (16 - keep)) & 0xffff);
  }
}

/** RFC 5952 text: lower-case hex, no leading zeros, the longest run (>= 2) of zero groups as "::". */
export function formatIpv6(groups: readonly number[]): string {
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = (from: number, to: number) =>
    groups
      .slice(from, to)
      .map((g) => g.toString(16))
      .join(':');
  if (bestStart === -1) return hex(0, 8);
  return `${hex(0, bestStart)}::${hex(bestStart + bestLength, 8)}`;
}
