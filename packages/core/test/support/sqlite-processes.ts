/** Start sqlite-worker.mts processes on one file and talk to them line by line. */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const WORKER = fileURLToPath(new URL('./sqlite-worker.mts', import.meta.url));

export class SqliteWorker {
  private readonly lines: string[] = [];
  private waiting: (() => void) | undefined;
  private buffer = '';
  stderr = '';
  readonly exited: Promise<number | null>;

  private constructor(readonly child: ChildProcessWithoutNullStreams) {
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      this.buffer += chunk;
      let newline = this.buffer.indexOf('\n');
      while (newline >= 0) {
        this.lines.push(this.buffer.slice(0, newline));
        this.buffer = this.buffer.slice(newline + 1);
        newline = this.buffer.indexOf('\n');
      }
      this.waiting?.();
    });
    child.stderr.on('data', (chunk) => {
      this.stderr += String(chunk);
    });
    this.exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
    this.exited.then(() => this.waiting?.());
  }

  static async start(path: string): Promise<SqliteWorker> {
    const worker = new SqliteWorker(
      spawn(process.execPath, ['--import', 'tsx', WORKER, path], { stdio: ['pipe', 'pipe', 'pipe'] }),
    );
    await worker.next();
    return worker;
  }

  send(line: string): void {
    this.child.stdin.write(`${line}\n`);
  }

  /** The next JSON line the worker prints. */
  async next<T = Record<string, unknown>>(): Promise<T> {
    while (this.lines.length === 0) {
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new Error(`worker exited (${this.child.exitCode ?? this.child.signalCode}): ${this.stderr}`);
      }
      await new Promise<void>((resolve) => {
        this.waiting = resolve;
      });
    }
    return JSON.parse(this.lines.shift() as string) as T;
  }

  /** Drop the lines already printed (a flooding worker prints many). */
  drain(): string[] {
    return this.lines.splice(0);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.stdin.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(timer);
  }
}
