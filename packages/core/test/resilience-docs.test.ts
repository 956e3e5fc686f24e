// Every example in docs/resilience.md marked `<!-- run: name -->` runs here as written, and prints
// what the page says it prints. Port 1 on loopback has no listener, so "Redis" fails at once.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';

const page = readFileSync(fileURLToPath(new URL('../../../docs/resilience.md', import.meta.url)), 'utf8');
const examples = new Map<string, string>();
for (const match of page.matchAll(/<!-- run: ([a-z-]+) -->\n```ts\n([\s\S]*?)```/g)) {
  examples.set(match[1], match[2]);
}
const dir = fileURLToPath(new URL('./.docs-run/', import.meta.url));
mkdirSync(dir, { recursive: true });
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => {
  vi.restoreAllMocks();
});

/** Run one example as a module; resolve with the arguments of each console.log call. */
async function run(name: string): Promise<unknown[][]> {
  const source = examples.get(name);
  if (source === undefined) throw new Error(`docs/resilience.md has no example "${name}"`);
  const file = `${dir}${name}-${Date.now()}.ts`;
  writeFileSync(file, source);
  const log = vi.spyOn(console, 'log').mockImplementation(() => {});
  await import(file);
  return log.mock.calls;
}

describe('docs/resilience.md examples', () => {
  it('lists the examples this test knows', () => {
    expect([...examples.keys()]).toEqual(
      ['fallback', 'closed', 'health', 'events', 'multi'].sort(
        (a, b) => page.indexOf(`run: ${a}`) - page.indexOf(`run: ${b}`),
      ),
    );
  });

  it('fallback', async () => {
    expect(await run('fallback')).toEqual([[true, 'fallback', 50]]);
  });

  it('closed', async () => {
    const logs = await run('closed');
    expect(logs[0][0]).toMatchObject({ allowed: true, degraded: 'open', remaining: 10 });
    expect(logs[1]).toEqual([false, 'closed', true]);
  });

  it('health', async () => {
    const logs = await run('health');
    expect(logs[0][0]).toBe('degraded');
    expect(logs[0][1]).toBe('open');
    expect(logs[0][2]).toMatchObject({ state: 'open', threshold: 3, cooldownMs: 1000, opens: 1 });
    expect(logs[1][0]).toEqual({ storeErrors: 3, timeouts: 0, fallback: 0, open: 3, closed: 0 });
  });

  it('events', async () => {
    expect(await run('events')).toEqual([
      [
        [
          'store error on redis (consume user:1)',
          'degraded: fallback',
          'store error on redis (consume user:1)',
          'limited user:1',
        ],
      ],
    ]);
  });

  it('multi', async () => {
    const logs = await run('multi');
    expect(logs[0]).toEqual([false, 4]);
    expect(logs[1][0]).toMatchObject({ strategy: 'first-healthy', active: 1, switches: 1 });
  });
});
