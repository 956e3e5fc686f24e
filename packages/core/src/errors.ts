/**
 * Every error floodgate throws on purpose is a FloodgateError with a stable `code`.
 * The codes are part of the public contract and are listed in docs/errors.md.
 */
export type FloodgateErrorCode =
  | 'FLOODGATE_INVALID_RATE'
  | 'FLOODGATE_INVALID_OPTION'
  | 'FLOODGATE_UNKNOWN_OPTION'
  | 'FLOODGATE_INVALID_ALGORITHM'
  | 'FLOODGATE_INVALID_COST'
  | 'FLOODGATE_INVALID_KEY'
  | 'FLOODGATE_INVALID_URI'
  | 'FLOODGATE_MISSING_DRIVER'
  | 'FLOODGATE_STORE_OPEN_FAILED'
  | 'FLOODGATE_STORE_FAILED'
  | 'FLOODGATE_STORE_TIMEOUT'
  | 'FLOODGATE_STORE_UNAVAILABLE'
  | 'FLOODGATE_CLOSED';

export class FloodgateError extends Error {
  readonly code: FloodgateErrorCode;

  constructor(code: FloodgateErrorCode, message: string, options?: { cause?: unknown }) {
    super(`${code}: ${message}`, options);
    this.name = 'FloodgateError';
    this.code = code;
  }
}

export function isFloodgateError(value: unknown, code?: FloodgateErrorCode): value is FloodgateError {
  return value instanceof FloodgateError && (code === undefined || value.code === code);
}

/** The message of something thrown: an Error's own, else the value as text. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Quote a user value for an error message without letting a huge or odd value flood the log. */
export function show(value: unknown): string {
  let text: string;
  if (typeof value === 'string') text = JSON.stringify(value);
  else if (typeof value === 'number' || typeof value === 'boolean' || value == null) text = String(value);
  else if (typeof value === 'function') text = 'a function';
  else {
    try {
      text = JSON.stringify(value) ?? String(value);
    } catch {
      text = Object.prototype.toString.call(value);
    }
  }
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** The closest of `candidates` to `name`, for "did you mean" hints (Levenshtein distance <= 3). */
export function closest(name: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 4;
  for (const candidate of candidates) {
    const d = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      bestDistance = d;
      best = candidate;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length];
}

/**
 * Reject option names that no one reads, so a typo ("windowMS") fails loudly at construction
 * instead of silently using a default.
 */
export function assertKnownOptions(options: object, known: readonly string[], where: string): void {
  for (const name of Object.keys(options)) {
    if (known.includes(name)) continue;
    const hint = closest(name, known);
    throw new FloodgateError(
      'FLOODGATE_UNKNOWN_OPTION',
      `${where} has no option ${show(name)}; ${hint ? `did you mean ${show(hint)}? ` : ''}the options are ${known.join(', ')}`,
    );
  }
}
