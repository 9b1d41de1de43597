/**
 * Hostile files that a few kB long ask a reader for gigabytes (issue 16): each is built here and
 * read in a child process with a 256 MB heap (test/helpers/read-child.ts), so a reader that
 * escapes its limits kills the child, not the test run. Each must fail with a permanent error
 * naming the file, the position and the limit, in bounded memory and time.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip, gzipSync } from 'node:zlib';
import { parsePipeline } from '../../contract/load.ts';
import { openSource, timeRows } from '../../functions/read/open.ts';
import type { ReadRow, ReadTable } from '../../functions/read/types.ts';
import { problemsOf } from '../helpers/definition.ts';
import { collectRows } from '../helpers/read-table.ts';
import { ods, writeOds, writeRawXlsx, writeXls } from '../helpers/spreadsheets.ts';
import { makeZip } from '../helpers/zip.ts';

const run = promisify(execFile);
const CHILD = join(import.meta.dirname, '../helpers/read-child.ts');
const HEAP_MB = 256;

let dir: string;
let temp: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bounds-test-'));
  temp = await mkdtemp(join(tmpdir(), 'bounds-tmp-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
  await rm(temp, { recursive: true, force: true });
});

interface ChildVerdict {
  verdict: 'read' | 'failed';
  kind?: string;
  message?: string;
  position?: { file?: string; line?: number; column?: string };
  rows: number;
  maxRssMb: number;
  ms: number;
}

/** Read `path` in a child with a small heap and its own temporary folder; fails the test if the child dies. */
async function readInChild(path: string, name: string, limits?: object): Promise<ChildVerdict> {
  const { stdout } = await run(process.execPath, [`--max-old-space-size=${HEAP_MB}`, '--import', 'tsx', CHILD, path, name, ...(limits ? [JSON.stringify(limits)] : [])], {
    env: { ...process.env, TMPDIR: temp },
    timeout: 30_000,
    maxBuffer: 1 << 20,
  });
  return JSON.parse(stdout.trim().split('\n').pop()!) as ChildVerdict;
}

const row = (r: number, id: string, count: string) => `<row r="${r}"><c r="A${r}"><v>${id}</v></c><c r="B${r}"><v>${count}</v></c></row>`;
const header = '<row r="1"><c r="A1" t="inlineStr"><is><t>id</t></is></c><c r="B1" t="inlineStr"><is><t>visitors</t></is></c></row>';

describe('a spreadsheet cell far right of the sheet', () => {
  it('is refused naming the file, sheet, cell and limit, before the row is padded towards it', async () => {
    const path = join(dir, 'far.xlsx');
    await writeRawXlsx(path, { sheets: [{ name: 'Data', rows: `${header}${row(2, '1', '120')}<row r="3"><c r="A3"><v>2</v></c><c r="ZZZZZZZ3"><v>3</v></c></row>` }] });

    const result = await readInChild(path, 'incoming/acme/far.xlsx');

    expect(result.verdict).toBe('failed');
    expect(result.kind).toBe('ReadError');
    expect(result.message).toMatch(/^incoming\/acme\/far\.xlsx#Data: cell ZZZZZZZ3 is right of column BIN, the last one read, beyond the limit of 1,600 \(read\.limits\.maxColumns\)/);
    expect(result.position).toMatchObject({ file: 'incoming/acme/far.xlsx#Data', line: 3, column: 'ZZZZZZZ3' });
    expect(result.maxRssMb).toBeLessThan(HEAP_MB);
  });

  it('reads a cell in column BIN (the 1,600th, as many as PostgreSQL holds), and up to XFD when the dataset allows it', async () => {
    const path = join(dir, 'wide.xlsx');
    // below the first rows, where the header is looked for
    const data = Array.from({ length: 50 }, (_, i) => row(i + 2, String(i + 1), String(i * 10))).join('');
    await writeRawXlsx(path, { sheets: [{ name: 'Data', rows: `${header}${data}<row r="52"><c r="A52"><v>51</v></c><c r="BIN52"><v>4</v></c></row>` }] });
    const widest = join(dir, 'widest.xlsx');
    await writeRawXlsx(widest, { sheets: [{ name: 'Data', rows: `${header}${data}<row r="52"><c r="A52"><v>51</v></c><c r="XFD52"><v>4</v></c></row>` }] });

    const result = await readInChild(path, 'wide.xlsx');
    const allowed = await readInChild(widest, 'widest.xlsx', { maxColumns: 16_384 });
    const refused = await readInChild(widest, 'widest.xlsx');

    expect(result.message).toBeUndefined();
    expect(result).toMatchObject({ verdict: 'read', rows: 51 });
    expect(allowed).toMatchObject({ verdict: 'read', rows: 51 });
    expect(refused.message).toMatch(/^widest\.xlsx#Data: cell XFD52 is right of column BIN/);
  });

  it('keeps a sheet of wide rows in bounded memory: 30,000 rows reaching the last column allowed', async () => {
    const path = join(dir, 'wide-rows.xlsx');
    const data = Array.from({ length: 50 }, (_, i) => row(i + 2, String(i + 1), String(i * 10))).join('');
    const wide = Array.from({ length: 30_000 }, (_, i) => `<row r="${i + 52}"><c r="A${i + 52}"><v>${i}</v></c><c r="BIN${i + 52}"><v>1</v></c></row>`).join('');
    await writeRawXlsx(path, { sheets: [{ name: 'Data', rows: `${header}${data}${wide}` }] });

    const result = await readInChild(path, 'wide-rows.xlsx');

    expect(result).toMatchObject({ verdict: 'read', rows: 30_050 });
    expect(result.maxRssMb).toBeLessThan(HEAP_MB);
  });
});

describe('JSON records that each bring new keys', () => {
  it('are refused at the key that would make one column too many, naming the line', async () => {
    const path = join(dir, 'keys.ndjson');
    await writeFile(path, Array.from({ length: 50_000 }, (_, i) => `{"k${i}":1}`).join('\n'));

    const result = await readInChild(path, 'keys.ndjson');

    expect(result.message).toBe('keys.ndjson: line 1601: the key "k1600" would be column 1601, beyond the limit of 1,600 (read.limits.maxColumns): refused');
    expect(result.maxRssMb).toBeLessThan(HEAP_MB);
  });

  it('are refused in GeoJSON properties the same way, naming the feature', async () => {
    const path = join(dir, 'keys.geojson');
    const features = Array.from({ length: 2_000 }, (_, i) => `{"type":"Feature","properties":{"p${i}":1},"geometry":{"type":"Point","coordinates":[1,2]}}`);
    await writeFile(path, `{"type":"FeatureCollection","features":[${features.join(',')}]}`);

    const result = await readInChild(path, 'keys.geojson');

    expect(result.message).toMatch(/^keys\.geojson: feature 1600: the key "p1599" would be column 1601, beyond the limit of 1,600 \(read\.limits\.maxColumns\): refused$/);
  });
});

describe('an .xls cell far right of the sheet', () => {
  it('is refused naming the cell and the limit (BIFF8 allows column 65,535 in a record)', async () => {
    const path = join(dir, 'far.xls');
    const cells = [
      { r: 0, c: 0, v: 'id' },
      { r: 0, c: 1, v: 'visitors' },
      ...[1, 2].flatMap((r) => [
        { r, c: 0, v: r },
        { r, c: 1, v: r * 10 },
      ]),
      { r: 3, c: 65_535, v: 1 },
    ];
    await writeXls(path, { sheets: [{ name: 'Data', cells }] });

    const result = await readInChild(path, 'far.xls');

    expect(result.message).toBe('far.xls#Data: cell CRXP4 is right of column BIN, the last one read, beyond the limit of 1,600 (read.limits.maxColumns): refused');
  });
});

describe('an .ods row repeated a billion times', () => {
  const odsHeader = ods.row([ods.text('id'), ods.text('visitors')]);

  it('is refused naming the file, sheet, row and limit when the row holds values', async () => {
    const path = join(dir, 'repeat.ods');
    await writeOds(path, [{ name: 'Data', rows: [odsHeader, ods.row([ods.float(1), ods.float(120)]), ods.row([ods.float(2), ods.float(340)], 1_000_000_000)] }]);

    const result = await readInChild(path, 'incoming/acme/repeat.ods');

    expect(result.verdict).toBe('failed');
    expect(result.message).toBe(
      "incoming/acme/repeat.ods#Data: row 3 with values, repeated 1000000000 times (table:number-rows-repeated), reaches row 1000000002, below the sheet's last row, beyond the limit of 1,048,576 (read.limits.maxRows): refused",
    );
    expect(result.position).toMatchObject({ file: 'incoming/acme/repeat.ods#Data', line: 3 });
    expect(result.maxRssMb).toBeLessThan(HEAP_MB);
  });

  it('is refused when repeated rows would expand to more cells than the limit, even within the sheet', async () => {
    const path = join(dir, 'cells.ods');
    // 2 columns × 999,999 more rows: within the sheet's height, past a limit of 1,000,000 repeated cells
    await writeOds(path, [{ name: 'Data', rows: [odsHeader, ods.row([ods.float(1), ods.float(120)]), ods.row([ods.float(2), ods.float(340)], 1_000_000)] }]);

    const result = await readInChild(path, 'cells.ods', { maxRepeatedCells: 1_000_000 });

    expect(result.message).toMatch(/^cells\.ods#Data: row 3 with values, repeated 1000000 times .* more than 1000000 cells, beyond the limit of 1,000,000 \(read\.limits\.maxRepeatedCells\): refused$/);
  });

  it('stays cheap when the repeated rows are empty, as spreadsheet programs pad a sheet', async () => {
    const path = join(dir, 'padded.ods');
    await writeOds(path, [{ name: 'Data', rows: [odsHeader, ods.row([ods.float(1), ods.float(120)]), ods.row([ods.float(2), ods.float(340)]), ods.blankRows(1_000_000_000)] }]);

    const result = await readInChild(path, 'padded.ods');

    expect(result).toMatchObject({ verdict: 'read', rows: 2 });
    expect(result.ms).toBeLessThan(5_000);
  });

  it('refuses a cell with values repeated to the right of the sheet, then another value past it', async () => {
    const path = join(dir, 'across.ods');
    await writeOds(path, [{ name: 'Data', rows: [odsHeader, ods.row([ods.float(1), ods.float(120)]), ods.row([ods.float(2), ods.float(7, '7', 1_000_000_000), ods.float(9)])] }]);

    const result = await readInChild(path, 'across.ods');

    expect(result.message).toMatch(/^across\.ods#Data: cell [A-Z]+3 is right of column BIN, the last one read, beyond the limit of 1,600 \(read\.limits\.maxColumns\): refused$/);
    expect(result.maxRssMb).toBeLessThan(HEAP_MB);
  });
});

describe('a cell or shared string of millions of characters', () => {
  it('is refused in the shared-string table of an .xlsx, naming the part and the string', async () => {
    const path = join(dir, 'long-shared.xlsx');
    const rows = `${header}<row r="2"><c r="A2"><v>1</v></c><c r="B2" t="s"><v>0</v></c></row>`;
    await writeRawXlsx(path, { sheets: [{ name: 'Data', rows }], sharedStrings: ['x'.repeat(2_000_000)] });

    const result = await readInChild(path, 'long-shared.xlsx');

    expect(result.message).toBe(
      'long-shared.xlsx!xl/sharedStrings.xml: shared string 0 (0-based, as cells refer to it) is longer than 1048576 characters, beyond the limit of 1,048,576 (read.limits.maxCellChars): refused',
    );
  });

  it('is refused before the XML parser holds it whole when the XML text itself is ten times the limit', async () => {
    const path = join(dir, 'huge-shared.xlsx');
    await writeRawXlsx(path, { sheets: [{ name: 'Data', rows: header }], sharedStrings: ['x'.repeat(2_000_000)] });

    const result = await readInChild(path, 'huge-shared.xlsx', { maxCellChars: 100_000 });

    expect(result.message).toMatch(/^huge-shared\.xlsx!xl\/sharedStrings\.xml: a text or tag of more than 1065536 characters of XML, beyond the limit of 100,000 \(read\.limits\.maxCellChars\): refused$/);
  });

  it('is refused in an inline .xlsx cell, naming the cell', async () => {
    const path = join(dir, 'long-inline.xlsx');
    const rows = `${header}<row r="2"><c r="A2"><v>1</v></c><c r="B2" t="inlineStr"><is><t>${'y'.repeat(200_000)}</t></is></c></row>`;
    await writeRawXlsx(path, { sheets: [{ name: 'Data', rows }] });

    const result = await readInChild(path, 'long-inline.xlsx', { maxCellChars: 100_000 });

    expect(result.message).toBe('long-inline.xlsx#Data: cell B2 holds more than 100000 characters, beyond the limit of 100,000 (read.limits.maxCellChars): refused');
    expect(result.position).toMatchObject({ line: 2, column: 'B2' });
  });

  it('is refused in an .ods cell, naming the cell', async () => {
    const path = join(dir, 'long.ods');
    await writeOds(path, [{ name: 'Data', rows: [ods.row([ods.text('id'), ods.text('note')]), ods.row([ods.float(1), ods.text('z'.repeat(2_000_000))])] }]);

    const result = await readInChild(path, 'long.ods');

    expect(result.message).toBe('long.ods#Data: cell B2 holds more than 1048576 characters, beyond the limit of 1,048,576 (read.limits.maxCellChars): refused');
    expect(result.maxRssMb).toBeLessThan(HEAP_MB);
  });
});

/** `megabytes` MiB of zeros, gzipped as tightly as deflate goes (about 1,030×), written without holding them. */
async function gzipBomb(path: string, megabytes: number): Promise<void> {
  const zeros = Buffer.alloc(1 << 20);
  await pipeline(
    Readable.from(
      (function* () {
        for (let i = 0; i < megabytes; i++) yield zeros;
      })(),
    ),
    createGzip({ level: 9 }),
    createWriteStream(path),
  );
}

/** CSV text of about `bytes` bytes that barely compresses (so that only the byte budget can stop it). */
function csvOf(bytes: number): Buffer {
  const lines = ['id,code'];
  let size = 8;
  for (let i = 0; size < bytes; i++) {
    const line = `${i},${((i * 2654435761) >>> 0).toString(36)}${((i * 40503) >>> 0).toString(36)}`;
    lines.push(line);
    size += line.length + 1;
  }
  return Buffer.from(`${lines.join('\n')}\n`);
}

describe('compressed files inside compressed files', () => {
  it('refuses a gzip bomb by its expansion ratio, naming the file and the limit, before it is spooled', async () => {
    const path = join(dir, 'bomb.xlsx.gz');
    await gzipBomb(path, 256);

    const result = await readInChild(path, 'incoming/acme/bomb.xlsx.gz');

    expect(result.verdict).toBe('failed');
    expect(result.message).toMatch(
      /^incoming\/acme\/bomb\.xlsx\.gz: the gzip stream expands from \d+ to more than \d+ bytes \(over 1000× its compressed size\), a likely gzip bomb, beyond the limit of 1,000 \(read\.limits\.maxRatio\): refused$/,
    );
    expect(result.maxRssMb).toBeLessThan(HEAP_MB);
  });

  it('refuses a gzip member of a zip the same way', async () => {
    const bomb = join(dir, 'inner.gz');
    await gzipBomb(bomb, 64);
    const path = join(dir, 'holds-gz.zip');
    await writeFile(path, await makeZip({ 'data.csv.gz': await (await import('node:fs/promises')).readFile(bomb) }, { compress: false }));

    const result = await readInChild(path, 'holds-gz.zip');

    expect(result.message).toMatch(/^holds-gz\.zip!data\.csv\.gz: the gzip stream expands .* \(read\.limits\.maxRatio\): refused$/);
  });

  it('counts zip members and gzip streams against one budget for the whole file', async () => {
    const path = join(dir, 'budget.zip');
    // the zip writes 6 MB of CSV and a 3.3 MB gzip member, which expands to 6 MB more: each fits 12 MB, together they do not
    await writeFile(path, await makeZip({ 'a.csv': csvOf(6_000_000), 'b.csv.gz': gzipSync(csvOf(6_000_000)) }));

    const fits = await readInChild(path, 'budget.zip', { maxExpandedBytes: 16_000_000 });
    const result = await readInChild(path, 'budget.zip', { maxExpandedBytes: 12_000_000 });

    expect(fits).toMatchObject({ verdict: 'read' });
    expect(result.message).toMatch(/^budget\.zip!b\.csv\.gz: the gzip stream expands past \d+ bytes, what is left of the 12000000 allowed for the file .*\(read\.limits\.maxExpandedBytes\): refused$/);
  });

  it('counts nesting by content: a zip named .csv inside a zip named .csv inside a zip is refused at the third level', async () => {
    const innermost = await makeZip({ 'rows.csv': 'id\n1\n' });
    const middle = await makeZip({ 'more.csv': innermost });
    const path = join(dir, 'disguised.zip');
    await writeFile(path, await makeZip({ 'data.csv': middle }));
    const twoLevels = join(dir, 'two.zip');
    await writeFile(twoLevels, await makeZip({ 'data.csv': innermost }));

    const result = await readInChild(path, 'disguised.zip');
    const allowed = await readInChild(twoLevels, 'two.zip');

    expect(result.message).toBe(
      'disguised.zip!data.csv!more.csv: a zip archive inside 2 layers of archives or gzip (by content, whatever the names), more than 1 deep, beyond the limit of 1 (read.limits.maxDepth): refused',
    );
    expect(allowed).toMatchObject({ verdict: 'read' });
  });

  it('counts gzip in gzip as layers too', async () => {
    const path = join(dir, 'triple.csv.gz');
    await writeFile(path, gzipSync(gzipSync(gzipSync('id\n1\n'))));
    const double = join(dir, 'double.csv.gz');
    await writeFile(double, gzipSync(gzipSync('id\n1\n')));

    const result = await readInChild(path, 'triple.csv.gz');
    const allowed = await readInChild(double, 'double.csv.gz');

    expect(result.message).toMatch(/^triple\.csv\.gz: a gzip stream inside 2 layers of archives or gzip .*\(read\.limits\.maxDepth\): refused$/);
    expect(allowed).toMatchObject({ verdict: 'read' });
  });
});

describe('temporary folders of a killed run', () => {
  const ARCHIVE = join(import.meta.dirname, '../../functions/read/archive.ts');

  it('are removed by the next run, and only those of dead civic-etl processes', async () => {
    const root = await mkdtemp(join(tmpdir(), 'bounds-stale-'));
    try {
      const env = { ...process.env, TMPDIR: root };
      // a run killed outright (as by the out-of-memory killer or a Lambda timeout) leaves its folder behind
      const { stdout } = await run(
        process.execPath,
        ['--import', 'tsx', '-e', `const { makeTempDir } = await import(${JSON.stringify(ARCHIVE)}); const d = await makeTempDir(); console.log(d.path); process.kill(process.pid, 'SIGKILL');`],
        { env },
      ).catch((e: { stdout: string }) => e);
      const killed = stdout.trim().split('/').pop()!;
      await mkdir(join(root, killed, 'zip-x'), { recursive: true });
      const living = `civic-etl-${process.pid}-abcdef`; // this test's process is running
      await mkdir(join(root, living));
      await mkdir(join(root, 'civic-etl-other'));
      expect((await readdir(root)).filter((n) => n.startsWith('civic-etl-')).sort()).toEqual([killed, living, 'civic-etl-other'].sort());
      expect(killed).toMatch(/^civic-etl-\d+-\w{6}$/);

      const path = join(dir, 'plain.zip');
      await writeFile(path, await makeZip({ 'a.csv': 'id\n1\n' }));
      const next = await run(process.execPath, ['--import', 'tsx', CHILD, path, 'plain.zip'], { env });

      expect(JSON.parse(next.stdout)).toMatchObject({ verdict: 'read' });
      const left = (await readdir(root)).filter((n) => n.startsWith('civic-etl-'));
      expect(left.sort()).toEqual([living, 'civic-etl-other'].sort());
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe('limits set by a dataset (read.limits)', () => {
  const definition = (limits: object) => ({
    project: 'city',
    suppliers: [{ name: 'parks' }],
    datasets: [{ name: 'visits', source: { type: 'upload', supplier: 'parks' }, read: { limits } }],
  });

  it('are validated: known names, whole numbers, within what the stage function holds', () => {
    expect(problemsOf(definition({ maxRows: 0 }))).toEqual([expect.stringMatching(/^dataset "visits" → read\.limits\.maxRows: /)]);
    expect(problemsOf(definition({ maxExpandedBytes: 10 * 1024 ** 3 }))).toEqual([expect.stringMatching(/^dataset "visits" → read\.limits\.maxExpandedBytes: /)]);
    expect(problemsOf(definition({ maxCells: 5 }))).toEqual([expect.stringMatching(/^dataset "visits" → read\.limits: .*maxCells/)]);
  });

  it('apply to the files of the dataset, the others keeping their defaults', async () => {
    const dataset = parsePipeline(definition({ maxRows: 3 }), 'test.yaml').datasets[0]!;
    const path = join(dir, 'visits.ods');
    const rows = [1, 2, 3].map((i) => ods.row([ods.float(i), ods.float(i * 10)]));
    await writeOds(path, [{ name: 'Data', rows: [ods.row([ods.text('id'), ods.text('visitors')]), ...rows] }]);
    const read = async (hints: object) => {
      const opened = await openSource({ name: 'visits.ods', path, open: async () => (await import('node:fs')).createReadStream(path) }, hints);
      try {
        return await collectRows((opened.entries[0] as { table: Parameters<typeof collectRows>[0] }).table);
      } finally {
        await opened.dispose();
      }
    };

    await expect(read({ ...dataset.read })).rejects.toThrow("visits.ods#Data: row 4 is below the sheet's last row, beyond the limit of 3 (read.limits.maxRows): refused");
    expect(await read({})).toHaveLength(3);
  });
});

describe('a workbook whose sheet XML is a zip bomb', () => {
  it('is refused from the sizes its zip declares, before the XML is parsed', async () => {
    const path = join(dir, 'bomb-sheet.xlsx');
    // 30 MB of spaces between two rows compress about 1,030×
    await writeRawXlsx(path, { sheets: [{ name: 'Data', rows: `${header}${' '.repeat(30_000_000)}${row(2, '1', '120')}` }] });

    const result = await readInChild(path, 'bomb-sheet.xlsx');

    expect(result.message).toMatch(
      /^bomb-sheet\.xlsx!xl\/worksheets\/sheet1\.xml: expands from \d+ to \d+ bytes \(over 1000× its compressed size\), a likely zip bomb, beyond the limit of 1,000 \(read\.limits\.maxRatio\): refused$/,
    );
  });
});

describe('a table read for longer than read.limits.maxSeconds', () => {
  /** NDJSON lines, quick; once `stalled()` says so, a stream that sends nothing and never ends (a reader left waiting). */
  function stalling(stalled: () => boolean) {
    return async function* (): AsyncGenerator<Buffer> {
      if (stalled()) await new Promise(() => undefined);
      for (let i = 1; i <= 1500; i++) yield Buffer.from(`{"id":${i},"pad":"${'x'.repeat(100)}"}\n`);
    };
  }

  it('fails by the clock when the reader emits no row at all, naming the table, the limit and where it stood', async () => {
    let stall = false;
    const opened = await openSource({ name: 'stuck.ndjson', open: async () => stalling(() => stall)() }, { limits: { maxSeconds: 1 } });
    stall = true;
    try {
      const table = (opened.entries[0] as { table: Parameters<typeof collectRows>[0] }).table;
      const started = performance.now();
      let read = 0;
      const error = await (async () => {
        for await (const _ of table.rows()) read++;
      })().then(
        () => undefined,
        (e: unknown) => e as Error,
      );

      expect(read).toBe(0);
      expect(error?.message).toBe('stuck.ndjson: reading took more than 1 s (before its first line), beyond the limit of 1 (read.limits.maxSeconds): refused');
      expect((error as { position?: object }).position).toEqual({ file: 'stuck.ndjson' });
      expect(performance.now() - started).toBeLessThan(3000);
    } finally {
      await opened.dispose();
    }
  });

  it("fails a shapefile's WKB rows (the direct load's pass) by the same clock", async () => {
    // a reader whose batches of WKB rows never come: the direct shapefile load reads these instead of rows()
    const table = {
      name: 'stuck.shp',
      unit: 'feature',
      columns: [],
      rows: async function* () {},
      binaryBatches: async function* () {
        await new Promise(() => undefined);
      },
    } as unknown as ReadTable & { binaryBatches: () => AsyncIterable<ReadRow[]> };
    timeRows(table, 1);
    const started = performance.now();
    const error = await (async () => {
      for await (const _ of table.binaryBatches()) void _;
    })().then(
      () => undefined,
      (e: unknown) => e as Error,
    );

    expect(error?.message).toBe('stuck.shp: reading took more than 1 s (before its first feature), beyond the limit of 1 (read.limits.maxSeconds): refused');
    expect(performance.now() - started).toBeLessThan(3000);
  });

  it('fails by the clock when the file never finishes opening', async () => {
    const started = performance.now();
    const error = await openSource({ name: 'never.ndjson', open: async () => stalling(() => true)() }, { limits: { maxSeconds: 1 } }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );

    expect(error?.message).toBe('never.ndjson: opening it took more than 1 s (reading its first bytes and rows), beyond the limit of 1 (read.limits.maxSeconds): refused');
    expect(performance.now() - started).toBeLessThan(3000);
  });

  it('leaves no temporary folder behind when the opening it gave up on goes on afterwards', async () => {
    const zip = await makeZip({ 'a.csv': 'id\n1\n2\n' });
    let resume!: () => void;
    const resumed = new Promise<void>((r) => (resume = r));
    let ended!: () => void;
    const end = new Promise<void>((r) => (ended = r));
    // the stream says nothing until the read has timed out, then sends a zip: its spooling makes a temporary folder
    async function* late(): AsyncGenerator<Buffer> {
      await resumed;
      yield zip;
      setTimeout(ended, 500);
    }
    const ours = async () => (await readdir(tmpdir())).filter((n) => n.startsWith(`civic-etl-${process.pid}-`));
    const before = await ours();

    const error = await openSource({ name: 'late.zip', open: async () => late() }, { limits: { maxSeconds: 1 } }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(error?.message).toMatch(/^late\.zip: opening it took more than 1 s/);
    resume();
    await end;
    await new Promise((r) => setTimeout(r, 500));

    expect(await ours()).toEqual(before);
  });

  it('fails naming the table, the row reached and the limit', async () => {
    // 1,500 lines of 120 bytes, the last 500 (past the bytes sniffed and the lines sampled for the columns) arriving 10 ms apart
    async function* slow(): AsyncGenerator<Buffer> {
      for (let i = 1; i <= 1500; i++) {
        if (i > 1000) await new Promise((resolve) => setTimeout(resolve, 10));
        yield Buffer.from(`{"id":${i},"pad":"${'x'.repeat(100)}"}\n`);
      }
    }
    const opened = await openSource({ name: 'slow.ndjson', open: async () => slow() }, { limits: { maxSeconds: 1 } });
    let read = 0;
    try {
      const table = (opened.entries[0] as { table: Parameters<typeof collectRows>[0] }).table;
      const error = await (async () => {
        for await (const _ of table.rows()) read++;
      })().then(
        () => undefined,
        (e: unknown) => e as Error,
      );

      expect(error?.message).toMatch(/^slow\.ndjson: reading took more than 1 s \(at line (\d+)\), beyond the limit of 1 \(read\.limits\.maxSeconds\): refused$/);
      expect(read).toBeGreaterThan(1000);
      expect(read).toBeLessThan(1500);
    } finally {
      await opened.dispose();
    }
  });
});

/** Read every row of `path` (opened as `name`, with `limits`): the error it ends with, if any. */
async function readAll(path: string, name: string, limits: object): Promise<(Error & { position?: object }) | undefined> {
  const { createReadStream } = await import('node:fs');
  try {
    const opened = await openSource({ name, path, open: async () => createReadStream(path) }, { limits });
    try {
      for (const entry of opened.entries) if (entry.kind === 'table') for await (const _ of entry.table.rows());
    } finally {
      await opened.dispose();
    }
    return undefined;
  } catch (error) {
    return error as Error;
  }
}

describe('files that declare their size up front: Parquet, DBF, GeoPackage', () => {
  const parquet = async (file: string, columns: number, rows: number, rowGroupSize: number) => {
    const { parquetWriteBuffer } = await import('hyparquet-writer');
    const path = join(dir, file);
    const data = Int32Array.from({ length: rows }, (_, i) => i);
    await writeFile(path, Buffer.from(parquetWriteBuffer({ columnData: Array.from({ length: columns }, (_, c) => ({ name: `c${c}`, data, type: 'INT32' as const })), rowGroupSize })));
    return path;
  };

  it('refuses a Parquet row group of more cells than maxGroupCells before decoding it, naming the group and its rows', async () => {
    const path = await parquet('groups.parquet', 2, 8, 4);
    expect(await readAll(path, 'groups.parquet', {})).toBeUndefined();
    const error = await readAll(path, 'groups.parquet', { maxGroupCells: 6 });
    expect(error?.message).toBe('groups.parquet: row group 1 of 2 (rows 1–4) holds 4 rows × 2 columns = 8 cells, decoded at once, beyond the limit of 6 (read.limits.maxGroupCells): refused');
    expect(error?.position).toEqual({ file: 'groups.parquet', line: 1 });
  });

  it('refuses, with the default limits, a 5 KB Parquet file declaring a million rows of 17 columns in one row group', async () => {
    const { parquetWriteBuffer } = await import('hyparquet-writer');
    const path = join(dir, 'million.parquet');
    const zeros = new Int32Array(1_000_000);
    await writeFile(path, Buffer.from(parquetWriteBuffer({ columnData: Array.from({ length: 17 }, (_, c) => ({ name: `c${c}`, data: zeros, type: 'INT32' as const })), rowGroupSize: 1_000_000 })));
    const result = await readInChild(path, 'million.parquet');
    expect(result.verdict).toBe('failed');
    expect(result.message).toBe(
      'million.parquet: row group 1 of 1 (rows 1–1,000,000) holds 1,000,000 rows × 17 columns = 17,000,000 cells, decoded at once, beyond the limit of 16,777,216 (read.limits.maxGroupCells): refused',
    );
  });

  it('refuses a Parquet file declaring more rows than maxRecords, or more columns than maxColumns', async () => {
    const path = await parquet('rows.parquet', 3, 8, 8);
    expect((await readAll(path, 'rows.parquet', { maxRecords: 7 }))?.message).toBe('rows.parquet: its footer declares 8 rows, beyond the limit of 7 (read.limits.maxRecords): refused');
    expect((await readAll(path, 'rows.parquet', { maxColumns: 2 }))?.message).toBe('rows.parquet: the Parquet file has 3 columns, beyond the limit of 2 (read.limits.maxColumns): refused');
  });

  it('refuses a DBF declaring more fields than maxColumns allows with the geometry, or more records than maxRecords', async () => {
    const { shapefileBytes, POINT } = await import('../helpers/shapefile-writer.ts');
    const parts = shapefileBytes({
      shapeType: POINT,
      fields: [
        { name: 'A', type: 'N', length: 4 },
        { name: 'B', type: 'C', length: 4 },
        { name: 'C', type: 'C', length: 4 },
      ],
      records: [1, 2, 3].map((i) => ({ shape: { parts: [[[i, 52]]] }, values: [i, 'x', 'y'] })),
    });
    const path = join(dir, 'fields.zip');
    await writeFile(path, await makeZip({ 'f.shp': parts.shp, 'f.shx': parts.shx, 'f.dbf': parts.dbf }));
    expect(await readAll(path, 'fields.zip', { maxColumns: 4 })).toBeUndefined();
    const wide = await readAll(path, 'fields.zip', { maxColumns: 3 });
    expect(wide?.message).toBe('fields.zip!f.shp: its .dbf (f.dbf) declares 3 fields, 4 columns with the geometry, beyond the limit of 3 (read.limits.maxColumns): refused');
    expect((await readAll(path, 'fields.zip', { maxRecords: 2 }))?.message).toBe('fields.zip!f.shp: its .dbf (f.dbf) declares 3 records, beyond the limit of 2 (read.limits.maxRecords): refused');
  });

  it('refuses a GeoPackage value longer than maxCellChars (a blob counts its hex), naming the feature and column, and a layer of more rows than maxRecords', async () => {
    const { gpkgBlob, isoWkb, writeGeoPackage } = await import('../helpers/gpkg-writer.ts');
    const path = join(dir, 'big-blob.gpkg');
    const line = gpkgBlob(
      isoWkb(
        'LineString',
        Array.from({ length: 40 }, (_, i) => [4 + i / 100, 52]),
      ),
      { srsId: 4326 },
    );
    await writeGeoPackage(path, {
      layers: [
        {
          table: 'roads',
          columns: [
            { name: 'fid', type: 'INTEGER PRIMARY KEY' },
            { name: 'name', type: 'TEXT' },
            { name: 'geom', type: 'LINESTRING' },
          ],
          geometry: { column: 'geom', type: 'LINESTRING', srsId: 4326 },
          rows: [
            [
              1,
              'short',
              gpkgBlob(
                isoWkb('LineString', [
                  [4, 52],
                  [5, 52],
                ]),
                { srsId: 4326 },
              ),
            ],
            [2, 'long', line],
            [3, 'x'.repeat(2000), null],
          ] as never,
        },
      ],
    });
    expect(await readAll(path, 'big-blob.gpkg', {})).toBeUndefined();
    const blob = await readAll(path, 'big-blob.gpkg', { maxCellChars: 1000 });
    expect(blob?.message).toBe(
      `big-blob.gpkg#roads: feature 2: its geom value is a ${line.length}-byte blob (${(line.length * 2).toLocaleString('en-US')} hex characters), beyond the limit of 1,000 (read.limits.maxCellChars): refused`,
    );
    expect(blob?.position).toEqual({ file: 'big-blob.gpkg#roads', line: 2, column: 'geom' });
    const text = await readAll(path, 'big-blob.gpkg', { maxCellChars: 1500 });
    expect(text?.message).toBe('big-blob.gpkg#roads: feature 3: its name value is 2,000 characters, beyond the limit of 1,500 (read.limits.maxCellChars): refused');
    expect((await readAll(path, 'big-blob.gpkg', { maxRecords: 2 }))?.message).toBe('big-blob.gpkg#roads: the layer holds 3 rows, beyond the limit of 2 (read.limits.maxRecords): refused');
  });
});
