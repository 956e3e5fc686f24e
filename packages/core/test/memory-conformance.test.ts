import { describeStoreConformance } from '../src/testing/index.js';
import { MemoryStore } from '../src/stores/memory.js';

describeStoreConformance({
  name: 'MemoryStore',
  create: (clock) => new MemoryStore({ clock }),
  concurrency: 10_000,
});
