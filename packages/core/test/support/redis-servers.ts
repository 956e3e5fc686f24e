/**
 * Real Redis topologies for tests, started from the redis-server binary on free loopback ports:
 * a standalone server, a Cluster of masters (redis-cli --cluster create), and a master + replica +
 * Sentinels (redis-server <conf> --sentinel, so the redis-sentinel binary is not needed). Every
 * process is ended by its pid: by `stop()`, and as a last resort when the test process exits.
 * Never touches the machine's own Redis on 6379.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const started = new Set<ChildProcess>();

process.once('exit', () => {
  for (const child of started) if (child.pid !== undefined && child.exitCode === null) child.kill('SIGKILL');
});

/** A port nobody listens on now (and, with `bus`, port + 10000 too, for Cluster's bus). */
export async function freePort(bus = false): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await listenOnce(0);
    if (port > 55_000 && bus) continue;
    if (!bus || (await isFree(port + 10_000))) return port;
  }
  throw new Error('no free port pair found');
}

function listenOnce(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : port));
    });
  });
}

async function isFree(port: number): Promise<boolean> {
  try {
    await listenOnce(port);
    return true;
  } catch {
    return false;
  }
}

/** redis-cli -p <port> <args...>, trimmed output. */
export async function cli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], {
    timeout: 5000,
  });
  return stdout.trim();
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

export interface RedisServer {
  readonly port: number;
  readonly pid: number;
  readonly process: ChildProcess;
  /** Send a signal to this process (SIGKILL to crash it, SIGSTOP/SIGCONT to hang it). */
  signal(signal: NodeJS.Signals): void;
  /** End the process and wait for it to exit. */
  stop(): Promise<void>;
}

function spawnServer(args: string[], port: number): RedisServer {
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  started.add(child);
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4000);
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4000);
  });
  child.once('exit', () => started.delete(child));
  if (child.pid === undefined) throw new Error('redis-server did not start (is it installed?)');
  const pid = child.pid;
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  Object.defineProperty(child, 'recentOutput', { get: () => output });
  return {
    port,
    pid,
    process: child,
    signal(signal) {
      if (child.exitCode === null && child.signalCode === null) process.kill(pid, signal);
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        process.kill(pid, 'SIGCONT');
        process.kill(pid, 'SIGKILL');
      }
      await exited;
    },
  };
}

export interface StartOptions {
  /** Extra redis-server arguments, like ['--cluster-enabled', 'yes']. */
  args?: string[];
  port?: number;
  /** Working directory (nodes.conf, etc.); a fresh temporary one by default. */
  dir?: string;
}

/** One redis-server on a free loopback port, with persistence off; resolves once it answers PING. */
export async function startRedis(options: StartOptions = {}): Promise<RedisServer> {
  const port = options.port ?? (await freePort());
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'fg-redis-'));
  const server = spawnServer(
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
      ...(options.args ?? []),
    ],
    port,
  );
  // A directory made here goes with the process (a caller's own directory is the caller's to remove).
  if (options.dir === undefined)
    server.process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  await until(`redis-server on ${port}`, async () => (await cli(port, 'ping')) === 'PONG', 10_000);
  return server;
}

export interface RedisCluster {
  readonly nodes: RedisServer[];
  /** redis+cluster://127.0.0.1:p1,127.0.0.1:p2,… */
  readonly uri: string;
  stop(): Promise<void>;
}

/**
 * A Cluster of `masters` masters and `replicas` replicas per master (cluster-node-timeout 1000 ms),
 * created with redis-cli --cluster create; resolves when cluster_state is ok everywhere and every
 * replica is in sync with its master.
 */
export async function startCluster(masters = 3, replicas = 0): Promise<RedisCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'fg-cluster-'));
  const nodes: RedisServer[] = [];
  try {
    for (let i = 0; i < masters * (1 + replicas); i++) {
      const port = await freePort(true);
      nodes.push(
        await startRedis({
          port,
          dir,
          args: [
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            `nodes-${port}.conf`,
            '--cluster-node-timeout',
            '1000',
          ],
        }),
      );
    }
    await run(
      'redis-cli',
      [
        '--cluster',
        'create',
        ...nodes.map((n) => `127.0.0.1:${n.port}`),
        '--cluster-replicas',
        String(replicas),
        '--cluster-yes',
      ],
      { timeout: 30_000 },
    );
    for (const node of nodes) {
      await until(`cluster_state:ok on ${node.port}`, async () =>
        (await cli(node.port, 'cluster', 'info')).includes('cluster_state:ok'),
      );
    }
    if (replicas > 0) {
      for (const node of nodes) {
        await until(`node ${node.port} in sync`, async () => {
          const info = await cli(node.port, 'info', 'replication');
          return info.includes('role:master') || info.includes('master_link_status:up');
        });
      }
    }
  } catch (error) {
    await Promise.all(nodes.map((n) => n.stop()));
    throw error;
  }
  return {
    nodes,
    uri: `redis+cluster://${nodes.map((n) => `127.0.0.1:${n.port}`).join(',')}`,
    async stop() {
      await Promise.all(nodes.map((n) => n.stop()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface RedisSentinelSetup {
  readonly master: RedisServer;
  readonly replica: RedisServer;
  readonly sentinels: RedisServer[];
  readonly name: string;
  /** redis+sentinel://127.0.0.1:s1,127.0.0.1:s2,127.0.0.1:s3/<name> */
  readonly uri: string;
  /** Port of the master as the Sentinels see it now. */
  currentMasterPort(): Promise<number>;
  stop(): Promise<void>;
}

/**
 * A master, one replica and `count` Sentinels (quorum 2, down-after 1000 ms), ready for a failover:
 * resolves once the replica is in sync and every Sentinel knows the replica and the other Sentinels.
 */
export async function startSentinels(count = 3, name = 'fgmaster'): Promise<RedisSentinelSetup> {
  const dir = mkdtempSync(join(tmpdir(), 'fg-sentinel-'));
  const servers: RedisServer[] = [];
  try {
    const master = await startRedis({ dir });
    servers.push(master);
    const replica = await startRedis({ dir, args: ['--replicaof', '127.0.0.1', String(master.port)] });
    servers.push(replica);
    await until('replica in sync', async () =>
      (await cli(replica.port, 'info', 'replication')).includes('master_link_status:up'),
    );
    const sentinels: RedisServer[] = [];
    for (let i = 0; i < count; i++) {
      const port = await freePort();
      const conf = join(dir, `sentinel-${port}.conf`);
      writeFileSync(
        conf,
        [
          `port ${port}`,
          'bind 127.0.0.1',
          `dir ${dir}`,
          `sentinel monitor ${name} 127.0.0.1 ${master.port} 2`,
          `sentinel down-after-milliseconds ${name} 1000`,
          `sentinel failover-timeout ${name} 5000`,
          `sentinel parallel-syncs ${name} 1`,
          '',
        ].join('\n'),
      );
      const sentinel = spawnServer([conf, '--sentinel'], port);
      servers.push(sentinel);
      sentinels.push(sentinel);
    }
    for (const sentinel of sentinels) {
      await until(`sentinel ${sentinel.port} ready`, async () => {
        const info = await cli(sentinel.port, 'info', 'sentinel');
        return info.includes(`slaves=1`) && info.includes(`sentinels=${count}`);
      });
    }
    return {
      master,
      replica,
      sentinels,
      name,
      uri: `redis+sentinel://${sentinels.map((s) => `127.0.0.1:${s.port}`).join(',')}/${name}`,
      async currentMasterPort() {
        const reply = await cli(sentinels[0].port, 'sentinel', 'get-master-addr-by-name', name);
        return Number(reply.split('\n')[1]);
      },
      async stop() {
        await Promise.all(servers.map((s) => s.stop()));
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await Promise.all(servers.map((s) => s.stop()));
    throw error;
  }
}
