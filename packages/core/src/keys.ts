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
  // What a dual-stack socket reports for an IPv4 client: take the IPv4 part without parsing.
  if (ip.startsWith('::ffff:') && ip.indexOf(':', 7) === -1 && ip.indexOf('.', 7) !== -1) {
    const ipv4 = ip.slice(7);
    if (isIpv4(ipv4)) return ipv4;
  }
  const groups = parseIpv6(ip);
  if (groups === undefined) return ip;
  const ipv4 = embeddedIpv4(groups);
  if (ipv4 !== undefined) return ipv4;
  if (subnet === false || subnet === 128) return formatIpv6(groups);
  maskGroups(groups, subnet);
  return `${formatIpv6(groups)}/${subnet}`;
}

/**
 * Eight 16-bit groups, or undefined when `text` is not an IPv6 address. A zone (`%eth0`) is dropped.
 * One pass over the characters, no regex and no intermediate strings: it runs for every IPv6 request.
 */
export function parseIpv6(text: string): number[] | undefined {
  let end = text.indexOf('%');
  if (end === -1) end = text.length;
  if (end < 2 || end > 45) return undefined;
  const groups: number[] = [];
  /** Where "::" stands among the groups, or -1. */
  let gap = -1;
  let i = 0;
  if (text.charCodeAt(0) === COLON) {
    if (text.charCodeAt(1) !== COLON) return undefined;
    gap = 0;
    i = 2;
  }
  while (i < end) {
    const start = i;
    let value = 0;
    while (i < end) {
      const digit = hexDigit(text.charCodeAt(i));
      if (digit < 0) break;
      value = value * 16 + digit;
      i++;
    }
    if (i < end && text.charCodeAt(i) === DOT) {
      // A dotted IPv4 tail ("::ffff:1.2.3.4") is the last two groups written in decimal.
      if (groups.length > 6 || !pushIpv4(text, start, end, groups)) return undefined;
      i = end;
      break;
    }
    const digits = i - start;
    if (digits === 0 || digits > 4) return undefined;
    groups.push(value);
    if (i === end) break;
    if (text.charCodeAt(i) !== COLON) return undefined;
    i++;
    if (i < end && text.charCodeAt(i) === COLON) {
      if (gap !== -1) return undefined;
      gap = groups.length;
      i++;
    } else if (i === end) {
      return undefined;
    }
  }
  if (gap === -1) return groups.length === 8 ? groups : undefined;
  if (groups.length > 7) return undefined;
  const full = [0, 0, 0, 0, 0, 0, 0, 0];
  for (let g = 0; g < gap; g++) full[g] = groups[g];
  const tail = groups.length - gap;
  for (let g = 0; g < tail; g++) full[8 - tail + g] = groups[gap + g];
  return full;
}

const COLON = 58;
const DOT = 46;

function hexDigit(code: number): number {
  if (code >= 48 && code <= 57) return code - 48;
  if (code >= 97 && code <= 102) return code - 87;
  if (code >= 65 && code <= 70) return code - 55;
  return -1;
}

/** Parse "a.b.c.d" in text[start, end) and push it as two groups; false if it is not one. */
function pushIpv4(text: string, start: number, end: number, groups: number[]): boolean {
  let parts = 0;
  let value = 0;
  let digits = 0;
  let high = 0;
  for (let i = start; i <= end; i++) {
    const code = i === end ? DOT : text.charCodeAt(i);
    if (code === DOT) {
      if (digits === 0 || value > 255 || parts === 4) return false;
      parts++;
      if (parts === 1 || parts === 3) high = value;
      else groups.push((high << 8) | value);
      value = 0;
      digits = 0;
    } else if (code >= 48 && code <= 57 && digits < 3) {
      value = value * 10 + (code - 48);
      digits++;
    } else {
      return false;
    }
  }
  return parts === 4;
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

/** Dotted-quad check without allocating: four parts of 1-3 digits, each <= 255. */
function isIpv4(text: string): boolean {
  let parts = 0;
  let value = 0;
  let digits = 0;
  for (let i = 0; i <= text.length; i++) {
    const code = i === text.length ? DOT : text.charCodeAt(i);
    if (code === DOT) {
      if (digits === 0 || value > 255 || ++parts > 4) return false;
      value = 0;
      digits = 0;
    } else if (code >= 48 && code <= 57 && digits < 3) {
      value = value * 10 + (code - 48);
      digits++;
    } else {
      return false;
    }
  }
  return parts === 4;
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
  if (bestStart === -1) return joinHex(groups, 0, 8);
  return `${joinHex(groups, 0, bestStart)}::${joinHex(groups, bestStart + bestLength, 8)}`;
}

function joinHex(groups: readonly number[], from: number, to: number): string {
  let text = '';
  for (let i = from; i < to; i++) text += i === from ? groups[i].toString(16) : `:${groups[i].toString(16)}`;
  return text;
}
