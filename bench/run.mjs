#!/usr/bin/env node
// pnpm bench [--quick] [--only=inproc-memory,http,...] [--docs]
// floodgate beside its peers, in one run on one machine: markdown tables on stdout, JSON in bench/results/.
import { fork } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeDocs } from './lib/docs.mjs';
import { renderSection, renderTargets } from './lib/format.mjs';
import { calibrate } from './lib/measure.mjs';
import { startRedis } from './lib/redis-server.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const SECTIONS = [
  'inproc-memory',
  'inproc-sqlite',
  'inproc-redis',
  'redis-limit',
  'http',
  'memory-footprint',
];

const args = process.argv.slice(2).filter((a) => a !== '--');
const quick = args.includes('--quick');
const onlyArg = args.find((a) => a.startsWith('--only='));
const only = onlyArg ? onlyArg.slice('--only='.length).split(',') : undefined;
const unknown = args.filter((a) => a !== '--quick' && a !== '--docs' && !a.startsWith('--only='));
if (unknown.length || only?.some((s) => !SECTIONS.includes(s))) {
  console.error(`usage: node bench/run.mjs [--quick] [--only=${SECTIONS.join(',')}] [--docs]`);
  process.exit(2);
}
const sections = only ?? SECTIONS;
const log = (line) => process.stderr.write(`${line}\n`);

function runSection(name, ctx) {
  return new Promise((resolve) => {
    const child = fork(join(here, 'lib', 'section-child.mjs'), [name, JSON.stringify(ctx)], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    let result;
    child.on('message', (m) => {
      if (m?.type === 'result') result = m.result;
    });
    child.on('exit', (code) =>
      resolve(
        result ?? { title: name, error: `section process exited with code ${code}`, tables: [], targets: [] },
      ),
    );
  });
}

const started = new Date();
log(`floodgate bench (${quick ? 'quick' : 'full'}): ${sections.join(', ')}`);
const redis = await startRedis();
if (redis) log(`redis-server for the bench: ${redis.url}${redis.own ? ' (started by the bench)' : ''}`);
const ctx = {
  quick,
  redis: redis ? { url: redis.url, host: redis.host, port: redis.port, own: redis.own } : null,
};

const results = [];
try {
  for (const name of sections) {
    log(`\n[${name}]`);
    const startedAt = new Date();
    const before = calibrate();
    const t0 = performance.now();
    const result = await runSection(name, ctx);
    const seconds = (performance.now() - t0) / 1000;
    const after = calibrate();
    const section = {
      id: name,
      ...result,
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      seconds,
      calibration: { beforeMs: before.ms, afterMs: after.ms },
    };
    results.push(section);
    console.log(renderSection(section));
  }
} finally {
  await redis?.stop();
}

const targets = results.flatMap((s) => s.targets ?? []);
console.log(renderTargets(targets));
const report = {
  kind: quick ? 'quick' : 'full',
  startedAt: started.toISOString(),
  finishedAt: new Date().toISOString(),
  seconds: (Date.now() - started.getTime()) / 1000,
  machine: { node: process.version, cpus: cpus().length, cpu: cpus()[0]?.model, platform: process.platform },
  sections: results,
  targets,
};
const complete = !quick && !only;
const file = join(
  here,
  'results',
  complete ? 'latest.json' : `${quick ? 'quick' : 'partial'}-${Date.now()}.json`,
);
writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
log(`\nwrote ${file} (${report.seconds.toFixed(0)} s)`);
if (args.includes('--docs')) log(`updated ${writeDocs(report)}`);
