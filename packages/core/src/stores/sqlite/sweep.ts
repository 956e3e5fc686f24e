/**
 * Deleting expired rows, so the table never grows without bound: in batches of SWEEP_BATCH, one
 * short write transaction each, found through the index on the whole minute of expiry (schema.ts).
 * In the background every `sweepIntervalMs`, yielding to requests between batches; or all at once
 * when asked (`store.sweep()`).
 */
import { errorMessage } from '../../errors.js';
import type { Clock } from '../../types.js';
import type { Database } from './driver.js';
import type { RowCache } from './row-cache.js';
import { ENTRIES_TABLE, SWEEP_GRAIN_MS } from './schema.js';
import type { WriteTransactions } from './write-transaction.js';

/** Expired rows deleted per sweep transaction; the sweep yields to requests between batches. */
const SWEEP_BATCH = 500;

export class Sweeper {
  /** Expired rows deleted since the store was created. */
  swept = 0;
  /** Why the last background batch failed, until one succeeds. */
  lastError: string | undefined;
  private readonly deleteBatch;
  private running = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;

  /** `deleted` is told whenever a batch deleted rows (the store then has something to checkpoint). */
  constructor(
    db: Database,
    private readonly transactions: WriteTransactions,
    private readonly rows: RowCache | undefined,
    private readonly clock: Clock,
    private readonly deleted: () => void,
  ) {
    // RETURNING names the rows that went, so the row cache forgets just those.
    this.deleteBatch = db
      .prepare(
        `DELETE FROM ${ENTRIES_TABLE} WHERE id IN
         (SELECT id FROM ${ENTRIES_TABLE} WHERE sweep_after <= ? LIMIT ${SWEEP_BATCH})
         RETURNING bucket, key`,
      )
      .raw();
  }

  /** Sweep in the background every `intervalMs` (an unref'd timer), from now until stop(). */
  start(intervalMs: number): void {
    this.timer = setInterval(() => this.inBackground(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
  }

  /** Delete every expired row now, batch after batch, waiting for the write lock as long as it takes; how many. */
  sweepAll(): number {
    let total = 0;
    for (;;) {
      let removed = 0;
      this.transactions.run(() => {
        removed = this.deleteExpired();
      });
      this.count(removed);
      total += removed;
      if (removed < SWEEP_BATCH) return total;
    }
  }

  /**
   * One batch per turn of the event loop until none is left. A file locked by another connection
   * for longer than the store's short blocking wait ends the run: the sweep does not hold up the
   * event loop, and tries again at its next interval.
   */
  private inBackground(): void {
    if (this.running || this.stopped) return;
    this.running = true;
    const step = () => {
      if (this.stopped) {
        this.running = false;
        return;
      }
      try {
        let removed = 0;
        const ran = this.transactions.tryRun(() => {
          removed = this.deleteExpired();
        }, 0);
        if (ran) {
          this.count(removed);
          this.lastError = undefined;
          if (removed === SWEEP_BATCH) {
            setImmediate(step);
            return;
          }
        }
      } catch (error) {
        // A failing file: try again at the next interval; health() reports it meanwhile.
        this.lastError = errorMessage(error);
      }
      this.running = false;
    };
    step();
  }

  private count(removed: number): void {
    this.swept += removed;
    if (removed > 0) this.deleted();
  }

  /** Delete one batch of expired rows (inside a write transaction) and return how many. */
  private deleteExpired(): number {
    const gone = this.deleteBatch.all(Math.floor(this.clock() / SWEEP_GRAIN_MS)) as [string, string][];
    // A cached row must not be updated by its old id once it is gone.
    if (this.rows !== undefined) for (const [bucket, key] of gone) this.rows.delete(bucket, key);
    return gone.length;
  }
}
