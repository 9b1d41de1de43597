import { describe, expect, it } from 'vitest';
import { sourceSecrets } from '../../contract/definition.ts';
import { parsePipeline } from '../../contract/load.ts';
import { bindWatermark, laterOf } from '../../functions/get/fetch-sql.ts';
import { problemsOf } from '../helpers/definition.ts';

const withSource = (source: Record<string, unknown>) => ({
  project: 'city',
  datasets: [{ name: 'grants', source: { type: 'sql', engine: 'postgres', secret: 'datamart/reader', ...source }, schedule: 'rate(1 hour)' }],
});

describe('SQL source definitions', () => {
  it('accepts a query with its defaults, and grants exactly its secret', () => {
    const source = parsePipeline(withSource({ query: 'SELECT * FROM grants WHERE updated_at > :watermark', incremental: { column: 'updated_at' } })).datasets[0]!.source;

    expect(source).toEqual({
      type: 'sql',
      engine: 'postgres',
      secret: 'datamart/reader',
      query: 'SELECT * FROM grants WHERE updated_at > :watermark',
      incremental: { column: 'updated_at', overlapSeconds: 0, initial: '1970-01-01T00:00:00Z' },
      batchRows: 5000,
      connectTimeoutSeconds: 15,
      network: 'internet',
    });
    expect(sourceSecrets(source)).toEqual(['datamart/reader']);
  });

  it('accepts a query that starts with a comment or a WITH', () => {
    expect(() => parsePipeline(withSource({ engine: 'mysql', query: '-- grants of the year\nWITH g AS (SELECT 1 AS id) SELECT * FROM g' }))).not.toThrow();
  });

  it('rejects an incremental source whose query has no :watermark, and a :watermark without incremental', () => {
    expect(problemsOf(withSource({ query: 'SELECT * FROM grants', incremental: { column: 'updated_at' } }))).toEqual([
      'dataset "grants" → source.query: an incremental query needs :watermark where the last value goes (e.g. WHERE updated_at > :watermark)',
    ]);
    expect(problemsOf(withSource({ query: 'SELECT * FROM grants WHERE updated_at > :watermark' }))).toEqual([
      'dataset "grants" → source.incremental: the query uses :watermark: declare incremental: { column: … }',
    ]);
  });

  it('rejects a statement that is not a SELECT, an unknown engine, a missing secret and a typo', () => {
    const problems = problemsOf(withSource({ engine: 'oracle', secret: undefined, query: 'DELETE FROM grants', batchRow: 10 }));

    expect(problems).toContainEqual('dataset "grants" → source.query: must be a SELECT (or WITH … SELECT) statement');
    expect(problems).toContainEqual(expect.stringMatching(/^dataset "grants" → source\.engine: .*"postgres"\|"mysql"/));
    expect(problems).toContainEqual(expect.stringMatching(/^dataset "grants" → source\.secret: /));
    expect(problems).toContainEqual(expect.stringMatching(/^dataset "grants" → source: Unrecognized key: "batchRow"/));
  });
});

describe('binding :watermark', () => {
  it('becomes $1 for PostgreSQL, once, whatever the number of uses', () => {
    expect(bindWatermark('SELECT * FROM t WHERE a > :watermark OR b > :watermark;', 'postgres', '2024-01-01T00:00:00Z')).toEqual({
      text: 'SELECT * FROM t WHERE a > $1 OR b > $1',
      values: ['2024-01-01T00:00:00Z'],
    });
  });

  it('becomes ? for MySQL, one value per use', () => {
    expect(bindWatermark('SELECT * FROM t WHERE a > :watermark OR b > :watermark', 'mysql', 5)).toEqual({ text: 'SELECT * FROM t WHERE a > ? OR b > ?', values: [5, 5] });
  });

  it('leaves quotes, comments, casts and dollar quoting alone', () => {
    const query = `SELECT ':watermark' AS a, "x:watermark" AS b, c::text, $$ :watermark $$ AS d -- :watermark\n/* :watermark */ FROM t WHERE c > :watermark`;

    const bound = bindWatermark(query, 'postgres', 1);

    expect(bound.text).toBe(query.replace(/:watermark$/, '$1'));
  });

  it('refuses a second statement, and a bare ? for MySQL', () => {
    expect(() => bindWatermark('SELECT 1; DROP TABLE t', 'postgres', undefined)).toThrow('the query holds more than one statement: give one SELECT');
    expect(() => bindWatermark('SELECT * FROM t WHERE a = ?', 'mysql', undefined)).toThrow('the query has a ? outside quotes');
    expect(bindWatermark("SELECT '?' AS q; -- done", 'mysql', undefined)).toEqual({ text: "SELECT '?' AS q", values: [] });
  });
});

describe('the watermark moves forward only', () => {
  it('compares times in time (fractions, zones), big numbers by value, and ignores NULL', () => {
    expect(laterOf('2024-01-01T00:00:00Z', '2024-01-01T00:00:00.5Z')).toBe('2024-01-01T00:00:00.5Z');
    expect(laterOf('2024-01-01T00:00:00.000001Z', '2024-01-01T00:00:00Z')).toBe('2024-01-01T00:00:00.000001Z');
    expect(laterOf('2024-01-01T10:00:00Z', '2024-01-01T11:00:00+02:00')).toBe('2024-01-01T10:00:00Z');
    expect(laterOf('9007199254740993', '9007199254740992')).toBe('9007199254740993');
    expect(laterOf('99', '100')).toBe('100');
    expect(laterOf(-5, '-4.5')).toBe('-4.5');
    expect(laterOf('2024-01-02', null)).toBe('2024-01-02');
    expect(laterOf(undefined, 7)).toBe(7);
  });
});
