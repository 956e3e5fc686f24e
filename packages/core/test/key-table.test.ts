import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parsePolicies } from '../src/rate.js';
import { entryOf, KeyTable, slotOf } from '../src/stores/key-table.js';
import { MemoryStore } from '../src/stores/memory.js';
import { NONE, PAGE_SIZE, SlotPages } from '../src/stores/slots.js';

/** Keys of every kind the table stores differently: inline (<= 24 Latin-1 chars) or as strings. */
const keyArbitrary = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.string({ unit: 'binary', maxLength: 30 }),
  fc.constantFrom(
    '',
    'a',
    'x'.repeat(24),
    'x'.repeat(25),
    'é'.repeat(24),
    'ā',
    '\u0000',
    '2a02:8108:1a3f:ab00::/56',
  ),
  fc.nat(3000).map((n) => `k${n}`),
);

describe('KeyTable', () => {
  it('agrees with a Map on any sequence of adds, removes and finds, in several buckets', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            op: fc.constantFrom('add', 'add', 'remove', 'find'),
            bucket: fc.nat(3),
            key: keyArbitrary,
          }),
          // Enough keys that the 256 sub-tables hold probe runs, which removal must keep intact.
          { minLength: 1000, maxLength: 4000 },
        ),
        (ops) => {
          const slots = new SlotPages();
          slots.grow(4096);
          const table = new KeyTable(slots);
          const model = new Map<string, number>();
          const free = Array.from({ length: 4096 }, (_, i) => 4095 - i);
          for (const { op, bucket, key } of ops) {
            const id = `${bucket}\u0001${key}`;
            const found = table.find(bucket, key);
            expect(found).toBe(model.get(id) ?? NONE);
            if (op === 'add' && found === NONE) {
              const slot = free.pop() as number;
              table.add(bucket, key, slot);
              model.set(id, slot);
            } else if (op === 'remove' && found !== NONE) {
              table.remove(found);
              model.delete(id);
              free.push(found);
            }
          }
          for (const [id, slot] of model) {
            const [bucket, key] = [
              Number(id.slice(0, id.indexOf('\u0001'))),
              id.slice(id.indexOf('\u0001') + 1),
            ];
            expect(table.find(bucket, key)).toBe(slot);
            expect(table.keyOf(slot)).toBe(key);
            expect(table.bucketOf(slot)).toBe(bucket);
            expect(table.inUse(slot)).toBe(true);
          }
        },
      ),
      { numRuns: 25 },
    );
  });

  it('keeps every slot up to maxKeys (16,000,000) in an index entry, whatever the hash', () => {
    for (const slot of [0, 1, 255, 65_535, 8_388_606, 8_388_607, 8_388_608, 15_999_999]) {
      for (const hash of [0, -1, 0x00ff0000, 0x7fffffff, -0x80000000, 0x12345678]) {
        const entry = entryOf(slot, hash);
        expect(entry).not.toBe(0); // 0 marks an empty entry
        expect(entry | 0).toBe(entry); // an Int32Array keeps it as is
        expect(slotOf(entry)).toBe(slot);
        expect(entry & 0xff).toBe((hash >>> 16) & 0xff);
      }
    }
  });

  it('holds 200,000 keys across pages, and finds each after a third are removed', () => {
    const slots = new SlotPages();
    const table = new KeyTable(slots);
    let capacity = 1024;
    slots.grow(capacity);
    const count = 200_000;
    for (let slot = 0; slot < count; slot++) {
      while (slot >= capacity) {
        capacity = capacity < PAGE_SIZE ? capacity * 2 : capacity + PAGE_SIZE;
        slots.grow(capacity);
      }
      table.add(slot % 3, `key-${slot}`, slot);
    }
    for (let slot = 0; slot < count; slot += 3) table.remove(slot);
    let found = 0;
    for (let slot = 0; slot < count; slot++) {
      const at = table.find(slot % 3, `key-${slot}`);
      if (slot % 3 === 0) expect(at).toBe(NONE);
      else if (at === slot) found++;
    }
    expect(found).toBe(count - Math.ceil(count / 3));
    // A key under another bucket is another key.
    expect(table.find(1, 'key-0')).toBe(NONE);
    expect(table.find(1, 'key-1')).toBe(1);
    expect(table.find(2, 'key-1')).toBe(NONE);
  });
});

describe('MemoryStore keys of any text', () => {
  it('counts long, non-Latin-1, empty and look-alike keys apart, and lists them back exactly', async () => {
    const store = new MemoryStore({ sweepIntervalMs: 0 });
    const policies = parsePolicies('3/min', { name: 'k', prefix: 'kt:' });
    const keys = ['', 'a', 'x'.repeat(24), 'x'.repeat(25), 'ключ', '鍵'.repeat(30), 'a\u0000', 'A', '🔑'];
    for (const [i, key] of keys.entries()) {
      for (let n = 0; n <= i % 3; n++) await store.consume(key, policies, 1);
    }
    for (const [i, key] of keys.entries()) {
      expect((await store.peek(key, policies))[0].remaining).toBe(3 - ((i % 3) + 1));
    }
    const listed: string[] = [];
    for await (const entry of store.entries('kt:')) listed.push(entry.key);
    expect(listed.sort()).toEqual([...keys].sort());
    await store.reset('x'.repeat(25), [policies[0].bucket]);
    expect((await store.peek('x'.repeat(25), policies))[0].remaining).toBe(3);
    expect((await store.peek('x'.repeat(24), policies))[0].remaining).toBe(0);
    expect(await store.clear('kt:')).toBe(keys.length - 1);
    expect(store.size).toBe(0);
    await store.close();
  });
});
