/**
 * Chaos test helpers: start the Express chaos server as a child process, and drive it with an
 * open-loop load (requests go out on a fixed schedule whatever the answers do, like real clients)
 * over keep-alive HTTP on loopback. Bounded by count and time; every request ends with a status or
 * is reported as hung after `hangMs`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { Agent, request } from 'node:http';
import { fileURLToPath } from 'node:url';

export interface Sample {
  readonly path: string;
  /** Wall-clock ms when the request was sent. */
  readonly sentAt: number;
  readonly latencyMs: number;
  /** HTTP status, or 0 when the request hung (no answer within hangMs) or errored. */
  readonly status: number;
  readonly retryAfter: string | undefined;
  readonly body: { allowed?: boolean; degraded?: string | false; remaining?: number; limit?: number };
}

export interface ChaosServer {
  readonly port: number;
  stats(): Promise<ServerStats>;
  stop(): Promise<void>;
}

export interface RouteStats {
  health: {
    status: string;
    degraded: string | false;
    breaker: { state: string; opens: number } | 'off';
    counts: Record<string, number>;
  };
  transitions: { at: number; state: string }[];
  storeErrors: number;
  /** The longest limiter.consume call on the server, in ms (the limiter alone, without HTTP). */
  maxCheckMs: number;
  switches?: { at: number; from: number; to: number }[];
}

export interface ServerStats {
  /** Event-loop stalls of the server over 100 ms: when (wall clock) and how long. */
  stalls: { at: number; ms: number }[];
  unhandled: number;
  uncaught: number;
  routes: Record<string, RouteStats>;
}

const serverScript = fileURLToPath(new URL('./server.mts', import.meta.url));
const repoRoot = fileURLToPath(new URL('../../../../', import.meta.url));

export async function startChaosServer(config: Record<string, unknown>): Promise<ChaosServer> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', serverScript], {
    cwd: repoRoot,
    env: { ...process.env, CHAOS_CONFIG: JSON.stringify(config) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = once(child, 'exit');
  const port = await new Promise<number>((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error('chaos server did not start within 20 s')), 20_000);
    child.stdout?.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      const line = text.split('\n').find((l) => l.startsWith('{'));
      if (line) {
        clearTimeout(timer);
        resolve((JSON.parse(line) as { port: number }).port);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`chaos server exited with ${code} before listening`));
    });
  });
  const agent = new Agent({ keepAlive: true, maxSockets: 8 });
  return {
    port,
    async stats() {
      const sample = await get(agent, port, '/__stats', 5000);
      return sample.body as unknown as ServerStats;
    },
    async stop() {
      agent.destroy();
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}

export interface LoadPlan {
  port: number;
  /** Requests per second, all paths together. */
  rps: number;
  durationMs: number;
  /** The path of the i-th request. */
  path: (i: number, elapsedMs: number) => string;
  /** Things to do at given times after the start (kill, freeze, ...). */
  events?: { atMs: number; run: () => unknown }[];
  hangMs?: number;
}

/**
 * Send an unmeasured second of load first, so the measured run sees a warm server (JIT-compiled
 * handlers, open connections), as production traffic would.
 */
export async function warmUp(port: number, paths: readonly string[], rps = 300): Promise<number> {
  const samples = await runLoad({ port, rps, durationMs: 1000, path: (i) => paths[i % paths.length] });
  // The p99 of this fault-free second, reported next to a failed bound: on a saturated machine it
  // shows the bound was lost to the machine, not to the store.
  return percentile(
    samples.map((s) => s.latencyMs),
    99,
  );
}

/** Send `rps` requests per second for `durationMs`; resolve when every request has ended. */
export async function runLoad(plan: LoadPlan): Promise<Sample[]> {
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  const started = performance.now();
  const pending: Promise<Sample>[] = [];
  const events = [...(plan.events ?? [])].sort((a, b) => a.atMs - b.atMs);
  const eventRuns: Promise<unknown>[] = [];
  const total = Math.round((plan.rps * plan.durationMs) / 1000);
  const tickMs = 10;
  let sent = 0;
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const elapsed = performance.now() - started;
      while (events.length > 0 && events[0].atMs <= elapsed) {
        eventRuns.push(Promise.resolve(events.shift()!.run()));
      }
      const due = Math.min(total, Math.floor((elapsed * plan.rps) / 1000));
      while (sent < due) {
        pending.push(get(agent, plan.port, plan.path(sent, elapsed), plan.hangMs ?? 5000));
        sent++;
      }
      if (sent >= total && events.length === 0) {
        clearInterval(timer);
        resolve();
      }
    }, tickMs);
  });
  const samples = await Promise.all(pending);
  await Promise.all(eventRuns);
  agent.destroy();
  return samples;
}

function get(agent: Agent, port: number, path: string, hangMs: number): Promise<Sample> {
  const sentAt = Date.now();
  const t0 = performance.now();
  return new Promise<Sample>((resolve) => {
    let settled = false;
    const finish = (status: number, body: Sample['body'], retryAfter?: string) => {
      if (settled) return;
      settled = true;
      resolve({ path, sentAt, latencyMs: performance.now() - t0, status, body, retryAfter });
    };
    const req = request({ host: '127.0.0.1', port, path, agent }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
      });
      res.on('end', () => {
        let body: Sample['body'] = {};
        try {
          body = JSON.parse(text) as Sample['body'];
        } catch {
          // not JSON: keep {}
        }
        const retryAfter = res.headers['retry-after'];
        finish(res.statusCode ?? 0, body, typeof retryAfter === 'string' ? retryAfter : undefined);
      });
    });
    req.setTimeout(hangMs, () => {
      req.destroy();
      finish(0, {});
    });
    req.on('error', () => finish(0, {}));
    req.end();
  });
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}
