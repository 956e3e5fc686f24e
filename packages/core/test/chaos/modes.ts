/**
 * What every chaos scenario checks, whatever the store: three routes (allow, deny, fallback) under
 * ~RPS requests/s, and the bounds on latency, failure policy, breaker and recovery.
 */
import { expect } from 'vitest';
import { percentile, runLoad, type Sample, type ServerStats, warmUp } from './load.js';

export const RPS = 300;
export const FALLBACK_LIMIT = 20;

/** allow / deny / fallback: the three failure policies, side by side on one store. */
export function threeModes(url: string, prefix: string) {
  // timeoutMs is left at its default (250 ms): the bounds hold with the defaults.
  const common = { store: url, prefix };
  return {
    allow: { limiter: { ...common, limit: '1000000/min', skipOnError: true } },
    deny: { limiter: { ...common, limit: '1000000/min' } },
    // A fixed window opens at a key's first request, so a fault that spans a minute boundary still
    // sees exactly FALLBACK_LIMIT admitted (a sliding window would let the old minute weigh less).
    fallback: {
      limiter: {
        ...common,
        limit: `${FALLBACK_LIMIT}/min`,
        algorithm: 'fixed-window',
        fallback: 'memory://',
      },
    },
  };
}

/** When the store went out and came back (Date.now()), as the load saw it. */
export interface OutageTimes {
  outageAt: number;
  backAt: number;
}

/**
 * RPS requests/s to the three routes for `durationMs`, with the store taken out at `fromMs` and
 * brought back at `toMs` after the start. The outage is stamped before `takeOut` (the store may be
 * out before it returns) and the return after `bringBack` has returned (it is back only then).
 */
export async function loadThroughOutage(
  port: number,
  plan: {
    durationMs: number;
    fromMs: number;
    toMs: number;
    takeOut: () => unknown;
    bringBack: () => unknown;
  },
): Promise<{ samples: Sample[]; times: OutageTimes }> {
  const times = { outageAt: Number.POSITIVE_INFINITY, backAt: Number.POSITIVE_INFINITY };
  const samples = await runLoad({
    port,
    rps: RPS,
    durationMs: plan.durationMs,
    path: modePath(() => Date.now() >= times.outageAt && Date.now() < times.backAt),
    events: [
      {
        atMs: plan.fromMs,
        run: async () => {
          times.outageAt = Date.now();
          await plan.takeOut();
        },
      },
      {
        atMs: plan.toMs,
        run: async () => {
          await plan.bringBack();
          times.backAt = Date.now();
        },
      },
    ],
  });
  return { samples, times };
}

/** The unmeasured second of load on the three routes (load.ts warmUp); the p99 it saw. */
export function warmUpModes(port: number): Promise<number> {
  return warmUp(port, ['/allow', '/deny', '/fallback?k=warm']);
}

export const MODES = ['allow', 'deny', 'fallback'] as const;

/** Route of the i-th request; fallback requests use key "during" while the store is out, else "normal". */
export function modePath(outage: () => boolean) {
  return (i: number) => {
    const mode = MODES[i % 3];
    return mode === 'fallback' ? `/fallback?k=${outage() ? 'during' : 'normal'}` : `/${mode}`;
  };
}

export function expectBoundedLatency(
  samples: readonly Sample[],
  baselineP99: number,
  stats: ServerStats,
): void {
  const hung = samples.filter((s) => s.status === 0);
  expect(hung).toHaveLength(0);
  const latencies = samples.map((s) => s.latencyMs);
  const first = Math.min(...samples.map((s) => s.sentAt));
  const longestCheck = Math.max(...Object.values(stats.routes).map((r) => r.maxCheckMs));
  // On failure, say where the slow requests were (ms after the start), to tell a stalled machine from a bug.
  const slowest = [...samples]
    .sort((a, b) => b.latencyMs - a.latencyMs)
    .slice(0, 8)
    .map((s) => `${s.path}@${s.sentAt - first}ms:${Math.round(s.latencyMs)}ms`)
    .join(', ');
  const summary = `p50 ${Math.round(percentile(latencies, 50))} ms, p99 ${Math.round(percentile(latencies, 99))} ms (p99 of the warm-up second before any fault: ${Math.round(baselineP99)} ms; server event-loop stalls over 100 ms: ${stats.stalls.length}, longest ${Math.max(0, ...stats.stalls.map((x) => x.ms))} ms; longest limiter.consume on the server: ${Math.round(longestCheck)} ms); slowest: ${slowest}`;
  // The limiter alone (measured on the server, without HTTP) never held a request for long.
  expect(longestCheck, summary).toBeLessThanOrEqual(1000);
  console.info(`chaos: ${samples.length} requests, max ${Math.round(Math.max(...latencies))} ms, ${summary}`);
  expect(percentile(latencies, 99), summary).toBeLessThanOrEqual(250);
  expect(Math.max(...latencies), summary).toBeLessThanOrEqual(1000);
}

/** The checks shared by the outage scenarios: the store dead, frozen, or locked, then back. */
export function expectModes(
  samples: readonly Sample[],
  stats: ServerStats,
  times: OutageTimes,
  baselineP99: number,
): void {
  expectBoundedLatency(samples, baselineP99, stats);
  expect(stats.unhandled).toBe(0);
  expect(stats.uncaught).toBe(0);

  const of = (mode: string) => samples.filter((s) => s.path.startsWith(`/${mode}`));
  // allow: every request passes, degraded or not.
  expect(of('allow').every((s) => s.status === 200)).toBe(true);
  expect(of('allow').some((s) => s.body.degraded === 'open')).toBe(true);

  // deny: 200 while Redis answers, 503 + Retry-After (whole seconds >= 1) while it does not.
  const deny = of('deny');
  expect(new Set(deny.map((s) => s.status))).toEqual(new Set([200, 503]));
  for (const s of deny.filter((s) => s.status === 503)) {
    expect(s.body.degraded).toBe('closed');
    expect(Number(s.retryAfter)).toBeGreaterThanOrEqual(1);
    expect(Number.isInteger(Number(s.retryAfter))).toBe(true);
  }
  expect(deny.filter((s) => s.status === 503).length).toBeGreaterThan(100);

  // fallback: the memory fallback decides during the outage, and still limits: exactly the limit passes.
  const during = of('fallback').filter((s) => s.path.endsWith('k=during') && s.body.degraded === 'fallback');
  expect(during.length).toBeGreaterThan(3 * FALLBACK_LIMIT);
  expect(during.filter((s) => s.status === 200)).toHaveLength(FALLBACK_LIMIT);
  expect(during.filter((s) => s.status === 429).length).toBe(during.length - FALLBACK_LIMIT);
  expect(of('fallback').every((s) => s.status === 200 || s.status === 429)).toBe(true);

  for (const mode of MODES) {
    const route = stats.routes[mode];
    // The breaker opened within 1 s of the outage, and closed again by itself.
    const opened = route.transitions.find((t) => t.state === 'open' && t.at >= times.outageAt);
    expect(opened, `${mode}: breaker never opened`).toBeDefined();
    expect(opened!.at - times.outageAt).toBeLessThanOrEqual(1000);
    expect(route.health.breaker).toMatchObject({ state: 'closed' });
    expect(route.health.degraded).toBe(false);
    // While open, the store was left alone: a few probes, not one call per request (~300 per route).
    expect(route.storeErrors).toBeLessThan(60);

    // Back to normal within 2 s of Redis answering again: everything sent later was decided by Redis.
    const later = of(mode).filter((s) => s.sentAt >= times.backAt + 2000);
    expect(later.length).toBeGreaterThan(50);
    expect(later.every((s) => s.body.degraded === false)).toBe(true);
  }
}
