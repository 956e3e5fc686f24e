import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (path: string) => fileURLToPath(new URL(path, import.meta.url));

// Tests run against the TypeScript sources, so a change in core is seen by every package's
// tests without a rebuild. Child processes started by tests use tsx for the same reason.
const alias = {
  '@floodgate/core/testing': src('./packages/core/src/testing/index.ts'),
  '@floodgate/core': src('./packages/core/src/index.ts'),
};

const project = (name: string, extra: Record<string, unknown> = {}) => ({
  resolve: { alias },
  test: {
    name,
    root: src(`./packages/${name}`),
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    ...extra,
  },
});

export default defineConfig({
  test: {
    projects: [project('core'), project('express'), project('fastify'), project('koa')],
  },
});
