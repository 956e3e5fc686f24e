/**
 * The floodgate script: the shared prelude, one file per algorithm (each mirrors the TypeScript step
 * beside it in algorithms/), the state codec and key access, and the batch driver, joined into one script so one EVALSHA checks every
 * policy of a route whatever their algorithms. The .lua files are read from the package at first use:
 * beside this module in the sources (vitest, tsx), and in dist/lua/ once built (tsup copies them).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { FloodgateError } from '../../errors.js';

/** The algorithm files, by the tag each registers its step under (STEP.fw = …). */
const ALGORITHM_PARTS = [
  ['fixed-window.lua', 'fw'],
  ['sliding-window.lua', 'sw'],
  ['sliding-log.lua', 'sl'],
  ['token-bucket.lua', 'tb'],
  ['leaky-bucket.lua', 'lb'],
  ['gcra.lua', 'gcra'],
] as const;

/** Where the .lua files may be, relative to this module (sources) or to the bundle (dist/index.js, dist/x/y.js). */
const CANDIDATES = ['./lua/', '../lua/', '../../lua/'];

export interface Script {
  /** The script for EVAL / EVALSHA. */
  readonly text: string;
  readonly sha: string;
  /**
   * The same code as a Redis Function library (Redis 7+), named after the script's sha so versions
   * never clash. Its prelude (helpers, algorithm steps, codec) runs once, when it is loaded, where
   * EVALSHA runs it on every call: that setup cost Redis more than the checks themselves.
   */
  readonly library: string;
  /** The library's one function, for FCALL; also the library's name. */
  readonly functionName: string;
}

let cached: Script | undefined;

export function floodgateScript(): Script {
  if (cached !== undefined) return cached;
  const dir = CANDIDATES.map((c) => new URL(c, import.meta.url)).find((url) =>
    existsSync(fileURLToPath(new URL('check.lua', url))),
  );
  if (dir === undefined) {
    throw new FloodgateError(
      'FLOODGATE_STORE_OPEN_FAILED',
      `the Redis scripts (lua/*.lua) are missing beside ${fileURLToPath(import.meta.url)}; reinstall @floodgate/core`,
    );
  }
  const read = (part: string) => `-- ${part}\n${readFileSync(new URL(part, dir), 'utf8')}`;
  // Redis runs the whole script on every call, and creating an algorithm's functions costs more than
  // a check: each algorithm file is wrapped in a loader that check.lua runs only for the tags it meets.
  const algorithms = ALGORITHM_PARTS.map(([part, tag]) => `LOAD.${tag} = function()\n${read(part)}\nend`);
  const body = [read('shared.lua'), ...algorithms, read('state.lua'), read('check.lua')].join('\n');
  const text = `${body}\nreturn check(KEYS, ARGV)\n`;
  const sha = createHash('sha1').update(text).digest('hex');
  const functionName = `floodgate_${sha}`;
  const library = `#!lua name=${functionName}\n${body}\nredis.register_function('${functionName}', check)\n`;
  cached = { text, sha, library, functionName };
  return cached;
}
