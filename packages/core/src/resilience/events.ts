/**
 * Event hooks of a Limiter, for logs and metrics. They are called synchronously on the path of a
 * request, so a hook must be quick; whatever it throws (or rejects with, when it is async) is caught
 * here and reported once per hook as a process warning: a broken hook never breaks a request.
 */
import { FloodgateError, show } from '../errors.js';
import type { Decision, Degraded } from '../types.js';
import type { BreakerState } from './circuit-breaker.js';

export type StoreRole = 'primary' | 'fallback';
/** `probe`: the breaker's background check of a reserved key while half-open. */
export type StoreOperation = 'consume' | 'peek' | 'refund' | 'probe';

export interface StoreErrorEvent {
  /** What the store threw, or a FloodgateError FLOODGATE_STORE_TIMEOUT when it missed the deadline. */
  readonly error: unknown;
  readonly store: StoreRole;
  /** The failing store's `kind`, like "redis". */
  readonly kind: string;
  readonly operation: StoreOperation;
  readonly key: string;
}

export interface DegradedEvent {
  /** How decisions are being made now: by the fallback, allowed (open) or denied (closed). */
  readonly mode: Exclude<Degraded, false>;
  /** The failure that started it (undefined when the breaker skipped the store). */
  readonly error: unknown;
  readonly breaker: BreakerState | 'off';
}

export interface RecoveredEvent {
  /** How long decisions were degraded, in ms. */
  readonly downtimeMs: number;
  /** Decisions made without the primary store meanwhile. */
  readonly degradedDecisions: number;
}

export interface LimitEvent {
  readonly key: string;
  readonly decision: Decision;
}

export interface LimiterHooks {
  /** Every failed or timed-out store call (not calls the open breaker skipped). */
  onStoreError?: (event: StoreErrorEvent) => void;
  /** Decisions start being made without the primary store (or switch to another mode). */
  onDegraded?: (event: DegradedEvent) => void;
  /** The primary store answers again after being degraded. */
  onRecovered?: (event: RecoveredEvent) => void;
  /** A call was denied by a limit (not by a failing store: that is `degraded: 'closed'`). */
  onLimit?: (event: LimitEvent) => void;
}

export const HOOK_NAMES = ['onStoreError', 'onDegraded', 'onRecovered', 'onLimit'] as const;
export type HookName = (typeof HOOK_NAMES)[number];

/** Check the hooks given to a Limiter: each absent or a function. */
export function parseHooks(options: Partial<Record<HookName, unknown>>): LimiterHooks {
  const hooks: Record<string, unknown> = {};
  for (const name of HOOK_NAMES) {
    const hook = options[name];
    if (hook === undefined) continue;
    if (typeof hook !== 'function') {
      throw new FloodgateError(
        'FLOODGATE_INVALID_OPTION',
        `${name} ${show(hook)} must be a function, like ${name}: (event) => log(event)`,
      );
    }
    hooks[name] = hook;
  }
  return hooks as LimiterHooks;
}

const warned = new WeakSet<object>();

/** Call `hook` with `event`; nothing it throws or rejects with escapes. */
export function emit<E>(hook: ((event: E) => void) | undefined, name: HookName, event: E): void {
  if (hook === undefined) return;
  try {
    const result: unknown = hook(event);
    if (
      result !== null &&
      typeof result === 'object' &&
      typeof (result as Promise<void>).then === 'function'
    ) {
      (result as Promise<void>).then(undefined, (error: unknown) => hookFailed(hook, name, error));
    }
  } catch (error) {
    hookFailed(hook, name, error);
  }
}

function hookFailed(hook: object, name: HookName, error: unknown): void {
  if (warned.has(hook)) return;
  warned.add(hook);
  const why = error instanceof Error ? error.message : show(error);
  process.emitWarning(
    `The ${name} hook threw (${why}); the request went on without it. Reported once per hook.`,
    {
      code: 'FLOODGATE_HOOK_FAILED',
    },
  );
}
