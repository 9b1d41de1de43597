/**
 * How CSV files are read, one regression test per class of file that used to load wrong, through
 * `civic-etl load` as a user runs it: repeated header lines, a bare quote inside a field, a ragged
 * file, BOMs in odd places, CR-only line endings, a header of odd characters, and empty fields
 * (quoted or not). Real files come from test/fixtures/csv-read (see ORIGIN.md); the expected facts
 * were computed with Python's `csv` module.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { getPool } from '../../functions/common/db.ts';
import { rows } from './support.ts';

const FIXTURES = join(import.meta.dirname, '../fixtures/csv-read');
const dir = mkdtempSync(join(tmpdir(), 'csv-structure-'));
let pool: pg.Pool;

beforeAll(async () => {
  pool = await getPool();
  await pool.query('DROP SCHEMA IF EXISTS csvs CASCADE; CREATE SCHEMA csvs');
});

function civicEtl(...args: string[]) {
  const r = spawnSync(process.execPath, ['bin/civic-etl.mjs', ...args], { encoding: 'utf8', env: { ...process.env, NODE_NO_WARNINGS: '1' }, timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function file(name: string, content: string | Buffer): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

const fixture = (name: string) => readFileSync(join(FIXTURES, name));

describe('CSV structure', () => {
  it('skips header lines repeated above the data, and says so (csv-detective a_test_file.csv: the header three times)', async () => {
    const path = join(FIXTURES, 'csv-detective-a_test_file.csv');
    const load = civicEtl('load', path, '--table', 'csvs.repeated');
    expect(load.status, load.stderr).toBe(0);
    expect(load.stdout + load.stderr).toMatch(/2 lines repeating the header skipped \(first on line 2\)/);
    const [r] = await rows<{ n: number; names: number; headers: number }>(
      pool,
      `SELECT count(*)::int AS n, count(DISTINCT nomcom)::int AS names, count(*) FILTER (WHERE nomcom = 'NOMCOM')::int AS headers FROM csvs.repeated`,
    );
    expect(r).toEqual({ n: 404, names: 397, headers: 0 });
    const profile = civicEtl('profile', path, '--json');
    expect(JSON.parse(profile.stdout).warnings).toContain('2 lines repeating the header skipped (first on line 2)');
  });

  it('skips the header repeated inside the data (files concatenated, the second with its BOM)', async () => {
    const path = file('concatenated.csv', '\uFEFFid,name\n1,a\n\uFEFFid,name\n2,b\n"id","name"\n3,c\n');
    const load = civicEtl('load', path, '--table', 'csvs.concatenated');
    expect(load.status, load.stderr).toBe(0);
    expect(await rows(pool, 'SELECT id, name FROM csvs.concatenated ORDER BY id')).toEqual([
      { id: 1, name: 'a' },
      { id: 2, name: 'b' },
      { id: 3, name: 'c' },
    ]);
  });

  it('loads a bare quote inside a field as the character it is (frictionless escaping.csv)', async () => {
    const load = civicEtl('load', join(FIXTURES, 'frictionless-escaping.csv'), '--table', 'csvs.escaping');
    expect(load.status, load.stderr).toBe(0);
    // Python's csv module reads the same: the fields start with a space, so their quotes are text
    expect(await rows(pool, 'SELECT id, test FROM csvs.escaping ORDER BY id')).toEqual([
      { id: 1, test: ' "Test line 1"' },
      { id: 2, test: ' "Test "" line 2"' },
      { id: 3, test: ' "Test \\" line 3"' },
    ]);
  });

  it('loads `5" screen` and `"a"b` without dropping a character', async () => {
    const path = file('quotes.csv', 'id,size,note\n1,5" screen,"a"b\n2,"x ""y"" z",c"\n');
    const load = civicEtl('load', path, '--table', 'csvs.quotes');
    expect(load.status, load.stderr).toBe(0);
    expect(await rows(pool, 'SELECT id, size, note FROM csvs.quotes ORDER BY id')).toEqual([
      { id: 1, size: '5" screen', note: '"a"b' },
      { id: 2, size: 'x "y" z', note: 'c"' },
    ]);
  });

  it('fails a ragged file, naming the line, and creates no table (frictionless defective-rows.csv)', async () => {
    const load = civicEtl('load', join(FIXTURES, 'frictionless-defective-rows.csv'), '--table', 'csvs.defective');
    expect(load.status).not.toBe(0);
    expect(load.stderr).toMatch(/frictionless-defective-rows\.csv line 2: the record has 2 fields, the header has 3/);
    expect(await rows(pool, `SELECT 1 FROM pg_tables WHERE schemaname = 'csvs' AND tablename = 'defective'`)).toEqual([]);
  });

  it('fails a file whose first data line has more fields than its header, naming that line', async () => {
    const path = file('wider.csv', 'id,name\n1,a,x\n2,b,y\n3,c,z\n');
    const load = civicEtl('load', path, '--table', 'csvs.wider');
    expect(load.status).not.toBe(0);
    expect(load.stderr).toMatch(/wider\.csv line 2: the record has 3 fields, the header has 2/);
  });

  describe('BOMs anywhere (frictionless bom.csv, edited)', () => {
    const original = fixture('frictionless-bom.csv').toString('utf8'); // '\uFEFFid,name\n1,english\n2,中国人\n'
    const body = original.replace(/^\uFEFF/, '');
    const cases: [string, string][] = [
      ['twice at the start', `\uFEFF\uFEFF${body}`],
      ['inside the first quoted heading', `\uFEFF"\uFEFFid","name"\n${body.split('\n').slice(1).join('\n')}`],
      ['alone on the last line', `${original}\uFEFF`],
      ['alone on a last line ending with a line break', `${original}\uFEFF\n`],
    ];
    for (const [what, content] of cases) {
      it(`a BOM ${what}`, async () => {
        const table = `bom_${what.replace(/\W+/g, '_')}`;
        const load = civicEtl('load', file(`${table}.csv`, content), '--table', `csvs.${table}`);
        expect(load.status, load.stderr).toBe(0);
        expect(await rows(pool, `SELECT * FROM csvs.${table} ORDER BY id`)).toEqual([
          { id: 1, name: 'english' },
          { id: 2, name: '中国人' },
        ]);
      });
    }
  });

  it('reads CR-only line endings (frictionless capitals.csv saved with CR), quoted CRs included', async () => {
    const text = fixture('frictionless-capitals.csv').toString('utf8').replace(/\r?\n/g, '\r') + '6, 6,"Old\rTown"\r';
    const load = civicEtl('load', file('capitals-cr.csv', text), '--table', 'csvs.capitals_cr');
    expect(load.status, load.stderr).toBe(0);
    expect(await rows(pool, 'SELECT id, name FROM csvs.capitals_cr ORDER BY id')).toEqual([' London', ' Paris', ' Berlin', ' Rome', ' Lisbon', 'Old\rTown'].map((name, i) => ({ id: i + 1, name })));
    const profile = JSON.parse(civicEtl('profile', join(dir, 'capitals-cr.csv'), '--json').stdout);
    expect(profile.rowCount).toBe(6);
  });

  it('takes a header of odd characters (U+FFFD, symbols) for the header', async () => {
    const path = file('odd-header.csv', 'N\uFFFD;Libell\uFFFD;Surface (km²);%\n1;Paris;105,4;12\n2;Lyon;47,9;8\n');
    const profile = JSON.parse(civicEtl('profile', path, '--json').stdout);
    expect(profile.header).toEqual(['N\uFFFD', 'Libell\uFFFD', 'Surface (km²)', '%']);
    expect(profile.rowCount).toBe(2);
  });

  it('takes a line of names above a blank line for the header when the data below is text too', async () => {
    const path = file('names-blank.csv', 'Nom;Pr\uFFFDnom\n\nDupont;Jean\nMartin;Paul\n');
    const profile = JSON.parse(civicEtl('profile', path, '--json').stdout);
    expect(profile.header).toEqual(['Nom', 'Pr\uFFFDnom']);
    expect(profile.rowCount).toBe(2);
  });

  it('reads an empty field and a quoted empty field ("") alike: NULL, in text columns as in others', async () => {
    const path = file('empty.csv', 'id,name,amount,day\n1,"","",""\n2,,,\n3,"x","5","2024-01-02"\n4, , ,\n');
    const load = civicEtl('load', path, '--table', 'csvs.empty');
    expect(load.status, load.stderr).toBe(0);
    const got = await rows(pool, `SELECT id, name, amount::text AS amount, day::text AS day FROM csvs.empty ORDER BY id`);
    expect(got).toEqual([
      { id: 1, name: null, amount: null, day: null },
      { id: 2, name: null, amount: null, day: null },
      { id: 3, name: 'x', amount: '5', day: '2024-01-02' },
      // white space is a value in text, and nothing in a number or a date
      { id: 4, name: ' ', amount: null, day: null },
    ]);
  });
});
