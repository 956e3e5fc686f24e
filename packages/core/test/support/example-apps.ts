/**
 * Runs an app of examples/ as it is shipped (`node --import tsx app.ts` in its folder, the built
 * packages), on a port of its choosing: PORT=0, and the port is read from the lines it prints when
 * listening ("… on http://127.0.0.1:<port>", one per listening process).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

export interface RunningExample {
  readonly port: number;
  /** Everything the app printed so far. */
  output(): string;
  /** SIGTERM, and wait for the app to exit. */
  stop(): Promise<void>;
}

const started = new Set<ChildProcess>();

/** Start examples/`name` with `env`; resolve once `listeners` processes listen (all on one port). */
export async function startExample(
  name: string,
  env: Record<string, string>,
  listeners = 1,
): Promise<RunningExample> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'app.ts'], {
    cwd: fileURLToPath(new URL(`../../../../examples/${name}/`, import.meta.url)),
    env: { ...process.env, PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  started.add(child);
  child.once('exit', () => started.delete(child));
  let out = '';
  const port = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`examples/${name} exited (${code}) before listening`)));
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const ports = [...out.matchAll(/ on http:\/\/127\.0\.0\.1:(\d+)/g)].map((m) => Number(m[1]));
      if (ports.length < listeners) return;
      if (new Set(ports).size === 1) resolve(ports[0]);
      else reject(new Error(`examples/${name} listens on several ports: ${ports.join(', ')}`));
    });
  });
  return {
    port,
    output: () => out,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** For afterAll: SIGKILL whatever a failed test left running. */
export function killExamples(): void {
  for (const child of started) child.kill('SIGKILL');
}
