/**
 * Value maps: files, versioned next to the pipeline definition, that map the codes a source uses
 * (`EXA`, `uri://district.example.org/AttendanceEventCategoryDescriptor#EXA`, `excused`) to the
 * constants views filter on (`Excused Absence`). Two layouts, in CSV, YAML or JSON:
 *
 * - a simple table of `source` → `constant` rows (in YAML/JSON also a plain mapping `EXA: Excused Absence`);
 * - the Ed-Fi descriptor map layout (the Analytics Middle Tier's `descriptor_map.json` as
 *   published), rows of `constantName`, `descriptor` (a bare name, `AddressTypeDescriptor`, or
 *   a namespace, `uri://ed-fi.org/AddressTypeDescriptor`) and `codeValue` (`Work`, or an
 *   installation's own `EXA`). A row is keyed on (descriptor name, code value): one code value
 *   may map to different constants under different descriptors. The clean step matches a
 *   descriptor URI `uri://…/<Descriptor>#<code>` by its name and code, and a bare code by the
 *   descriptor its column names (see functions/clean/value-maps.ts).
 *
 * Reading a file (value-map-files.ts) yields plain `{source, constant, line}` entries; the loader
 * puts them into the definition, so the runtime (and the definition bundled into each Lambda) never
 * reads map files — nor loads the YAML and CSV parsers that read them.
 * Nothing here knows about the pipeline schema: definition.ts imports this, not the reverse.
 */

/**
 * One source value and the constant it maps to; `line` is the 1-based line of its row in the map
 * file. An Ed-Fi descriptor map row has a `descriptor` (its bare name, `AddressTypeDescriptor`)
 * and `source` is its code value: the entry is keyed on (descriptor, code value), so "Work" can
 * be an address type and an e-mail type in one map.
 */
export interface ValueMapEntry {
  source: string;
  constant: string;
  descriptor?: string;
  line?: number;
}

/**
 * The bare name of a descriptor as a map or the data write it: `AddressTypeDescriptor`,
 * `uri://ed-fi.org/AddressTypeDescriptor`, `uri://ed-fi.org/AddressTypeDescriptor#` all give
 * `AddressTypeDescriptor`. The namespace is not part of the match (a district's own
 * `uri://district.example.org/AddressTypeDescriptor#Work` is still an address type).
 */
export function descriptorName(value: string): string {
  const trimmed = value.trim().replace(/#.*$/, '');
  return trimmed.slice(trimmed.lastIndexOf('/') + 1);
}

/** The key an entry is unique on: its descriptor (lower-cased, empty for a plain map) and its source value as {@link mapKey} compares it. */
export function entryKey(e: Pick<ValueMapEntry, 'source' | 'descriptor'>): string {
  return `${(e.descriptor ?? '').toLowerCase()}\u0000${mapKey(e.source)}`;
}

/** A map file that cannot be read or does not have a map's shape; the message names the file and line. */
export class ValueMapError extends Error {
  override name = 'ValueMapError';
  constructor(
    message: string,
    readonly file: string,
    readonly line?: number,
  ) {
    super(line === undefined ? `${file}: ${message}` : `${file} line ${line}: ${message}`);
  }
}

/** Whitespace trimmed around source values: spaces, tabs, line breaks and no-break spaces (spreadsheets). */
export const MAP_TRIM = ' \t\r\n\u00a0';

/**
 * The form in which source values are compared: trimmed and lower-cased. The clean step compares
 * the same way in PostgreSQL (`lower(btrim(v, …) COLLATE "und-x-icu")`, Unicode's case mapping
 * like JavaScript's), so what validation calls one value is one value at load time too.
 */
export function mapKey(value: string): string {
  let start = 0;
  let end = value.length;
  while (start < end && MAP_TRIM.includes(value[start]!)) start++;
  while (end > start && MAP_TRIM.includes(value[end - 1]!)) end--;
  return value.slice(start, end).toLowerCase();
}

/**
 * Conflicting entries: one source value (compared as {@link mapKey} does) mapped to two
 * constants. Each problem names both rows; repeating an entry with the same constant is fine.
 * `file` names where the entries came from (inline entries are named by their index).
 */
export function mapConflicts(entries: readonly ValueMapEntry[], file?: string): string[] {
  const where = (e: ValueMapEntry, i: number) => (e.line !== undefined ? `${file ?? 'entries'} line ${e.line}` : `entries[${i}]`);
  const first = new Map<string, number>();
  const problems: string[] = [];
  entries.forEach((e, i) => {
    // an Ed-Fi descriptor may belong to several constants (the AMT's DescriptorMap is many-to-many):
    // the clean step gives the column the narrowest (functions/clean/value-maps.ts)
    if (e.descriptor !== undefined) return;
    const key = entryKey(e);
    const j = first.get(key);
    if (j === undefined) first.set(key, i);
    else if (entries[j]!.constant !== e.constant) {
      const a = entries[j]!;
      problems.push(
        `${where(e, i)}: ${e.descriptor ? `${e.descriptor} ` : ''}"${e.source}" maps to "${e.constant}", but ${where(a, j)} maps ${a.source === e.source ? 'it' : `"${a.source}"`} to "${a.constant}"` +
          ' (source values are compared ignoring case and surrounding spaces)',
      );
    }
  });
  return problems;
}

/** Whether a definition (not yet validated) names map files still to be read: an item of `valueMaps` with a `file` and no `entries`. */
export function hasValueMapFilesToRead(input: unknown): boolean {
  const maps = (input as { valueMaps?: unknown } | null)?.valueMaps;
  return Array.isArray(maps) && maps.some((m: unknown) => typeof (m as { file?: unknown } | null)?.file === 'string' && (m as { entries?: unknown }).entries === undefined);
}
