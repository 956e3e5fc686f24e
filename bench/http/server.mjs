// One HTTP server under test, in its own process. argv[2] is JSON { framework, variant, distinct, redisUrl }:
// variant 'bare' (no limiter), 'peer' / 'peer-redis' (the framework's usual rate limiter, memory or Redis),
// 'floodgate' / 'floodgate-redis'. distinct: the key is the x-key header (the load generator rotates it)
// instead of the client IP. Every limit is a billion per hour, so every request is admitted and the
// figures measure the limiter's overhead, not 429s. The parent drives it over IPC: 'start' / 'stop'
// bracket a measured interval and 'stop' answers with the CPU this process spent and requests served.
const { framework, variant, distinct, redisUrl } = JSON.parse(process.argv[2]);
const BIG = 1_000_000_000;
const HOUR_MS = 3_600_000;
const redisClient = async () => new (await import('ioredis')).Redis(redisUrl);

let served = 0;
let limited = 0;

async function express() {
  const { default: createApp } = await import('express');
  const app = createApp();
  if (variant === 'peer' || variant === 'peer-redis') {
    const { rateLimit } = await import('express-rate-limit');
    const options = { windowMs: HOUR_MS, limit: BIG };
    if (distinct) options.keyGenerator = (req) => req.headers['x-key'];
    if (variant === 'peer-redis') {
      const { RedisStore } = await import('rate-limit-redis');
      const client = await redisClient();
      options.store = new RedisStore({
        sendCommand: (command, ...args) => client.call(command, ...args),
        prefix: `bench:erl:${distinct}:`,
      });
    }
    app.use(rateLimit(options));
  } else if (variant !== 'bare') {
    const { rateLimit } = await import('@floodgate/express');
    app.use(rateLimit(floodgateOptions((req) => req.headers['x-key'])));
  }
  app.get('/', (_req, res) => {
    served++;
    res.send('ok');
  });
  app.use((_req, res) => {
    limited++;
    res.status(404).end();
  });
  return new Promise((resolve) => {
    const server = app.listen(0, '127.0.0.1', () => resolve(server.address().port));
  });
}

async function fastify() {
  const { default: createApp } = await import('fastify');
  const app = createApp();
  if (variant === 'peer' || variant === 'peer-redis') {
    const { default: rateLimit } = await import('@fastify/rate-limit');
    const options = { max: BIG, timeWindow: HOUR_MS };
    if (distinct) options.keyGenerator = (request) => request.headers['x-key'];
    if (variant === 'peer-redis') {
      options.redis = await redisClient();
      options.nameSpace = `bench:fastify:${distinct}:`;
    }
    await app.register(rateLimit, options);
  } else if (variant !== 'bare') {
    const { default: floodgate } = await import('@floodgate/fastify');
    await app.register(
      floodgate,
      floodgateOptions((request) => request.headers['x-key']),
    );
  }
  app.get('/', (_request, reply) => {
    served++;
    reply.send('ok');
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  return app.server.address().port;
}

async function koa() {
  const { default: Koa } = await import('koa');
  const app = new Koa();
  if (variant === 'peer' || variant === 'peer-redis') {
    const { default: ratelimit } = await import('koa-ratelimit');
    const options = { duration: HOUR_MS, max: BIG };
    if (distinct) options.id = (ctx) => ctx.get('x-key');
    if (variant === 'peer-redis') {
      options.driver = 'redis';
      options.db = await redisClient();
      options.namespace = `bench:koa:${distinct}`;
    } else {
      options.driver = 'memory';
      options.db = new Map();
    }
    app.use(ratelimit(options));
  } else if (variant !== 'bare') {
    const { rateLimit } = await import('@floodgate/koa');
    app.use(rateLimit(floodgateOptions((ctx) => ctx.get('x-key'))));
  }
  app.use((ctx) => {
    if (ctx.path === '/') {
      served++;
      ctx.body = 'ok';
    }
  });
  return new Promise((resolve) => {
    const server = app.listen(0, '127.0.0.1', () => resolve(server.address().port));
  });
}

/** The same options for the three adapters; only the key function's argument differs. */
function floodgateOptions(keyFromHeader) {
  const options = { limit: BIG, window: HOUR_MS, name: 'bench' };
  if (distinct) options.key = keyFromHeader;
  if (variant === 'floodgate-redis') options.store = `${redisUrl}?prefix=bench:fg:${distinct}:`;
  return options;
}

const listen = { express, fastify, koa }[framework];
let mark;
process.on('message', (m) => {
  if (m === 'start') {
    mark = { cpu: process.cpuUsage(), served, limited };
  } else if (m === 'stop') {
    const cpu = process.cpuUsage(mark.cpu);
    process.send({
      type: 'stopped',
      cpuUs: cpu.user + cpu.system,
      served: served - mark.served,
      other: limited - mark.limited,
    });
  } else if (m === 'exit') {
    process.exit(0);
  }
});
try {
  const port = await listen();
  process.send({ type: 'listening', port });
} catch (error) {
  process.send({
    type: 'error',
    message: (error instanceof Error ? error.message : String(error)).split('\n')[0],
  });
  process.exit(0);
}
