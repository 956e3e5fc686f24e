/**
 * Exactness across processes: 4 processes x 200 checks in flight on one key with a limit of 100 must
 * admit exactly 100, for every exact algorithm, on a standalone server and on a 3-master Cluster.
 * Window 1 h, so refill during the run stays below one unit for the bucket algorithms.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { createInterface, type Interface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AlgorithmName } from '../src/types.js';
import {
  cli,
  type RedisCluster,
  type RedisServer,
  startCluster,
  startRedis,
} from './support/redis-servers.js';

const WORKER = fileURLToPath(new URL('./support/redis-exactness-worker.mts', import.meta.url));
const EXACT: AlgorithmName[] = ['fixed-window', 'sliding-log', 'token-bucket', 'leaky-bucket', 'gcra'];
const PROCESSES = 4;
const IN_FLIGHT = 200;

interface Worker {
  child: ChildProcessWithoutNullStreams;
  lines: Interface;
  next(): Promise<string>;
}

function startWorker(url: string): Worker {
  const child = spawn(process.execPath, ['--import', 'tsx', WORKER, url, String(IN_FLIGHT)], {
    cwd: fileURLToPath(new URL('..', import.meta.url)),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let errors = '';
  child.stderr.on('data', (chunk: Buffer) => {
    errors += chunk.toString();
  });
  const lines = createInterface({ input: child.stdout });
  const iterator = lines[Symbol.asyncIterator]();
  return {
    child,
    lines,
    async next() {
      const { value, done } = await iterator.next();
      if (done) throw new Error(`worker ended: ${errors}`);
      return value as string;
    },
  };
}

async function hammer(workers: Worker[], topology: string): Promise<void> {
  await Promise.all(workers.map(async (w) => expect(await w.next()).toBe('ready')));
  for (const algorithm of EXACT) {
    const prefix = `fgx-${topology}-${process.pid}-${Date.now()}:`;
    for (const w of workers) w.child.stdin.write(`go ${algorithm} ${prefix}\n`);
    const results = await Promise.all(workers.map(async (w) => JSON.parse(await w.next())));
    const admitted = results.reduce((sum, r) => sum + r.admitted, 0);
    expect({ algorithm, admitted, failed: results.reduce((s, r) => s + r.failed, 0) }).toEqual({
      algorithm,
      admitted: 100,
      failed: 0,
    });
    // Coalesced: far fewer script calls than checks (200 per process, batches of up to 64).
    for (const r of results) expect(r.calls).toBeLessThanOrEqual(EXACT.indexOf(algorithm) * 8 + 8);
  }
}

async function stopWorkers(workers: Worker[]): Promise<void> {
  await Promise.all(
    workers.map(
      (w) =>
        new Promise<void>((resolve) => {
          if (w.child.exitCode !== null) return resolve();
          w.child.once('exit', () => resolve());
          w.child.stdin.end('stop\n');
          setTimeout(() => w.child.kill('SIGKILL'), 5000).unref();
        }),
    ),
  );
}

describe('exactness across 4 processes', () => {
  let server: RedisServer;
  let cluster: RedisCluster;
  beforeAll(async () => {
    [server, cluster] = await Promise.all([startRedis(), startCluster(3)]);
  });
  afterAll(async () => {
    await Promise.all([server?.stop(), cluster?.stop()]);
  });

  it('standalone: exactly the limit for every exact algorithm, and every key has a TTL', async () => {
    const workers = Array.from({ length: PROCESSES }, () => startWorker(`redis://127.0.0.1:${server.port}`));
    try {
      await hammer(workers, 'standalone');
    } finally {
      await stopWorkers(workers);
    }
    const keys = (await cli(server.port, '--scan', '--pattern', 'fgx-*')).split('\n').filter(Boolean);
    expect(keys.length).toBe(EXACT.length);
    for (const key of keys) {
      const ttl = Number(await cli(server.port, 'pttl', key));
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(3_600_000);
    }
  }, 120_000);

  it('Cluster: exactly the limit for every exact algorithm', async () => {
    const workers = Array.from({ length: PROCESSES }, () => startWorker(cluster.uri));
    try {
      await hammer(workers, 'cluster');
    } finally {
      await stopWorkers(workers);
    }
  }, 120_000);
});
