// The process side of isolate.mjs: import the section module, measure one subject, reply, exit.
const [, , moduleUrl, json] = process.argv;
const { subject, options } = JSON.parse(json);
try {
  const mod = await import(moduleUrl);
  const value = await mod.measure(subject, options);
  process.send({ ok: true, value }, () => process.exit(0));
} catch (error) {
  process.send({ ok: false, error: error instanceof Error ? error.message : String(error) }, () =>
    process.exit(0),
  );
}
