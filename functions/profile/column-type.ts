/**
 * The one type inference: from a column's written values to the clean type it loads as, and how
 * to read values PostgreSQL cannot read as written (a parse recipe). The profiler (profile.ts)
 * feeds it every profiled value, `civic-etl load` (local/load-file.ts) and the clean step of
 * spreadsheets, JSON and spatial files (clean/columns.ts) a sample of the staged values — so
 * `profile` and `load` decide a column's type the same way. The cast applies the recipe in
 * PostgreSQL (clean/rules.ts: number separators, date patterns), set-based.
 *
 * What a column becomes, narrowest first, when at least `threshold` of its non-empty values fit:
 * - integer (up to 9 digits), bigint (up to 18), numeric: plain numbers as PostgreSQL reads them
 *   (`12`, `-3.5`, `4.63355654586e+007`); a number written with a leading zero (`007`, a postcode)
 *   keeps the column text so no digit is lost;
 * - the same with a recipe: a decimal comma (`3,5`), thousands grouped by `.`, `,`, a space, a
 *   no-break space or `'` (`1.234,56`, `1 234,56`, `1,234.5`) — only when one way of reading the
 *   column fits: a column of `1,234` alone is 1.234 or 1234 (the file's decimal comma, when the
 *   caller knows it, settles that); a value that fits no reading is not guessed;
 * - date, timestamp, timestamptz: ISO as written; day-first / month-first (`13/01/2021`,
 *   `1/15/2021`, unpadded or not, `/` `-` or `.`), dotted (`23.04.13`, always day-first; with a
 *   two-digit year only padded: `1.2.13` is more often a version), two-digit
 *   years (00–68 are 2000–2068, 69–99 are 1969–1999, as POSIX strptime reads `%y`), each with an
 *   optional `h:mi[:ss]` time — only when the column says which order: `01/02/2021` alone reads as
 *   1 February and as 2 January, so a column of such values stays text unless some value has a
 *   day above 12 (the caller may bring that evidence from the whole column: `dateOrder`);
 * - boolean: true/false, t/f, yes/no, y/n, on/off (any case), as PostgreSQL reads them;
 * - else text.
 *
 * Missing-value markers (`MISSING_MARKERS`: `NA`, `N/A`, `NULL`, `NaN`, `-`, `...`, `x`… — what
 * pandas' and readr's readers and the statistics offices' table symbols write for "no value") are
 * not evidence: a column whose other values make it a number or a date reads them as empty
 * (`missing` says which were seen and how often); in any other column they are its values, as
 * written.
 */
import type { ColumnType } from '../../contract/definition.ts';
import type { NumberFormat } from '../../contract/rules.ts';
import { isValidDate } from './formats/helpers.ts';

/** The inference's verdict on one column. */
export interface TypeDecision {
  /** The clean type (integer, bigint, numeric, date, timestamp, timestamptz, boolean, text). */
  type: ColumnType;
  /** How the numbers are written, when PostgreSQL cannot read them as they are. */
  number?: NumberFormat;
  /**
   * How the dates are written, when not ISO: a date pattern (contract/rules.ts: `d/m/yyyy`,
   * `m/d/yyyy h:mi`, `d.m.yy` — `yy` a two-digit year).
   */
  date?: string;
  /** Share of the non-empty values that fit the type (and recipe); 1 for text. */
  share: number;
  /** Why a column that looked typed stayed text (e.g. the date order is ambiguous). */
  note?: string;
  /**
   * Missing-value markers found among a number or date column's values, as written (trimmed),
   * with how many values each: they load as NULL and count as missing.
   */
  missing?: { value: string; count: number }[];
  /** The file declares the type (a DBF field, a GeoPackage column, a Parquet schema) and every value fits it: kept, not inferred. */
  declared?: true;
  /**
   * Dates that read both day-first and month-first in enough of the values seen (the order, if
   * any, comes from the few that read one way only): the column's two readings, so that evidence
   * from values not seen can settle the order — see `settleDateOrder`.
   */
  ambiguous?: { sep: string; yearDigits: 2 | 4; type: ColumnType; dmy: string; mdy: string; share: number };
}

/** Evidence from outside the values seen: the file's decimal mark; the day/month order the whole column shows. */
export interface TypeHints {
  decimalComma?: boolean;
  dateOrder?: 'dmy' | 'mdy';
}

/** The share of non-empty values `civic-etl load` and `civic-etl profile` need by default. */
export const DEFAULT_TYPE_THRESHOLD = 0.99;

/** Number formats other than PostgreSQL's own, in the order ties are settled. */
const SEP_COMMA = 1;
const SEP_DOT = 2;
const SEP_SPACE = 4;
const SEP_APOSTROPHE = 8;
/** Any other character: no number format reads the value. */
const SEP_OTHER = 16;
const SEP_OF: Record<string, number> = { ',': SEP_COMMA, '.': SEP_DOT, ' ': SEP_SPACE, "'": SEP_APOSTROPHE, '': 0 };

const FORMATS: readonly { format: NumberFormat; shape: RegExp; grouped: RegExp; seps: number }[] = [
  numberShape(',', ''),
  numberShape(',', '.'),
  numberShape(',', ' '),
  numberShape(',', "'"),
  numberShape('.', ','),
  numberShape('.', ' '),
  numberShape('.', "'"),
];

function numberShape(decimal: '.' | ',', thousands: NumberFormat['thousands']): (typeof FORMATS)[number] {
  const g = thousands === ' ' ? '[ \\u00a0\\u202f]' : thousands === "'" ? "['\\u2019]" : thousands === '' ? '' : `\\${thousands}`;
  const d = `\\${decimal}`;
  const digits = g ? `(?:\\d{1,3}(?:${g}\\d{3})+|\\d+)` : '\\d+';
  return {
    format: { decimal, thousands },
    // the shape rules.ts's parseNumber accepts (clean/rules.ts): no exponent, groups of three
    shape: new RegExp(`^[+-]?(?:${digits}(?:${d}\\d+)?|${d}\\d+)$`),
    grouped: g ? new RegExp(`\\d${g}\\d{3}`) : /$^/,
    seps: SEP_OF[decimal]! | SEP_OF[thousands]!,
  };
}

const PLAIN_NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const PLAIN_DOT = /^[+-]?(?:\d+\.\d+|\.\d+)$/;
const DOT_GROUPED = /^[+-]?[1-9]\d{0,2}(?:\.\d{3})+$/;
const LEADING_ZERO = /^[+-]?0\d/;
const BOOLEAN = new Set(['true', 'false', 't', 'f', 'yes', 'no', 'y', 'n', 'on', 'off']);

/**
 * What a number or date column may hold for "no value", compared trimmed and ignoring case:
 * pandas' `read_csv` default `na_values` (NA, N/A, #N/A, NULL, NaN, None, <NA>…; not its
 * `-1.#IND`-like spellings, which are C runtime output, not data), readr's `NA`, and the table
 * symbols of official statistics (Destatis, Eurostat, ABS: `...` not yet available, `..` not
 * available, `.` secret or unknown, `-` and its dashes nothing, `x` not meaningful, `/` not
 * reliable enough; the UK GSS's `[c]`, `[x]`, `[z]`, `[u]`, `[w]`; runs of up to five `*`). A marker counts only where the other values make the column a number or a
 * date; anywhere else it is a value.
 */
export const MISSING_MARKERS: readonly string[] = [
  'na',
  'n/a',
  '#n/a',
  '#na',
  '<na>',
  'null',
  'nan',
  '-nan',
  'none',
  '-',
  '\u2013',
  '\u2014',
  '.',
  '..',
  '...',
  '\u2026',
  'x',
  '/',
  // the UK Government Statistical Service's shorthand ([c] confidential, [x] not available, [z]
  // not applicable, [u] low reliability, [w] no or few cases), and runs of asterisks (NASA's GISTEMP)
  '[c]',
  '[x]',
  '[z]',
  '[u]',
  '[w]',
  '*',
  '**',
  '***',
  '****',
  '*****',
];
const MARKERS = new Set(MISSING_MARKERS);
/** A trimmed value that is a missing-value marker (its longest is 5 characters). */
export function isMissingMarker(v: string): boolean {
  if (v.length > 5) return false;
  const c0 = v.charCodeAt(0);
  // none starts with a digit: most short values are settled without a lower-case copy
  return !(c0 >= 48 && c0 <= 57) && MARKERS.has(v.toLowerCase());
}
/** A clean type whose column reads missing-value markers as empty. */
const MARKED_TYPES: ReadonlySet<ColumnType> = new Set(['integer', 'bigint', 'numeric', 'double', 'date', 'timestamp', 'timestamptz']);
/** d/m/y in any order, a 1–4 digit first field, optional time and offset. Groups: a, sep, b, c, time sep, h, mi, ss, fraction, offset. */
const DATE = /^(\d{1,4})([./-])(\d{1,2})\2(\d{1,4})(?:([ T])(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?(Z|[+-]\d{2}(?::?\d{2})?)?$/;

interface DateShape {
  /** `ymd` (a four-digit year first) or `xy` (day and month first, either order). */
  family: 'ymd' | 'xy';
  sep: string;
  yearDigits: 2 | 4;
  /** '' none, else the separator and the parts: ` hm`, `Thms`, ` hmsf`. */
  time: string;
  /** Every value has an offset. */
  offset: boolean;
  /** ISO as PostgreSQL reads it (`yyyy-mm-dd`, `T` or space before a time). */
  iso: boolean;
  count: number;
  dmy: number;
  mdy: number;
  /** Values with a time, or an offset (an ISO column may mix dates and timestamps). */
  timed: number;
  offsets: number;
}

/** The evidence of one column's values: feed it with `add`, read the verdict with `decide`. */
export class TypeEvidence {
  /** Non-empty values seen (missing-value markers included). */
  n = 0;
  /** Missing-value markers seen, by spelling (trimmed): not evidence unless the column stays text. */
  private readonly markers = new Map<string, number>();
  private markerCount = 0;
  private int32 = 0;
  private int64 = 0;
  private plain = 0;
  private leadingZero = false;
  private booleans = 0;
  private readonly formats = FORMATS.map(() => ({ count: 0, fractional: 0, grouped: 0, digits: 0 }));
  private intDigits = 0;
  /** Dot decimals without an exponent (`12.5`): they fit every format with a decimal point. */
  private plainDot = 0;
  /** Of those, `1.234`-like ones: also a grouped integer with a decimal comma. */
  private dotGrouped = 0;
  private dotGroupedDigits = 0;
  private readonly dates = new Map<string, DateShape>();

  /** One value as written (it is trimmed here; empty values are not evidence). */
  add(raw: string): void {
    const v = raw.trim();
    if (v !== '') this.addTrimmed(v);
  }

  /**
   * One trimmed, non-empty value (the profiler's: it trims them already), seen `times` times: the
   * profiler counts a repeated value once it has seen it, and hands the repeats over in one call.
   * The verdict is the same as for `times` calls of one value each.
   */
  addTrimmed(v: string, times = 1): void {
    this.n += times;
    if (isMissingMarker(v)) {
      this.markers.set(v, (this.markers.get(v) ?? 0) + times);
      this.markerCount += times;
      return;
    }
    const c0 = v.charCodeAt(0);
    const numberLike = (c0 >= 48 && c0 <= 57) || c0 === 43 || c0 === 45 || c0 === 46 || c0 === 44;
    if (!numberLike) {
      if (v.length <= 5 && BOOLEAN.has(v.toLowerCase())) this.booleans += times;
      return;
    }
    // digits only (after a sign), without a regular expression: the most common value of all
    const signed = c0 === 43 || c0 === 45 ? 1 : 0;
    let end = signed;
    while (end < v.length) {
      const c = v.charCodeAt(end);
      if (c < 48 || c > 57) break;
      end++;
    }
    if (end === v.length && end > signed) {
      if (v.charCodeAt(signed) === 48 && v.length > signed + 1) this.leadingZero = true;
      const digits = v.length - signed;
      if (digits <= 9) this.int32 += times;
      if (digits <= 18) this.int64 += times;
      this.plain += times;
      if (digits > this.intDigits) this.intDigits = digits;
      return;
    }
    // a dot decimal (`12.5`, `.5`), likewise by hand; exponents and the rest by the expressions below
    if (v.charCodeAt(end) === 46) {
      let f = end + 1;
      while (f < v.length) {
        const c = v.charCodeAt(f);
        if (c < 48 || c > 57) break;
        f++;
      }
      if (f === v.length && f > end + 1) {
        const whole = end - signed;
        this.plain += times;
        this.plainDot += times;
        if (whole > 1 && v.charCodeAt(signed) === 48) this.leadingZero = true;
        // `1.234`: also a grouped integer with a decimal comma
        if (whole >= 1 && whole <= 3 && v.charCodeAt(signed) !== 48 && f - end - 1 === 3) {
          this.dotGrouped += times;
          if (whole + 3 > this.dotGroupedDigits) this.dotGroupedDigits = whole + 3;
        }
        return;
      }
    }
    if (PLAIN_NUMBER.test(v)) {
      this.plain += times;
      if (LEADING_ZERO.test(v)) this.leadingZero = true;
      // a dot decimal fits every format with a decimal point; `1.234` also reads as a grouped integer
      if (PLAIN_DOT.test(v)) {
        this.plainDot += times;
        if (DOT_GROUPED.test(v)) {
          this.dotGrouped += times;
          const digits = v.length - 1 - (c0 === 43 || c0 === 45 ? 1 : 0);
          if (digits > this.dotGroupedDigits) this.dotGroupedDigits = digits;
        }
      }
      return;
    }
    // which separators the value holds: a format is tried only if it has them all
    let seps = 0;
    for (let i = 0; i < v.length; i++) {
      const c = v.charCodeAt(i);
      if (c >= 48 && c <= 57) continue;
      if (c === 44) seps |= SEP_COMMA;
      else if (c === 46) seps |= SEP_DOT;
      else if (c === 32 || c === 0xa0 || c === 0x202f) seps |= SEP_SPACE;
      else if (c === 39 || c === 0x2019) seps |= SEP_APOSTROPHE;
      else if (!(i === 0 && (c === 43 || c === 45))) seps |= SEP_OTHER; // a date's `-` or `/`, a letter…
    }
    let numeric = false;
    for (let i = 0; i < FORMATS.length; i++) {
      const f = FORMATS[i]!;
      if ((seps & ~f.seps) !== 0 || !f.shape.test(v)) continue;
      numeric = true;
      const e = this.formats[i]!;
      e.count += times;
      if (v.includes(f.format.decimal)) e.fractional += times;
      else {
        const digits = v.replace(/\D/g, '').length;
        if (digits > e.digits) e.digits = digits;
      }
      if (f.grouped.test(v)) e.grouped += times;
    }
    if (numeric && LEADING_ZERO.test(v)) this.leadingZero = true;
    if (!numeric) this.addDate(v, times);
  }

  private addDate(v: string, times: number): void {
    // the common case first, without a regular expression: an ISO day yyyy-mm-dd
    if (v.length === 10 && v.charCodeAt(4) === 45 && v.charCodeAt(7) === 45) {
      const y = digits(v, 0, 4);
      const mo = digits(v, 5, 7);
      const d = digits(v, 8, 10);
      if (y >= 0 && mo >= 0 && d >= 0) {
        const s = this.isoShape();
        s.count += times;
        if (isValidDate(y, mo, d)) s.dmy += times;
        return;
      }
    }
    const m = DATE.exec(v);
    if (!m) return;
    const [, a, sep, b, c, tsep, h, mi, ss, frac, offset] = m as unknown as (string | undefined)[];
    let family: DateShape['family'];
    let yearDigits: 2 | 4;
    if (a!.length === 4) {
      if (c!.length > 2) return;
      family = 'ymd';
      yearDigits = 4;
    } else if (a!.length <= 2 && (c!.length === 4 || c!.length === 2)) {
      family = 'xy';
      yearDigits = c!.length as 2 | 4;
      // 1.2.13 is a version number far more often than a date: dotted two-digit years only padded (23.04.13)
      if (sep === '.' && yearDigits === 2 && (a!.length !== 2 || b!.length !== 2)) return;
    } else return;
    if (h !== undefined && (Number(h) > 23 || Number(mi) > 59 || (ss !== undefined && Number(ss) > 59))) return;
    const time = tsep === undefined ? '' : `${tsep}hm${ss === undefined ? '' : 's'}${frac === undefined ? '' : 'f'}`;
    const iso = family === 'ymd' && sep === '-';
    // ISO dates and timestamps (with or without an offset) are one shape: PostgreSQL reads them all
    const key = iso ? 'iso' : `${family}|${sep}|${yearDigits}|${time}|${offset !== undefined}`;
    let s = iso ? this.isoShape() : this.dates.get(key);
    if (!s) {
      s = { family, sep: sep!, yearDigits, time, offset: offset !== undefined, iso, count: 0, dmy: 0, mdy: 0, timed: 0, offsets: 0 };
      this.dates.set(key, s);
    }
    s.count += times;
    if (tsep !== undefined) s.timed += times;
    if (offset !== undefined) s.offsets += times;
    const x = Number(a);
    const y = Number(b);
    if (family === 'ymd') {
      if (isValidDate(x, y, Number(c))) s.dmy += times; // ymd values count once, in `dmy`
      return;
    }
    const year = yearDigits === 4 ? Number(c) : expandYear(Number(c));
    if (isValidDate(year, y, x)) s.dmy += times;
    if (sep !== '.' && isValidDate(year, x, y)) s.mdy += times; // dotted dates are day-first
  }

  private isoShape(): DateShape {
    let s = this.dates.get('iso');
    if (!s) {
      s = { family: 'ymd', sep: '-', yearDigits: 4, time: '', offset: false, iso: true, count: 0, dmy: 0, mdy: 0, timed: 0, offsets: 0 };
      this.dates.set('iso', s);
    }
    return s;
  }

  /** The clean type of the column, and how to read it, given the share of values that must fit. */
  decide(threshold = DEFAULT_TYPE_THRESHOLD, hints: TypeHints = {}): TypeDecision {
    if (this.markerCount > 0 && this.markerCount < this.n) {
      // the other values first: a number or date column reads its markers as empty
      const typed = this.decideOver(this.n - this.markerCount, threshold, hints);
      if (MARKED_TYPES.has(typed.type)) {
        const missing = [...this.markers].map(([value, count]) => ({ value, count })).sort((a, b) => b.count - a.count || (a.value < b.value ? -1 : 1));
        return { ...typed, missing };
      }
    }
    return this.decideOver(this.n, threshold, hints);
  }

  /** The decision over `n` values: the non-marker ones, or all of them (markers then fit no type). */
  private decideOver(n: number, threshold: number, hints: TypeHints): TypeDecision {
    if (n === 0) return { type: 'text', share: 1 };
    const fits = (count: number) => count >= threshold * n;
    const share = (count: number) => Number((count / n).toFixed(4));
    if (!this.leadingZero) {
      if (fits(this.int32)) return { type: 'integer', share: share(this.int32) };
      if (fits(this.int64)) return { type: 'bigint', share: share(this.int64) };
      // whole numbers of more than 18 digits and no decimals: identifiers (a double would merge
      // 12345678901234567891 and …892), kept as written
      if (this.intDigits > 18 && this.plainDot === 0 && fits(this.plain)) return { type: 'text', share: 1, note: 'whole numbers of more than 18 digits: identifiers, kept as written' };
      // `2.644`, `16.893`, `462`: every decimal has three digits after its dot and no integer more
      // than three digits — a count grouped by a dot (2644) reads so too; only the file can tell
      if (fits(this.plain) && this.plainDot > 0 && this.dotGrouped === this.plainDot && this.intDigits <= 3) {
        if (hints.decimalComma !== true) return { type: 'text', share: 1, note: 'numbers readable as decimals and as thousands grouped by a dot (2.644 or 2644)' };
        const digits = Math.max(this.dotGroupedDigits, this.intDigits);
        return { type: digits <= 9 ? 'integer' : 'bigint', number: { decimal: ',', thousands: '.' }, share: share(this.plain) };
      }
      if (fits(this.plain)) return { type: 'numeric', share: share(this.plain) };
      const number = this.decideNumber(n, threshold, hints);
      if (number) return number;
    }
    const date = this.decideDate(n, threshold, hints);
    if (date) return date;
    if (fits(this.booleans)) return { type: 'boolean', share: share(this.booleans) };
    return { type: 'text', share: 1 };
  }

  private decideNumber(n: number, threshold: number, hints: TypeHints): TypeDecision | undefined {
    // plain integers fit every format (grouping is optional)
    const candidates = FORMATS.map((f, i) => {
      const e = this.formats[i]!;
      const dot = f.format.decimal === '.' ? this.plainDot : 0;
      const grouped = f.format.decimal === ',' && f.format.thousands === '.' ? this.dotGrouped : 0;
      return {
        ...f,
        count: e.count + dot + grouped,
        total: e.count + dot + grouped + this.int64,
        fractional: e.fractional + dot,
        grouped: e.grouped + grouped,
        digits: Math.max(e.digits, grouped ? this.dotGroupedDigits : 0),
      };
    }).filter((c) => c.total >= threshold * n && c.count > 0 && (hints.decimalComma !== false || c.format.decimal === '.'));
    // a file that writes a decimal point: `1,2` there is a list or a code, not 1.2
    if (candidates.length === 0) return undefined;
    // one decimal mark: the one all the fitting readings share, else the file's (when known), else none
    const marks = new Set(candidates.map((c) => c.format.decimal));
    let mark: '.' | ',';
    if (marks.size === 1) mark = [...marks][0]!;
    else if (hints.decimalComma !== undefined) mark = hints.decimalComma ? ',' : '.';
    else return { type: 'text', share: 1, note: 'numbers readable with a decimal comma and with a decimal point' };
    const same = candidates.filter((c) => c.format.decimal === mark);
    // the grouping the values show (most grouped values), else none
    const best = same.reduce((a, b) => (b.grouped > a.grouped || (b.grouped === a.grouped && b.total > a.total) ? b : a));
    const chosen = best.grouped > 0 ? best : (same.find((c) => c.format.thousands === '') ?? same.find((c) => c.grouped === 0) ?? best);
    const format = { decimal: mark, thousands: chosen.grouped > 0 ? chosen.format.thousands : '' } as NumberFormat;
    const shareOf = Number((chosen.total / n).toFixed(4));
    if (chosen.fractional === 0) {
      const digits = Math.max(chosen.digits, this.intDigits);
      if (digits <= 9) return { type: 'integer', number: format, share: shareOf };
      if (digits <= 18) return { type: 'bigint', number: format, share: shareOf };
    }
    return { type: 'numeric', number: format, share: shareOf };
  }

  private decideDate(n: number, threshold: number, hints: TypeHints): TypeDecision | undefined {
    let top: DateShape | undefined;
    for (const s of this.dates.values()) if (!top || s.count > top.count) top = s;
    if (!top || top.count < threshold * n) return undefined;
    const share = (count: number) => Number((count / n).toFixed(4));
    if (top.iso) {
      if (top.dmy < threshold * n) return undefined;
      const type: ColumnType = top.offsets > 0 ? 'timestamptz' : top.timed > 0 ? 'timestamp' : 'date';
      return { type, share: share(top.dmy) };
    }
    if (top.offset) return undefined; // an offset on a non-ISO value: not read here
    const type: ColumnType = top.time ? 'timestamp' : 'date';
    const year = top.yearDigits === 4 ? 'yyyy' : 'yy';
    const time = top.time ? `${top.time[0]}h:mi${top.time.includes('s') ? ':ss' : ''}${top.time.includes('f') ? '.ff' : ''}` : '';
    const s = top.sep;
    if (top.family === 'ymd') {
      if (top.dmy < threshold * n) return undefined;
      return { type, date: `yyyy${s}m${s}d${time}`, share: share(top.dmy) };
    }
    const dmy = top.dmy >= threshold * n;
    const mdy = top.mdy >= threshold * n;
    let order: 'dmy' | 'mdy' | undefined = dmy && !mdy ? 'dmy' : mdy && !dmy ? 'mdy' : undefined;
    if (dmy && mdy) {
      // both readings fit enough values: the values that read one way only decide (a day above 12)
      order = hints.dateOrder ?? (top.dmy > top.mdy ? 'dmy' : top.mdy > top.dmy ? 'mdy' : undefined);
      const [d, m] = [`d${s}m${s}${year}${time}`, `m${s}d${s}${year}${time}`];
      const ambiguous = { sep: s, yearDigits: top.yearDigits, type, dmy: d, mdy: m, share: share(Math.min(top.dmy, top.mdy)) };
      if (!order) return { type: 'text', share: 1, note: `ambiguous dates: every value reads day-first and month-first (${d} or ${m})`, ambiguous };
      return { type, date: order === 'dmy' ? d : m, share: share(order === 'dmy' ? top.dmy : top.mdy), ambiguous };
    }
    if (!order) return undefined;
    return { type, date: order === 'dmy' ? `d${s}m${s}${year}${time}` : `m${s}d${s}${year}${time}`, share: share(order === 'dmy' ? top.dmy : top.mdy) };
  }
}

/** The number written with the digits from `start` to `end` (exclusive), or -1 if one is not a digit. */
function digits(v: string, start: number, end: number): number {
  let n = 0;
  for (let i = start; i < end; i++) {
    const d = v.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

/** A two-digit year as POSIX strptime's `%y` reads it: 00–68 → 2000–2068, 69–99 → 1969–1999. */
export function expandYear(yy: number): number {
  return yy < 69 ? 2000 + yy : 1900 + yy;
}

/**
 * A date column whose values read both ways, once the whole column is counted: `dayFirst` values
 * with a first field above 12, `monthFirst` with a second one above 12 — the larger decides; as
 * many of each (none, say) leaves it text.
 */
export function settleDateOrder(d: TypeDecision, dayFirst: number, monthFirst: number): TypeDecision {
  const a = d.ambiguous;
  if (!a) return d;
  if (dayFirst === monthFirst) return { type: 'text', share: 1, note: `ambiguous dates: every value reads day-first and month-first (${a.dmy} or ${a.mdy})`, ambiguous: a };
  const order = dayFirst > monthFirst ? 'dmy' : 'mdy';
  return { type: a.type, date: a[order], share: a.share, ambiguous: a, ...(d.missing ? { missing: d.missing } : {}) };
}

/**
 * What the profile and the load say when number or date columns held missing-value markers:
 * `NA, ... read as missing in 3 columns (120 values)` — the markers by how many values, the
 * columns, the values. Undefined when none did.
 */
export function missingWarning(decisions: readonly (Pick<TypeDecision, 'missing'> | undefined)[]): string | undefined {
  const byMarker = new Map<string, number>();
  let columns = 0;
  let values = 0;
  for (const d of decisions) {
    if (!d?.missing?.length) continue;
    columns++;
    for (const { value, count } of d.missing) {
      byMarker.set(value, (byMarker.get(value) ?? 0) + count);
      values += count;
    }
  }
  if (columns === 0) return undefined;
  const markers = [...byMarker].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map(([m]) => m);
  return `${markers.join(', ')} read as missing in ${columns} column${columns === 1 ? '' : 's'} (${values} value${values === 1 ? '' : 's'})`;
}

/** The inference over a list of values (tests, small inputs). */
export function inferColumnType(values: Iterable<string>, threshold = DEFAULT_TYPE_THRESHOLD, hints: TypeHints = {}): TypeDecision {
  const e = new TypeEvidence();
  for (const v of values) e.add(v);
  return e.decide(threshold, hints);
}

/**
 * The pipeline's width of a clean type: its clean tables keep one type per column whatever the
 * size of a file's numbers (bigint, double precision), so a later file does not re-type them.
 */
export function pipelineType(type: ColumnType): ColumnType {
  return type === 'integer' ? 'bigint' : type === 'numeric' ? 'double' : type;
}

/** How a column's values are read, for people: `decimal "," thousands "."`, or a date pattern (`d/m/yyyy`); '' when as written. */
export function readsOf(how: { number?: NumberFormat; date?: string }): string {
  return how.number ? `decimal "${how.number.decimal}"${how.number.thousands ? ` thousands "${how.number.thousands}"` : ''}` : (how.date ?? '');
}
