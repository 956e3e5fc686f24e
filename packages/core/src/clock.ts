import type { Clock } from './types.js';

/**
 * Milliseconds since the epoch that never go backwards: the process start time plus a monotonic
 * counter. A wall-clock jump (NTP, suspend, a manual change) cannot make a window negative or
 * block a key forever. Stores shared between processes use their own clocks (SQLite: Date.now,
 * Redis: the server's TIME).
 */
export const monotonicClock: Clock = () => performance.timeOrigin + performance.now();

export const wallClock: Clock = () => Date.now();
