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
