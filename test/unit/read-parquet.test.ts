/**
 * Parquet in: files written by hyparquet-writer here, with every type a data portal publishes, and
 * real files from apache/parquet-testing (test/fixtures/parquet, see ORIGIN.md) against the
 * contents the repository ships with them.
 */
import { createReadStream, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parquetMetadata } from 'hyparquet';
import { geojsonToWkb, parquetWriteBuffer } from 'hyparquet-writer';
import { describe, expect, it } from 'vitest';
import { openSource } from '../../functions/read/open.ts';
import { readParquet } from '../../functions/read/parquet.ts';
import { ReadError } from '../../functions/read/types.ts';
import { useScratchDir } from '../helpers/spreadsheets.ts';
import { collectRows } from '../helpers/read-table.ts';

const fixtures = join(import.meta.dirname, '../fixtures/parquet');

const dir = useScratchDir();

const collect = collectRows;

async function write(name: string, options: Omit<Parameters<typeof parquetWriteBuffer>[0], 'writer'>): Promise<string> {
  const path = dir.path(name);
  await writeFile(path, Buffer.from(parquetWriteBuffer(options)));
  return path;
}

describe('readParquet', () => {
  it('reads every type as the text PostgreSQL reads for it, and declares the types the schema gives', async () => {
    const path = await write('types.parquet', {
      columnData: [
        { name: 'id', data: [1n, 9_007_199_254_740_993n, null] },
        { name: 'count', data: [7, -3, null] },
        { name: 'ratio', data: [0.1, 1e-7, null] },
        { name: 'price', data: [12.3, -0.05, null] },
        { name: 'code', data: ['007', 'A12', null] },
        { name: 'open', data: [true, false, null] },
        { name: 'day', data: [new Date(Date.UTC(2024, 1, 29)), new Date(Date.UTC(1969, 11, 31)), null] },
        { name: 'at', data: [1_700_000_000_123_456n, 0n, null] },
        { name: 'local', data: [1_700_000_000_000n, -1n, null] },
        { name: 'extra', data: [{ a: 1, b: [2, 3] }, null, null] },
      ],
      schema: [
        { name: 'root', num_children: 10 },
        { name: 'id', type: 'INT64', repetition_type: 'OPTIONAL' },
        { name: 'count', type: 'INT32', repetition_type: 'OPTIONAL' },
        { name: 'ratio', type: 'DOUBLE', repetition_type: 'OPTIONAL' },
        { name: 'price', type: 'INT32', converted_type: 'DECIMAL', scale: 2, precision: 9, repetition_type: 'OPTIONAL' },
        { name: 'code', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' },
        { name: 'open', type: 'BOOLEAN', repetition_type: 'OPTIONAL' },
        { name: 'day', type: 'INT32', converted_type: 'DATE', repetition_type: 'OPTIONAL' },
        { name: 'at', type: 'INT64', converted_type: 'TIMESTAMP_MICROS', logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: true, unit: 'MICROS' }, repetition_type: 'OPTIONAL' },
        { name: 'local', type: 'INT64', logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: false, unit: 'MILLIS' }, repetition_type: 'OPTIONAL' },
        { name: 'extra', type: 'BYTE_ARRAY', converted_type: 'JSON', repetition_type: 'OPTIONAL' },
      ],
    });

    const table = await readParquet(path, 'types.parquet');
    const rows = await collect(table);

    expect(table.format).toBe('parquet');
    expect(table.columns).toEqual(['id', 'count', 'ratio', 'price', 'code', 'open', 'day', 'at', 'local', 'extra']);
    // 1,700,000,000 s after the epoch is 2023-11-14T22:13:20Z
    expect(rows).toEqual([
      { position: 1, values: ['1', '7', '0.1', '12.30', '007', 'true', '2024-02-29', '2023-11-14 22:13:20.123456+00', '2023-11-14 22:13:20', '{"a":1,"b":[2,3]}'] },
      { position: 2, values: ['9007199254740993', '-3', '1e-7', '-0.05', 'A12', 'false', '1969-12-31', '1970-01-01 00:00:00+00', '1969-12-31 23:59:59.999', null] },
      { position: 3, values: [null, null, null, null, null, null, null, null, null, null] },
    ]);
    expect(table.declaredTypes?.()).toEqual(['bigint', 'integer', 'double', 'numeric', 'text', 'boolean', 'date', 'timestamptz', 'timestamp', undefined]);
  });

  it('writes unannotated bytes as hex, never as UTF-8 with U+FFFD, and decodes only columns annotated as text', async () => {
    const hash = Uint8Array.from([0xde, 0xad, 0xbe, 0xef]); // not UTF-8: 0xde 0xad is a lead byte and a continuation, then 0xbe is a stray continuation
    const path = await write('bytes.parquet', {
      columnData: [
        { name: 'hash', data: [hash, null] },
        { name: 'kind', data: ['café', null] },
        { name: 'status', data: ['élu', null] },
      ],
      schema: [
        { name: 'root', num_children: 3 },
        { name: 'hash', type: 'BYTE_ARRAY', repetition_type: 'OPTIONAL' },
        { name: 'kind', type: 'BYTE_ARRAY', logical_type: { type: 'STRING' }, repetition_type: 'OPTIONAL' },
        { name: 'status', type: 'BYTE_ARRAY', converted_type: 'ENUM', repetition_type: 'OPTIONAL' },
      ],
    });

    const table = await readParquet(path, 'bytes.parquet');
    const rows = await collect(table);

    expect(rows.map((r) => r.values)).toEqual([
      ['\\xdeadbeef', 'café', 'élu'],
      [null, null, null],
    ]);
    expect(rows[0]!.values[0]).not.toContain('\uFFFD');
  });

  it('streams row group by row group, and a damaged row group fails naming it after the rows before it', async () => {
    const n = 2500;
    const options = {
      columnData: [
        { name: 'n', data: Int32Array.from({ length: n }, (_, i) => i), type: 'INT32' as const, nullable: false },
        { name: 'label', data: Array.from({ length: n }, (_, i) => `row ${i}`), type: 'STRING' as const },
      ],
      rowGroupSize: 1000,
      codec: 'UNCOMPRESSED' as const,
    };
    const good = await write('groups.parquet', options);
    const bytes = Buffer.from(parquetWriteBuffer(options));
    const meta = parquetMetadata(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    expect(meta.row_groups.map((g) => Number(g.num_rows))).toEqual([1000, 1000, 500]);
    // garble the page header of the third row group's first column
    const at = Number(meta.row_groups[2]!.columns[0]!.meta_data!.data_page_offset);
    bytes.fill(0xff, at, at + 12);
    const bad = dir.path('damaged.parquet');
    await writeFile(bad, bytes);

    const rows = await collect(await readParquet(good, 'groups.parquet'));
    const seen: number[] = [];
    let failure: unknown;
    try {
      for await (const row of (await readParquet(bad, 'damaged.parquet')).rows()) seen.push(row.position);
    } catch (error) {
      failure = error;
    }

    expect(rows.length).toBe(n);
    expect(rows.every((r, i) => r.position === i + 1 && r.values[0] === String(i) && r.values[1] === `row ${i}`)).toBe(true);
    expect(seen.length).toBe(2000);
    expect(failure).toBeInstanceOf(ReadError);
    expect((failure as ReadError).message).toMatch(/^damaged\.parquet: row group 3 of 3 \(rows 2001–2500\) cannot be read: /);
  });

  it('makes a GeoParquet WKB column the geometry, with the SRID and type its metadata gives', async () => {
    const points = [
      { type: 'Point', coordinates: [652_470.5, 6_862_035.25] },
      { type: 'Point', coordinates: [842_666, 6_519_924] },
    ] as const;
    const wkb = points.map((p) => geojsonToWkb(p as never));
    const geo = {
      version: '1.1.0',
      primary_column: 'geom',
      columns: { geom: { encoding: 'WKB', geometry_types: ['Point'], crs: { type: 'ProjectedCRS', name: 'RGF93 v1 / Lambert-93', id: { authority: 'EPSG', code: 2154 } } } },
    };
    const path = await write('places.geoparquet', {
      columnData: [
        { name: 'name', data: ['Paris', 'Lyon'], type: 'STRING' },
        { name: 'geom', data: wkb, type: 'BYTE_ARRAY' },
      ],
      kvMetadata: [{ key: 'geo', value: JSON.stringify(geo) }],
    });

    const table = await readParquet(path, 'places.geoparquet');
    const rows = await collect(table);

    expect(table.geometry).toEqual({ column: 'geom', encoding: 'wkb', srid: 2154, type: 'Point' });
    expect(rows.map((r) => r.values)).toEqual([
      ['Paris', Buffer.from(wkb[0]!).toString('hex')],
      ['Lyon', Buffer.from(wkb[1]!).toString('hex')],
    ]);
    // WKB of a point: byte order 01, type 1, then x and y as little-endian doubles
    expect(rows[0]!.values[1]!.slice(0, 10)).toBe('0101000000');
    expect(Buffer.from(rows[0]!.values[1]!.slice(10, 26), 'hex').readDoubleLE(0)).toBe(652_470.5);
  });

  it('is found by its PAR1 magic whatever its name, and by the format hint', async () => {
    const path = await write('export.bin', { columnData: [{ name: 'x', data: [1, 2], type: 'INT32' }] });

    for (const format of [undefined, 'parquet' as const]) {
      const opened = await openSource({ name: 'export.bin', path, open: async () => createReadStream(path) }, { format });
      try {
        expect(opened.entries.map((e) => [e.kind, e.format, e.name])).toEqual([['table', 'parquet', 'export.bin']]);
      } finally {
        await opened.dispose();
      }
    }
  });

  it('says a file that is not Parquet is not, naming it', async () => {
    const path = dir.path('fake.parquet');
    await writeFile(path, 'PAR1 but not really');

    await expect(readParquet(path, 'fake.parquet')).rejects.toThrow(/^fake\.parquet: not a readable Parquet file \(/);
  });

  it('refuses a file with an encrypted footer, saying so, when it comes by its magic', async () => {
    const path = dir.path('secret.bin');
    await writeFile(path, Buffer.concat([Buffer.from('PARE'), Buffer.alloc(64, 7), Buffer.from('PARE')]));

    await expect(openSource({ name: 'secret.bin', path, open: async () => createReadStream(path) })).rejects.toThrow(
      'secret.bin: an encrypted Parquet file (its footer is encrypted); decrypt it before loading',
    );
  });
});

describe('real Parquet files (apache/parquet-testing)', () => {
  const facts = JSON.parse(readFileSync(join(fixtures, 'facts.json'), 'utf8')) as {
    delta: { columns: string[]; rows: (string | null)[][]; int64: string[] };
    crs: Record<string, { srid: number; rows: number }>;
    geographyPoints: { rows: number; rowGroups: number; srid: number; poles: string[] };
  };

  it('reads parquet-mr delta-encoded optional columns to the values the repository expects, nulls and all', async () => {
    const table = await readParquet(join(fixtures, 'delta_encoding_optional_column.parquet'), 'delta.parquet');
    const rows = await collect(table);

    expect(table.columns).toEqual(facts.delta.columns);
    expect(rows.map((r) => r.values)).toEqual(facts.delta.rows);
    expect(table.declaredTypes?.()).toEqual(facts.delta.columns.map((c) => (facts.delta.int64.includes(c) ? 'bigint' : 'text')));
  });

  it('takes the SRID of a GEOMETRY column from PROJJSON in the metadata, and CRS84 when none is given', async () => {
    for (const [file, expected] of Object.entries(facts.crs)) {
      const table = await readParquet(join(fixtures, file), file);
      const rows = await collect(table);

      expect(table.geometry).toMatchObject({ column: 'geometry', encoding: 'wkb', srid: expected.srid });
      expect(rows.length).toBe(expected.rows);
      expect(table.warnings).toEqual([]);
    }
  });

  it('reads a Zstandard-compressed GEOGRAPHY file of many row groups, the poles among its points', async () => {
    const path = join(fixtures, 'geography-points.parquet');
    const bytes = readFileSync(path);
    const meta = parquetMetadata(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    const table = await readParquet(path, 'geography-points.parquet');
    const rows = await collect(table);
    const geometry = table.columns.indexOf('geometry');

    expect(meta.row_groups.length).toBe(facts.geographyPoints.rowGroups);
    expect(meta.row_groups[0]!.columns.map((c) => c.meta_data?.codec)).toContain('ZSTD');
    expect(table.geometry).toMatchObject({ column: 'geometry', encoding: 'wkb', srid: facts.geographyPoints.srid });
    expect(rows.length).toBe(facts.geographyPoints.rows);
    for (const pole of facts.geographyPoints.poles) expect(rows.some((r) => r.values[geometry] === pole)).toBe(true);
  });
});
