import { Redis } from 'ioredis';
import { makeKeys, runInFlight } from './lib/measure.mjs';
import { makeSubject } from './sections/inproc-redis.mjs';

const url = 'redis://127.0.0.1:6379/0';
const admin = new Redis(url);
const keys = makeKeys(100_000);
async function stats() {
  const text = await admin.info('commandstats');
  const out = {};
  for (const m of text.matchAll(/cmdstat_(\w+):calls=(\d+),usec=(\d+)/g))
    out[m[1]] = { calls: +m[2], usec: +m[3] };
  return out;
}
for (const name of (process.argv[2] ?? 'sliding-window,rate-limit-redis').split(',')) {
  const s = await makeSubject(name, url, `probe1:${name}:`);
  await runInFlight(s.op, { keys, inFlight: 1, durationMs: 1000 });
  for (let r = 0; r < 3; r++) {
    const before = await stats();
    const cpu0 = process.cpuUsage();
    const res = await runInFlight(s.op, { keys, inFlight: 1, durationMs: 2000 });
    const cpu = process.cpuUsage(cpu0);
    const after = await stats();
    const server = {};
    for (const [k, v] of Object.entries(after)) {
      const b = before[k] ?? { calls: 0, usec: 0 };
      if (v.calls > b.calls && k !== 'info') server[k] = ((v.usec - b.usec) / res.ops).toFixed(2);
    }
    console.log(
      name.padEnd(18),
      Math.round(res.opsPerSec),
      'µs/op',
      (1e6 / res.opsPerSec).toFixed(1),
      'client cpu µs/op',
      ((cpu.user + cpu.system) / res.ops).toFixed(1),
      'server µs/check',
      JSON.stringify(server),
    );
  }
  await s.close();
}
const del = await admin.eval(
  "local n=0 for _,k in ipairs(redis.call('KEYS','probe1:*')) do redis.call('DEL',k) n=n+1 end return n",
  0,
);
admin.disconnect();
