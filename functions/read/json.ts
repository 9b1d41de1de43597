/**
 * JSON and NDJSON files into tables, streaming (see json-scan.ts for the scanner).
 *
 * Which rows a file gives:
 * - a top-level array: one row per element; NDJSON: one row per non-blank line;
 * - a top-level object with exactly one member that is an array of objects (`{"data": […]}`,
 *   `{"results": […], "count": 12}`): one row per element of that array (a warning says so);
 * - any other object (or a lone scalar): one row.
 *
 * An object element is one row; nested objects are flattened (flatten.ts); any other element is
 * one column, `value`. Arrays are JSON text, or with `arrays: 'explode'` rows of child tables
 * `<name>#<path>` (`_parent` = the position of the row the array is in, `_index` = 0-based index
 * in the array, then the element's fields); each child table reads the file again in its own pass,
 * so memory stays flat whatever the number of tables.
 *
 * Columns are the keys of the first elements (about the first 1,000 or 4 MiB) when `readJson`
 * returns, and grow when `rows()` meets a new key. In explode mode the whole file is read once up
 * front to find every array path (a child table must exist before its rows do), which also fixes
 * every table's columns before `rows()` runs.
 */
import { readLimits } from '../common/limits.ts';
import { Columns, DEFAULT_FLATTEN_DEPTH, Flattener, setValue, TooManyColumns, tooManyKeys } from './flatten.ts';
import { JsonStreamer, JsonSyntaxError, NEED_MORE, describeByte, scanString, skipValue, skipWs, type ElementContext, type Framing, type StreamHandlers, withPlace } from './json-scan.ts';
import { ReadError, type ReadOptions, type ReadRow, type ReadTable } from './types.ts';

/** Reader options for JSON, NDJSON and GeoJSON. */
export interface JsonReadOptions extends ReadOptions {
  /** One element (array element, line, feature, top-level member) larger than this is an error. Default 64 MiB. */
  maxElementBytes?: number;
  /** NDJSON by name or hint: one record per line, even when there is one line (not an object whose array holds the rows). */
  lines?: boolean;
}

export const DEFAULT_MAX_ELEMENT_BYTES = 64 * 1024 * 1024;

/** Bytes the readers look at to tell array, object and NDJSON apart. */
const HEAD_BYTES = 64 * 1024;
/** The first elements read by `readJson` for the initial columns: this many, or this many bytes. */
const SAMPLE_ROWS = 1000;
const SAMPLE_BYTES = 4 * 1024 * 1024;
/** Pieces handed to the scanner, so the rows of one huge chunk never pile up. */
const PIECE = 1024 * 1024;
/** Arrays nested deeper than this (arrays in elements of arrays…) stay JSON text in explode mode. */
const MAX_EXPLODE_LEVELS = 32;

/** The geometry types GeoJSON defines (RFC 7946 §3.1). */
export const GEOMETRY_TYPES: ReadonlySet<string> = new Set(['Point', 'MultiPoint', 'LineString', 'MultiLineString', 'Polygon', 'MultiPolygon', 'GeometryCollection']);

// ---------------------------------------------------------------------------------------------
// Sniffing

/** Which JSON shape a file's first bytes show (after an optional UTF-8 BOM / whitespace); undefined if not JSON. */
export function sniffJson(head: Buffer): 'geojson' | 'json' | 'ndjson' | undefined {
  const n = head.length;
  let i = head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf ? 3 : 0;
  i = skipWs(head, i, n);
  const first = head[i];
  if (first !== 0x7b && first !== 0x5b) return undefined;
  let end: number | undefined;
  try {
    end = skipValue(head, i, n);
  } catch (error) {
    if (error !== NEED_MORE) return undefined; // not JSON (or broken JSON: the reader will say where)
  }
  const geo = first === 0x7b && looksLikeGeoJson(head, i, n);
  if (end === undefined) return geo ? 'geojson' : 'json';
  let j = end;
  let newline = false;
  for (; j < n && (head[j] === 0x20 || head[j] === 0x0a || head[j] === 0x0d || head[j] === 0x09 || head[j] === 0x1e); j++) {
    if (head[j] === 0x0a || head[j] === 0x1e) newline = true;
  }
  if (j >= n) return geo ? 'geojson' : 'json';
  // another line after a complete first value: NDJSON (the reader names a line that is not JSON)
  if (!newline) return undefined;
  return geo ? 'geojson' : 'ndjson';
}

/**
 * The top-level members of the object at `head[i]` that fit in the head, for the GeoJSON test:
 * a `type` GeoJSON defines (a geometry type only with `coordinates` or `geometries` beside it, a
 * Feature only with `geometry` or `properties`), or a `features` array whose first element is a
 * Feature (the `type` member may come after the features).
 */
function looksLikeGeoJson(head: Buffer, i: number, n: number): boolean {
  const members = headMembers(head, i, n, true);
  const type = members.get('type');
  if (type === 'FeatureCollection') return true;
  if (type === 'Feature') return members.has('geometry') || members.has('properties');
  if (type !== undefined && GEOMETRY_TYPES.has(type)) return members.has('coordinates') || members.has('geometries');
  return type === undefined && members.get('features') === '[Feature';
}

/**
 * Member names of the object at `b[i]` mapped to their string value (`''` for non-strings), as far
 * as the bytes go. With `peekFeatures`, a `features` array maps to `[` + its first element's type.
 */
function headMembers(b: Buffer, i: number, n: number, peekFeatures: boolean): Map<string, string> {
  const members = new Map<string, string>();
  try {
    i = skipWs(b, i + 1, n);
    while (i < n && b[i] === 0x22) {
      const keyAfter = scanString(b, i, n);
      const key = b.toString('utf8', i + 1, keyAfter - 1);
      i = skipWs(b, keyAfter, n);
      if (b[i] !== 0x3a) break;
      i = skipWs(b, i + 1, n);
      const c = b[i];
      if (c === 0x22) {
        const after = scanString(b, i, n);
        members.set(key, b.toString('utf8', i + 1, after - 1));
        i = after;
      } else if (c === 0x5b && key === 'features' && peekFeatures) {
        const e = skipWs(b, i + 1, n);
        const inner = b[e] === 0x7b ? headMembers(b, e, n, false).get('type') : undefined;
        members.set(key, `[${inner ?? ''}`);
        i = skipValue(b, i, n);
      } else {
        members.set(key, '');
        i = skipValue(b, i, n);
      }
      i = skipWs(b, i, n);
      if (b[i] !== 0x2c) break;
      i = skipWs(b, i + 1, n);
    }
  } catch {
    // the head ends inside a member: what was read is all we know
  }
  return members;
}

// ---------------------------------------------------------------------------------------------
// Streaming helpers shared with geojson.ts

/** The first `bytes` bytes of a fresh stream (or all of it), closing the stream. */
export async function readStart(open: () => Promise<AsyncIterable<Uint8Array>>, bytes: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of await open()) {
    parts.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    size += chunk.byteLength;
    if (size >= bytes) break;
  }
  return Buffer.concat(parts);
}

/**
 * The rows a streamer's handlers push into `out`, read from a fresh stream: each piece of input is
 * scanned, its rows yielded, then the next piece is read. Rows before a bad element come out
 * before its error. `stop` (checked between pieces) ends the pass early without `end()`: a sample.
 * `onEnd` runs once the whole stream was read, before the last rows come out.
 */
export async function* streamRows(open: () => Promise<AsyncIterable<Uint8Array>>, streamer: JsonStreamer, out: ReadRow[], stop?: () => boolean, onEnd?: () => void): AsyncGenerator<ReadRow> {
  const source = await open();
  for await (const chunk of source) {
    const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    for (let at = 0; at < bytes.length; at += PIECE) {
      let failure: unknown;
      try {
        streamer.write(at === 0 && bytes.length <= PIECE ? bytes : bytes.subarray(at, at + PIECE));
      } catch (error) {
        failure = error;
      }
      for (let k = 0; k < out.length; k++) yield out[k]!;
      out.length = 0;
      if (failure !== undefined) throw await withPlace(failure, open);
      if (stop?.()) return;
    }
  }
  let failure: unknown;
  try {
    streamer.end();
    onEnd?.();
  } catch (error) {
    failure = error;
  }
  for (let k = 0; k < out.length; k++) yield out[k]!;
  out.length = 0;
  if (failure !== undefined) throw await withPlace(failure, open);
}

/**
 * JSON is UTF-8 (RFC 8259); a UTF-16 file (Windows tools write them) would otherwise fail on its
 * first byte with a puzzling message. Said by its BOM, or by the zero bytes of ASCII text.
 */
export function utf16Problem(head: Buffer): string | undefined {
  const bom = (head[0] === 0xff && head[1] === 0xfe) || (head[0] === 0xfe && head[1] === 0xff);
  const zeros = head.length >= 4 && ((head[0] === 0 && head[2] === 0 && head[1] !== 0) || (head[1] === 0 && head[3] === 0 && head[0] !== 0));
  return bom || zeros ? 'the file is UTF-16 text; JSON must be UTF-8: save it as UTF-8 and upload it again' : undefined;
}

/** Checked reader settings. */
export interface JsonSettings {
  depth: number;
  arrays: 'json' | 'explode';
  maxElementBytes: number;
  /** `read.limits.maxColumns`: the most columns the keys may make. */
  maxColumns: number;
}

export function settingsFrom(name: string, opts: JsonReadOptions): JsonSettings {
  const depth = opts.flattenDepth ?? DEFAULT_FLATTEN_DEPTH;
  if (!Number.isInteger(depth) || depth < 0) throw new ReadError(`${name}: flattenDepth must be a whole number ≥ 0, got ${depth}`, { file: name });
  const maxElementBytes = opts.maxElementBytes ?? DEFAULT_MAX_ELEMENT_BYTES;
  if (!Number.isInteger(maxElementBytes) || maxElementBytes < 1) throw new Error(`maxElementBytes must be a whole number ≥ 1, got ${maxElementBytes}`);
  const arrays = opts.arrays ?? 'json';
  if (arrays !== 'json' && arrays !== 'explode') throw new ReadError(`${name}: arrays must be 'json' or 'explode', got ${String(arrays)}`, { file: name });
  return { depth, arrays, maxElementBytes, maxColumns: readLimits(opts.limits).maxColumns };
}

// ---------------------------------------------------------------------------------------------
// JSON / NDJSON

/** How the rows of a file are found: the framing, and for an object the member whose array holds them. */
interface Layout {
  framing: Framing;
  format: 'json' | 'ndjson';
  /** `object` framing: the member whose array elements are the rows. */
  member?: string;
  warnings: string[];
}

/** One table of the file: the main table (path `''`) or a child table of exploded arrays. */
interface TableModel {
  path: string;
  columns: Columns;
  /** A child table: the path of the table its rows hang from (`''` the main table). */
  ownerPath?: string;
}

/** What every pass over one file shares: the layout, the tables found, the settings. */
interface FileModel {
  name: string;
  open: () => Promise<AsyncIterable<Uint8Array>>;
  layout: Layout;
  settings: JsonSettings;
  /** By path; `''` is the main table. Child tables are added by the discovery pass only. */
  tables: Map<string, TableModel>;
}

/** A child row read from an element, committed (positions assigned) once the element is complete. */
interface PendingRow {
  ordinal: number;
  ownerPath: string;
  ownerOrdinal: number;
  values: (string | null)[];
}

/** The row (or child table row) being filled while an element is read: arrays found in it hang from it. */
interface Owner {
  path: string;
  ordinal: number;
  columns: Columns | null;
  values: (string | null)[] | null;
}

/**
 * One pass over the file, yielding the rows of the table at `target` (`''` the main table, a
 * path for a child table, `null` for the discovery pass: every table's columns, no rows).
 */
class JsonPass implements StreamHandlers {
  readonly out: ReadRow[] = [];
  /** Rows of the main table read so far (for the sample's stop). */
  rowsRead = 0;
  private readonly flattener: Flattener;
  private readonly main: TableModel;
  /** Child table rows counted so far in this pass, by path (for positions). */
  private readonly counts = new Map<string, number>();
  /** Child table rows met in the element being read, by path. */
  private readonly ordinals = new Map<string, number>();
  private readonly pending: PendingRow[] = [];
  private owner: Owner = { path: '', ordinal: 0, columns: null, values: null };
  private level = 0;
  /** Main-table columns already checked for a NUL in their name (those of earlier passes are). */
  private checked: number;

  constructor(
    private readonly model: FileModel,
    private readonly target: string | null,
  ) {
    this.main = model.tables.get('')!;
    this.checked = this.main.columns.names.length;
    this.flattener = new Flattener({ depth: model.settings.depth, ...(model.settings.arrays === 'explode' ? { onArray: this.onArray } : {}) });
  }

  member(key: string): 'stream' | 'skip' {
    return key === this.model.layout.member ? 'stream' : 'skip';
  }

  element(b: Buffer, start: number, end: number, ctx: ElementContext): number {
    const explode = this.model.settings.arrays === 'explode';
    const inMain = this.target === '' || this.target === null;
    if (!inMain && !explode) return skipValue(b, start, end);
    this.ordinals.clear();
    this.pending.length = 0;
    const columns = inMain ? this.main.columns : null;
    const values: (string | null)[] | null = inMain ? [] : null;
    this.owner = { path: '', ordinal: 0, columns, values };
    this.level = 0;
    let after: number;
    try {
      if (b[start] === 0x7b) {
        after = this.flattener.object(b, start, end, '', this.model.settings.depth, columns, values);
      } else if (values && columns) {
        after = this.flattener.readValue(b, start, end);
        // a document that is just `null` holds no record: no row and no column, so staging fails
        // as for `[]` and `{}` ("no fields to load") instead of loading one empty row as if whole
        if (this.model.layout.framing === 'value' && this.flattener.value === null) return after;
        setValue(values, columns.indexOf('value'), this.flattener.value);
      } else {
        after = skipValue(b, start, end);
      }
    } catch (error) {
      if (error instanceof TooManyColumns) throw tooManyKeys(error, this.model.name, this.model.layout.framing === 'lines' ? 'line' : 'element', ctx.index);
      throw error;
    }
    // PostgreSQL's protocol cannot carry a NUL in a name: refused here, where the key's place is known
    for (const names = this.main.columns.names; this.checked < names.length; this.checked++) {
      if (names[this.checked]!.includes('\u0000')) throw new NulKey(names[this.checked]!, this.checked + 1, ctx.offset, ctx.base + after);
    }
    this.commit(ctx.index, values);
    return after;
  }

  /** The element is complete: its rows get their positions and go out. */
  private commit(position: number, values: (string | null)[] | null): void {
    this.rowsRead++;
    if (this.target === '' && values) {
      while (values.length < this.main.columns.names.length) values.push(null);
      this.out.push({ values, position });
    } else if (this.target) {
      const base = this.counts.get(this.target) ?? 0;
      for (const row of this.pending) {
        const parent = row.ownerPath === '' ? position : (this.counts.get(row.ownerPath) ?? 0) + row.ownerOrdinal + 1;
        row.values[0] = String(parent);
        this.out.push({ values: row.values, position: base + row.ordinal + 1 });
      }
    }
    for (const [path, n] of this.ordinals) this.counts.set(path, (this.counts.get(path) ?? 0) + n);
  }

  /** Explode mode: the array at `b[i]`, member `path` of the current owner, as rows of a child table. */
  private readonly onArray = (b: Buffer, i: number, end: number, path: string): number => {
    const owner = this.owner;
    if (this.level >= MAX_EXPLODE_LEVELS) {
      const after = this.flattener.readValue(b, i, end);
      if (owner.values && owner.columns) setValue(owner.values, owner.columns.indexOf(path), this.flattener.value);
      return after;
    }
    const childPath = owner.path === '' ? path : `${owner.path}.${path}`;
    const tables = this.model.tables;
    i = skipWs(b, i + 1, end);
    if (i >= end) throw NEED_MORE;
    if (b[i] === 0x5d) return i + 1;
    let table = tables.get(childPath);
    if (!table && this.target === null) {
      const columns = new Columns();
      columns.reserve('_parent');
      columns.reserve('_index');
      columns.max = this.model.settings.maxColumns;
      table = { path: childPath, columns, ownerPath: owner.path };
      tables.set(childPath, table);
    }
    const rowsWanted = table !== undefined && (this.target === null || this.target === childPath);
    this.level++;
    for (let k = 0; ; k++) {
      const ordinal = this.ordinals.get(childPath) ?? 0;
      this.ordinals.set(childPath, ordinal + 1);
      const columns = rowsWanted ? table!.columns : null;
      const values: (string | null)[] | null = rowsWanted ? [null, String(k)] : null;
      if (values && this.target === childPath) this.pending.push({ ordinal, ownerPath: owner.path, ownerOrdinal: owner.ordinal, values });
      this.owner = { path: childPath, ordinal, columns, values };
      if (b[i] === 0x7b) {
        i = this.flattener.object(b, i, end, '', this.model.settings.depth, columns, values);
      } else if (values && columns) {
        i = this.flattener.readValue(b, i, end);
        setValue(values, columns.indexOf('value'), this.flattener.value);
      } else {
        i = skipValue(b, i, end);
      }
      if (values && columns) while (values.length < columns.names.length) values.push(null);
      this.owner = owner;
      i = skipWs(b, i, end);
      if (i >= end) throw NEED_MORE;
      const c = b[i];
      if (c === 0x5d) break;
      if (c !== 0x2c) throw new JsonSyntaxError(`expected ',' or ']', found ${describeByte(c)}`, i);
      i = skipWs(b, i + 1, end);
      if (i >= end) throw NEED_MORE;
    }
    this.level--;
    return i + 1;
  };
}

/** A file's layout: by its first bytes, and for a top-level object by a scan of its members. */
async function layoutOf(model: Pick<FileModel, 'name' | 'open' | 'settings'>): Promise<Layout> {
  const head = await readStart(model.open, HEAD_BYTES);
  const utf16 = utf16Problem(head);
  if (utf16) throw new ReadError(`${model.name}: ${utf16}`, { file: model.name, offset: 0 });
  const shape = sniffJson(head);
  if (shape === 'ndjson') return { framing: 'lines', format: 'ndjson', warnings: [] };
  let i = head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf ? 3 : 0;
  i = skipWs(head, i, head.length);
  if (head[i] === 0x5b) return { framing: 'array', format: 'json', warnings: [] };
  if (head[i] !== 0x7b) return { framing: 'value', format: 'json', warnings: [] };
  return objectLayout(model);
}

/** Array members of a top-level object, found by a scan of the whole file. */
interface MemberArray {
  key: string;
  elements: number;
  firstIsObject: boolean;
}

/**
 * A top-level object: read once, checking its syntax and noting its array members, to find
 * whether exactly one holds objects (then its elements are the rows). Several objects one after
 * another are NDJSON whose first line was longer than the head.
 */
async function objectLayout(model: Pick<FileModel, 'name' | 'open' | 'settings'>): Promise<Layout> {
  const arrays = new Map<string, MemberArray>();
  const others: string[] = [];
  let objects = 0;
  const handlers: StreamHandlers = {
    member(key, first) {
      if (first === 0x5b) return 'stream';
      others.push(key);
      return 'skip';
    },
    element(b, start, end, ctx) {
      const key = ctx.member!;
      let entry = arrays.get(key);
      if (!entry) arrays.set(key, (entry = { key, elements: 0, firstIsObject: b[start] === 0x7b }));
      const after = skipValue(b, start, end);
      entry.elements = ctx.index;
      return after;
    },
    objectEnd() {
      objects++;
    },
  };
  const streamer = new JsonStreamer(handlers, { name: model.name, framing: 'object', unit: 'element', maxElementBytes: model.settings.maxElementBytes, sequence: true });
  for await (const _ of streamRows(model.open, streamer, [])) void _;
  if (objects > 1) return { framing: 'lines', format: 'ndjson', warnings: [] };
  const ofObjects = [...arrays.values()].filter((a) => a.elements > 0 && a.firstIsObject);
  if (ofObjects.length === 1) {
    const chosen = ofObjects[0]!;
    const rest = [...others, ...[...arrays.keys()].filter((k) => k !== chosen.key)];
    const ignored = rest.length ? `; its other members are not read (${listNames(rest)})` : '';
    return {
      framing: 'object',
      format: 'json',
      member: chosen.key,
      warnings: [`${model.name}: the file is one object; its rows are the ${chosen.elements} elements of its array "${chosen.key}"${ignored}`],
    };
  }
  const warnings =
    ofObjects.length > 1
      ? [
          `${model.name}: the file is one object with ${ofObjects.length} arrays of objects (${listNames(ofObjects.map((a) => a.key))}): read as one row; read.arrays: explode gives each array its own table`,
        ]
      : [];
  return { framing: 'value', format: 'json', warnings };
}

function listNames(names: string[]): string {
  const shown = names.slice(0, 8).map((n) => `"${n}"`);
  return names.length > 8 ? `${shown.join(', ')} and ${names.length - 8} more` : shown.join(', ');
}

function streamerFor(model: FileModel, pass: JsonPass): JsonStreamer {
  const { layout } = model;
  return new JsonStreamer(pass, {
    name: model.name,
    framing: layout.framing,
    unit: layout.framing === 'lines' ? 'line' : 'element',
    maxElementBytes: model.settings.maxElementBytes,
    ...(layout.framing === 'value' ? { describe: () => 'the top-level value' } : {}),
  });
}

async function* passRows(model: FileModel, target: string | null): AsyncGenerator<ReadRow> {
  const pass = new JsonPass(model, target);
  yield* placed(model, streamRows(model.open, streamerFor(model, pass), pass.out));
}

/** A field name holding NUL, met in the element at bytes `from`–`to`; {@link placed} finds its line and column. */
class NulKey extends Error {
  constructor(
    readonly key: string,
    readonly field: number,
    readonly from: number,
    readonly to: number,
  ) {
    super(`field ${field} is named ${JSON.stringify(key)}, with a NUL character`);
  }
}

/** The rows of a pass; a NUL in a field name fails naming the file, line and column of the key. */
async function* placed(model: FileModel, rows: AsyncGenerator<ReadRow>): AsyncGenerator<ReadRow> {
  try {
    yield* rows;
  } catch (error) {
    if (!(error instanceof NulKey)) throw error;
    const shown = JSON.stringify(error.key);
    const at = await nulKeyPlace(model.open, error.from, error.to);
    throw new ReadError(`${model.name}: line ${at.line}, column ${at.column}: field ${error.field} is named ${shown}, with a NUL character, which no PostgreSQL name can hold`, {
      file: model.name,
      line: at.line,
      column: shown,
      offset: at.offset,
    });
  }
}

/**
 * Where the key holding an escaped NUL (`\u0000`) starts in the element at bytes `from`–`to`: the
 * file is read again up to the element's end (only when reporting), counting lines; within the
 * element, the first string holding the escape and followed by `:` is the key (a value may hold
 * one too). Falls back to the element's start. Column in characters, 1-based.
 */
async function nulKeyPlace(open: () => Promise<AsyncIterable<Uint8Array>>, from: number, to: number): Promise<{ line: number; column: number; offset: number }> {
  const pieces: Buffer[] = [];
  let read = 0;
  for await (const chunk of await open()) {
    const b = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    pieces.push(b.subarray(0, Math.max(0, Math.min(b.length, to - read))));
    read += b.length;
    if (read >= to) break;
  }
  const file = Buffer.concat(pieces);
  let key = from;
  for (let i = from, start = -1, nul = false; i < file.length; i++) {
    const c = file[i]!;
    if (start < 0) {
      if (c === 0x22) {
        start = i;
        nul = false;
      }
      continue;
    }
    if (c === 0x5c) {
      if (file.toString('latin1', i + 1, i + 6).toLowerCase() === 'u0000') nul = true;
      i++;
      continue;
    }
    if (c !== 0x22) continue;
    let j = i + 1;
    while (j < file.length && (file[j] === 0x20 || file[j] === 0x09 || file[j] === 0x0a || file[j] === 0x0d)) j++;
    if (nul && file[j] === 0x3a) {
      key = start;
      break;
    }
    start = -1;
  }
  const lineStart = file.lastIndexOf(0x0a, key - 1) + 1;
  let line = 1;
  for (let i = file.indexOf(0x0a); i >= 0 && i < key; i = file.indexOf(0x0a, i + 1)) line++;
  return { line, column: [...file.toString('utf8', lineStart, key)].length + 1, offset: key };
}

/**
 * The tables of a JSON or NDJSON file: the main table first, then (explode mode) one child table
 * per array path, parents before children. `open` gives a fresh stream of the whole file at each call.
 */
export async function readJson(open: () => Promise<AsyncIterable<Uint8Array>>, name: string, opts: JsonReadOptions = {}): Promise<ReadTable[]> {
  const settings = settingsFrom(name, opts);
  const layout: Layout = opts.lines ? { framing: 'lines', format: 'ndjson', warnings: [] } : await layoutOf({ name, open, settings });
  const main: TableModel = { path: '', columns: new Columns() };
  main.columns.max = settings.maxColumns;
  const model: FileModel = { name, open, layout, settings, tables: new Map([['', main]]) };
  if (settings.arrays === 'explode') {
    for await (const _ of passRows(model, null)) void _;
  } else {
    const pass = new JsonPass(model, '');
    const streamer = streamerFor(model, pass);
    const sample = placed(
      model,
      streamRows(open, streamer, pass.out, () => pass.rowsRead >= SAMPLE_ROWS || streamer.bytes >= SAMPLE_BYTES),
    );
    for await (const _ of sample) void _;
  }
  return [...model.tables.values()].map((t) => tableOf(model, t));
}

function tableOf(model: FileModel, t: TableModel): ReadTable {
  const { layout, name } = model;
  const isMain = t.path === '';
  return {
    name: isMain ? name : `${name}#${t.path}`,
    format: layout.format,
    columns: t.columns.names,
    unit: isMain ? (layout.framing === 'lines' ? 'line' : 'element') : 'row',
    ...(isMain ? {} : { parent: t.ownerPath ? `${name}#${t.ownerPath}` : name }),
    warnings: isMain ? [...layout.warnings] : [],
    rows: () => passRows(model, t.path),
  };
}
