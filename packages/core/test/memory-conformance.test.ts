import { describeStoreConformance } from '@floodgate/core/testing';
import { MemoryStore } from '../src/stores/memory.js';

describeStoreConformance({
  name: 'MemoryStore',
  create: (clock) => new MemoryStore({ clock }),
  concurrency: 10_000,
});
