import { MemoryStore } from '../src/stores/memory.js';
import { describeStoreConformance } from '../src/testing/index.js';

describeStoreConformance({
  name: 'MemoryStore',
  create: (clock) => new MemoryStore({ clock }),
  concurrency: 10_000,
});
