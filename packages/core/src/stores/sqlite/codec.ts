/**
 * Algorithm states as BLOBs of little-endian Float64s: one shape for every algorithm, including the
 * sliding log's variable-length array, with no precision lost (states keep fractional ms).
 *
 * The store reads a state as `hex(state)`, text, never as the BLOB itself: better-sqlite3 hands a
 * BLOB column back as a new Buffer, whose memory is allocated apart from the JS heap, and measured
 * here that took ~1 µs of a ~2 µs read of a row by rowid; the same row read with `hex(state)` and
 * decoded below took ~1.4 µs. Rows are read again after every commit of another process on the
 * file (row-cache.ts), so with several processes this is paid on most checks.
 */
import type { AlgorithmState } from '../../types.js';

/** The one buffer decodeHexState() assembles each number's eight bytes in. */
const assembled = new DataView(new ArrayBuffer(8));

/** A state as `hex(state)` gave it: two hex digits per byte, eight bytes per number, little-endian. */
export function decodeHexState(hex: string): AlgorithmState {
  const state: number[] = new Array(hex.length >>> 4);
  for (let i = 0; i < state.length; i++) {
    const at = i * 16;
    assembled.setInt32(0, hexWord(hex, at), true);
    assembled.setInt32(4, hexWord(hex, at + 8), true);
    state[i] = assembled.getFloat64(0, true);
  }
  return state;
}

/** Four bytes, least significant first, from eight hex digits at `at`. */
function hexWord(hex: string, at: number): number {
  return (
    hexByte(hex, at) |
    (hexByte(hex, at + 2) << 8) |
    (hexByte(hex, at + 4) << 16) |
    (hexByte(hex, at + 6) << 24)
  );
}

function hexByte(hex: string, at: number): number {
  return (hexDigit(hex.charCodeAt(at)) << 4) | hexDigit(hex.charCodeAt(at + 1));
}

/** SQLite's hex() writes 0-9 and A-F. */
function hexDigit(code: number): number {
  return code <= 57 ? code - 48 : code - 55;
}

/**
 * Encodes states into buffers it keeps for the usual lengths (1 to 3 numbers): SQLite copies a
 * bound BLOB when the statement runs, so a buffer can be written again right after, and a check
 * need not allocate one (measured ~0.1 µs of a ~1.7 µs UPDATE). One encoder per state a statement
 * binds at once. Longer states (the sliding log) get a buffer of their own.
 */
export class StateEncoder {
  private readonly kept = [0, 1, 2, 3].map((n) => Buffer.alloc(n * 8));

  /** `state` as a BLOB, valid until this encoder's next call. */
  encode(state: readonly number[]): Buffer {
    const n = state.length;
    const buffer = n < this.kept.length ? this.kept[n] : Buffer.allocUnsafe(n * 8);
    for (let i = 0; i < n; i++) buffer.writeDoubleLE(state[i], i * 8);
    return buffer;
  }
}
