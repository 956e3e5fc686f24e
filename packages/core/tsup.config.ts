import { cpSync } from 'node:fs';
import { defineConfig } from 'tsup';

export default defineConfig({
  entry: { index: 'src/index.ts', 'testing/index': 'src/testing/index.ts' },
  format: ['esm'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  // The Redis store reads its Lua scripts at runtime, beside the module (src/stores/redis/lua/ in the
  // sources, dist/lua/ once built): copy them next to the bundle.
  onSuccess: async () => {
    cpSync('src/stores/redis/lua', 'dist/lua', { recursive: true });
  },
});
