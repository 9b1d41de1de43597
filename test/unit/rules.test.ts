import { describe, expect, it } from 'vitest';
import { parsePipeline, PipelineDefinitionError } from '../../contract/load.ts';
import { parseDatePattern, regexProblem } from '../../contract/rules.ts';

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
  it("accepts only values of the pattern's shape, and knows where each field is in them", () => {
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

  it("reports enumeration values that the column's own rules would never let through", () => {
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
