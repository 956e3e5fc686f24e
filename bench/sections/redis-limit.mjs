// The physical limit of the Redis server: redis-benchmark EVALSHA of a one-INCR script on random keys
// with 50 connections, -P 1 and -P 16, and floodgate's distinct-key throughput on the same server,
// interleaved round by round so each ratio compares figures taken moments apart.
import { spawnSync } from 'node:child_process';
import { Redis } from 'ioredis';
import { firstLine } from '../lib/floodgate.mjs';
import { fmtInt } from '../lib/format.mjs';
import { openWorker } from '../lib/isolate.mjs';
import { makeKeys, median, runInFlight } from '../lib/measure.mjs';
import { haveBinary } from '../lib/redis-server.mjs';
import { makeSubject } from './inproc-redis.mjs';

const ONE_INCR = "return redis.call('INCR', KEYS[1])";
const IN_FLIGHT = 256;

function redisBenchmark({ host, port }, sha, pipeline, requests) {
  const out = spawnSync(
    'redis-benchmark',
    [
      '-h',
      host,
      '-p',
      String(port),
      '-c',
      '50',
      '-n',
      String(requests),
      '-P',
      String(pipeline),
      '-r',
      '100000',
      '--csv',
      'evalsha',
      sha,
      '1',
      'bench:rb:__rand_int__',
    ],
    { encoding: 'utf8' },
  );
  const line = out.stdout
    .trim()
    .split('\n')
    .find((l) => l.startsWith('"evalsha'));
  if (!line) throw new Error(`redis-benchmark printed no result: ${out.stderr || out.stdout}`);
  const [, rps, , , p50] = line.split('","');
  return { rps: Number(rps), p50Ms: Number(p50) };
}

/** Child side: floodgate (default algorithm) on 100k distinct keys, kept open across the rounds. */
export async function setup(_name, { url }) {
  return {
    ...(await makeSubject('sliding-window', url, `bench:limit:${process.pid}:`)),
    keys: makeKeys(100_000),
  };
}

export function round(state, { durationMs }) {
  return runInFlight(state.op, { keys: state.keys, inFlight: IN_FLIGHT, durationMs });
}

export async function teardown(state) {
  await state.close();
}

export default async function run(ctx) {
  if (!ctx.redis || !haveBinary('redis-benchmark')) {
    return {
      title: 'Redis physical limit',
      notes: ['redis-server or redis-benchmark missing: section skipped.'],
      tables: [],
    };
  }
  const rounds = 3;
  const requests = ctx.quick ? { 1: 20_000, 16: 100_000 } : { 1: 60_000, 16: 400_000 };
  const durationMs = ctx.quick ? 500 : 2000;
  const admin = new Redis(ctx.redis.url);
  const sha = await admin.script('LOAD', ONE_INCR);
  const perRound = [];
  let floodgateMissing;
  let floodgateFailures = 0;
  let worker;
  try {
    worker = await openWorker(import.meta.url, 'floodgate', { url: ctx.redis.url });
    await worker.call({ durationMs: Math.min(500, durationMs) }); // warm-up
  } catch (error) {
    floodgateMissing = firstLine(error);
  }
  try {
    for (let r = 0; r < rounds; r++) {
      const p1 = redisBenchmark(ctx.redis, sha, 1, requests[1]);
      const p16 = redisBenchmark(ctx.redis, sha, 16, requests[16]);
      const res = worker ? await worker.call({ durationMs }) : undefined;
      if (res?.failures > 0) floodgateFailures += res.failures;
      const fg = res?.opsPerSec;
      perRound.push({ p1: p1.rps, p16: p16.rps, floodgate: fg });
      ctx.log(
        `  round ${r + 1}: -P 1 ${fmtInt(p1.rps)}/s, -P 16 ${fmtInt(p16.rps)}/s, floodgate ${fg ? fmtInt(fg) : floodgateMissing}`,
      );
    }
  } finally {
    await worker?.close();
    if (ctx.redis.own) await admin.flushdb();
    admin.disconnect();
  }
  if (floodgateFailures > 0)
    floodgateMissing = `${fmtInt(floodgateFailures)} floodgate checks failed or came back degraded`;
  const med = (f) => median(perRound.map(f));
  const p1 = med((r) => r.p1);
  const p16 = med((r) => r.p16);
  const fg = floodgateMissing ? undefined : med((r) => r.floodgate);
  const ratio16 = floodgateMissing ? undefined : med((r) => r.floodgate / r.p16);
  const ratio1 = floodgateMissing ? undefined : med((r) => r.floodgate / r.p1);
  const pct = (v) => (v === undefined ? '–' : `${(v * 100).toFixed(0)}%`);
  return {
    title: 'Redis physical limit: redis-benchmark EVALSHA vs floodgate',
    tables: [
      {
        columns: ['Load', 'checks/s (median of 3 rounds)', 'floodgate as a share of it (per-round median)'],
        rows: [
          ['redis-benchmark EVALSHA one-INCR script, 50 conns, -P 1', fmtInt(p1), pct(ratio1)],
          ['redis-benchmark EVALSHA one-INCR script, 50 conns, -P 16', fmtInt(p16), pct(ratio16)],
          [
            `floodgate Limiter.consume (redis, sliding-window), one process, ${IN_FLIGHT} in flight, 100k keys`,
            fg === undefined ? floodgateMissing : fmtInt(fg),
            '',
          ],
        ],
        notes: [
          'Same redis-server for all three, taken in turn within each round. redis-benchmark runs in C with no client ' +
            'logic and a one-INCR script; floodgate runs its full algorithm script and builds a Decision per check in Node.',
        ],
      },
    ],
    data: { perRound, p1, p16, floodgate: fg, ratio1, ratio16 },
    targets: [
      {
        name: 'Redis, >= 50% of redis-benchmark EVALSHA -P 16 on the same server',
        wanted: '>= 50%',
        value: ratio16,
        threshold: 0.5,
        show: pct,
        why: floodgateMissing,
      },
    ],
  };
}
