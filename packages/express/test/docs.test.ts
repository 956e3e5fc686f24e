// The Express examples of docs/adapters.md run here as written and print what the page says.
import { QUOTA_EXCEEDED_TYPE } from '@floodgate/core';
import { describe, expect, it } from 'vitest';
import { examples, runExample } from '../../core/test/support/adapter-docs.js';

const here = new URL('./', import.meta.url);

describe('docs/adapters.md (Express)', () => {
  it('lists the runnable examples', () => {
    expect([...examples.keys()]).toEqual(['express', 'fastify', 'koa', 'express-events', 'express-down']);
  });

  it('express', async () => {
    const logs = await runExample('express', here, 'express');
    expect(logs.slice(0, 2)).toEqual([
      [200, '"login";q=2;w=900', '{"attemptsLeft":1}'],
      [200, '"login";q=2;w=900', '{"attemptsLeft":0}'],
    ]);
    expect(logs[2][0]).toBe(429);
    expect(JSON.parse(logs[2][2] as string)).toMatchObject({
      type: QUOTA_EXCEEDED_TYPE,
      'violated-policies': ['login'],
    });
  });

  it('express-down', async () => {
    expect(await runExample('express-down', here, 'express')).toEqual([
      [503, '1', null, 'Service Unavailable'],
    ]);
  });

  it('express-events', async () => {
    expect(await runExample('express-events', here, 'express')).toEqual([
      [200, 'ok'],
      ['limited', '127.0.0.1', true],
      [429, 'slow down'],
    ]);
  });
});
