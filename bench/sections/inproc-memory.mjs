// In-process memory stores: awaited consume on one hot key and on a 100k-key working set,
// floodgate (every algorithm) beside express-rate-limit's MemoryStore and rate-limiter-flexible's
// RateLimiterMemory. One caller at a time (1 in flight): the per-check cost, nothing hidden by overlap.
// Each subject runs in its own process.
import { MemoryStore as ErlMemoryStore } from 'express-rate-limit';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import { fmtInt } from '../lib/format.mjs';
import { bench, makeKeys } from '../lib/measure.mjs';
import { ALGORITHMS, measureAll } from '../lib/subjects.mjs';

const HOUR_MS = 3_600_000;
const BIG = 1_000_000_000; // the largest count a policy takes: the hot key stays admitted
const STORE_ONLY = 'floodgate-store';
const ERL = 'express-rate-limit';
const RLF = 'rate-limiter-flexible';

const LABELS = {
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
    return { op: (key) => store.increment(key), close: () => store.shutdown() };
  }
  if (name === RLF) {
    const limiter = new RateLimiterMemory({ points: BIG, duration: HOUR_MS / 1000 });
    return { op: (key) => limiter.consume(key), close: () => {} };
  }
  const { Limiter, MemoryStore } = await import('@floodgate/core');
  if (name === STORE_ONLY) {
    const store = new MemoryStore();
    const { policies } = new Limiter({ limit: BIG, window: HOUR_MS, name: 'bench', store });
    return { op: (key) => store.consume(key, policies, 1), close: () => store.close() };
  }
  // A sliding log keeps one timestamp per admitted call, so a billion on a hot key would hold
  // millions of entries: it gets a small limit and is measured mostly denying.
  const limit = name === 'sliding-log' ? { limit: 100, window: 1000 } : { limit: BIG, window: HOUR_MS };
  const limiter = new Limiter({ ...limit, algorithm: name, name: 'bench', store: new MemoryStore() });
  return { op: (key) => limiter.consume(key), close: () => limiter.close() };
}

/** Child side: one subject, both working sets. */
export async function measure(name, timing) {
  const out = {};
  for (const [set, keys] of [
    ['oneKey', ['hot']],
    ['manyKeys', makeKeys(100_000)],
  ]) {
    const { op, close } = await makeSubject(name);
    out[set] = await bench(op, { keys, inFlight: 1, ...timing });
    await close();
  }
  return out;
}

export default async function run(ctx) {
  const timing = ctx.quick
    ? { durationMs: 300, rounds: 3, warmupMs: 300 }
    : { durationMs: 1000, rounds: 5, warmupMs: 1000 };
  const names = [...ALGORITHMS, STORE_ONLY, ERL, RLF];
  const results = await measureAll(ctx, import.meta.url, names, timing, label);
  const erl = results[ERL];
  const rlf = results[RLF];
  const ratio = (r, peer) =>
    r.missing || peer.missing ? '–' : (r.oneKey.opsPerSec / peer.oneKey.opsPerSec).toFixed(2);
  const rows = names.map((name) => {
    const r = results[name];
    if (r.missing) return [label(name), r.missing, '', '', '', '', ''];
    return [
      label(name),
      fmtInt(r.oneKey.opsPerSec),
      fmtInt(r.oneKey.nsPerOp),
      fmtInt(r.manyKeys.opsPerSec),
      fmtInt(r.manyKeys.nsPerOp),
      ratio(r, erl),
      ratio(r, rlf),
    ];
  });

  const head = results['sliding-window'];
  const why = head.missing;
  const ok = !head.missing;
  const targets = [
    {
      name: 'Memory: awaited consume, 1 key, vs express-rate-limit MemoryStore.increment',
      wanted: '> 1.00x',
      value: ok ? head.oneKey.opsPerSec / erl.oneKey.opsPerSec : undefined,
      threshold: 1.0000001,
      show: (v) => `${v.toFixed(2)}x (${fmtInt(head.oneKey.nsPerOp)} vs ${fmtInt(erl.oneKey.nsPerOp)} ns/op)`,
      why,
    },
    {
      name: 'Memory: awaited consume, 1 key, vs RateLimiterMemory.consume',
      wanted: '>= 3.00x',
      value: ok ? head.oneKey.opsPerSec / rlf.oneKey.opsPerSec : undefined,
      threshold: 3,
      show: (v) => `${v.toFixed(2)}x (${fmtInt(head.oneKey.nsPerOp)} vs ${fmtInt(rlf.oneKey.nsPerOp)} ns/op)`,
      why,
    },
    {
      name: 'Memory: 100k-key working set within 2x of one key',
      wanted: '>= 0.50 of the 1-key ops/s',
      value: ok ? head.manyKeys.opsPerSec / head.oneKey.opsPerSec : undefined,
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
          'vs ERL',
          'vs RLF',
        ],
        rows,
        notes: [
          'Each subject in a fresh process; median of the rounds. The floodgate rows go through `Limiter.consume` ' +
            '(the call adapters make, Decision included); "store only" calls `MemoryStore.consume` directly. Default ' +
            'algorithm: sliding-window; limits are a billion per hour so every call is admitted (sliding-log: 100/s, ' +
            'so it mostly denies). Ratios (vs ERL = express-rate-limit, vs RLF = rate-limiter-flexible) on one key.',
        ],
      },
    ],
    data: results,
    targets,
  };
}
