// Loads the BUILT floodgate packages. Parts still being written are reported as unavailable with the
// reason, so every section can print "not available yet" instead of failing the run.

export async function loadPackage(name) {
  try {
    return { module: await import(name) };
  } catch (error) {
    return { missing: `${name} not available yet (${firstLine(error)})` };
  }
}

/** Calls `create()`; a store that is still a placeholder throws "not built yet" and is reported as missing. */
export async function tryCreate(what, create) {
  try {
    return { value: await create() };
  } catch (error) {
    return { missing: `${what} not available yet (${firstLine(error)})` };
  }
}

export function firstLine(error) {
  const text = error instanceof Error ? error.message : String(error);
  return text.split('\n')[0].slice(0, 200);
}

/**
 * Resolves once the limiter's store answers a check undegraded; throws after ~5 s of degraded
 * answers. The first calls connect (and load scripts), which on a busy machine can overrun the
 * Limiter's deadline, so a few degraded answers are not yet a verdict.
 */
export async function untilHealthy(limiter, kind) {
  let last;
  for (let attempt = 0; attempt < 50; attempt++) {
    last = await limiter.consume('probe');
    if (!last.degraded) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the ${kind} store is failing (degraded: ${last.degraded})`);
}
