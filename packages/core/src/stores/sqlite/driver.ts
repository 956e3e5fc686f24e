/**
 * better-sqlite3 is an optional peer dependency: it is required here, synchronously and only when a
 * SqliteStore is built, so users of the other stores never install it. Opening a file turns every
 * way it can go wrong (missing directory, a directory, not a database, locked, read-only) into one
 * FloodgateError that names the path and the cause.
 */
import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';
import { errorMessage, FloodgateError } from '../../errors.js';

export type Database = BetterSqlite3.Database;
export type Statement = BetterSqlite3.Statement;
type DatabaseConstructor = typeof BetterSqlite3;

let driver: DatabaseConstructor | undefined;
const requireHere = createRequire(import.meta.url);

/** The better-sqlite3 constructor, or FLOODGATE_MISSING_DRIVER saying what to install. */
export function loadDriver(moduleName = 'better-sqlite3'): DatabaseConstructor {
  if (driver !== undefined && moduleName === 'better-sqlite3') return driver;
  let loaded: DatabaseConstructor;
  try {
    loaded = requireHere(moduleName) as DatabaseConstructor;
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'MODULE_NOT_FOUND' || code === 'ERR_MODULE_NOT_FOUND') {
      throw new FloodgateError(
        'FLOODGATE_MISSING_DRIVER',
        `the SQLite store needs the ${moduleName} package; run: npm install ${moduleName}`,
        { cause: error },
      );
    }
    throw unloadableBinary(moduleName, error);
  }
  if (moduleName === 'better-sqlite3') {
    driver = loaded;
    warnIfUnsafePair(process.versions.node, driverVersion());
  }
  return loaded;
}

/** The installed better-sqlite3's version, or undefined if its package.json cannot be read. */
function driverVersion(): string | undefined {
  try {
    return (requireHere('better-sqlite3/package.json') as { version?: string }).version;
  } catch {
    return undefined;
  }
}

/**
 * better-sqlite3 12.x on Node 24 can abort the whole process (a native assertion in
 * node::RemoveEnvironmentCleanupHook when a statement is garbage-collected; seen in floodgate's
 * multi-process test on 24.21.0 with 12.11.1, never with 13.2.0). Not an error: it strikes at
 * random, and the application may still be starting up or testing. Said once per process.
 */
export function unsafeDriverPair(node: string, betterSqlite3: string | undefined): string | undefined {
  const major = (version: string) => Number.parseInt(version, 10);
  if (betterSqlite3 === undefined || major(node) < 24 || major(betterSqlite3) >= 13) return undefined;
  return (
    `better-sqlite3 ${betterSqlite3} on Node.js ${node} can abort the process when a statement is ` +
    'garbage-collected (a native assertion in better-sqlite3 12.x on Node 24); run: npm install better-sqlite3@13'
  );
}

let warnedPair = false;

function warnIfUnsafePair(node: string, betterSqlite3: string | undefined): void {
  const message = unsafeDriverPair(node, betterSqlite3);
  if (message === undefined || warnedPair) return;
  warnedPair = true;
  process.emitWarning(message, { code: 'FLOODGATE_UNSAFE_SQLITE_DRIVER' });
}

/**
 * better-sqlite3 loads its native binary on the first `new Database()`, not when required: a binary
 * built for another Node.js (NODE_MODULE_VERSION), one that did not load, or none at all (pnpm 10
 * skips install scripts unless allowed) fails there. That is the package's fault, not the file's.
 * Up to 12.x the `bindings` package finds the binary ("Could not locate the bindings file"); from
 * 13 the package requires build/Release/better_sqlite3.node itself, so a missing one is Node's
 * MODULE_NOT_FOUND for that file.
 */
function isUnloadableBinary(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  if (code === 'ERR_DLOPEN_FAILED') return true;
  const message = error instanceof Error ? error.message : '';
  if (code === 'MODULE_NOT_FOUND' && message.includes('better_sqlite3.node')) return true;
  return /Could not locate the bindings file|NODE_MODULE_VERSION|did not self-register/.test(message);
}

function unloadableBinary(moduleName: string, error: unknown): FloodgateError {
  const cause = errorMessage(error);
  return new FloodgateError(
    'FLOODGATE_MISSING_DRIVER',
    `${moduleName} is installed but its native binary did not load (${oneLine(cause)}); ` +
      `it is missing or built for another Node.js than ${process.version}: run: npm rebuild ${moduleName} ` +
      `(with pnpm 10, first allow its build: "pnpm": { "onlyBuiltDependencies": ["${moduleName}"] } in package.json)`,
    { cause: error },
  );
}

/** The loader's message on one line, without the list of paths `bindings` tried (one per line, "→ …"). */
function oneLine(text: string): string {
  return text
    .split('\n')
    .filter((line) => !line.trim().startsWith('→'))
    .map((line) => line.trim())
    .join(' ');
}

/** Open (creating if needed) the database file at `path`. */
export function openDatabase(path: string, busyTimeoutMs: number): Database {
  const Driver = loadDriver();
  try {
    return new Driver(path, { timeout: busyTimeoutMs });
  } catch (error) {
    throw isUnloadableBinary(error) ? unloadableBinary('better-sqlite3', error) : openFailed(path, error);
  }
}

export function openFailed(path: string, error: unknown): FloodgateError {
  const cause = errorMessage(error);
  const code = (error as { code?: string }).code;
  return new FloodgateError(
    'FLOODGATE_STORE_OPEN_FAILED',
    `cannot use SQLite database ${JSON.stringify(path)}: ${cause}${code ? ` (${code})` : ''}; ` +
      `${hint(code, cause)}`,
    { cause: error },
  );
}

function hint(code: string | undefined, cause: string): string {
  if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') {
    return 'another connection holds a lock on it; close it or raise busyTimeoutMs';
  }
  if (code === 'SQLITE_NOTADB')
    return 'the file is not a SQLite database; give the path of a new or SQLite file';
  if (code === 'SQLITE_READONLY' || /readonly|read-only/i.test(cause)) {
    return 'the file or its directory is not writable by this process; give a writable path';
  }
  return 'give the path of a writable file in an existing directory, like "sqlite:///limits.db"';
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** Sleep without yielding (fractions of a ms too), to wait out another connection's lock. */
export function sleepSync(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}
