// Every example in docs/sqlite.md marked `<!-- run: name -->` runs here as written (in a fresh
// working directory, since the examples use relative file names), and prints what the page says.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';

const page = readFileSync(fileURLToPath(new URL('../../../docs/sqlite.md', import.meta.url)), 'utf8');
const examples = new Map<string, { source: string; printed: string[] }>();
for (const match of page.matchAll(/<!-- run: ([a-z-]+) -->\n```ts\n([\s\S]*?)```/g)) {
  // The page shows what an example prints as `// ...` lines right after each console.log.
  const printed = [...match[2].matchAll(/console\.log\([\s\S]*?\n((?:\s*\/\/ .*\n)+)/g)].flatMap((m) =>
    m[1]
      .trim()
      .split('\n')
      .map((line) => line.trim().replace(/^\/\/ /, '')),
  );
  examples.set(match[1], { source: match[2], printed });
}
const scratch = fileURLToPath(new URL('./.docs-run-sqlite/', import.meta.url));
const cwd = process.cwd();
afterEach(() => {
  process.chdir(cwd);
  vi.restoreAllMocks();
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** Run one example as a module in an empty directory; resolve with the lines it printed. */
async function run(name: string): Promise<string[]> {
  const example = examples.get(name);
  if (example === undefined) throw new Error(`docs/sqlite.md has no example "${name}"`);
  const work = mkdtempSync(join(tmpdir(), `floodgate-docs-${name}-`));
  // The module file lives under test/ so '@floodgate/core' resolves through the vitest alias.
  const file = join(scratch, `${name}-${Date.now()}.ts`);
  mkdirSync(scratch, { recursive: true });
  writeFileSync(file, example.source);
  const log = vi.spyOn(console, 'log').mockImplementation(() => {});
  process.chdir(work);
  try {
    await import(file);
  } finally {
    process.chdir(cwd);
    rmSync(work, { recursive: true, force: true });
  }
  return log.mock.calls.map((args) => args.map(String).join(' '));
}

describe('docs/sqlite.md examples', () => {
  it('lists the examples this test knows', () => {
    expect([...examples.keys()]).toEqual([
      'sqlite-basics',
      'sqlite-own-database',
      'sqlite-row-cache',
      'sqlite-errors',
    ]);
  });

  it.each(['sqlite-basics', 'sqlite-own-database', 'sqlite-row-cache', 'sqlite-errors'])(
    '%s prints what the page says',
    async (name) => {
      const printed = await run(name);
      expect(printed.length).toBeGreaterThan(0);
      expect(printed).toEqual(examples.get(name)?.printed);
    },
  );
});
