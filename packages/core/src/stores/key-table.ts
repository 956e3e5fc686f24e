/**
 * The memory store's index from (bucket, key) to slot. The key's text is kept in the slot's record
 * (slots.ts), not as a string.
 *
 * Why not a `Map<string, number>` per bucket: at a million keys a Map entry costs ~29 bytes, the key
 * string ~24 and the slot's reference to it 8 more, and a million strings that survive make V8's
 * young generation grow by ~30 bytes per key on top. Here a key of up to 24 Latin-1 characters (every
 * IPv4 key, every IPv6 key grouped by /56 or /64) is copied into its slot's record and the caller's
 * string is left to die young; the index is an open-addressing hash table in Int32Arrays, one Int32
 * per entry (~8 bytes per key at a million). Longer keys, and keys with characters above U+00FF,
 * are kept as strings in a side Map: correct for any key, just not compact.
 *
 * The index is split into 256 sub-tables chosen by the hash's top byte, each growing on its own: a
 * growth rehashes a few thousand entries, not all of them, and frees small arrays that malloc reuses
 * (freeing one big old array leaves RSS behind).
 */
import {
  BUCKET,
  CHARS,
  KEY_CHARS,
  MARK,
  NONE,
  PAGE_BITS,
  PAGE_MASK,
  SLOT_BYTES,
  SLOT_INTS,
  type SlotPages,
} from './slots.js';

/** Length marks: FREE for an unused slot, length + 1 for an inline key, LONG for a key in `longKeys`. */
const FREE = 0;
const LONG = 255;

const SUB_BITS = 8;
const SUB_SHIFT = 32 - SUB_BITS;
const SUB_INITIAL_ENTRIES = 16;
/**
 * An index entry is one Int32: the slot + 1 (0 = empty) above 8 bits of the key's hash, its
 * fingerprint. Slots fit in the 24 bits left (maxKeys is at most 16,000,000). The fingerprint comes
 * from bits 16-23, which neither pick the sub-table (the top byte) nor, below 65,536 entries per
 * sub-table, the home position (the low bits), so keys that share both still differ in it: a lookup
 * compares a key's text only for one in 256 of the other keys on its probe run.
 */
const PRINT_BITS = 8;
const PRINT_MASK = (1 << PRINT_BITS) - 1;
const PRINT_SHIFT = 16;

/**
 * Random per process, so that which keys collide cannot be worked out from outside (keys are often
 * chosen by clients: a fixed hash would let one fill a probe run and make every lookup slow).
 */
const SEED = globalThis.crypto.getRandomValues(new Int32Array(1))[0];

export class KeyTable {
  private readonly longKeys = new Map<number, string>();
  /** Per sub-table, one Int32 per entry (see PRINT_BITS). Linear probing. */
  private readonly subs: Int32Array[] = [];
  private readonly subCounts = new Int32Array(1 << SUB_BITS);

  /** `slots` holds the records whose key fields this table writes and compares. */
  constructor(private readonly slots: SlotPages) {
    for (let i = 0; i < 1 << SUB_BITS; i++) this.subs.push(new Int32Array(SUB_INITIAL_ENTRIES));
  }

  /** The slot holding `key` in bucket `bucketId`, or NONE. */
  find(bucketId: number, key: string): number {
    const hash = hashString(bucketId, key);
    const sub = this.subs[hash >>> SUB_SHIFT];
    const mask = sub.length - 1;
    const print = (hash >>> PRINT_SHIFT) & PRINT_MASK;
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      const entry = sub[i];
      if (entry === 0) return NONE;
      if ((entry & PRINT_MASK) === print && this.holds(slotOf(entry), bucketId, key)) return slotOf(entry);
    }
  }

  /** Record `key` of bucket `bucketId` in the free slot `slot`. The key must not be present yet. */
  add(bucketId: number, key: string, slot: number): void {
    const page = slot >>> PAGE_BITS;
    const at = slot & PAGE_MASK;
    const bytes = this.slots.bytes[page];
    const base = at * SLOT_BYTES;
    this.slots.ints[page][at * SLOT_INTS + BUCKET] = bucketId;
    const n = key.length;
    let mark = n <= KEY_CHARS ? n + 1 : LONG;
    for (let i = 0; i < n && mark !== LONG; i++) {
      const c = key.charCodeAt(i);
      if (c > 0xff) mark = LONG;
      else bytes[base + CHARS + i] = c;
    }
    bytes[base + MARK] = mark;
    if (mark === LONG) this.longKeys.set(slot, key);
    this.index(hashString(bucketId, key), slot);
  }

  /** Forget the key in `slot` (which must be in use). */
  remove(slot: number): void {
    const page = slot >>> PAGE_BITS;
    const at = slot & PAGE_MASK;
    const bytes = this.slots.bytes[page];
    const base = at * SLOT_BYTES;
    const hash = this.hashOf(slot);
    this.unindex(hash, slot);
    if (bytes[base + MARK] === LONG) this.longKeys.delete(slot);
    bytes[base + MARK] = FREE;
  }

  inUse(slot: number): boolean {
    return this.slots.bytes[slot >>> PAGE_BITS][(slot & PAGE_MASK) * SLOT_BYTES + MARK] !== FREE;
  }

  bucketOf(slot: number): number {
    return this.slots.ints[slot >>> PAGE_BITS][(slot & PAGE_MASK) * SLOT_INTS + BUCKET];
  }

  /** The key text of `slot`, or undefined when the slot is free. */
  keyOf(slot: number): string | undefined {
    const bytes = this.slots.bytes[slot >>> PAGE_BITS];
    const base = (slot & PAGE_MASK) * SLOT_BYTES;
    const mark = bytes[base + MARK];
    if (mark === FREE) return undefined;
    if (mark === LONG) return this.longKeys.get(slot);
    let key = '';
    for (let i = 0; i < mark - 1; i++) key += String.fromCharCode(bytes[base + CHARS + i]);
    return key;
  }

  private holds(slot: number, bucketId: number, key: string): boolean {
    const page = slot >>> PAGE_BITS;
    const at = slot & PAGE_MASK;
    if (this.slots.ints[page][at * SLOT_INTS + BUCKET] !== bucketId) return false;
    const bytes = this.slots.bytes[page];
    const base = at * SLOT_BYTES;
    const mark = bytes[base + MARK];
    if (mark === LONG) return this.longKeys.get(slot) === key;
    const n = key.length;
    if (mark !== n + 1) return false;
    for (let i = 0; i < n; i++) if (bytes[base + CHARS + i] !== key.charCodeAt(i)) return false;
    return true;
  }

  /** The hash of the key in `slot` (in use), from its record: what find() computed from its string. */
  private hashOf(slot: number): number {
    const page = slot >>> PAGE_BITS;
    const at = slot & PAGE_MASK;
    const bucketId = this.slots.ints[page][at * SLOT_INTS + BUCKET];
    const bytes = this.slots.bytes[page];
    const base = at * SLOT_BYTES;
    const mark = bytes[base + MARK];
    if (mark === LONG) return hashString(bucketId, this.longKeys.get(slot) as string);
    return hashBytes(bucketId, bytes, base + CHARS, mark - 1);
  }

  private index(hash: number, slot: number): void {
    const s = hash >>> SUB_SHIFT;
    let sub = this.subs[s];
    // At most four fifths full. Emptier sub-tables make shorter probe runs, but a lookup's probe run
    // is a few entries of one cache line either way (the fingerprint spares the key comparisons),
    // while a smaller table keeps more of itself in the CPU's cache when other data competes for it:
    // at 100k keys a sub-table that stops at half full takes twice the memory (1 MB against 512 KB
    // in all). Measured with two such stores in one process, an awaited check on keys taken in turn
    // was ~25% faster this way, in random order ~10%; with one store alone, within noise. The price
    // is paid at removal, which re-reads the hashes of the entries after the hole (~9 at 76% full
    // against ~1 at 38%): measured within ~5% on a full store evicting a key per check.
    if ((this.subCounts[s] + 1) * 5 > sub.length * 4) sub = this.regrow(s);
    const mask = sub.length - 1;
    let i = hash & mask;
    while (sub[i] !== 0) i = (i + 1) & mask;
    sub[i] = entryOf(slot, hash);
    this.subCounts[s]++;
  }

  /**
   * Remove `slot`'s entry and shift the entries after it back, so no tombstone is left. An entry
   * holds no position of its own: where it belongs is read from its key (hashOf), for the few
   * entries after the hole.
   */
  private unindex(hash: number, slot: number): void {
    const s = hash >>> SUB_SHIFT;
    const sub = this.subs[s];
    const mask = sub.length - 1;
    const entry = entryOf(slot, hash);
    let hole = hash & mask;
    while (sub[hole] !== entry) hole = (hole + 1) & mask;
    for (let j = (hole + 1) & mask; sub[j] !== 0; j = (j + 1) & mask) {
      const home = this.hashOf(slotOf(sub[j])) & mask;
      // The entry at j may move back to the hole only if its home is not cyclically in (hole, j].
      const stays = hole <= j ? hole < home && home <= j : hole < home || home <= j;
      if (stays) continue;
      sub[hole] = sub[j];
      hole = j;
    }
    sub[hole] = 0;
    this.subCounts[s]--;
  }

  /** Double sub-table `s`; each entry's new place comes from its key's hash (hashOf). */
  private regrow(s: number): Int32Array {
    const old = this.subs[s];
    const sub = new Int32Array(old.length * 2);
    const mask = sub.length - 1;
    for (let k = 0; k < old.length; k++) {
      if (old[k] === 0) continue;
      let i = this.hashOf(slotOf(old[k])) & mask;
      while (sub[i] !== 0) i = (i + 1) & mask;
      sub[i] = old[k];
    }
    this.subs[s] = sub;
    return sub;
  }
}

/** The index entry of `slot`, whose key hashes to `hash`. */
export function entryOf(slot: number, hash: number): number {
  return ((slot + 1) << PRINT_BITS) | ((hash >>> PRINT_SHIFT) & PRINT_MASK);
}

/** The slot of a (non-empty) index entry. Unsigned shift: above slot 2^23 the entry is negative. */
export function slotOf(entry: number): number {
  return (entry >>> PRINT_BITS) - 1;
}

// FNV-1a over the UTF-16 code units, then a murmur3 finalizer so the top byte (which picks the
// sub-table) depends on every character. Constants are written as int32 literals: V8 keeps the
// arithmetic in integer registers only when every operand is a small integer. The string and byte
// versions must agree exactly: a key is hashed from the caller's string on lookup and from its
// stored bytes on removal.

function hashString(bucketId: number, key: string): number {
  let h = SEED ^ Math.imul(bucketId, 16777619);
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 16777619);
  return finish(h);
}

function hashBytes(bucketId: number, bytes: Uint8Array, from: number, n: number): number {
  let h = SEED ^ Math.imul(bucketId, 16777619);
  for (let i = 0; i < n; i++) h = Math.imul(h ^ bytes[from + i], 16777619);
  return finish(h);
}

function finish(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, -2048144789); // 0x85ebca6b
  h ^= h >>> 13;
  h = Math.imul(h, -1028477387); // 0xc2b2ae35
  return h ^ (h >>> 16);
}
