/**
 * Algorithm states as BLOBs of little-endian Float64s: one shape for every algorithm, including the
 * sliding log's variable-length array, with no precision lost (states keep fractional ms).
 */
import type { AlgorithmState } from '../../types.js';

export function encodeState(state: readonly number[]): Buffer {
  const buffer = Buffer.allocUnsafe(state.length * 8);
  for (let i = 0; i < state.length; i++) buffer.writeDoubleLE(state[i], i * 8);
  return buffer;
}

export function decodeState(blob: Uint8Array): AlgorithmState {
  const buffer = Buffer.isBuffer(blob) ? blob : Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
  const state: number[] = new Array(buffer.length >>> 3);
  for (let i = 0; i < state.length; i++) state[i] = buffer.readDoubleLE(i * 8);
  return state;
}
