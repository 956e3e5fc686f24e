/**
 * The framework-neutral half of every adapter. Express, Fastify and Koa each only fetch the client
 * address, set headers on their response object, send the answer this module builds and decide when
 * to continue; everything else happens here, once:
 *
 *   options  -> validated at construction (unknown names rejected with a did-you-mean)
 *   request  -> skip? key (client IP, IPv6 grouped) and cost -> Limiter.consume -> headers
 *   denial   -> 429 with an RFC 9457 problem body (or `message`), 503 when the store failed closed
 *   response -> refund for skipSuccessfulRequests / skipFailedRequests
 *
 * Nothing is merged, compiled or allocated per request beyond the Decision and one small record.
 */
import { assertKnownOptions, FloodgateError, show } from './errors.js';
import {
  checkHeadersOption,
  type HeadersOption,
  type HeaderTarget,
  HeaderWriter,
  retryAfterSeconds,
} from './headers.js';
import { checkIpv6Subnet, type Ipv6Subnet, ipKey } from './keys.js';
import { LIMITER_OPTION_NAMES, Limiter, type LimiterOptions } from './limiter.js';
import { HOOK_NAMES, type LimiterHooks } from './resilience/events.js';
import type { Decision } from './types.js';

/** Options every adapter accepts on top of the Limiter's. `Req` is the framework's request object. */
export interface AdapterOptions<Req, OnLimit> {
  /** The bucket key of a request. @default the client IP as the framework sees it, IPv6 grouped by ipv6Subnet */
  key?: (req: Req) => string | Promise<string>;
  /** Units a request spends: a whole number >= 0, or a function of the request. @default 1 */
  cost?: number | ((req: Req) => number | Promise<number>);
  /** Return true to let a request through without counting it (no headers either). */
  skip?: (req: Req) => boolean | Promise<boolean>;
  /** Which RateLimit headers to send. @default 'draft-11' */
  headers?: HeadersOption;
  /** Status of a limited response. @default 429 */
  statusCode?: number;
  /** Body of a limited response instead of the RFC 9457 problem: text, or an object sent as JSON. */
  message?: string | Readonly<Record<string, unknown>>;
  /**
   * Answer a limited request yourself. Headers (RateLimit, Retry-After) are already set when it is
   * called; it must send the response. Not called for the 503 of a failed store.
   */
  onLimit?: OnLimit;
  /**
   * The Limiter's event hooks, for logs and metrics: `onLimit` (a request was denied by a limit; called
   * before the answer, with `{ key, decision }`), `onStoreError`, `onDegraded`, `onRecovered`. The last
   * three may also be given at the top level, as on a Limiter; the top-level `onLimit` is the answer.
   */
  events?: LimiterHooks;
  /** Give a request's cost back when its response succeeds (status < 400). @default false */
  skipSuccessfulRequests?: boolean;
  /** Give a request's cost back when its response fails (status >= 400, or the client went away). @default false */
  skipFailedRequests?: boolean;
  /** Prefix length grouping IPv6 clients in the default key (1-128), or false for whole addresses. @default 56 */
  ipv6Subnet?: Ipv6Subnet;
}

/**
 * Everything an adapter's rateLimit() accepts: the Limiter's options plus the adapter's. Where both
 * use a name (`onLimit`), the adapter's meaning wins: in an adapter, onLimit answers the request, and
 * the Limiter's onLimit event hook goes in `events`.
 */
export type RateLimitOptions<Req, OnLimit> = Omit<LimiterOptions, keyof AdapterOptions<Req, OnLimit>> &
  AdapterOptions<Req, OnLimit>;

export const ADAPTER_OPTION_NAMES = [
  'key',
  'cost',
  'skip',
  'headers',
  'statusCode',
  'message',
  'onLimit',
  'events',
  'skipSuccessfulRequests',
  'skipFailedRequests',
  'ipv6Subnet',
] as const;

/** What an adapter sends itself: a status, a content type and a body, headers already set. */
export interface Answer {
  readonly status: number;
  readonly contentType: string;
  readonly body: string;
}

/** A request that was counted: what the refund after the response needs. */
export interface Admission {
  readonly decision: Decision;
  readonly key: string;
  readonly cost: number;
}

/**
 * The outcome of `RequestLimiter.check`: an Admission (look at `decision.allowed`), `'skip'` (the skip
 * option let the request through uncounted) or `'no-client'` (no key could be made: the framework
 * has no client address; answer with `unknownClient`, never with a shared bucket).
 */
export type CheckResult = Admission | 'skip' | 'no-client';

export const QUOTA_EXCEEDED_TYPE = 'https://iana.org/assignments/http-problem-types#quota-exceeded';
const QUOTA_EXCEEDED_TITLE = 'Request cannot be satisfied as assigned quota has been exceeded';
const PROBLEM_JSON = 'application/problem+json';

const STORE_FAILED: Answer = Object.freeze({
  status: 503,
  contentType: PROBLEM_JSON,
  body: JSON.stringify({
    type: 'about:blank',
    title: 'Service Unavailable',
    status: 503,
    detail: 'The rate limiter cannot decide right now; retry after the time in Retry-After.',
  }),
});

const UNKNOWN_CLIENT: Answer = Object.freeze({
  status: 500,
  contentType: PROBLEM_JSON,
  body: JSON.stringify({
    type: 'about:blank',
    title: 'Internal Server Error',
    status: 500,
    detail: 'The client of this request could not be identified, so it cannot be rate limited.',
  }),
});

let warnedUnknownClient = false;

function noop(): void {}

/** Reject options no one reads, naming the adapter and listing what it accepts. */
export function assertAdapterOptions(
  options: object,
  where: string,
  extraNames: readonly string[] = [],
): void {
  assertKnownOptions(options, [...LIMITER_OPTION_NAMES, ...ADAPTER_OPTION_NAMES, ...extraNames], where);
}

/**
 * One limiter as an adapter uses it: built once from the options, then `check` per request.
 * `where` names the call in error messages (like "rateLimit()" or "route GET /login").
 */
export class RequestLimiter<Req, OnLimit = unknown> {
  readonly limiter: Limiter;
  readonly headers: HeaderWriter;
  /** Set when the user answers limited requests; the adapter calls it with its own arguments. */
  readonly onLimit: OnLimit | undefined;
  /** True when responses must be watched for skipSuccessfulRequests / skipFailedRequests. */
  readonly refunds: boolean;
  readonly statusCode: number;
  private readonly skipSuccessful: boolean;
  private readonly skipFailed: boolean;
  private readonly key: ((req: Req) => string | Promise<string>) | undefined;
  private readonly costFunction: ((req: Req) => number | Promise<number>) | undefined;
  private readonly costValue: number;
  /** Reused for every consume call of a fixed cost: the Limiter only reads it. */
  private readonly consumeOptions: { readonly cost: number };
  private readonly skip: ((req: Req) => boolean | Promise<boolean>) | undefined;
  private readonly ipv6Subnet: Ipv6Subnet;
  /** `message` as a ready answer, when given. */
  private readonly messageAnswer: Answer | undefined;
  /** Problem bodies by violated policy names, built on first use (at most one per subset of policies). */
  private readonly problems = new Map<string, Answer>();

  constructor(
    options: RateLimitOptions<Req, OnLimit>,
    where = 'rateLimit()',
    extraNames: readonly string[] = [],
  ) {
    if (options === null || typeof options !== 'object') {
      throw new FloodgateError(
        'FLOODGATE_INVALID_OPTION',
        `${where} needs an options object, like ${where.endsWith(')') ? where.slice(0, -1) : `${where}(`}{ limit: "100/min" })`,
      );
    }
    assertAdapterOptions(options, where, extraNames);
    const limiterOptions: Record<string, unknown> = {};
    for (const name of LIMITER_OPTION_NAMES) {
      if (options[name as keyof typeof options] === undefined) continue;
      if ((ADAPTER_OPTION_NAMES as readonly string[]).includes(name)) continue;
      limiterOptions[name] = options[name as keyof typeof options];
    }
    // Adapter options are checked before the Limiter exists, so a bad option never leaves a store open.
    this.key = checkFunction(options.key, 'key', where);
    this.skip = checkFunction(options.skip, 'skip', where);
    const cost = options.cost ?? 1;
    if (typeof cost === 'function') {
      this.costFunction = cost;
      this.costValue = 1;
    } else if (typeof cost === 'number' && Number.isInteger(cost) && cost >= 0) {
      this.costValue = cost;
    } else {
      throw invalid(
        where,
        `cost ${show(cost)} must be a whole number >= 0 or a function of the request, like cost: 1`,
      );
    }
    this.consumeOptions = Object.freeze({ cost: this.costValue });
    this.statusCode = options.statusCode ?? 429;
    if (!Number.isInteger(this.statusCode) || this.statusCode < 400 || this.statusCode > 599) {
      throw invalid(
        where,
        `statusCode ${show(options.statusCode)} must be an HTTP error status from 400 to 599, like 429`,
      );
    }
    this.onLimit = checkFunction(options.onLimit, 'onLimit', where) as OnLimit | undefined;
    if (this.onLimit !== undefined && options.message !== undefined) {
      throw invalid(where, 'give either message or onLimit, not both: onLimit answers the request itself');
    }
    this.messageAnswer = messageAnswer(options.message, this.statusCode, where);
    addEvents(limiterOptions, options.events, where);
    this.skipSuccessful = checkBoolean(options.skipSuccessfulRequests, 'skipSuccessfulRequests', where);
    this.skipFailed = checkBoolean(options.skipFailedRequests, 'skipFailedRequests', where);
    this.refunds = this.skipSuccessful || this.skipFailed;
    this.ipv6Subnet = checkIpv6Subnet(options.ipv6Subnet);
    const standards = checkHeadersOption(options.headers);
    this.limiter = new Limiter(limiterOptions as unknown as LimiterOptions);
    this.headers = new HeaderWriter(standards, this.limiter.policies);
  }

  /**
   * Count one request: skip? -> key -> cost -> consume, then set the RateLimit headers (and
   * Retry-After on a denial) on `target`. Rejects only for programming errors (a key or cost function
   * that throws or returns something invalid); a failing store gives a Decision with `degraded` set.
   */
  async check(req: Req, ip: string | undefined, target: HeaderTarget): Promise<CheckResult> {
    return this.begin(req, ip, target);
  }

  /**
   * `check`, answered at once when every step answers at once: skip, key and cost functions that
   * return plain values (not promises) and a memory store. Otherwise a promise, which takes over
   * from the first step that returned one (no function is called twice). Throws, where `check`
   * rejects, for a function that throws or returns something invalid. Adapters call this, so that
   * the usual request is decided without an async step.
   */
  begin(req: Req, ip: string | undefined, target: HeaderTarget): CheckResult | Promise<CheckResult> {
    if (this.skip !== undefined) {
      const skip = this.skip(req);
      if (isThenable(skip)) {
        return Promise.resolve(skip).then((value) =>
          value === true ? 'skip' : this.keyStep(req, ip, target),
        );
      }
      if (skip === true) return 'skip';
    }
    return this.keyStep(req, ip, target);
  }

  private keyStep(
    req: Req,
    ip: string | undefined,
    target: HeaderTarget,
  ): CheckResult | Promise<CheckResult> {
    if (this.key === undefined) {
      const key = ipKey(ip, this.ipv6Subnet);
      return key === undefined ? this.noClient() : this.costStep(req, key, target);
    }
    const key = this.key(req);
    if (isThenable(key))
      return Promise.resolve(key).then((value) => this.costStep(req, validKey(value), target));
    return this.costStep(req, validKey(key), target);
  }

  private costStep(req: Req, key: string, target: HeaderTarget): CheckResult | Promise<CheckResult> {
    if (this.costFunction === undefined) return this.consumeStep(key, this.costValue, target);
    const cost = this.costFunction(req);
    if (isThenable(cost)) return Promise.resolve(cost).then((value) => this.consumeStep(key, value, target));
    return this.consumeStep(key, cost, target);
  }

  private consumeStep(key: string, cost: number, target: HeaderTarget): CheckResult | Promise<CheckResult> {
    // Both throw for an invalid cost (a cost function's answer): the adapter's error path.
    const decision = this.limiter.consumeNow(key, cost);
    if (decision !== undefined) return this.admission(decision, key, cost, target);
    const options = cost === this.costValue ? this.consumeOptions : { cost };
    return this.limiter.consume(key, options).then((later) => this.admission(later, key, cost, target));
  }

  private admission(decision: Decision, key: string, cost: number, target: HeaderTarget): Admission {
    this.writeHeaders(decision, target);
    return { decision, key, cost };
  }

  /** The RateLimit headers of `decision`, and Retry-After on a denial. */
  private writeHeaders(decision: Decision, target: HeaderTarget): void {
    this.headers.write(decision, target);
    if (!decision.allowed) target.setHeader('Retry-After', `${retryAfterSeconds(decision)}`);
  }

  /**
   * The answer to a denied Decision when no onLimit is set: 503 when the store failed and the limiter
   * fails closed, else `statusCode` with `message` or the RFC 9457 quota-exceeded problem.
   */
  answer(decision: Decision): Answer {
    if (decision.degraded === 'closed') return STORE_FAILED;
    if (this.messageAnswer !== undefined) return this.messageAnswer;
    return this.problem(decision);
  }

  /** True when the answer for this denied Decision is the user's onLimit (not the 503 of a failed store). */
  usesOnLimit(decision: Decision): boolean {
    return this.onLimit !== undefined && decision.degraded !== 'closed';
  }

  /** The answer when no client address is known (see CheckResult 'no-client'). */
  get unknownClient(): Answer {
    return UNKNOWN_CLIENT;
  }

  /**
   * After the response: give the cost back if skipSuccessfulRequests / skipFailedRequests say so.
   * `completed` is false when the client went away before the response was finished (a failure).
   * Never rejects; a refund that cannot be made leaves the count as it was.
   */
  settle(admission: Admission, status: number, completed: boolean): void {
    const { decision, cost } = admission;
    if (!decision.allowed || cost === 0 || decision.degraded === 'open' || decision.degraded === 'closed')
      return;
    const succeeded = completed && status < 400;
    if (succeeded ? !this.skipSuccessful : !this.skipFailed) return;
    try {
      this.limiter.refund(admission.key, { cost }).catch(noop);
    } catch {
      // The limiter was closed meanwhile: nothing to give back to.
    }
  }

  private noClient(): 'no-client' {
    if (!warnedUnknownClient) {
      warnedUnknownClient = true;
      process.emitWarning(
        'floodgate: a request had no client IP address, so it was answered with 500 instead of being counted in a shared bucket. ' +
          "The socket may have closed early; if the server listens on a Unix socket or behind a proxy, enable the framework's trust-proxy setting or give a key function.",
        { code: 'FLOODGATE_NO_CLIENT_IP' },
      );
    }
    return 'no-client';
  }

  private problem(decision: Decision): Answer {
    let names = decision.policy;
    if (decision.policies.length > 1) {
      names = '';
      for (const p of decision.policies) if (!p.allowed) names += names === '' ? p.policy : `\n${p.policy}`;
      if (names === '') names = decision.policy;
    }
    const cacheKey = decision.exceedsLimit ? `!${names}` : names;
    let answer = this.problems.get(cacheKey);
    if (answer === undefined) {
      answer = Object.freeze({
        status: this.statusCode,
        contentType: PROBLEM_JSON,
        body: JSON.stringify({
          type: QUOTA_EXCEEDED_TYPE,
          title: QUOTA_EXCEEDED_TITLE,
          status: this.statusCode,
          detail: decision.exceedsLimit
            ? 'This request costs more than the limit allows in one window, so it cannot be admitted as it is.'
            : 'Too many requests; retry after the number of seconds in Retry-After.',
          'violated-policies': names.split('\n'),
        }),
      });
      this.problems.set(cacheKey, answer);
    }
    return answer;
  }
}

/** A promise, or any object with a `then` method, as `await` would treat it. */
function isThenable<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

function validKey(key: unknown): string {
  if (typeof key === 'string' && key.length > 0) return key;
  throw new FloodgateError(
    'FLOODGATE_INVALID_KEY',
    `the key function returned ${show(key)}; it must return a non-empty string, like \`user:\${id}\``,
  );
}

function invalid(where: string, message: string): FloodgateError {
  return new FloodgateError('FLOODGATE_INVALID_OPTION', `${where}: ${message}`);
}

function checkFunction<F>(value: F | undefined, name: string, where: string): F | undefined {
  if (value === undefined || typeof value === 'function') return value;
  throw invalid(where, `${name} ${show(value)} must be a function of the request`);
}

/** Put the hooks of the `events` option among the Limiter's options (each hook given once). */
function addEvents(limiterOptions: Record<string, unknown>, events: unknown, where: string): void {
  if (events === undefined) return;
  if (events === null || typeof events !== 'object' || Array.isArray(events)) {
    throw invalid(
      where,
      `events ${show(events)} must be an object of event hooks, like events: { onLimit: (event) => log(event) }`,
    );
  }
  assertKnownOptions(events, HOOK_NAMES, `${where} events`);
  for (const name of HOOK_NAMES) {
    const hook = (events as LimiterHooks)[name];
    if (hook === undefined) continue;
    if (limiterOptions[name] !== undefined) {
      throw invalid(where, `${name} is given both at the top level and in events; give it once`);
    }
    limiterOptions[name] = hook;
  }
}

function checkBoolean(value: unknown, name: string, where: string): boolean {
  if (value === undefined) return false;
  if (typeof value === 'boolean') return value;
  throw invalid(where, `${name} ${show(value)} must be true or false`);
}

function messageAnswer(message: unknown, status: number, where: string): Answer | undefined {
  if (message === undefined) return undefined;
  if (typeof message === 'string') {
    return Object.freeze({ status, contentType: 'text/plain; charset=utf-8', body: message });
  }
  if (message !== null && typeof message === 'object' && !Array.isArray(message)) {
    let body: string;
    try {
      body = JSON.stringify(message);
    } catch (error) {
      throw new FloodgateError(
        'FLOODGATE_INVALID_OPTION',
        `${where}: message cannot be sent as JSON (${(error as Error).message}); give text or a plain object`,
      );
    }
    return Object.freeze({ status, contentType: 'application/json; charset=utf-8', body });
  }
  throw invalid(
    where,
    `message ${show(message)} must be text or a plain object (sent as JSON); use onLimit for anything else`,
  );
}
