/**
 * Shared trace vectors: (time, cost) steps with the decisions every store must return. They were
 * worked out by hand from the algorithm definitions in docs/algorithms.md, so they pin the
 * semantics, not an implementation. Times are ms after an epoch-aligned start.
 */
import type { AlgorithmName } from '../types.js';

export interface TraceStep {
  /** Milliseconds after the trace's start. */
  readonly at: number;
  readonly cost: number;
  readonly allowed: boolean;
  readonly remaining: number;
  readonly resetMs: number;
  readonly retryAfterMs: number;
}

export interface TraceVector {
  readonly title: string;
  readonly algorithm: AlgorithmName;
  readonly limit: number;
  readonly windowMs: number;
  readonly burst?: number;
  readonly steps: readonly TraceStep[];
}

const step = (
  at: number,
  cost: number,
  allowed: boolean,
  remaining: number,
  resetMs: number,
  retryAfterMs = 0,
): TraceStep => ({ at, cost, allowed, remaining, resetMs, retryAfterMs });

/** Token bucket, leaky bucket and GCRA admit the same sequences; one trace serves all three. */
const bucketSteps = [
  step(0, 5, true, 0, 1000),
  step(100, 1, false, 0, 900, 100),
  step(200, 1, true, 0, 1000),
  step(1200, 0, true, 5, 0),
  step(1200, 3, true, 2, 600),
  step(1300, 6, false, 2, 500, 500), // cost above the capacity: never passes; the wait shown is the reset
];

const burstSteps = [
  step(0, 10, true, 0, 2000),
  step(0, 1, false, 0, 2000, 200),
  step(400, 2, true, 0, 2000),
  step(2400, 0, true, 10, 0),
];

export const TRACE_VECTORS: readonly TraceVector[] = [
  {
    title: 'fixed window: counts, denial at the edge, a new window, cost above the limit',
    algorithm: 'fixed-window',
    limit: 5,
    windowMs: 1000,
    steps: [
      step(0, 1, true, 4, 1000),
      step(100, 3, true, 1, 900),
      step(200, 2, false, 1, 800, 800),
      step(300, 1, true, 0, 700),
      step(999, 1, false, 0, 1, 1),
      step(1000, 1, true, 4, 1000),
      step(1500, 6, false, 4, 500, 500),
      step(2500, 0, true, 5, 0),
    ],
  },
  {
    title: 'sliding window: the previous window fades in proportion to elapsed time',
    algorithm: 'sliding-window',
    limit: 5,
    windowMs: 1000,
    steps: [
      step(0, 1, true, 4, 2000),
      step(500, 3, true, 1, 1500),
      step(900, 2, false, 1, 1100, 350),
      step(1250, 2, true, 0, 1750),
      step(1500, 1, true, 0, 1500),
      step(1600, 1, false, 0, 1400, 150),
      step(2000, 0, true, 2, 1000),
      step(4000, 0, true, 5, 0),
    ],
  },
  {
    title: 'sliding log: exact, requests leave the window one by one',
    algorithm: 'sliding-log',
    limit: 5,
    windowMs: 1000,
    steps: [
      step(0, 2, true, 3, 1000),
      step(300, 2, true, 1, 1000),
      step(600, 2, false, 1, 700, 400),
      step(1000, 2, true, 1, 1000),
      step(1000, 1, true, 0, 1000),
      step(1299, 1, false, 0, 701, 1),
      step(1300, 1, true, 1, 1000),
      step(1300, 6, false, 1, 1000, 1000),
    ],
  },
  {
    title: 'token bucket: refills continuously',
    algorithm: 'token-bucket',
    limit: 5,
    windowMs: 1000,
    steps: bucketSteps,
  },
  {
    title: 'leaky bucket: drains continuously',
    algorithm: 'leaky-bucket',
    limit: 5,
    windowMs: 1000,
    steps: bucketSteps,
  },
  {
    title: 'gcra: one arrival time per key',
    algorithm: 'gcra',
    limit: 5,
    windowMs: 1000,
    steps: bucketSteps,
  },
  {
    title: 'token bucket with burst 10 at 5/s',
    algorithm: 'token-bucket',
    limit: 5,
    windowMs: 1000,
    burst: 10,
    steps: burstSteps,
  },
  {
    title: 'gcra with burst 10 at 5/s',
    algorithm: 'gcra',
    limit: 5,
    windowMs: 1000,
    burst: 10,
    steps: burstSteps,
  },
  {
    title: 'leaky bucket with capacity 10 at 5/s',
    algorithm: 'leaky-bucket',
    limit: 5,
    windowMs: 1000,
    burst: 10,
    steps: burstSteps,
  },
];
