// Express with floodgate: an app-wide limit, a stricter login route, and a decorated class handler.
// Run: pnpm build && pnpm --filter @floodgate/example-express start   (PORT=3000 by default)
import { ipKey } from '@floodgate/core';
import { RateLimit, rateLimit } from '@floodgate/express';
import express, { type NextFunction, type Request, type Response } from 'express';

const app = express();
// Behind a reverse proxy, tell Express which hops to trust so req.ip is the real client:
// app.set('trust proxy', 'loopback');
app.use(express.json());

// Every route: 100 requests a minute per client IP (IPv6 grouped by /56).
app.use(rateLimit({ limit: '100/min' }));

// Login: 5 failed attempts per 15 minutes per account; successful logins are given back.
const loginLimit = rateLimit({
  limit: '5/15m',
  name: 'login',
  key: (req) =>
    typeof req.body?.email === 'string' ? `email:${req.body.email.toLowerCase()}` : `ip:${ipKey(req.ip)}`,
  skipSuccessfulRequests: true,
});
app.post('/login', loginLimit, (req, res) => {
  if (req.body?.password === 'correct horse battery staple') {
    res.json({ ok: true });
  } else {
    res.status(401).json({ error: 'wrong email or password', attemptsLeft: req.rateLimit?.remaining });
  }
});

// A class-based handler: a full report costs 5 units of a 10-a-minute budget.
class Reports {
  @RateLimit({ limit: '10/min', name: 'reports', cost: (req) => (req.query.full === '1' ? 5 : 1) })
  list(req: Request, res: Response, _next: NextFunction): void {
    res.json({ full: req.query.full === '1', remaining: req.rateLimit?.remaining });
  }
}
const reports = new Reports();
app.get('/reports', (req, res, next) => reports.list(req, res, next));

app.get('/', (req, res) => {
  res.json({ hello: 'world', rateLimit: req.rateLimit });
});

const port = Number(process.env.PORT ?? 3000);
app.listen(port, () => {
  console.log(`express example on http://localhost:${port}`);
  console.log(`try: curl -i http://localhost:${port}/`);
});
