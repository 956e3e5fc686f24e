// Placeholder until the SQLite store lands (issue 5): it is being written in parallel.
import { FloodgateError } from '../errors.js';
import type { Store } from '../types.js';

export class SqliteStore {
  static fromUri(uri: string): Store {
    throw new FloodgateError('FLOODGATE_INVALID_URI', `${uri}: the SQLite store is not built yet`);
  }
}
