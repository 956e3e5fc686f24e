import { describe, expect, it } from 'vitest';
import { atTurnEnd, turnEnd } from '../src/turn.js';

describe('atTurnEnd', () => {
  it('releases the continuations of one turn together, in order, after the turn and before the next', async () => {
    const order: string[] = [];
    atTurnEnd(() => order.push('a'));
    atTurnEnd(() => order.push('b'));
    const settled = turnEnd().then(() => order.push('promise'));
    atTurnEnd(() => order.push('c'));
    queueMicrotask(() => order.push('microtask'));
    order.push('sync');
    expect(order).toEqual(['sync']);
    await new Promise((resolve) => setImmediate(resolve));
    // Microtasks first, then the one release of a, b, the promise's resolve and c, in that order.
    expect(order.slice(0, 4)).toEqual(['sync', 'microtask', 'a', 'b']);
    await settled;
    expect(order).toEqual(['sync', 'microtask', 'a', 'b', 'c', 'promise']);
  });

  it('a continuation queued while releasing waits for the next turn', async () => {
    const order: string[] = [];
    atTurnEnd(() => {
      order.push('first');
      atTurnEnd(() => order.push('queued during the release'));
    });
    atTurnEnd(() => order.push('second'));
    await new Promise((resolve) => setImmediate(resolve));
    expect(order).toEqual(['first', 'second']);
    await new Promise((resolve) => setImmediate(resolve));
    expect(order).toEqual(['first', 'second', 'queued during the release']);
  });

  it('one that throws does not strand the others; its error surfaces after them', async () => {
    const ran: number[] = [];
    const errors: unknown[] = [];
    const onError = (error: unknown) => errors.push(error);
    const listeners = process.listeners('uncaughtException');
    process.removeAllListeners('uncaughtException');
    process.on('uncaughtException', onError);
    try {
      atTurnEnd(() => ran.push(1));
      atTurnEnd(() => {
        throw new Error('boom');
      });
      atTurnEnd(() => ran.push(3));
      await new Promise((resolve) => setTimeout(resolve, 20));
    } finally {
      process.off('uncaughtException', onError);
      for (const listener of listeners) process.on('uncaughtException', listener);
    }
    expect(ran).toEqual([1, 3]);
    expect(errors).toHaveLength(1);
    expect((errors[0] as Error).message).toBe('boom');
  });
});
