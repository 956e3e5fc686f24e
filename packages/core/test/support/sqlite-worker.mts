// A separate process using a SQLite file, driven over stdin; every answer is one JSON line.
//   burst <algorithm> <prefix> <n> <limit> [wave]
//                                           n checks on key "hot" (window 1h), all at once or `wave` per
//                                           event-loop turn (many small transactions), or with wave 0 one
//                                           at a time, each awaited before the next: {admitted, denied, failed, codes}
//   flood <prefix>                          checks forever in groups of 64 on key "flood" (limit 1e9);
//                                           after each group commits: {committed: admitted so far}
//   peek <algorithm> <prefix> <limit>       {remaining} of key "hot" (or "flood" when limit is 1e9)
import { createInterface } from 'node:readline';
import { parsePolicies } from '../../src/rate.js';
import { SqliteStore } from '../../src/stores/sqlite/index.js';
import type { AlgorithmName } from '../../src/types.js';

const [path] = process.argv.slice(2);
const store = new SqliteStore({ path });
const say = (value: unknown) => process.stdout.write(`${JSON.stringify(value)}\n`);
const policiesOf = (algorithm: string, prefix: string, limit: number) =>
  parsePolicies({ limit, window: '1h' }, { prefix, algorithm: algorithm as AlgorithmName });
say({ ready: true });

for await (const line of createInterface({ input: process.stdin })) {
  const [command, ...args] = line.trim().split(' ');
  if (command === 'burst') {
    const [algorithm, prefix, n, limit, wave = n] = args;
    const policies = policiesOf(algorithm, prefix, Number(limit));
    const calls: Promise<unknown>[] = [];
    if (wave === '0') {
      // Checks made alone: each a group of one, decided from this process's cached row when it has one.
      for (let i = 0; i < Number(n); i++) {
        const call = store.consume('hot', policies, 1);
        calls.push(call);
        await call.catch(() => {});
      }
    }
    while (calls.length < Number(n)) {
      for (let i = 0; i < Number(wave) && calls.length < Number(n); i++) {
        calls.push(store.consume('hot', policies, 1));
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
    const results = (await Promise.allSettled(calls)) as PromiseSettledResult<
      Awaited<ReturnType<typeof store.consume>>
    >[];
    say({
      admitted: results.filter((r) => r.status === 'fulfilled' && r.value[0].allowed).length,
      denied: results.filter((r) => r.status === 'fulfilled' && !r.value[0].allowed).length,
      failed: results.filter((r) => r.status === 'rejected').length,
      codes: results.flatMap((r) =>
        r.status === 'rejected' ? [String((r.reason as { code?: string }).code)] : [],
      ),
    });
  } else if (command === 'flood') {
    const policies = policiesOf('fixed-window', args[0], 1e9);
    let committed = 0;
    for (;;) {
      const decisions = await Promise.all(
        Array.from({ length: 64 }, () => store.consume('flood', policies, 1)),
      );
      committed += decisions.filter((d) => d[0].allowed).length;
      say({ committed });
    }
  } else if (command === 'peek') {
    const [algorithm, prefix, limit] = args;
    const key = Number(limit) === 1e9 ? 'flood' : 'hot';
    const [decision] = await store.peek(key, policiesOf(algorithm, prefix, Number(limit)));
    say({ remaining: decision.remaining });
  } else {
    break;
  }
}
await store.close();
