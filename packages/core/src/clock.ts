// The module's own binding: the global `performance` is a lazy getter that Node runs on every
// access (~15-30 ns of a ~70-100 ns reading here).
import { performance } from 'node:perf_hooks';
import type { Clock } from './types.js';

/**
 * Fixed for the life of the process (of the thread, in a worker), and read once: the getter costs
 * ~20-35 ns a call here, and the Limiter reads this clock on every store call.
 */
const TIME_ORIGIN = performance.timeOrigin;

/**
 * Milliseconds since the epoch that never go backwards: the process start time plus a monotonic
 * counter. A wall-clock jump (NTP, suspend, a manual change) cannot make a window negative or
 * block a key forever. Stores shared between processes use their own clocks (SQLite: Date.now,
 * Redis: the server's TIME).
 */
export const monotonicClock: Clock = () => TIME_ORIGIN + performance.now();

export const wallClock: Clock = () => Date.now();

/** How often the coarse clock's cached reading is thrown away while it is being read. */
const TICK_MS = 1;
/** Reads served from one cached reading at most, so a busy loop that starves the ticker still sees time move. */
const READS_PER_READING = 32;

let reading = 0;
/** Reads left before the cached reading must be refreshed; 0 forces a real read. */
let readsLeft = 0;
/** Whether the cached reading was refreshed since the last tick: the ticker stops after an idle tick. */
let refreshed = false;
let ticker: ReturnType<typeof setInterval> | undefined;

function tick(): void {
  readsLeft = 0;
  if (!refreshed && ticker !== undefined) {
    clearInterval(ticker);
    ticker = undefined;
  }
  refreshed = false;
}

function refresh(): number {
  const now = monotonicClock();
  // performance.now() never goes back; the max() only guards against float noise in the addition.
  if (now > reading) reading = now;
  readsLeft = READS_PER_READING - 1;
  refreshed = true;
  if (ticker === undefined) {
    ticker = setInterval(tick, TICK_MS);
    ticker.unref();
  }
  return reading;
}

/**
 * The monotonic clock at a granularity of about 1 ms, for the memory store's hot path. Reading the
 * real clock costs 50-150 ns on some machines (virtual machines without a fast clock source), more
 * than the rest of a memory-store check, so a reading is reused: until the next tick of an unref'd
 * 1 ms ticker, and for at most 32 reads. The ticker stops itself after a tick in which nothing read
 * the clock and restarts on the next read, so an idle process wakes up for nothing.
 *
 * Guarantees: never goes backwards (it is `monotonicClock`, sampled), never ahead of
 * `monotonicClock`, and behind it by at most about one tick, or by however long the event loop was
 * blocked for the first 32 reads after a block.
 */
export const coarseMonotonicClock: Clock = () => {
  if (readsLeft > 0) {
    readsLeft--;
    return reading;
  }
  return refresh();
};
