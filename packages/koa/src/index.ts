/**
 * @floodgate/koa: rate limiting middleware for Koa 2 and 3.
 *
 *   app.use(rateLimit({ limit: '100/min' }));                      // every request
 *   router.post('/login', rateLimit({ limit: '5/15m' }), login);   // one route (@koa/router)
 *   class Auth { @RateLimit({ limit: '5/15m' }) async login(ctx, next) {} }
 *
 * The adapter is thin: it hands the context and `ctx.ip` (which honours `app.proxy`) to the core
 * RequestLimiter and sends the answer the core builds. See docs/adapters.md.
 */
import type { Admission, Answer, CheckResult, Decision, Limiter, RateLimitOptions } from '@floodgate/core';
import { RequestLimiter, turnEnd } from '@floodgate/core';
import type { Context, Middleware, Next } from 'koa';

declare module 'koa' {
  interface DefaultState {
    /** The Decision of the last floodgate limiter this request passed through. */
    rateLimit?: Decision;
  }
}

/** Answers a limited request instead of the default 429; RateLimit and Retry-After headers are already set. */
export type LimitHandler = (ctx: Context, decision: Decision) => unknown;

export type KoaRateLimitOptions = RateLimitOptions<Context, LimitHandler>;

/** The middleware, with the Limiter behind it (for `limiter.reset(key)` or `limiter.close()`). */
export interface RateLimitMiddleware extends Middleware {
  readonly limiter: Limiter;
}

type Plan = RequestLimiter<Context, LimitHandler>;

/** Middleware limiting every request it sees; use it app-wide with app.use() or on one route. */
export function rateLimit(options: KoaRateLimitOptions): RateLimitMiddleware {
  const plan: Plan = new RequestLimiter(options, 'rateLimit()');
  const middleware = (ctx: Context, next: Next): Promise<unknown> => {
    // With a memory store (and skip/key/cost functions that answer at once) the Decision is there at
    // once: a denial is answered right here, with no promise of our own to wait for first. A throw (a
    // key or cost function that threw) reaches Koa's error handling as a rejection, through compose.
    const result = plan.begin(ctx, ctx.ip, ctx.res);
    if (result instanceof Promise) return run(plan, ctx, next, result);
    const outcome = decide(plan, ctx, result);
    // Admitted: on with the request at the end of the loop turn, with the others (see atTurnEnd).
    if (outcome === undefined || outcome instanceof Promise) return proceed(plan, ctx, next, outcome);
    return proceedAtTurnEnd(plan, ctx, next, outcome);
  };
  return Object.assign(middleware, { limiter: plan.limiter });
}

/**
 * Method decorator (TC39 standard decorators, TypeScript 5) for class handlers `(ctx, next)`:
 * the method runs only when the request is admitted.
 */
export function RateLimit(options: KoaRateLimitOptions) {
  const plan: Plan = new RequestLimiter(options, '@RateLimit()');
  return function decorate<This, Method extends (this: This, ctx: Context, next: Next) => unknown>(
    method: Method,
    context: ClassMethodDecoratorContext<This, Method>,
  ): Method {
    if (context.kind !== 'method') {
      throw new TypeError(`@RateLimit() decorates methods; ${String(context.name)} is a ${context.kind}`);
    }
    async function limited(this: This, ctx: Context, next: Next): Promise<unknown> {
      // begin(): with a memory store and plain key/cost functions the check needs no await.
      const checked = plan.begin(ctx, ctx.ip, ctx.res);
      let admission = decide(plan, ctx, checked instanceof Promise ? await checked : checked);
      if (admission instanceof Promise) admission = await admission;
      if (admission === undefined) return undefined;
      if (admission === 'skip' || !plan.refunds) return method.call(this, ctx, next);
      return settleAfter(plan, admission, ctx, method.call(this, ctx, next));
    }
    return limited as unknown as Method;
  };
}

/** One request through the middleware: a single async step (the check), the rest synchronous. */
async function run(plan: Plan, ctx: Context, next: Next, check: Promise<CheckResult>): Promise<unknown> {
  // Errors (a key or cost function that threw) propagate to Koa's own error handling.
  return proceed(plan, ctx, next, decide(plan, ctx, await check));
}

/** proceed(), at the end of the event-loop turn (see atTurnEnd in core). */
async function proceedAtTurnEnd(plan: Plan, ctx: Context, next: Next, outcome: Outcome): Promise<unknown> {
  await turnEnd();
  return proceed(plan, ctx, next, outcome);
}

/** Downstream when the request may go on (settling refunds after it), nothing when it was answered. */
async function proceed(
  plan: Plan,
  ctx: Context,
  next: Next,
  outcome: Outcome | Promise<undefined>,
): Promise<unknown> {
  const admission = outcome instanceof Promise ? await outcome : outcome;
  if (admission === undefined) return undefined;
  if (admission === 'skip' || !plan.refunds) return next();
  return settleAfter(plan, admission, ctx, next());
}

type Outcome = Admission | 'skip' | undefined;

/**
 * After the check: the Admission (or 'skip') when the request may go on, undefined when it has been
 * answered here, a promise of undefined while the user's onLimit answers it.
 */
function decide(plan: Plan, ctx: Context, result: CheckResult): Outcome | Promise<undefined> {
  if (result === 'skip') return result;
  if (result === 'no-client') {
    send(ctx, plan.unknownClient);
    return undefined;
  }
  const decision = result.decision;
  ctx.state.rateLimit = decision;
  if (decision.allowed) return result;
  if (plan.usesOnLimit(decision)) return answerByUser(plan, ctx, decision);
  send(ctx, plan.answer(decision));
  return undefined;
}

async function answerByUser(plan: Plan, ctx: Context, decision: Decision): Promise<undefined> {
  await (plan.onLimit as LimitHandler)(ctx, decision);
  // An onLimit that set nothing would end as Koa's 404: answer as if there were none.
  if (ctx.body == null && ctx.status === 404) send(ctx, plan.answer(decision));
  return undefined;
}

/** skipSuccessfulRequests / skipFailedRequests: once downstream is done, its status decides the refund. */
async function settleAfter(
  plan: Plan,
  admission: Admission,
  ctx: Context,
  downstream: unknown,
): Promise<unknown> {
  try {
    const value = await downstream;
    plan.settle(admission, ctx.status, true);
    return value;
  } catch (error) {
    const status = (error as { status?: unknown; statusCode?: unknown } | null)?.status;
    plan.settle(admission, typeof status === 'number' ? status : 500, true);
    throw error;
  }
}

function send(ctx: Context, answer: Answer): void {
  ctx.status = answer.status;
  ctx.set('Content-Type', answer.contentType);
  ctx.body = answer.body;
}
