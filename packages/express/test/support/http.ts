/**
 * Test helpers shared by the Express, Fastify and Koa adapter tests (imported by relative path):
 * real HTTP requests to a listening server, and RateLimit headers parsed with an RFC 9651 parser.
 */
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseList } from 'structured-headers';

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface Target {
  port?: number;
  socketPath?: string;
}

/** One real HTTP/1.1 request over a fresh connection (no agent pooling, so concurrency is real). */
export function request(
  target: Target,
  path: string,
  options: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        ...target,
        path,
        method: options.method ?? 'GET',
        headers:
          options.body === undefined
            ? options.headers
            : { 'content-type': 'application/json', ...options.headers },
        agent: false,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/** Listen on 127.0.0.1 with an ephemeral port; returns the port. */
export async function listen(server: http.Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

export async function close(server: http.Server): Promise<void> {
  server.closeAllConnections?.();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

export interface RateLimitItem {
  name: string;
  params: Map<string, unknown>;
}

/** Parse a draft-11 RateLimit or RateLimit-Policy field with an RFC 9651 parser (throws if invalid). */
export function parseField(value: string | string[] | undefined): RateLimitItem[] {
  if (typeof value !== 'string') throw new Error(`expected one header value, got ${JSON.stringify(value)}`);
  return parseList(value).map((member) => {
    const [name, params] = member;
    if (typeof name !== 'string') throw new Error(`item ${String(name)} is not an sf-string`);
    return { name, params: params as Map<string, unknown> };
  });
}

/** Every header value is printable ASCII and every number in a rate-limit header is a whole number >= 0. */
export function assertCleanHeaders(headers: http.IncomingHttpHeaders): void {
  for (const [name, value] of Object.entries(headers)) {
    for (const v of Array.isArray(value) ? value : [value ?? '']) {
      if (!/^[\x20-\x7e]*$/.test(v))
        throw new Error(`header ${name} has a control character: ${JSON.stringify(v)}`);
      if (
        /ratelimit|retry-after/i.test(name) &&
        (/-\d/.test(v.replace(/"[^"]*"/g, '')) || /NaN|Infinity|\d\.\d/.test(v))
      ) {
        throw new Error(`header ${name} has a negative, NaN or fractional number: ${v}`);
      }
    }
  }
}

/** Run `count` requests at once and return their replies. */
export function burst(count: number, send: (i: number) => Promise<Reply>): Promise<Reply[]> {
  return Promise.all(Array.from({ length: count }, (_, i) => send(i)));
}

/** The count of each status in `replies`, like { 200: 10, 429: 20 }. */
export function statuses(replies: readonly Reply[]): Record<number, number> {
  const out: Record<number, number> = {};
  for (const r of replies) out[r.status] = (out[r.status] ?? 0) + 1;
  return out;
}
