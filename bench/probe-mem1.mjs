import { Limiter } from '@floodgate/core';
import { MemoryStore as ErlStore } from 'express-rate-limit';

const l = new Limiter({ limit: 1e9, window: 3_600_000 });
const erl = new ErlStore(); erl.init({ windowMs: 3_600_000 });
const N = 2_000_000;
async function t(name, fn, sync) {
  for (let r = 0; r < 3; r++) {
    const t0 = process.hrtime.bigint();
    if (sync) for (let i = 0; i < N; i++) fn();
    else for (let i = 0; i < N; i++) await fn();
    console.log(name, (Number(process.hrtime.bigint() - t0) / N).toFixed(1), 'ns');
  }
}
await t('consumeNow sync      ', () => l.consumeNow('k', 1), true);
await t('consume awaited      ', () => l.consume('k'));
await t('erl increment awaited', () => erl.increment('k'));
await t('await resolved       ', () => Promise.resolve(1));
await t('await async fn       ', async () => 1);
const d = l.consumeNow('k', 1);
console.log(Object.keys(d), d.constructor.name, %HasFastProperties(d));
await t('await P.resolve(dec) ', () => Promise.resolve(d));
const plain = { a: 1, b: 2 };
await t('await P.resolve(obj) ', () => Promise.resolve(plain));
await t('consumeNow+P.resolve ', () => Promise.resolve(l.consumeNow('k', 1)));
