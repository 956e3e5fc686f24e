// Memory held per key at 1,000,000 distinct keys: one fresh process per store (node --expose-gc),
// a baseline after the store is created and collected, then a million keys, collect again, measure.
// The key strings themselves ('k0' … 'k999999') are part of what every store holds.
import { createRequire } from 'node:module';
import { MemoryStore as ErlMemoryStore } from 'express-rate-limit';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import { firstLine } from '../lib/floodgate.mjs';
import { fmtInt } from '../lib/format.mjs';
import { isolated } from '../lib/isolate.mjs';

const require = createRequire(import.meta.url);
const MINUTE_MS = 60_000;

const STORES = {
  floodgate: 'floodgate MemoryStore (via Limiter.consume, sliding-window)',
  'floodgate-fixed-window': 'floodgate MemoryStore (fixed-window)',
  'express-rate-limit': 'express-rate-limit MemoryStore',
  'rate-limiter-flexible': 'rate-limiter-flexible RateLimiterMemory',
  '@fastify/rate-limit': '@fastify/rate-limit LocalStore (cache sized to hold every key)',
  'koa-ratelimit': 'koa-ratelimit memory driver (Map)',
};

async function makeStore(name, count) {
  switch (name) {
    case 'floodgate':
    case 'floodgate-fixed-window': {
      const { Limiter } = await import('@floodgate/core');
      const algorithm = name === 'floodgate' ? 'sliding-window' : 'fixed-window';
      const limiter = new Limiter({ limit: 100, window: MINUTE_MS, algorithm, name: 'mem' });
      return (key) => limiter.consume(key);
    }
    case 'express-rate-limit': {
      const store = new ErlMemoryStore();
      store.init({ windowMs: MINUTE_MS });
      return (key) => store.increment(key);
    }
    case 'rate-limiter-flexible': {
      const limiter = new RateLimiterMemory({ points: 100, duration: 60 });
      return (key) => limiter.consume(key);
    }
    case '@fastify/rate-limit': {
      // Not in the package's exports map: load the file by path, as the plugin itself does.
      const dir = require.resolve('@fastify/rate-limit').replace(/index\.js$/, '');
      const LocalStore = require(`${dir}store/LocalStore.js`);
      const store = new LocalStore(false, false, count + 1);
      return (key) => new Promise((resolve) => store.incr(key, resolve, MINUTE_MS, 100));
    }
    case 'koa-ratelimit': {
      const dir = require.resolve('koa-ratelimit').replace(/index\.js$/, '');
      const MemoryLimiter = require(`${dir}limiter/memory.js`);
      const db = new Map();
      // The middleware builds a limiter object per request over one shared Map; only the Map stays.
      return (id) => new MemoryLimiter({ id, db, max: 100, duration: MINUTE_MS }).get();
    }
    default:
      throw new Error(`unknown store ${name}`);
  }
}

/** Holds the store under test: a store nothing references could be collected before the measurement. */
let kept;

function settle() {
  for (let i = 0; i < 4; i++) globalThis.gc();
  return process.memoryUsage();
}

/** Child side (started with --expose-gc): nothing to prepare before the one measurement. */
export function setup(name, { count }) {
  return { name, count };
}

export async function round({ name, count }) {
  const add = await makeStore(name, count);
  kept = add;
  // Warm-up: as many calls as the measurement makes, all on one key, each also making a key-like
  // string as the measurement does. Making a million strings from numbers makes V8 grow its young
  // generation by ~30 MB (seen with no store at all, and none with a constant string); after the
  // warm-up that growth is in the baseline instead of being charged to the keys.
  for (let i = 0; i < count; i++) await add(`w${i}`.length > 0 ? 'warm-up' : '').catch(() => undefined);
  await new Promise((r) => setTimeout(r, 50));
  const before = settle();
  const start = performance.now();
  for (let i = 0; i < count; i++) await add(`k${i}`);
  const fillMs = performance.now() - start;
  await new Promise((r) => setTimeout(r, 50));
  const after = settle();
  await kept('k0'); // the store is still alive and holding its keys here
  const per = (field) => (after[field] - before[field]) / count;
  return {
    count,
    fillMs: Math.round(fillMs),
    rssPerKey: per('rss'),
    heapPerKey: per('heapUsed'),
    arrayBuffersPerKey: per('arrayBuffers'),
    rssMB: Math.round(after.rss / 2 ** 20),
  };
}

export default async function run(ctx) {
  const count = 1_000_000;
  const results = {};
  // --quick: floodgate and the lightest peer only, to stay within its time budget.
  const names = ctx.quick ? ['floodgate', 'express-rate-limit'] : Object.keys(STORES);
  for (const name of names) {
    try {
      results[name] = await isolated(import.meta.url, name, { count }, ['--expose-gc']);
      ctx.log(`  ${STORES[name]}: ${results[name].rssPerKey.toFixed(0)} B RSS/key`);
    } catch (error) {
      results[name] = { missing: firstLine(error) };
      ctx.log(`  ${STORES[name]}: ${results[name].missing}`);
    }
  }
  const rows = names.map((name) => {
    const text = STORES[name];
    const r = results[name];
    if (r.missing) return [text, r.missing, '', '', '', ''];
    return [
      text,
      fmtInt(r.rssPerKey),
      fmtInt(r.heapPerKey),
      fmtInt(r.arrayBuffersPerKey),
      fmtInt(r.rssMB),
      fmtInt(r.fillMs),
    ];
  });
  const fg = results.floodgate;
  return {
    title: 'Memory held per key at 1,000,000 distinct keys',
    tables: [
      {
        columns: ['Store', 'RSS B/key', 'JS heap B/key', 'ArrayBuffer B/key', 'RSS total MB', 'fill time ms'],
        rows,
        notes: [
          'One fresh process per store (node --expose-gc); per key = (after − before) / 1,000,000, both after forced GC. ' +
            'The baseline is taken after a warm-up of 1,000,000 calls on one key (each making a key-like string), so the ~30 MB by which V8 grows its young generation while a million strings are made is not charged to the keys. ' +
            'ArrayBuffer bytes (typed arrays) live outside the JS heap but inside RSS. Key strings are included.',
        ],
      },
    ],
    data: results,
    targets: [
      {
        name: 'Memory store, RSS per key at 1 M keys',
        wanted: '<= 120 B',
        value: fg.missing ? undefined : fg.rssPerKey,
        threshold: 120,
        atMost: true,
        show: (v) => `${v.toFixed(0)} B`,
        why: fg.missing,
      },
    ],
  };
}
