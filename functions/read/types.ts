/**
 * Readers for files that are not plain CSV: spreadsheets, JSON, GeoJSON, shapefiles, GeoPackage, Parquet.
 *
 * CSV keeps its own byte path (csv.ts finds the records, functions/stage passes them to COPY,
 * rewriting only those COPY would read differently). Every other format is
 * read by a reader into rows of text, which the stage step encodes for COPY into the same kind of
 * staging table (text columns, `_source_line`, lineage). Geometry travels as text PostGIS reads
 * (GeoJSON, hex WKB or WKT) in one column; the clean step turns it into `geometry` in the target
 * SRID. Every reader streams: memory does not grow with the number of rows.
 */
import { PermanentError } from '../common/errors.ts';
import type { ReadLimits } from '../common/limits.ts';

/** What a reader found the file to be. */
export type SourceFormat = 'csv' | 'xlsx' | 'xls' | 'ods' | 'json' | 'ndjson' | 'geojson' | 'shapefile' | 'gpkg' | 'parquet';

/** How a reader writes geometry values into the geometry column. */
export type GeometryEncoding = 'geojson' | 'wkb' | 'wkt';

export interface SourceGeometry {
  /** Name of the column (in `ReadTable.columns`) that holds the geometry text. */
  column: string;
  /** `geojson`: a GeoJSON geometry object as JSON text; `wkb`: hex (E)WKB; `wkt`: (E)WKT. */
  encoding: GeometryEncoding;
  /**
   * SRID of the source coordinates when the file says it (`.prj`, GeoJSON `crs`, GeoPackage
   * `gpkg_spatial_ref_sys`). `undefined` when the file says nothing: GeoJSON then means 4326.
   * A reader may only learn it at the end of the file (a GeoJSON `crs` member after the
   * features): it then sets it before `rows()` finishes.
   */
  srid?: number;
  /** Where the file says `srid`, for messages: `its crs member (at byte 12)`. */
  sridFrom?: string;
  /** Geometry type the file declares (`Point`, `MultiPolygon`…), when it declares one. */
  type?: string;
  /**
   * The coordinate system as the file words it, when it names one the reader could not turn into
   * an SRID (an ESRI `.prj` without authority, a GeoPackage system of another organisation): the
   * load identifies it by its parameters against PostGIS's spatial_ref_sys (clean/source-srid.ts).
   */
  crs?: { wkt: string; name?: string; /** Where the file words it (`its .prj`), for messages. */ from?: string };
}

/** A column type a file can declare (the names are the clean step's column types). */
export type DeclaredType = 'text' | 'integer' | 'bigint' | 'numeric' | 'double' | 'date' | 'timestamp' | 'timestamptz' | 'boolean';

/** One record: values aligned with `ReadTable.columns` at the time it is yielded. */
export interface ReadRow {
  /**
   * Text values; `null` is a missing value (SQL NULL), `''` an empty string. May be shorter than
   * `columns` (missing trailing values are NULL).
   */
  values: (string | null)[];
  /**
   * Where the record is in the file, 1-based, for lineage and messages: the row number in a sheet,
   * the feature index in a GeoJSON/shapefile/GeoPackage layer, the line in NDJSON, the element
   * index in a JSON array.
   */
  position: number;
}

/** One table in a file: a sheet, a layer, an archive member, a JSON array, a child table. */
export interface ReadTable {
  /**
   * How to name it in messages and in the ledger: the file name, then `!member` for an archive
   * member, `#sheet`/`#layer` for a sheet or layer, `#path` for a child table of JSON arrays.
   */
  name: string;
  format: SourceFormat;
  /**
   * Column headings as the source names them (dotted paths for flattened JSON). A reader may
   * append new names while `rows()` runs (a JSON object with a key no earlier one had): rows
   * yielded after that carry values for them. Names are never removed or reordered.
   */
  columns: string[];
  geometry?: SourceGeometry;
  /**
   * A child table of exploded JSON arrays: the name of the table its rows hang from (the main
   * table's, or another child table's); its `_parent` column holds that table's row positions.
   */
  parent?: string;
  /** What the position counts, for messages: `row`, `feature`, `line`, `element`. */
  unit: 'row' | 'feature' | 'line' | 'element';
  /** Things worth telling the user that did not stop the read (merged header cells, skipped title rows…). */
  warnings: string[];
  /**
   * Column types the file itself declares (a shapefile's DBF field descriptors, a Parquet schema), aligned with
   * `columns`, once `rows()` has been read to the end: a type only where the file declares one
   * and every value read fits it, else `undefined` (the load then chooses the type from the
   * staged values, as for any file). Readers of files that declare no types leave it out.
   */
  declaredTypes?: () => (DeclaredType | undefined)[];
  /** The records, once. Throws a `ReadError` on bad input. */
  rows(): AsyncIterable<ReadRow>;
}

/**
 * Bad input, with where it is: the file (or `archive!member`), and the row/feature/line or byte
 * offset. Staging records it in the ledger and rolls back the load. The message itself names
 * the file and the position, so it reads well on its own.
 */
export class ReadError extends PermanentError {
  override name = 'ReadError';
  constructor(
    message: string,
    override readonly position: { file: string; line?: number; column?: string; offset?: number },
    options?: ErrorOptions,
  ) {
    super(message, position, options);
  }
}

/** Reader options, from the dataset's read hints. */
export interface ReadOptions {
  /** Spreadsheets: sheet name or 0-based index (default: the first sheet). */
  sheet?: string | number;
  /** Spreadsheets, GeoPackage: layer/table name (GeoPackage default: every feature/attribute table). */
  layer?: string;
  /** JSON: nested objects flattened to dotted names down to this depth (default 3); deeper values stay JSON text. */
  flattenDepth?: number;
  /** JSON: arrays kept as JSON text (default) or exploded into a child table `<name>#<path>`. */
  arrays?: 'json' | 'explode';
  /** Text encoding for DBF attributes when there is no `.cpg` (default: detected). */
  encoding?: string;
  /** Source SRID to assume when the file declares none. */
  srid?: number;
  /** What the readers take from one file before refusing it (common/limits.ts; default `DEFAULT_READ_LIMITS`). */
  limits?: Partial<ReadLimits>;
}

/** A file past one of the read limits: a permanent error naming the file, the position and the limit (`read.limits.<name>`). */
export function beyondLimit(file: string, what: string, limit: keyof ReadLimits, value: number, position: { line?: number; column?: string } = {}): ReadError {
  return new ReadError(`${file}: ${what}, beyond the limit of ${value.toLocaleString('en-US')} (read.limits.${limit}): refused`, { file, ...position });
}
