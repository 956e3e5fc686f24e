/**
 * examples/sqlite-cluster run as it is shipped (built packages, Node's cluster, a SQLite file):
 * four worker processes answer one port in turn, a client gets its 10 a minute in all, and the
 * counts outlive a restart of the whole cluster.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { request } from '../../core/test/support/adapters.js';
import { killExamples, startExample } from '../../core/test/support/example-apps.js';

const dir = mkdtempSync(join(tmpdir(), 'floodgate-cluster-example-'));
afterAll(() => {
  killExamples();
  rmSync(dir, { recursive: true, force: true });
});

/** The example's cluster, resolved once every worker listens (all on one port). */
const startCluster = (workers: number, file: string) =>
  startExample('sqlite-cluster', { WORKERS: String(workers), DB_FILE: file }, workers);

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
