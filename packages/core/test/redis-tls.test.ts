/**
 * rediss:// against a real redis-server speaking TLS (Debian's redis-server is built with TLS): a CA,
 * a server and a client certificate made with openssl in a temporary directory; the server demands
 * client certificates (tls-auth-clients, on by default). A wrong CA fails the check with a
 * FloodgateError naming the certificate problem, and the Limiter answers by its failure policy.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FloodgateError } from '../src/errors.js';
import { Limiter } from '../src/limiter.js';
import { parsePolicies } from '../src/rate.js';
import { RedisStore } from '../src/stores/redis/index.js';
import { createStore } from '../src/uri.js';
import { freePort, type RedisServer, startRedis } from './support/redis-servers.js';

const openssl = (...args: string[]) => promisify(execFile)('openssl', args, { timeout: 10_000 });

/** openssl req arguments for a new unencrypted P-256 key. */
const NEW_P256_KEY = ['-nodes', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'];

/** A CA (key + self-signed certificate) named `name` in `dir`. */
async function makeCa(dir: string, name: string): Promise<void> {
  await openssl(
    'req',
    '-x509',
    '-new',
    ...NEW_P256_KEY,
    '-keyout',
    join(dir, `${name}.key`),
    '-out',
    join(dir, `${name}.pem`),
    '-days',
    '2',
    '-subj',
    `/CN=${name}`,
  );
}

/** A certificate for `name`, signed by the CA `ca`, valid for 127.0.0.1 and localhost. */
async function makeCert(dir: string, name: string, ca: string): Promise<void> {
  const ext = join(dir, `${name}.ext`);
  writeFileSync(ext, 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  await openssl(
    'req',
    '-new',
    ...NEW_P256_KEY,
    '-keyout',
    join(dir, `${name}.key`),
    '-out',
    join(dir, `${name}.csr`),
    '-subj',
    `/CN=${name}`,
  );
  await openssl(
    'x509',
    '-req',
    '-in',
    join(dir, `${name}.csr`),
    '-CA',
    join(dir, `${ca}.pem`),
    '-CAkey',
    join(dir, `${ca}.key`),
    '-CAcreateserial',
    '-out',
    join(dir, `${name}.pem`),
    '-days',
    '2',
    '-extfile',
    ext,
  );
}

let dir: string;
let server: RedisServer;
let tlsPort: number;
const file = (name: string) => join(dir, name);
const prefix = () => `fgtls-${process.pid}-${Math.random().toString(36).slice(2)}:`;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fg-tls-'));
  await makeCa(dir, 'ca');
  await makeCa(dir, 'other-ca');
  await makeCert(dir, 'server', 'ca');
  await makeCert(dir, 'client', 'ca');
  tlsPort = await freePort();
  // The plain port stays open for the harness (readiness, redis-cli); the store uses the TLS port.
  server = await startRedis({
    args: [
      '--tls-port',
      String(tlsPort),
      '--tls-cert-file',
      file('server.pem'),
      '--tls-key-file',
      file('server.key'),
      '--tls-ca-cert-file',
      file('ca.pem'),
    ],
  });
}, 30_000);

afterAll(async () => {
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('rediss:// against a TLS redis-server', () => {
  it('checks over TLS with the CA, client certificate and key given as file paths in the URI', async () => {
    const store = createStore(
      `rediss://127.0.0.1:${tlsPort}?ca=${file('ca.pem')}&cert=${file('client.pem')}&key=${file('client.key')}&connectTimeoutMs=5000`,
    );
    expect(store).toBeInstanceOf(RedisStore);
    const policies = parsePolicies('3/1m', { prefix: prefix(), algorithm: 'fixed-window' });
    const allowed: boolean[] = [];
    for (let i = 0; i < 4; i++) allowed.push((await store.consume('tls-user', policies, 1))[0].allowed);
    expect(allowed).toEqual([true, true, true, false]);
    const health = await store.health();
    expect(health.ok).toBe(true);
    expect(health.detail).toContain(`rediss://127.0.0.1:${tlsPort}`);
    await store.close();
  });

  it('takes the TLS options as redisOptions too (Buffers, like ioredis)', async () => {
    const { readFileSync } = await import('node:fs');
    const store = new RedisStore({
      url: `redis://127.0.0.1:${tlsPort}`,
      connectTimeoutMs: 5000,
      redisOptions: {
        tls: {
          ca: readFileSync(file('ca.pem')),
          cert: readFileSync(file('client.pem')),
          key: readFileSync(file('client.key')),
        },
      },
    });
    const policies = parsePolicies('1/1m', { prefix: prefix() });
    expect((await store.consume('buffers', policies, 1))[0].allowed).toBe(true);
    expect((await store.consume('buffers', policies, 1))[0].allowed).toBe(false);
    await store.close();
  });

  it('a server certificate from another CA fails the check with a FloodgateError, and the Limiter answers by its failure policy', async () => {
    const url = `rediss://127.0.0.1:${tlsPort}?ca=${file('other-ca.pem')}&cert=${file('client.pem')}&key=${file('client.key')}&connectTimeoutMs=3000`;
    const store = createStore(url);
    const policies = parsePolicies('3/1m', { prefix: prefix() });
    const error = await store.consume('wrong-ca', policies, 1).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(FloodgateError);
    expect((error as FloodgateError).code).toBe('FLOODGATE_STORE_UNAVAILABLE');
    expect((error as Error).message).toMatch(/certificate/i);
    // Later checks fail at once while the client keeps trying (no hang, no offline queue).
    const again = await store.consume('wrong-ca', policies, 1).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((again as FloodgateError).code).toBe('FLOODGATE_STORE_UNAVAILABLE');

    const limiter = new Limiter({ limit: '3/1m', store: createStore(url) });
    const decision = await limiter.consume('wrong-ca');
    expect(decision.allowed).toBe(false);
    expect(decision.degraded).toBe('closed');
    const open = new Limiter({ limit: '3/1m', store: createStore(url), skipOnError: true });
    expect(await open.consume('wrong-ca')).toMatchObject({ allowed: true, degraded: 'open' });
    await Promise.all([store.close(), limiter.close(), open.close()]);
  });

  it('rejectUnauthorized=false accepts a server certificate no given CA signed (self-signed test servers)', async () => {
    const store = createStore(
      `rediss://127.0.0.1:${tlsPort}?ca=${file('other-ca.pem')}&cert=${file('client.pem')}&key=${file('client.key')}&rejectUnauthorized=false&connectTimeoutMs=5000`,
    );
    const policies = parsePolicies('2/1m', { prefix: prefix() });
    expect((await store.consume('lenient', policies, 1))[0].allowed).toBe(true);
    await store.close();
  });

  it('the server refuses a client without a certificate; the check fails, never hangs', async () => {
    const store = createStore(`rediss://127.0.0.1:${tlsPort}?ca=${file('ca.pem')}&connectTimeoutMs=3000`);
    const policies = parsePolicies('2/1m', { prefix: prefix() });
    const error = await store.consume('no-cert', policies, 1).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(FloodgateError);
    expect((error as FloodgateError).code).toBe('FLOODGATE_STORE_UNAVAILABLE');
    await store.close();
  });
});
