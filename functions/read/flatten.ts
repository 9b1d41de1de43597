/**
 * JSON objects into flat rows of text, straight from the bytes (see json-scan.ts):
 *
 * - nested objects become dotted column names (`address.city`) down to `depth` levels; an object
 *   deeper than that stays JSON text in the column of its path;
 * - arrays are JSON text (`arrays: 'json'`), or, with `arrays: 'explode'`, rows of a child table
 *   named by the array's path (see `JsonRows` in json.ts);
 * - strings are their value, numbers their source text (`1.10` stays `1.10`, a 20-digit id stays
 *   exact), booleans `true`/`false`, `null` is SQL NULL.
 *
 * JSON text kept in a column has the whitespace between tokens removed and is otherwise as written.
 */
import { ascii, compactJson, decodeString, firstMember, memberValue, nextMember, scanLiteral, scanNumber, scanString, skipValue, stringWasEscaped } from './json-scan.ts';
import { beyondLimit, type ReadError } from './types.ts';

/** Default for `ReadOptions.flattenDepth`. */
export const DEFAULT_FLATTEN_DEPTH = 3;

/**
 * The columns of one table: the `names` array is the table's `columns`, which grows as keys turn
 * up. A key's column is named after the key; names taken by columns the reader adds itself
 * (`id`, `geometry`, `_parent`…) make a clashing key's column `key_2` (then `_3`…).
 */
export class Columns {
  /** The most columns (the reader sets it from `read.limits.maxColumns`): one more throws `TooManyColumns`. */
  max = Infinity;
  private readonly byKey = new Map<string, number>();
  private readonly taken = new Set<string>();

  constructor(readonly names: string[] = []) {
    for (const [i, n] of names.entries()) {
      this.byKey.set(n, i);
      this.taken.add(n);
    }
  }

  /** Told when a key's column cannot take the key's name (a column the reader named has it). */
  onRename: ((key: string, name: string) => void) | undefined;

  /** The column of a key, added when new. */
  indexOf(key: string): number {
    const i = this.byKey.get(key);
    if (i !== undefined) return i;
    const name = this.free(key);
    const added = this.push(name);
    this.byKey.set(key, added);
    if (name !== key) this.onRename?.(key, name);
    return added;
  }

  /** Whether a key has a column. */
  has(key: string): boolean {
    return this.byKey.has(key);
  }

  /** Keys in the order their columns were added. */
  keys(): string[] {
    return [...this.byKey.keys()];
  }

  /** Add a column the reader names itself: `name`, or `name_2`… when a key already took it. */
  reserve(name: string): number {
    return this.push(this.free(name));
  }

  private free(name: string): string {
    if (!this.taken.has(name)) return name;
    for (let k = 2; ; k++) if (!this.taken.has(`${name}_${k}`)) return `${name}_${k}`;
  }

  private push(name: string): number {
    // a file whose records each bring new keys would otherwise pad every row to a growing width
    if (this.names.length >= this.max) throw new TooManyColumns(name, this.max);
    this.taken.add(name);
    this.names.push(name);
    return this.names.length - 1;
  }
}

/** A key past `Columns.max`; the reader turns it into a ReadError naming the file and the record (`tooManyKeys`). */
export class TooManyColumns extends Error {
  constructor(
    readonly key: string,
    readonly max: number,
  ) {
    super(`more than ${max} columns`);
  }
}

/** The ReadError for `error` met in record `position` (a feature, line or element) of `file`. */
export function tooManyKeys(error: TooManyColumns, file: string, unit: string, position: number): ReadError {
  return beyondLimit(file, `${unit} ${position}: the key "${error.key.slice(0, 80)}" would be column ${error.max + 1}`, 'maxColumns', error.max, { line: position });
}

/** Member names remembered by `Flattener` (a power of two). */
const KEY_SLOTS = 256;

/** Put `v` in column `i`, padding with NULLs (rows are plain arrays, never holey). */
export function setValue(values: (string | null)[], i: number, v: string | null): void {
  while (values.length < i) values.push(null);
  values[i] = v;
}

/** Called for an array value in explode mode: read the array at `b[i]`, return the index past it. */
export type ArrayHook = (b: Buffer, i: number, end: number, path: string) => number;

export interface FlattenOptions {
  /** Levels of nested objects flattened into dotted names (`ReadOptions.flattenDepth`). */
  depth: number;
  /** Explode mode: arrays go here instead of into a column. */
  onArray?: ArrayHook;
}

/**
 * Reads one JSON value at `b[i]` (a scalar, or an object/array kept whole as text) into `Flattener.value`
 * and returns the index past it. Strings are decoded, numbers kept as written.
 */
export class Flattener {
  /** The value `readValue` read last. */
  value: string | null = null;

  private readonly keys: ({ bytes: Uint8Array; key: string } | undefined)[] = new Array(KEY_SLOTS).fill(undefined);

  constructor(private readonly opts: FlattenOptions) {}

  /**
   * The members of the object at `b[i]` into `values`, their column names prefixed with `prefix`
   * (`''` at the top, `address.` one level down); `depthLeft` more levels of objects are flattened.
   * `values` may be `null` to only walk (finding arrays for explode mode, registering nothing).
   */
  object(b: Buffer, i: number, end: number, prefix: string, depthLeft: number, cols: Columns | null, values: (string | null)[] | null): number {
    for (i = firstMember(b, i, end); i >= 0; i = nextMember(b, i, end)) {
      const keyStart = i;
      i = scanString(b, i, end);
      const key = this.key(b, keyStart, i, stringWasEscaped());
      i = memberValue(b, i, end);
      const path = prefix + key;
      const c = b[i];
      if (c === 0x7b && depthLeft > 0) {
        i = this.object(b, i, end, `${path}.`, depthLeft - 1, cols, values);
      } else if (c === 0x5b && this.opts.onArray) {
        i = this.opts.onArray(b, i, end, path);
      } else if (values && cols) {
        i = this.readValue(b, i, end);
        setValue(values, cols.indexOf(path), this.value);
      } else {
        i = skipValue(b, i, end);
      }
    }
    return ~i;
  }

  /**
   * The member name whose quotes are at `start` and `after - 1`. Rows repeat the same few names,
   * so the last name seen per hash slot is kept with its bytes: a match costs a byte comparison
   * instead of a UTF-8 decode and a new string.
   */
  private key(b: Buffer, start: number, after: number, escaped: boolean): string {
    const len = after - start - 2;
    if (escaped || len > 64) return decodeString(b, start, after, escaped);
    let h = len;
    for (let k = start + 1; k < after - 1; k++) h = (h * 31 + b[k]!) | 0;
    const slot = h & (KEY_SLOTS - 1);
    const cached = this.keys[slot];
    if (cached !== undefined && cached.bytes.length === len) {
      const bytes = cached.bytes;
      let k = 0;
      while (k < len && bytes[k] === b[start + 1 + k]) k++;
      if (k === len) return cached.key;
    }
    const key = decodeString(b, start, after, false);
    this.keys[slot] = { bytes: Uint8Array.prototype.slice.call(b, start + 1, after - 1), key };
    return key;
  }

  /** One value at `b[i]` into `this.value`: text for strings and numbers, JSON text for objects and arrays. */
  readValue(b: Buffer, i: number, end: number): number {
    const c = b[i]!;
    if (c === 0x22) {
      const after = scanString(b, i, end);
      this.value = decodeString(b, i, after, stringWasEscaped());
      return after;
    }
    if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      const after = scanNumber(b, i, end);
      this.value = ascii(b, i, after);
      return after;
    }
    if (c === 0x7b || c === 0x5b) {
      const after = skipValue(b, i, end);
      this.value = compactJson(b, i, after);
      return after;
    }
    const after = scanLiteral(b, i, end);
    this.value = c === 0x74 ? 'true' : c === 0x66 ? 'false' : null;
    return after;
  }
}
