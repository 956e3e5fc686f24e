/**
 * The rows this connection last read or wrote, so that a check on a key seen before skips its
 * SELECT: measured here on 100,000 rows, the indexed SELECT took ~5.3 µs of a check's ~8 µs of
 * SQLite work, the UPDATE by rowid ~2.4 µs.
 *
 * A cached row is exactly what the file holds as long as no other connection has committed since
 * it was cached. SQLite counts those commits in `PRAGMA data_version` (a connection's own commits
 * leave it unchanged), so the store reads it once per group, with the write lock held, and empties
 * the cache when it moved: with other processes writing the same file, checks read their rows
 * afresh, as without a cache. The store's own writes that are not checks (reset, clear, the sweep)
 * and a rolled-back group update or empty it themselves.
 *
 * Bounded: at `maxRows` rows the cache is emptied and starts over, which costs a SELECT per key
 * once and keeps no bookkeeping per check. A state longer than MAX_CACHED_NUMBERS (a sliding log
 * with a limit above 8) is not kept: such logs can hold thousands of numbers per key.
 */
import type { AlgorithmState } from '../../types.js';

/** The longest state kept: every algorithm's but a long sliding log's (2 numbers per entry). */
const MAX_CACHED_NUMBERS = 16;

/** Whether a row with this state may be kept (also after the store updated a kept row in place). */
export function cacheable(state: AlgorithmState): boolean {
  return state.length <= MAX_CACHED_NUMBERS;
}

export interface CachedRow {
  readonly id: number;
  state: AlgorithmState;
  expiresAt: number;
  /** The row's sweep_after (see schema.ts). */
  sweepAfter: number;
}

export class RowCache {
  /** Rows by bucket, then key: a route has few buckets, and no key text is built per lookup. */
  private buckets = new Map<string, Map<string, CachedRow>>();
  private size = 0;
  private dataVersion: unknown;

  constructor(private readonly maxRows: number) {}

  get(bucket: string, key: string): CachedRow | undefined {
    return this.buckets.get(bucket)?.get(key);
  }

  /** Keep `row`, unless its state is too long to (then any row kept for the key is dropped). */
  set(bucket: string, key: string, row: CachedRow): void {
    if (!cacheable(row.state)) {
      this.delete(bucket, key);
      return;
    }
    if (this.size >= this.maxRows) this.clear();
    let rows = this.buckets.get(bucket);
    if (rows === undefined) {
      rows = new Map();
      this.buckets.set(bucket, rows);
    }
    const before = rows.size;
    rows.set(key, row);
    this.size += rows.size - before;
  }

  delete(bucket: string, key: string): void {
    const rows = this.buckets.get(bucket);
    if (rows?.delete(key)) this.size--;
  }

  clear(): void {
    if (this.size === 0) return;
    this.buckets = new Map();
    this.size = 0;
  }

  /** Empty the cache if another connection committed since the last call (`version`: PRAGMA data_version). */
  validate(version: unknown): void {
    if (version !== this.dataVersion) {
      this.clear();
      this.dataVersion = version;
    }
  }
}
