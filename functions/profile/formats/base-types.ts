/**
 * Base types of single values, and how a column's type is settled from them.
 *
 * `baseTypeOf` looks at ONE trimmed, non-empty value and returns the MOST SPECIFIC base type it
 * fits. The column logic then folds the value types together with `widen` (a small lattice):
 *
 *     year ⊂ integer ⊂ number ⊂ string
 *     date ⊂ datetime ⊂ datetime_tz ⊂ string
 *     boolean, time, json ⊂ string
 *
 * Decisions, deliberately left to the column logic:
 * - `0` and `1` are `integer`, not `boolean`: a column of 0/1 is boolean only if the profiler says
 *   so (use `booleanValue`, which does read 0/1, to check a column whose values are all 0 or 1).
 * - A four-digit 1000–2999 value is `year` (the most specific type). A column where every value is
 *   a year stays `year`; one more plain integer widens it to `integer`. Counts that happen to lie in
 *   1000–2999 are indistinguishable from years by value: the profiler may require a header hint
 *   (annee, year, jaar, millesime…) before keeping `year`.
 * - `integer` means "castable as is": optional sign, no leading zeros (except `0` itself), at most
 *   18 digits (fits a bigint). `01234` is a code, so `string`; so is a 25-digit identifier.
 *   Numbers with thousands separators are `number` even when integral (`1,234`): they need
 *   `parseNumber` before a cast.
 * - Decimal comma: with `decimalComma: false`, `12,5` is `string` (the file writes `12.5`, so a
 *   comma is a list or text). With `decimalComma: true`, `12,5` and `1.234,5` are numbers, and a
 *   plain dot-decimal `48.8566` is still accepted (files with a decimal comma often carry
 *   coordinates written with a dot). See `parseNumber` for how `1.234` is then read.
 * - `12/01/2024` is a date if it is a real date read day-first OR month-first; `31/12/2024` and
 *   `12/31/2024` are dates, `31/31/2024` is not. `dateOrder` tells which readings are possible, so
 *   the column logic can settle the order from the unambiguous values. `dd.mm.yyyy` is day-first
 *   only.
 * - A naive datetime and one with an offset widen to `datetime_tz` (naive values are then read in
 *   the load's time zone, as PostgreSQL does for `timestamptz`).
 */
import type { BaseType } from '../types.ts';
import { isValidDate, isoDate } from './helpers.ts';

export interface BaseTypeOptions {
  /** Numbers are written with a decimal comma (`Structure.decimalComma`). */
  readonly decimalComma: boolean;
}

// ---------------------------------------------------------------------------------------------
// Numbers

const MAX_INTEGER_DIGITS = 18;
const SIGNED_INTEGER = /^[+-](?:0|[1-9]\d{0,17})$/;
/** Dot decimal; thousands grouped by `,`, space, no-break space, narrow no-break space or `'`. */
const NUMBER_DOT = /^[+-]?(?:(?:0|[1-9]\d*|[1-9]\d{0,2}(?:([, '\u00a0\u202f])\d{3})(?:\1\d{3})*)(?:\.\d+)?|\.\d+)(?:[eE][+-]?\d+)?$/;
/** Dot decimal without grouping (accepted also in decimal-comma files). */
const NUMBER_DOT_PLAIN = /^[+-]?(?:(?:0|[1-9]\d*)(?:\.\d+)?|\.\d+)(?:[eE][+-]?\d+)?$/;
/** Comma decimal; thousands grouped by `.`, space, no-break space, narrow no-break space or `'`. */
const NUMBER_COMMA = /^[+-]?(?:(?:0|[1-9]\d*|[1-9]\d{0,2}(?:([. '\u00a0\u202f])\d{3})(?:\1\d{3})*)(?:,\d+)?|,\d+)(?:[eE][+-]?\d+)?$/;
const GROUPING_DOT = /[, '\u00a0\u202f]/g;
const GROUPING_COMMA = /[. '\u00a0\u202f]/g;

function isNumber(value: string, decimalComma: boolean): boolean {
  return decimalComma ? NUMBER_COMMA.test(value) || NUMBER_DOT_PLAIN.test(value) : NUMBER_DOT.test(value);
}

/**
 * The numeric value of an `integer`, `year` or `number` value, else undefined. With
 * `decimalComma`, a comma is the decimal mark and dots/spaces group thousands (`1.234.567,8`),
 * except that a value with no comma and a single dot is read as a dot decimal (`1.234` → 1.234,
 * `48.8566` → 48.8566): grouping is only assumed when it is unambiguous.
 */
export function parseNumber(value: string, decimalComma: boolean): number | undefined {
  return numberOfType(value, baseTypeOf(value, { decimalComma }), decimalComma);
}

/** `parseNumber` of a value whose `baseTypeOf` the caller knows already (the profiler's hot path: one classification per value). */
export function numberOfType(value: string, type: BaseType, decimalComma: boolean): number | undefined {
  if (type === 'integer' || type === 'year') return Number(value);
  if (type !== 'number') return undefined;
  let s: string;
  if (decimalComma) {
    if (value.indexOf(',') < 0 && NUMBER_DOT_PLAIN.test(value)) s = value;
    else s = value.replace(GROUPING_COMMA, '').replace(',', '.');
  } else {
    s = value.replace(GROUPING_DOT, '');
  }
  const n = Number(s);
  return Number.isFinite(n) ? n : undefined;
}

// ---------------------------------------------------------------------------------------------
// Booleans

const BOOLEANS = new Map<string, boolean>([
  ['true', true],
  ['false', false],
  ['t', true],
  ['f', false],
  ['yes', true],
  ['no', false],
  ['y', true],
  ['n', false],
  ['oui', true],
  ['non', false],
  ['o', true],
  ['vrai', true],
  ['faux', false],
  ['ja', true],
  ['nee', false],
  ['waar', true],
  ['onwaar', false],
]);

/**
 * The truth value of a boolean-looking value (case-insensitive): true/false, t/f, yes/no, y/n,
 * oui/non/o, vrai/faux, ja/nee, waar/onwaar — and also `1`/`0`, which `baseTypeOf` calls integers.
 */
export function booleanValue(value: string): boolean | undefined {
  if (value.length > 6) return undefined;
  if (value === '1') return true;
  if (value === '0') return false;
  return BOOLEANS.get(value.toLowerCase());
}

// ---------------------------------------------------------------------------------------------
// Dates and times

const ORDER_YMD = 4;
const ORDER_DMY = 1;
const ORDER_MDY = 2;

/** What `parseTemporal` read; filled only when asked for. */
interface TemporalParts {
  y: number;
  /** First and second day/month fields as written (month, day for ISO). */
  a: number;
  b: number;
  /** Bit set of ORDER_* readings that give a real date. */
  orders: number;
  hasTime: boolean;
  hh: number;
  mi: number;
  ss: number;
  /** Fraction digits of the seconds, as written ('' if none). */
  frac: string;
  /** Offset in minutes east of UTC, or NaN for a naive value. */
  offset: number;
}

function digit(s: string, i: number): number {
  const d = s.charCodeAt(i) - 48;
  return d >= 0 && d <= 9 ? d : -1;
}

function two(s: string, i: number): number {
  const a = digit(s, i);
  const b = digit(s, i + 1);
  return a < 0 || b < 0 ? -1 : a * 10 + b;
}

/**
 * Read a time `h[h]:mm[:ss[.fff]]` starting at `i`; returns the index after it, or -1. Fills
 * hh/mi/ss/frac when `out` is given.
 */
function readTime(s: string, i: number, out: TemporalParts | undefined): number {
  const n = s.length;
  let h = digit(s, i);
  if (h < 0) return -1;
  i++;
  const d = digit(s, i);
  if (d >= 0) {
    h = h * 10 + d;
    i++;
  }
  if (h > 23 || s.charCodeAt(i) !== 58 /* : */) return -1;
  const mi = two(s, i + 1);
  if (mi < 0 || mi > 59) return -1;
  i += 3;
  let ss = 0;
  let fracStart = 0;
  let fracEnd = 0;
  if (i < n && s.charCodeAt(i) === 58) {
    ss = two(s, i + 1);
    if (ss < 0 || ss > 59) return -1;
    i += 3;
    const c = s.charCodeAt(i);
    if (i < n && (c === 46 /* . */ || c === 44) /* , */) {
      fracStart = i + 1;
      i++;
      while (i < n && digit(s, i) >= 0) i++;
      if (i === fracStart) return -1;
      fracEnd = i;
    }
  }
  if (out) {
    out.hasTime = true;
    out.hh = h;
    out.mi = mi;
    out.ss = ss;
    out.frac = fracEnd > fracStart ? s.slice(fracStart, fracEnd) : '';
  }
  return i;
}

/** Read a UTC offset (`Z`, `±hh`, `±hhmm`, `±hh:mm`) that must end the value; minutes or NaN. */
function readOffset(s: string, i: number): number {
  const n = s.length;
  const c = s.charCodeAt(i);
  if (c === 90 /* Z */ || c === 122 /* z */) return i + 1 === n ? 0 : NaN;
  if (c !== 43 && c !== 45 && c !== 0x2212 /* − */) return NaN;
  const sign = c === 43 ? 1 : -1;
  const h = two(s, i + 1);
  if (h < 0 || h > 23) return NaN;
  let j = i + 3;
  let m = 0;
  if (j < n) {
    if (s.charCodeAt(j) === 58) j++;
    m = two(s, j);
    if (m < 0 || m > 59) return NaN;
    j += 2;
  }
  return j === n ? sign * (h * 60 + m) : NaN;
}

/**
 * Dates and datetimes: ISO `yyyy-mm-dd` (or `yyyy/mm/dd`), `d[d]/m[m]/yyyy` with `/`, `-` or `.`,
 * each optionally followed by `T` or a space and a time, and (then) optionally an offset.
 */
function parseTemporal(s: string, out?: TemporalParts): 'date' | 'datetime' | 'datetime_tz' | undefined {
  const n = s.length;
  if (n < 8) return undefined;
  let p: number;
  let y: number;
  let a: number;
  let b: number;
  let orders: number;
  const c4 = s.charCodeAt(4);
  if ((c4 === 45 || c4 === 47) && s.charCodeAt(7) === c4) {
    const y1 = two(s, 0);
    const y2 = two(s, 2);
    a = two(s, 5);
    b = two(s, 8);
    if (y1 < 0 || y2 < 0 || a < 0 || b < 0) return undefined;
    y = y1 * 100 + y2;
    if (!isValidDate(y, a, b)) return undefined;
    orders = ORDER_YMD;
    p = 10;
  } else {
    // d[d] sep m[m] sep yyyy (or m[m] sep d[d] sep yyyy)
    a = digit(s, 0);
    if (a < 0) return undefined;
    let i = 1;
    let d = digit(s, i);
    if (d >= 0) {
      a = a * 10 + d;
      i++;
    }
    const sep = s.charCodeAt(i);
    if (sep !== 47 && sep !== 45 && sep !== 46) return undefined;
    i++;
    b = digit(s, i);
    if (b < 0) return undefined;
    i++;
    d = digit(s, i);
    if (d >= 0) {
      b = b * 10 + d;
      i++;
    }
    if (s.charCodeAt(i) !== sep) return undefined;
    const y1 = two(s, i + 1);
    const y2 = two(s, i + 3);
    if (y1 < 0 || y2 < 0) return undefined;
    y = y1 * 100 + y2;
    p = i + 5;
    orders = (isValidDate(y, b, a) ? ORDER_DMY : 0) | (sep !== 46 && isValidDate(y, a, b) ? ORDER_MDY : 0);
    if (orders === 0) return undefined;
  }
  if (out) {
    out.y = y;
    out.a = a;
    out.b = b;
    out.orders = orders;
    out.hasTime = false;
    out.hh = out.mi = out.ss = 0;
    out.frac = '';
    out.offset = NaN;
  }
  if (p === n) return 'date';
  const c = s.charCodeAt(p);
  if (c !== 84 /* T */ && c !== 32 && c !== 116 /* t */) return undefined;
  const q = readTime(s, p + 1, out);
  if (q < 0) return undefined;
  if (q === n) return 'datetime';
  const offset = readOffset(s, q);
  if (Number.isNaN(offset)) return undefined;
  if (out) out.offset = offset;
  return 'datetime_tz';
}

/** Which day/month readings a date or datetime value allows. */
export type DateOrder = 'ymd' | 'dmy' | 'mdy' | 'either';

/** `ymd` for ISO values; for `a/b/yyyy` values, which readings give a real date; else undefined. */
export function dateOrder(value: string): DateOrder | undefined {
  const parts = newParts();
  if (!parseTemporal(value, parts)) return undefined;
  if (parts.orders === ORDER_YMD) return 'ymd';
  if (parts.orders === (ORDER_DMY | ORDER_MDY)) return 'either';
  return parts.orders === ORDER_DMY ? 'dmy' : 'mdy';
}

/**
 * `dateOrder(value)` with `parseDate(value, 'dmy')` and `parseDate(value, 'mdy')`, from one
 * parse (the profiler's hot path); undefined when the value is not a date or datetime.
 */
export function dateReadings(value: string): { order: DateOrder; dmy: string | undefined; mdy: string | undefined } | undefined {
  const parts = newParts();
  if (!parseTemporal(value, parts)) return undefined;
  const order: DateOrder = parts.orders === ORDER_YMD ? 'ymd' : parts.orders === (ORDER_DMY | ORDER_MDY) ? 'either' : parts.orders === ORDER_DMY ? 'dmy' : 'mdy';
  const d = ymd(parts, 'dmy');
  const m = ymd(parts, 'mdy');
  return { order, dmy: d && isoDate(d[0], d[1], d[2]), mdy: m && isoDate(m[0], m[1], m[2]) };
}

function newParts(): TemporalParts {
  return { y: 0, a: 0, b: 0, orders: 0, hasTime: false, hh: 0, mi: 0, ss: 0, frac: '', offset: NaN };
}

/** [year, month, day] of parsed parts in the given order, or undefined if that reading is not a date. */
function ymd(parts: TemporalParts, order: 'dmy' | 'mdy'): [number, number, number] | undefined {
  if (parts.orders === ORDER_YMD) return [parts.y, parts.a, parts.b];
  if (order === 'dmy') return parts.orders & ORDER_DMY ? [parts.y, parts.b, parts.a] : undefined;
  return parts.orders & ORDER_MDY ? [parts.y, parts.a, parts.b] : undefined;
}

/**
 * The ISO `yyyy-mm-dd` of a `date` value (or the calendar date of a `datetime` / `datetime_tz`
 * value, as written, offset ignored), for min/max statistics. `order` says how to read `a/b/yyyy`
 * values (settle it per column with `dateOrder`); a value that is not a real date in that order
 * gives undefined. For instants, use `parseDateTime`.
 */
export function parseDate(value: string, order: 'dmy' | 'mdy' = 'dmy'): string | undefined {
  const parts = newParts();
  if (!parseTemporal(value, parts)) return undefined;
  const r = ymd(parts, order);
  return r && isoDate(r[0], r[1], r[2]);
}

/**
 * A `date`, `datetime` or `datetime_tz` value as a sortable ISO string: `yyyy-mm-ddThh:mm:ss[.f]`
 * for naive values (a date alone gets `T00:00:00`), and the UTC instant `yyyy-mm-ddThh:mm:ss.sssZ`
 * for values with an offset.
 */
export function parseDateTime(value: string, order: 'dmy' | 'mdy' = 'dmy'): string | undefined {
  const parts = newParts();
  const type = parseTemporal(value, parts);
  if (!type) return undefined;
  const r = ymd(parts, order);
  if (!r) return undefined;
  const [y, m, d] = r;
  if (type === 'datetime_tz') {
    const ms = parts.frac ? Math.round(Number(`0.${parts.frac}`) * 1000) : 0;
    const exact = new Date(0);
    exact.setUTCFullYear(y, m - 1, d);
    // minutes out of range are carried over by the Date arithmetic
    exact.setUTCHours(parts.hh, parts.mi - parts.offset, parts.ss, ms);
    return exact.toISOString();
  }
  const p2 = (v: number) => (v < 10 ? '0' : '') + v;
  return `${isoDate(y, m, d)}T${p2(parts.hh)}:${p2(parts.mi)}:${p2(parts.ss)}${parts.frac ? '.' + parts.frac : ''}`;
}

const TIME = /^(?:[01]?\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:[.,]\d+)?)?$/;

// ---------------------------------------------------------------------------------------------
// JSON

function isJson(value: string): boolean {
  const first = value.charCodeAt(0);
  const last = value.charCodeAt(value.length - 1);
  if (!((first === 123 && last === 125) || (first === 91 && last === 93))) return false;
  try {
    JSON.parse(value);
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// The classifier

/**
 * The most specific base type of one trimmed, non-empty value. Fast path first: a character
 * dispatch on the first character, regular expressions only where needed, `JSON.parse` only for
 * values that start with `{` or `[` and end with the matching bracket.
 */
export function baseTypeOf(value: string, opts: BaseTypeOptions): BaseType {
  const n = value.length;
  const c0 = value.charCodeAt(0);
  if (c0 >= 48 && c0 <= 57) {
    let i = 1;
    while (i < n) {
      const c = value.charCodeAt(i);
      if (c < 48 || c > 57) break;
      i++;
    }
    if (i === n) {
      if (n === 4 && (c0 === 49 || c0 === 50)) return 'year';
      if (c0 === 48 && n > 1) return 'string';
      return n <= MAX_INTEGER_DIGITS ? 'integer' : 'string';
    }
    const c = value.charCodeAt(i);
    if (c === 58 /* : */) return i <= 2 && TIME.test(value) ? 'time' : 'string';
    if ((c === 45 || c === 47 || c === 46) && (i === 4 || i <= 2)) {
      const t = parseTemporal(value);
      if (t) return t;
    }
    return isNumber(value, opts.decimalComma) ? 'number' : 'string';
  }
  if (c0 === 45 || c0 === 43 || c0 === 46 || c0 === 44) {
    if (n === 1) return 'string';
    if (SIGNED_INTEGER.test(value)) return 'integer';
    return isNumber(value, opts.decimalComma) ? 'number' : 'string';
  }
  if (c0 === 123 || c0 === 91) return isJson(value) ? 'json' : 'string';
  if (n <= 6 && BOOLEANS.has(value.toLowerCase())) return 'boolean';
  return 'string';
}

// ---------------------------------------------------------------------------------------------
// Column logic helpers

const PARENT: Partial<Record<BaseType, BaseType>> = {
  year: 'integer',
  integer: 'number',
  date: 'datetime',
  datetime: 'datetime_tz',
};

function isAncestorOrSelf(ancestor: BaseType, type: BaseType): boolean {
  if (ancestor === 'string') return true;
  for (let t: BaseType | undefined = type; t; t = PARENT[t]) if (t === ancestor) return true;
  return false;
}

/**
 * The narrowest type that holds values of both types: `widen('year', 'integer')` is `integer`,
 * `widen('integer', 'number')` is `number`, `widen('date', 'datetime')` is `datetime`, and
 * anything unrelated (`boolean` + `integer`, `date` + `time`, `json` + …) is `string`.
 */
export function widen(a: BaseType, b: BaseType): BaseType {
  if (a === b) return a;
  for (let t: BaseType | undefined = a; t; t = PARENT[t]) if (isAncestorOrSelf(t, b)) return t;
  return 'string';
}

/** A value of type `value` fits a column of type `column` (`integer` fits `number`, not the reverse). */
export function typeCompatible(value: BaseType, column: BaseType): boolean {
  return isAncestorOrSelf(column, value);
}
