// One of several processes hammering one key: `go <algorithm> <prefix>` on stdin fires `inFlight`
// checks at once (limit 100, window 1h) and prints how many were admitted, as JSON.
import { createInterface } from 'node:readline';
import { parsePolicies } from '../../src/rate.js';
import { RedisStore } from '../../src/stores/redis/index.js';
import type { AlgorithmName } from '../../src/types.js';

const [url, inFlightText] = process.argv.slice(2);
const inFlight = Number(inFlightText);
const store = new RedisStore({ url });
await store.health(); // connected before the parent says go
process.stdout.write('ready\n');

for await (const line of createInterface({ input: process.stdin })) {
  const [command, algorithm, prefix] = line.trim().split(' ');
  if (command !== 'go') break;
  const policies = parsePolicies(
    { limit: 100, window: '1h' },
    { prefix, algorithm: algorithm as AlgorithmName },
  );
  const results = await Promise.allSettled(
    Array.from({ length: inFlight }, () => store.consume('hot', policies, 1)),
  );
  const admitted = results.filter((r) => r.status === 'fulfilled' && r.value[0].allowed).length;
  const failed = results.filter((r) => r.status === 'rejected').length;
  process.stdout.write(`${JSON.stringify({ admitted, failed, calls: store.stats.calls })}\n`);
}
await store.close();
