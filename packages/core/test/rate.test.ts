import { describe, expect, it } from 'vitest';
import { FloodgateError } from '../src/errors.js';
import { Limiter } from '../src/limiter.js';
import { formatDuration, parseDuration, parsePolicies, parseRate } from '../src/rate.js';

function errorOf(fn: () => unknown): FloodgateError {
  try {
    fn();
  } catch (error) {
    if (error instanceof FloodgateError) return error;
    throw error;
  }
  throw new Error('expected a FloodgateError');
}

describe('parseRate', () => {
  it.each([
    ['100/min', 100, 60_000],
    ['5/15m', 5, 900_000],
    ['10/s', 10, 1000],
    ['1000/h', 1000, 3_600_000],
    ['2/d', 2, 86_400_000],
    ['10/500ms', 10, 500],
    ['3 / 2 hours', 3, 7_200_000],
    ['7 per minute', 7, 60_000],
    ['1/1.5s', 1, 1500],
  ])('%s -> %i per %i ms', (text, limit, windowMs) => {
    expect(parseRate(text)).toEqual({ limit, windowMs });
  });

  it.each([
    ['100/mn', 'FLOODGATE_INVALID_RATE', /unknown unit "mn" \(did you mean "100\/min"\?\)/],
    ['abc', 'FLOODGATE_INVALID_RATE', /"abc" is not a rate; write a count and a unit, like "100\/min"/],
    ['0/min', 'FLOODGATE_INVALID_RATE', /limit "0\/min" must be a whole number from 1 to 1000000000/],
    ['-1/min', 'FLOODGATE_INVALID_RATE', /"-1\/min" is not a rate/],
    ['10/0s', 'FLOODGATE_INVALID_RATE', /"10\/0s" has an empty or fractional window/],
    ['1.5/min', 'FLOODGATE_INVALID_RATE', /"1.5\/min" is not a rate/],
    ['5/0.5ms', 'FLOODGATE_INVALID_RATE', /fractional window/],
    ['2000000000/s', 'FLOODGATE_INVALID_RATE', /from 1 to 1000000000/],
    ['1/11000d', 'FLOODGATE_INVALID_RATE', /longer than ten years/],
  ])('%s is rejected with %s', (text, code, message) => {
    const error = errorOf(() => parseRate(text));
    expect(error.code).toBe(code);
    expect(error.message).toMatch(message);
  });
});

describe('parseDuration', () => {
  it('reads numbers and unit texts', () => {
    expect([500, '500ms', '10s', '1m', '15m', '1h', '1d', '2.5s'].map((d) => parseDuration(d))).toEqual([
      500, 500, 10_000, 60_000, 900_000, 3_600_000, 86_400_000, 2500,
    ]);
  });

  it('accepts windows above 2^31-1 ms (no timer is involved)', () => {
    expect(parseDuration('30d')).toBe(2_592_000_000);
    expect(parseDuration(2 ** 31 + 5)).toBe(2 ** 31 + 5);
  });

  it.each([
    [Number.NaN, /NaN must be a whole number of milliseconds >= 1/],
    [Number.POSITIVE_INFINITY, /Infinity must be a whole number/],
    [1.5, /1.5 must be a whole number/],
    [0, /0 must be a whole number/],
    [-5, /-5 must be a whole number/],
    ['10 fortnights', /"10 fortnights" is not a duration/],
    ['1mn', /did you mean "1min"\?/],
    [{}, /\{\} is not a duration/],
  ])('%s is rejected', (value, message) => {
    const error = errorOf(() => parseDuration(value));
    expect(error.code).toBe('FLOODGATE_INVALID_OPTION');
    expect(error.message).toMatch(message);
  });

  it('formats windows in the largest exact unit', () => {
    expect([900_000, 3_600_000, 1000, 1500, 86_400_000, 90_000].map(formatDuration)).toEqual([
      '15m',
      '1h',
      '1s',
      '1500ms',
      '1d',
      '90s',
    ]);
  });
});

describe('parsePolicies', () => {
  it('names policies by their rate and tags buckets by algorithm', () => {
    const [policy] = parsePolicies('5/15m', { prefix: 'app:' });
    expect(policy).toEqual({
      name: '5-in-15m',
      limit: 5,
      windowMs: 900_000,
      algorithm: 'sliding-window',
      burst: 5,
      bucket: 'app:5-in-15m:sw',
    });
    const [gcra] = parsePolicies(
      { limit: 10, window: '1s', algorithm: 'gcra', burst: 20, name: 'api' },
      { prefix: '' },
    );
    expect(gcra).toMatchObject({ name: 'api', burst: 20, bucket: 'api:gcra', windowMs: 1000 });
  });

  it('takes a number with the limiter window, and several policies', () => {
    expect(parsePolicies(100, { prefix: '', window: '1m' })[0]).toMatchObject({
      limit: 100,
      windowMs: 60_000,
    });
    expect(parsePolicies(['10/s', '1000/h'], { prefix: '' }).map((p) => p.name)).toEqual([
      '10-in-1s',
      '1000-in-1h',
    ]);
  });

  it.each([
    [{ limit: 100 }, 'FLOODGATE_INVALID_OPTION', /needs a window; write \{ limit: 100, window: "1m" \}/],
    [{ limit: 1.5, window: '1m' }, 'FLOODGATE_INVALID_OPTION', /limit 1.5 must be a whole number/],
    [{ limit: Number.NaN, window: '1m' }, 'FLOODGATE_INVALID_OPTION', /limit NaN/],
    [{ limit: Number.POSITIVE_INFINITY, window: '1m' }, 'FLOODGATE_INVALID_OPTION', /limit Infinity/],
    [
      { limit: 5, window: '1m', algorithm: 'token-buket' },
      'FLOODGATE_INVALID_ALGORITHM',
      /did you mean "token-bucket"\?/,
    ],
    [
      { limit: 5, window: '1m', burst: 10 },
      'FLOODGATE_INVALID_OPTION',
      /burst applies to token-bucket, leaky-bucket, gcra/,
    ],
    [
      { limit: 5, window: '1m', algorithm: 'gcra', burst: 0 },
      'FLOODGATE_INVALID_OPTION',
      /burst 0 must be a whole number/,
    ],
    [{ limit: 5, window: '1m', name: 'has "quotes"' }, 'FLOODGATE_INVALID_OPTION', /printable ASCII/],
    [{ limit: 5, windw: '1m' }, 'FLOODGATE_UNKNOWN_OPTION', /no option "windw"; did you mean "window"\?/],
    [['1/s', '1/s'], 'FLOODGATE_INVALID_OPTION', /two policies share the name "1-in-1s"/],
    [[], 'FLOODGATE_INVALID_OPTION', /empty list/],
    [null, 'FLOODGATE_INVALID_RATE', /null is not a rate/],
  ])('%j is rejected with %s', (option, code, message) => {
    const error = errorOf(() => parsePolicies(option, { prefix: '' }));
    expect(error.code).toBe(code);
    expect(error.message).toMatch(message);
  });
});

describe('Limiter options', () => {
  it.each([
    [{ limit: '5/s', algoritm: 'gcra' }, 'FLOODGATE_UNKNOWN_OPTION', /did you mean "algorithm"\?/],
    [{ limit: '5/s', algorithm: 'leaky' }, 'FLOODGATE_INVALID_ALGORITHM', /"leaky" is unknown/],
    [
      { limit: '5/s', timeoutMs: -1 },
      'FLOODGATE_INVALID_OPTION',
      /timeoutMs -1 must be a whole number of ms/,
    ],
    [
      { limit: '5/s', skipOnError: 'yes' },
      'FLOODGATE_INVALID_OPTION',
      /skipOnError "yes" must be true or false/,
    ],
    [{ limit: '5/s', store: 'mongodb://x' }, 'FLOODGATE_INVALID_URI', /unknown scheme "mongodb:\/\/"/],
    [{ limit: '5/s', store: 42 }, 'FLOODGATE_INVALID_OPTION', /store 42 is not a store/],
    [{}, 'FLOODGATE_INVALID_OPTION', /needs a limit/],
  ])('%j is rejected at construction with %s', (options, code, message) => {
    const error = errorOf(() => new Limiter(options as never));
    expect(error.code).toBe(code);
    expect(error.message).toMatch(message);
  });
});
