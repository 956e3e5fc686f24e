// Chaos test for the SQLite store: another program (the sqlite3 shell, a process of its own) holds the
// file's write lock for 5 s while ~300 requests/s reach a real Express server (a child process)
// whose three routes check a SQLite file. The same bounds as for a frozen Redis: p99 <= 250 ms,
// max <= 1 s, no hung request, no unhandled rejection; allow all 2xx, deny 503 + Retry-After,
// fallback still limits; the breaker opens within 1 s; SQLite decides again within 2 s of the lock
// being released.
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type ChaosServer, startChaosServer } from './load.js';
import { expectModes, loadThroughOutage, threeModes, warmUpModes } from './modes.js';

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

/** The sqlite3 shell on `path`, taking and releasing the write lock on request. */
class LockHolder {
  private output = '';
  private waiting: { marker: string; resolve: () => void } | undefined;

  private constructor(private readonly shell: ChildProcessWithoutNullStreams) {
    shell.stdout.setEncoding('utf8');
    shell.stdout.on('data', (chunk: string) => {
      this.output += chunk;
      if (this.waiting && this.output.includes(this.waiting.marker)) this.waiting.resolve();
    });
  }

  static open(path: string): LockHolder {
    const holder = new LockHolder(spawn('sqlite3', [path]));
    cleanup.push(() => holder.stop());
    return holder;
  }

  /** BEGIN IMMEDIATE (waiting out the servers' own short transactions); resolves once it holds the lock. */
  lock(): Promise<void> {
    return this.send(".timeout 5000\nBEGIN IMMEDIATE;\nSELECT 'locked';\n", 'locked');
  }

  unlock(): Promise<void> {
    return this.send("ROLLBACK;\nSELECT 'unlocked';\n", 'unlocked');
  }

  private send(commands: string, marker: string): Promise<void> {
    return new Promise((resolve) => {
      this.waiting = { marker, resolve };
      this.shell.stdin.write(commands);
    });
  }

  stop(): void {
    if (this.shell.exitCode === null) this.shell.kill('SIGKILL');
  }
}

describe('chaos: SQLite under load', () => {
  it('another program holds the write lock for 5 s: allow / deny / fallback stay within bounds', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'floodgate-chaos-sqlite-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, 'limits.db');
    // busyTimeoutMs is left at its default (5 s) and timeoutMs at its (250 ms): the bounds hold with the defaults.
    const app: ChaosServer = await startChaosServer(threeModes(`sqlite:///${path}`, 'chaos-lock:'));
    cleanup.push(() => app.stop());
    const baseline = await warmUpModes(app.port);
    const holder = LockHolder.open(path);
    const { samples, times } = await loadThroughOutage(app.port, {
      durationMs: 9000,
      fromMs: 1000,
      toMs: 6000,
      takeOut: () => holder.lock(),
      bringBack: () => holder.unlock(),
    });
    const stats = await app.stats();
    expectModes(samples, stats, times, baseline);
    // The lock was noticed by the Limiter's deadline: the store itself waited, without failing.
    expect(stats.routes.deny.health.counts.timeouts).toBeGreaterThan(0);
  }, 60_000);
});
