// Several worker processes (Node's cluster) sharing one SQLite file: each client gets 10 requests a
// minute in all, whichever worker answers, and the counts survive a restart.
// Run: pnpm build && pnpm --filter @floodgate/example-sqlite-cluster start
//   PORT (3000), WORKERS (4), DB_FILE (limits.db, relative to the working directory)
import cluster from 'node:cluster';
import { resolve } from 'node:path';
import { SqliteStore } from '@floodgate/core';
import { rateLimit } from '@floodgate/express';
import express from 'express';

const workers = Number(process.env.WORKERS ?? 4);
const file = resolve(process.env.DB_FILE ?? 'limits.db');

if (cluster.isPrimary) {
  for (let i = 0; i < workers; i++) cluster.fork();
  // A worker that dies is replaced; its committed counts are in the file.
  cluster.on('exit', (_worker, code, signal) => {
    if (signal !== 'SIGTERM' && code !== 0) cluster.fork();
  });
  process.on('SIGTERM', () => {
    for (const worker of Object.values(cluster.workers ?? {})) worker?.kill('SIGTERM');
    process.exit(0);
  });
} else {
  const app = express();
  // Every worker opens the same file; the store serialises their writes (docs/sqlite.md).
  const store = new SqliteStore({ path: file });
  app.use(rateLimit({ limit: '10/min', name: 'api', store }));
  app.get('/', (req, res) => {
    res.json({ worker: process.pid, remaining: req.rateLimit?.remaining });
  });
  const server = app.listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () => {
    const address = server.address();
    const port = typeof address === 'object' && address !== null ? address.port : address;
    console.log(`worker ${process.pid} on http://127.0.0.1:${port}`);
  });
  process.on('SIGTERM', () => {
    server.close();
    store.close().finally(() => process.exit(0));
  });
}
