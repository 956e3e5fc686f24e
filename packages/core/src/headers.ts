/**
 * Decision -> RateLimit response headers (DESIGN.md "Headers"). Everything that depends only on the
 * policies (header names, the RateLimit-Policy value, the quoted policy names) is built once when the
 * writer is created; per request only the numbers are joined in.
 *
 *   draft-11 (default)  RateLimit-Policy: "5-in-15m";q=5;w=900      RateLimit: "5-in-15m";r=4;t=900
 *   draft-7             RateLimit-Policy: 5;w=900                   RateLimit: limit=5, remaining=4, reset=900
 *   draft-6             RateLimit-Policy: 5;w=900  RateLimit-Limit: 5  RateLimit-Remaining: 4  RateLimit-Reset: 900
 *   legacy              X-RateLimit-Limit: 5  X-RateLimit-Remaining: 4  X-RateLimit-Reset: <Unix time, s>
 *
 * Every number written is a whole number >= 0 (resets rounded up to whole seconds), so no header can
 * carry a negative, NaN or fraction; policy names are validated printable ASCII without quotes or
 * backslashes (rate.ts), so they are valid RFC 9651 sf-strings as they are.
 */
import { FloodgateError, show } from './errors.js';
import type { Decision, Policy } from './types.js';

export type HeaderStandard = 'draft-11' | 'draft-7' | 'draft-6' | 'legacy';

/** One standard, several (like `['draft-11', 'legacy']`), or false for no RateLimit headers. */
export type HeadersOption = HeaderStandard | readonly HeaderStandard[] | false;

export const HEADER_STANDARDS: readonly HeaderStandard[] = ['draft-11', 'draft-7', 'draft-6', 'legacy'];

export const DEFAULT_HEADERS: HeaderStandard = 'draft-11';

/** Anything headers can be set on: Node's ServerResponse (Express `res`, Koa `ctx.res`, Fastify `reply.raw`). */
export interface HeaderTarget {
  setHeader(name: string, value: string): unknown;
}

/** Whole seconds from now, rounded up; 0 for anything that is not a positive number. */
export function ceilSeconds(ms: number): number {
  return ms > 0 ? Math.ceil(ms / 1000) : 0;
}

/** A count fit for a header: a whole number >= 0 (0 for NaN or a negative). */
function count(n: number): number {
  return n > 0 ? Math.floor(n) : 0;
}

/**
 * `Retry-After` for a denied Decision: ceil(retryAfterMs / 1000), at least 1, so a client that waits
 * exactly that long is never early.
 */
export function retryAfterSeconds(decision: Decision): number {
  const seconds = ceilSeconds(decision.retryAfterMs);
  return Math.max(seconds, 1);
}

/** Validate the `headers` option once; returns the standards to send (empty for none). */
export function checkHeadersOption(value: unknown): HeaderStandard[] {
  if (value === undefined) return [DEFAULT_HEADERS];
  if (value === false) return [];
  const list: unknown[] = Array.isArray(value) ? value : [value];
  const standards: HeaderStandard[] = [];
  for (const item of list) {
    if (typeof item !== 'string' || !(HEADER_STANDARDS as readonly string[]).includes(item)) {
      throw new FloodgateError(
        'FLOODGATE_INVALID_OPTION',
        `headers ${show(value)} is not a header standard; write one of ${HEADER_STANDARDS.map((s) => `"${s}"`).join(', ')}, an array of them, or false for none`,
      );
    }
    if (!standards.includes(item as HeaderStandard)) standards.push(item as HeaderStandard);
  }
  // draft-11 and the older drafts use the same field names with different syntax: one response cannot carry both.
  if (standards.includes('draft-11') && (standards.includes('draft-7') || standards.includes('draft-6'))) {
    throw new FloodgateError(
      'FLOODGATE_INVALID_OPTION',
      `headers ${show(value)} mixes "draft-11" with "draft-7"/"draft-6", which use the same RateLimit fields in another syntax; pick one of them (you may add "legacy")`,
    );
  }
  return standards;
}

/** Builds the RateLimit headers of one limiter (one set of policies) for each Decision it makes. */
export class HeaderWriter {
  readonly standards: readonly HeaderStandard[];
  private readonly draft11: boolean;
  private readonly draft7: boolean;
  private readonly draft6: boolean;
  private readonly legacy: boolean;
  /** draft-11 RateLimit-Policy value (constant). */
  private readonly policy11: string;
  /** draft-6/7 RateLimit-Policy value (constant). */
  private readonly policy7: string;
  /** Per policy, the start of its draft-11 RateLimit item: `"5-in-15m";r=`. */
  private readonly itemStarts: readonly string[];

  constructor(headers: HeadersOption | undefined, policies: readonly Policy[]) {
    this.standards = checkHeadersOption(headers);
    this.draft11 = this.standards.includes('draft-11');
    this.draft7 = this.standards.includes('draft-7');
    this.draft6 = this.standards.includes('draft-6');
    this.legacy = this.standards.includes('legacy');
    this.policy11 = policies.map((p) => `"${p.name}";q=${p.limit};w=${ceilSeconds(p.windowMs)}`).join(', ');
    this.policy7 = policies.map((p) => `${p.limit};w=${ceilSeconds(p.windowMs)}`).join(', ');
    this.itemStarts = policies.map((p) => `"${p.name}";r=`);
  }

  /** True when this writer sends nothing (`headers: false`). */
  get empty(): boolean {
    return this.standards.length === 0;
  }

  /**
   * Set the RateLimit headers for `decision` on `target`. A Decision made without any store
   * (`degraded` 'open' or 'closed') gets none: its numbers would be invented.
   */
  write(decision: Decision, target: HeaderTarget): void {
    if (decision.degraded === 'open' || decision.degraded === 'closed') return;
    if (this.draft11) {
      target.setHeader('RateLimit-Policy', this.policy11);
      target.setHeader('RateLimit', this.rateLimit11(decision));
    }
    if (this.draft7 || this.draft6) target.setHeader('RateLimit-Policy', this.policy7);
    const limit = count(decision.limit);
    const remaining = count(decision.remaining);
    const reset = ceilSeconds(decision.resetMs);
    if (this.draft7) {
      target.setHeader('RateLimit', `limit=${limit}, remaining=${remaining}, reset=${reset}`);
    }
    if (this.draft6) {
      target.setHeader('RateLimit-Limit', `${limit}`);
      target.setHeader('RateLimit-Remaining', `${remaining}`);
      target.setHeader('RateLimit-Reset', `${reset}`);
    }
    if (this.legacy) {
      target.setHeader('X-RateLimit-Limit', `${limit}`);
      target.setHeader('X-RateLimit-Remaining', `${remaining}`);
      target.setHeader('X-RateLimit-Reset', `${Math.ceil(Date.now() / 1000) + reset}`);
    }
  }

  /** The draft-11 RateLimit value: one item per policy, in the policies' order. */
  private rateLimit11(decision: Decision): string {
    const policies = decision.policies;
    const starts = this.itemStarts;
    // A Decision always lists the policies it was made for; fall back to the top-level fields otherwise.
    if (policies.length !== starts.length) {
      return `"${decision.policy}";r=${count(decision.remaining)};t=${ceilSeconds(decision.resetMs)}`;
    }
    let value = `${starts[0]}${count(policies[0].remaining)};t=${ceilSeconds(policies[0].resetMs)}`;
    for (let i = 1; i < policies.length; i++) {
      value += `, ${starts[i]}${count(policies[i].remaining)};t=${ceilSeconds(policies[i].resetMs)}`;
    }
    return value;
  }
}

/**
 * The headers for one Decision as a plain object, for code outside the adapters (a raw Node server,
 * another framework). Adapters use a HeaderWriter built once instead.
 */
export function rateLimitHeaders(
  decision: Decision,
  policies: readonly Policy[],
  headers: HeadersOption = DEFAULT_HEADERS,
): Record<string, string> {
  const out: Record<string, string> = {};
  new HeaderWriter(headers, policies).write(decision, {
    setHeader(name, value) {
      out[name] = value;
    },
  });
  if (!decision.allowed) out['Retry-After'] = `${retryAfterSeconds(decision)}`;
  return out;
}
