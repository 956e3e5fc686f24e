/**
 * Request keys as hostile or careless clients make them: any Unicode (lone surrogates included),
 * control characters, CR/LF, NUL, braces (a Redis Cluster hash tag), '#', '%', and keys far past any
 * sensible length. A fixed seed, so a failure names the same keys on every run.
 */
import fc from 'fast-check';

const ODD_UNITS = fc.constantFrom(
  '{',
  '}',
  '#',
  '%',
  '\r',
  '\n',
  '\u0000',
  '\u007f',
  ' ',
  ':',
  '*',
  'a',
  '7',
  'é',
  '🦀',
);

const KEY = fc.oneof(
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 200 }),
  fc.string({ unit: ODD_UNITS, minLength: 1, maxLength: 80 }),
  fc.string({ minLength: 60, maxLength: 70 }), // around the longest key kept as it is (64)
  fc.string({ minLength: 1000, maxLength: 20_000 }),
);

/**
 * `count` distinct non-empty keys (an empty key is refused by design, and tested apart), none longer
 * than `maxLength` (a key sent in an HTTP header must fit Node's 16 KB header limit).
 */
export function fuzzKeys(count: number, { seed = 20261123, maxLength = 1_000_000 } = {}): string[] {
  const odd = ['line\r\nX-Injected: 1', '{slot}', 'nul\u0000byte', 'x'.repeat(1_000_000)];
  const keys = new Set<string>(odd.filter((key) => key.length <= maxLength));
  for (const key of fc.sample(KEY, { seed, numRuns: count * 2 })) {
    if (keys.size >= count) break;
    if (key.length <= maxLength) keys.add(key);
  }
  return [...keys];
}

/** A key as a header value (printable ASCII whatever the key), and back on the server side. */
export function keyHeader(key: string): string {
  return Buffer.from(JSON.stringify(key), 'utf8').toString('base64');
}

export function keyFromHeader(value: string | string[] | undefined): string {
  return JSON.parse(Buffer.from(String(value), 'base64').toString('utf8')) as string;
}
