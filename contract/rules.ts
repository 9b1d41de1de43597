/**
 * Cleaning rules as the definition declares them, checked without a database: the parts that
 * both validation (definition.ts: `civic-etl validate`, `cdk synth`) and the clean step
 * (functions/clean/rules.ts, which compiles them to SQL) need — date patterns, number formats,
 * regular expressions, bounds — and the problems a rule can have on its own, in its dataset or
 * in the pipeline. Pure functions, no I/O: the contract stays loadable by the infrastructure code.
 */

/** Column types as the contract spells them (definition.ts's COLUMN_TYPES keys). */
type ColumnTypeName = 'text' | 'integer' | 'bigint' | 'numeric' | 'double' | 'boolean' | 'date' | 'timestamp' | 'timestamptz';

/** `nullTokens: true` means these: values that say "no value" in many exports. Compared trimmed, ignoring case. */
export const DEFAULT_NULL_TOKENS: readonly string[] = ['', 'NA', 'N/A', '-', 'NULL'];

export const NUMBER_TYPES: readonly ColumnTypeName[] = ['integer', 'bigint', 'numeric', 'double'];
export const DATE_TYPES: readonly ColumnTypeName[] = ['date', 'timestamp', 'timestamptz'];

/** What a cleaning rule may say about one declared column (the rule fields of definition.ts's column). */
export interface ColumnRuleOptions {
  name: string;
  type: ColumnTypeName;
  trim?: boolean | 'collapse';
  nullTokens?: boolean | readonly string[];
  case?: 'lower' | 'upper' | 'title';
  format?: string | NumberFormatOptions;
  excelDates?: boolean;
  min?: number | string;
  max?: number | string;
  pattern?: string;
  values?: readonly (string | number)[];
  unique?: boolean;
  references?: { dataset: string; column: string };
}

export interface NumberFormatOptions {
  decimal?: '.' | ',';
  thousands?: '.' | ',' | ' ' | "'" | '';
}

/** A problem with a rule: the path below the item it belongs to (for the message), and what is wrong. */
export interface RuleProblem {
  path: (string | number)[];
  message: string;
}

// ─── Date patterns ────────────────────────────────────────────────────────────────────────────

export type DateField = 'year' | 'month' | 'day' | 'hour' | 'minute' | 'second' | 'fraction';

/** Where a field is in a value that matched the pattern, once its separators are all `|`. */
export interface DateFieldPosition {
  /** 1-based `|`-separated part. */
  part: number;
  /** 1-based offset in the part, and width; no width: the whole part (a field with one or two digits). */
  offset: number;
  width?: number;
}

/**
 * A date pattern compiled for set-based reading: an anchored regular expression for the shape
 * (without capture groups — PostgreSQL matches those much faster), and where each field is.
 */
export interface DatePattern {
  /** As written in the definition, for messages. */
  pattern: string;
  /** Anchored; the same in JavaScript and PostgreSQL (ARE): digits as `[0-9]`, separators in brackets. */
  regex: string;
  /** The pattern's separators, each once: a matching value's separators, all turned into `|`, split it into parts. */
  separators: string;
  fields: Partial<Record<DateField, DateFieldPosition>>;
  /** Has hours (and maybe minutes, seconds, fractions). */
  time: boolean;
  /** The year has two digits (`yy`, inferred patterns only): 00–68 are 2000–2068, 69–99 are 1969–1999. */
  twoDigitYear?: boolean;
}

/** Pattern letters, longest first: `mi` (minutes) before `m` (month), `mm` before `mi`. */
const DATE_TOKENS: readonly { token: string; field: DateField; digits: string; fixed: boolean }[] = [
  { token: 'yyyy', field: 'year', digits: '[0-9]{4}', fixed: true },
  { token: 'mm', field: 'month', digits: '[0-9]{2}', fixed: true },
  { token: 'mi', field: 'minute', digits: '[0-9]{2}', fixed: true },
  { token: 'dd', field: 'day', digits: '[0-9]{2}', fixed: true },
  { token: 'hh', field: 'hour', digits: '[0-9]{2}', fixed: true },
  { token: 'ss', field: 'second', digits: '[0-9]{2}', fixed: true },
  { token: 'ff', field: 'fraction', digits: '[0-9]{1,6}', fixed: false },
  { token: 'm', field: 'month', digits: '[0-9]{1,2}', fixed: false },
  { token: 'd', field: 'day', digits: '[0-9]{1,2}', fixed: false },
  { token: 'h', field: 'hour', digits: '[0-9]{1,2}', fixed: false },
];
/** `yy`: only in patterns the type inference writes (functions/profile/column-type.ts), never declared. */
const TWO_DIGIT_YEAR = { token: 'yy', field: 'year' as const, digits: '[0-9]{2}', fixed: true };
const DATE_SEPARATORS = new Set([' ', '-', '/', '.', ':', ',', 'T']);

/**
 * Read a date pattern such as `dd-mm-yyyy`, `mm/dd/yyyy`, `yyyymmdd` or `dd.mm.yyyy hh:mi:ss`.
 * Letters: `yyyy` year, `mm` month (`m`: one or two digits), `dd` day (`d`), `hh` hour 0–23 (`h`),
 * `mi` minute, `ss` second, `ff` fraction of a second; any of ` -/.:,T` stands for itself.
 * Letters ignore case. Throws an Error whose message says what is wrong.
 */
export function parseDatePattern(pattern: string, opts: { twoDigitYears?: boolean } = {}): DatePattern {
  const elements: ({ kind: 'field'; token: string; field: DateField; digits: string; fixed: boolean } | { kind: 'literal'; char: string })[] = [];
  const lower = pattern.toLowerCase();
  for (let i = 0; i < pattern.length;) {
    const twoDigits = lower.startsWith('yy', i) && !lower.startsWith('yyyy', i);
    if (twoDigits && !opts.twoDigitYears) throw new Error(`two-digit years are ambiguous: use yyyy in "${pattern}"`);
    const token = twoDigits ? TWO_DIGIT_YEAR : DATE_TOKENS.find((t) => lower.startsWith(t.token, i));
    if (token) {
      elements.push({ kind: 'field', ...token });
      i += token.token.length;
    } else if (DATE_SEPARATORS.has(pattern[i]!)) {
      elements.push({ kind: 'literal', char: pattern[i]! });
      i += 1;
    } else {
      throw new Error(`"${pattern[i]}" at position ${i + 1} of "${pattern}" is not a pattern letter (yyyy, mm, dd, hh, mi, ss, ff) or a separator (space - / . : , T)`);
    }
  }
  const fields = elements.filter((e) => e.kind === 'field');
  const seen = new Map<DateField, string>();
  for (const f of fields) {
    const before = seen.get(f.field);
    if (before) {
      const hint = f.field === 'month' ? ' (minutes are mi)' : '';
      throw new Error(`"${pattern}" has the ${f.field} twice (${before} and ${f.token})${hint}`);
    }
    seen.set(f.field, f.token);
  }
  for (const needed of ['year', 'month', 'day'] as const) {
    if (!seen.has(needed)) throw new Error(`"${pattern}" has no ${needed} (${needed === 'year' ? 'yyyy' : needed === 'month' ? 'mm' : 'dd'})`);
  }
  const needs: [DateField, DateField, string][] = [
    ['minute', 'hour', 'hh'],
    ['second', 'minute', 'mi'],
    ['fraction', 'second', 'ss'],
  ];
  for (const [field, needed, token] of needs) {
    if (seen.has(field) && !seen.has(needed)) throw new Error(`"${pattern}" has the ${field} but no ${needed} (${token})`);
  }
  elements.forEach((e, i) => {
    if (e.kind !== 'field') return;
    const next = elements[i + 1];
    const previous = elements[i - 1];
    const variableNeighbour = (n: typeof e | typeof next) => n?.kind === 'field' && (!n.fixed || !e.fixed);
    if (variableNeighbour(next) || variableNeighbour(previous)) {
      throw new Error(`"${pattern}": ${e.token} has a variable number of digits, so it needs a separator next to it`);
    }
  });
  // each separator character ends a part: a field's part is the number of separators before it, plus one
  const fieldsAt: Partial<Record<DateField, DateFieldPosition>> = {};
  let part = 1;
  let offset = 1;
  for (const e of elements) {
    if (e.kind === 'literal') {
      part += 1;
      offset = 1;
    } else {
      const width = e.fixed ? e.token.length : undefined;
      fieldsAt[e.field] = width ? { part, offset, width } : { part, offset };
      offset += width ?? 0;
    }
  }
  const body = elements.map((e) => (e.kind === 'field' ? e.digits : e.char === ' ' ? ' ' : `[${e.char}]`));
  const separators = [...new Set(elements.flatMap((e) => (e.kind === 'literal' ? [e.char] : [])))].join('');
  const twoDigitYear = seen.get('year') === 'yy' ? { twoDigitYear: true } : {};
  return { pattern, regex: `^${body.join('')}$`, separators, fields: fieldsAt, time: seen.has('hour'), ...twoDigitYear };
}

// ─── Number formats ───────────────────────────────────────────────────────────────────────────

/** A number format with both separators settled. */
export interface NumberFormat {
  decimal: '.' | ',';
  /** '' when numbers are written without grouping. */
  thousands: '.' | ',' | ' ' | "'" | '';
}

/**
 * Settle a declared number format. The decimal separator defaults to the one of `.` and `,` that
 * is not the thousands separator (`{ thousands: '.' }` reads `1.234,5`).
 */
export function numberFormat(options: NumberFormatOptions): NumberFormat {
  const thousands = options.thousands ?? '';
  const decimal = options.decimal ?? (thousands === '.' ? ',' : '.');
  return { decimal, thousands };
}

/** How a number in this format looks, for messages: `1.234,5`, `1,234`, `1234.5`. */
export function numberExample(format: NumberFormat, integer: boolean): string {
  const whole = format.thousands ? `1${format.thousands}234` : '1234';
  return integer ? whole : `${whole}${format.decimal}5`;
}

// ─── Regular expressions ──────────────────────────────────────────────────────────────────────

/** PostgreSQL caps a bound of `{m,n}` at 255 (RE_DUP_MAX). */
const MAX_REPEAT = 255;
const MAX_PATTERN_LENGTH = 500;

/**
 * Why a `pattern` cannot be used, or undefined. It is compiled, never run, here (so no input can
 * make validation slow), and refused when it uses what JavaScript and PostgreSQL read differently
 * — the clean step runs it in PostgreSQL, where it must mean what it meant when it was validated.
 */
export function regexProblem(pattern: string): string | undefined {
  if (pattern.length > MAX_PATTERN_LENGTH) return `is longer than ${MAX_PATTERN_LENGTH} characters`;
  try {
    new RegExp(pattern);
  } catch (error) {
    return `is not a valid regular expression: ${(error as Error).message}`;
  }
  const unsupported: [RegExp, string][] = [
    [/\(\?<[A-Za-z]/, 'uses a named group (?<name> …), which PostgreSQL does not support; use ( … )'],
    [/\(\?[a-zA-Z]/, 'uses inline flags such as (?i), which are not supported here; write both cases, e.g. [Aa]'],
    [/\\[pP]\{/, 'uses a Unicode property escape (\\p{…}), which PostgreSQL does not support'],
    [/\\k</, 'uses a named backreference (\\k<…>), which PostgreSQL does not support'],
    [/\\[bB]/, 'uses \\b, which PostgreSQL reads as a backspace, not a word boundary; leave it out (the whole value must match anyway)'],
    [/\\x|\\u\{|\\c/, 'uses \\x, \\u{…} or \\c; write characters as themselves or as \\uXXXX'],
    [/\[\^?\]/, 'uses an empty character class ([] or [^]), which PostgreSQL reads differently'],
    [/\[\[[:=.]/, 'uses a POSIX class such as [[:alpha:]], which JavaScript reads differently; write the characters, e.g. [A-Za-z]'],
  ];
  const escapedAware = pattern.replace(/\\\\/g, '');
  for (const [re, message] of unsupported) if (re.test(escapedAware)) return message;
  for (const m of escapedAware.matchAll(/\{(\d+)(?:,(\d*))?\}/g)) {
    if (Number(m[1]) > MAX_REPEAT || (m[2] && Number(m[2]) > MAX_REPEAT)) return `repeats more than ${MAX_REPEAT} times in {${m[1]}${m[2] !== undefined ? `,${m[2]}` : ''}} (PostgreSQL's limit)`;
  }
  return undefined;
}

/** The pattern as the clean step runs it: the whole value must match. */
export function anchored(pattern: string): string {
  return `^(?:${pattern})$`;
}

// ─── Bounds ───────────────────────────────────────────────────────────────────────────────────

const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const ISO_TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,6})?)?)?(Z|[+-]\d{2}(?::?\d{2})?)?$/;

/** Why `value` cannot bound a column of `type` (min, max), or undefined. */
function boundProblem(type: ColumnTypeName, value: number | string): string | undefined {
  if (NUMBER_TYPES.includes(type)) return typeof value === 'number' ? undefined : `must be a number for this ${type} column`;
  if (!DATE_TYPES.includes(type)) return `applies to number, date and timestamp columns, not ${type}`;
  const form = type === 'date' ? ISO_DATE : ISO_TIMESTAMP;
  const m = typeof value === 'string' ? form.exec(value) : null;
  if (!m) return `must be ${type === 'date' ? 'a date yyyy-mm-dd' : 'a timestamp yyyy-mm-dd[ hh:mi[:ss]]'} for a ${type} column`;
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const real = new Date(Date.UTC(year, month - 1, day));
  if (year < 1 || real.getUTCMonth() !== month - 1 || real.getUTCDate() !== day) return `is not a real date: ${value}`;
  if (m[4] !== undefined && (Number(m[4]) > 23 || Number(m[5]) > 59 || Number(m[6] ?? 0) > 59)) return `is not a real time: ${value}`;
  return undefined;
}

/** Order two valid bounds of one type: negative when a < b. */
function compareBounds(a: number | string, b: number | string): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  // ISO dates and timestamps without offsets order as text; with offsets, by the instant
  const instant = (v: string) => Date.parse(/[zZ]|[+-]\d{2}(:?\d{2})?$/.test(v) ? v.replace(' ', 'T') : `${v.replace(' ', 'T')}Z`);
  return instant(String(a)) - instant(String(b));
}

// ─── Problems ─────────────────────────────────────────────────────────────────────────────────

/** The dataset-wide defaults a column's own options override. */
export interface RuleDefaults {
  trim?: boolean | 'collapse';
  nullTokens?: boolean | readonly string[];
}

/** The null tokens a column uses (its own, else the dataset's), lower-cased and trimmed; [] for none. */
export function nullTokensOf(column: Pick<ColumnRuleOptions, 'nullTokens'>, defaults: RuleDefaults = {}): string[] {
  const tokens = column.nullTokens ?? defaults.nullTokens;
  const list = tokens === true ? DEFAULT_NULL_TOKENS : tokens === false || tokens === undefined ? [] : tokens;
  return [...new Set(list.map((t) => t.trim().toLowerCase()))];
}

/**
 * What is wrong with one column's rules, alone: options that do not apply to its type, a bad
 * date pattern, number format, regular expression or bound, min above max, enumeration values
 * the column's own normalisation or pattern would never let through. Paths are relative to the column.
 */
export function columnRuleProblems(column: ColumnRuleOptions, defaults: RuleDefaults = {}): RuleProblem[] {
  const problems: RuleProblem[] = [];
  const add = (field: string, message: string) => problems.push({ path: [field], message: `column "${column.name}": ${message}` });
  const { type } = column;
  const isNumber = NUMBER_TYPES.includes(type);
  const isDate = DATE_TYPES.includes(type);

  if (column.format !== undefined) {
    if (typeof column.format === 'string') {
      if (!isDate) add('format', `a date pattern such as "${column.format}" applies to date and timestamp columns, not ${type}${isNumber ? " (a number's format is { decimal, thousands })" : ''}`);
      else {
        try {
          const pattern = parseDatePattern(column.format);
          if (pattern.time && type === 'date') add('format', `"${column.format}" has a time, but the column is a date; declare type timestamp`);
        } catch (error) {
          add('format', (error as Error).message);
        }
      }
    } else if (!isNumber) {
      add('format', `{ decimal, thousands } applies to number columns, not ${type}${isDate ? ' (a date\'s format is a pattern such as "dd-mm-yyyy")' : ''}`);
    } else if (column.format.decimal !== undefined && column.format.decimal === column.format.thousands) {
      add('format', `the decimal and thousands separators are both "${column.format.decimal}"`);
    }
  }
  if (column.excelDates && !isDate) add('excelDates', `Excel serial dates apply to date and timestamp columns, not ${type}`);
  if (column.case && type !== 'text') add('case', `case applies to text columns, not ${type}`);

  for (const bound of ['min', 'max'] as const) {
    const value = column[bound];
    if (value === undefined) continue;
    const problem = boundProblem(type, value);
    if (problem) add(bound, `${bound} ${problem}`);
  }
  if (column.min !== undefined && column.max !== undefined && !boundProblem(type, column.min) && !boundProblem(type, column.max)) {
    if (compareBounds(column.min, column.max) > 0) add('min', `min (${column.min}) is greater than max (${column.max})`);
  }

  let regex: RegExp | undefined;
  if (column.pattern !== undefined) {
    const problem = regexProblem(column.pattern);
    if (problem) add('pattern', `pattern ${JSON.stringify(column.pattern)} ${problem}`);
    else regex = new RegExp(anchored(column.pattern));
  }

  if (column.values !== undefined) {
    if (type !== 'text' && !isNumber) add('values', `an enumeration applies to text and number columns, not ${type}`);
    column.values.forEach((v, i) => {
      const at = `value ${JSON.stringify(v)}`;
      if (isNumber && typeof v !== 'number') add('values', `${at} must be a number for this ${type} column`);
      else if ((type === 'integer' || type === 'bigint') && !Number.isInteger(v)) add('values', `${at} is not an integer`);
      else if (type === 'text' && typeof v !== 'string') add('values', `${at} must be text (quote it) for a text column`);
      else if (type === 'text') {
        const text = v as string;
        const trim = column.trim ?? defaults.trim;
        const folded = column.case === 'lower' ? text.toLowerCase() : column.case === 'upper' ? text.toUpperCase() : text;
        if (trim && text !== text.trim()) add('values', `${at} has surrounding spaces, which trim removes from every value: it can never match`);
        else if (column.case && column.case !== 'title' && folded !== text) add('values', `${at} is not ${column.case} case, and case ${column.case} applies to every value first: it can never match`);
        else if (regex && !regex.test(text)) add('values', `${at} does not match the column's pattern: it can never be accepted`);
        else if (nullTokensOf(column, defaults).includes(text.trim().toLowerCase())) add('values', `${at} is a null token of this column: it becomes empty before the check`);
      }
      if (column.values!.indexOf(v) !== i) add('values', `${at} is listed twice`);
    });
  }
  return problems;
}

/** The dataset-level rule settings that dataset problems look at. */
export interface DatasetRuleOptions extends RuleDefaults {
  name: string;
  columns?: readonly ColumnRuleOptions[];
  key: readonly string[];
  dedupe?: { orderBy?: readonly string[]; keep?: 'first' | 'last' };
}

/** Problems of a dataset's rules: each column's, and de-duplication's (it needs a key; it orders by declared columns). Paths relative to `clean`. */
export function datasetRuleProblems(dataset: DatasetRuleOptions): RuleProblem[] {
  const problems: RuleProblem[] = [];
  dataset.columns?.forEach((c, i) => {
    for (const p of columnRuleProblems(c, dataset)) problems.push({ path: ['columns', i, ...p.path], message: p.message });
    if (c.references && c.references.dataset === dataset.name) {
      problems.push({ path: ['columns', i, 'references', 'dataset'], message: `column "${c.name}": a dataset cannot reference itself` });
    }
  });
  if (dataset.dedupe) {
    if (dataset.key.length === 0) problems.push({ path: ['dedupe'], message: 'de-duplication needs a key (clean.key): the rows that share one are duplicates' });
    const names = dataset.columns?.map((c) => c.name) ?? [];
    dataset.dedupe.orderBy?.forEach((o, i) => {
      if (!names.includes(o)) problems.push({ path: ['dedupe', 'orderBy', i], message: `"${o}" is not a declared column` });
    });
  }
  return problems;
}

/** The datasets of a pipeline as reference checks see them. */
export interface ReferenceTarget {
  name: string;
  columns?: readonly ColumnRuleOptions[];
}

/**
 * Problems of each `references`: the dataset must be in the pipeline, and — when that dataset
 * declares its columns — the column must be one of them (otherwise it is checked when the clean
 * step runs, against the clean table). Paths relative to the pipeline.
 */
export function referenceProblems(datasets: readonly ReferenceTarget[]): RuleProblem[] {
  const problems: RuleProblem[] = [];
  datasets.forEach((d, i) => {
    d.columns?.forEach((c, j) => {
      if (!c.references) return;
      const at = ['datasets', i, 'clean', 'columns', j, 'references'];
      const target = datasets.find((t) => t.name === c.references!.dataset);
      if (!target) {
        problems.push({ path: [...at, 'dataset'], message: `column "${c.name}" references unknown dataset "${c.references.dataset}"` });
      } else if (target.columns && !target.columns.some((t) => t.name === c.references!.column)) {
        const names = target.columns.map((t) => t.name).join(', ');
        problems.push({ path: [...at, 'column'], message: `column "${c.name}" references "${c.references.column}", which is not a column of dataset "${target.name}" (${names})` });
      }
    });
  });
  return problems;
}
