/**
 * How the Redis store names a failure: FLOODGATE_STORE_UNAVAILABLE when Redis cannot be reached now
 * (the failure policy and the circuit breaker take over), FLOODGATE_STORE_FAILED when it refused the
 * command, and a TLS handshake that failed said in so many words.
 */
import { errorMessage, FloodgateError } from '../../errors.js';

/** ioredis's Cluster error when every answer to a command was MOVED, ASK or TRYAGAIN: it ran nowhere. */
const REDIRECTION_LOOP =
  /^Too many Cluster redirections\. Last error: (?:ReplyError: )?(?:MOVED|ASK|TRYAGAIN)\b/;

export function isRedirectionLoop(error: unknown): boolean {
  return error instanceof Error && REDIRECTION_LOOP.test(error.message);
}

/** Failures that mean "Redis cannot be reached now" rather than "Redis refused this command". */
const UNAVAILABLE =
  /Connection is closed|Too many Cluster redirections|Stream isn't writeable|isn't ready|enableOfflineQueue|max retries|Command timed out|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENOTFOUND|EPIPE|sentinel|CLUSTERDOWN|LOADING|MASTERDOWN|READONLY|TRYAGAIN|no connection|connection ended|not connected/i;

/** Node's error codes for a TLS handshake that failed (certificate not trusted, expired, wrong name, alert). */
const TLS_FAILURE = /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_(?:GET|VERIFY)|ALTNAME/;

export function storeError(error: unknown): FloodgateError {
  if (error instanceof FloodgateError) return error;
  const message = errorMessage(error);
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && TLS_FAILURE.test(code)) {
    // Not connected, and it will not connect by itself: say what to look at.
    return new FloodgateError(
      'FLOODGATE_STORE_UNAVAILABLE',
      `Redis: the TLS handshake failed (${code}: ${message}); check the ca, cert and key the store was given`,
      { cause: error },
    );
  }
  return new FloodgateError(
    UNAVAILABLE.test(message) ? 'FLOODGATE_STORE_UNAVAILABLE' : 'FLOODGATE_STORE_FAILED',
    `Redis: ${message}`,
    { cause: error },
  );
}

export function closedError(): FloodgateError {
  return new FloodgateError('FLOODGATE_CLOSED', 'this RedisStore was closed; create a new one');
}
