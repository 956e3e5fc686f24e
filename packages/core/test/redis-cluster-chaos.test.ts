/**
 * Redis Cluster while it changes under the checks: a slot moved to another master by hand (CLUSTER
 * SETSLOT IMPORTING/MIGRATING, MIGRATE one key at a time, SETSLOT NODE) while checks on a key of
 * that slot run, and a master SIGKILLed so that its replica is promoted. Real redis-server
 * processes on free loopback ports (cluster-node-timeout 1000 ms).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FloodgateError } from '../src/errors.js';
import { parsePolicies } from '../src/rate.js';
import { RedisStore } from '../src/stores/redis/index.js';
import { clientPart, redisKey, slotOf } from '../src/stores/redis/keys.js';
import type { Policy } from '../src/types.js';
import { cli, type RedisCluster, startCluster } from './support/redis-servers.js';

interface ClusterNode {
  id: string;
  port: number;
  flags: string[];
  /** The id of this node's master, for a replica. */
  master: string;
  /** Slot ranges served, inclusive. */
  slots: [number, number][];
}

/** CLUSTER NODES as one node sees it. */
async function clusterNodes(port: number): Promise<ClusterNode[]> {
  const text = await cli(port, 'cluster', 'nodes');
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const [id, address, flags, master, , , , , ...ranges] = line.trim().split(' ');
      return {
        id,
        port: Number(address.split('@')[0].split(':')[1]),
        flags: flags.split(','),
        master,
        slots: ranges
          .filter((r) => !r.startsWith('['))
          .map((r) => {
            const [from, to] = r.split('-').map(Number);
            return [from, to ?? from] as [number, number];
          }),
      };
    });
}

function ownerOf(nodes: ClusterNode[], slot: number): ClusterNode {
  const owner = nodes.find(
    (n) => n.flags.includes('master') && n.slots.some(([a, b]) => slot >= a && slot <= b),
  );
  if (owner === undefined) throw new Error(`no master serves slot ${slot}`);
  return owner;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Tally {
  attempted: number;
  admitted: number;
  errors: unknown[];
}

/** Run `workers` loops of checks on one key until `stop()` says so; a pause between checks paces them. */
function runChecks(
  store: RedisStore,
  key: string,
  policies: readonly Policy[],
  tally: Tally,
  options: {
    workers: number;
    pauseMs: number;
    stop: () => boolean;
    /** Called with what `label()` said when the check was sent. */
    onAnswer?: (label: string) => void;
    onError?: () => void;
    label?: () => string;
  },
): Promise<void> {
  return Promise.all(
    Array.from({ length: options.workers }, async () => {
      while (!options.stop()) {
        tally.attempted++;
        const label = options.label?.() ?? '';
        try {
          const decisions = await store.consume(key, policies, 1);
          if (decisions.every((d) => d.allowed)) tally.admitted++;
          options.onAnswer?.(label);
        } catch (error) {
          tally.errors.push(error);
          options.onError?.();
        }
        if (options.pauseMs > 0) await sleep(options.pauseMs);
      }
    }),
  ).then(() => undefined);
}

describe('Cluster resharding while checks run', () => {
  let cluster: RedisCluster;
  beforeAll(async () => {
    cluster = await startCluster(3);
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it('answers every check while the slot moves (MIGRATING, keys split, ASK, MOVED) and admits exactly the limit', async () => {
    // A command timeout longer than the time the keys stay split: a timed-out call may have run, so
    // it is not sent again; calls that only met redirections are.
    const store = new RedisStore({ url: cluster.uri, connectTimeoutMs: 5000, timeoutMs: 3000 });
    const LIMIT = 3000;
    // Two policies: two keys in the slot, so moving one before the other leaves the check's keys
    // split across the two masters for a while (TRYAGAIN from the source).
    const policies = parsePolicies(
      [
        { limit: LIMIT, window: '1h', algorithm: 'fixed-window', name: 'exact' },
        { limit: 1_000_000, window: '1h', algorithm: 'token-bucket', name: 'wide' },
      ],
      { prefix: `fgshard-${process.pid}-${Date.now().toString(36)}:` },
    );
    const key = 'reshard-me';
    const keys = policies.map((p) => redisKey(p.bucket, clientPart(key)));
    const slot = slotOf(clientPart(key));
    expect(Number(await cli(cluster.nodes[0].port, 'cluster', 'keyslot', keys[0]))).toBe(slot);

    const nodes = await clusterNodes(cluster.nodes[0].port);
    const source = ownerOf(nodes, slot);
    const target = nodes.find((n) => n.flags.includes('master') && n.id !== source.id);
    if (target === undefined) throw new Error('no other master');

    const tally: Tally = { attempted: 0, admitted: 0, errors: [] };
    const PHASES = ['before', 'migrating', 'split', 'asking', 'moved'];
    let phase = 'before';
    /** Per phase, the checks answered that were sent in it or were waiting through it. */
    const answeredIn = new Map<string, number>();
    let migrating = true;
    const paced = runChecks(store, key, policies, tally, {
      workers: 4,
      pauseMs: 5,
      stop: () => !migrating,
      label: () => phase,
      onAnswer: (sentIn) => {
        for (let p = PHASES.indexOf(sentIn); p <= PHASES.indexOf(phase); p++) {
          answeredIn.set(PHASES[p], (answeredIn.get(PHASES[p]) ?? 0) + 1);
        }
      },
    });
    const step = async (name: string, action: () => Promise<unknown>, lastsMs = 250) => {
      await action();
      phase = name;
      await sleep(lastsMs);
    };
    try {
      await sleep(250);
      await step('migrating', async () => {
        expect(await cli(target.port, 'cluster', 'setslot', String(slot), 'importing', source.id)).toBe('OK');
        expect(await cli(source.port, 'cluster', 'setslot', String(slot), 'migrating', target.id)).toBe('OK');
      });
      // Both keys exist on the source by now (the first check wrote them).
      expect(await cli(source.port, 'exists', ...keys)).toBe('2');
      // Long enough for ioredis to give up on its own (16 redirections: TRYAGAIN is retried on a
      // random node, which answers MOVED, 50 ms apart): the store then sends the call again.
      await step(
        'split',
        async () => cli(source.port, 'migrate', '127.0.0.1', String(target.port), keys[0], '0', '5000'),
        1000,
      );
      await step('asking', async () =>
        cli(source.port, 'migrate', '127.0.0.1', String(target.port), keys[1], '0', '5000'),
      );
      await step('moved', async () => {
        // The target first, then the source, then the rest (as redis-cli --cluster does).
        expect(await cli(target.port, 'cluster', 'setslot', String(slot), 'node', target.id)).toBe('OK');
        expect(await cli(source.port, 'cluster', 'setslot', String(slot), 'node', target.id)).toBe('OK');
        for (const other of nodes.filter((n) => n.id !== source.id && n.id !== target.id)) {
          await cli(other.port, 'cluster', 'setslot', String(slot), 'node', target.id);
        }
      });
    } finally {
      migrating = false;
      await paced;
    }
    // Then as fast as the store goes, until well past the limit.
    await runChecks(store, key, policies, tally, {
      workers: 64,
      pauseMs: 0,
      stop: () => tally.attempted >= LIMIT + 500,
    });

    console.info(
      `resharding: checks answered, by the phases they were sent in or waited through: ${JSON.stringify(Object.fromEntries(answeredIn))}; calls sent again after a redirection loop: ${store.stats.resent}`,
    );
    expect(tally.errors).toEqual([]);
    // Checks sent in, or waiting through, every phase of the move were answered (those that meet
    // the keys split wait on TRYAGAIN retries until the second key has moved too).
    for (const name of PHASES) {
      expect({ phase: name, answered: (answeredIn.get(name) ?? 0) > 0 }).toEqual({
        phase: name,
        answered: true,
      });
    }
    expect(tally.admitted).toBe(LIMIT);
    expect(store.stats.resent).toBeGreaterThan(0);
    // The keys now live on the target, with their TTLs, and nowhere else.
    expect(ownerOf(await clusterNodes(source.port), slot).id).toBe(target.id);
    expect(await cli(target.port, 'exists', ...keys)).toBe('2');
    expect(await cli(source.port, 'cluster', 'countkeysinslot', String(slot))).toBe('0');
    for (const k of keys) expect(Number(await cli(target.port, 'pttl', k))).toBeGreaterThan(0);
    // The client really met every kind of redirection (MOVED may come from any node), and none
    // reached a check.
    const errorstats = (
      await Promise.all(cluster.nodes.map((node) => cli(node.port, 'info', 'errorstats')))
    ).join('\n');
    for (const reply of ['ASK', 'TRYAGAIN', 'MOVED']) {
      expect(errorstats).toMatch(new RegExp(`errorstat_${reply}:count=[1-9]`));
    }
    await store.close();
  }, 60_000);
});

describe('Cluster failover', () => {
  let cluster: RedisCluster;
  beforeAll(async () => {
    cluster = await startCluster(3, 1);
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it('checks resume on the promoted replica after the master of their slot is SIGKILLed', async () => {
    const store = new RedisStore({ url: cluster.uri, connectTimeoutMs: 5000 });
    const policies = parsePolicies(
      { limit: 1_000_000, window: '1h', algorithm: 'gcra', name: 'f' },
      { prefix: `fgfail-${process.pid}-${Date.now().toString(36)}:` },
    );
    const key = 'failover-me';
    const slot = slotOf(clientPart(key));
    const nodes = await clusterNodes(cluster.nodes[0].port);
    const master = ownerOf(nodes, slot);
    const replica = nodes.find((n) => n.master === master.id);
    if (replica === undefined) throw new Error(`no replica of ${master.port}`);
    const victim = cluster.nodes.find((n) => n.port === master.port);
    if (victim === undefined) throw new Error('master not started by this test');

    const tally: Tally = { attempted: 0, admitted: 0, errors: [] };
    let killedAt = 0;
    let answersAfterKill = 0;
    let lastErrorAt = 0;
    const checks = runChecks(store, key, policies, tally, {
      workers: 4,
      pauseMs: 5,
      stop: () => answersAfterKill >= 50 || (killedAt > 0 && Date.now() - killedAt > 20_000),
      onAnswer: () => {
        // Only answers after the checks failed count as resumed (some in flight may land first).
        if (killedAt > 0 && tally.errors.length > 0) answersAfterKill++;
      },
      onError: () => {
        lastErrorAt = Date.now();
      },
    });
    await sleep(300);
    const before = tally.admitted;
    expect(before).toBeGreaterThan(0);
    victim.signal('SIGKILL');
    killedAt = Date.now();
    await checks;

    // The replica was promoted and the checks came back (20 s is far beyond node-timeout 1000 ms).
    expect(answersAfterKill).toBeGreaterThanOrEqual(50);
    expect(await cli(replica.port, 'role').then((r) => r.split('\n')[0])).toBe('master');
    expect(ownerOf(await clusterNodes(replica.port), slot).id).toBe(replica.id);
    // The checks that failed during the election failed as FloodgateErrors, never raw values: the
    // node unreachable, or a check sent to it before it died that got no answer within timeoutMs.
    for (const error of tally.errors) {
      expect(error).toBeInstanceOf(FloodgateError);
      expect(['FLOODGATE_STORE_UNAVAILABLE', 'FLOODGATE_STORE_TIMEOUT']).toContain(
        (error as FloodgateError).code,
      );
    }
    console.info(
      `failover: ${tally.errors.length} checks failed, the last ${lastErrorAt === 0 ? '-' : lastErrorAt - killedAt} ms after the SIGKILL; ${answersAfterKill} answered after it; ${[...new Set(tally.errors.map((e) => (e as Error).message))].join(' | ')}`,
    );
    await store.close();
  }, 60_000);
});
