/**
 * Every statement the store runs on its entries, prepared once per connection. The SQL of a check
 * lives here, beside the schema it reads (schema.ts); the sweep's own statement is in sweep.ts.
 */
import type { Database, Statement } from './driver.js';
import { ENTRIES_TABLE } from './schema.js';

/** Rows read per page by entries(). */
export const ENTRIES_PAGE = 500;

export interface EntryStatements {
  readonly select: Statement;
  readonly insert: Statement;
  readonly update: Statement;
  readonly updateAndMove: Statement;
  readonly updateIfUnchanged: Statement;
  readonly selectById: Statement;
  readonly remove: Statement;
  readonly removePrefix: Statement;
  readonly firstPage: Statement;
  readonly nextPage: Statement;
  readonly probe: Statement;
  readonly dataVersion: Statement;
}

export function prepareEntryStatements(db: Database): EntryStatements {
  const page = (from: string) =>
    db
      .prepare(
        `SELECT bucket, key, hex(state), expires_at FROM ${ENTRIES_TABLE}
         WHERE (bucket, key) ${from} (?, ?) ORDER BY bucket, key LIMIT ${ENTRIES_PAGE}`,
      )
      .raw();
  return {
    select: db
      .prepare(
        `SELECT id, hex(state), expires_at, sweep_after FROM ${ENTRIES_TABLE} WHERE bucket = ? AND key = ?`,
      )
      .raw(),
    insert: db.prepare(
      `INSERT INTO ${ENTRIES_TABLE} (bucket, key, state, expires_at, sweep_after) VALUES (?, ?, ?, ?, ?)`,
    ),
    // Two updates, so the sweep index is only rewritten when a row's minute actually moves.
    update: db.prepare(`UPDATE ${ENTRIES_TABLE} SET state = ?, expires_at = ? WHERE id = ?`),
    updateAndMove: db.prepare(
      `UPDATE ${ENTRIES_TABLE} SET state = ?, expires_at = ?, sweep_after = ? WHERE id = ?`,
    ),
    // A lone check on a cached row (consumeAlone): written only if the row is still as cached.
    updateIfUnchanged: db.prepare(
      `UPDATE ${ENTRIES_TABLE} SET state = ?, expires_at = ?
       WHERE id = ? AND state = ? AND expires_at = ? AND bucket = ? AND key = ?`,
    ),
    // A cached row after another connection's commit: by rowid, if the rowid is still this key's.
    selectById: db
      .prepare(
        `SELECT hex(state), expires_at, sweep_after FROM ${ENTRIES_TABLE} WHERE id = ? AND bucket = ? AND key = ?`,
      )
      .raw(),
    remove: db.prepare(`DELETE FROM ${ENTRIES_TABLE} WHERE bucket = ? AND key = ?`),
    // Buckets sharing a prefix are adjacent in the (bucket, key) index's order, so both statements
    // start at the prefix, and the entries() page walk stops at the first bucket outside it.
    removePrefix: db.prepare(
      `DELETE FROM ${ENTRIES_TABLE} WHERE bucket >= @prefix AND substr(bucket, 1, length(@prefix)) = @prefix`,
    ),
    firstPage: page('>='),
    nextPage: page('>'),
    probe: db.prepare('SELECT 1').pluck(),
    dataVersion: db.prepare('PRAGMA data_version').pluck(),
  };
}
