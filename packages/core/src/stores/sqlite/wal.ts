/**
 * The file's journal: WAL mode, its page size and synchronous setting, and keeping the WAL short
 * (checkpoints) for a file the store opened.
 */
import { type Database, sleepSync } from './driver.js';
import { migrate } from './schema.js';
import { isBusy } from './write-transaction.js';

export type SqliteSynchronous = 'off' | 'normal' | 'full' | 'extra';

/**
 * WAL pages after which a commit checkpoints (SQLite's default is 1,000). A checkpoint syncs the WAL
 * and the database file, and those syncs block the commit that runs it: at 1,000 pages they cost
 * more wall time per check than everything else in the check together. Files the store opens only.
 */
const CHECKPOINT_PAGES = 10_000;
/**
 * Page size of a file the store creates (SQLite's default is 4,096 bytes; an existing file keeps its
 * own). A row is ~80 bytes, and a check rewrites its row's page: every check made alone, and under
 * load every check on a key whose page no other check in the group touched (clients arriving in no
 * particular order), writes that page to the WAL, checksummed. Measured here, interleaved on 100k
 * keys: 2,048 took a check made alone +20-25% and 64 in flight on keys in random order +16-21%,
 * and cost 2-6% at 64 in flight on keys in turn (whose groups share pages); 1,024 made lone checks
 * faster still but cost 10-15% at 64 in flight either way.
 */
const PAGE_SIZE_BYTES = 2048;
/** A file the store opened is also checkpointed this often when written to, bounding what a power loss can take. */
export const CHECKPOINT_INTERVAL_MS = 1000;
/** Longest the timed checkpoint waits for a moment with no writer to restart an overgrown WAL. */
const RESTART_WAIT_MS = 50;

export interface JournalOptions {
  readonly path: string;
  readonly synchronous: SqliteSynchronous | undefined;
  /** The store opened the file (its page size and checkpoints are the store's to set). */
  readonly ownsDatabase: boolean;
  readonly busyTimeoutMs: number;
}

/** Set the connection up (busy timeout, synchronous, WAL, page size) and bring the schema up to date. */
export function configure(db: Database, options: JournalOptions): void {
  db.pragma(`busy_timeout = ${options.busyTimeoutMs}`);
  if (options.synchronous !== undefined) db.pragma(`synchronous = ${options.synchronous}`);
  if (options.ownsDatabase) {
    db.pragma(`wal_autocheckpoint = ${CHECKPOINT_PAGES}`);
    // Before anything is written: a file with pages keeps its page size (WAL mode cannot change it).
    db.pragma(`page_size = ${PAGE_SIZE_BYTES}`);
  }
  if (!db.memory && !db.readonly) {
    // Switching to WAL needs a moment alone with the file; several processes opening a new file
    // at once may find it taken, so retry within the busy timeout.
    const deadline = Date.now() + options.busyTimeoutMs;
    for (;;) {
      try {
        db.pragma('journal_mode = WAL');
        break;
      } catch (error) {
        if (!isBusy(error) || Date.now() >= deadline) throw error;
        sleepSync(5);
      }
    }
  }
  migrate(db, options.path);
}

/**
 * The timed checkpoint: PASSIVE, so it never waits for another connection. False when it failed (a
 * busy file), to be tried again at the next interval. An overgrown WAL's restart waits at most
 * `busyTimeoutMs` (the store's option) and leaves the connection's busy_timeout at `busyTimeoutSetting`.
 */
export function checkpoint(db: Database, busyTimeoutMs: number, busyTimeoutSetting: number): boolean {
  try {
    const [result] = db.pragma('wal_checkpoint(PASSIVE)') as { log: number }[];
    if (result !== undefined && result.log > CHECKPOINT_PAGES) {
      restartWal(db, Math.min(RESTART_WAIT_MS, busyTimeoutMs), busyTimeoutSetting);
    }
    return true;
  } catch {
    return false;
  }
}

/**
 * The WAL only starts over when a writer finds it entirely checkpointed, which writers from other
 * processes committing without pause can keep from ever happening, and it grows meanwhile. Past
 * CHECKPOINT_PAGES, wait (through SQLite's busy handler, at most RESTART_WAIT_MS) for a moment
 * with no writer, checkpoint all of it and truncate it; if no such moment comes, the next tick
 * tries again.
 */
function restartWal(db: Database, waitMs: number, busyTimeoutSetting: number): void {
  db.pragma(`busy_timeout = ${waitMs}`);
  try {
    db.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    db.pragma(`busy_timeout = ${busyTimeoutSetting}`);
  }
}
