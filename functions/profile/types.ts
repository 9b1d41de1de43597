/**
 * The shared vocabulary of detection and profiling: what the structure detector finds, what a
 * semantic format is, and what a column profile holds. Detection (`detect.ts`), formats
 * (`formats/`) and the profiler (`profile.ts`) meet here.
 */

import type { TypeDecision } from './column-type.ts';

/** Text encodings the detector can name (and the reader can decode). */
export type Encoding = 'utf-8' | 'utf-16le' | 'utf-16be' | 'windows-1252' | 'iso-8859-1' | 'iso-8859-15' | 'macintosh' | 'cp850';

/** How a CSV-like text file is written. */
export interface Structure {
  encoding: Encoding;
  /** The encoding is the one the pipeline declares (`read.encoding`), not a guess. */
  encodingDeclared?: true;
  /** A byte-order mark was present (and is skipped). */
  bom: boolean;
  lineEnding: '\n' | '\r\n' | '\r';
  delimiter: string;
  /** The quote character, or '' when the file quotes nothing. */
  quote: '"' | "'" | '';
  /** 0-based index of the header line among the file's lines (lines above it are a preamble). */
  headerRow: number;
  /** Lines above the header (titles, notes), as text. */
  preamble: string[];
  header: string[];
  /** Header positions that are blank (a blank heading), 0-based. */
  blankHeaders: number[];
  /** Numbers are written with a decimal comma (`12,5`). */
  decimalComma: boolean;
  /** Physical line (1-based) where the first data record starts. */
  firstDataLine: number;
}

/** One data record as read: its fields and the physical line (1-based) it starts on. */
export interface RecordRow {
  line: number;
  fields: string[];
}

/** The base types, from the most to the least specific. */
export const BASE_TYPES = ['boolean', 'integer', 'number', 'year', 'date', 'datetime', 'datetime_tz', 'time', 'json', 'string'] as const;
export type BaseType = (typeof BASE_TYPES)[number];

export type Locale = 'fr' | 'nl' | 'us';

/**
 * A semantic format: a small declarative unit. Adding one is adding one of these (and a test).
 *
 * @example
 *   { name: 'email', baseType: 'string', test: (v) => EMAIL.test(v), headerHints: ['mail', 'courriel'], threshold: 0.9 }
 */
export interface FormatDefinition {
  /** Stable name, snake_case, as it appears in profiles and the catalog (e.g. `code_postal`). */
  readonly name: string;
  /** The pack that provides it; undefined for the international formats, always on. */
  readonly locale?: Locale;
  /** Base type a column of this format has. */
  readonly baseType: BaseType;
  /** Does one (trimmed, non-empty) value fit the format? Must be fast: it runs on every value. */
  readonly test: (value: string) => boolean;
  /** Header words that make the format more likely (matched on the normalised header). */
  readonly headerHints?: readonly string[];
  /** Share of non-empty values that must pass for the format to be assigned, in (0, 1]. */
  readonly threshold: number;
  /** Header hints are needed to assign it at all (e.g. a bare 5-digit number is not surely a postcode). */
  readonly requiresHeaderHint?: boolean;
  /** The csv-detective format it corresponds to, if any (for the docs and the agreement test). */
  readonly csvDetective?: string;
  readonly description: string;
}

/** What was decided about one column. */
export interface ColumnProfile {
  name: string;
  type: BaseType;
  /** The semantic format, or null. */
  format: string | null;
  /** Confidence in [0, 1]: share of non-empty values that pass, lifted by a matching header. */
  score: number;
  /** The type the column loads as and how its values are read (column-type.ts): what `civic-etl load` and the clean step use. */
  clean: TypeDecision;
  profile: {
    missing: number;
    distinct: number;
    /** `distinct` is a lower bound: counting stopped at the configured cap. */
    distinctCapped: boolean;
    top: { value: string; count: number }[];
    categorical: boolean;
    min?: number | string;
    max?: number | string;
    mean?: number;
    std?: number;
    /** Share of the non-empty values that fit `type` (1: every profiled value). */
    typeShare?: number;
    /** For numeric columns: every value is written as PostgreSQL reads it (no grouping, no decimal comma). */
    plainNumbers?: boolean;
    /** How the dates are written: ISO (`ymd`), day first or month first; min/max are ISO either way. */
    dateOrder?: 'ymd' | 'dmy' | 'mdy';
    minLength?: number;
    maxLength?: number;
    /** [minLon, minLat, maxLon, maxLat] for coordinates and geometries. */
    bbox?: [number, number, number, number];
  };
}
