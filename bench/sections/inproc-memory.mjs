// In-process memory stores: awaited consume on one hot key and on a 100k-key working set,
// floodgate (every algorithm) beside express-rate-limit's MemoryStore and rate-limiter-flexible's
// RateLimiterMemory. One caller at a time (1 in flight): the per-check cost, nothing hidden by overlap.
// Each subject runs in its own process; rounds interleave the subjects.
import { MemoryStore as ErlMemoryStore } from 'express-rate-limit';
import { RateLimiterMemory, RateLimiterUnion } from 'rate-limiter-flexible';
import { fmtInt } from '../lib/format.mjs';
import { interleave } from '../lib/isolate.mjs';
import { keysInOrder, makeKeys, roundRatio, runInFlight, shuffled, summarize } from '../lib/measure.mjs';
import { ALGORITHMS } from '../lib/names.mjs';

const HOUR_MS = 3_600_000;
const BIG = 1_000_000_000; // the largest count a policy takes: the hot key stays admitted
const STORE_ONLY = 'floodgate-store';
const ERL = 'express-rate-limit';
const RLF = 'rate-limiter-flexible';
const CASES = [
  { id: 'oneKey', keys: 1 },
  { id: 'manyKeys', keys: 100_000 },
];
// 100k keys again, checked in an order unrelated to the order they were stored in: what a server
// sees from many clients. Measured for the default algorithm and the two peers only, in fewer
// rounds, to keep the full bench within its time.
const RANDOM_CASE = { id: 'randomKeys', keys: 100_000 };
const RANDOM_SUBJECTS = ['sliding-window', ERL, RLF];
const RANDOM_ROUNDS = 3;
// Two limits on every check (a billion a minute and a billion an hour), one hot key: floodgate's
// one limiter with two policies, all or nothing, beside rate-limiter-flexible's RateLimiterUnion of
// two RateLimiterMemory (which consumes from both and does not give back on a denial).
const TWO = 'floodgate-two-policies';
const RLF_UNION = 'rate-limiter-flexible-union';
const TWO_SUBJECTS = [TWO, RLF_UNION];

const LABELS = {
  [TWO]: 'floodgate Limiter.consume (two policies, sliding-window)',
  [RLF_UNION]: 'rate-limiter-flexible RateLimiterUnion.consume (two RateLimiterMemory)',
  [STORE_ONLY]: 'floodgate MemoryStore.consume (store only, sliding-window)',
  [ERL]: 'express-rate-limit MemoryStore.increment',
  [RLF]: 'rate-limiter-flexible RateLimiterMemory.consume',
};
const label = (name) =>
  LABELS[name] ?? `floodgate Limiter.consume (${name}${name === 'sliding-log' ? ', limit 100/s' : ''})`;

async function makeSubject(name) {
  if (name === ERL) {
    const store = new ErlMemoryStore();
    store.init({ windowMs: HOUR_MS });
    return (key) => store.increment(key);
  }
  if (name === RLF) {
    const limiter = new RateLimiterMemory({ points: BIG, duration: HOUR_MS / 1000 });
    return (key) => limiter.consume(key);
  }
  if (name === RLF_UNION) {
    const union = new RateLimiterUnion(
      new RateLimiterMemory({ keyPrefix: 'minute', points: BIG, duration: 60 }),
      new RateLimiterMemory({ keyPrefix: 'hour', points: BIG, duration: HOUR_MS / 1000 }),
    );
    return (key) => union.consume(key);
  }
  const { Limiter, MemoryStore } = await import('@floodgate/core');
  if (name === TWO) {
    const limit = [
      { limit: BIG, window: 60_000 },
      { limit: BIG, window: HOUR_MS },
    ];
    const limiter = new Limiter({ limit, name: 'bench', store: new MemoryStore() });
    return (key) => limiter.consume(key);
  }
  if (name === STORE_ONLY) {
    const store = new MemoryStore();
    const { policies } = new Limiter({ limit: BIG, window: HOUR_MS, name: 'bench', store });
    return (key) => store.consume(key, policies, 1);
  }
  // A sliding log keeps one timestamp per admitted call, so a billion on a hot key would hold
  // millions of entries: it gets a small limit and is measured mostly denying.
  const limit = name === 'sliding-log' ? { limit: 100, window: 1000 } : { limit: BIG, window: HOUR_MS };
  const limiter = new Limiter({ ...limit, algorithm: name, name: 'bench', store: new MemoryStore() });
  return (key) => limiter.consume(key);
}

/** Child side: one store instance per working set, so the two never share state. */
export async function setup(name, options = {}) {
  if (options.randomOrder) return { randomKeys: await randomOrder(name) };
  if (options.twoPolicies) return { oneKey: { op: await makeSubject(name), keys: ['hot'] } };
  return {
    oneKey: { op: await makeSubject(name), keys: ['hot'] },
    manyKeys: { op: await makeSubject(name), keys: makeKeys(100_000) },
  };
}

/**
 * Every key stored first, in key order (so a store's layout follows that order), then checked in a
 * fixed pseudo-random order, the same for every subject. The key strings are made in that order: a
 * server builds each request's key just before the check, so the string is fresh in the CPU's cache
 * and only the store's own memory is out of it.
 */
async function randomOrder(name) {
  const op = await makeSubject(name);
  for (const key of makeKeys(RANDOM_CASE.keys)) await op(key);
  return { op, keys: keysInOrder(shuffled(RANDOM_CASE.keys)) };
}

export function round(state, { id, durationMs }) {
  const { op, keys } = state[id];
  return runInFlight(op, { keys, inFlight: 1, durationMs });
}

export default async function run(ctx) {
  const timing = ctx.quick
    ? { durationMs: 150, rounds: 3, warmupMs: 150, settleMs: 150 }
    : { durationMs: 1000, rounds: 5, warmupMs: 1000, settleMs: 1000 };
  const names = [...ALGORITHMS, STORE_ONLY, ERL, RLF];
  const raw = await interleave(ctx, import.meta.url, { subjects: names, cases: CASES, ...timing, label });
  const random = await interleave(ctx, import.meta.url, {
    subjects: RANDOM_SUBJECTS,
    cases: [RANDOM_CASE],
    options: { randomOrder: true },
    ...timing,
    rounds: Math.min(timing.rounds, RANDOM_ROUNDS),
    label,
  });
  const two = await interleave(ctx, import.meta.url, {
    subjects: TWO_SUBJECTS,
    cases: [CASES[0]],
    options: { twoPolicies: true },
    ...timing,
    rounds: Math.min(timing.rounds, RANDOM_ROUNDS),
    label,
  });
  const erl = raw[ERL];
  const rlf = raw[RLF];
  const results = {};
  const rows = names.map((name) => {
    const r = raw[name];
    if (r.missing) {
      results[name] = r;
      return [label(name), r.missing, '', '', '', '', '', ''];
    }
    const one = summarize(r.oneKey);
    const many = summarize(r.manyKeys);
    const shuffledRounds = random[name]?.randomKeys;
    const randomKeys = shuffledRounds ? summarize(shuffledRounds) : undefined;
    results[name] = {
      oneKey: one,
      manyKeys: many,
      ...(randomKeys ? { randomKeys } : {}),
      vsErl: roundRatio(r.oneKey, erl.oneKey),
      vsRlf: roundRatio(r.oneKey, rlf.oneKey),
    };
    return [
      label(name),
      fmtInt(one.opsPerSec),
      fmtInt(one.nsPerOp),
      fmtInt(many.opsPerSec),
      fmtInt(many.nsPerOp),
      randomKeys ? fmtInt(randomKeys.nsPerOp) : random[name]?.missing ? 'failed' : '',
      results[name].vsErl.toFixed(2),
      results[name].vsRlf.toFixed(2),
    ];
  });

  const twoRows = TWO_SUBJECTS.map((name) => {
    const r = two[name];
    if (r.missing) {
      results[name] = r;
      return [label(name), r.missing, '', ''];
    }
    const one = summarize(r.oneKey);
    const vsUnion = two[RLF_UNION].missing ? undefined : roundRatio(r.oneKey, two[RLF_UNION].oneKey);
    results[name] = { oneKey: one, ...(vsUnion === undefined ? {} : { vsUnion }) };
    return [
      label(name),
      fmtInt(one.opsPerSec),
      fmtInt(one.nsPerOp),
      vsUnion === undefined ? '' : vsUnion.toFixed(2),
    ];
  });

  const head = results['sliding-window'];
  const why = head.missing;
  const ok = !why;
  const ns = (r) => `${fmtInt(r.oneKey.nsPerOp)} ns/op`;
  const targets = [
    {
      name: 'Memory: awaited consume, 1 key, vs express-rate-limit MemoryStore.increment',
      wanted: '> 1.00x',
      value: ok ? head.vsErl : undefined,
      threshold: 1.0000001,
      show: (v) => `${v.toFixed(2)}x (${ns(head)} vs ${ns(results[ERL])})`,
      why,
    },
    {
      name: 'Memory: awaited consume, 1 key, vs RateLimiterMemory.consume',
      wanted: '>= 3.00x',
      value: ok ? head.vsRlf : undefined,
      threshold: 3,
      show: (v) => `${v.toFixed(2)}x (${ns(head)} vs ${ns(results[RLF])})`,
      why,
    },
    {
      name: 'Memory: 100k-key working set within 2x of one key',
      wanted: '>= 0.50 of the 1-key ops/s',
      value: ok ? roundRatio(raw['sliding-window'].manyKeys, raw['sliding-window'].oneKey) : undefined,
      threshold: 0.5,
      show: (v) => v.toFixed(2),
      why,
    },
  ];

  return {
    title: 'In-process: memory stores, awaited consume (1 in flight)',
    tables: [
      {
        columns: [
          'Subject',
          '1 key ops/s',
          '1 key ns/op',
          '100k keys ops/s',
          '100k keys ns/op',
          '100k keys, random order ns/op',
          'vs ERL',
          'vs RLF',
        ],
        rows,
        notes: [
          `Each subject in its own process; ${timing.rounds} rounds of ${timing.durationMs} ms per case after a warm-up, ` +
            `subjects interleaved within each round, each timed run right after an untimed ${timing.settleMs} ms of the same case ` +
            '(a process idle while the others ran needs about a second under load to return to its steady state); medians. The floodgate rows go through `Limiter.consume` ' +
            '(the call adapters make, Decision included); "store only" calls `MemoryStore.consume` directly. Default ' +
            'algorithm: sliding-window; limits are a billion per hour so every call is admitted (sliding-log: 100/s, ' +
            'so it mostly denies). vs ERL / vs RLF: median of per-round ratios of 1-key ops/s to express-rate-limit ' +
            'MemoryStore.increment / rate-limiter-flexible RateLimiterMemory.consume. The 100k-key working set ' +
            'is checked in key order, the order its keys were stored in, so a store reads its memory mostly in ' +
            `sequence; "random order" stores the same 100k keys in key order, then checks them in a fixed ` +
            'pseudo-random order (the key strings made in that order, so each is read as fresh as a server makes it per request), as ' +
            `requests from many clients arrive: the default algorithm and the two peers, ${Math.min(timing.rounds, RANDOM_ROUNDS)} rounds.`,
        ],
      },
      {
        columns: ['Subject', '1 key ops/s', '1 key ns/op', 'vs RateLimiterUnion'],
        rows: twoRows,
        notes: [
          'Two limits on every check, a billion per minute and a billion per hour, on one hot key: floodgate checks ' +
            'both in one call, admitting only if both admit (a denial consumes from neither); rate-limiter-flexible ' +
            'combines two RateLimiterMemory with RateLimiterUnion, which consumes from both and keeps what it took when ' +
            `one denies. ${Math.min(timing.rounds, RANDOM_ROUNDS)} rounds, interleaved as above; vs RateLimiterUnion: median of per-round ratios of ops/s.`,
        ],
      },
    ],
    data: results,
    targets,
  };
}
