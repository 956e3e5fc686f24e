import { describe, expect, it } from 'vitest';
import { storeFailureDecision, toDecision } from '../src/decision.js';
import { checkHeadersOption, HeaderWriter, rateLimitHeaders, retryAfterSeconds } from '../src/headers.js';
import { parsePolicies } from '../src/rate.js';
import type { Decision, PolicyDecision } from '../src/types.js';

const one = parsePolicies('5/15m', { prefix: 'p:' });
const two = parsePolicies(['10/s', { limit: 1000, window: '1h', name: 'hourly' }], { prefix: 'p:' });

function decision(
  parts: Array<Partial<PolicyDecision> & { policy: string; limit: number; windowMs: number }>,
): Decision {
  return toDecision(
    parts.map((p) => ({ allowed: true, remaining: 0, resetMs: 0, retryAfterMs: 0, ...p })),
    false,
    false,
  );
}

function headersOf(writer: HeaderWriter, d: Decision): Record<string, string> {
  const out: Record<string, string> = {};
  writer.write(d, { setHeader: (name, value) => (out[name] = value) });
  return out;
}

describe('HeaderWriter', () => {
  it('writes draft-11 by default, with t rounded up to whole seconds', () => {
    const d = decision([{ policy: '5-in-15m', limit: 5, windowMs: 900_000, remaining: 4, resetMs: 899_001 }]);
    expect(headersOf(new HeaderWriter(undefined, one), d)).toEqual({
      'RateLimit-Policy': '"5-in-15m";q=5;w=900',
      RateLimit: '"5-in-15m";r=4;t=900',
    });
  });

  it('lists one item per policy, in order', () => {
    const d = decision([
      { policy: '10-in-1s', limit: 10, windowMs: 1000, remaining: 9, resetMs: 100 },
      { policy: 'hourly', limit: 1000, windowMs: 3_600_000, remaining: 999, resetMs: 3_600_000 },
    ]);
    expect(headersOf(new HeaderWriter('draft-11', two), d)).toEqual({
      'RateLimit-Policy': '"10-in-1s";q=10;w=1, "hourly";q=1000;w=3600',
      RateLimit: '"10-in-1s";r=9;t=1, "hourly";r=999;t=3600',
    });
  });

  it('writes draft-7, draft-6 and legacy from the most restrictive policy', () => {
    const d = decision([
      { policy: '10-in-1s', limit: 10, windowMs: 1000, remaining: 9, resetMs: 100 },
      { policy: 'hourly', limit: 1000, windowMs: 3_600_000, remaining: 3, resetMs: 1_800_500 },
    ]);
    expect(headersOf(new HeaderWriter('draft-7', two), d)).toEqual({
      'RateLimit-Policy': '10;w=1, 1000;w=3600',
      RateLimit: 'limit=1000, remaining=3, reset=1801',
    });
    const now = Math.ceil(Date.now() / 1000);
    const h = headersOf(new HeaderWriter(['draft-6', 'legacy'], two), d);
    expect(h).toMatchObject({
      'RateLimit-Policy': '10;w=1, 1000;w=3600',
      'RateLimit-Limit': '1000',
      'RateLimit-Remaining': '3',
      'RateLimit-Reset': '1801',
      'X-RateLimit-Limit': '1000',
      'X-RateLimit-Remaining': '3',
    });
    expect(Number(h['X-RateLimit-Reset'])).toBeGreaterThanOrEqual(now + 1801);
    expect(Number(h['X-RateLimit-Reset'])).toBeLessThanOrEqual(now + 1803);
  });

  it('never writes a negative, NaN or fractional number', () => {
    const d = decision([
      { policy: '5-in-15m', limit: 5, windowMs: 900_000, remaining: -3, resetMs: Number.NaN },
    ]);
    expect(headersOf(new HeaderWriter(['draft-6', 'legacy'], one), d)).toMatchObject({
      'RateLimit-Remaining': '0',
      'RateLimit-Reset': '0',
    });
    expect(
      headersOf(
        new HeaderWriter('draft-11', one),
        decision([{ policy: '5-in-15m', limit: 5, windowMs: 900_000, remaining: 2.7, resetMs: -5 }]),
      ).RateLimit,
    ).toBe('"5-in-15m";r=2;t=0');
  });

  it('writes nothing for decisions made without a store (degraded open or closed)', () => {
    const writer = new HeaderWriter(['draft-11', 'legacy'], one);
    expect(headersOf(writer, storeFailureDecision(one, 'open', 1000))).toEqual({});
    expect(headersOf(writer, storeFailureDecision(one, 'closed', 1000))).toEqual({});
    expect(
      headersOf(
        new HeaderWriter(false, one),
        decision([{ policy: '5-in-15m', limit: 5, windowMs: 900_000 }]),
      ),
    ).toEqual({});
  });
});

describe('retryAfterSeconds', () => {
  it('rounds up and is at least 1', () => {
    const at = (retryAfterMs: number) =>
      retryAfterSeconds({ ...decision([{ policy: 'a', limit: 1, windowMs: 1000 }]), retryAfterMs });
    expect([at(0), at(1), at(999), at(1000), at(1001), at(Number.NaN), at(-5)]).toEqual([
      1, 1, 1, 1, 2, 1, 1,
    ]);
  });
});

describe('checkHeadersOption', () => {
  it('accepts the standards, arrays of compatible ones, and false', () => {
    expect(checkHeadersOption(undefined)).toEqual(['draft-11']);
    expect(checkHeadersOption(false)).toEqual([]);
    expect(checkHeadersOption(['draft-11', 'legacy', 'legacy'])).toEqual(['draft-11', 'legacy']);
    expect(checkHeadersOption(['draft-6', 'draft-7'])).toEqual(['draft-6', 'draft-7']);
  });

  it('rejects unknown and conflicting values with a hint', () => {
    expect(() => checkHeadersOption(true)).toThrowError(
      /FLOODGATE_INVALID_OPTION: headers true is not a header standard; write one of "draft-11"/,
    );
    expect(() => checkHeadersOption('draft-8')).toThrowError(/not a header standard/);
    expect(() => checkHeadersOption(['draft-11', 'draft-6'])).toThrowError(/pick one of them/);
  });
});

describe('rateLimitHeaders', () => {
  it('returns the headers of one decision, Retry-After included when denied', () => {
    const d = toDecision(
      [
        {
          policy: '5-in-15m',
          limit: 5,
          windowMs: 900_000,
          allowed: false,
          remaining: 0,
          resetMs: 10_000,
          retryAfterMs: 2_500,
        },
      ],
      false,
      false,
    );
    expect(rateLimitHeaders(d, one)).toEqual({
      'RateLimit-Policy': '"5-in-15m";q=5;w=900',
      RateLimit: '"5-in-15m";r=0;t=10',
      'Retry-After': '3',
    });
  });
});
