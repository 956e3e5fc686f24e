/**
 * @floodgate/fastify: rate limiting plugin for Fastify 5 (wrapped with fastify-plugin).
 *
 *   await app.register(floodgate, { limit: '100/min' });                // every route registered after it
 *   app.get('/a', { config: { rateLimit: { limit: '5/min' } } }, h);    // this route: its own limit
 *   app.get('/b', { config: { rateLimit: false } }, h);                 // this route: no limit
 *   app.get('/c', { preHandler: app.rateLimit({ limit: '1/s' }) }, h);  // a hook for one route
 *
 * Hooks are attached once per route when it is registered (onRoute), never per request. The adapter
 * is thin: it hands the request and `request.ip` (which honours `trustProxy`) to the core
 * RequestLimiter and sends the answer the core builds. See docs/adapters.md.
 */
import {
  type Admission,
  type Answer,
  assertAdapterOptions,
  atTurnEnd,
  type CheckResult,
  createStore,
  type Decision,
  FloodgateError,
  type HeaderTarget,
  type Limiter,
  MemoryStore,
  type RateLimitOptions,
  RequestLimiter,
  type Store,
} from '@floodgate/core';
import type {
  FastifyPluginAsync,
  FastifyReply,
  FastifyRequest,
  onResponseAsyncHookHandler,
  RouteOptions,
} from 'fastify';
import fp from 'fastify-plugin';

/** Answers a limited request instead of the default 429; RateLimit and Retry-After headers are already set. */
export type LimitHandler = (request: FastifyRequest, reply: FastifyReply, decision: Decision) => unknown;

/** Where in the request lifecycle the limit is checked. 'onRequest' (default) runs before the body is parsed. */
export type LimitHook = 'onRequest' | 'preValidation' | 'preHandler';

export type FastifyRateLimitOptions = RateLimitOptions<FastifyRequest, LimitHandler>;

/** Options of one route (`config.rateLimit`) or of `app.rateLimit()`: the plugin's options fill the gaps. */
export type RouteRateLimitOptions = Partial<FastifyRateLimitOptions> & {
  /** Lifecycle hook of this route's check. @default the plugin's hook, else 'onRequest' */
  hook?: LimitHook;
};

export interface FloodgatePluginOptions extends Partial<FastifyRateLimitOptions> {
  /** true: every route gets the plugin's limit unless it sets config.rateLimit; false: only routes that ask. @default true */
  global?: boolean;
  /** Lifecycle hook the checks run in; use 'preHandler' when a key or cost function reads the parsed body. @default 'onRequest' */
  hook?: LimitHook;
}

/** A preHandler hook for one route, with the Limiter behind it. */
export interface RateLimitHook {
  /** A callback-style Fastify hook: it calls `done` to go on, or sends the reply itself. */
  (request: FastifyRequest, reply: FastifyReply, done: (error?: Error) => void): void;
  readonly limiter: Limiter;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** This route's own limit (merged over the plugin's options), or false for none. */
    rateLimit?: RouteRateLimitOptions | false;
  }
  interface FastifyRequest {
    /** The Decision of the last floodgate limiter this request passed through. */
    rateLimit?: Decision;
  }
  interface FastifyInstance {
    /** A preHandler hook limiting one route, with the plugin's options as defaults. */
    rateLimit(options?: RouteRateLimitOptions): RateLimitHook;
  }
}

type Plan = RequestLimiter<FastifyRequest, LimitHandler>;

const PLUGIN_OPTION_NAMES = ['global', 'hook'] as const;
const HOOKS: readonly LimitHook[] = ['onRequest', 'preValidation', 'preHandler'];
const DEFAULT_PREFIX = 'floodgate:';
/** Marks hooks made by app.rateLimit(), so the global limit leaves their routes alone. */
const ROUTE_HOOK = Symbol('floodgate.routeHook');
/** Admissions of a request waiting for skipSuccessfulRequests / skipFailedRequests. */
const PENDING = Symbol('floodgate.pending');
type Pending = FastifyRequest & { [PENDING]?: Array<Plan | Admission> };

const floodgatePlugin: FastifyPluginAsync<FloodgatePluginOptions> = async (fastify, options) => {
  assertAdapterOptions(options, 'the floodgate plugin', PLUGIN_OPTION_NAMES);
  const { global = true, hook = 'onRequest', ...base } = options;
  if (typeof global !== 'boolean') {
    throw invalid(`global ${JSON.stringify(global)} must be true or false`);
  }
  const defaultHook = checkHook(hook);
  if (global && base.limit === undefined) {
    throw invalid(
      'the plugin limits every route (global: true) and needs a limit, like { limit: "100/min" }; or set global: false and give routes config.rateLimit',
    );
  }

  // One store (and fallback) for every limiter of this plugin: a URI opens one connection, not one per route.
  const owned: Store[] = [];
  const open = (value: FastifyRateLimitOptions['store']): Store | undefined => {
    if (value === undefined || (typeof value === 'object' && !Array.isArray(value)))
      return value as Store | undefined;
    const store = typeof value === 'string' ? createStore(value) : createStore(value as readonly string[]);
    owned.push(store);
    return store;
  };
  const plans: Plan[] = [];
  const closeAll = async () => {
    await Promise.allSettled(plans.map((plan) => plan.limiter.close()));
    await Promise.allSettled(owned.map((store) => store.close()));
  };
  let shared: Partial<FastifyRateLimitOptions>;
  let globalPlan: Plan | undefined;
  try {
    const envStore = process.env.FLOODGATE_STORE;
    const store = open(base.store ?? envStore) ?? new MemoryStore();
    if (base.store === undefined && envStore === undefined) owned.push(store);
    // `name` identifies one limiter's buckets, so routes do not inherit it (they would share the plugin's counts).
    const { name: _name, ...inherited } = base;
    shared = { ...inherited, store, fallback: open(base.fallback) };
    if (global) {
      const options = { ...shared, name: base.name } as FastifyRateLimitOptions;
      globalPlan = track(new RequestLimiter(options, 'the floodgate plugin'));
    }
  } catch (error) {
    await closeAll();
    throw error;
  }

  function track(plan: Plan): Plan {
    plans.push(plan);
    return plan;
  }

  /** The plugin's options under a route's, built once when the route is registered. */
  function routePlan(routeOptions: RouteRateLimitOptions, where: string, scope: string | undefined): Plan {
    assertAdapterOptions(routeOptions, where, ['hook']);
    const { hook: _hook, ...own } = routeOptions;
    const merged = overPlugin(shared, own);
    if (merged.limit === undefined) {
      throw invalid(`${where} needs a limit, like { limit: "10/min" } (the plugin has none to inherit)`);
    }
    // A route's own limit counts on its own: its buckets carry the route unless it was given a name.
    if (scope !== undefined && merged.name === undefined) {
      const store = merged.store as Store | undefined;
      merged.prefix = `${merged.prefix ?? store?.defaults?.prefix ?? DEFAULT_PREFIX}${scope}:`;
    }
    return track(new RequestLimiter(merged, where));
  }

  if (!fastify.hasRequestDecorator('rateLimit')) fastify.decorateRequest('rateLimit', undefined);
  if (!fastify.hasDecorator('rateLimit')) {
    fastify.decorate('rateLimit', (routeOptions: RouteRateLimitOptions = {}): RateLimitHook => {
      const plan = routePlan(routeOptions, 'app.rateLimit()', undefined);
      const check = limitHook(plan);
      return Object.assign(check, { limiter: plan.limiter, [ROUTE_HOOK]: true });
    });
  }

  const byRoute = new Map<string, { config: object; plan: Plan }>();
  fastify.addHook('onRoute', (route) => {
    const config = route.config?.rateLimit;
    if (config === false) return;
    let plan: Plan;
    let at = defaultHook;
    if (config === undefined || config === null) {
      if (globalPlan === undefined || hasRouteHook(route)) return;
      plan = globalPlan;
    } else {
      if (typeof config !== 'object') {
        throw invalid(`config.rateLimit of ${describe(route)} must be an options object or false`);
      }
      at = config.hook === undefined ? defaultHook : checkHook(config.hook);
      const scope = describe(route);
      // Fastify registers a HEAD twin of every GET route with the same config: one limiter serves both.
      const twin = byRoute.get(scope);
      if (twin !== undefined && twin.config === config) {
        plan = twin.plan;
      } else {
        plan = routePlan(config, `config.rateLimit of ${scope}`, scope);
        byRoute.set(scope, { config, plan });
      }
    }
    prepend(route, at, limitHook(plan));
    if (plan.refunds && !hasHook(route.onResponse, settleHook)) prepend(route, 'onResponse', settleHook);
  });

  fastify.addHook('onClose', closeAll);
};

/** Event hooks a Limiter also takes at the top level (the top-level onLimit is the adapter's answer). */
const TOP_LEVEL_EVENTS = ['onStoreError', 'onDegraded', 'onRecovered'] as const;

/**
 * A route's options over the plugin's, field by field. `events` is merged per hook name: a shallow
 * merge let a route's `events: { onLimit }` drop the plugin's `events.onStoreError`. A hook the route
 * names (in `events`, or at the top level) replaces the plugin's hook of that name wherever the plugin
 * gave it, so the two never clash as "given both at the top level and in events". Likewise a route's
 * `message` or `onLimit` replaces the plugin's other one. Values that are not objects are left to the
 * route's RequestLimiter to reject.
 */
function overPlugin(
  plugin: Partial<FastifyRateLimitOptions>,
  route: Partial<FastifyRateLimitOptions>,
): FastifyRateLimitOptions {
  const merged = { ...plugin, ...route } as FastifyRateLimitOptions;
  // message and onLimit exclude each other (core rejects both): the route says how its 429 is answered,
  // so its choice drops the plugin's other one instead of failing the route's registration.
  if (route.onLimit !== undefined && route.message === undefined) delete merged.message;
  if (route.message !== undefined && route.onLimit === undefined) delete merged.onLimit;
  const own = route.events === undefined ? {} : route.events;
  if (!isRecord(own)) return merged;
  for (const name of TOP_LEVEL_EVENTS) {
    if (own[name] !== undefined && route[name] === undefined) delete merged[name];
  }
  if (isRecord(plugin.events)) {
    const events: Record<string, unknown> = { ...plugin.events, ...own };
    for (const name of TOP_LEVEL_EVENTS) if (route[name] !== undefined) delete events[name];
    merged.events = events;
  }
  return merged;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * The hook checking one plan; made once per route at registration. A callback hook, so that with a
 * memory store (and skip/key/cost functions that answer at once) the Decision is there at once and
 * the request goes on without a promise, at the end of the loop turn with the others admitted in it
 * (see atTurnEnd); otherwise, or when the user's onLimit answers, it waits.
 */
function limitHook(plan: Plan) {
  return function floodgateLimit(
    request: FastifyRequest,
    reply: FastifyReply,
    done: (error?: Error) => void,
  ): void {
    let now: CheckResult | Promise<CheckResult>;
    try {
      now = plan.begin(request, request.ip, new ReplyHeaders(reply));
    } catch (error) {
      // A key or cost function that threw, or returned something invalid.
      done(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    if (!(now instanceof Promise) && !answersItself(plan, now)) {
      // Admitted: on with the request at the end of the loop turn, with the others (see atTurnEnd).
      if (conclude(plan, request, reply, now) === undefined) atTurnEnd(done);
      return;
    }
    Promise.resolve(now)
      .then(async (result) => {
        if (answersItself(plan, result)) {
          request.rateLimit = result.decision;
          await (plan.onLimit as LimitHandler)(request, reply, result.decision);
          // An onLimit that forgot to answer must not leave the request hanging.
          if (!reply.sent) send(reply, plan.answer(result.decision));
          return;
        }
        if (conclude(plan, request, reply, result) === undefined) done();
      })
      .catch((error: unknown) => done(error instanceof Error ? error : new Error(String(error))));
  };
}

/**
 * Where the RateLimit headers go: Fastify's own header list (`reply.header`), which Fastify hands to
 * Node in one `writeHead` call. Setting them on `reply.raw` instead made Node keep a second header
 * table and copy Fastify's headers into it one by one: measured here, ~1 µs of CPU per request, most
 * of what the plugin added to a bare Fastify server.
 */
class ReplyHeaders implements HeaderTarget {
  constructor(private readonly reply: FastifyReply) {}
  setHeader(name: string, value: string): void {
    this.reply.header(name, value);
  }
}

/** A denial the user's onLimit answers. */
function answersItself(plan: Plan, result: CheckResult): result is Admission {
  return (
    result !== 'skip' &&
    result !== 'no-client' &&
    !result.decision.allowed &&
    plan.usesOnLimit(result.decision)
  );
}

/** Act on a check's result, except a user onLimit: undefined to go on with the request, or the reply sent. */
function conclude(
  plan: Plan,
  request: FastifyRequest,
  reply: FastifyReply,
  result: CheckResult,
): FastifyReply | undefined {
  if (result === 'skip') return undefined;
  if (result === 'no-client') return send(reply, plan.unknownClient);
  const decision = result.decision;
  request.rateLimit = decision;
  if (decision.allowed) {
    if (plan.refunds) {
      const pending = (request as Pending)[PENDING];
      if (pending === undefined) (request as Pending)[PENDING] = [plan, result];
      else pending.push(plan, result);
    }
    return undefined;
  }
  return send(reply, plan.answer(decision));
}

/** onResponse: give back what skipSuccessfulRequests / skipFailedRequests say to. */
const settleHook: onResponseAsyncHookHandler = async function floodgateSettle(request, reply) {
  const pending = (request as Pending)[PENDING];
  if (pending === undefined) return;
  for (let i = 0; i < pending.length; i += 2) {
    (pending[i] as Plan).settle(pending[i + 1] as Admission, reply.statusCode, true);
  }
};

function send(reply: FastifyReply, answer: Answer): FastifyReply {
  // A Buffer, so Fastify sends the content type as given (it appends a charset to strings).
  return reply.code(answer.status).header('content-type', answer.contentType).send(Buffer.from(answer.body));
}

function prepend(route: RouteOptions, name: LimitHook | 'onResponse', hook: unknown): void {
  const existing = route[name] as unknown;
  const list =
    existing === undefined || existing === null ? [] : Array.isArray(existing) ? existing : [existing];
  (route as unknown as Record<string, unknown>)[name] = [hook, ...list];
}

function hasHook(value: unknown, hook: unknown): boolean {
  return value === hook || (Array.isArray(value) && value.includes(hook));
}

/** True when the route has its own app.rateLimit() hook: the global limit then stays out of its way. */
function hasRouteHook(route: RouteOptions): boolean {
  for (const name of HOOKS) {
    const value = route[name] as unknown;
    const list = Array.isArray(value) ? value : [value];
    if (list.some((fn) => typeof fn === 'function' && ROUTE_HOOK in fn)) return true;
  }
  return false;
}

/** "GET /users/:id"; HEAD shares GET's bucket (Fastify adds HEAD routes for GET by itself). */
function describe(route: RouteOptions): string {
  const methods = (Array.isArray(route.method) ? route.method : [route.method]).map((m) =>
    m === 'HEAD' ? 'GET' : m,
  );
  return `${[...new Set(methods)].join(',')} ${route.url}`;
}

function checkHook(value: unknown): LimitHook {
  if (typeof value === 'string' && (HOOKS as readonly string[]).includes(value)) return value as LimitHook;
  throw invalid(`hook ${JSON.stringify(value)} must be one of ${HOOKS.map((h) => `"${h}"`).join(', ')}`);
}

function invalid(message: string): FloodgateError {
  return new FloodgateError('FLOODGATE_INVALID_OPTION', `@floodgate/fastify: ${message}`);
}

/** The plugin. `app.register(floodgate, { limit: '100/min' })`. */
const floodgate = fp(floodgatePlugin, { fastify: '5.x', name: '@floodgate/fastify' });

export default floodgate;
export { floodgate };
