/**
 * Cleaning rules compiled to SQL (compileRows), run in PostgreSQL: needs the database. Validation
 * of the rules themselves (date patterns, regular expressions, what a definition may say) is in
 * test/unit/rules.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import type { ColumnDefinition } from '../../contract/definition.ts';
import { datasetSchema } from '../../contract/schema.ts';
import type { CastColumn } from '../../functions/clean/cast.ts';
import { compileRows, resolveRules, rulesNeedChecks } from '../../functions/clean/rules.ts';
import { closePool, getPool, literal } from '../../functions/common/db.ts';
import { migrate } from '../../functions/migrate/migrate.ts';

type ColumnInput = Partial<ColumnDefinition> & { name: string };

/** A dataset with these columns (and dataset-level clean settings), as validation leaves it. */
function datasetWith(columns: ColumnInput[], clean: Record<string, unknown> = {}) {
  return datasetSchema.parse({ name: 'things', source: { type: 'upload', supplier: 'city' }, clean: { ...clean, columns } });
}

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

  it("reads Excel serial dates, with Excel's 29 February 1900 quarantined, and fractions as the time of day", async () => {
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
