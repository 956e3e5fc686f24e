// The circuit breaker as a state machine, driven by a test clock: every transition at an exact time.
import { describe, expect, it } from 'vitest';
import { FloodgateError } from '../src/errors.js';
import {
  type BreakerState,
  CircuitBreaker,
  DEFAULT_BREAKER,
  parseBreakerOptions,
} from '../src/resilience/circuit-breaker.js';

function breaker(settings = { threshold: 3, windowMs: 1000, cooldownMs: 500 }) {
  let now = 10_000;
  const moves: string[] = [];
  const b = new CircuitBreaker(
    settings,
    (from: BreakerState, to: BreakerState) => moves.push(`${from}->${to}@${now}`),
    () => now,
  );
  return {
    b,
    moves,
    at: (t: number) => {
      now = t;
    },
  };
}

describe('CircuitBreaker', () => {
  it('opens on the threshold-th failure inside the window, not before', () => {
    const { b, moves, at } = breaker();
    expect(b.admit()).toBe('call');
    b.failed('call');
    at(10_400);
    b.failed('call');
    expect(b.state).toBe('closed');
    expect(b.snapshot().failures).toBe(2);
    at(10_900);
    b.failed('call');
    expect(b.state).toBe('open');
    expect(moves).toEqual(['closed->open@10900']);
    expect(b.snapshot()).toMatchObject({ state: 'open', opens: 1, retryInMs: 500 });
  });

  it('forgets failures older than the window', () => {
    const { b, at } = breaker();
    b.failed('call');
    b.failed('call');
    at(11_000); // both failures are now exactly windowMs old: out of the window
    b.failed('call');
    expect(b.state).toBe('closed');
    expect(b.snapshot().failures).toBe(1);
  });

  it('skips the primary for the cool-down, then lets exactly one probe through', () => {
    const { b, at, moves } = breaker();
    for (let i = 0; i < 3; i++) b.failed('call');
    at(10_499);
    expect(b.admit()).toBe('skip');
    expect(b.retryInMs()).toBe(1);
    at(10_500);
    expect(b.admit()).toBe('probe');
    expect(b.state).toBe('half-open');
    // While the probe is out, everyone else is skipped: no stampede on a recovering backend.
    expect(b.admit()).toBe('skip');
    expect(b.admit()).toBe('skip');
    b.succeeded('probe');
    expect(b.state).toBe('closed');
    expect(b.admit()).toBe('call');
    expect(moves).toEqual(['closed->open@10000', 'open->half-open@10500', 'half-open->closed@10500']);
  });

  it('a failed probe opens the breaker for another full cool-down', () => {
    const { b, at } = breaker();
    for (let i = 0; i < 3; i++) b.failed('call');
    at(10_600);
    expect(b.admit()).toBe('probe');
    at(10_850);
    b.failed('probe');
    expect(b.state).toBe('open');
    expect(b.retryInMs()).toBe(500);
    at(11_349);
    expect(b.admit()).toBe('skip');
    at(11_350);
    expect(b.admit()).toBe('probe');
    expect(b.snapshot().opens).toBe(2);
  });

  it('late answers of calls admitted before the breaker opened change nothing', () => {
    const { b } = breaker();
    for (let i = 0; i < 3; i++) b.failed('call');
    b.succeeded('call'); // a slow success landing after the breaker opened
    expect(b.state).toBe('open');
    b.failed('call'); // a slow failure: does not extend the cool-down
    expect(b.retryInMs()).toBe(500);
  });

  it('a timeout with no answer at all since that call was sent opens at once (hung, not slow)', () => {
    const { b, at } = breaker({ threshold: 5, windowMs: 1000, cooldownMs: 500 });
    at(10_250);
    b.failed('call', 10_000); // never answered anything: hung
    expect(b.state).toBe('open');
  });

  it('a timeout while other calls are being answered counts once toward the threshold', () => {
    const { b, at } = breaker({ threshold: 3, windowMs: 1000, cooldownMs: 500 });
    at(10_100);
    b.succeeded('call');
    at(10_250);
    b.failed('call', 10_000); // sent at 10000, but the store answered at 10100: slow, not hung
    expect(b.state).toBe('closed');
    expect(b.snapshot().failures).toBe(1);
    at(10_300);
    b.failed('call'); // an error reply is an answer too
    at(10_600);
    b.failed('call', 10_350); // the last answer (10300) predates this call: silent since -> hung
    expect(b.state).toBe('open');
  });

  it('threshold 1 opens on the first failure', () => {
    const { b } = breaker({ threshold: 1, windowMs: 1, cooldownMs: 1 });
    b.failed('call');
    expect(b.state).toBe('open');
  });
});

describe('breaker options', () => {
  it('defaults, false, and partial objects', () => {
    expect(parseBreakerOptions(undefined)).toEqual({ threshold: 5, windowMs: 5000, cooldownMs: 500 });
    expect(parseBreakerOptions(true)).toBe(DEFAULT_BREAKER);
    expect(parseBreakerOptions(false)).toBe(false);
    expect(parseBreakerOptions({ threshold: 2 })).toEqual({ threshold: 2, windowMs: 5000, cooldownMs: 500 });
  });

  it.each([
    [{ threshold: 0 }, /breaker\.threshold 0 must be a whole number from 1 to 10000/],
    [{ threshold: 2.5 }, /breaker\.threshold 2.5/],
    [{ windowMs: -1 }, /breaker\.windowMs -1/],
    [{ cooldownMs: Number.NaN }, /breaker\.cooldownMs NaN/],
    [{ cooldownMs: '1s' }, /breaker\.cooldownMs "1s"/],
    [{ cooldown: 100 }, /did you mean "cooldownMs"/],
    ['on', /breaker "on" must be an object or false/],
  ])('rejects %j', (value, message) => {
    let error: unknown;
    try {
      parseBreakerOptions(value);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(FloodgateError);
    expect((error as FloodgateError).code).toMatch(/FLOODGATE_(INVALID|UNKNOWN)_OPTION/);
    expect((error as Error).message).toMatch(message);
  });
});
