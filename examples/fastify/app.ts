// Fastify with floodgate: an app-wide limit, a stricter login route, and a per-route hook.
// Run: pnpm build && pnpm --filter @floodgate/example-fastify start   (PORT=3000 by default)
import floodgate from '@floodgate/fastify';
import Fastify from 'fastify';

// Behind a reverse proxy, set trustProxy so request.ip is the real client, e.g. Fastify({ trustProxy: '127.0.0.1' }).
const app = Fastify({ logger: false });

// Every route registered after this: 100 requests a minute per client IP (IPv6 grouped by /56).
await app.register(floodgate, { limit: '100/min' });

// Login: its own limit (replacing the app-wide one on this route), keyed by the account in the body,
// so it runs in preHandler, after the body is parsed. Successful logins are given back.
app.post<{ Body: { email?: string; password?: string } }>(
  '/login',
  {
    config: {
      rateLimit: {
        limit: '5/15m',
        hook: 'preHandler',
        key: (request) => {
          const email = (request.body as { email?: unknown } | undefined)?.email;
          return typeof email === 'string' ? `email:${email.toLowerCase()}` : `ip:${request.ip}`;
        },
        skipSuccessfulRequests: true,
      },
    },
  },
  async (request, reply) => {
    if (request.body?.password === 'correct horse battery staple') return { ok: true };
    return reply
      .code(401)
      .send({ error: 'wrong email or password', attemptsLeft: request.rateLimit?.remaining });
  },
);

// A hook for one route: a full report costs 5 units of a 10-a-minute budget.
app.get<{ Querystring: { full?: string } }>(
  '/reports',
  {
    preHandler: app.rateLimit({
      limit: '10/min',
      name: 'reports',
      cost: (request) => ((request.query as { full?: string }).full === '1' ? 5 : 1),
    }),
  },
  async (request) => ({ full: request.query.full === '1', remaining: request.rateLimit?.remaining }),
);

// A health check that is never limited.
app.get('/health', { config: { rateLimit: false } }, async () => ({ ok: true }));

app.get('/', async (request) => ({ hello: 'world', rateLimit: request.rateLimit }));

const port = Number(process.env.PORT ?? 3000);
await app.listen({ port });
console.log(`fastify example on http://localhost:${port}`);
console.log(`try: curl -i http://localhost:${port}/`);
