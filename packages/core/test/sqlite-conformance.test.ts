/**
 * The core store conformance suite, unchanged, against the SQLite store: on a real file in a
 * temporary directory (WAL, group commit) and on ':memory:'.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { SqliteStore } from '../src/stores/sqlite/index.js';
import { describeStoreConformance } from '../src/testing/index.js';

const dir = mkdtempSync(join(tmpdir(), 'floodgate-sqlite-conformance-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describeStoreConformance({
  name: 'SqliteStore (file)',
  create: (clock) => new SqliteStore({ path: join(dir, 'conformance.db'), clock }),
  concurrency: 2000,
});

describeStoreConformance({
  name: 'SqliteStore (:memory:)',
  create: (clock) => new SqliteStore({ path: ':memory:', clock }),
});
