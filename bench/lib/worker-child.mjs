// The process side of isolate.mjs: set the subject up, then answer one message at a time.
const [, , moduleUrl, json] = process.argv;
const { subject, options } = JSON.parse(json);
const fail = (error) => ({ ok: false, error: error instanceof Error ? error.message : String(error) });

let state;
let mod;
try {
  mod = await import(moduleUrl);
  state = await mod.setup(subject, options);
  process.send({ ok: true });
} catch (error) {
  process.send(fail(error), () => process.exit(0));
}

let queue = Promise.resolve();
process.on('message', (message) => {
  queue = queue.then(async () => {
    if (message.close) {
      await mod.teardown?.(state);
      process.exit(0);
    }
    try {
      process.send({ ok: true, value: await mod.round(state, message) });
    } catch (error) {
      process.send(fail(error));
    }
  });
});
