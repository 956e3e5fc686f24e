/**
 * @floodgate/express: rate limiting middleware for Express 4 and 5.
 *
 *   app.use(rateLimit({ limit: '100/min' }));                        // every route
 *   app.post('/login', rateLimit({ limit: '5/15m' }), login);        // one route
 *   class Auth { @RateLimit({ limit: '5/15m' }) login(req, res, next) {} }
 *
 * The adapter is thin: it hands the request and `req.ip` (which honours Express's `trust proxy`) to
 * the core RequestLimiter, and sends the answer the core builds. See docs/adapters.md.
 */
import type { Admission, Answer, CheckResult, Decision, Limiter, RateLimitOptions } from '@floodgate/core';
import { atTurnEnd, RequestLimiter } from '@floodgate/core';
import type { NextFunction, Request, RequestHandler, Response } from 'express';

declare global {
  namespace Express {
    interface Request {
      /** The Decision of the last floodgate limiter this request passed through. */
      rateLimit?: Decision;
    }
  }
}

/** Answers a limited request instead of the default 429; RateLimit and Retry-After headers are already set. */
export type LimitHandler = (req: Request, res: Response, decision: Decision) => unknown;

export type ExpressRateLimitOptions = RateLimitOptions<Request, LimitHandler>;

/** The middleware, with the Limiter behind it (for `limiter.reset(key)` or `limiter.close()`). */
export interface RateLimitMiddleware extends RequestHandler {
  readonly limiter: Limiter;
}

type Plan = RequestLimiter<Request, LimitHandler>;

/** Middleware limiting every request it sees; use it app-wide with app.use() or on one route. */
export function rateLimit(options: ExpressRateLimitOptions): RateLimitMiddleware {
  const plan: Plan = new RequestLimiter(options, 'rateLimit()');
  const middleware = (req: Request, res: Response, next: NextFunction): void => {
    // With a memory store (and skip/key/cost functions that answer at once) the Decision is there
    // at once: no promise.
    let result: CheckResult | Promise<CheckResult>;
    try {
      result = plan.begin(req, req.ip, res);
    } catch (error) {
      // A key or cost function that threw, or returned something invalid: the app's error handler decides.
      next(error);
      return;
    }
    if (result instanceof Promise) {
      void run(plan, req, res, next, result);
      return;
    }
    const proceed = decide(plan, req, res, result);
    // Admitted: on with the request at the end of the loop turn, with the others (see atTurnEnd).
    if (proceed === true) atTurnEnd(next);
    else if (proceed !== false) proceed.then((go) => go && next(), next);
  };
  return Object.assign(middleware, { limiter: plan.limiter });
}

/**
 * Method decorator (TC39 standard decorators, TypeScript 5) for class handlers `(req, res, next)`:
 * the method runs only when the request is admitted.
 */
export function RateLimit(options: ExpressRateLimitOptions) {
  const plan: Plan = new RequestLimiter(options, '@RateLimit()');
  return function decorate<
    This,
    Method extends (this: This, req: Request, res: Response, next: NextFunction) => unknown,
  >(method: Method, context: ClassMethodDecoratorContext<This, Method>): Method {
    if (context.kind !== 'method') {
      throw new TypeError(`@RateLimit() decorates methods; ${String(context.name)} is a ${context.kind}`);
    }
    async function limited(this: This, req: Request, res: Response, next: NextFunction): Promise<unknown> {
      let proceed: boolean | Promise<boolean>;
      try {
        // begin(): with a memory store and plain key/cost functions the check needs no await.
        const checked = plan.begin(req, req.ip, res);
        proceed = decide(plan, req, res, checked instanceof Promise ? await checked : checked);
        if (proceed !== true && proceed !== false) proceed = await proceed;
      } catch (error) {
        if (typeof next === 'function') return next(error);
        throw error;
      }
      if (!proceed) return undefined;
      try {
        return await method.call(this, req, res, next);
      } catch (error) {
        // Express 4 does not catch a rejected handler: hand the error over instead of leaving it unhandled.
        if (typeof next === 'function') return next(error);
        throw error;
      }
    }
    return limited as unknown as Method;
  };
}

/** One request through the middleware: a single async step (the check), the rest synchronous. */
async function run(
  plan: Plan,
  req: Request,
  res: Response,
  next: NextFunction,
  check: Promise<CheckResult>,
): Promise<void> {
  let proceed: boolean | Promise<boolean>;
  try {
    proceed = decide(plan, req, res, await check);
    if (proceed !== true && proceed !== false) proceed = await proceed;
  } catch (error) {
    // A key or cost function that threw, or returned something invalid: the app's error handler decides.
    next(error);
    return;
  }
  if (proceed) next();
}

/**
 * After the check: true when the request may go on, false when it has been answered here, a promise of
 * false while the user's onLimit answers it.
 */
function decide(plan: Plan, req: Request, res: Response, result: CheckResult): boolean | Promise<boolean> {
  if (result === 'skip') return true;
  if (result === 'no-client') {
    send(res, plan.unknownClient);
    return false;
  }
  const decision = result.decision;
  req.rateLimit = decision;
  if (decision.allowed) {
    if (plan.refunds) watch(plan, res, result);
    return true;
  }
  if (plan.usesOnLimit(decision)) return answerByUser(plan, req, res, decision);
  send(res, plan.answer(decision));
  return false;
}

async function answerByUser(plan: Plan, req: Request, res: Response, decision: Decision): Promise<false> {
  await (plan.onLimit as LimitHandler)(req, res, decision);
  // An onLimit that forgot to answer must not leave the request hanging.
  if (!res.headersSent) send(res, plan.answer(decision));
  return false;
}

function send(res: Response, answer: Answer): void {
  res.statusCode = answer.status;
  res.setHeader('Content-Type', answer.contentType);
  res.setHeader('Content-Length', Buffer.byteLength(answer.body));
  res.end(answer.body);
}

/** Pending refunds of a response: [plan, admission, plan, admission, ...] (several limiters may watch one). */
const WATCHED = Symbol('floodgate.watched');
type Watched = Response & { [WATCHED]?: Array<Plan | Admission> };

function watch(plan: Plan, res: Watched, admission: Admission): void {
  const pending = res[WATCHED];
  if (pending === undefined) {
    res[WATCHED] = [plan, admission];
    res.once('close', settle);
  } else {
    pending.push(plan, admission);
  }
}

/** 'close' comes after 'finish' for a complete response, and alone when the client went away first. */
function settle(this: Watched): void {
  const pending = this[WATCHED] ?? [];
  for (let i = 0; i < pending.length; i += 2) {
    (pending[i] as Plan).settle(pending[i + 1] as Admission, this.statusCode, this.writableFinished);
  }
}
