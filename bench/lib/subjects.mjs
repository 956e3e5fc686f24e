// Runs a list of named subjects, each in its own process, and keeps the ones that are not
// available yet (a floodgate part still being written) as rows that say so.
import { firstLine } from './floodgate.mjs';
import { isolated } from './isolate.mjs';

export const ALGORITHMS = [
  'fixed-window',
  'sliding-window',
  'sliding-log',
  'token-bucket',
  'leaky-bucket',
  'gcra',
];

export async function measureAll(ctx, moduleUrl, names, options, describe = (n) => n) {
  const out = {};
  for (const name of names) {
    try {
      out[name] = await isolated(moduleUrl, name, options);
      ctx.log(`  ${describe(name)}: ${JSON.stringify(out[name]).slice(0, 160)}`);
    } catch (error) {
      out[name] = { missing: firstLine(error) };
      ctx.log(`  ${describe(name)}: ${out[name].missing}`);
    }
  }
  return out;
}
