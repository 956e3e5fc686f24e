import type { Algorithm, AlgorithmName } from '../types.js';
import { fixedWindow } from './fixed-window.js';
import { gcra } from './gcra.js';
import { leakyBucket } from './leaky-bucket.js';
import type { ReusingAlgorithm } from './shared.js';
import { slidingLog } from './sliding-log.js';
import { slidingWindow } from './sliding-window.js';
import { tokenBucket } from './token-bucket.js';

export type { ReusableStepResult, ReusingAlgorithm } from './shared.js';
export { fixedWindow, gcra, leakyBucket, slidingLog, slidingWindow, tokenBucket };

/** Every algorithm by name; each step takes an optional result to reuse (see ReusingAlgorithm). */
export const ALGORITHMS: Readonly<Record<AlgorithmName, ReusingAlgorithm>> = {
  'fixed-window': fixedWindow,
  'sliding-window': slidingWindow,
  'sliding-log': slidingLog,
  'token-bucket': tokenBucket,
  'leaky-bucket': leakyBucket,
  gcra,
};

export const ALGORITHM_NAMES = Object.keys(ALGORITHMS) as readonly AlgorithmName[];

export function algorithmByName(name: AlgorithmName): Algorithm {
  return ALGORITHMS[name];
}
