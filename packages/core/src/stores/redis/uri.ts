/**
 * Redis storage URIs -> what the store needs to create its ioredis client:
 *   redis://[user:pass@]host[:port][/db]          rediss://… (TLS: ?ca=&cert=&key= file paths)
 *   redis+unix://[:pass@]/path/redis.sock[?db=N]
 *   redis+sentinel://[:pass@]h1:26379,h2:26379/mymaster[/db][?sentinelPassword=]
 *   redis+cluster://[user:pass@]h1:7000,h2:7001
 * Common parameters: ?prefix= &timeoutMs= &connectTimeoutMs= &maxBatch= &name=
 */
import { readFileSync } from 'node:fs';
import { show } from '../../errors.js';
import { invalidUri, numberParam, rejectUnknownParams, splitUri } from '../../uri.js';

export interface HostPort {
  host: string;
  port: number;
}

export interface ParsedRedisUri {
  mode: 'standalone' | 'sentinel' | 'cluster';
  /** Standalone: host/port or path; sentinel: name + sentinels; cluster: nodes. */
  nodes: HostPort[];
  path?: string;
  sentinelName?: string;
  username?: string;
  password?: string;
  sentinelPassword?: string;
  db?: number;
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer; rejectUnauthorized?: boolean };
  connectionName?: string;
  store: { prefix?: string; timeoutMs?: number; connectTimeoutMs?: number; maxBatch?: number };
}

const COMMON = ['prefix', 'timeoutMs', 'connectTimeoutMs', 'maxBatch', 'name'];
const TLS = ['ca', 'cert', 'key', 'rejectUnauthorized'];

export function parseRedisUri(uri: string): ParsedRedisUri {
  const { scheme, rest, query } = splitUri(uri);
  const known = [
    ...COMMON,
    ...(scheme === 'rediss' ? TLS : []),
    ...(scheme === 'redis+unix' ? ['db'] : []),
    ...(scheme === 'redis+sentinel' ? ['sentinelPassword'] : []),
  ];
  const unknown: Record<string, string> = {};
  for (const [name, value] of Object.entries(query)) if (!known.includes(name)) unknown[name] = value;
  rejectUnknownParams(uri, unknown, known);

  const at = rest.lastIndexOf('@');
  const userinfo = at >= 0 ? rest.slice(0, at) : undefined;
  const afterUser = at >= 0 ? rest.slice(at + 1) : rest;
  const slash = afterUser.indexOf('/');
  const authority = slash >= 0 ? afterUser.slice(0, slash) : afterUser;
  const path = slash >= 0 ? afterUser.slice(slash) : '';

  const parsed: ParsedRedisUri = { mode: 'standalone', nodes: [], store: storeParams(uri, query) };
  if (userinfo !== undefined) {
    const colon = userinfo.indexOf(':');
    const user = decode(uri, colon >= 0 ? userinfo.slice(0, colon) : userinfo);
    const pass = colon >= 0 ? decode(uri, userinfo.slice(colon + 1)) : undefined;
    if (pass === undefined) {
      // "redis://secret@host" is how some tools write a password-only URI.
      parsed.password = user;
    } else {
      if (user !== '') parsed.username = user;
      parsed.password = pass;
    }
  }
  if (query.name !== undefined) parsed.connectionName = query.name;

  switch (scheme) {
    case 'redis':
    case 'rediss': {
      parsed.nodes = [hostPort(uri, authority, 6379, `${scheme}://localhost:6379/0`)];
      parsed.db = dbNumber(uri, path.replace(/^\//, ''), `${scheme}://host:6379/0`);
      if (scheme === 'rediss') parsed.tls = tlsOptions(uri, query);
      break;
    }
    case 'redis+unix': {
      if (authority !== '' || path === '' || path === '/') {
        throw invalidUri(
          uri,
          'a socket URI names an absolute path, like "redis+unix:///run/redis/redis.sock"',
        );
      }
      parsed.path = decode(uri, path);
      parsed.db = dbNumber(uri, query.db ?? '', 'redis+unix:///run/redis.sock?db=0');
      break;
    }
    case 'redis+sentinel': {
      parsed.mode = 'sentinel';
      parsed.nodes = hostList(uri, authority, 26379, 'redis+sentinel://h1:26379,h2:26379/mymaster');
      const [name, db, ...extra] = path.replace(/^\//, '').split('/');
      if (!name || extra.length > 0) {
        throw invalidUri(
          uri,
          'a Sentinel URI names the master after the hosts, like "redis+sentinel://h1:26379,h2:26379/mymaster/0"',
        );
      }
      parsed.sentinelName = decode(uri, name);
      parsed.db = dbNumber(uri, db ?? '', 'redis+sentinel://h1:26379/mymaster/0');
      if (query.sentinelPassword !== undefined) parsed.sentinelPassword = query.sentinelPassword;
      break;
    }
    case 'redis+cluster': {
      parsed.mode = 'cluster';
      parsed.nodes = hostList(uri, authority, 6379, 'redis+cluster://h1:7000,h2:7001');
      if (path !== '' && path !== '/') {
        throw invalidUri(
          uri,
          'Redis Cluster has only database 0; write "redis+cluster://h1:7000,h2:7001" without a /db',
        );
      }
      break;
    }
    default:
      throw invalidUri(uri, `${show(`${scheme}://`)} is not a Redis scheme`);
  }
  return parsed;
}

function storeParams(uri: string, query: Record<string, string>): ParsedRedisUri['store'] {
  const store: ParsedRedisUri['store'] = {};
  if (query.prefix !== undefined) store.prefix = query.prefix;
  for (const name of ['timeoutMs', 'connectTimeoutMs', 'maxBatch'] as const) {
    if (query[name] === undefined) continue;
    const n = numberParam(uri, name, query[name]);
    if (!Number.isInteger(n) || n < 1)
      throw invalidUri(uri, `?${name}=${query[name]} must be a whole number >= 1`);
    store[name] = n;
  }
  return store;
}

function decode(uri: string, text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw invalidUri(
      uri,
      'it has a malformed %-escape; percent-encode reserved characters in the password, like %40 for @',
    );
  }
}

function hostPort(uri: string, text: string, defaultPort: number, example: string): HostPort {
  const match = /^(\[[0-9a-fA-F:.]+\]|[^:[\]/,]+)(?::(\d{1,5}))?$/.exec(text);
  if (!match) throw invalidUri(uri, `${show(text)} is not a host[:port]; write it like "${example}"`);
  const port = match[2] === undefined ? defaultPort : Number(match[2]);
  if (port < 1 || port > 65535) throw invalidUri(uri, `port ${match[2]} is out of range 1-65535`);
  return { host: match[1].replace(/^\[|\]$/g, ''), port };
}

function hostList(uri: string, text: string, defaultPort: number, example: string): HostPort[] {
  if (text === '') throw invalidUri(uri, `it names no host; write it like "${example}"`);
  return text.split(',').map((item) => hostPort(uri, item, defaultPort, example));
}

function dbNumber(uri: string, text: string, example: string): number | undefined {
  if (text === '') return undefined;
  if (!/^\d{1,5}$/.test(text))
    throw invalidUri(uri, `database ${show(text)} is not a number; write it like "${example}"`);
  return Number(text);
}

function tlsOptions(uri: string, query: Record<string, string>): NonNullable<ParsedRedisUri['tls']> {
  const tls: NonNullable<ParsedRedisUri['tls']> = {};
  for (const name of ['ca', 'cert', 'key'] as const) {
    const file = query[name];
    if (file === undefined) continue;
    try {
      tls[name] = readFileSync(file);
    } catch (error) {
      throw invalidUri(
        uri,
        `?${name}=${file} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'}); give the path of a PEM file`,
      );
    }
  }
  if (query.rejectUnauthorized !== undefined) {
    if (query.rejectUnauthorized !== 'true' && query.rejectUnauthorized !== 'false') {
      throw invalidUri(uri, '?rejectUnauthorized= takes true or false');
    }
    tls.rejectUnauthorized = query.rejectUnauthorized === 'true';
  }
  return tls;
}
