// A burst against each algorithm: 10 requests/s allowed, a client sends 4 requests every 100 ms
// for 1 s, pauses, then sends again. Time is simulated (an injected clock), so the run is instant
// and the same every time. Run: npx pnpm@10 demo
import { ALGORITHM_NAMES, Limiter, MemoryStore } from '@floodgate/core';

let now = Date.UTC(2026, 0, 1);
const store = new MemoryStore({ clock: () => now });
const start = now;
const limiters = ALGORITHM_NAMES.map(
  (algorithm) => new Limiter({ limit: '10/s', algorithm, name: algorithm, store }),
);

const schedule = [];
for (let t = 0; t < 1000; t += 100) schedule.push({ at: t, requests: 4 });
for (let t = 1500; t < 2500; t += 250) schedule.push({ at: t, requests: 4 });

const rows = [];
const totals = Object.fromEntries(ALGORITHM_NAMES.map((a) => [a, 0]));
for (const { at, requests } of schedule) {
  now = start + at;
  const row = { 'time (ms)': at };
  for (const limiter of limiters) {
    const name = limiter.policies[0].algorithm;
    let admitted = 0;
    let last;
    for (let i = 0; i < requests; i++) {
      last = await limiter.consume('client');
      if (last.allowed) admitted++;
    }
    totals[name] += admitted;
    row[name] = `${admitted}/${requests}${admitted < requests ? ` (retry ${last.retryAfterMs}ms)` : ''}`;
  }
  rows.push(row);
}
console.log('Admitted/sent per tick, limit 10/s, 4 requests every tick:\n');
console.table(rows);
console.log('Admitted in total:', totals);
for (const limiter of limiters) await limiter.close();
await store.close();
