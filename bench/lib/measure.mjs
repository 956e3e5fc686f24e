// Timing helpers shared by the sections. Every figure is a median over several rounds, because the
// machine is shared and one round can land on a busy moment.

/** Milliseconds since an arbitrary origin, with sub-ms precision. */
export const now = () => performance.now();

export function median(values) {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * A fixed small compute loop, timed. Run before and after every section: if the two differ a lot,
 * something else was using the CPU and the section's figures are suspect.
 */
export function calibrate() {
  const times = [];
  let checksum = 0;
  for (let round = 0; round < 3; round++) {
    const start = now();
    let x = 1;
    for (let i = 0; i < 10_000_000; i++) x = (x * 31 + i) % 1_000_003;
    times.push(now() - start);
    checksum = x;
  }
  return { ms: Math.round(median(times) * 100) / 100, checksum };
}

/**
 * Run `op(key)` with `inFlight` concurrent callers, each awaiting its own call before the next,
 * for `durationMs`. Keys come from `keys` in order (one shared cursor), so with a large key array
 * every call touches a different key until the array wraps.
 */
export async function runInFlight(op, { keys, inFlight, durationMs }) {
  let cursor = 0;
  let ops = 0;
  let failures = 0;
  const length = keys.length;
  const start = now();
  const deadline = start + durationMs;
  // Read the clock every 64 calls when one caller runs alone (a clock read per call would be a
  // measurable share of a fast in-memory op), every call when many are in flight (each is I/O-bound,
  // and 256 callers x 64 calls would overshoot a short round by seconds).
  const batch = inFlight === 1 ? 64 : 1;
  async function worker() {
    for (;;) {
      for (let i = 0; i < batch; i++) {
        const key = keys[cursor];
        cursor = cursor + 1 === length ? 0 : cursor + 1;
        try {
          await op(key);
        } catch {
          failures++;
        }
      }
      ops += batch;
      if (now() >= deadline) return;
    }
  }
  const workers = [];
  for (let i = 0; i < inFlight; i++) workers.push(worker());
  await Promise.all(workers);
  const elapsed = now() - start;
  return { ops, failures, elapsedMs: elapsed, opsPerSec: (ops / elapsed) * 1000 };
}

/** Warm up once, then `rounds` timed rounds; the median ops/s and its ns/op. */
export async function bench(op, { keys, inFlight = 1, durationMs, rounds, warmupMs }) {
  if (warmupMs > 0) await runInFlight(op, { keys, inFlight, durationMs: warmupMs });
  const results = [];
  for (let r = 0; r < rounds; r++) results.push(await runInFlight(op, { keys, inFlight, durationMs }));
  const opsPerSec = median(results.map((r) => r.opsPerSec));
  return {
    opsPerSec: Math.round(opsPerSec),
    nsPerOp: Math.round(1e9 / opsPerSec),
    rounds: results.map((r) => Math.round(r.opsPerSec)),
    ops: results.reduce((sum, r) => sum + r.ops, 0),
    failures: results.reduce((sum, r) => sum + r.failures, 0),
  };
}

/** Median ops/s (and its ns/op) of the per-round results of runInFlight. */
export function summarize(rounds) {
  const opsPerSec = median(rounds.map((r) => r.opsPerSec));
  return {
    opsPerSec: Math.round(opsPerSec),
    nsPerOp: Math.round(1e9 / opsPerSec),
    rounds: rounds.map((r) => Math.round(r.opsPerSec)),
    failures: rounds.reduce((sum, r) => sum + r.failures, 0),
  };
}

/** Median over rounds of a's ops/s divided by b's in the same round. */
export function roundRatio(a, b) {
  return median(a.map((r, i) => r.opsPerSec / b[i].opsPerSec));
}

export function makeKeys(count, prefix = 'user:') {
  const keys = new Array(count);
  for (let i = 0; i < count; i++) keys[i] = `${prefix}${i}`;
  return keys;
}

/**
 * makeKeys' keys for the numbers in `order`, each string made in that order (so a key is made just
 * before it is used, as a server makes a request's key).
 */
export function keysInOrder(order, prefix = 'user:') {
  return order.map((i) => `${prefix}${i}`);
}

/** 0 … count-1 in a fixed pseudo-random order (Fisher-Yates driven by a 32-bit xorshift). */
export function shuffled(count) {
  const order = Array.from({ length: count }, (_, i) => i);
  let x = 0x9e3779b9;
  for (let i = count - 1; i > 0; i--) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const j = (x >>> 0) % (i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}
