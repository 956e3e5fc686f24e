/**
 * Redis key layout: `<bucket>{<client>}`. The hash tag `{<client>}` puts one client's keys for every
 * policy of a route in one Cluster slot (one script call, never CROSSSLOT), and spreads clients over
 * the slots. Braces in a bucket are escaped so the first `{` is always ours; a key that is long, not
 * plain printable ASCII, or holds a brace is replaced by its SHA-256, so no client can pick the slot
 * or make Redis hold a huge key.
 */
import { createHash } from 'node:crypto';

/** Longest key text kept as is; anything longer is hashed (43 characters). */
export const MAX_PLAIN_KEY = 64;
/** Printable ASCII without braces, not starting with '#' (the mark of a hashed key). */
const PLAIN_KEY = /^[\x21-\x22\x24-\x7a\x7c\x7e][\x20-\x7a\x7c\x7e]*$/;

/** The client part of a Redis key: the key itself when it is short and plain, else `#` + sha256 (base64url). */
export function clientPart(key: string): string {
  if (key.length <= MAX_PLAIN_KEY && PLAIN_KEY.test(key)) return key;
  return `#${createHash('sha256').update(key, 'utf8').digest('base64url')}`;
}

const escapedBuckets = new Map<string, string>();

/** A bucket with `%`, `{` and `}` percent-escaped (cached: buckets are few). */
export function escapeBucket(bucket: string): string {
  let escaped = escapedBuckets.get(bucket);
  if (escaped === undefined) {
    escaped = /[%{}]/.test(bucket)
      ? bucket.replace(/[%{}]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
      : bucket;
    if (escapedBuckets.size < 10_000) escapedBuckets.set(bucket, escaped);
  }
  return escaped;
}

export function unescapeBucket(escaped: string): string {
  return escaped.replace(/%(25|7B|7D)/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
}

export function redisKey(bucket: string, part: string): string {
  return `${escapeBucket(bucket)}{${part}}`;
}

/** Our keys end in an algorithm tag and a hash tag: `…:fw{client}`. Anything else is not ours. */
const OUR_KEY = /^([^{}]*:(?:fw|sw|sl|tb|lb|gcra))\{([^{}]+)\}$/;

export function parseRedisKey(key: string): { bucket: string; key: string } | undefined {
  const match = OUR_KEY.exec(key);
  return match ? { bucket: unescapeBucket(match[1]), key: match[2] } : undefined;
}

/** SCAN MATCH pattern for every key whose bucket starts with `prefix`. */
export function scanPattern(prefix: string): string {
  return `${escapeBucket(prefix).replace(/[*?[\]\\]/g, (c) => `\\${c}`)}*`;
}

const CRC16_TABLE = (() => {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let bit = 0; bit < 8; bit++)
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    table[i] = crc;
  }
  return table;
})();

/** The Cluster slot of a key whose hash tag is `{part}` (CRC16/XMODEM of the tag, mod 16384). */
export function slotOf(part: string): number {
  let crc = 0;
  // `part` is ASCII by construction (plain key or base64url), so char codes are its bytes.
  for (let i = 0; i < part.length; i++) {
    crc = ((crc << 8) & 0xffff) ^ CRC16_TABLE[((crc >> 8) ^ part.charCodeAt(i)) & 0xff];
  }
  return crc & 0x3fff;
}
