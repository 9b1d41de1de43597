import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { getPool } from '../../functions/common/db.ts';
import { rows } from './support.ts';

/** A stored (uncompressed) zip archive of the given members, written by hand: no zip tool needed. */
function zipOf(members: Record<string, string | Buffer>): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const [name, content] of Object.entries(members)) {
    const data = Buffer.isBuffer(content) ? content : Buffer.from(content);
    const nameBytes = Buffer.from(name);
    const crc = crc32(data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(nameBytes.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(data.length, 20);
    central.writeUInt32LE(data.length, 24);
    central.writeUInt16LE(nameBytes.length, 28);
    central.writeUInt32LE(offset, 42);
    locals.push(local, nameBytes, data);
    centrals.push(central, nameBytes);
    offset += 30 + nameBytes.length + data.length;
  }
  const directory = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(Object.keys(members).length, 8);
  end.writeUInt16LE(Object.keys(members).length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, directory, end]);
}

function crc32(data: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of data) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/** Run the real command, as a user would. */
function civicEtl(...args: string[]) {
  const r = spawnSync(process.execPath, ['bin/civic-etl.mjs', ...args], { encoding: 'utf8', env: { ...process.env, NODE_NO_WARNINGS: '1' }, timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const dir = mkdtempSync(join(tmpdir(), 'civic-etl-cli-'));
const file = (name: string, body: string | Buffer) => {
  const path = join(dir, name);
  writeFileSync(path, body);
  return path;
};

beforeAll(async () => {
  await (await getPool()).query('DROP SCHEMA IF EXISTS it_cli CASCADE');
});

describe('civic-etl load', () => {
  it('loads a CSV into a new table with inferred types and reports rows loaded and rejected', async () => {
    const r = civicEtl('load', 'pipelines/chicago/data/programs.csv', '--table', 'it_cli.programs');

    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('created it_cli.programs (csv, delimiter ";")');
    expect(r.stdout).toMatch(/capacity +│ integer +│ Capacity/);
    expect(r.stdout).toMatch(/rows read 300, loaded 297, rejected 3 \(see it_cli\.programs_rejects\)/);
    // line 237's latitude "n/a" is a missing value, said as such; its point cannot be made
    expect(r.stdout).toContain('warning: n/a read as missing in 1 column (1 value)');
    const pool = await getPool();
    expect(await rows(pool, 'SELECT count(*)::int AS n FROM it_cli.programs')).toEqual([{ n: 297 }]);
    expect(await rows(pool, 'SELECT source_line::int AS line, column_name FROM it_cli.programs_rejects ORDER BY 1')).toEqual([
      { line: 49, column_name: 'capacity' },
      { line: 155, column_name: 'start_date' },
      { line: 237, column_name: 'geom' },
    ]);
  });

  it('appends to an existing table with its types, rejecting what does not cast', async () => {
    const header = 'Program ID;Program Name;Category;Community Area;Latitude;Longitude;Start Date;End Date;Capacity;Cost (USD);Description';
    const extra = file('extra.csv', `${header}\nX-1;Chess club;Education;Uptown;41.96;-87.65;2024-01-01;2024-02-01;12;0;Weekly\nX-2;Choir;Arts;Uptown;41.96;-87.65;2024-01-01;2024-02-01;many;0;Weekly\n`);

    const r = civicEtl('load', extra, '--table', 'it_cli.programs', '--append');

    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('appended to it_cli.programs');
    expect(r.stdout).toMatch(/rows read 2, loaded 1, rejected 1/);
    expect(await rows(await getPool(), 'SELECT count(*)::int AS n FROM it_cli.programs')).toEqual([{ n: 298 }]);
  });

  it('refuses a file that lacks a column of the existing table, changing nothing', async () => {
    const extra = file('more.csv', 'Program ID;Program Name;Capacity\nX-1;Chess club;12\nX-2;Choir;many\n');

    const r = civicEtl('load', extra, '--table', 'it_cli.programs', '--append');

    expect(r.code, r.stderr).not.toBe(0);
    expect(r.stderr).toMatch(/table it_cli\.programs has column "category", which is not in the file's header/);
    expect(await rows(await getPool(), 'SELECT count(*)::int AS n FROM it_cli.programs')).toEqual([{ n: 298 }]);
  });

  it('keeps a column text unless every value casts, with --type-threshold 1', async () => {
    const r = civicEtl('load', 'pipelines/chicago/data/programs.csv', '--table', 'it_cli.strict', '--type-threshold', '1');

    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/capacity +│ text +│ Capacity/);
    expect(r.stdout).toMatch(/geom +│ geometry +│ points from Latitude\/Longitude/);
    // latitude stays text, but the point of line 237 (latitude "n/a") cannot be made
    expect(r.stdout).toMatch(/rows read 300, loaded 299, rejected 1/);
  });

  it('fails with the file and line of a ragged row, leaving no table behind', async () => {
    const bad = file('ragged.csv', 'a,b\n1,2\n3,4,5\n');

    const r = civicEtl('load', bad, '--table', 'it_cli.ragged');

    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`civic-etl: ${bad} line 3: the record has 3 fields, the header has 2\n`);
    expect(await rows(await getPool(), `SELECT to_regclass('it_cli.ragged') IS NULL AS gone`)).toEqual([{ gone: true }]);
  });

  it('says what is wrong with its arguments', () => {
    expect(civicEtl('load', 'x.csv')).toMatchObject({ code: 2, stderr: expect.stringContaining('load needs --table SCHEMA.TABLE') });
    expect(civicEtl('load', 'nope.csv', '--table', 'it_cli.x')).toMatchObject({ code: 1, stderr: 'civic-etl: nope.csv: no such file\n' });
  });
});

describe('civic-etl profile', () => {
  it('prints one JSON object with the structure and every column', () => {
    const r = civicEtl('profile', 'test/fixtures/profile/associations.csv', '--json', '--locale', 'fr');

    expect(r.code, r.stderr).toBe(0);
    const p = JSON.parse(r.stdout);
    expect(p).toMatchObject({ encoding: 'utf-8', delimiter: ';', headerRow: 3, rowCount: 6, duplicateRows: 1 });
    expect(p.header).toHaveLength(11);
    expect(p.columns[1]).toMatchObject({ name: 'siren', type: expect.any(String), format: 'siren', score: expect.any(Number), profile: { missing: 0 } });
  });

  it('reads a CSV with the --delimiter given instead of the detected one, and refuses one it cannot use', () => {
    // programs.csv is written with ';': told ',' the profile reads each line as one column
    const r = civicEtl('profile', 'pipelines/chicago/data/programs.csv', '--json', '--delimiter', ',');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ delimiter: ',' });
    expect(JSON.parse(r.stdout).columns.length).toBeLessThan(JSON.parse(civicEtl('profile', 'pipelines/chicago/data/programs.csv', '--json').stdout).columns.length);

    const bad = civicEtl('profile', 'pipelines/chicago/data/programs.csv', '-d', 'x');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--delimiter must be one of , ; tab |');
  });

  it('prints a readable table, and reads gzip', () => {
    const gz = file('programs.csv.gz', gzipSync(readFileSync('pipelines/chicago/data/programs.csv')));

    const r = civicEtl('profile', gz, '--locale', 'us');

    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('utf-8, delimiter ";"');
    expect(r.stdout).toMatch(/300 records, 1 duplicate/);
    expect(r.stdout).toMatch(/Capacity +│ integer/);
  });

  it('profiles spreadsheets, JSON and GeoJSON through their readers', () => {
    const r = civicEtl('profile', 'test/fixtures/edfi-sample/studentSchoolAssociations.json');

    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('test/fixtures/edfi-sample/studentSchoolAssociations.json: json');
    expect(r.stdout).toMatch(/150 records, 0 duplicates/); // facts.json: 150 records
    expect(r.stdout).toMatch(/schoolReference\.schoolId +│ integer/);
    expect(r.stdout).toMatch(/entryDate +│ date/);
  });

  it('profiles the CSV member of a zip archive, and says which', () => {
    const zip = file('export.zip', zipOf({ 'LISEZMOI.txt.md': 'notes', 'data/associations.csv': readFileSync('test/fixtures/profile/associations.csv') }));

    const r = civicEtl('profile', zip, '--json', '--locale', 'fr');

    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ file: `${zip}!data/associations.csv`, delimiter: ';', rowCount: 6 });
  });

  it('refuses an unknown locale pack', () => {
    expect(civicEtl('profile', 'x.csv', '--locale', 'de')).toMatchObject({ code: 2, stderr: expect.stringContaining('unknown locale de (packs: fr, nl, us)') });
  });
});

describe('civic-etl validate', () => {
  it('accepts the example pipeline', () => {
    expect(civicEtl('validate', 'pipelines/chicago/pipeline.yaml')).toMatchObject({ code: 0, stdout: expect.stringContaining('valid — project chicago, 2 suppliers, 3 datasets, 4 views') });
  });

  it('names the file, dataset and field of a mistake', () => {
    const bad = file('bad.yaml', 'project: x\ndatasets:\n  - name: trees\n    source: { type: upload, supplier: parks }\n    clean:\n      columns:\n        - { name: height, type: float }\n');

    const r = civicEtl('validate', bad);

    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${bad} is not a valid pipeline definition:`);
    expect(r.stderr).toMatch(/dataset "trees" → clean\.columns\[0\]\.type: Invalid option: expected one of "text"\|"integer"/);
    const fixed = file('bad2.yaml', 'project: x\ndatasets:\n  - name: trees\n    source: { type: upload, supplier: parks }\n    clean:\n      columns:\n        - { name: height, type: double }\n');
    expect(civicEtl('validate', fixed).stderr).toContain('dataset "trees" → source.supplier: unknown supplier "parks" (declare it under suppliers)');
  });

  it('refuses a view whose SQL is more than one statement, naming the file, the view and the line of the second (no database needed)', () => {
    const two = file(
      'two-statements.yaml',
      [
        'project: x',
        'suppliers: [{ name: parks }]',
        'datasets:',
        '  - name: trees',
        '    source: { type: upload, supplier: parks }',
        '    clean: { columns: [{ name: height, type: double }] }',
        'views:',
        '  - name: fine',
        '    datasets: [trees]',
        "    sql: SELECT height, 'a;b' AS s, $$;$$ AS d FROM {{schema}}.trees -- ; in a comment",
        '  - name: sneaky',
        '    datasets: [trees]',
        '    sql: |',
        '      SELECT height',
        '        FROM {{schema}}.trees;',
        '      DROP TABLE {{schema}}.trees',
        '',
      ].join('\n'),
    );

    const r = civicEtl('validate', two);

    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${two}:16: view "sneaky" fails: the SQL holds 2 statements, where a view is exactly one SELECT; the second starts with "DROP TABLE "x".trees"`);
    expect(r.stderr).not.toContain('"fine"');
    expect(r.stdout).toContain(`${two}: invalid`);
  });
});
