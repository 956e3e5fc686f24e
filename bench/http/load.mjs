// The load generator, in its own process so it never shares a thread with the server it measures.
// The parent sends { id, url, connections, seconds, distinct } and gets autocannon's figures back.
import autocannon from 'autocannon';

/** 100k rotating keys: distinct enough to miss any per-key cache, bounded so Redis memory stays small. */
const KEY_SPACE = 100_000;
let next = 0;

function run({ url, connections, seconds, distinct }) {
  const options = { url, connections, duration: seconds, pipelining: 1 };
  if (distinct) {
    options.requests = [
      {
        method: 'GET',
        path: '/',
        setupRequest: (request) => {
          next = next + 1 === KEY_SPACE ? 0 : next + 1;
          request.headers = { ...request.headers, 'x-key': `k${next}` };
          return request;
        },
      },
    ];
  }
  return autocannon(options);
}

process.on('message', async (job) => {
  if (job === 'exit') process.exit(0);
  const result = await run(job);
  process.send({
    id: job.id,
    requests: result.requests.total,
    seconds: result.duration,
    rps: result.requests.total / result.duration,
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
  });
});
process.send({ type: 'ready' });
