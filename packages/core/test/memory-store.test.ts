/**
 * MemoryStore specifics that the shared conformance suite does not cover: the maxKeys bound and its
 * least-recently-used eviction, reclaiming expired keys without a timer per key, wall-clock jumps of
 * an injected clock, exactness under 10,000 concurrent callers through a Limiter, option validation,
 * and the coarse monotonic clock the store reads by default.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ALGORITHM_NAMES } from '../src/algorithms/index.js';
import { coarseMonotonicClock, monotonicClock } from '../src/clock.js';
import { FloodgateError } from '../src/errors.js';
import { Limiter } from '../src/limiter.js';
import { type LimitOption, parsePolicies } from '../src/rate.js';
import { MemoryStore, type MemoryStoreOptions } from '../src/stores/memory.js';
import type { AlgorithmName, PolicyDecision } from '../src/types.js';

const ORIGIN = 1_728_000_000_000;
let now = ORIGIN;
const clock = () => now;
const stores: MemoryStore[] = [];

function store(options: MemoryStoreOptions = {}): MemoryStore {
  const made = new MemoryStore({ clock, sweepIntervalMs: 0, ...options });
  stores.push(made);
  return made;
}

function policies(limit: LimitOption, algorithm?: AlgorithmName, prefix = 'mt:') {
  return parsePolicies(limit, { prefix, algorithm });
}

afterEach(async () => {
  now = ORIGIN;
  vi.restoreAllMocks();
  for (const made of stores.splice(0)) await made.close();
});

describe('maxKeys and least-recently-used eviction', () => {
  it('evicts the least recently used key, counts it, and keeps the others', async () => {
    const s = store({ maxKeys: 3 });
    const p = policies('5/1m', 'fixed-window');
    await s.consume('a', p, 1);
    await s.consume('b', p, 1);
    await s.consume('c', p, 1);
    await s.consume('a', p, 1); // a is now the most recently used: b is the oldest
    expect(s.size).toBe(3);
    expect(s.evictions).toBe(0);

    await s.consume('d', p, 1);
    expect(s.size).toBe(3);
    expect(s.evictions).toBe(1);
    const remaining = async (key: string) => (await s.peek(key, p))[0].remaining;
    expect(await remaining('b')).toBe(5); // evicted: starts over
    expect(await remaining('a')).toBe(3);
    expect(await remaining('c')).toBe(4);
    expect(await remaining('d')).toBe(4);

    await s.consume('e', p, 1); // c is now the oldest (peek does not count as a use)
    expect(s.evictions).toBe(2);
    expect(await remaining('c')).toBe(5);
    expect(await remaining('a')).toBe(3);
    expect(await remaining('d')).toBe(4);
    expect(await remaining('e')).toBe(4);
    expect((await s.health()).detail).toBe('memory: 3 keys, 2 evicted');
  });

  it('bounds all buckets together, and a denial also counts as a use', async () => {
    const s = store({ maxKeys: 2 });
    const one = policies('1/1m', 'fixed-window', 'one:');
    const other = policies('1/1m', 'fixed-window', 'other:');
    await s.consume('k', one, 1);
    await s.consume('k', other, 1);
    expect((await s.consume('k', one, 1))[0].allowed).toBe(false); // denied, but read: most recent
    await s.consume('x', one, 1); // evicts the oldest: k in `other`
    expect(s.evictions).toBe(1);
    expect((await s.peek('k', other))[0].remaining).toBe(1);
    expect((await s.peek('k', one))[0].remaining).toBe(0);
  });

  it('holds exactly maxKeys under a stream of new keys', async () => {
    const s = store({ maxKeys: 100 });
    const p = policies('5/1h');
    for (let i = 0; i < 1000; i++) s.consumeSync(`key-${i}`, p, 1);
    expect(s.size).toBe(100);
    expect(s.evictions).toBe(900);
    expect((await s.peek('key-999', p))[0].remaining).toBe(4);
    expect((await s.peek('key-900', p))[0].remaining).toBe(4);
    expect((await s.peek('key-899', p))[0].remaining).toBe(5);
  });
});

describe('the slot remembered from the last call', () => {
  it('is never used for another key, another bucket, or after a reset', async () => {
    const s = store({ maxKeys: 2 });
    const a = policies('3/1m', 'fixed-window', 'a:');
    const b = policies('3/1m', 'fixed-window', 'b:');
    const remaining = async (key: string, p: typeof a) => (await s.consume(key, p, 1))[0].remaining;
    expect(await remaining('k', a)).toBe(2);
    expect(await remaining('k', a)).toBe(1);
    expect(await remaining('k', b)).toBe(2); // same key, other bucket
    expect(await remaining('k', a)).toBe(0);
    await s.reset('k', [a[0].bucket]);
    expect(await remaining('j', a)).toBe(2); // takes the slot k had in bucket a
    expect(await remaining('k', a)).toBe(2); // evicts b:k (least recently used), starts over
    expect(await remaining('j', a)).toBe(1);
    expect(s.evictions).toBe(1);
    now += 60_000; // everything expires
    expect(await remaining('j', a)).toBe(2);
  });
});

describe('several policies on one key', () => {
  const both = () => policies(['3/1m', '5/1h'], 'fixed-window', 'p:');
  const minute = () => policies('3/1m', 'fixed-window', 'p:'); // the first of both's buckets

  it("never reuse the key's remembered slots once one was released", async () => {
    const s = store({ maxKeys: 3 });
    const remaining = async (key: string) => (await s.consume(key, both(), 1)).map((d) => d.remaining);
    const p = both();
    const check = async (key: string) => (await s.consume(key, p, 1)).map((d) => d.remaining);
    expect(await check('k')).toEqual([2, 4]);
    expect(await check('k')).toEqual([1, 3]);
    await s.reset('k', [p[0].bucket]); // k's slot in the minute bucket is freed...
    expect((await s.consume('j', minute(), 1))[0].remaining).toBe(2); // ...and taken by j
    expect(await check('k')).toEqual([2, 2]); // k starts over in the minute bucket only
    expect((await s.peek('j', minute()))[0].remaining).toBe(2); // j's count is its own
    expect(await remaining('k')).toEqual([1, 1]); // another list with the same policies agrees
  });

  it('decide as if nothing were remembered between calls (random traces, small maxKeys)', () => {
    const lists = [
      policies(['3/1s', '5/10s'], 'fixed-window', 'r:'),
      policies(['2/1s', '4/5s', '9/1m'], 'sliding-window', 'r:'),
      policies('3/1s', 'fixed-window', 'r:'), // shares a bucket with the first list
      policies(['2/1s', '6/10s'], 'token-bucket', 'r:'),
      policies(['2/1s', '3/2s'], 'sliding-log', 'r:'),
    ];
    const op = fc.record({
      kind: fc.constantFrom('consume', 'consume', 'consume', 'reset', 'wait'),
      list: fc.nat(lists.length - 1),
      key: fc.constantFrom('a', 'b', 'c', 'd'),
      cost: fc.nat(3),
      ms: fc.integer({ min: 1, max: 1500 }),
    });
    fc.assert(
      fc.property(
        fc.array(op, { minLength: 1, maxLength: 80 }),
        fc.integer({ min: 1, max: 12 }),
        (ops, maxKeys) => {
          let t = ORIGIN;
          const clockAt = () => t;
          // `kept` sees the same policy arrays every call (remembered slots, reused results);
          // `fresh` gets copies, so it finds every key through the index and allocates as before.
          const kept = new MemoryStore({ clock: clockAt, sweepIntervalMs: 0, maxKeys });
          const fresh = new MemoryStore({ clock: clockAt, sweepIntervalMs: 0, maxKeys });
          for (const { kind, list, key, cost, ms } of ops) {
            const p = lists[list];
            if (kind === 'wait') t += ms;
            else if (kind === 'reset') {
              const buckets = p.map((policy) => policy.bucket);
              kept.reset(key, buckets);
              fresh.reset(key, buckets);
            } else {
              expect(kept.consumeSync(key, p, cost)).toEqual(fresh.consumeSync(key, [...p], cost));
            }
            expect(kept.size).toBe(fresh.size);
            expect(kept.evictions).toBe(fresh.evictions);
          }
          kept.close();
          fresh.close();
        },
      ),
      { numRuns: 300 },
    );
  });

  it("at maxKeys, a new slot for one policy never evicts the key's slot for another", async () => {
    const s = store({ maxKeys: 2 });
    const p = both();
    expect((await s.consume('a', p, 1)).map((d) => d.remaining)).toEqual([2, 4]);
    await s.reset('a', [p[0].bucket]);
    await s.consume('d', minute(), 1); // full again: d, then a's hour slot least recently used
    // a needs a new minute slot: the store evicts d, not a's hour slot it is about to write.
    expect((await s.consume('a', p, 1)).map((d) => d.remaining)).toEqual([2, 3]);
    expect((await s.peek('a', p)).map((d) => d.remaining)).toEqual([2, 3]);
    expect(s.evictions).toBe(1);
    expect((await s.peek('d', minute()))[0].remaining).toBe(3);
  });
});

describe('expired keys are reclaimed without a timer per key', () => {
  it('sweep() releases every expired key and keeps live ones', async () => {
    const s = store();
    const short = policies('5/1s', 'fixed-window', 'short:');
    const long = policies('5/1h', 'fixed-window', 'long:');
    for (let i = 0; i < 100; i++) await s.consume(`k${i}`, short, 1);
    for (let i = 0; i < 10; i++) await s.consume(`k${i}`, long, 1);
    expect(s.size).toBe(110);
    now += 999;
    expect(s.sweep()).toBe(0);
    expect(s.size).toBe(110);
    now += 1;
    expect(s.sweep()).toBe(100);
    expect(s.size).toBe(10);
    expect((await s.peek('k3', long))[0].remaining).toBe(4);
  });

  it('new keys reclaim expired ones from the least recently used end', async () => {
    const s = store();
    const p = policies('5/1s', 'fixed-window');
    for (let i = 0; i < 10; i++) await s.consume(`old${i}`, p, 1);
    now += 5000;
    for (let i = 0; i < 5; i++) await s.consume(`new${i}`, p, 1);
    // Each new key reclaims up to two expired ones: all ten are gone, only the new five are held.
    expect(s.size).toBe(5);
  });

  it('a key back after its state expired starts afresh; an expired key denied is dropped', async () => {
    const s = store();
    const cases = [
      ['a', policies('3/1s', 'fixed-window')],
      ['b', policies('3/1s', 'sliding-log', 'log:')],
    ] as const;
    for (const [key, p] of cases) {
      for (let i = 0; i < 3; i++) await s.consume(key, p, 1);
      expect((await s.consume(key, p, 1))[0].allowed).toBe(false);
    }
    now += 5000; // both states expired; their slots are still held
    expect(s.size).toBe(2);
    // 'a' is found through the index, 'b' is the key the store remembers from the last call.
    for (const [key, p] of cases) {
      expect((await s.consume(key, p, 1))[0]).toMatchObject({ allowed: true, remaining: 2 });
      expect((await s.consume(key, p, 1))[0]).toMatchObject({ allowed: true, remaining: 1 });
    }
    expect(s.size).toBe(2);
    const listed: [string, number][] = [];
    for await (const entry of s.entries('')) listed.push([entry.key, entry.state.length]);
    expect(listed.sort()).toEqual([
      ['a', 3], // a fixed window's state is read back as the record's three numbers
      ['b', 2], // the sliding log: the two admitted times since the expiry, not the old three
    ]);

    now += 5000;
    // Denied on an expired state (a cost above the limit): nothing is kept of the key.
    expect((await s.consume('a', cases[0][1], 5))[0].allowed).toBe(false);
    expect(s.size).toBe(1);
    expect((await s.peek('a', cases[0][1]))[0].remaining).toBe(3);
    expect((await s.consume('b', cases[1][1], 1))[0]).toMatchObject({ allowed: true, remaining: 2 });
    expect(s.size).toBe(1);
  });

  it('creates no timer per key; the one background sweep reclaims on its own', async () => {
    const setTimeoutSpy = vi.spyOn(globalThis, 'setTimeout');
    const setIntervalSpy = vi.spyOn(globalThis, 'setInterval');
    const s = store({ sweepIntervalMs: 20 });
    expect(setIntervalSpy).toHaveBeenCalledTimes(1); // the sweep
    const p = policies('5/1s', 'token-bucket');
    for (let i = 0; i < 1000; i++) await s.consume(`k${i}`, p, 1);
    expect(setTimeoutSpy).toHaveBeenCalledTimes(0);
    expect(setIntervalSpy).toHaveBeenCalledTimes(1);
    expect(s.size).toBe(1000);
    vi.restoreAllMocks();

    now += 10_000;
    const deadline = Date.now() + 5000; // generous: the sweep runs every 20 ms
    while (s.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(s.size).toBe(0);
  });
});

describe('a wall clock that jumps (injected clock)', () => {
  const isWhole = (n: number) => Number.isInteger(n) && n >= 0;
  function expectSane(d: PolicyDecision): void {
    expect(isWhole(d.remaining), `remaining ${d.remaining}`).toBe(true);
    expect(isWhole(d.resetMs), `resetMs ${d.resetMs}`).toBe(true);
    expect(isWhole(d.retryAfterMs), `retryAfterMs ${d.retryAfterMs}`).toBe(true);
    expect(d.remaining).toBeLessThanOrEqual(d.limit);
  }

  /** ms of denied calls (every 10 ms) until one is admitted; fails past `maxMs`. */
  async function msUntilAdmitted(s: MemoryStore, p: ReturnType<typeof policies>, maxMs: number) {
    const start = now;
    for (;;) {
      const decisions = await s.consume('k', p, 1);
      decisions.forEach(expectSane);
      if (decisions.every((d) => d.allowed)) return now - start;
      if (now - start > maxMs) throw new Error(`still blocked ${now - start} ms after the jump`);
      now += 10;
    }
  }

  for (const algorithm of ALGORITHM_NAMES) {
    it(`${algorithm}: back an hour: sane figures, admitted again within two windows`, async () => {
      const s = store();
      const p = policies('5/1s', algorithm);
      now = ORIGIN + 123;
      for (let i = 0; i < 5; i++) expect((await s.consume('k', p, 1))[0].allowed).toBe(true);
      now -= 3_600_000;
      const [denied] = await s.consume('k', p, 1);
      expectSane(denied);
      expect(denied.allowed).toBe(false);
      expect(denied.retryAfterMs).toBeGreaterThan(0);
      expect(denied.retryAfterMs).toBeLessThanOrEqual(2010);
      expect(await msUntilAdmitted(s, p, 2010)).toBeGreaterThan(0);
      const [peeked] = await s.peek('k', p);
      expectSane(peeked);
    });

    it(`${algorithm}: forward a day: sane figures, the old counts no longer matter`, async () => {
      const s = store();
      const p = policies('5/1s', algorithm);
      for (let i = 0; i < 5; i++) await s.consume('k', p, 1);
      now += 86_400_000;
      const [d] = await s.consume('k', p, 1);
      expectSane(d);
      expect(d).toMatchObject({ allowed: true, remaining: 4, retryAfterMs: 0 });
    });
  }

  it('several policies: back an hour, admitted again within the longest window', async () => {
    const s = store();
    const p = policies(['2/1s', '3/2s'], 'fixed-window');
    for (let i = 0; i < 2; i++) await s.consume('k', p, 1);
    now -= 3_600_000;
    expect(await msUntilAdmitted(s, p, 2010)).toBeGreaterThan(0);
  });
});

describe('exact under concurrency', () => {
  for (const algorithm of ALGORITHM_NAMES) {
    it(`${algorithm}: 10,000 concurrent callers through a Limiter admit exactly the limit`, async () => {
      const s = store();
      // A sliding log holds one entry per admission: a smaller limit keeps the case fast.
      const limit = algorithm === 'sliding-log' ? 500 : 2500;
      const limiter = new Limiter({ limit, window: '1h', algorithm, name: `conc-${algorithm}`, store: s });
      const decisions = await Promise.all(Array.from({ length: 10_000 }, () => limiter.consume('hot')));
      const admitted = decisions.filter((d) => d.allowed);
      expect(admitted).toHaveLength(limit);
      expect(new Set(admitted.map((d) => d.remaining)).size).toBe(limit);
      expect(Math.min(...admitted.map((d) => d.remaining))).toBe(0);
      expect(decisions.slice(limit).every((d) => !d.allowed && d.retryAfterMs > 0)).toBe(true);
      await limiter.close();
    });
  }
});

describe('options', () => {
  for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 16_000_001, '100']) {
    it(`rejects maxKeys ${String(bad)} with a FloodgateError saying what to write`, () => {
      let error: unknown;
      try {
        new MemoryStore({ maxKeys: bad as number });
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(FloodgateError);
      expect((error as FloodgateError).code).toBe('FLOODGATE_INVALID_OPTION');
      expect((error as FloodgateError).message).toMatch(
        /maxKeys .* must be a whole number from 1 to 16000000/,
      );
      expect((error as FloodgateError).message).toMatch(/like 100000/);
    });
  }

  it('rejects a misspelt option, naming the closest one', () => {
    expect(() => new MemoryStore({ maxkeys: 10 } as MemoryStoreOptions)).toThrow(/did you mean "maxKeys"/);
  });

  it('rejects a bad sweepIntervalMs and a clock that is not a function', () => {
    expect(() => new MemoryStore({ sweepIntervalMs: -1 })).toThrow(
      /sweepIntervalMs -1 must be a whole number/,
    );
    expect(() => new MemoryStore({ clock: 5 as unknown as () => number })).toThrow(
      /clock must be a function/,
    );
  });

  it('accepts the bounds', async () => {
    const s = store({ maxKeys: 1 });
    const p = policies('1/1m');
    await s.consume('a', p, 1);
    await s.consume('b', p, 1);
    expect(s.size).toBe(1);
    expect(s.evictions).toBe(1);
    expect(() => store({ maxKeys: 16_000_000 })).not.toThrow();
  });
});

describe('coarse monotonic clock (the default clock of the memory store)', () => {
  it('never goes back and is never ahead of the monotonic clock', () => {
    let last = coarseMonotonicClock();
    for (let i = 0; i < 100_000; i++) {
      const t = coarseMonotonicClock();
      expect(t >= last).toBe(true);
      last = t;
    }
    expect(coarseMonotonicClock()).toBeLessThanOrEqual(monotonicClock());
  });

  it('moves on in a busy loop that never yields to the ticker', () => {
    const first = coarseMonotonicClock();
    const until = monotonicClock() + 20;
    while (monotonicClock() < until) coarseMonotonicClock();
    // The real clock is re-read at least every 32 reads (a reading is reused for at most 32), so 32
    // more reads after 20 ms must see those 20 ms, however the scheduler paused this thread.
    for (let i = 0; i < 32; i++) coarseMonotonicClock();
    expect(coarseMonotonicClock() - first).toBeGreaterThanOrEqual(20);
  });

  it('is refreshed after the event loop was idle', async () => {
    const before = coarseMonotonicClock();
    await new Promise((resolve) => setTimeout(resolve, 30));
    const after = coarseMonotonicClock();
    expect(after - before).toBeGreaterThanOrEqual(25);
    expect(monotonicClock() - after).toBeLessThan(5);
  });

  it('is what a MemoryStore reads by default: windows follow real time', async () => {
    const s = new MemoryStore({ sweepIntervalMs: 0 });
    stores.push(s);
    const p = policies('1/50ms', 'fixed-window');
    expect((await s.consume('k', p, 1))[0].allowed).toBe(true);
    const [denied] = await s.consume('k', p, 1);
    expect(denied.allowed).toBe(false);
    expect(denied.retryAfterMs).toBeGreaterThan(0);
    expect(denied.retryAfterMs).toBeLessThanOrEqual(50);
    await new Promise((resolve) => setTimeout(resolve, denied.retryAfterMs + 5));
    expect((await s.consume('k', p, 1))[0].allowed).toBe(true);
  });
});

describe('docs/memory.md', () => {
  it('runs its example as written and prints what the page says', async () => {
    const page = readFileSync(fileURLToPath(new URL('../../../docs/memory.md', import.meta.url)), 'utf8');
    const match = /<!-- run: memory-basics -->\n```ts\n([\s\S]*?)```/.exec(page);
    expect(match).not.toBeNull();
    const source = (match as RegExpExecArray)[1];
    const dir = fileURLToPath(new URL('./.docs-run-memory/', import.meta.url));
    mkdirSync(dir, { recursive: true });
    try {
      const file = `${dir}memory-basics-${Date.now()}.ts`;
      writeFileSync(file, source);
      const log = vi.spyOn(console, 'log').mockImplementation(() => {});
      await import(file);
      expect(log.mock.calls).toEqual([[2, 1, 0]]);
      expect(source).toContain('// 2 1 0');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
