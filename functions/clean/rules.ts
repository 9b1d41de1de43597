/**
 * Cleaning rules compiled to set-based SQL. Each declared column's rules become expressions that
 * the cast statements of cast.ts evaluate in PostgreSQL, in this order:
 *
 *   normalise the text (trim → null tokens → case)  →  cast it (with the declared locale format,
 *   or as an Excel serial date)  →  check it (required, pattern, enumeration, range)
 *
 * then, as statements of their own over the rows that passed: references (an anti-join with the
 * referenced clean table), de-duplication by key (cast.ts) and unique values. A value that fails
 * goes to the dataset's quarantine table with the rule, the column, the raw value, a reason that
 * names the expected form, and the source line; nothing is guessed: a date is read with its
 * pattern only and must name a real day, a number with its declared separators only.
 *
 * The normalised and cast values of a row are computed once per statement, in LATERAL subqueries
 * fenced with OFFSET 0 (PostgreSQL would otherwise inline them into every expression that uses them).
 * Those subqueries never raise: a value that does not cast is NULL there, and the checks see it.
 */
import type pg from 'pg';
import { COLUMN_TYPES, type ColumnType, type DatasetDefinition, type PipelineDefinition } from '../../contract/definition.ts';
import { anchored, DATE_TYPES, nullTokensOf, numberExample, numberFormat, NUMBER_TYPES, parseDatePattern, type DateField, type DatePattern, type NumberFormat } from '../../contract/rules.ts';
import { ident, literal } from '../common/db.ts';
import { PermanentError } from '../common/errors.ts';
import type { CastColumn, CastPlan } from './cast.ts';

/** One column's rules, settled: the dataset's defaults applied, formats parsed. */
export interface ColumnRules {
  trim?: boolean | 'collapse';
  /** Lower-cased and trimmed; empty for none. */
  nullTokens: readonly string[];
  case?: 'lower' | 'upper' | 'title';
  number?: NumberFormat;
  date?: DatePattern;
  excelDates: boolean;
  min?: number | string;
  max?: number | string;
  pattern?: string;
  values?: readonly (string | number)[];
  unique: boolean;
  /** As declared; planRules resolves it to `reference`. */
  references?: { dataset: string; column: string };
  reference?: ResolvedReference;
}

/** A `references` rule made concrete against the database. */
export interface ResolvedReference {
  /** `dataset.column`, for messages. */
  label: string;
  /** Qualified, quoted clean table. */
  table: string;
  column: string;
  /** How values meet: as they are (same type), as numbers, or as text. */
  compare: 'same' | 'numeric' | 'text';
  /** The referenced dataset keeps history: only its current rows count. */
  current: boolean;
}

/** The rules of one load: per clean column name, and the dataset's de-duplication. */
export interface RulePlan {
  columns: ReadonlyMap<string, ColumnRules>;
  dedupe?: { orderBy: readonly string[]; keep: 'first' | 'last' };
}

/**
 * How the compiled expressions may behave: `check` never raises (a bad value is NULL; used to find
 * failures), `trusted` is for rows that passed their checks, `optimistic` raises a data exception
 * on a bad value (the one-statement cast: it fails, and castInto falls back to the checks).
 */
export type RowMode = 'check' | 'trusted' | 'optimistic';

export interface CompiledRows {
  /** To append to `FROM <staging> s`: the LATERAL subqueries (`rn`, `rm`, `rf`, `rp`); '' when none is needed. */
  joins: string;
  /** The clean value of a column as SQL, in this mode. */
  value(c: CastColumn): string;
  /**
   * Check mode: one `(column, raw value, rule or NULL, type, reasons jsonb)` per column that can
   * fail — the rule is the first one the value fails; `reasons` maps a rule to its message, with
   * `%s` where the raw value goes (NULL: castInto's generic messages).
   */
  checks: string[];
}

/** Characters trimmed from the ends of a value: white space, also the no-break spaces of locale exports. */
export const SPACE_CHARS = ' \t\n\r\u000b\f\u00a0\u2007\u202f\ufeff';
/** The same, as a PostgreSQL regular expression matching a run of them. */
const SPACE_RUN = '[[:space:]\\u00a0\\u2007\\u202f\\ufeff]+';
const CATALOG_NAMES: Record<ColumnType, string> = { ...COLUMN_TYPES, timestamp: 'timestamp without time zone', timestamptz: 'timestamp with time zone' };
const NUMERIC_CATALOG = ['integer', 'bigint', 'numeric', 'double precision', 'real', 'smallint'];

/**
 * The rules a load's columns carry: each declared column's own options over the dataset's
 * defaults (`clean.trim`, `clean.nullTokens`, which also reach detected columns). Undefined when
 * no column has a rule and nothing is de-duplicated — the cast then runs exactly as without rules.
 */
export function resolveRules(dataset: DatasetDefinition, columns: readonly CastColumn[]): RulePlan | undefined {
  const declared = new Map((dataset.clean.columns ?? []).map((c) => [c.name, c]));
  const defaults = { trim: dataset.clean.trim, nullTokens: dataset.clean.nullTokens };
  const out = new Map<string, ColumnRules>();
  for (const column of columns) {
    const d = declared.get(column.name);
    const format = d?.format;
    const rules: ColumnRules = {
      trim: d?.trim ?? defaults.trim,
      nullTokens: nullTokensOf(d ?? {}, defaults),
      case: d?.case,
      number: typeof format === 'object' && NUMBER_TYPES.includes(column.type) ? numberFormat(format) : undefined,
      date: typeof format === 'string' && DATE_TYPES.includes(column.type) ? parseDatePattern(format) : undefined,
      excelDates: (d?.excelDates ?? false) && DATE_TYPES.includes(column.type),
      min: d?.min,
      max: d?.max,
      pattern: d?.pattern,
      values: d?.values,
      unique: d?.unique ?? false,
      references: d?.references,
    };
    if (isActive(rules)) out.set(column.name, rules);
  }
  const dedupe = dataset.clean.dedupe && dataset.clean.key.length > 0 ? dataset.clean.dedupe : undefined;
  return out.size > 0 || dedupe ? { columns: out, dedupe } : undefined;
}

function isActive(r: ColumnRules): boolean {
  return Boolean(
    r.trim || r.nullTokens.length > 0 || r.case || r.number || r.date || r.excelDates || r.min !== undefined || r.max !== undefined || r.pattern !== undefined || r.values || r.unique || r.references,
  );
}

export interface RulesContext {
  pipeline: PipelineDefinition;
  dataset: DatasetDefinition;
  /** The columns the load is cast into (after value maps). */
  columns: readonly CastColumn[];
}

/**
 * resolveRules, then what only the database can tell: each referenced clean table and column must
 * exist (a dataset referenced before its first load fails this load with a PermanentError — the
 * clean step records it and leaves the clean table and views as they were; load the referenced
 * dataset, then replay this one), and each pattern must compile in PostgreSQL.
 */
export async function planRules(client: pg.PoolClient, ctx: RulesContext): Promise<RulePlan | undefined> {
  const plan = resolveRules(ctx.dataset, ctx.columns);
  if (!plan) return undefined;
  const { pipeline, dataset } = ctx;
  for (const [name, rules] of plan.columns) {
    const column = ctx.columns.find((c) => c.name === name)!;
    if (rules.references) rules.reference = await resolveReference(client, pipeline, dataset, column, rules.references);
    if (rules.pattern !== undefined) await compilePattern(client, dataset, name, rules.pattern);
  }
  return plan;
}

async function resolveReference(client: pg.PoolClient, pipeline: PipelineDefinition, dataset: DatasetDefinition, column: CastColumn, ref: { dataset: string; column: string }): Promise<ResolvedReference> {
  const label = `${ref.dataset}.${ref.column}`;
  const where = `dataset ${dataset.name}: column "${column.name}" references ${label}`;
  const target = pipeline.datasets.find((d) => d.name === ref.dataset);
  if (!target) throw new PermanentError(`${where}, but there is no dataset "${ref.dataset}" in the pipeline definition`, { column: column.name });
  const { rows } = await client.query<{ name: string; type: string }>(
    `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type
       FROM pg_attribute a WHERE a.attrelid = to_regclass(format('%I.%I', $1::text, $2::text)) AND a.attnum > 0 AND NOT a.attisdropped
      ORDER BY a.attnum`,
    [pipeline.project, ref.dataset],
  );
  if (rows.length === 0) {
    throw new PermanentError(`${where}, but dataset ${ref.dataset} has no clean table yet: load ${ref.dataset} first, then load this file again (or replay it)`, { column: column.name });
  }
  const found = rows.find((r) => r.name === ref.column);
  if (!found) {
    const names = rows.map((r) => r.name).filter((n) => !n.startsWith('_'));
    throw new PermanentError(`${where}, but the clean table ${ref.dataset} has no column "${ref.column}" (it has ${names.join(', ')})`, { column: column.name });
  }
  const own = CATALOG_NAMES[column.type];
  const compare = found.type === own ? 'same' : NUMERIC_CATALOG.includes(found.type) && NUMBER_TYPES.includes(column.type) ? 'numeric' : 'text';
  return {
    label,
    table: `${ident(pipeline.project)}.${ident(ref.dataset)}`,
    column: ref.column,
    compare,
    current: target.clean.mode === 'history' && rows.some((r) => r.name === 'valid_to'),
  };
}

/** A pattern PostgreSQL refuses fails the load with a clear message (validation checked it in JavaScript). */
async function compilePattern(client: pg.PoolClient, dataset: DatasetDefinition, column: string, pattern: string): Promise<void> {
  await client.query('SAVEPOINT civic_etl_pattern');
  try {
    await client.query(`SELECT '' ~ $1`, [anchored(pattern)]);
    await client.query('RELEASE SAVEPOINT civic_etl_pattern');
  } catch (error) {
    await client.query('ROLLBACK TO SAVEPOINT civic_etl_pattern');
    throw new PermanentError(`dataset ${dataset.name}: the pattern of column "${column}" is not a PostgreSQL regular expression: ${(error as Error).message}`, { column });
  }
}

/** Whether the rules can reject a value other than by a failed cast: then the one-statement cast cannot be used. */
export function rulesNeedChecks(plan: RulePlan | undefined): boolean {
  if (!plan) return false;
  if (plan.dedupe) return true;
  for (const r of plan.columns.values()) {
    if (r.pattern !== undefined || r.values || r.min !== undefined || r.max !== undefined || r.unique || r.references || r.reference) return true;
  }
  return false;
}

/**
 * Compile the rows of a cast statement: the LATERAL subqueries, each column's value and (check
 * mode) each column's check. Columns without rules compile exactly as before rules existed.
 * `required`: which columns must have a value (declared required, or part of the key).
 */
export function compileRows(
  columns: readonly CastColumn[],
  plan: RulePlan | undefined,
  mode: RowMode,
  required: (c: CastColumn) => boolean = (c) => c.required,
  /** Check mode, for the checks alone: leave out the columns none of whose checks can fail (text only normalised, say). */
  checksOnly = false,
): CompiledRows {
  const lateral: Record<'rn' | 'rm' | 'rf' | 'rp', string[]> = { rn: [], rm: [], rf: [], rp: [] };
  const values = new Map<string, string>();
  const checks: string[] = [];
  for (const c of columns) {
    const r = rulesOf(c, plan);
    if (r && checksOnly && !canFail(c, r, required(c))) continue;
    const compiled = r ? compileRuled(c, r, mode, required(c)) : compilePlain(c, mode, required(c));
    for (const [alias, items] of Object.entries(compiled.lateral ?? {})) lateral[alias as keyof typeof lateral].push(...items);
    values.set(c.name, compiled.value);
    if (compiled.check) checks.push(compiled.check);
  }
  const joins = Object.entries(lateral)
    .filter(([, items]) => items.length > 0)
    .map(([alias, items]) => ` CROSS JOIN LATERAL (SELECT ${items.join(', ')} OFFSET 0) ${alias}`)
    .join('');
  return { joins, value: (c) => values.get(c.name) ?? `s.${ident(c.from)}`, checks };
}

/**
 * A column's rules: the declared ones, with the parse recipe the type inference found for a
 * detected column (column-type.ts: its number format or date pattern) where none is declared.
 */
function rulesOf(c: CastColumn, plan: RulePlan | undefined): ColumnRules | undefined {
  const declared = plan?.columns.get(c.name);
  if (!c.parse) return declared;
  const number = c.parse.number && NUMBER_TYPES.includes(c.type) ? c.parse.number : undefined;
  const date = c.parse.date && DATE_TYPES.includes(c.type) ? parseDatePattern(c.parse.date, { twoDigitYears: true }) : undefined;
  // missing-value markers of a number or date column (column-type.ts): null tokens, as if declared
  const markers = c.parse.missing && (NUMBER_TYPES.includes(c.type) || DATE_TYPES.includes(c.type)) ? c.parse.missing.map((m) => m.trim().toLowerCase()) : [];
  if (!number && !date && markers.length === 0) return declared;
  if (declared) return { ...declared, number: declared.number ?? number, date: declared.date ?? date, nullTokens: [...new Set([...declared.nullTokens, ...markers])] };
  return { nullTokens: [...new Set(markers)], excelDates: false, unique: false, number, date };
}

interface CompiledColumn {
  /** Items of the LATERAL subqueries, by alias: `rn` normalised text, `rm` a date of the pattern's shape, `rf` its fields, `rp` typed values. */
  lateral?: Partial<Record<'rn' | 'rm' | 'rf' | 'rp', string[]>>;
  value: string;
  check?: string;
}

/** A check of this column can fail in the check statement (references and unique values have statements of their own). */
function canFail(c: CastColumn, r: ColumnRules, required: boolean): boolean {
  return required || c.type !== 'text' || r.pattern !== undefined || r.values !== undefined;
}

/** A column without rules: trimmed and cast as castInto always did (text as it is). */
function compilePlain(c: CastColumn, mode: RowMode, required: boolean): CompiledColumn {
  const raw = `s.${ident(c.from)}`;
  const T = COLUMN_TYPES[c.type];
  // trimmed of the no-break spaces of locale exports too, as the type inference trims values
  const v = c.type === 'text' ? raw : `NULLIF(btrim(${raw}, ${literal(SPACE_CHARS)}), '')`;
  // an empty value is NULL in every type (README, "Empty values"); text keeps its white space
  const strict = c.type === 'text' ? `NULLIF(${raw}, '')` : `${v}::${T}`;
  if (mode !== 'check') return { value: strict };
  return {
    value: c.type === 'text' ? strict : `CASE WHEN etl.is_valid_as(${v}, ${literal(T)}) THEN ${strict} END`,
    check: legacyCheck(c, raw, v, required),
  };
}

/** A column with rules: normalised (`rn`), parsed by its format (`rm`, `rf`, `rp`), checked. */
function compileRuled(c: CastColumn, r: ColumnRules, mode: RowMode, required: boolean): CompiledColumn {
  const raw = `s.${ident(c.from)}`;
  const T = COLUMN_TYPES[c.type];
  const name = ident(c.name);
  const lateral: NonNullable<CompiledColumn['lateral']> = { rn: [], rm: [], rf: [], rp: [] };
  // normalised text: `rn`, unless nothing changes it (a text column with only checks)
  const norm = normalise(raw, c.type, r);
  const N = norm === raw ? raw : `rn.${name}`;
  if (norm !== raw) lateral.rn!.push(`${norm} AS ${name}`);
  // a date with a pattern: `rm` holds it when it has the pattern's shape, `rf` its fields as integers
  if (r.date) {
    const { regex, separators } = r.date;
    lateral.rm!.push(`CASE WHEN ${N} ~ ${literal(regex)} THEN translate(${N}, ${literal(separators)}, ${literal('|'.repeat(separators.length))}) END AS ${name}`);
    for (const [f, sql] of Object.entries(dateFields(`rm.${name}`, r.date))) lateral.rf!.push(`${sql} AS ${ident(`${c.name}.${f}`)}`);
  }
  const parse = parser(N, c.type, r, (f) => `rf.${ident(`${c.name}.${f}`)}`);
  const typed = `rp.${name}`;
  let value: string;
  if (c.type === 'text') value = N;
  else if (mode === 'check') {
    // never raising: NULL when the value does not cast
    lateral.rp!.push(`${parse.formatted ? parse.sql : parse.sql ? `coalesce(${parse.sql}, ${tryCast(N, c.type, true)})` : tryCast(N, c.type, false)} AS ${name}`);
    value = typed;
  } else if (parse.formatted) {
    lateral.rp!.push(`${parse.sql} AS ${name}`);
    value = mode === 'optimistic' ? `CASE WHEN ${typed} IS NOT NULL OR ${N} IS NULL THEN ${typed} ELSE ${fail(N, T)} END` : typed;
  } else if (parse.sql) {
    // an Excel serial or a plain value: `rp` holds the serial's date, NULL for other values
    lateral.rp!.push(`${parse.sql} AS ${name}`);
    value = `CASE WHEN ${N} ~ ${literal(excelShape(c.type))} THEN ${mode === 'optimistic' ? `coalesce(${typed}, ${fail(N, T)})` : typed} ELSE ${N}::${T} END`;
  } else value = `${N}::${T}`; // plain cast, in the select list: after the rows that fail are filtered out
  const check = mode === 'check' ? ruleCheck(c, raw, N, c.type === 'text' ? N : typed, r, required) : undefined;
  return { lateral, value, check };
}

/**
 * A data exception (division by zero, SQLSTATE 22012) raised when this row's value is reached: the
 * one-statement cast then fails and castInto looks for the failing values. It depends on the value
 * (`N` is not NULL here), so the planner cannot fold it into an error of the statement itself.
 */
function fail(N: string, T: string): string {
  return `(1 / (0 * length(${N})))::text::${T}`;
}

/** The check of a column without rules: missing where required, or not of its type (as castInto always did). */
function legacyCheck(c: CastColumn, raw: string, v: string, required: boolean): string | undefined {
  const missing = required ? `WHEN NULLIF(btrim(${raw}), '') IS NULL THEN 'required'` : ''; // blank text is missing too
  const badType = c.type === 'text' ? '' : `WHEN NOT etl.is_valid_as(${v}, ${literal(COLUMN_TYPES[c.type])}) THEN 'type'`;
  if (!missing && !badType) return undefined;
  const skipEmpty = required ? '' : `WHEN ${v} IS NULL THEN NULL `;
  return `(${literal(c.name)}, ${raw}, CASE ${missing} ${skipEmpty}${badType} END, ${literal(c.type)}, NULL::jsonb)`;
}

/** Trim (or collapse) white space, turn null tokens into NULL, fold the case. Numbers and dates are always trimmed; empty is NULL in every type. */
function normalise(raw: string, type: ColumnType, r: ColumnRules): string {
  let x = raw;
  if (r.trim === 'collapse') x = `regexp_replace(btrim(${x}, ${literal(SPACE_CHARS)}), ${literal(SPACE_RUN)}, ' ', 'g')`;
  else if (r.trim || type !== 'text') x = `btrim(${x}, ${literal(SPACE_CHARS)})`;
  x = `NULLIF(${x}, '')`; // empty is NULL in every type
  if (r.case) {
    const fn = { lower: 'lower', upper: 'upper', title: 'initcap' }[r.case];
    // ICU's root locale: Unicode case rules whatever the database's own locale (C lower-cases ASCII only)
    x = `(${fn}(${x} COLLATE "und-x-icu") COLLATE "default")`;
  }
  if (r.nullTokens.length > 0) {
    const ascii = r.nullTokens.every((t) => /^[\x20-\x7e]*$/.test(t));
    const key = ascii ? `lower(btrim(${raw}, ${literal(SPACE_CHARS)}))` : `lower(btrim(${raw}, ${literal(SPACE_CHARS)}) COLLATE "und-x-icu")`;
    x = `CASE WHEN ${key} = ANY(${textArray(r.nullTokens)}) THEN NULL ELSE ${x} END`;
  }
  return x;
}

/**
 * The never-raising parse of a value: `formatted` when a declared format (number separators, date
 * pattern) reads it; otherwise `sql` is the Excel-serial reading (or undefined: a plain cast).
 */
function parser(N: string, type: ColumnType, r: ColumnRules, field: (f: DateField) => string): { formatted: boolean; sql?: string } {
  if (r.number) return { formatted: true, sql: parseNumber(N, type, r.number) };
  const excel = r.excelDates ? parseExcel(N, type) : undefined;
  if (r.date) {
    const date = parseDate(field, type, r.date);
    return { formatted: true, sql: excel ? `coalesce(${excel}, ${date})` : date };
  }
  return { formatted: false, sql: excel };
}

/** Plain cast that never raises: NULL when the value is not of the type (`notSerial`: and it is not an Excel serial). */
function tryCast(N: string, type: ColumnType, notSerial: boolean): string {
  const T = COLUMN_TYPES[type];
  const serial = notSerial ? `${N} !~ ${literal(excelShape(type))} AND ` : '';
  return `CASE WHEN ${serial}etl.is_valid_as(${N}, ${literal(T)}) THEN ${N}::${T} END`;
}

/**
 * A number written with the declared separators: the whole value must have that shape (digits
 * grouped by threes if grouped at all, one decimal separator) before the separators are removed —
 * `1.5` in a `{ decimal: ',', thousands: '.' }` column is not fifteen, it is quarantined.
 */
function parseNumber(N: string, type: ColumnType, f: NumberFormat): string {
  const group = f.thousands === '' ? '' : f.thousands === ' ' ? '[ \\u00a0\\u202f]' : f.thousands === "'" ? "['\\u2019]" : `[${f.thousands}]`;
  const removed = f.thousands === ' ' ? ' \u00a0\u202f' : f.thousands === "'" ? "'\u2019" : f.thousands;
  const digits = group ? `([0-9]{1,3}(${group}[0-9]{3})+|[0-9]+)` : '[0-9]+';
  const integer = type === 'integer' || type === 'bigint';
  const shape = integer ? `^[+-]?${digits}$` : `^[+-]?(${digits}([${f.decimal}][0-9]+)?|[${f.decimal}][0-9]+)$`;
  // the decimal separator becomes '.', the thousands separators go
  const plain = `translate(${N}, ${literal(f.decimal + removed)}, '.')`;
  const limits: Partial<Record<ColumnType, string>> = {
    integer: `${plain}::numeric BETWEEN -2147483648 AND 2147483647`,
    bigint: `${plain}::numeric BETWEEN -9223372036854775808 AND 9223372036854775807`,
    double: `abs(${plain}::numeric) < 1e308`,
  };
  const cast = `${plain}::${COLUMN_TYPES[type]}`;
  const inRange = limits[type];
  return `CASE WHEN ${N} ~ ${literal(shape)} THEN ${inRange ? `CASE WHEN ${inRange} THEN ${cast} END` : cast} END`;
}

/**
 * A date's fields, as integers: `match` holds the value with its separators turned into `|` once
 * it has the pattern's shape (NULL otherwise), so each field is a part of it (or a fixed slice of
 * one) — where the pattern puts it, never where PostgreSQL would guess it is.
 */
function dateFields(match: string, p: DatePattern): Partial<Record<DateField, string>> {
  const out: Partial<Record<DateField, string>> = {};
  for (const [field, at] of Object.entries(p.fields) as [DateField, NonNullable<DatePattern['fields'][DateField]>][]) {
    const part = `split_part(${match}, '|', ${at.part})`;
    // the fraction of a second keeps its digits: .5 is 500 ms, .05 is 50
    out[field] = field === 'fraction' ? `('0.' || ${part})::double precision` : `${at.width ? `substr(${part}, ${at.offset}, ${at.width})` : part}::int`;
  }
  // a two-digit year as POSIX strptime's %y reads it (functions/profile/column-type.ts: expandYear)
  if (p.twoDigitYear && out.year) out.year = `(${out.year} + CASE WHEN ${out.year} < 69 THEN 2000 ELSE 1900 END)`;
  return out;
}

/**
 * A date (or timestamp) from its fields (`field` names the column of `rf` holding each): the day
 * must exist in its month — 31-02-2024 or 29-02-2023 are quarantined, not rolled over into March
 * as a date built by adding days would be, and not left to make_date or to_date, which would raise
 * and abort the whole statement (to_date also reads `1/2/24` as the year 24 with `yyyy`).
 * Timestamps without an offset are read as UTC for timestamptz.
 */
function parseDate(field: (f: DateField) => string, type: ColumnType, p: DatePattern): string {
  const has = (f: DateField) => p.fields[f] !== undefined;
  const [y, mo, d] = [field('year'), field('month'), field('day')];
  const leap = `((${y} % 4 = 0 AND ${y} % 100 <> 0) OR ${y} % 400 = 0)`;
  const daysInMonth = `CASE WHEN ${mo} = 2 THEN CASE WHEN ${leap} THEN 29 ELSE 28 END WHEN ${mo} IN (4, 6, 9, 11) THEN 30 ELSE 31 END`;
  const guards = [`${y} >= 1`, `${mo} BETWEEN 1 AND 12`, `${d} BETWEEN 1 AND ${daysInMonth}`];
  if (has('hour')) guards.push(`${field('hour')} <= 23`);
  if (has('minute')) guards.push(`${field('minute')} <= 59`);
  if (has('second')) guards.push(`${field('second')} <= 59`);
  let value = `make_date(${y}, ${mo}, ${d})`;
  if (type !== 'date') {
    const seconds = !has('second') ? '0' : has('fraction') ? `(${field('second')} + ${field('fraction')})` : field('second');
    value = `(${value}::timestamp + make_interval(hours => ${has('hour') ? field('hour') : 0}, mins => ${has('minute') ? field('minute') : 0}, secs => ${seconds}))`;
    if (type === 'timestamptz') value = `(${value} AT TIME ZONE 'UTC')`;
  }
  return `CASE WHEN ${guards.join(' AND ')} THEN ${value} END`;
}

/** What an Excel serial looks like: whole days for a date column, days and a fraction for timestamps. */
function excelShape(type: ColumnType): string {
  return type === 'date' ? '^[0-9]{1,7}$' : '^[0-9]{1,7}([.][0-9]+)?$';
}

/**
 * An Excel serial date (1900 system): 1 is 1900-01-01, 45292 is 2024-01-01, up to 9999-12-31.
 * Excel counts a 29 February 1900 that never was (serial 60, quarantined): serials before it
 * start a day later. A fraction is the time of day (timestamps only), to the millisecond.
 */
function parseExcel(N: string, type: ColumnType): string {
  if (type === 'date') {
    const n = `${N}::int`;
    return `CASE WHEN ${N} ~ ${literal(excelShape(type))} THEN CASE WHEN ${n} BETWEEN 1 AND 2958465 AND ${n} <> 60 THEN DATE '1899-12-30' + ${n} + (${n} < 60)::int END END`;
  }
  const x = `${N}::numeric`;
  let value = `((DATE '1899-12-30' + trunc(${x})::int + (${x} < 60)::int)::timestamp + make_interval(secs => round((${x} - trunc(${x})) * 86400, 3)::double precision))`;
  if (type === 'timestamptz') value = `(${value} AT TIME ZONE 'UTC')`;
  return `CASE WHEN ${N} ~ ${literal(excelShape(type))} THEN CASE WHEN ${x} >= 1 AND ${x} < 2958466 AND trunc(${x}) <> 60 THEN ${value} END END`;
}

/**
 * The check of a column with rules, in order: missing (`required`; `null` when a null token made
 * it empty), `type`, `pattern`, `enum`, `range`. Empty optional values are not checked further.
 */
function ruleCheck(c: CastColumn, raw: string, N: string, typed: string, r: ColumnRules, required: boolean): string {
  const whens: string[] = [];
  const reasons: Record<string, string> = {};
  const empty = c.type === 'text' ? `NULLIF(btrim(${N}, ${literal(SPACE_CHARS)}), '') IS NULL` : `${N} IS NULL`;
  if (required) {
    whens.push(`WHEN ${empty} THEN CASE WHEN NULLIF(btrim(${raw}, ${literal(SPACE_CHARS)}), '') IS NULL THEN 'required' ELSE 'null' END`);
    reasons.null = 'required value is missing (null token %s)';
  } else whens.push(`WHEN ${empty} THEN NULL`);
  if (c.type !== 'text') {
    whens.push(`WHEN ${typed} IS NULL THEN 'type'`);
    reasons.type = typeReason(c.type, r);
  }
  if (r.pattern !== undefined) {
    whens.push(`WHEN ${N} !~ ${literal(anchored(r.pattern))} THEN 'pattern'`);
    reasons.pattern = `does not match the pattern ${escapeFormat(r.pattern)}: %s`;
  }
  if (r.values) {
    const list = c.type === 'text' ? textArray(r.values.map(String)) : `ARRAY[${r.values.map((v) => literal(String(v))).join(', ')}]::numeric[]`;
    whens.push(`WHEN NOT (${c.type === 'text' ? typed : `${typed}::numeric`} = ANY(${list})) THEN 'enum'`);
    const shown = r.values.slice(0, 10).map((v) => (typeof v === 'string' ? JSON.stringify(v) : String(v)));
    reasons.enum = `not one of ${escapeFormat(shown.join(', '))}${r.values.length > 10 ? ', …' : ''}: %s`;
  }
  if (r.min !== undefined) whens.push(`WHEN ${typed} < ${boundSql(c.type, r.min)} THEN 'range'`);
  if (r.max !== undefined) whens.push(`WHEN ${typed} > ${boundSql(c.type, r.max)} THEN 'range'`);
  if (r.min !== undefined || r.max !== undefined) {
    reasons.range = r.min !== undefined && r.max !== undefined ? `not between ${r.min} and ${r.max}: %s` : r.min !== undefined ? `below the minimum ${r.min}: %s` : `above the maximum ${r.max}: %s`;
  }
  return `(${literal(c.name)}, ${raw}, CASE ${whens.join(' ')} END, ${literal(c.type)}, ${literal(JSON.stringify(reasons))}::jsonb)`;
}

/** The message of a value that does not cast, naming the form the column expects. */
function typeReason(type: ColumnType, r: ColumnRules): string {
  const integer = type === 'integer' || type === 'bigint';
  const kind = integer ? 'an integer' : NUMBER_TYPES.includes(type) ? 'a number' : type === 'date' ? 'a date' : 'a timestamp';
  const excel = r.excelDates ? ' or an Excel serial date' : '';
  if (r.number) return `not ${kind} in the form ${numberExample(r.number, integer)}${integer ? ' (or out of range)' : ''}: %s`;
  if (r.date) return `not ${kind} in ${r.date.pattern}${excel}: %s`;
  if (r.excelDates) return `not ${kind} (yyyy-mm-dd)${excel}: %s`;
  return `not a valid ${type}: %s`;
}

function boundSql(type: ColumnType, bound: number | string): string {
  if (typeof bound === 'number') return `${literal(String(bound))}::numeric`;
  return `${type === 'date' ? 'DATE' : type === 'timestamp' ? 'TIMESTAMP' : 'TIMESTAMPTZ'} ${literal(bound)}`;
}

function textArray(items: readonly string[]): string {
  return `ARRAY[${items.map(literal).join(', ')}]::text[]`;
}

/** Reasons are format() templates: a % of the definition's own text must stay a %. */
function escapeFormat(text: string): string {
  return text.replace(/%/g, '%%');
}

// ─── Statements over the rows that passed their checks ────────────────────────────────────────

/** SQL: this staged row (alias `s`) has no quarantine row of this load yet ($1 is the load). */
export function passedSql(quarantine: string): string {
  return `NOT EXISTS (SELECT 1 FROM ${quarantine} q WHERE q.load_id = $1 AND q.source_line = s._source_line)`;
}

/**
 * References: each value must be in the referenced clean table's column (of its current rows,
 * for a dataset that keeps history). One anti-join per referenced column, so that a large
 * reference table is hashed or merged, never scanned once per row.
 */
export async function quarantineReferences(client: pg.PoolClient, plan: CastPlan): Promise<void> {
  for (const c of plan.columns) {
    const ref = plan.rules?.columns.get(c.name)?.reference;
    if (!ref) continue;
    const rows = compileRows([c], plan.rules, 'check');
    const value = rows.value(c);
    const col = `rr.${ident(ref.column)}`;
    const [mine, theirs] = ref.compare === 'same' ? [value, col] : ref.compare === 'numeric' ? [`${value}::numeric`, `${col}::numeric`] : [`${value}::text`, `${col}::text`];
    await client.query(
      `INSERT INTO ${plan.quarantine} (load_id, source_line, column_name, raw_value, rule, reason)
       SELECT $1, s._source_line, $2, s.${ident(c.from)}, 'reference', format('not in %s: %s', $3::text, left(s.${ident(c.from)}, 80))
         FROM ${plan.staging} s${rows.joins}
        WHERE ${value} IS NOT NULL AND ${passedSql(plan.quarantine)}
          AND NOT EXISTS (SELECT 1 FROM ${ref.table} rr WHERE ${theirs} = ${mine}${ref.current ? ' AND rr.valid_to IS NULL' : ''})`,
      [plan.loadId, c.name, ref.label],
    );
  }
}

/**
 * Unique columns: a value that an earlier line of the load already has is quarantined (the first
 * line keeps it); in append mode, so is a value that a row of the table already has. Runs after
 * de-duplication, so that only the rows that stay compete.
 */
export async function quarantineRepeatedValues(client: pg.PoolClient, plan: CastPlan, mode: string): Promise<void> {
  for (const c of plan.columns) {
    if (!plan.rules?.columns.get(c.name)?.unique) continue;
    const rows = compileRows([c], plan.rules, 'check');
    const value = rows.value(c);
    const raw = `s.${ident(c.from)}`;
    await client.query(
      `INSERT INTO ${plan.quarantine} (load_id, source_line, column_name, raw_value, rule, reason)
       SELECT $1, d._source_line, $2, d.raw, 'unique', format('duplicate value: same %s as line %s', $2::text, d.first_line)
         FROM (SELECT s._source_line, ${raw} AS raw, row_number() OVER w AS n, first_value(s._source_line) OVER w AS first_line
                 FROM ${plan.staging} s${rows.joins} WHERE ${value} IS NOT NULL AND ${passedSql(plan.quarantine)}
               WINDOW w AS (PARTITION BY ${value} ORDER BY s._source_line)) d
        WHERE d.n > 1`,
      [plan.loadId, c.name],
    );
    if (mode === 'append') {
      await client.query(
        `INSERT INTO ${plan.quarantine} (load_id, source_line, column_name, raw_value, rule, reason)
         SELECT $1, s._source_line, $2, ${raw}, 'unique', format('value already in the table (load %s, line %s)', hit._load_id, hit._source_line)
           FROM ${plan.staging} s${rows.joins}
           JOIN (SELECT DISTINCT ON (t.${ident(c.name)}) t.${ident(c.name)} AS v, t._load_id, t._source_line FROM ${plan.target} t
                  ORDER BY t.${ident(c.name)}, t._load_id, t._source_line) hit ON hit.v = ${value}
          WHERE ${passedSql(plan.quarantine)}`,
        [plan.loadId, c.name],
      );
    }
  }
}

/**
 * The window order that de-duplication keeps the first row of: the `orderBy` columns (empty values
 * last), then the line in the file — ascending to keep the first, descending to keep the last.
 */
export function dedupeOrder(plan: RulePlan | undefined, value: (name: string) => string): { order: string; rule: 'dedupe' | 'unique'; kept: string } {
  const dedupe = plan?.dedupe;
  if (!dedupe) return { order: 's._source_line', rule: 'unique', kept: '' };
  const direction = dedupe.keep === 'last' ? 'DESC' : 'ASC';
  const order = [...dedupe.orderBy.map((o) => `${value(o)} ${direction} NULLS LAST`), `s._source_line ${direction}`].join(', ');
  const by = dedupe.orderBy.length > 0 ? `by ${dedupe.orderBy.join(', ')}` : 'in the file';
  return { order, rule: 'dedupe', kept: `the ${dedupe.keep} ${by}` };
}
