// Runs one section in a fresh process (so one section's JIT state and garbage never weigh on the
// next) and sends its result to the parent over IPC. Progress goes to stderr; stdout stays clean.
import { firstLine } from './floodgate.mjs';
import { verdict } from './targets.mjs';

const [, , sectionName, ctxJson] = process.argv;
const ctx = { ...JSON.parse(ctxJson), log: (line) => process.stderr.write(`${line}\n`) };

try {
  const { default: run } = await import(`../sections/${sectionName}.mjs`);
  const result = await run(ctx);
  const targets = (result.targets ?? []).map((t) => verdict({ ...t, measured: t.value }));
  process.send({ type: 'result', result: { ...result, targets } }, () => process.exit(0));
} catch (error) {
  process.stderr.write(`${error instanceof Error ? error.stack : error}\n`);
  process.send(
    { type: 'result', result: { title: sectionName, error: firstLine(error), tables: [], targets: [] } },
    () => process.exit(0),
  );
}
