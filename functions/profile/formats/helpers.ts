/**
 * Small, allocation-light helpers shared by the format packs. Everything here runs on every
 * value of every column, so each function rejects early and avoids regular expressions where a
 * character loop is as clear.
 */

const COMBINING_MARKS = /[\u0300-\u036f]/g;
const NON_ALNUM = /[^a-z0-9]+/g;
const NON_ASCII = /[^\x00-\x7f]/;

let foldIn = '';
let foldOut = '';

/**
 * Fold a text for case- and accent-insensitive comparison: lower-case, accents removed, ligatures
 * spelled out, every run of non-alphanumerics turned into one space, trimmed.
 * `"Côte-d'Or"` → `"cote d or"`, `"Œuvre"` → `"oeuvre"`.
 *
 * The profiler runs every format on the same value in turn, and several formats fold it: the last
 * result is remembered, so a value is folded once.
 */
export function fold(value: string): string {
  if (value === foldIn) return foldOut;
  const out = foldUncached(value);
  foldIn = value;
  foldOut = out;
  return out;
}

function foldUncached(value: string): string {
  // fast path: ASCII letters and digits separated by single spaces
  let upper = false;
  let space = true;
  const n = value.length;
  let i = 0;
  for (; i < n; i++) {
    const c = value.charCodeAt(i);
    if ((c >= 97 && c <= 122) || (c >= 48 && c <= 57)) space = false;
    else if (c >= 65 && c <= 90) {
      upper = true;
      space = false;
    } else if (c === 32 && !space) space = true;
    else break;
  }
  if (i === n && !space) return upper ? value.toLowerCase() : value;
  let s = value.toLowerCase();
  if (NON_ASCII.test(s)) {
    s = s.replace(/œ/g, 'oe').replace(/æ/g, 'ae').replace(/ß/g, 'ss').normalize('NFD').replace(COMBINING_MARKS, '');
  }
  return s.replace(NON_ALNUM, ' ').trim();
}

/** Build a lookup set of folded names (and their aliases). */
export function foldedSet(names: Iterable<string>): ReadonlySet<string> {
  const set = new Set<string>();
  for (const name of names) set.add(fold(name));
  return set;
}

/** A name matcher: folded equality against a list, with cheap length and first-character pre-filters. */
export function nameMatcher(names: Iterable<string>): (value: string) => boolean {
  const set = foldedSet(names);
  let max = 0;
  let min = Infinity;
  for (const n of set) {
    max = Math.max(max, n.length);
    min = Math.min(min, n.length);
  }
  // allow room for punctuation and accents that folding removes (or adds: œ → oe)
  const limit = max + 8;
  const floor = Math.max(1, min - 2);
  return (value: string) => {
    if (value.length > limit || value.length < floor) return false;
    // names start with a letter (ASCII or not); digits and punctuation are rejected at once
    return startsWithLetter(value) && set.has(fold(value));
  };
}

/** The value starts with a letter, ASCII or not (a cheap filter before folding). */
export function startsWithLetter(value: string): boolean {
  const c = value.charCodeAt(0);
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c >= 0xc0;
}

export function isDigit(code: number): boolean {
  return code >= 48 && code <= 57;
}

/** All characters of `value` in [from, to) are ASCII digits. */
export function allDigits(value: string, from = 0, to = value.length): boolean {
  if (from >= to) return false;
  for (let i = from; i < to; i++) {
    const c = value.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/** Luhn check over a string of ASCII digits (no separators). */
export function luhn(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

/** Remove plain spaces (used by identifiers that are often written in groups: `123 456 789`). */
export function stripSpaces(value: string): string {
  return value.indexOf(' ') < 0 ? value : value.replace(/ /g, '');
}

let numberIn = '';
let numberOut: number | undefined;
let numberDecimal = false;

/**
 * Parse a plain number: optional sign, digits, at most one decimal separator (dot or comma)
 * followed by digits. Remembers the last value (several coordinate formats read the same one).
 */
function readLoose(value: string): void {
  if (value === numberIn) return;
  numberIn = value;
  numberOut = undefined;
  numberDecimal = false;
  const n = value.length;
  let i = 0;
  let c = value.charCodeAt(0);
  if (c === 45 || c === 43) {
    i = 1;
    c = value.charCodeAt(1);
  }
  const start = i;
  while (i < n && (c = value.charCodeAt(i)) >= 48 && c <= 57) i++;
  if (i === start) return;
  let sep = -1;
  if (i < n) {
    if (c !== 46 && c !== 44) return;
    sep = i;
    i++;
    const frac = i;
    while (i < n && (c = value.charCodeAt(i)) >= 48 && c <= 57) i++;
    if (i === frac || i < n) return;
  }
  numberDecimal = sep >= 0;
  numberOut = Number(sep >= 0 && value.charCodeAt(sep) === 44 ? value.replace(',', '.') : value);
}

/**
 * A plain number as it appears in coordinate columns: optional sign, digits, and at most one
 * decimal separator that may be a dot or a comma. No thousands separators, no exponent.
 */
export function looseNumber(value: string): number | undefined {
  readLoose(value);
  return numberOut;
}

/** Like {@link looseNumber} but the value must have a decimal part (`48.85`, `2,35`, not `48`). */
export function decimalNumber(value: string): number | undefined {
  readLoose(value);
  return numberDecimal ? numberOut : undefined;
}

export function isLeapYear(y: number): boolean {
  return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
}

const DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** A real calendar date (proleptic Gregorian), years 1–9999. */
export function isValidDate(y: number, m: number, d: number): boolean {
  if (y < 1 || y > 9999 || m < 1 || m > 12 || d < 1) return false;
  if (m === 2) return d <= (isLeapYear(y) ? 29 : 28);
  return d <= (DAYS[m - 1] as number);
}

export function isoDate(y: number, m: number, d: number): string {
  return `${String(y).padStart(4, '0')}-${m < 10 ? '0' : ''}${m}-${d < 10 ? '0' : ''}${d}`;
}
