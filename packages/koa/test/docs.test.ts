// The Koa example of docs/adapters.md runs here as written and prints what the page says.
import { describe, expect, it } from 'vitest';
import { runExample } from '../../core/test/support/adapter-docs.js';

describe('docs/adapters.md (Koa)', () => {
  it('koa', async () => {
    expect(await runExample('koa', new URL('./', import.meta.url), 'koa')).toEqual([
      [200, 'application/json; charset=utf-8', false],
      [429, 'application/problem+json', true],
    ]);
  });
});
