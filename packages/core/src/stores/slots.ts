/**
 * The memory store's slot records: all it keeps of one key, in one 72-byte record of a typed-array
 * page (its state and expiry, its place in the LRU list, its bucket and its text), with three views
 * of each page to read the fields by type.
 *
 * One record per key rather than one column per field: a check on a key that is not in the CPU's
 * cache (many clients, arriving in no particular order) then waits on memory for one record, two
 * adjacent cache lines, instead of once per column.
 *
 * Record layout, by the view that reads each field:
 *   Float64 [0..2] the algorithm's state (the widest fixed-size state, the sliding window's, has
 *           three numbers), [3] its expiry by the store's clock
 *   Int32   [8] previous and [9] next slot in the LRU list (free slots are chained through next),
 *           [10] the bucket id
 *   bytes   [44] the key's length mark, [45..68] its characters (key-table.ts)
 */

/** Slots per page: a page is allocated whole and never copied once the first is full. */
export const PAGE_BITS = 16;
export const PAGE_SIZE = 1 << PAGE_BITS;
export const PAGE_MASK = PAGE_SIZE - 1;

export const NONE = -1;

/** Record size in each view's units: a slot's fields start at (slot & PAGE_MASK) times these. */
export const SLOT_BYTES = 72;
export const SLOT_FLOATS = SLOT_BYTES / 8;
export const SLOT_INTS = SLOT_BYTES / 4;

/** Float64 fields. The state takes [0, EXPIRY). */
export const EXPIRY = 3;
/** Int32 fields. */
export const PREV = 8;
export const NEXT = 9;
export const BUCKET = 10;
/** Byte fields: the key's length mark, then its characters (at most KEY_CHARS). */
export const MARK = 44;
export const CHARS = 45;
export const KEY_CHARS = 24;

export class SlotPages {
  readonly floats: Float64Array[] = [];
  readonly ints: Int32Array[] = [];
  readonly bytes: Uint8Array[] = [];
  capacity = 0;

  /**
   * Make room for slots up to `capacity`: the first page is replaced by a larger copy until it holds
   * PAGE_SIZE slots, then each call adds one page of the slots beyond the current capacity.
   */
  grow(capacity: number): void {
    let buffer: ArrayBuffer;
    if (capacity <= PAGE_SIZE) {
      const bytes = new Uint8Array(capacity * SLOT_BYTES);
      if (this.bytes.length > 0) bytes.set(this.bytes[0]);
      buffer = bytes.buffer;
      this.bytes[0] = bytes;
      this.ints[0] = new Int32Array(buffer);
      this.floats[0] = new Float64Array(buffer);
    } else {
      buffer = new ArrayBuffer((capacity - this.capacity) * SLOT_BYTES);
      this.bytes.push(new Uint8Array(buffer));
      this.ints.push(new Int32Array(buffer));
      this.floats.push(new Float64Array(buffer));
    }
    this.capacity = capacity;
  }
}
