/**
 * Sentinel: a master, a replica and 3 Sentinels started for this file. The store finds the master
 * through the Sentinels; after the master is SIGKILLed, checks fail fast with a FloodgateError while
 * the Sentinels fail over, and resume on the promoted replica within 5 s.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FloodgateError } from '../src/errors.js';
import { parsePolicies } from '../src/rate.js';
import { RedisStore } from '../src/stores/redis/index.js';
import { cli, type RedisSentinelSetup, startSentinels } from './support/redis-servers.js';

describe('RedisStore on Sentinel', () => {
  let setup: RedisSentinelSetup;
  let store: RedisStore;
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);

  beforeAll(async () => {
    process.on('unhandledRejection', onUnhandled);
    setup = await startSentinels(3);
    store = new RedisStore({ url: setup.uri });
  }, 60_000);
  afterAll(async () => {
    process.off('unhandledRejection', onUnhandled);
    await store?.close();
    await setup?.stop();
  });

  it('checks on the master found through the Sentinels, then resume within 5 s of a SIGKILL failover', async () => {
    const policies = parsePolicies(
      { limit: 1000, window: '1h' },
      { prefix: 'fgs:', algorithm: 'fixed-window' },
    );
    for (let i = 0; i < 3; i++) expect((await store.consume('k', policies, 1))[0].remaining).toBe(999 - i);
    // The writes went to the master and replicated to the replica.
    expect(await cli(setup.master.port, 'exists', 'fgs:1000-in-1h:fw{k}')).toBe('1');
    expect(await cli(setup.master.port, 'wait', '1', '2000')).toBe('1');

    setup.master.signal('SIGKILL');
    const killedAt = Date.now();
    let resumedAt = 0;
    let failures = 0;
    let slowest = 0;
    while (Date.now() - killedAt < 15_000) {
      const started = Date.now();
      try {
        await store.consume('k', policies, 1);
        resumedAt = Date.now();
        break;
      } catch (error) {
        expect(error).toBeInstanceOf(FloodgateError);
        expect((error as FloodgateError).code).toMatch(/^FLOODGATE_STORE_(UNAVAILABLE|FAILED)$/);
        failures++;
      }
      slowest = Math.max(slowest, Date.now() - started);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(resumedAt).toBeGreaterThan(0);
    expect(resumedAt - killedAt).toBeLessThanOrEqual(5000);
    // Failing calls failed fast (commandTimeout 500 ms plus slack), never hung.
    expect(slowest).toBeLessThan(1500);
    expect(failures).toBeGreaterThan(0);
    expect(await setup.currentMasterPort()).toBe(setup.replica.port);
    // The count carried over through replication: 3 before the kill, 1 after.
    expect((await store.peek('k', policies))[0].remaining).toBe(996);
    expect(unhandled).toEqual([]);
  }, 30_000);
});
