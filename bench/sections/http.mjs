// HTTP overhead: each server in its own process, autocannon in another (keep-alive, 50 connections),
// warm-up then timed runs, >= 3 rounds with every configuration measured in turn inside each round.
// Ratios to the bare framework are taken per round (same moment, same machine load) and the median kept.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { fmtInt, fmtNum } from '../lib/format.mjs';
import { median } from '../lib/measure.mjs';

const SERVER = fileURLToPath(new URL('../http/server.mjs', import.meta.url));
const LOAD = fileURLToPath(new URL('../http/load.mjs', import.meta.url));
const FRAMEWORKS = ['express', 'fastify', 'koa'];
const PEERS = { express: 'express-rate-limit', fastify: '@fastify/rate-limit', koa: 'koa-ratelimit' };
const CONNECTIONS = 50;

function variantLabel(framework, variant) {
  switch (variant) {
    case 'bare':
      return `${framework} (bare)`;
    case 'peer':
      return `${PEERS[framework]} (memory)`;
    case 'peer-redis':
      return `${PEERS[framework]} (Redis${framework === 'express' ? ', rate-limit-redis' : ''})`;
    case 'floodgate':
      return 'floodgate (memory)';
    default:
      return 'floodgate (Redis)';
  }
}

/** A child process with a small request/answer protocol over IPC. */
function spawn(file, args) {
  const child = fork(file, args, { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const waiting = [];
  const failure = new Promise((resolve) => {
    child.on('exit', (code) => resolve({ type: 'error', message: `exited with code ${code}` }));
  });
  child.on('message', (m) => waiting.shift()?.(m));
  const next = () => Promise.race([new Promise((resolve) => waiting.push(resolve)), failure]);
  return { child, next, send: (m) => child.send(m) };
}

async function startServer(config) {
  const proc = spawn(SERVER, [JSON.stringify(config)]);
  const first = await proc.next();
  if (first.type !== 'listening') {
    proc.child.kill();
    return { missing: first.message };
  }
  return { ...proc, port: first.port };
}

export default async function run(ctx) {
  const plan = ctx.quick
    ? {
        warmup: 0.2,
        seconds: 0.7,
        rounds: 3,
        modes: [false],
        variants: ['peer', 'floodgate', 'floodgate-redis'],
      }
    : {
        warmup: 0.7,
        seconds: 2,
        rounds: 6,
        modes: [false, true],
        variants: ['peer', 'peer-redis', 'floodgate', 'floodgate-redis'],
      };
  const load = spawn(LOAD, []);
  await load.next();
  let jobId = 0;
  const hit = async (port, distinct, seconds) => {
    const id = ++jobId;
    load.send({ id, url: `http://127.0.0.1:${port}/`, connections: CONNECTIONS, seconds, distinct });
    return load.next();
  };

  const all = [];
  try {
    for (const framework of FRAMEWORKS) {
      // Every configuration of this framework: its server is started once and kept for all rounds.
      const configs = [];
      for (const distinct of plan.modes) {
        for (const variant of ['bare', ...plan.variants]) {
          configs.push({ framework, variant, distinct, redisUrl: ctx.redis?.url });
        }
      }
      const servers = new Map();
      await Promise.all(
        configs.map(async (config) => {
          const key = `${config.variant}:${config.distinct}`;
          const needsRedis = config.variant.endsWith('redis');
          const server =
            needsRedis && !ctx.redis ? { missing: 'no redis-server' } : await startServer(config);
          servers.set(key, server);
          if (server.missing) ctx.log(`  ${framework} ${key}: ${server.missing}`);
        }),
      );
      const measured = configs.map((config) => ({ ...config, rounds: [] }));
      for (let round = 0; round < plan.rounds; round++) {
        // Rotate the order each round so no configuration always runs first or last.
        const order = measured.map((_, i) => measured[(i + round) % measured.length]);
        for (const m of order) {
          const server = servers.get(`${m.variant}:${m.distinct}`);
          if (server.missing) continue;
          await hit(server.port, m.distinct, plan.warmup);
          server.send('start');
          const result = await hit(server.port, m.distinct, plan.seconds);
          server.send('stop');
          const usage = await server.next();
          m.rounds.push({
            ...result,
            // Per response (autocannon's count, 429s and 503s included), so a failing limiter that
            // answers fast is not charged its whole CPU to a handful of 200s.
            cpuUsPerReq: usage.cpuUs / Math.max(1, result.requests),
            served: usage.served,
          });
        }
        ctx.log(
          `  ${framework} round ${round + 1}: ${measured.map((m) => `${m.variant}${m.distinct ? '/distinct' : ''} ${fmtInt(m.rounds[round]?.rps)}`).join(', ')}`,
        );
      }
      for (const server of servers.values()) if (!server.missing) server.send('exit');
      for (const m of measured) {
        m.missing = servers.get(`${m.variant}:${m.distinct}`).missing;
        all.push(m);
      }
    }
  } finally {
    load.send('exit');
  }

  // Per-round ratios to the bare server of the same framework and key mode.
  const bareOf = (m) =>
    all.find((b) => b.framework === m.framework && b.distinct === m.distinct && b.variant === 'bare');
  for (const m of all) {
    if (m.missing) continue;
    const bare = bareOf(m);
    m.summary = {
      rps: median(m.rounds.map((r) => r.rps)),
      ratio: median(m.rounds.map((r, i) => r.rps / bare.rounds[i].rps)),
      p50: median(m.rounds.map((r) => r.p50)),
      p99: median(m.rounds.map((r) => r.p99)),
      cpuUsPerReq: median(m.rounds.map((r) => r.cpuUsPerReq)),
      addedCpuUs: median(m.rounds.map((r, i) => r.cpuUsPerReq - bare.rounds[i].cpuUsPerReq)),
      non2xx: m.rounds.reduce((s, r) => s + r.non2xx, 0),
      errors: m.rounds.reduce((s, r) => s + r.errors, 0),
    };
  }

  const tables = plan.modes.map((distinct) => ({
    title: distinct ? 'Distinct keys (x-key header, 100,000 rotating keys)' : 'One hot key (the client IP)',
    columns: [
      'Server',
      'req/s',
      'ratio to bare',
      'p50 ms',
      'p99 ms',
      'server CPU µs/req',
      'added CPU µs/req',
      'non-2xx',
    ],
    rows: all
      .filter((m) => m.distinct === distinct)
      .map((m) =>
        m.missing
          ? [variantLabel(m.framework, m.variant), `not available yet (${m.missing})`, '', '', '', '', '', '']
          : [
              variantLabel(m.framework, m.variant),
              fmtInt(m.summary.rps),
              m.variant === 'bare' ? '1.00' : fmtNum(m.summary.ratio, 3),
              fmtNum(m.summary.p50, 1),
              fmtNum(m.summary.p99, 1),
              fmtNum(m.summary.cpuUsPerReq, 1),
              m.variant === 'bare' ? '' : fmtNum(m.summary.addedCpuUs, 1),
              fmtInt(m.summary.non2xx + m.summary.errors),
            ],
      ),
  }));

  const targets = [];
  for (const framework of FRAMEWORKS) {
    const find = (variant) =>
      all.find((m) => m.framework === framework && !m.distinct && m.variant === variant);
    const fg = find('floodgate');
    const peer = find('peer');
    const wanted = framework === 'fastify' ? 0.9 : 0.95;
    const refused = fg && !fg.missing ? fg.summary.non2xx + fg.summary.errors : 0;
    const why =
      fg?.missing ??
      peer?.missing ??
      (refused > 0 ? `${fmtInt(refused)} non-2xx responses or errors` : undefined);
    targets.push({
      name: `HTTP ${framework}, memory, hot key: req/s ratio to bare`,
      wanted: `>= ${wanted.toFixed(2)}`,
      value: why ? undefined : fg.summary.ratio,
      threshold: wanted,
      show: (v) => v.toFixed(3),
      why,
    });
    targets.push({
      name: `HTTP ${framework}, memory, hot key: added CPU at most half of ${PEERS[framework]}'s`,
      wanted: "<= 0.50 of the peer's added µs/req",
      value: why ? undefined : fg.summary.addedCpuUs / peer.summary.addedCpuUs,
      threshold: 0.5,
      atMost: true,
      show: (v) =>
        `${v.toFixed(2)} (${fg.summary.addedCpuUs.toFixed(1)} vs ${peer.summary.addedCpuUs.toFixed(1)} µs)`,
      why,
    });
  }

  return {
    title: 'HTTP overhead (autocannon, 50 connections, keep-alive)',
    tables,
    notes: [
      `Each server runs in its own process and autocannon in another; ${plan.warmup} s warm-up then ${plan.seconds} s measured, ` +
        `${plan.rounds} rounds, every configuration in turn within a round (order rotated per round). Figures are medians over ` +
        'the rounds; "ratio to bare" is the median of per-round ratios to the bare server of the same framework and key mode. ' +
        'Server CPU = process.cpuUsage() of the server process over the measured interval / responses; "added" subtracts ' +
        "the bare server's, round by round. Limits are a billion per hour (every request admitted). Peers run with their " +
        'default headers; floodgate with its default draft-11 RateLimit headers. With 2 cores, server and load generator ' +
        'each get about one, so req/s is bounded by the load generator for the fastest servers.',
    ],
    data: all,
    targets,
  };
}
