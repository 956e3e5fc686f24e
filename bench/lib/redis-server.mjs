// The bench runs its own redis-server on a free loopback port: INFO commandstats and the
// redis-benchmark figure then count only the bench's own traffic, not other tests on :6379.
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

export function haveBinary(name) {
  return spawnSync('sh', ['-c', `command -v ${name}`]).status === 0;
}

/** Starts redis-server (no persistence) and resolves once it answers PING. */
export async function startRedis() {
  if (process.env.BENCH_REDIS_URL) {
    const url = new URL(process.env.BENCH_REDIS_URL);
    return {
      url: process.env.BENCH_REDIS_URL,
      host: url.hostname,
      port: Number(url.port || 6379),
      own: false,
      stop: async () => {},
    };
  }
  if (!haveBinary('redis-server')) return undefined;
  const port = await freePort();
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxmemory', '2gb'],
    { stdio: 'ignore' },
  );
  for (let i = 0; i < 100; i++) {
    const ping = spawnSync('redis-cli', ['-p', String(port), 'PING'], { encoding: 'utf8' });
    if (ping.stdout?.trim() === 'PONG') break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url: `redis://127.0.0.1:${port}/0`,
    host: '127.0.0.1',
    port,
    own: true,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/** Total command calls and per-command calls from INFO commandstats. */
export async function commandStats(client) {
  const text = await client.info('commandstats');
  const perCommand = {};
  let total = 0;
  for (const line of text.split('\n')) {
    const m = /^cmdstat_([^:]+):calls=(\d+)/.exec(line.trim());
    if (m) {
      perCommand[m[1]] = Number(m[2]);
      total += Number(m[2]);
    }
  }
  return { total, perCommand };
}

/** Commands per check between two snapshots, not counting the INFO call that took the second one. */
export function commandsPerCheck(before, after, checks) {
  const delta = {};
  for (const [name, calls] of Object.entries(after.perCommand)) {
    const d = calls - (before.perCommand[name] ?? 0) - (name === 'info' ? 1 : 0);
    if (d > 0) delta[name] = d / checks;
  }
  const total = Object.values(delta).reduce((a, b) => a + b, 0);
  return { total, perCommand: delta };
}
