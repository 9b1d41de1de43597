import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { datasetSchema, type ColumnDefinition } from '../../contract/definition.ts';
import { parsePipeline, PipelineDefinitionError } from '../../contract/load.ts';
import { parseDatePattern, regexProblem } from '../../contract/rules.ts';
import type { CastColumn } from '../../functions/clean/cast.ts';
import { compileRows, resolveRules, rulesNeedChecks } from '../../functions/clean/rules.ts';
import { closePool, getPool, literal } from '../../functions/common/db.ts';
import { migrate } from '../../functions/migrate/migrate.ts';

type ColumnInput = Partial<ColumnDefinition> & { name: string };

/** A dataset with these columns (and dataset-level clean settings), as validation leaves it. */
function datasetWith(columns: ColumnInput[], clean: Record<string, unknown> = {}) {
  return datasetSchema.parse({ name: 'things', source: { type: 'upload', supplier: 'city' }, clean: { ...clean, columns } });
}

/** The problems validation reports for a pipeline with these datasets (no problem: []). */
function problemsOf(datasets: Record<string, unknown>[]): string[] {
  try {
    parsePipeline({ project: 'city', suppliers: [{ name: 'city' }], datasets: datasets.map((d) => ({ source: { type: 'upload', supplier: 'city' }, ...d })) }, 'pipeline.yaml');
    return [];
  } catch (error) {
    if (!(error instanceof PipelineDefinitionError)) throw error;
    return [...error.problems];
  }
}

describe('date patterns', () => {
  it('accepts only values of the pattern\'s shape, and knows where each field is in them', () => {
    const pattern = parseDatePattern('mm/dd/yyyy hh:mi');
    const shape = new RegExp(pattern.regex);

    expect(['12/31/1999 23:59', '12/31/99 23:59', '1999-12-31 23:59', '12/31/1999'].map((v) => shape.test(v))).toEqual([true, false, false, false]);
    expect(pattern.separators).toBe('/ :');
    expect(pattern.fields).toEqual({
      month: { part: 1, offset: 1, width: 2 },
      day: { part: 2, offset: 1, width: 2 },
      year: { part: 3, offset: 1, width: 4 },
      hour: { part: 4, offset: 1, width: 2 },
      minute: { part: 5, offset: 1, width: 2 },
    });
  });

  it('accepts one-digit days and months only where a separator follows', () => {
    expect(new RegExp(parseDatePattern('d.m.yyyy').regex).test('1.2.2024')).toBe(true);
    expect(new RegExp(parseDatePattern('yyyymmdd').regex).test('20240102')).toBe(true);
    expect(() => parseDatePattern('dmyyyy')).toThrow(/d has a variable number of digits, so it needs a separator/);
  });

  it('explains the mistakes people make when writing a pattern', () => {
    expect(() => parseDatePattern('dd-mm-yyyy hh:mm')).toThrow('"dd-mm-yyyy hh:mm" has the month twice (mm and mm) (minutes are mi)');
    expect(() => parseDatePattern('dd-mm-yy')).toThrow('two-digit years are ambiguous: use yyyy in "dd-mm-yy"');
    expect(() => parseDatePattern('dd-mm')).toThrow('"dd-mm" has no year (yyyy)');
    expect(() => parseDatePattern('dd-mmm-yyyy')).toThrow(/"m" at position 6 .* has a variable number|month twice/);
    expect(() => parseDatePattern('dd-mm-yyyy %H')).toThrow('"%" at position 12 of "dd-mm-yyyy %H" is not a pattern letter (yyyy, mm, dd, hh, mi, ss, ff) or a separator (space - / . : , T)');
  });
});

describe('regular expressions', () => {
  it('accepts the expressions that PostgreSQL reads as JavaScript does', () => {
    expect(regexProblem('[0-9]{4} ?[A-Z]{2}')).toBeUndefined();
    expect(regexProblem('(?:[a-z]+\\.)*[a-z]+@[a-z]+\\.(org|nl)')).toBeUndefined();
    expect(regexProblem('[0-9]+(?<![.]0)')).toBeUndefined(); // lookbehind: PostgreSQL has it too
  });

  it('refuses what does not compile, and what PostgreSQL would read differently', () => {
    expect(regexProblem('[a-')).toMatch(/^is not a valid regular expression: /);
    expect(regexProblem('(?<code>[0-9]+)')).toBe('uses a named group (?<name> …), which PostgreSQL does not support; use ( … )');
    expect(regexProblem('\\bword\\b')).toMatch(/^uses \\b, which PostgreSQL reads as a backspace/);
    expect(regexProblem('a{300}')).toBe("repeats more than 255 times in {300} (PostgreSQL's limit)");
    expect(regexProblem('\\\\b')).toBeUndefined(); // an escaped backslash, then a b
    expect(regexProblem('[[:alpha:]]+')).toMatch(/^uses a POSIX class/);
  });
});

describe('validation of cleaning rules', () => {
  it('accepts a dataset that uses every rule', () => {
    const problems = problemsOf([
      { name: 'areas', clean: { columns: [{ name: 'code' }] } },
      {
        name: 'sites',
        clean: {
          nullTokens: true,
          trim: 'collapse',
          columns: [
            { name: 'id', type: 'integer', unique: true },
            { name: 'name', case: 'title', required: true },
            { name: 'postcode', case: 'upper', pattern: '[0-9]{4} ?[A-Z]{2}' },
            { name: 'status', case: 'lower', values: ['open', 'closed'] },
            { name: 'opened', type: 'date', format: 'dd-mm-yyyy', excelDates: true, min: '1900-01-01', max: '2100-01-01' },
            { name: 'budget', type: 'numeric', format: { decimal: ',', thousands: '.' }, min: 0 },
            { name: 'area', references: { dataset: 'areas', column: 'code' } },
          ],
          key: ['id'],
          dedupe: { orderBy: ['opened'], keep: 'last' },
        },
      },
    ]);

    expect(problems).toEqual([]);
  });

  it('names the dataset and field of a reference to an unknown dataset or column, or to itself', () => {
    const problems = problemsOf([
      { name: 'areas', clean: { columns: [{ name: 'code' }] } },
      {
        name: 'sites',
        clean: {
          columns: [
            { name: 'a', references: { dataset: 'zones', column: 'code' } },
            { name: 'b', references: { dataset: 'areas', column: 'name' } },
            { name: 'c', references: { dataset: 'sites', column: 'a' } },
          ],
        },
      },
    ]);

    expect(problems).toEqual([
      'dataset "sites" → clean.columns[2].references.dataset: column "c": a dataset cannot reference itself',
      'dataset "sites" → clean.columns[0].references.dataset: column "a" references unknown dataset "zones"',
      'dataset "sites" → clean.columns[1].references.column: column "b" references "name", which is not a column of dataset "areas" (code)',
    ]);
  });

  it('reports a bad pattern, min above max, and options that do not apply to the column type', () => {
    const problems = problemsOf([
      {
        name: 'sites',
        clean: {
          columns: [
            { name: 'code', pattern: '([A-Z]' },
            { name: 'score', type: 'integer', min: 10, max: 5 },
            { name: 'amount', type: 'numeric', format: 'dd-mm-yyyy' },
            { name: 'day', type: 'date', format: { decimal: ',' } },
            { name: 'price', type: 'numeric', format: { decimal: ',', thousands: ',' } },
            { name: 'count', type: 'integer', case: 'upper', excelDates: true },
            { name: 'since', type: 'date', min: 'yesterday' },
            { name: 'at', type: 'date', format: 'dd-mm-yyyy hh:mi' },
          ],
        },
      },
    ]);

    expect(problems).toEqual([
      expect.stringMatching(/^dataset "sites" → clean\.columns\[0\]\.pattern: column "code": pattern "\(\[A-Z\]" is not a valid regular expression: /),
      'dataset "sites" → clean.columns[1].min: column "score": min (10) is greater than max (5)',
      'dataset "sites" → clean.columns[2].format: column "amount": a date pattern such as "dd-mm-yyyy" applies to date and timestamp columns, not numeric (a number\'s format is { decimal, thousands })',
      'dataset "sites" → clean.columns[3].format: column "day": { decimal, thousands } applies to number columns, not date (a date\'s format is a pattern such as "dd-mm-yyyy")',
      'dataset "sites" → clean.columns[4].format: column "price": the decimal and thousands separators are both ","',
      'dataset "sites" → clean.columns[5].excelDates: column "count": Excel serial dates apply to date and timestamp columns, not integer',
      'dataset "sites" → clean.columns[5].case: column "count": case applies to text columns, not integer',
      'dataset "sites" → clean.columns[6].min: column "since": min must be a date yyyy-mm-dd for a date column',
      'dataset "sites" → clean.columns[7].format: column "at": "dd-mm-yyyy hh:mi" has a time, but the column is a date; declare type timestamp',
    ]);
  });

  it('reports enumeration values that the column\'s own rules would never let through', () => {
    const problems = problemsOf([
      {
        name: 'sites',
        clean: {
          nullTokens: true,
          columns: [
            { name: 'status', case: 'lower', values: ['open', 'Closed'] },
            { name: 'kind', trim: true, values: [' a'] },
            { name: 'code', pattern: '[A-Z]+', values: ['AB', 'a1'] },
            { name: 'level', values: ['high', 'NA'] },
            { name: 'size', type: 'integer', values: [1, 2.5, 'three'] },
          ],
        },
      },
    ]);

    expect(problems).toEqual([
      'dataset "sites" → clean.columns[0].values: column "status": value "Closed" is not lower case, and case lower applies to every value first: it can never match',
      'dataset "sites" → clean.columns[1].values: column "kind": value " a" has surrounding spaces, which trim removes from every value: it can never match',
      'dataset "sites" → clean.columns[2].values: column "code": value "a1" does not match the column\'s pattern: it can never be accepted',
      'dataset "sites" → clean.columns[3].values: column "level": value "NA" is a null token of this column: it becomes empty before the check',
      'dataset "sites" → clean.columns[4].values: column "size": value 2.5 is not an integer',
      'dataset "sites" → clean.columns[4].values: column "size": value "three" must be a number for this integer column',
    ]);
  });

  it('reports de-duplication without a key, or ordered by an unknown column', () => {
    expect(problemsOf([{ name: 'sites', clean: { columns: [{ name: 'id' }], dedupe: { keep: 'last' } } }])).toEqual([
      'dataset "sites" → clean.dedupe: de-duplication needs a key (clean.key): the rows that share one are duplicates',
    ]);
    expect(problemsOf([{ name: 'sites', clean: { columns: [{ name: 'id' }], key: ['id'], dedupe: { orderBy: ['updated'] } } }])).toEqual([
      'dataset "sites" → clean.dedupe.orderBy[0]: "updated" is not a declared column',
    ]);
  });
});

describe('compiled rules', () => {
  let client: pg.PoolClient;

  beforeAll(async () => {
    const pool = await getPool();
    await migrate(pool, undefined);
    client = await pool.connect();
    await client.query(`SET datestyle = 'ISO, MDY'`);
  });
  afterAll(async () => {
    client.release();
    await closePool();
  });

  /**
   * Run one column's compiled rules over these raw values, as castInto does: the check statement
   * finds the failing values (rule and reason), the trusted one casts the others.
   */
  async function clean(column: ColumnInput, raws: (string | null)[], datasetClean: Record<string, unknown> = {}) {
    const dataset = datasetWith([column], datasetClean);
    const declared = dataset.clean.columns![0]!;
    const c: CastColumn = { name: declared.name, type: declared.type, required: declared.required, from: 'raw' };
    const plan = resolveRules(dataset, [c]);
    const staging = `(VALUES ${raws.map((v, i) => `(${v === null ? 'NULL' : literal(v)}::text, ${i + 1})`).join(', ')}) AS s(raw, _source_line)`;
    const check = compileRows([c], plan, 'check');
    const failures = check.checks.length
      ? (
          await client.query<{ line: number; rule: string; reason: string }>(
            `SELECT s._source_line AS line, v.rule, format(v.reasons ->> v.rule, left(v.raw, 80)) AS reason
               FROM ${staging}${check.joins} CROSS JOIN LATERAL (VALUES ${check.checks.join(', ')}) AS v(col, raw, rule, type, reasons)
              WHERE v.rule IS NOT NULL`,
          )
        ).rows
      : [];
    const failed = new Set(failures.map((f) => f.line));
    const trusted = compileRows([c], plan, 'trusted');
    const values = (await client.query<{ line: number; value: string | null }>(`SELECT s._source_line AS line, (${trusted.value(c)})::text AS value FROM ${staging}${trusted.joins}`)).rows;
    return raws.map((raw, i) => {
      const failure = failures.find((f) => f.line === i + 1);
      return failure ? { raw, rule: failure.rule, reason: failure.reason } : { raw, value: failed.has(i + 1) ? undefined : values.find((v) => v.line === i + 1)!.value };
    });
  }

  it('compiles a column without rules exactly as a plain cast', () => {
    const c: CastColumn = { name: 'n', type: 'integer', required: false, from: 'N' };

    const rows = compileRows([c], resolveRules(datasetWith([{ name: 'n', type: 'integer' }]), [c]), 'trusted');

    expect(rows).toMatchObject({ joins: '' });
    // trimmed of white space and no-break spaces, then PostgreSQL's own cast
    expect(rows.value(c)).toMatch(/^NULLIF\(btrim\(s\."N", '[ \t\n\r\v\f\u00a0\u2007\u202f\ufeff]+'\), ''\)::integer$/);
  });

  it('needs the row-by-row checks only for rules that can reject a value other than by its cast', () => {
    const c: CastColumn = { name: 'n', type: 'numeric', required: false, from: 'n' };
    const plan = (column: ColumnInput) => resolveRules(datasetWith([column]), [c]);

    expect(rulesNeedChecks(plan({ name: 'n', type: 'numeric', format: { decimal: ',' }, trim: true }))).toBe(false);
    expect(rulesNeedChecks(plan({ name: 'n', type: 'numeric', min: 0 }))).toBe(true);
    expect(rulesNeedChecks(plan({ name: 'n', type: 'numeric', unique: true }))).toBe(true);
  });

  it('raises a data exception on a badly formatted value in the one-statement cast', async () => {
    const dataset = datasetWith([{ name: 'n', type: 'numeric', format: { decimal: ',' } }]);
    const c: CastColumn = { name: 'n', type: 'numeric', required: false, from: 'raw' };
    const rows = compileRows([c], resolveRules(dataset, [c]), 'optimistic');
    const select = (raw: string) => client.query(`SELECT (${rows.value(c)})::text AS v FROM (VALUES (${literal(raw)}, 1)) AS s(raw, _source_line)${rows.joins}`);

    expect((await select('2,5')).rows).toEqual([{ v: '2.5' }]);
    await expect(select('2.5')).rejects.toMatchObject({ code: '22012' });
  });

  it('turns the configured null tokens into empty values, ignoring case and surrounding spaces', async () => {
    expect(await clean({ name: 't', nullTokens: ['n/a', '-'] }, ['N/A', ' - ', 'none', null])).toEqual([
      { raw: 'N/A', value: null },
      { raw: ' - ', value: null },
      { raw: 'none', value: 'none' },
      { raw: null, value: null },
    ]);
  });

  it('quarantines a null token where a value is required, as rule null, and a blank one as rule required', async () => {
    expect(await clean({ name: 't', required: true }, ['NA', '  ', 'x'], { nullTokens: true })).toEqual([
      { raw: 'NA', rule: 'null', reason: 'required value is missing (null token NA)' },
      { raw: '  ', rule: 'required', reason: null },
      { raw: 'x', value: 'x' },
    ]);
  });

  it('folds case with Unicode rules, whatever the database locale', async () => {
    expect(await clean({ name: 't', case: 'upper' }, ['straße', 'école'])).toEqual([
      { raw: 'straße', value: 'STRASSE' },
      { raw: 'école', value: 'ÉCOLE' },
    ]);
    expect(await clean({ name: 't', case: 'title', trim: 'collapse' }, ['  jean-luc\t\tpicard '])).toEqual([{ raw: '  jean-luc\t\tpicard ', value: 'Jean-Luc Picard' }]);
  });

  it('reads Swiss and French thousands separators, and keeps integers in range', async () => {
    expect(await clean({ name: 'n', type: 'numeric', format: { thousands: "'" } }, ["1'234.50", '1’234', "12'34"])).toEqual([
      { raw: "1'234.50", value: '1234.50' },
      { raw: '1’234', value: '1234' },
      { raw: "12'34", rule: 'type', reason: "not a number in the form 1'234.5: 12'34" },
    ]);
    expect(await clean({ name: 'n', type: 'integer', format: { thousands: ' ' } }, ['2\u202f147\u202f483\u202f647', '2 147 483 648'])).toEqual([
      { raw: '2\u202f147\u202f483\u202f647', value: '2147483647' },
      { raw: '2 147 483 648', rule: 'type', reason: 'not an integer in the form 1 234 (or out of range): 2 147 483 648' },
    ]);
  });

  it('reads timestamps with seconds and fractions, and timestamptz as UTC', async () => {
    expect(await clean({ name: 't', type: 'timestamp', format: 'yyyy-mm-ddThh:mi:ss.ff' }, ['2024-03-31T23:59:58.25', '2024-03-31T23:59:60.0'])).toEqual([
      { raw: '2024-03-31T23:59:58.25', value: '2024-03-31 23:59:58.25' },
      { raw: '2024-03-31T23:59:60.0', rule: 'type', reason: 'not a timestamp in yyyy-mm-ddThh:mi:ss.ff: 2024-03-31T23:59:60.0' },
    ]);
    await client.query(`SET TimeZone = 'Europe/Amsterdam'`);
    expect(await clean({ name: 't', type: 'timestamptz', format: 'dd/mm/yyyy h:mi' }, ['01/07/2024 9:05'])).toEqual([{ raw: '01/07/2024 9:05', value: '2024-07-01 11:05:00+02' }]);
    await client.query(`RESET TimeZone`);
  });

  it('reads one-digit days and months where separators allow, and fixed-width fields without separators', async () => {
    expect(await clean({ name: 'd', type: 'date', format: 'd.m.yyyy' }, ['1.2.2024', '01.12.2024', '1.13.2024'])).toEqual([
      { raw: '1.2.2024', value: '2024-02-01' },
      { raw: '01.12.2024', value: '2024-12-01' },
      { raw: '1.13.2024', rule: 'type', reason: 'not a date in d.m.yyyy: 1.13.2024' },
    ]);
    expect(await clean({ name: 'd', type: 'date', format: 'yyyymmdd' }, ['20240229', '20230229', '2024229'])).toEqual([
      { raw: '20240229', value: '2024-02-29' },
      { raw: '20230229', rule: 'type', reason: 'not a date in yyyymmdd: 20230229' },
      { raw: '2024229', rule: 'type', reason: 'not a date in yyyymmdd: 2024229' },
    ]);
  });

  it('reads Excel serial dates, with Excel\'s 29 February 1900 quarantined, and fractions as the time of day', async () => {
    expect(await clean({ name: 'd', type: 'date', excelDates: true, format: 'dd-mm-yyyy' }, ['1', '59', '60', '61', '45292', '2958465', '2958466', '15-03-2024', '45292.5'])).toEqual([
      { raw: '1', value: '1900-01-01' },
      { raw: '59', value: '1900-02-28' },
      { raw: '60', rule: 'type', reason: 'not a date in dd-mm-yyyy or an Excel serial date: 60' },
      { raw: '61', value: '1900-03-01' },
      { raw: '45292', value: '2024-01-01' },
      { raw: '2958465', value: '9999-12-31' },
      { raw: '2958466', rule: 'type', reason: 'not a date in dd-mm-yyyy or an Excel serial date: 2958466' },
      { raw: '15-03-2024', value: '2024-03-15' },
      { raw: '45292.5', rule: 'type', reason: 'not a date in dd-mm-yyyy or an Excel serial date: 45292.5' },
    ]);
    expect(await clean({ name: 't', type: 'timestamp', excelDates: true }, ['45292.75', '2024-01-01 08:00'])).toEqual([
      { raw: '45292.75', value: '2024-01-01 18:00:00' },
      { raw: '2024-01-01 08:00', value: '2024-01-01 08:00:00' },
    ]);
  });

  it('checks bounds of timestamps and values of number enumerations on the cast value', async () => {
    expect(await clean({ name: 't', type: 'timestamp', max: '2024-12-31 23:59' }, ['2024-12-31 23:59', '2025-01-01'])).toEqual([
      { raw: '2024-12-31 23:59', value: '2024-12-31 23:59:00' },
      { raw: '2025-01-01', rule: 'range', reason: 'above the maximum 2024-12-31 23:59: 2025-01-01' },
    ]);
    expect(await clean({ name: 'n', type: 'numeric', values: [1, 2.5] }, ['2.50', '3'])).toEqual([
      { raw: '2.50', value: '2.50' },
      { raw: '3', rule: 'enum', reason: 'not one of 1, 2.5: 3' },
    ]);
  });

  it('keeps quotes and percent signs of the definition out of the SQL and the reasons', async () => {
    expect(await clean({ name: 't', values: ["it's", '100%'] }, ["it's", '100%', 'x'])).toEqual([
      { raw: "it's", value: "it's" },
      { raw: '100%', value: '100%' },
      { raw: 'x', rule: 'enum', reason: 'not one of "it\'s", "100%": x' },
    ]);
    expect(await clean({ name: 't', pattern: "[0-9]+%|n'a" }, ['50%', "n'a", '5'])).toEqual([
      { raw: '50%', value: '50%' },
      { raw: "n'a", value: "n'a" },
      { raw: '5', rule: 'pattern', reason: "does not match the pattern [0-9]+%|n'a: 5" },
    ]);
  });
});
