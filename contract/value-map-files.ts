/**
 * Reading value map files (CSV, YAML or JSON; the layouts are described in value-maps.ts) into
 * entries, for the loader (load.ts). Apart from value-maps.ts so that what runs in a Lambda, whose
 * bundled definition already carries every map's entries, does not load the YAML and CSV parsers.
 */
import { readFileSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node as YamlNode } from 'yaml';
import { descriptorName, mapKey, ValueMapError, type ValueMapEntry } from './value-maps.ts';

/**
 * Read a map file. `shownAs` is how messages name it (the path as written in the definition).
 *
 * @example
 *   readValueMapFile('/repo/pipelines/schools/maps/attendance.csv', 'maps/attendance.csv')
 *   // → [{ source: 'uri://ed-fi.org/AttendanceEventCategoryDescriptor#Excused Absence', constant: 'Excused Absence', line: 2 }, …]
 */
export function readValueMapFile(path: string, shownAs = path): ValueMapEntry[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new ValueMapError(`cannot read the value map: ${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}`, shownAs);
  }
  return parseValueMap(text, shownAs);
}

/** Parse the text of a map file; its extension (`.csv`, `.yaml`, `.yml`, `.json`) says how. */
export function parseValueMap(text: string, file: string): ValueMapEntry[] {
  const ext = extname(file).toLowerCase();
  if (ext === '.csv') return entriesFromRows(csvRows(text, file), file);
  if (ext === '.yaml' || ext === '.yml' || ext === '.json') return yamlEntries(text, file);
  throw new ValueMapError('a value map must be a .csv, .yaml, .yml or .json file', file);
}

/**
 * Fill in the entries of each `valueMaps[]` item that names a `file` (relative to `baseDir`, the
 * pipeline file's folder) and has no `entries` yet. Works on the raw input, before the schema:
 * problems reading a file are returned (`valueMap "x" → file: …`) and that map gets no entries.
 */
export function resolveValueMapFiles(input: unknown, baseDir: string): { input: unknown; problems: string[] } {
  const maps = (input as { valueMaps?: unknown } | null)?.valueMaps;
  if (!Array.isArray(maps)) return { input, problems: [] };
  const problems: string[] = [];
  const resolved = maps.map((item: unknown, i) => {
    const m = item as { name?: unknown; file?: unknown; entries?: unknown } | null;
    if (typeof m?.file !== 'string' || m.entries !== undefined) return item;
    try {
      return { ...m, entries: readValueMapFile(resolve(baseDir, m.file), m.file) };
    } catch (error) {
      if (!(error instanceof ValueMapError)) throw error;
      problems.push(`${typeof m.name === 'string' ? `valueMap "${m.name}"` : `valueMap #${i + 1}`} → file: ${error.message}`);
      return { ...m, entries: [] };
    }
  });
  return { input: { ...(input as object), valueMaps: resolved }, problems };
}

/** A row of a map file: its fields by (normalised) column name, and its line. */
interface MapRow {
  fields: Map<string, string>;
  line: number;
}

/** `constantName`, `Constant Name`, `constant_name` are one column. */
const fieldName = (s: string) => s.toLowerCase().replace(/[^a-z0-9]/g, '');

/** Rows of either layout → entries; the header (or the first row's keys) says which layout. */
function entriesFromRows(rows: readonly MapRow[], file: string, headerLine = 1, header?: readonly string[]): ValueMapEntry[] {
  const names = new Set(header?.map(fieldName) ?? rows.flatMap((r) => [...r.fields.keys()]));
  const edFi = ['constantname', 'descriptor', 'codevalue'].every((n) => names.has(n));
  if (!edFi && !(names.has('source') && names.has('constant'))) {
    throw new ValueMapError(
      `a value map needs the columns source and constant, or the Ed-Fi descriptor map columns constantName, descriptor and codeValue (found: ${[...names].join(', ') || 'none'})`,
      file,
      headerLine,
    );
  }
  const entries: ValueMapEntry[] = [];
  for (const { fields, line } of rows) {
    const get = (name: string, shown: string) => {
      const value = fields.get(name);
      if (value === undefined || mapKey(value) === '') throw new ValueMapError(`${shown} is empty`, file, line);
      return value;
    };
    if (!edFi) {
      entries.push({ source: get('source', 'source'), constant: get('constant', 'constant').trim(), line });
      continue;
    }
    const constant = get('constantname', 'constantName').trim();
    const codeValue = get('codevalue', 'codeValue').trim();
    const descriptor = descriptorName(get('descriptor', 'descriptor'));
    if (descriptor === '') throw new ValueMapError('descriptor has no name (expected AddressTypeDescriptor or uri://ed-fi.org/AddressTypeDescriptor)', file, line);
    entries.push({ source: codeValue, constant, descriptor, line });
  }
  return entries;
}

function csvRows(text: string, file: string): MapRow[] {
  let records: { record: string[]; info: { lines: number } }[];
  try {
    records = parseCsv(text, { bom: true, info: true, skip_empty_lines: true, relax_column_count: true }) as unknown as typeof records;
  } catch (cause) {
    const line = (cause as { lines?: number }).lines;
    throw new ValueMapError(`not valid CSV: ${(cause as Error).message}`, file, line);
  }
  if (records.length === 0) throw new ValueMapError('the value map is empty (it needs a header row)', file);
  // info.lines is the line a record ends on; a quoted field with line breaks started earlier
  const startLine = (r: (typeof records)[number]) => r.info.lines - r.record.reduce((n, f) => n + (f.match(/\n/g)?.length ?? 0), 0);
  const header = records[0]!.record.map(fieldName);
  return records.slice(1).map((r) => ({ fields: new Map(header.map((h, i) => [h, r.record[i] ?? ''])), line: startLine(r) }));
}

/** A YAML or JSON map: a list of rows (either layout) or a mapping `source: constant`. Every scalar read as text. */
function yamlEntries(text: string, file: string): ValueMapEntry[] {
  const lines = new LineCounter();
  // failsafe: `007`, `yes` and `1.0` stay the text they are, as in a CSV file
  const doc = parseDocument(text, { schema: 'failsafe', lineCounter: lines });
  const error = doc.errors[0];
  if (error) throw new ValueMapError(`not valid ${file.toLowerCase().endsWith('.json') ? 'JSON' : 'YAML'}: ${error.message.split('\n')[0]}`, file, error.linePos?.[0].line);
  const lineOf = (node: YamlNode | null | undefined) => lines.linePos(node?.range?.[0] ?? 0).line;
  const text_ = (node: unknown, line: number, what: string): string => {
    if (isScalar(node) && typeof node.value === 'string') return node.value;
    throw new ValueMapError(`${what} must be a single value`, file, line);
  };
  const root = doc.contents;
  if (isMap(root)) {
    return root.items.map((pair) => {
      const line = lineOf(pair.key as YamlNode);
      const source = text_(pair.key, line, 'a source value');
      const constant = text_(pair.value, line, `the constant of "${source}"`);
      if (mapKey(source) === '') throw new ValueMapError('source is empty', file, line);
      if (constant.trim() === '') throw new ValueMapError(`the constant of "${source}" is empty`, file, line);
      return { source, constant: constant.trim(), line };
    });
  }
  if (isSeq(root)) {
    const rows = root.items.map((item) => {
      const line = lineOf(item as YamlNode);
      if (!isMap(item)) throw new ValueMapError('each row of a value map must be a mapping (source, constant or constantName, descriptor, codeValue)', file, line);
      const fields = new Map(item.items.map((p) => [fieldName(text_(p.key, line, 'a field name')), text_(p.value, lineOf(p.key as YamlNode), 'a field')]));
      return { fields, line };
    });
    return entriesFromRows(rows, file, rows[0]?.line ?? 1);
  }
  if (root === null) return [];
  throw new ValueMapError('a value map must be a list of rows or a mapping of source values to constants', file, lineOf(root as YamlNode));
}
