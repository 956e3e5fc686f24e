/**
 * The on-disk layout and its version. A file records the schema version it was written with in
 * `floodgate_meta` (not `PRAGMA user_version`, which belongs to the application when it hands us its
 * own database); opening runs every migration from that version to SCHEMA_VERSION in one transaction.
 */
import { FloodgateError } from '../../errors.js';
import type { Database } from './driver.js';

export const SCHEMA_VERSION = 1;
export const ENTRIES_TABLE = 'floodgate_entries';
/** Granularity of `sweep_after`, in ms. */
export const SWEEP_GRAIN_MS = 60_000;

/** The `sweep_after` value of a row expiring at `expiresAt`. */
export function sweepAfter(expiresAt: number): number {
  return Math.ceil(expiresAt / SWEEP_GRAIN_MS);
}

/**
 * Migration i takes a file from version i to version i + 1.
 *
 * Rows are found by (bucket, key) through the unique index, then updated by rowid; measured here,
 * this rowid table does the read-then-write of a check 2-4x faster than a WITHOUT ROWID table keyed
 * by (bucket, key).
 *
 * The sweep finds expired rows through an index on `sweep_after`, the whole minute (ms / 60000,
 * rounded up) by which the row has surely expired, rather than on the exact `expires_at`: every
 * check moves expires_at, and re-indexing it on every write halved the write rate here, while the
 * minute changes at most once a minute per row. Expired rows read as absent either way.
 */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE IF NOT EXISTS ${ENTRIES_TABLE} (
     id INTEGER PRIMARY KEY,
     bucket TEXT NOT NULL,
     key TEXT NOT NULL,
     state BLOB NOT NULL,
     expires_at REAL NOT NULL,
     sweep_after INTEGER NOT NULL
   );
   CREATE UNIQUE INDEX IF NOT EXISTS ${ENTRIES_TABLE}_bucket_key ON ${ENTRIES_TABLE} (bucket, key);
   CREATE INDEX IF NOT EXISTS ${ENTRIES_TABLE}_sweep_after ON ${ENTRIES_TABLE} (sweep_after);`,
];

/**
 * Bring the file to SCHEMA_VERSION; refuse a file written by a newer floodgate. A file already at
 * SCHEMA_VERSION, as on every open but the first, is only read: no write lock to wait for while other
 * processes keep the file busy (measured: a new store opened beside 3 processes at full load took up
 * to 1.9 s when every open took the write lock).
 */
export function migrate(db: Database, path: string): void {
  if (schemaVersion(db, path) === SCHEMA_VERSION) return;
  const run = db.transaction(() => {
    db.exec('CREATE TABLE IF NOT EXISTS floodgate_meta (name TEXT PRIMARY KEY, value) WITHOUT ROWID');
    // Read again with the write lock held: another process may have migrated the file meanwhile.
    const version = schemaVersion(db, path);
    for (let v = version; v < SCHEMA_VERSION; v++) db.exec(MIGRATIONS[v]);
    if (version !== SCHEMA_VERSION) {
      db.prepare("INSERT OR REPLACE INTO floodgate_meta (name, value) VALUES ('schema_version', ?)").run(
        SCHEMA_VERSION,
      );
    }
  });
  run.immediate();
}

/** The file's floodgate schema version (0: none yet); a version newer than this code's is refused. */
function schemaVersion(db: Database, path: string): number {
  const hasMeta = db
    .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'floodgate_meta'")
    .get();
  if (hasMeta === undefined) return 0;
  const row = db.prepare("SELECT value FROM floodgate_meta WHERE name = 'schema_version'").get() as
    | { value: number }
    | undefined;
  const version = row?.value ?? 0;
  if (version > SCHEMA_VERSION) {
    throw new FloodgateError(
      'FLOODGATE_STORE_OPEN_FAILED',
      `SQLite database ${JSON.stringify(path)} has floodgate schema version ${version}, newer than this ` +
        `version of @floodgate/core understands (${SCHEMA_VERSION}); upgrade @floodgate/core or use another file`,
    );
  }
  return version;
}
