// Subjects measured in processes of their own. Sharing one process would let the first subjects
// train the JIT (monomorphic call sites, warm caches) and leave later ones a megamorphic loop and a
// fuller heap; a process per subject gives each the same start.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { firstLine } from './floodgate.mjs';

const CHILD = fileURLToPath(new URL('./worker-child.mjs', import.meta.url));

/**
 * Starts a process that runs `setup(subject, options)` from the section module `moduleUrl`, then
 * answers `call(message)` with `round(state, message)`. Rejects when setup fails (for a floodgate
 * part not built yet, the message says why).
 */
export function openWorker(moduleUrl, subject, options = {}, execArgv = []) {
  return new Promise((resolve, reject) => {
    const child = fork(CHILD, [moduleUrl, JSON.stringify({ subject, options })], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      execArgv,
    });
    const waiting = [];
    let exited = false;
    child.on('message', (m) => waiting.shift()?.(m));
    child.on('exit', (code) => {
      exited = true;
      for (const w of waiting.splice(0))
        w({ ok: false, error: `subject "${subject}" exited with code ${code}` });
    });
    const next = () =>
      exited
        ? Promise.resolve({ ok: false, error: `subject "${subject}" has exited` })
        : new Promise((r) => waiting.push(r));
    const call = async (message) => {
      child.send(message);
      const reply = await next();
      if (!reply.ok) throw new Error(reply.error);
      return reply.value;
    };
    const close = async () => {
      if (exited) return;
      const done = new Promise((r) => child.once('exit', r));
      child.send({ close: true });
      await done;
    };
    next().then((ready) => {
      if (ready.ok) resolve({ call, close });
      else reject(new Error(ready.error));
    });
  });
}

/** One-shot: setup, one round with `message`, close. */
export async function isolated(moduleUrl, subject, options = {}, execArgv = [], message = {}) {
  const worker = await openWorker(moduleUrl, subject, options, execArgv);
  try {
    return await worker.call(message);
  } finally {
    await worker.close();
  }
}

/**
 * The figures of several subjects, interleaved: after one warm-up pass, every round runs every
 * subject on every case in turn (the order rotated per round), each timed run right after an
 * untimed one of `settleMs`, so a busy moment on the shared machine lands on all subjects alike and
 * per-round ratios compare figures taken seconds apart.
 * Returns { [subject]: { missing } | { [case]: result[] } } with one result per round.
 */
export async function interleave(
  ctx,
  moduleUrl,
  {
    subjects,
    cases,
    options,
    rounds,
    warmupMs,
    durationMs,
    settleMs = Math.max(20, Math.round(durationMs / 4)),
    label,
  },
) {
  const workers = {};
  const out = {};
  // Started together: process start-up and imports dominate a quick run otherwise.
  await Promise.all(
    subjects.map(async (subject) => {
      try {
        workers[subject] = await openWorker(moduleUrl, subject, options);
        out[subject] = Object.fromEntries(cases.map((c) => [c.id, []]));
      } catch (error) {
        out[subject] = { missing: firstLine(error) };
        ctx.log(`  ${label(subject)}: ${out[subject].missing}`);
      }
    }),
  );
  const live = subjects.filter((s) => workers[s]);
  try {
    for (const subject of live) {
      for (const c of cases) await workers[subject].call({ ...c, durationMs: warmupMs, warmup: true });
    }
    // Each timed run follows an untimed one of the same case (`settleMs`): a process that sat idle
    // while the others ran needs a moment under load to come back to its steady state (measured for
    // the memory stores: ~1 s, and the more a subject allocates per call, the more it loses).
    for (let round = 0; round < rounds; round++) {
      for (let i = 0; i < live.length; i++) {
        const subject = live[(i + round) % live.length];
        for (const c of cases) {
          await workers[subject].call({ ...c, durationMs: settleMs, warmup: true });
          out[subject][c.id].push(await workers[subject].call({ ...c, durationMs }));
        }
      }
      ctx.log(`  round ${round + 1}/${rounds} done`);
    }
  } finally {
    for (const subject of live) await workers[subject].close();
  }
  return out;
}
