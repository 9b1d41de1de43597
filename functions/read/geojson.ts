/**
 * GeoJSON into one table, streaming feature by feature (see json-scan.ts for the scanner).
 *
 * - A FeatureCollection's `features` are read one at a time; its other members (`type`, `name`,
 *   `crs`, `bbox`…) may come before or after them and are kept (`members`).
 * - A single Feature, a bare geometry, and a GeoJSON text sequence (one Feature per line, or
 *   RS-separated, RFC 8142) are read too: one row per top-level object.
 *
 * Columns: `id` when features have a top-level `id` (`id_2` when a property is named `id`), the
 * properties flattened to dotted names (`flattenDepth`, arrays as JSON text), and `geometry`
 * (`geometry_2` when a property has that name) holding the geometry as hex WKB made from the
 * exact text of the file (or that text itself when it does not convert: geojson-wkb.ts), NULL for
 * a null geometry. Names are chosen from the first
 * features (about 1,000 or 4 MiB) when `readGeoJson` returns; a key first met later is appended
 * then, and one that clashes with `id`/`geometry` gets the `_2` name (with a warning).
 *
 * SRID: from a `crs` member (crs.ts), else undefined (the stage step assumes 4326); the
 * `read.srid` hint overrides both. A `crs` after the features sets `geometry.srid` when it is
 * read, before `rows()` finishes; so does `geometry.type` (the one type seen, or `Geometry`).
 */
import { crsProblem, sridFromCrs } from './crs.ts';
import { geometryBytesToHexWkb, stagedGeometry } from './geojson-wkb.ts';
import { Columns, Flattener, setValue, TooManyColumns, tooManyKeys } from './flatten.ts';
import {
  JsonStreamer,
  JsonSyntaxError,
  compactJson,
  decodeString,
  describeByte,
  firstMember,
  memberValue,
  nextMember,
  scanLiteral,
  scanString,
  skipValue,
  stringIs,
  stringWasEscaped,
  longText,
  type ElementContext,
  type StreamHandlers,
} from './json-scan.ts';
import { GEOMETRY_TYPES, readStart, settingsFrom, streamRows, utf16Problem, type JsonReadOptions, type JsonSettings } from './json.ts';
import { ReadError, type ReadRow, type ReadTable, type SourceGeometry } from './types.ts';

/**
 * The geometry as hex WKB when it converts (PostGIS reads that fastest), else its GeoJSON text,
 * which PostGIS's geometry input reads too: the column's encoding is 'wkb' either way.
 */
function asWkb(text: string): string {
  return stagedGeometry(text);
}

/** The table `readGeoJson` returns: a `ReadTable` that also shows the collection's other members. */
export interface GeoJsonTable extends ReadTable {
  geometry: SourceGeometry;
  /**
   * Members of the top-level FeatureCollection other than `features` (`name`, `crs`, `bbox`…),
   * parsed, as far as the file has been read (members after the features appear once `rows()` has
   * read them).
   */
  members: Record<string, unknown>;
}

/** First features read for the column names. */
const SAMPLE_FEATURES = 1000;
const SAMPLE_BYTES = 4 * 1024 * 1024;
const HEAD_BYTES = 64 * 1024;

const K_PROPERTIES = Buffer.from('properties');
const K_GEOMETRY = Buffer.from('geometry');
const K_ID = Buffer.from('id');
const K_TYPE = Buffer.from('type');
const K_FEATURE = Buffer.from('Feature');

const OTHER = 0;
const PROPERTIES = 1;
const GEOMETRY = 2;
const ID = 3;
const TYPE = 4;

/** Which feature member the key at `b[start, after)` is (escaped keys are decoded first). */
function featureKey(b: Buffer, start: number, after: number, escaped: boolean): number {
  if (escaped) {
    const key = decodeString(b, start, after, true);
    return key === 'properties' ? PROPERTIES : key === 'geometry' ? GEOMETRY : key === 'id' ? ID : key === 'type' ? TYPE : OTHER;
  }
  const len = after - start - 2;
  if (len === 10) return stringIs(b, start, after, K_PROPERTIES) ? PROPERTIES : OTHER;
  if (len === 8) return stringIs(b, start, after, K_GEOMETRY) ? GEOMETRY : OTHER;
  if (len === 2) return stringIs(b, start, after, K_ID) ? ID : OTHER;
  if (len === 4) return stringIs(b, start, after, K_TYPE) ? TYPE : OTHER;
  return OTHER;
}

function isTypeKey(b: Buffer, start: number, after: number, escaped: boolean): boolean {
  return escaped ? decodeString(b, start, after, true) === 'type' : stringIs(b, start, after, K_TYPE);
}

/** The text of a kept scalar (or JSON text of an object/array) as the JSON reader would put it in a column. */
function keptText(raw: Buffer): string | null {
  const c = raw[0];
  if (c === 0x22) return decodeString(raw, 0, raw.length, raw.includes(0x5c));
  if (c === 0x7b || c === 0x5b) return compactJson(raw, 0, raw.length);
  if (c === 0x6e) return null;
  return raw.toString('latin1');
}

/** What the columns are, shared by the passes over one file. */
interface Layout {
  columns: Columns;
  geometry: number;
  /** Reserved the first time a feature has an id. */
  id: number | undefined;
}

/** What the table shows and the passes update. */
interface TableState {
  name: string;
  table: GeoJsonTable;
  settings: JsonSettings;
  srid: number | undefined;
  warn(message: string): void;
}

/**
 * One pass over the file. In `probe` mode (the first features, for the column names) properties
 * go to a scratch column list and geometries are only checked for syntax.
 */
class GeoJsonPass implements StreamHandlers {
  readonly out: ReadRow[] = [];
  /** Features read so far (the position of the last one). */
  position = 0;
  /** Probe mode: some feature had an id. */
  sawId = false;
  /** Geometry types met (not null geometries). */
  readonly types = new Set<string>();
  private readonly flattener: Flattener;
  private readonly depth: number;
  /** The top-level object being read: its kept members, and whether its features were streamed. */
  private members = new Map<string, { raw: Buffer; offset: number }>();
  private streamedFeatures = false;
  private geometryType: string | undefined;

  constructor(
    private readonly state: TableState,
    private readonly layout: Layout,
    private readonly probe: boolean,
  ) {
    this.depth = state.settings.depth;
    this.flattener = new Flattener({ depth: this.depth });
  }

  member(key: string, first: number, offset: number): 'stream' | 'keep' {
    if (key !== 'features') return 'keep';
    if (first !== 0x5b) {
      throw new ReadError(`${this.state.name}: "features" (at byte ${offset}) is ${describeValue(first)}, not an array of features`, { file: this.state.name, offset });
    }
    this.streamedFeatures = true;
    for (const [k, v] of this.members) this.expose(k, v.raw);
    return 'stream';
  }

  kept(key: string, raw: Buffer, offset: number): void {
    this.members.set(key, { raw, offset });
    if (this.streamedFeatures) this.expose(key, raw);
    if (key === 'crs') this.applyCrs(raw, offset);
  }

  private expose(key: string, raw: Buffer): void {
    if (this.probe) return;
    try {
      this.state.table.members[key] = JSON.parse(raw.toString('utf8'));
    } catch {
      this.state.table.members[key] = raw.toString('utf8'); // valid JSON by construction; belt and braces
    }
  }

  private applyCrs(raw: Buffer, offset: number): void {
    let crs: unknown;
    try {
      crs = JSON.parse(raw.toString('utf8'));
    } catch {
      return;
    }
    const srid = sridFromCrs(crs);
    const state = this.state;
    const hinted = state.srid;
    if (srid === undefined) {
      const problem = crsProblem(crs);
      if (problem) state.warn(`${state.name}: ${problem}; ${hinted !== undefined ? `read.srid ${hinted} is used` : 'the coordinates are taken as EPSG:4326 unless read.srid says otherwise'}`);
      return;
    }
    if (hinted !== undefined) {
      if (hinted !== srid) state.warn(`${state.name}: its crs says EPSG:${srid}; read.srid ${hinted} overrides it`);
      return;
    }
    state.table.geometry.srid = srid;
    state.table.geometry.sridFrom = `its crs member (at byte ${offset})`;
  }

  /** A feature of the FeatureCollection. */
  element(b: Buffer, start: number, end: number, ctx: ElementContext): number {
    if (b[start] !== 0x7b) {
      if (b[start] === 0x5d || b[start] === 0x2c) throw new JsonSyntaxError(`expected a feature, found ${describeByte(b[start])}`, start);
      skipValue(b, start, end); // a syntax error first, if it is one
      throw new ReadError(`${this.state.name}: feature ${ctx.index} (at byte ${ctx.offset}) is ${describeValue(b[start]!)}, not a Feature object`, { file: this.state.name, offset: ctx.offset });
    }
    const values: (string | null)[] = [];
    this.geometryType = undefined;
    let after: number;
    try {
      after = this.feature(b, start, end, values, ctx.index, ctx.base);
    } catch (error) {
      if (error instanceof TooManyColumns) throw tooManyKeys(error, this.state.name, 'feature', ctx.index);
      throw error;
    }
    this.commit(values);
    return after;
  }

  /** The members of the Feature at `b[i]` into `values`. */
  private feature(b: Buffer, i: number, end: number, values: (string | null)[], index: number, base: number): number {
    const cols = this.layout.columns;
    for (i = firstMember(b, i, end); i >= 0; i = nextMember(b, i, end)) {
      const keyStart = i;
      i = scanString(b, i, end);
      const which = featureKey(b, keyStart, i, stringWasEscaped());
      i = memberValue(b, i, end);
      const c = b[i]!;
      if (which === PROPERTIES) {
        if (c === 0x7b) i = this.flattener.object(b, i, end, '', this.depth, cols, values);
        else if (c === 0x6e) i = scanLiteral(b, i, end);
        else throw this.featureError(index, base + i, `its properties are ${describeValue(c)}, not an object`, b, i, end);
      } else if (which === GEOMETRY) {
        if (c === 0x7b) {
          if (this.probe) i = skipValue(b, i, end);
          else {
            const fast = geometryBytesToHexWkb(b, i, end);
            if (fast) {
              this.geometryType = fast.type;
              setValue(values, this.layout.geometry, fast.hex);
              i = fast.after;
            } else {
              const after = this.geometry(b, i, end, index, base);
              setValue(values, this.layout.geometry, asWkb(longText(b, i, after)));
              i = after;
            }
          }
        } else if (c === 0x6e) {
          i = scanLiteral(b, i, end);
        } else throw this.featureError(index, base + i, `its geometry is ${describeValue(c)}, not an object or null`, b, i, end);
      } else if (which === TYPE) {
        // a geometry or anything else in place of a Feature would lose its data silently
        const valueStart = i;
        i = c === 0x22 ? scanString(b, i, end) : skipValue(b, i, end);
        if (c !== 0x22 || !stringIs(b, valueStart, i, K_FEATURE)) {
          const type = c === 0x22 ? `"${decodeString(b, valueStart, i, stringWasEscaped())}"` : describeValue(c);
          throw this.featureError(index, base + valueStart, `its type is ${type}, not "Feature"`);
        }
      } else if (which === ID) {
        i = this.flattener.readValue(b, i, end);
        const id = this.flattener.value;
        if (id !== null) {
          if (this.probe) this.sawId = true;
          else setValue(values, (this.layout.id ??= cols.reserve('id')), id);
        }
      } else {
        i = skipValue(b, i, end);
      }
    }
    return ~i;
  }

  /** The geometry object at `b[i]`: checks its syntax and its type; returns the index past it. */
  private geometry(b: Buffer, i: number, end: number, index: number, base: number): number {
    const start = i;
    let type: string | undefined;
    for (i = firstMember(b, i, end); i >= 0; i = nextMember(b, i, end)) {
      const keyStart = i;
      i = scanString(b, i, end);
      const isType = isTypeKey(b, keyStart, i, stringWasEscaped());
      i = memberValue(b, i, end);
      if (isType && b[i] === 0x22) {
        const valueStart = i;
        i = scanString(b, i, end);
        type = decodeString(b, valueStart, i, stringWasEscaped());
      } else i = skipValue(b, i, end);
    }
    if (type === undefined) throw this.featureError(index, base + start, 'its geometry has no "type"');
    if (!GEOMETRY_TYPES.has(type)) throw this.featureError(index, base + start, `its geometry type "${type}" is not a GeoJSON geometry type`);
    this.geometryType = type;
    return ~i;
  }

  /**
   * A ReadError about feature `index`. When the bytes are at hand (`b`, `i`, `end`) the value is
   * first checked for syntax, so broken JSON is reported as such (and an incomplete value waits).
   */
  private featureError(index: number, offset: number, problem: string, b?: Buffer, i?: number, end?: number): ReadError {
    if (b && i !== undefined && end !== undefined) skipValue(b, i, end);
    const what = index > 0 ? `feature ${index}` : 'the Feature';
    return new ReadError(`${this.state.name}: ${what} (at byte ${offset}): ${problem}`, { file: this.state.name, offset });
  }

  private commit(values: (string | null)[]): void {
    this.position++;
    if (this.geometryType !== undefined) this.types.add(this.geometryType);
    if (this.probe) return;
    const n = this.layout.columns.names.length;
    while (values.length < n) values.push(null);
    this.out.push({ values, position: this.position });
  }

  /** A top-level object closed: a FeatureCollection is done; a Feature or a geometry is one row. */
  objectEnd(offset: number): void {
    const kept = this.members;
    this.members = new Map();
    const streamed = this.streamedFeatures;
    this.streamedFeatures = false;
    const typeRaw = kept.get('type')?.raw;
    const type = typeRaw && typeRaw[0] === 0x22 ? (keptText(typeRaw) ?? undefined) : undefined;
    if (streamed) return;
    const name = this.state.name;
    if (type === 'FeatureCollection') {
      throw new ReadError(`${name}: the FeatureCollection (from byte ${offset}) has no "features" member`, { file: name, offset });
    }
    this.geometryType = undefined;
    const values: (string | null)[] = [];
    if (type === 'Feature') {
      this.keptFeature(kept, values);
    } else if (type !== undefined && GEOMETRY_TYPES.has(type)) {
      const raw = bareGeometry(kept);
      if (!this.probe) this.geometry(raw, 0, raw.length, 0, offset);
      setValue(values, this.layout.geometry, asWkb(raw.toString('utf8')));
    } else {
      const what = type === undefined ? 'no "type" member' : `type "${type}"`;
      throw new ReadError(`${name}: not GeoJSON: the top-level object (from byte ${offset}) has ${what}, not FeatureCollection, Feature or a geometry type`, { file: name, offset });
    }
    this.commit(values);
  }

  /** A Feature read member by member at the top level (a lone Feature, or one of a sequence). */
  private keptFeature(kept: Map<string, { raw: Buffer; offset: number }>, values: (string | null)[]): void {
    const index = this.position + 1;
    const props = kept.get('properties');
    if (props) {
      const c = props.raw[0]!;
      if (c === 0x7b) this.flattener.object(props.raw, 0, props.raw.length, '', this.depth, this.layout.columns, values);
      else if (c !== 0x6e) throw this.featureError(index, props.offset, `its properties are ${describeValue(c)}, not an object`);
    }
    const geometry = kept.get('geometry');
    if (geometry) {
      const c = geometry.raw[0]!;
      const fast = c === 0x7b && !this.probe ? geometryBytesToHexWkb(geometry.raw, 0, geometry.raw.length) : undefined;
      if (fast && fast.after === geometry.raw.length) {
        this.geometryType = fast.type;
        setValue(values, this.layout.geometry, fast.hex);
      } else if (c === 0x7b) {
        if (!this.probe) this.geometry(geometry.raw, 0, geometry.raw.length, index, geometry.offset);
        setValue(values, this.layout.geometry, asWkb(geometry.raw.toString('utf8')));
      } else if (c !== 0x6e) throw this.featureError(index, geometry.offset, `its geometry is ${describeValue(c)}, not an object or null`);
    }
    const id = kept.get('id');
    const idText = id ? keptText(id.raw) : null;
    if (idText !== null) {
      if (this.probe) this.sawId = true;
      else setValue(values, (this.layout.id ??= this.layout.columns.reserve('id')), idText);
    }
  }
}

/** The text of a bare geometry read member by member: its members as written, less `crs` (the reader reports the SRID). */
function bareGeometry(kept: Map<string, { raw: Buffer; offset: number }>): Buffer {
  const parts: Buffer[] = [Buffer.from('{')];
  for (const [key, { raw }] of kept) {
    if (key === 'crs') continue;
    if (parts.length > 1) parts.push(Buffer.from(','));
    parts.push(Buffer.from(`${JSON.stringify(key)}:`), raw);
  }
  parts.push(Buffer.from('}'));
  return Buffer.concat(parts);
}

/** What a JSON value starting with byte `c` is, for messages. */
function describeValue(c: number): string {
  if (c === 0x22) return 'a string';
  if (c === 0x5b) return 'an array';
  if (c === 0x7b) return 'an object';
  if (c === 0x74 || c === 0x66) return 'a boolean';
  if (c === 0x6e) return 'null';
  if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return 'a number';
  return `not JSON (${describeByte(c)})`;
}

function streamerFor(state: TableState, pass: GeoJsonPass): JsonStreamer {
  return new JsonStreamer(pass, { name: state.name, framing: 'object', unit: 'feature', maxElementBytes: state.settings.maxElementBytes, sequence: true });
}

/** `n`, or `n_2`, `n_3`… : the first not in `taken`. */
function freeName(name: string, taken: (n: string) => boolean): string {
  if (!taken(name)) return name;
  for (let k = 2; ; k++) if (!taken(`${name}_${k}`)) return `${name}_${k}`;
}

/**
 * The table of a GeoJSON file. `open` gives a fresh stream of the whole file at each call: the
 * first features are read once here for the column names, and `rows()` reads the file again.
 */
export async function readGeoJson(open: () => Promise<AsyncIterable<Uint8Array>>, name: string, opts: JsonReadOptions = {}): Promise<GeoJsonTable> {
  const settings = settingsFrom(name, opts);
  await checkStart(open, name);
  const warnings: string[] = [];
  const table: GeoJsonTable = {
    name,
    format: 'geojson',
    columns: [],
    geometry: { column: 'geometry', encoding: 'wkb', ...(opts.srid !== undefined ? { srid: opts.srid } : {}) },
    unit: 'feature',
    warnings,
    members: {},
    rows: () => rows(),
  };
  const state: TableState = {
    name,
    table,
    settings,
    srid: opts.srid,
    warn(message) {
      if (!warnings.includes(message)) warnings.push(message);
    },
  };

  // the first features: which property names there are, whether features have ids
  const scratch: Layout = { columns: new Columns(), geometry: -1, id: undefined };
  scratch.columns.max = settings.maxColumns;
  const probe = new GeoJsonPass(state, scratch, true);
  const probeStreamer = streamerFor(state, probe);
  for await (const _ of streamRows(open, probeStreamer, probe.out, () => probe.position >= SAMPLE_FEATURES || probeStreamer.bytes >= SAMPLE_BYTES)) void _;

  const keys = scratch.columns.keys();
  const isKey = (n: string) => scratch.columns.has(n);
  const layout: Layout = { columns: new Columns(table.columns), geometry: -1, id: undefined };
  layout.columns.max = settings.maxColumns;
  let geometryName: string;
  try {
    if (probe.sawId) layout.id = layout.columns.reserve(freeName('id', isKey));
    for (const key of keys) layout.columns.indexOf(key);
    geometryName = freeName('geometry', (n) => isKey(n) || n === table.columns[layout.id ?? -1]);
    layout.geometry = layout.columns.reserve(geometryName);
  } catch (error) {
    // the keys of the first features fit, but not with the id and geometry columns
    if (error instanceof TooManyColumns) throw tooManyKeys(error, name, 'feature', probe.position);
    throw error;
  }
  table.geometry.column = geometryName;

  let passes = 0;
  async function* rows(): AsyncGenerator<ReadRow> {
    const pass = new GeoJsonPass(state, layout, false);
    if (passes++ > 0) for (const k of Object.keys(table.members)) delete table.members[k];
    layout.columns.onRename = (key, column) =>
      state.warn(`${name}: the property "${key}" first seen at feature ${pass.position + 1} is in column "${column}": "${key}" is the column of the feature ${key.startsWith('id') ? 'ids' : 'geometries'}`);
    const streamer = streamerFor(state, pass);
    const done = () => {
      const types = [...pass.types];
      if (types.length === 1) table.geometry.type = types[0]!;
      else if (types.length > 1) table.geometry.type = 'Geometry';
    };
    yield* streamRows(open, streamer, pass.out, undefined, done);
  }
  return table;
}

/** A GeoJSON file is one JSON object (or a sequence of them): say so plainly when it is not. */
async function checkStart(open: () => Promise<AsyncIterable<Uint8Array>>, name: string): Promise<void> {
  const head = await readStart(open, HEAD_BYTES);
  let i = head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf ? 3 : 0;
  while (i < head.length && (head[i] === 0x20 || head[i] === 0x0a || head[i] === 0x0d || head[i] === 0x09 || head[i] === 0x1e)) i++;
  if (i >= head.length) throw new ReadError(`${name}: the file is empty: no GeoJSON object`, { file: name, offset: i });
  const utf16 = utf16Problem(head);
  if (utf16) throw new ReadError(`${name}: ${utf16}`, { file: name, offset: 0 });
  if (head[i] !== 0x7b) throw new ReadError(`${name}: not GeoJSON: the file starts with ${describeValue(head[i]!)} at byte ${i}, not an object`, { file: name, offset: i });
}
