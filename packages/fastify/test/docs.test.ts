// The Fastify example of docs/adapters.md runs here as written and prints what the page says.
import { describe, expect, it } from 'vitest';
import { runExample } from '../../core/test/support/adapter-docs.js';

describe('docs/adapters.md (Fastify)', () => {
  it('fastify', async () => {
    expect(await runExample('fastify', new URL('./', import.meta.url), 'fastify')).toEqual([
      [
        [200, 200, 429],
        [200, 429],
        [200, 200, 200],
      ],
      [{ remaining: 99 }],
    ]);
  });
});
