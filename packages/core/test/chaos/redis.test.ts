// Chaos tests: real redis-server processes that are SIGKILLed, SIGSTOPped and flapped under ~300
// requests/s sent over loopback HTTP to a real Express server (a child process) whose routes call
// Limiter.consume. Each scenario is bounded (a few seconds, a fixed number of requests) and stops
// by itself. The bounds are the issue's: p99 <= 250 ms, max <= 1 s, no hung request, no unhandled
// rejection; allow mode all 2xx, deny mode 503 + Retry-After, fallback mode still limits; the breaker
// opens within 1 s; the store is used again within 2 s of coming back.
import { afterEach, describe, expect, it } from 'vitest';
import { parsePolicies } from '../../src/rate.js';
import { RedisStore } from '../../src/stores/redis/index.js';
import { LatencyProxy } from './latency-proxy.js';
import { type ChaosServer, runLoad, startChaosServer, warmUp } from './load.js';
import {
  expectBoundedLatency,
  expectModes,
  FALLBACK_LIMIT,
  loadThroughOutage,
  MODES,
  modePath,
  RPS,
  threeModes,
  warmUpModes,
} from './modes.js';
import { RedisProcess, sleep } from './redis-process.js';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

async function redis(): Promise<RedisProcess> {
  const server = await RedisProcess.start();
  cleanup.push(() => server.stop());
  return server;
}

async function server(config: Record<string, unknown>): Promise<ChaosServer> {
  const started = await startChaosServer(config);
  cleanup.push(() => started.stop());
  return started;
}

describe('chaos: Redis under load', () => {
  it('SIGKILL of Redis, then restart: allow / deny / fallback stay within bounds', async () => {
    const store = await redis();
    const app = await server(threeModes(store.url, `chaos-kill-${process.pid}:`));
    const baseline = await warmUpModes(app.port);
    const { samples, times } = await loadThroughOutage(app.port, {
      durationMs: 6500,
      fromMs: 1500,
      toMs: 3500,
      takeOut: () => store.kill(),
      bringBack: () => store.restart(),
    });
    expect(samples).toHaveLength(6500 * (RPS / 1000));
    expectModes(samples, await app.stats(), times, baseline);
  }, 60_000);

  it('SIGSTOP of Redis for 5 s, then SIGCONT: the deadline keeps the same bounds', async () => {
    const store = await redis();
    const app = await server(threeModes(store.url, `chaos-stop-${process.pid}:`));
    const baseline = await warmUpModes(app.port);
    const { samples, times } = await loadThroughOutage(app.port, {
      durationMs: 9000,
      fromMs: 1000,
      toMs: 6000,
      takeOut: () => store.freeze(),
      bringBack: () => store.thaw(),
    });
    const stats = await app.stats();
    expectModes(samples, stats, times, baseline);
    // The frozen store was noticed by deadlines, not errors.
    expect(stats.routes.deny.health.counts.timeouts).toBeGreaterThan(0);
  }, 60_000);

  it('Redis answering 2 s late for 5 s (a latency proxy): the deadline keeps the same bounds', async () => {
    const store = await redis();
    const proxy = await LatencyProxy.start(store.port);
    cleanup.push(() => proxy.stop());
    const app = await server(threeModes(proxy.url, `chaos-slow-${process.pid}:`));
    const baseline = await warmUpModes(app.port);
    const { samples, times } = await loadThroughOutage(app.port, {
      durationMs: 11_000,
      fromMs: 1000,
      toMs: 6000,
      takeOut: () => {
        proxy.delayMs = 2000;
      },
      // Answers are on time again once the 2 s of traffic held in the proxy have come through.
      bringBack: async () => {
        proxy.delayMs = 0;
        await sleep(2000);
      },
    });
    const stats = await app.stats();
    expectModes(samples, stats, times, baseline);
    // Redis answered all along, late: the deadline noticed, not errors.
    expect(stats.routes.deny.health.counts.timeouts).toBeGreaterThan(0);
  }, 60_000);

  it('boot with Redis absent: serves per the policy, then uses Redis within 2 s of it starting', async () => {
    const store = await RedisProcess.reserve();
    cleanup.push(() => store.stop());
    const app = await server(threeModes(store.url, `chaos-boot-${process.pid}:`));
    // The first second of traffic (unmeasured) meets no Redis at all.
    const baseline = await warmUpModes(app.port);
    const times = { outageAt: 0, backAt: Number.POSITIVE_INFINITY };
    const samples = await runLoad({
      port: app.port,
      rps: RPS,
      durationMs: 5000,
      path: modePath(() => Date.now() < times.backAt),
      events: [
        {
          atMs: 1500,
          run: async () => {
            await store.restart();
            times.backAt = Date.now();
          },
        },
      ],
    });
    const stats = await app.stats();
    expectBoundedLatency(samples, baseline, stats);
    expect(stats.unhandled).toBe(0);
    expect(stats.uncaught).toBe(0);
    const before = samples.filter((s) => s.sentAt < times.backAt - 100);
    expect(
      before.filter((s) => s.path === '/allow').every((s) => s.status === 200 && s.body.degraded === 'open'),
    ).toBe(true);
    expect(
      before.filter((s) => s.path === '/deny').every((s) => s.status === 503 && s.body.degraded === 'closed'),
    ).toBe(true);
    const limited = before.filter((s) => s.path.startsWith('/fallback') && s.body.degraded === 'fallback');
    expect(limited.filter((s) => s.status === 200)).toHaveLength(FALLBACK_LIMIT);
    for (const mode of MODES) {
      const later = samples.filter((s) => s.path.startsWith(`/${mode}`) && s.sentAt >= times.backAt + 2000);
      expect(later.length).toBeGreaterThan(50);
      expect(later.every((s) => s.body.degraded === false)).toBe(true);
      // allow and deny have a limit no one reaches; the fallback route's 20/min is now counted by Redis.
      const statuses = mode === 'fallback' ? [200, 429] : [200];
      expect(later.every((s) => statuses.includes(s.status))).toBe(true);
    }
  }, 60_000);

  it('a flapping primary (SIGSTOP/SIGCONT every 500 ms): at most one switch per hysteresis period', async () => {
    const [a, b] = [await redis(), await redis()];
    const prefix = `chaos-flap-${process.pid}:`;
    const hysteresisMs = 2000;
    const app = await server({
      flap: {
        // A fixed window opened by the first request counts everything of this 10 s run in one
        // window (a sliding window would weigh away the part before a minute boundary).
        limiter: {
          store: 'unused',
          prefix,
          limit: '1000000/h',
          algorithm: 'fixed-window',
          skipOnError: true,
        },
        multi: {
          uris: [a.url, b.url],
          options: { hysteresisMs, healthCheckIntervalMs: 100, timeoutMs: 150, unhealthyAfter: 2 },
        },
      },
    });
    const baseline = await warmUp(app.port, ['/flap?k=warm']);
    const events: { atMs: number; run: () => void }[] = [];
    for (let k = 0; k < 4; k++) {
      events.push({ atMs: 1000 + 1000 * k, run: () => a.freeze() });
      events.push({ atMs: 1500 + 1000 * k, run: () => a.thaw() });
    }
    const samples = await runLoad({
      port: app.port,
      rps: RPS,
      durationMs: 8000,
      path: () => '/flap?k=f',
      events,
    });
    const stats = await app.stats();
    expectBoundedLatency(samples, baseline, stats);
    expect(samples.every((s) => s.status === 200)).toBe(true);
    expect(stats.unhandled).toBe(0);

    // The first freeze moves traffic to b at once (failing over never waits); the flapping never
    // earns a's way back: a gets the traffic back only after being steady for the hysteresis. So
    // the switches alternate, and every switch back to a comes at least one hysteresis period after
    // the switch away from it. (On a saturated machine a slow health check after the flapping may
    // move traffic away once more: that is a failover, allowed at any time.)
    const switches = stats.routes.flap.switches ?? [];
    expect(switches.length).toBeGreaterThanOrEqual(2);
    expect(switches.slice(0, 2).map((s) => [s.from, s.to])).toEqual([
      [0, 1],
      [1, 0],
    ]);
    for (let i = 1; i < switches.length; i++) {
      expect(switches[i].from).toBe(switches[i - 1].to);
      if (switches[i].to === 0) {
        expect(switches[i].at - switches[i - 1].at).toBeGreaterThanOrEqual(hysteresisMs);
      }
    }
    // 8 s of flapping every 500 ms would be 16 switches without hysteresis.
    expect(switches.length).toBeLessThanOrEqual(4);

    // Each request was counted by one backend: Redis counts add up to what was admitted, give or
    // take the calls that failed (a timed-out call may or may not have counted; none counts twice).
    const policies = parsePolicies('1000000/h', { name: 'flap', prefix, algorithm: 'fixed-window' });
    let counted = 0;
    for (const url of [a.url, b.url]) {
      const direct = new RedisStore({ url });
      counted += 1_000_000 - (await direct.peek('f', policies))[0].remaining;
      await direct.close();
    }
    const admitted = samples.filter((s) => s.body.degraded === false).length;
    const failed = samples.length - admitted;
    expect(counted).toBeGreaterThanOrEqual(admitted);
    expect(counted).toBeLessThanOrEqual(admitted + failed);
  }, 60_000);
});
