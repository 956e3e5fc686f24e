/**
 * How a batch's one script call reaches Redis, and what it does when Redis has forgotten the script.
 *
 * FCALL of the floodgate Redis Function once its library is loaded (Redis 7+: the script's setup
 * runs once at load instead of on every call); until then, or where the server refuses functions
 * (Redis < 7, an ACL), EVALSHA. On NOSCRIPT (a restart, a failover, SCRIPT FLUSH) the script text
 * itself goes by EVAL, which also caches it again; a function gone missing (FUNCTION FLUSH, a new
 * node) sends that call by EVALSHA and loads the library again in the background. No check fails
 * because Redis lost the script.
 */
import { errorMessage } from '../../errors.js';
import type { DeadlineWatch } from '../../resilience/deadline.js';
import { floodgateScript } from './lua.js';

/** After a FUNCTION LOAD failed (Redis unreachable), how long checks go by EVALSHA before it is tried again. */
const FUNCTION_RETRY_MS = 5000;

/** The commands a script call needs, as ioredis's Redis and Cluster clients have them. */
export interface ScriptCommands {
  /** sha (or function name), numkeys, ...keys, ...args: spread, as ioredis flattens an array argument again per call. */
  evalsha(...args: string[]): Promise<unknown>;
  fcall(...args: string[]): Promise<unknown>;
  eval(args: string[]): Promise<unknown>;
}

/** A node the library is loaded on (every master of a Cluster). */
export interface LibraryNode {
  call(command: string, ...args: string[]): Promise<unknown>;
}

export class ScriptCall {
  /**
   * 'unknown' until the library is loaded, 'off' where the server refuses it, or until `retryAt`
   * after a failed load.
   */
  private functions: 'unknown' | 'loading' | 'ready' | 'off' = 'unknown';
  private retryAt = 0;

  constructor(
    private readonly commands: ScriptCommands,
    /** The nodes to load the library on; none known yet (a Cluster still connecting) is a failed load. */
    private readonly masters: () => LibraryNode[],
    /** The store's deadline for the background library load. */
    private readonly deadlines: DeadlineWatch,
  ) {
    // A client given to the store may have no FCALL (ioredis before 5, which the peer range
    // excludes but an application may still hand over): EVALSHA, for good.
    if (typeof commands.fcall !== 'function') this.refuse();
  }

  /** One script call; `args` is [name slot, numkeys, ...keys, ...arguments], its first entry overwritten. */
  send(args: string[]): Promise<unknown> {
    const functions = this.functions;
    if (functions === 'ready') {
      args[0] = floodgateScript().functionName;
      return this.commands.fcall(...args).catch((error: unknown) => {
        if (!(error instanceof Error) || !/function not found/i.test(error.message)) throw error;
        if (this.functions === 'ready') this.functions = 'unknown';
        return this.evaluateScript(args);
      });
    }
    if (functions === 'unknown' || (functions === 'off' && performance.now() >= this.retryAt)) {
      this.loadFunctions();
    }
    return this.evaluateScript(args);
  }

  private evaluateScript(args: string[]): Promise<unknown> {
    const script = floodgateScript();
    args[0] = script.sha;
    return this.commands.evalsha(...args).catch((error: unknown) => {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return this.commands.eval([script.text, ...args.slice(1)]);
    });
  }

  /** FUNCTION LOAD the library on every master, in the background; checks use EVALSHA meanwhile. */
  private loadFunctions(): void {
    this.functions = 'loading';
    const library = floodgateScript().library;
    let loads: Promise<unknown>;
    try {
      const nodes = this.masters();
      loads =
        nodes.length === 0
          ? Promise.reject(new Error('no master known yet'))
          : this.deadlines.watch(
              Promise.all(nodes.map((node) => node.call('FUNCTION', 'LOAD', 'REPLACE', library))),
            );
    } catch {
      // A client that throws instead of answering (no `call` method, say): EVALSHA for good.
      this.refuse();
      return;
    }
    loads.then(
      () => {
        if (this.functions === 'loading') this.functions = 'ready';
      },
      (error: unknown) => {
        const message = errorMessage(error);
        // A server without FUNCTION (Redis < 7) or an ACL that forbids it: EVALSHA for good.
        if (/unknown command|unknown subcommand|NOPERM|no permissions/i.test(message)) this.refuse();
        else {
          this.functions = 'off';
          this.retryAt = performance.now() + FUNCTION_RETRY_MS;
        }
      },
    );
  }

  /** Never try FCALL again on this client. */
  private refuse(): void {
    this.functions = 'off';
    this.retryAt = Number.POSITIVE_INFINITY;
  }
}
