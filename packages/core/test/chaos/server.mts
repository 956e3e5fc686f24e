/**
 * Chaos test server (a child process of the chaos tests): a real Express app on a loopback
 * port, one route per limiter given in CHAOS_CONFIG. Each route calls limiter.consume and answers
 * 200, 429, or 503 + Retry-After when the limiter fails closed, with the Decision's `degraded` in the
 * body. It counts unhandled rejections and uncaught exceptions, samples each limiter's breaker state
 * every 5 ms, and reports all of it on GET /__stats.
 */
import { createRequire } from 'node:module';
import type { LimiterOptions, MultiStoreOptions, Store } from '../../src/index.js';
import { createStore, Limiter, type MultiStore } from '../../src/index.js';

interface RouteConfig {
  limiter: Omit<LimiterOptions, 'store'> & { store: string };
  /** Build the primary as a MultiStore of these URIs instead. */
  multi?: { uris: string[]; options: MultiStoreOptions };
}

// Express is a dependency of the Express adapter package, not of core: load it from there.
const require = createRequire(new URL('../../../express/package.json', import.meta.url));
const express = require('express') as () => App;

/** The little of Express this server uses (its types belong to the Express adapter package). */
interface Reply {
  status(code: number): Reply;
  set(name: string, value: string): Reply;
  json(body: unknown): void;
}
interface App {
  get(path: string, handler: (req: { query: Record<string, unknown> }, res: Reply) => unknown): void;
  listen(port: number, host: string, ready: () => void): import('node:http').Server;
}

const stats = { unhandled: 0, uncaught: 0 };
process.on('unhandledRejection', () => {
  stats.unhandled++;
});
process.on('uncaughtException', () => {
  stats.uncaught++;
});

const config = JSON.parse(process.env.CHAOS_CONFIG ?? '{}') as Record<string, RouteConfig>;
const app = express();
const routes: Record<
  string,
  {
    limiter: Limiter;
    transitions: { at: number; state: string }[];
    storeErrors: number;
    /** The longest limiter.consume call, in ms (the limiter alone, without HTTP). */
    maxCheckMs: number;
    multi?: MultiStore;
  }
> = {};

for (const [name, route] of Object.entries(config)) {
  const entry = {
    transitions: [] as { at: number; state: string }[],
    storeErrors: 0,
    maxCheckMs: 0,
  } as (typeof routes)[string];
  let store: Store | string = route.limiter.store;
  if (route.multi) {
    entry.multi = createStore(route.multi.uris, route.multi.options);
    store = entry.multi;
  }
  entry.limiter = new Limiter({
    ...route.limiter,
    store,
    name,
    onStoreError: () => {
      entry.storeErrors++;
    },
  });
  routes[name] = entry;
  app.get(`/${name}`, async (req, res) => {
    const key = typeof req.query.k === 'string' ? req.query.k : 'client';
    const started = performance.now();
    const d = await entry.limiter.consume(key);
    const took = performance.now() - started;
    if (took > entry.maxCheckMs) entry.maxCheckMs = took;
    const body = { allowed: d.allowed, degraded: d.degraded, remaining: d.remaining, limit: d.limit };
    if (d.allowed) {
      res.status(200).json(body);
      return;
    }
    res.set('Retry-After', String(Math.max(1, Math.ceil(d.retryAfterMs / 1000))));
    res.status(d.degraded === 'closed' ? 503 : 429).json(body);
  });
}

// Event-loop stalls over 100 ms (wall-clock time, length), to tell a stalled process from a slow store.
const stalls: { at: number; ms: number }[] = [];
let lastTick = Date.now();
// Breaker transitions with wall-clock times, so the test can compare them with when it sent signals.
const sampler = setInterval(() => {
  const now = Date.now();
  if (now - lastTick > 100) stalls.push({ at: lastTick, ms: now - lastTick });
  lastTick = now;
  for (const entry of Object.values(routes)) {
    const breaker = entry.limiter.health().breaker;
    const state = breaker === 'off' ? 'off' : breaker.state;
    if (entry.transitions.at(-1)?.state !== state) entry.transitions.push({ at: now, state });
  }
}, 5);

app.get('/__stats', (_req, res) => {
  const wallOffset = Date.now() - performance.now();
  res.json({
    ...stats,
    stalls,
    routes: Object.fromEntries(
      Object.entries(routes).map(([name, entry]) => [
        name,
        {
          health: entry.limiter.health(),
          transitions: entry.transitions,
          storeErrors: entry.storeErrors,
          maxCheckMs: entry.maxCheckMs,
          // MultiStore switch times are on the monotonic clock (performance.timeOrigin + now()).
          switches: entry.multi?.switchLog.map((s) => ({
            ...s,
            at: s.at - performance.timeOrigin + wallOffset,
          })),
        },
      ]),
    ),
  });
});

const server = app.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(
    `${JSON.stringify({ port: typeof address === 'object' && address ? address.port : 0 })}\n`,
  );
});
server.keepAliveTimeout = 30_000;

process.on('SIGTERM', () => {
  clearInterval(sampler);
  server.close();
  void Promise.allSettled(Object.values(routes).map((r) => r.limiter.close())).then(() => process.exit(0));
  server.closeAllConnections();
});
