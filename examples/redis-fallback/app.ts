// Limits kept in Redis, shared by every server that uses the same Redis, with a memory fallback so
// that the app keeps limiting (per process) while Redis is down, and a health endpoint that says so.
// Run: pnpm build && pnpm --filter @floodgate/example-redis-fallback start
//   PORT (3000), REDIS_URL (redis://127.0.0.1:6379), SERVERS (1: how many servers share the limit)
import { rateLimit } from '@floodgate/express';
import express from 'express';

const servers = Number(process.env.SERVERS ?? 1);
const limit = rateLimit({
  limit: '5/min',
  name: 'api',
  store: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
  // While Redis fails, each server limits on its own, to its share of the limit.
  fallback: 'memory://',
  fallbackShare: 1 / servers,
  events: {
    onDegraded: ({ mode, error }) =>
      console.log(`limits degraded (${mode})${error instanceof Error ? `: ${error.message}` : ''}`),
    onRecovered: ({ downtimeMs, degradedDecisions }) =>
      console.log(`limits back on Redis after ${downtimeMs} ms (${degradedDecisions} decisions without it)`),
  },
});

const app = express();
// Before the limiter, so a health check is never limited. It answers 200 while degraded: the app
// still serves and still limits, and every server would be pulled out of rotation at once otherwise.
// Once Redis is back, the first request after the breaker's cool-down tries it (the fallback still
// answers that one) and the next ones use it: then this says "ok" again.
app.get('/health', (_req, res) => {
  res.json(limit.limiter.health());
});
app.use(limit);
app.get('/', (req, res) => {
  res.json({ remaining: req.rateLimit?.remaining, degraded: req.rateLimit?.degraded });
});

const server = app.listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () => {
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : address;
  console.log(`listening on http://127.0.0.1:${port}`);
});
process.on('SIGTERM', () => {
  server.close();
  limit.limiter.close().finally(() => process.exit(0));
});
