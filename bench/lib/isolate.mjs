// Measures one subject in a fresh process. Sharing one process between subjects would let the
// first ones train the JIT (monomorphic call sites, warm caches) and leave later ones a megamorphic
// loop and a fuller heap; a process per subject gives each the same start.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const CHILD = fileURLToPath(new URL('./subject-child.mjs', import.meta.url));

/** Runs `measure(subject, options)` exported by the section module `moduleUrl` in a new process. */
export function isolated(moduleUrl, subject, options = {}, execArgv = []) {
  return new Promise((resolve, reject) => {
    const child = fork(CHILD, [moduleUrl, JSON.stringify({ subject, options })], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      execArgv,
    });
    let reply;
    child.on('message', (m) => {
      reply = m;
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (reply?.ok) resolve(reply.value);
      else reject(new Error(reply?.error ?? `subject "${subject}" exited with code ${code}`));
    });
  });
}
