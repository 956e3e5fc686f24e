/**
 * examples/sqlite-cluster run as it is shipped (built packages, Node's cluster, a SQLite file):
 * four worker processes answer one port in turn, a client gets its 10 a minute in all, and the
 * counts outlive a restart of the whole cluster.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { request } from '../../core/test/support/adapters.js';

const exampleDir = fileURLToPath(new URL('../../../examples/sqlite-cluster/', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'floodgate-cluster-example-'));
const running: ChildProcess[] = [];
afterAll(() => {
  for (const child of running) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** Start the example's cluster; resolve with its port once every worker listens. */
async function startCluster(workers: number, file: string): Promise<{ port: number; stop(): Promise<void> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'app.ts'], {
    cwd: exampleDir,
    env: { ...process.env, PORT: '0', WORKERS: String(workers), DB_FILE: file },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  running.push(child);
  const ports = new Set<number>();
  let listening = 0;
  let out = '';
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`the example exited (${code}) before listening`)));
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      for (const match of out.matchAll(/on http:\/\/127\.0\.0\.1:(\d+)/g)) ports.add(Number(match[1]));
      listening = out.split('\n').filter((line) => line.includes(' on http://')).length;
      if (listening === workers) resolve();
    });
  });
  expect([...ports].length).toBe(1); // one port, shared by every worker
  return {
    port: [...ports][0],
    async stop() {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    },
  };
}

describe('examples/sqlite-cluster', () => {
  it('four workers share one count per client, and the count outlives a restart', async () => {
    const file = join(dir, 'limits.db');
    const first = await startCluster(4, file);
    const replies = [];
    // A new connection per request: the cluster hands them to the workers in turn.
    for (let i = 0; i < 16; i++) replies.push(await request({ port: first.port }, '/'));
    expect(replies.map((r) => r.status)).toEqual([...Array(10).fill(200), ...Array(6).fill(429)]);
    const admitted = replies
      .slice(0, 10)
      .map((r) => JSON.parse(r.body) as { worker: number; remaining: number });
    expect(admitted.map((a) => a.remaining)).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
    expect(new Set(admitted.map((a) => a.worker)).size).toBe(4);
    await first.stop();

    const second = await startCluster(2, file);
    const after = await request({ port: second.port }, '/');
    expect(after.status).toBe(429);
    expect(Number(after.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    await second.stop();
  }, 60_000);
});
