/**
 * The core store conformance suite, unchanged, against the Redis store: on the machine's Redis
 * (127.0.0.1:6379, a unique prefix per run) and on a 3-master Cluster started for this file.
 */
import { afterAll } from 'vitest';
import { RedisStore } from '../src/stores/redis/index.js';
import { describeStoreConformance } from '../src/testing/index.js';
import { type RedisCluster, startCluster } from './support/redis-servers.js';

describeStoreConformance({
  name: 'RedisStore (standalone)',
  create: (clock) => new RedisStore({ url: 'redis://127.0.0.1:6379/0', clock }),
});

let cluster: RedisCluster | undefined;
afterAll(async () => {
  await cluster?.stop();
});

describeStoreConformance({
  name: 'RedisStore (Cluster, 3 masters)',
  create: async (clock) => {
    cluster = await startCluster(3);
    return new RedisStore({ url: cluster.uri, clock });
  },
});
