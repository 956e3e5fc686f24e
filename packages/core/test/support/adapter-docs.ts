/**
 * Runs the examples of docs/adapters.md marked `<!-- run: name -->` as written, collecting what they
 * print. Shared by the three adapter packages' docs tests (imported by relative path). The example
 * file is written inside the calling package's test folder, so `express`, `fastify` or `koa` resolve
 * from that package; the adapter's own import is pointed at its TypeScript source.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { vi } from 'vitest';

const page = readFileSync(fileURLToPath(new URL('../../../../docs/adapters.md', import.meta.url)), 'utf8');

export const examples = new Map<string, string>();
for (const match of page.matchAll(/<!-- run: ([a-z-]+) -->\n```ts\n([\s\S]*?)```/g)) {
  examples.set(match[1], match[2]);
}

/** Run example `name` from `testDir` (a package's test folder URL); resolve with each console.log call's arguments. */
export async function runExample(
  name: string,
  testDir: URL,
  adapter: 'express' | 'fastify' | 'koa',
): Promise<unknown[][]> {
  const source = examples.get(name);
  if (source === undefined) throw new Error(`docs/adapters.md has no example "${name}"`);
  const dir = fileURLToPath(new URL('./.docs-run/', testDir));
  mkdirSync(dir, { recursive: true });
  const entry = fileURLToPath(new URL('../src/index.ts', testDir));
  const file = `${dir}${name}-${process.pid}-${Date.now()}.ts`;
  writeFileSync(file, source.replaceAll(`'@floodgate/${adapter}'`, JSON.stringify(entry)));
  const log = vi.spyOn(console, 'log').mockImplementation(() => {});
  try {
    await import(file);
    return log.mock.calls;
  } finally {
    log.mockRestore();
    rmSync(dir, { recursive: true, force: true });
  }
}
