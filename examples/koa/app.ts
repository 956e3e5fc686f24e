// Koa with floodgate: an app-wide limit, a stricter login route, and a decorated class handler.
// Run: pnpm build && pnpm --filter @floodgate/example-koa start   (PORT=3000 by default)
import { ipKey } from '@floodgate/core';
import { RateLimit, rateLimit } from '@floodgate/koa';
import Router from '@koa/router';
import Koa, { type Context, type Next } from 'koa';

const app = new Koa();
// Behind a reverse proxy, set app.proxy = true so ctx.ip is the real client.
const router = new Router();

// Every request: 100 a minute per client IP (IPv6 grouped by /56).
app.use(rateLimit({ limit: '100/min' }));

// A tiny JSON body reader, so the login limit can key on the account.
async function readJson(ctx: Context, next: Next): Promise<void> {
  let text = '';
  for await (const chunk of ctx.req) text += chunk;
  try {
    ctx.request.body = text === '' ? {} : JSON.parse(text);
  } catch {
    ctx.throw(400, 'invalid JSON');
  }
  await next();
}
declare module 'koa' {
  interface Request {
    body?: { email?: unknown; password?: unknown };
  }
}

// Login: 5 failed attempts per 15 minutes per account; successful logins are given back.
router.post(
  '/login',
  readJson,
  rateLimit({
    limit: '5/15m',
    name: 'login',
    key: (ctx) => {
      const email = ctx.request.body?.email;
      return typeof email === 'string' ? `email:${email.toLowerCase()}` : `ip:${ipKey(ctx.ip)}`;
    },
    skipSuccessfulRequests: true,
  }),
  (ctx) => {
    if (ctx.request.body?.password === 'correct horse battery staple') {
      ctx.body = { ok: true };
    } else {
      ctx.status = 401;
      ctx.body = { error: 'wrong email or password', attemptsLeft: ctx.state.rateLimit?.remaining };
    }
  },
);

// A class-based handler: a full report costs 5 units of a 10-a-minute budget.
class Reports {
  @RateLimit({ limit: '10/min', name: 'reports', cost: (ctx) => (ctx.query.full === '1' ? 5 : 1) })
  async list(ctx: Context, _next: Next): Promise<void> {
    ctx.body = { full: ctx.query.full === '1', remaining: ctx.state.rateLimit?.remaining };
  }
}
const reports = new Reports();
router.get('/reports', (ctx, next) => reports.list(ctx, next));

router.get('/', (ctx) => {
  ctx.body = { hello: 'world', rateLimit: ctx.state.rateLimit };
});

app.use(router.routes());
app.use(router.allowedMethods());

const port = Number(process.env.PORT ?? 3000);
app.listen(port, () => {
  console.log(`koa example on http://localhost:${port}`);
  console.log(`try: curl -i http://localhost:${port}/`);
});
