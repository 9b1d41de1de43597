/**
 * Byte-level JSON scanning for the JSON, NDJSON and GeoJSON readers.
 *
 * Two layers:
 * - **Scanning functions** (`skipWs`, `scanString`, `scanNumber`, `skipValue`…) work on the bytes
 *   of a Buffer between `i` and `end`, validate as they go, and return the index just past what
 *   they read. They never build values, so skipping a 1 MB coordinate array costs one tight loop
 *   over its bytes. When they run into `end` mid-token they throw `NEED_MORE`: the caller tries
 *   again, from the same start, once more bytes have arrived. On bad JSON they throw a
 *   `JsonSyntaxError` with the index of the offending byte.
 * - **`JsonStreamer`** is a push parser over a byte stream (`write(chunk)`, `end()`). It walks the
 *   outer structure itself (the top-level array, the top-level object's members, NDJSON lines) and
 *   hands each *element* (an array element, a line, a top-level value) to a handler that reads it
 *   with the scanning functions. Elements may span chunks: the streamer keeps the bytes of the
 *   element in progress (never more than `maxElementBytes`) and calls the handler again once it
 *   has at least twice as many bytes as the last attempt, so a large element costs at most about
 *   twice its own scan. A handler must therefore have no lasting effect until it returns.
 *
 * Why not `JSON.parse`: the readers keep numbers as their source text (`1.10`, 20-digit ids),
 * take a GeoJSON geometry as the exact bytes of the file, and only need properties decoded; a
 * byte scanner gives all three and skips building coordinate arrays that would be thrown away.
 */
import { isAscii, isUtf8 } from 'node:buffer';
import { completeUtf8Length, firstInvalidUtf8 } from '../common/utf8.ts';
import { ReadError } from './types.ts';

/** Thrown by the scanning functions when the bytes at hand end before the token does. */
export const NEED_MORE: unique symbol = Symbol('json-scan: need more bytes');

/** Bad JSON at byte `at` (an index into the Buffer being scanned). */
export class JsonSyntaxError extends Error {
  override name = 'JsonSyntaxError';
  constructor(
    readonly detail: string,
    readonly at: number,
  ) {
    super(`${detail} (at index ${at})`);
  }
}

/** Deepest nesting `skipValue` accepts: deeper is an attack or a bug, not data. */
export const MAX_NESTING = 10_000;

const TAB = 0x09;
const LF = 0x0a;
/** Characters in the UTF-8 bytes `b[start, end)`: every byte but the continuation bytes. */
function utf8Chars(b: Uint8Array, start: number, end: number): number {
  let n = 0;
  for (let i = start; i < end; i++) if ((b[i]! & 0xc0) !== 0x80) n++;
  return n;
}
const CR = 0x0d;
const SPACE = 0x20;
const QUOTE = 0x22;
const PLUS = 0x2b;
const COMMA = 0x2c;
const MINUS = 0x2d;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;
const COLON = 0x3a;
const LBRACKET = 0x5b;
const BACKSLASH = 0x5c;
const RBRACKET = 0x5d;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const RS = 0x1e; // record separator: starts each record of a GeoJSON text sequence (RFC 8142)

/** Whether the last `scanString` met a backslash (the string needs unescaping). */
let lastStringEscaped = false;

/** The bytes of an unexpected character, for messages: `'x'` when printable ASCII, else `byte 0xNN`. */
export function describeByte(c: number | undefined): string {
  if (c === undefined) return 'the end of the data';
  if (c > SPACE && c < 0x7f) return `'${String.fromCharCode(c)}'`;
  if (c === SPACE) return 'a space';
  return `byte 0x${c.toString(16).padStart(2, '0')}`;
}

function unexpected(b: Uint8Array, i: number, expected: string): JsonSyntaxError {
  return new JsonSyntaxError(`expected ${expected}, found ${describeByte(b[i])}`, i);
}

/** Index of the first byte at or after `i` that is not JSON whitespace (`end` if none). */
export function skipWs(b: Uint8Array, i: number, end: number): number {
  while (i < end) {
    const c = b[i]!;
    if (c === SPACE || c === LF || c === CR || c === TAB) i++;
    else break;
  }
  return i;
}

/** Like `skipWs`, and also skips RS, which separates the records of a GeoJSON text sequence. */
function skipTopWs(b: Uint8Array, i: number, end: number): number {
  while (i < end) {
    const c = b[i]!;
    if (c === SPACE || c === LF || c === CR || c === TAB || c === RS) i++;
    else break;
  }
  return i;
}

/**
 * `b[i]` is an opening quote: the index just past the closing quote. Escapes are validated;
 * control characters inside strings are accepted (suppliers' files have raw tabs), as json-c
 * (ogr2ogr) accepts them. Short strings are read byte by byte; after 32 bytes the rest is found
 * with `indexOf`, which matters for long strings (a 200 MB string must fail fast).
 */
export function scanString(b: Buffer, i: number, end: number): number {
  let j = i + 1;
  let escaped = false;
  for (;;) {
    const stop = j + 32 < end ? j + 32 : end;
    while (j < stop) {
      const c = b[j]!;
      if (c === QUOTE) {
        lastStringEscaped = escaped;
        return j + 1;
      }
      if (c === BACKSLASH) {
        escaped = true;
        j = checkEscape(b, j, end);
      } else j++;
    }
    if (j >= end) throw NEED_MORE;
    const q = b.indexOf(QUOTE, j);
    if (q < 0 || q >= end) throw NEED_MORE;
    const bs = b.subarray(j, q).indexOf(BACKSLASH);
    if (bs < 0) {
      lastStringEscaped = escaped;
      return q + 1;
    }
    j += bs; // read the escape byte by byte
  }
}

/** `b[j]` is a backslash: the index past the escape sequence, after checking it is one JSON knows. */
function checkEscape(b: Uint8Array, j: number, end: number): number {
  if (j + 1 >= end) throw NEED_MORE;
  const e = b[j + 1]!;
  // " \ / b f n r t
  if (e === QUOTE || e === BACKSLASH || e === 0x2f || e === 0x62 || e === 0x66 || e === 0x6e || e === 0x72 || e === 0x74) return j + 2;
  if (e !== 0x75) throw new JsonSyntaxError(`invalid escape '\\${String.fromCharCode(e)}' in a string`, j);
  for (let k = j + 2; k < j + 6; k++) {
    if (k >= end) throw NEED_MORE;
    if (hexValue(b[k]!) < 0) throw new JsonSyntaxError('invalid \\u escape in a string (4 hex digits expected)', j);
  }
  return j + 6;
}

function hexValue(c: number): number {
  if (c >= ZERO && c <= NINE) return c - ZERO;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}

/** Whether the string `scanString` last read had a backslash. */
export function stringWasEscaped(): boolean {
  return lastStringEscaped;
}

/**
 * `b[i]` is the `{` of an object: the index of its first member's name (an opening quote), or,
 * for an empty object, `~` the index past its `}` (a negative number). With `memberValue` and
 * `nextMember`, the one walk over an object's members:
 * `for (i = firstMember(b, i, end); i >= 0; i = nextMember(b, i, end)) { …name…; i = memberValue(b, i, end); …value… } return ~i;`
 */
export function firstMember(b: Uint8Array, i: number, end: number): number {
  i = skipWs(b, i + 1, end);
  if (i >= end) throw NEED_MORE;
  if (b[i] === RBRACE) return ~(i + 1);
  if (b[i] !== QUOTE) throw unexpected(b, i, 'a member name in double quotes');
  return i;
}

/** `i` is just past a member's value: the index of the next member's name, or `~` the index past the object's `}`. */
export function nextMember(b: Uint8Array, i: number, end: number): number {
  i = skipWs(b, i, end);
  if (i >= end) throw NEED_MORE;
  const sep = b[i];
  if (sep === RBRACE) return ~(i + 1);
  if (sep !== COMMA) throw unexpected(b, i, "',' or '}'");
  i = skipWs(b, i + 1, end);
  if (i >= end) throw NEED_MORE;
  if (b[i] !== QUOTE) throw unexpected(b, i, 'a member name in double quotes');
  return i;
}

/** `i` is just past a member's name: the index of its value, past the `:`. */
export function memberValue(b: Uint8Array, i: number, end: number): number {
  i = skipWs(b, i, end);
  if (i >= end) throw NEED_MORE;
  if (b[i] !== COLON) throw unexpected(b, i, "':' after a member name");
  i = skipWs(b, i + 1, end);
  if (i >= end) throw NEED_MORE;
  return i;
}

type SliceBuffer = Buffer & { utf8Slice(start: number, end: number): string; latin1Slice(start: number, end: number): string };

/**
 * Buffer's own `utf8Slice`/`latin1Slice` skip `toString`'s argument checks, which cost as much as
 * the decoding for short strings. They are not documented, so `toString` stands in if they go.
 */
const slices = typeof (Buffer.prototype as SliceBuffer).utf8Slice === 'function' && typeof (Buffer.prototype as SliceBuffer).latin1Slice === 'function';
const utf8Slice = slices ? (b: Buffer, s: number, e: number) => (b as SliceBuffer).utf8Slice(s, e) : (b: Buffer, s: number, e: number) => b.toString('utf8', s, e);
const latin1Slice = slices ? (b: Buffer, s: number, e: number) => (b as SliceBuffer).latin1Slice(s, e) : (b: Buffer, s: number, e: number) => b.toString('latin1', s, e);

/** UTF-8 text of `b[start, end)` (invalid bytes become U+FFFD). */
export function utf8(b: Buffer, start: number, end: number): string {
  return utf8Slice(b, start, end);
}

/**
 * Like `utf8`, for long texts that are mostly ASCII (a geometry's JSON): checking for ASCII first
 * (SIMD in Node) and then copying bytes as Latin-1 is about twice as fast as decoding UTF-8.
 */
export function longText(b: Buffer, start: number, end: number): string {
  if (end - start >= 64 && isAscii(b.subarray(start, end))) return latin1Slice(b, start, end);
  return utf8Slice(b, start, end);
}

/** ASCII text (numbers, literals) of `b[start, end)`. */
export function ascii(b: Buffer, start: number, end: number): string {
  return latin1Slice(b, start, end);
}

/**
 * The value of the string whose quotes are at `start` and `after - 1` (as `scanString` read it;
 * `escaped` is what `stringWasEscaped()` said then).
 */
export function decodeString(b: Buffer, start: number, after: number, escaped: boolean): string {
  if (!escaped) return utf8(b, start + 1, after - 1);
  let out = '';
  let run = start + 1;
  const last = after - 1;
  for (let j = run; j < last;) {
    if (b[j] !== BACKSLASH) {
      j++;
      continue;
    }
    if (j > run) out += utf8(b, run, j);
    const e = b[j + 1]!;
    switch (e) {
      case 0x62:
        out += '\b';
        break;
      case 0x66:
        out += '\f';
        break;
      case 0x6e:
        out += '\n';
        break;
      case 0x72:
        out += '\r';
        break;
      case 0x74:
        out += '\t';
        break;
      case 0x75:
        out += String.fromCharCode((hexValue(b[j + 2]!) << 12) | (hexValue(b[j + 3]!) << 8) | (hexValue(b[j + 4]!) << 4) | hexValue(b[j + 5]!));
        j += 4;
        break;
      default:
        out += String.fromCharCode(e); // " \ /
    }
    j += 2;
    run = j;
  }
  if (last > run) out += utf8(b, run, last);
  return out;
}

/** Whether the string `b[start, after)` (quotes included, unescaped) is exactly `text` (ASCII). */
export function stringIs(b: Uint8Array, start: number, after: number, text: Uint8Array): boolean {
  if (after - start - 2 !== text.length) return false;
  for (let k = 0; k < text.length; k++) if (b[start + 1 + k] !== text[k]) return false;
  return true;
}

/**
 * `b[i]` starts a number: the index just past it. Needs the byte after the number to know it
 * ended, so a number at `end` is `NEED_MORE` (the streamer puts a newline after the last byte).
 */
export function scanNumber(b: Uint8Array, i: number, end: number): number {
  let c = b[i]!;
  if (c === MINUS) {
    if (++i >= end) throw NEED_MORE;
    c = b[i]!;
  }
  if (c === ZERO) {
    if (++i >= end) throw NEED_MORE;
    c = b[i]!;
  } else if (c > ZERO && c <= NINE) {
    do {
      if (++i >= end) throw NEED_MORE;
      c = b[i]!;
    } while (c >= ZERO && c <= NINE);
  } else throw unexpected(b, i, 'a digit');
  if (c === DOT) {
    if (++i >= end) throw NEED_MORE;
    c = b[i]!;
    if (c < ZERO || c > NINE) throw unexpected(b, i, 'a digit after the decimal point');
    do {
      if (++i >= end) throw NEED_MORE;
      c = b[i]!;
    } while (c >= ZERO && c <= NINE);
  }
  if (c === 0x65 || c === 0x45) {
    if (++i >= end) throw NEED_MORE;
    c = b[i]!;
    if (c === PLUS || c === MINUS) {
      if (++i >= end) throw NEED_MORE;
      c = b[i]!;
    }
    if (c < ZERO || c > NINE) throw unexpected(b, i, 'a digit in the exponent');
    do {
      if (++i >= end) throw NEED_MORE;
      c = b[i]!;
    } while (c >= ZERO && c <= NINE);
  }
  return i;
}

const TRUE = Buffer.from('true');
const FALSE = Buffer.from('false');
const NULL = Buffer.from('null');

/** `b[i]` starts `true`, `false` or `null`: the index past it. */
export function scanLiteral(b: Uint8Array, i: number, end: number): number {
  const c = b[i];
  const word = c === 0x74 ? TRUE : c === 0x66 ? FALSE : c === 0x6e ? NULL : undefined;
  if (!word) throw unexpected(b, i, 'a JSON value');
  for (let k = 0; k < word.length; k++) {
    if (i + k >= end) throw NEED_MORE;
    if (b[i + k] !== word[k]) throw new JsonSyntaxError(`unexpected ${describeByte(b[i + k])} in what looks like '${word.toString()}'`, i + k);
  }
  return i + word.length;
}

/** What closes each open container on `skipValue`'s stack: `}` or `]`. */
let stack = new Uint8Array(64);

function push(depth: number, close: number, at: number): void {
  if (depth === stack.length) {
    if (depth >= MAX_NESTING) throw new JsonSyntaxError(`nested deeper than ${MAX_NESTING} levels`, at);
    const bigger = new Uint8Array(depth * 2);
    bigger.set(stack);
    stack = bigger;
  }
  stack[depth] = close;
}

/**
 * `b[i]` starts a JSON value (no whitespace before it): the index just past the value, after
 * checking its syntax. Iterative (an explicit stack), so deep nesting cannot overflow the call
 * stack. Arrays of numbers without whitespace (GeoJSON coordinates) take a shorter loop.
 */
export function skipValue(b: Buffer, i: number, end: number): number {
  let depth = 0;
  let c: number;
  value: for (;;) {
    if (i >= end) throw NEED_MORE;
    c = b[i]!;
    if (c === LBRACKET) {
      if (++i >= end) throw NEED_MORE;
      c = b[i]!;
      if (c === MINUS || (c >= ZERO && c <= NINE)) {
        // numbers separated by bare commas, as coordinates are written
        for (;;) {
          i = scanNumber(b, i, end);
          c = b[i]!;
          if (c !== COMMA) break;
          if (++i >= end) throw NEED_MORE;
          c = b[i]!;
          if (c !== MINUS && (c < ZERO || c > NINE)) break;
        }
        if (b[i - 1] === COMMA) {
          // a comma, then something other than a number: the general loop reads it
          push(depth++, RBRACKET, i);
          i = skipWs(b, i, end);
          continue value;
        }
        if (c === RBRACKET) i++;
        else push(depth++, RBRACKET, i);
      } else {
        i = skipWs(b, i, end);
        if (i >= end) throw NEED_MORE;
        if (b[i] === RBRACKET) i++;
        else {
          push(depth++, RBRACKET, i);
          continue value;
        }
      }
    } else if (c === LBRACE) {
      i = skipWs(b, i + 1, end);
      if (i >= end) throw NEED_MORE;
      if (b[i] === RBRACE) i++;
      else {
        push(depth++, RBRACE, i);
        i = skipKeyColon(b, i, end);
        continue value;
      }
    } else if (c === QUOTE) {
      i = scanString(b, i, end);
    } else if (c === MINUS || (c >= ZERO && c <= NINE)) {
      i = scanNumber(b, i, end);
    } else {
      i = scanLiteral(b, i, end);
    }
    // after a value: a comma, a closing bracket, or the end of the value we were asked for
    for (;;) {
      if (depth === 0) return i;
      i = skipWs(b, i, end);
      if (i >= end) throw NEED_MORE;
      c = b[i]!;
      const close = stack[depth - 1]!;
      if (c === COMMA) {
        i = skipWs(b, i + 1, end);
        if (close === RBRACE) i = skipKeyColon(b, i, end);
        continue value;
      }
      if (c === close) {
        i++;
        depth--;
        continue;
      }
      throw unexpected(b, i, close === RBRACE ? "',' or '}'" : "',' or ']'");
    }
  }
}

/** `b[i]` should start a member name: the index of the member's value (after `"name" :` and whitespace). */
function skipKeyColon(b: Buffer, i: number, end: number): number {
  if (i >= end) throw NEED_MORE;
  if (b[i] !== QUOTE) throw unexpected(b, i, 'a member name in double quotes');
  i = skipWs(b, scanString(b, i, end), end);
  if (i >= end) throw NEED_MORE;
  if (b[i] !== COLON) throw unexpected(b, i, "':' after a member name");
  i = skipWs(b, i + 1, end);
  if (i >= end) throw NEED_MORE;
  return i;
}

/**
 * The JSON text of `b[start, end)` (a valid value) without the whitespace between tokens: arrays
 * and deep objects kept as text in a column read the same whether the file was pretty-printed or
 * not. The bytes are otherwise untouched (numbers and escapes stay as written).
 */
export function compactJson(b: Buffer, start: number, end: number): string {
  let i = start;
  // fast path: find the first whitespace outside strings; most values have none
  for (; i < end; i++) {
    const c = b[i]!;
    if (c === QUOTE) i = scanString(b, i, end) - 1;
    else if (c === SPACE || c === LF || c === CR || c === TAB) break;
  }
  if (i >= end) return longText(b, start, end);
  const out = Buffer.allocUnsafe(end - start);
  let n = b.copy(out, 0, start, i);
  while (i < end) {
    const c = b[i]!;
    if (c === QUOTE) {
      const after = scanString(b, i, end);
      n += b.copy(out, n, i, after);
      i = after;
    } else {
      if (!(c === SPACE || c === LF || c === CR || c === TAB)) out[n++] = c;
      i++;
    }
  }
  return longText(out, 0, n);
}

// ---------------------------------------------------------------------------------------------
// The streamer

/**
 * How the outer structure of the stream is walked:
 * - `array`: a top-level array; each element goes to `element`.
 * - `object`: a top-level object read member by member; `member()` says whether a member's array
 *   value is streamed element by element (`stream`), kept whole (`keep`), or checked and dropped
 *   (`skip`).
 * - `value`: each top-level value goes to `element` whole.
 * - `lines`: NDJSON; each non-blank line goes to `element` (the line's end is its end).
 */
export type Framing = 'array' | 'object' | 'value' | 'lines';

/** Where the element being read is; one object, reused (do not keep it). */
export interface ElementContext {
  /** 1-based: the element's index in its array, the line number (`lines`), or the value's number (`value`). */
  index: number;
  /** Absolute byte offset of the element's first byte in the stream. */
  offset: number;
  /** `object` framing: the member whose array is being streamed. */
  member: string | undefined;
  /** Absolute offset of `b[0]`: add to an index into `b` for a position in the stream. */
  base: number;
}

export interface StreamHandlers {
  /**
   * Read the element that starts at `b[start]` (no whitespace before it), at most up to `end`;
   * return the index just past it. May throw `NEED_MORE` (called again with more bytes, from the
   * same start) or `JsonSyntaxError`, so it must have no lasting effect until it returns.
   */
  element(b: Buffer, start: number, end: number, ctx: ElementContext): number;
  /** `object` framing: what to do with the member `key` whose value starts with the byte `first`. */
  member?(key: string, first: number, offset: number): 'stream' | 'keep' | 'skip';
  /** A `keep` member's value: a copy of its bytes (valid JSON), and its offset in the stream. */
  kept?(key: string, raw: Buffer, offset: number): void;
  /** `object` framing: a streamed member's array closed. */
  arrayEnd?(key: string): void;
  /** `object` framing: a top-level object closed; `offset` is where it started. */
  objectEnd?(offset: number): void;
}

export interface StreamerOptions {
  /** The file, for messages. */
  name: string;
  framing: Framing;
  /** How messages call an element: `feature`, `element`, `line`. */
  unit: string;
  /** An element (or kept member, or line) larger than this is an error. */
  maxElementBytes: number;
  /** Accept more than one top-level value (GeoJSON text sequences, concatenated JSON). */
  sequence?: boolean;
  /** How messages name element `index` (default: `${unit} ${index}`). */
  describe?: (index: number) => string;
}

const S_START = 0;
const S_ARR_FIRST = 1;
const S_ARR_NEXT = 2;
const S_ARR_ELEM = 3;
const S_OBJ_FIRST = 4;
const S_OBJ_KEY = 5;
const S_OBJ_COLON = 6;
const S_OBJ_VALUE = 7;
const S_OBJ_NEXT = 8;
const S_AFTER_TOP = 9;
const S_VALUE = 10;
const S_LINES = 11;

const BOM = [0xef, 0xbb, 0xbf];
const SENTINEL = Buffer.from('\n');
/** Above this, the buffer kept for one large element is dropped once the element is read. */
const KEEP_WINDOW = 4 * 1024 * 1024;

/** `n` bytes as people say it: `64 MiB`, `512 KiB`, `100 bytes`. */
export function formatBytes(n: number): string {
  if (n >= 1024 * 1024 && n % (1024 * 1024) === 0) return `${n / (1024 * 1024)} MiB`;
  if (n >= 1024 * 1024) return `${(n / (1024 * 1024)).toFixed(1)} MiB`;
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024} KiB`;
  return `${n} bytes`;
}

/**
 * Push parser: `write()` each chunk, then `end()`. Handlers are called synchronously from
 * `write`/`end`; a `ReadError` (file name, element, byte offset in the message) ends the stream.
 */
export class JsonStreamer {
  /** Bytes at hand: `b[pos]` is the first not yet consumed; `b` is a chunk or a view of `win`. */
  private b: Buffer = Buffer.alloc(0);
  private pos = 0;
  /** Absolute offset of `b[0]`. */
  private base = 0;
  /** Storage for bytes kept across chunks. */
  private win: Buffer | undefined;
  private state = S_START;
  /** Do not retry the pending unit before this many bytes are at hand (twice the last attempt). */
  private retryAt = 0;
  private final = false;
  private key = '';
  private action: 'stream' | 'keep' | 'skip' | undefined;
  private streamingMember = false;
  private objectOffset = 0;
  private values = 0;
  private line = 0;
  /** Bytes written so far, and the end of the last one if it stopped inside a UTF-8 sequence. */
  private utf8Seen = 0;
  private utf8Carry: Buffer | undefined;
  private readonly ctx: ElementContext = { index: 0, offset: 0, member: undefined, base: 0 };
  private readonly describe: (index: number) => string;

  constructor(
    private readonly handlers: StreamHandlers,
    private readonly opts: StreamerOptions,
  ) {
    this.describe = opts.describe ?? ((index) => `${opts.unit} ${index}`);
    if (opts.framing === 'lines') this.state = S_LINES;
  }

  /** Bytes read so far. */
  get bytes(): number {
    return this.base + this.b.length - (this.final ? 1 : 0);
  }

  write(chunk: Uint8Array): void {
    if (this.final) throw new Error('JsonStreamer: write after end');
    if (chunk.length === 0) return;
    const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    this.checkUtf8(bytes);
    this.append(bytes);
    if (this.b.length - this.pos < this.retryAt) {
      this.checkLimit();
      return;
    }
    this.run();
  }

  /**
   * JSON is UTF-8 (RFC 8259): a byte that is not (a Latin-1 `é`, a cut sequence) fails the read at
   * its offset, as the CSV path does at its line, rather than becoming U+FFFD in the data. A
   * sequence cut by the chunk's end is judged with the next chunk. SIMD-fast (`isUtf8`).
   */
  private checkUtf8(chunk: Buffer): void {
    let judged = chunk;
    let at = this.utf8Seen;
    if (this.utf8Carry) {
      judged = Buffer.concat([this.utf8Carry, chunk]);
      at -= this.utf8Carry.length;
      this.utf8Carry = undefined;
    }
    this.utf8Seen += chunk.length;
    const complete = completeUtf8Length(judged);
    const whole = judged.subarray(0, complete);
    if (!isUtf8(whole)) {
      const bad = firstInvalidUtf8(whole);
      this.invalidUtf8(at + bad, whole[bad]!);
    }
    if (complete < judged.length) this.utf8Carry = Buffer.from(judged.subarray(complete));
  }

  private invalidUtf8(offset: number, byte: number): never {
    throw new ReadError(`${this.opts.name}: byte ${offset} (0x${byte.toString(16).padStart(2, '0')}) is not UTF-8; JSON is UTF-8 (RFC 8259): export the file as UTF-8`, { file: this.opts.name, offset });
  }

  /** The stream ended: reads what is left (a newline is added so a trailing number or line ends). */
  end(): void {
    if (this.final) return;
    if (this.utf8Carry) this.invalidUtf8(this.utf8Seen - this.utf8Carry.length, this.utf8Carry[0]!);
    this.final = true;
    this.append(SENTINEL);
    this.run();
  }

  private append(chunk: Buffer): void {
    const left = this.b.length - this.pos;
    if (left === 0) {
      this.base += this.b.length;
      this.b = chunk;
      this.pos = 0;
      if (this.win && this.win.length > KEEP_WINDOW) this.win = undefined;
      return;
    }
    const need = left + chunk.length;
    const inWindow = this.win !== undefined && this.b.buffer === this.win.buffer && this.b.byteOffset === this.win.byteOffset;
    if (!this.win || this.win.length < need) {
      // grow fourfold: fewer dead intermediate buffers waiting for the GC than doubling leaves
      const grown = Buffer.allocUnsafe(Math.max(need, Math.min(4 * need, this.opts.maxElementBytes + chunk.length + 1), 64 * 1024));
      this.b.copy(grown, 0, this.pos);
      this.win = grown;
    } else if (!inWindow || this.pos > 0) {
      this.b.copy(this.win, 0, this.pos); // copy() handles the overlap when b is a view of win
    }
    chunk.copy(this.win, left);
    this.base += this.pos;
    this.b = this.win.subarray(0, need);
    this.pos = 0;
  }

  private checkLimit(): void {
    if (this.b.length - this.pos > this.opts.maxElementBytes) this.tooLarge();
  }

  private tooLarge(): never {
    const limit = formatBytes(this.opts.maxElementBytes);
    const offset = this.base + this.pos;
    const what =
      this.state === S_OBJ_VALUE
        ? `member "${this.key}" (from byte ${offset})`
        : this.state === S_LINES
          ? `line ${this.line + 1} (from byte ${offset})`
          : this.state === S_OBJ_KEY || this.state === S_OBJ_FIRST
            ? `a member name (from byte ${offset})`
            : `${this.describe(this.nextIndex())} (from byte ${offset})`;
    throw new ReadError(`${this.opts.name}: ${what} is larger than ${limit}, the limit for one ${this.opts.unit}; is the file what it claims to be?`, {
      file: this.opts.name,
      offset,
      ...(this.state === S_LINES ? { line: this.line + 1 } : {}),
    });
  }

  private nextIndex(): number {
    return this.state === S_VALUE || this.state === S_START ? this.values + 1 : this.ctx.index + (this.state === S_ARR_NEXT ? 0 : 1);
  }

  private run(): void {
    try {
      this.steps();
    } catch (error) {
      if (error === NEED_MORE) {
        if (this.final) return this.ended();
        this.checkLimit();
        this.retryAt = 2 * (this.b.length - this.pos);
        return;
      }
      if (error instanceof JsonSyntaxError) throw this.syntaxError(error);
      throw error;
    }
  }

  /** The state machine; returns only by throwing (`NEED_MORE` when the bytes at hand are used up). */
  private steps(): void {
    const h = this.handlers;
    const limit = this.opts.maxElementBytes;
    for (;;) {
      const b = this.b;
      const n = b.length;
      let i: number;
      switch (this.state) {
        case S_START: {
          i = this.pos;
          if (this.base + i === 0 && this.values === 0) i = this.skipBom(b, i, n);
          i = this.pos = skipTopWs(b, i, n);
          if (i >= n) throw NEED_MORE;
          const c = b[i];
          if (this.opts.framing === 'array') {
            if (c !== LBRACKET) throw unexpected(b, i, "'[' (a JSON array)");
            this.pos = i + 1;
            this.ctx.index = 0;
            this.state = S_ARR_FIRST;
          } else if (this.opts.framing === 'object') {
            if (c !== LBRACE) throw unexpected(b, i, "'{' (a JSON object)");
            this.objectOffset = this.base + i;
            this.pos = i + 1;
            this.state = S_OBJ_FIRST;
          } else this.state = S_VALUE;
          break;
        }
        case S_ARR_FIRST:
        case S_ARR_ELEM: {
          i = this.pos = skipWs(b, this.pos, n);
          if (i >= n) throw NEED_MORE;
          if (this.state === S_ARR_FIRST && b[i] === RBRACKET) {
            this.pos = i + 1;
            this.closeArray();
            break;
          }
          const ctx = this.ctx;
          ctx.index++;
          ctx.offset = this.base + i;
          ctx.base = this.base;
          ctx.member = this.streamingMember ? this.key : undefined;
          let after: number;
          try {
            after = h.element(b, i, Math.min(n, i + limit + 1), ctx);
          } catch (error) {
            ctx.index--;
            throw error;
          }
          this.pos = after;
          this.retryAt = 0;
          this.state = S_ARR_NEXT;
          break;
        }
        case S_ARR_NEXT: {
          i = this.pos = skipWs(b, this.pos, n);
          if (i >= n) throw NEED_MORE;
          const c = b[i];
          if (c === COMMA) {
            this.pos = i + 1;
            this.state = S_ARR_ELEM;
          } else if (c === RBRACKET) {
            this.pos = i + 1;
            this.closeArray();
          } else throw unexpected(b, i, `',' or ']' after ${this.describe(this.ctx.index)}`);
          break;
        }
        case S_OBJ_FIRST:
        case S_OBJ_KEY: {
          i = this.pos = skipWs(b, this.pos, n);
          if (i >= n) throw NEED_MORE;
          if (this.state === S_OBJ_FIRST && b[i] === RBRACE) {
            this.pos = i + 1;
            this.closeObject();
            break;
          }
          if (b[i] !== QUOTE) throw unexpected(b, i, 'a member name in double quotes');
          const after = scanString(b, i, Math.min(n, i + limit));
          this.key = decodeString(b, i, after, lastStringEscaped);
          this.pos = after;
          this.retryAt = 0;
          this.state = S_OBJ_COLON;
          break;
        }
        case S_OBJ_COLON: {
          i = this.pos = skipWs(b, this.pos, n);
          if (i >= n) throw NEED_MORE;
          if (b[i] !== COLON) throw unexpected(b, i, "':' after a member name");
          this.pos = i + 1;
          this.action = undefined;
          this.state = S_OBJ_VALUE;
          break;
        }
        case S_OBJ_VALUE: {
          i = this.pos = skipWs(b, this.pos, n);
          if (i >= n) throw NEED_MORE;
          const action = (this.action ??= h.member ? h.member(this.key, b[i]!, this.base + i) : 'skip');
          if (action === 'stream') {
            if (b[i] !== LBRACKET) throw unexpected(b, i, `an array as the value of "${this.key}"`);
            this.pos = i + 1;
            this.ctx.index = 0;
            this.streamingMember = true;
            this.state = S_ARR_FIRST;
            break;
          }
          const after = skipValue(b, i, Math.min(n, i + limit + 1));
          if (action === 'keep') h.kept?.(this.key, Buffer.from(b.subarray(i, after)), this.base + i);
          this.pos = after;
          this.retryAt = 0;
          this.state = S_OBJ_NEXT;
          break;
        }
        case S_OBJ_NEXT: {
          i = this.pos = skipWs(b, this.pos, n);
          if (i >= n) throw NEED_MORE;
          if (b[i] === COMMA) {
            this.pos = i + 1;
            this.state = S_OBJ_KEY;
          } else if (b[i] === RBRACE) {
            this.pos = i + 1;
            this.closeObject();
          } else throw unexpected(b, i, "',' or '}'");
          break;
        }
        case S_VALUE: {
          i = this.pos = skipTopWs(b, this.pos, n);
          if (i >= n) throw NEED_MORE;
          const ctx = this.ctx;
          ctx.index = this.values + 1;
          ctx.offset = this.base + i;
          ctx.base = this.base;
          ctx.member = undefined;
          const after = h.element(b, i, Math.min(n, i + limit + 1), ctx);
          this.values++;
          this.pos = after;
          this.retryAt = 0;
          this.state = S_AFTER_TOP;
          break;
        }
        case S_AFTER_TOP: {
          i = this.pos = skipTopWs(b, this.pos, n);
          if (i >= n) throw NEED_MORE;
          if (!this.opts.sequence) throw new JsonSyntaxError(`unexpected ${describeByte(b[i])} after the end of the JSON value`, i);
          this.state = S_START;
          break;
        }
        case S_LINES:
          this.lines(b, n);
          break;
      }
    }
  }

  private skipBom(b: Buffer, i: number, n: number): number {
    for (let k = 0; k < 3; k++) {
      if (i + k >= n) {
        if (this.final) return i;
        throw NEED_MORE;
      }
      if (b[i + k] !== BOM[k]) return i;
    }
    return i + 3;
  }

  private closeArray(): void {
    if (this.streamingMember) {
      this.streamingMember = false;
      this.handlers.arrayEnd?.(this.key);
      this.state = S_OBJ_NEXT;
    } else {
      this.values++;
      this.state = S_AFTER_TOP;
    }
  }

  private closeObject(): void {
    this.values++;
    this.state = S_AFTER_TOP;
    this.handlers.objectEnd?.(this.objectOffset);
  }

  /** NDJSON: every complete line at hand. */
  private lines(b: Buffer, n: number): void {
    const h = this.handlers;
    const limit = this.opts.maxElementBytes;
    const ctx = this.ctx;
    for (;;) {
      let start = this.pos;
      if (this.base + start === 0 && this.line === 0) start = this.pos = this.skipBom(b, start, n);
      const nl = b.indexOf(LF, start);
      if (nl < 0) throw NEED_MORE;
      if (nl - start > limit) this.tooLarge();
      const i = skipTopWs(b, start, nl + 1);
      if (i <= nl) {
        ctx.index = this.line + 1;
        ctx.offset = this.base + i;
        ctx.base = this.base;
        ctx.member = undefined;
        let after: number;
        try {
          after = h.element(b, i, nl + 1, ctx);
        } catch (error) {
          if (error === NEED_MORE) throw new JsonSyntaxError('the line ends before the JSON value does', nl);
          throw error;
        }
        after = skipWs(b, after, nl + 1);
        if (after <= nl) throw new JsonSyntaxError(`unexpected ${describeByte(b[after])} after the JSON value`, after);
      }
      this.line++;
      this.pos = nl + 1;
      this.retryAt = 0;
    }
  }

  /** `end()` ran out of bytes: fine between values, truncation anywhere else. */
  private ended(): void {
    const total = this.bytes;
    const state = this.state;
    if (state === S_LINES) return;
    if (state === S_AFTER_TOP) return;
    if ((state === S_START || state === S_VALUE) && this.values > 0 && skipTopWs(this.b, this.pos, this.b.length) >= this.b.length) return;
    const position = { file: this.opts.name, offset: total };
    if ((state === S_START || state === S_VALUE) && this.values === 0) {
      throw new ReadError(`${this.opts.name}: no JSON value in the file (it is empty or only whitespace)`, { file: this.opts.name }); // no place to show
    }
    const at = this.base + this.pos;
    let inside: string;
    if (state === S_ARR_ELEM || state === S_ARR_FIRST || state === S_VALUE) {
      inside = at < total ? `inside ${this.describe(this.nextIndex())}, which starts at byte ${at}` : `after ${this.describe(this.ctx.index)}`;
    } else if (state === S_ARR_NEXT) inside = `after ${this.describe(this.ctx.index)}, before the array closes`;
    else if (state === S_OBJ_VALUE) inside = `inside member "${this.key}", which starts at byte ${at}`;
    else inside = 'before the top-level object closes';
    throw new ReadError(`${this.opts.name}: the file ends at byte ${total} ${inside}: it is truncated or not complete JSON`, position);
  }

  private syntaxError(error: JsonSyntaxError): ReadError {
    const at = this.base + Math.min(error.at, this.b.length - (this.final ? 1 : 0));
    const name = this.opts.name;
    const state = this.state;
    if (state === S_LINES) {
      const lineNo = this.line + 1;
      const column = utf8Chars(this.b, this.pos, error.at) + 1; // in characters, as an editor counts
      return new ReadError(`${name}: line ${lineNo} is not valid JSON: ${error.detail} at column ${column} (byte ${at})`, { file: name, line: lineNo, offset: at }, { cause: error });
    }
    const inElement = state === S_ARR_FIRST || state === S_ARR_ELEM || state === S_VALUE;
    if (inElement) {
      const what = this.describe(this.nextIndex());
      return new ReadError(`${name}: ${what} (from byte ${this.base + this.pos}) is not valid JSON: ${error.detail} at byte ${at}`, { file: name, offset: at }, { cause: error });
    }
    if (state === S_OBJ_VALUE && at > this.base + this.pos) {
      return new ReadError(`${name}: member "${this.key}" (from byte ${this.base + this.pos}) is not valid JSON: ${error.detail} at byte ${at}`, { file: name, offset: at }, { cause: error });
    }
    return new ReadError(`${name}: not valid JSON at byte ${at}: ${error.detail}`, { file: name, offset: at }, { cause: error });
  }
}

/**
 * Where byte `offset` of a file is, as an editor shows it: line and column from 1, the column in
 * characters (a UTF-8 BOM is none; a line ends at LF, CRLF included — a lone CR ends none). The
 * file is read again from its start up to there, only when an error is reported: the reading
 * itself counts nothing.
 */
export async function placeOf(open: () => Promise<AsyncIterable<Uint8Array>>, offset: number): Promise<{ line: number; column: number }> {
  let line = 1;
  let column = 1;
  let read = 0;
  const start: number[] = []; // the file's first bytes: a BOM (EF BB BF) counts as one character, which no editor shows
  for await (const chunk of await open()) {
    const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    for (let i = 0; start.length < 3 && i < b.length; i++) start.push(b[i]!);
    const end = Math.max(0, Math.min(b.length, offset - read));
    const before = b.subarray(0, end);
    let from = 0;
    for (let nl = before.indexOf(LF); nl >= 0; nl = before.indexOf(LF, nl + 1)) {
      line++;
      column = 1;
      from = nl + 1;
    }
    column += utf8Chars(before, from, end);
    read += b.length;
    if (read >= offset) break;
  }
  if (line === 1 && offset >= 3 && start[0] === 0xef && start[1] === 0xbb && start[2] === 0xbf) column--;
  return { line, column };
}

/**
 * A read error at a byte offset, with the line and column of that byte (the file read again to
 * find them, placeOf); the error as it is when it has its line already, or when the file cannot be
 * read again (its byte offset still says where).
 */
export async function withPlace(error: unknown, open: () => Promise<AsyncIterable<Uint8Array>>): Promise<unknown> {
  if (!(error instanceof ReadError) || error.position.offset === undefined || error.position.line !== undefined) return error;
  let place: { line: number; column: number };
  try {
    place = await placeOf(open, error.position.offset);
  } catch {
    return error;
  }
  const placed = new ReadError(`${error.message} (line ${place.line}, column ${place.column})`, { ...error.position, line: place.line }, { cause: error.cause });
  if (error.stack) placed.stack = error.stack.replace(error.message, placed.message);
  return placed;
}
