// Placeholder until the Redis store lands (issue 6): it is being written in parallel.
import { FloodgateError } from '../../errors.js';
import type { Store } from '../../types.js';

export class RedisStore {
  static fromUri(uri: string): Store {
    throw new FloodgateError('FLOODGATE_INVALID_URI', `${uri}: the Redis store is not built yet`);
  }
}
