/**
 * Malformed files that once loaded a plausible but wrong result (issue 16, outcome 2), each
 * uploaded as a supplier and driven through the local runner (real PostgreSQL + PostGIS, moto's
 * S3 and SQS). What a user sees is asserted: the load's ledger row (failed, with the file and the
 * position) or the quarantine rows with their reason — and on failure, the previous clean table
 * as it was.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import yazl from 'yazl';
import { closePool } from '../../functions/common/db.ts';
import { openLocalPipeline, type LocalPipeline } from '../../local/pipeline.ts';
import { purgeLocalResources } from '../../local/resources.ts';
import { shapefileBytes, POINT } from '../helpers/shapefile-writer.ts';
import { ods, writeOds } from '../helpers/spreadsheets.ts';
import { makeZip } from '../helpers/zip.ts';
import { rows } from './support.ts';

const PIPELINE = 'test/fixtures/wrong-results-pipeline.yaml';
let local: LocalPipeline;
const dir = mkdtempSync(join(tmpdir(), 'civic-etl-wrong-'));
const file = (name: string, body: string | Buffer) => {
  const path = join(dir, name);
  writeFileSync(path, body);
  return path;
};

beforeAll(async () => {
  local = await openLocalPipeline(PIPELINE, { visibilityTimeoutSeconds: 1, maxReceiveCount: 2 });
  await purgeLocalResources(local.resources);
  await local.pool.query('DROP SCHEMA IF EXISTS it_wrong CASCADE; DROP SCHEMA IF EXISTS it_wrong_staging CASCADE; CREATE SCHEMA it_wrong; CREATE SCHEMA it_wrong_staging');
  await local.pool.query(`DELETE FROM etl.loads WHERE project = 'it_wrong'`);
}, 120_000);
afterAll(closePool);

interface Load {
  id: number;
  status: string;
  error: string | null;
  error_kind: string | null;
  rows_loaded: number | null;
  rows_quarantined: number | null;
}
const loadOf = async (name: string) =>
  (
    await rows<Load>(
      local.pool,
      `SELECT id::int, status, error, error_kind, rows_loaded::int, rows_quarantined::int FROM etl.loads
        WHERE project = 'it_wrong' AND object_key LIKE '%/' || $1 ORDER BY id DESC LIMIT 1`,
      [name],
    )
  )[0]!;

/** Upload `name` to `dataset` and run the pipeline until idle; the load's ledger row. */
async function upload(dataset: string, name: string, body: string | Buffer): Promise<Load> {
  await local.uploadAsSupplier(dataset, file(name, body));
  await local.run({ maxMs: 120_000 });
  return loadOf(name);
}

const records = () => rows(local.pool, 'SELECT id, name FROM it_wrong.records ORDER BY id');
/** A clean `records` table of two rows, loaded from a good file. */
async function cleanRecords() {
  expect(await upload('records', `good-${Date.now()}.csv`, 'id,name\n7,Seven\n8,Eight\n')).toMatchObject({ status: 'loaded', rows_loaded: 2 });
  return records();
}

/** A permanent failure naming the file and matching `says`; the clean table as it was. */
async function expectRefused(dataset: string, name: string, body: string | Buffer, says: RegExp) {
  const before = await cleanRecords();
  const load = await upload(dataset, name, body);
  expect(load).toMatchObject({ status: 'failed', error_kind: 'permanent' });
  expect(load.error).toContain(`incoming/acme/${dataset}/${name}`);
  expect(load.error).toMatch(says);
  expect(await records()).toEqual(before);
}

/** The file's first feature (id 1, a point) loads; its second goes to quarantine, line 2, column geom, for `reason`. */
async function expectSecondFeatureQuarantined(name: string, body: string, reason: RegExp | string): Promise<void> {
  const load = await upload('places', name, body);
  expect(load).toMatchObject({ status: 'loaded', rows_loaded: 1, rows_quarantined: 1 });
  expect(await rows(local.pool, 'SELECT id::int, ST_AsText(geom) AS g FROM it_wrong.places ORDER BY id')).toEqual([{ id: 1, g: 'POINT(4.9 52.37)' }]);
  const quarantined = await rows<{ line: number; column_name: string; reason: string }>(
    local.pool,
    'SELECT source_line::int AS line, column_name, reason FROM it_wrong.places_quarantine WHERE load_id = $1',
    [load.id],
  );
  expect(quarantined).toEqual([{ line: 2, column_name: 'geom', reason: typeof reason === 'string' ? expect.stringContaining(reason) : expect.stringMatching(reason) }]);
}

describe('GeoJSON: a malformed position quarantines its feature, with the reason; the other features load', () => {
  const collection = (second: string) =>
    `{"type":"FeatureCollection","features":[` +
    `{"type":"Feature","properties":{"id":1},"geometry":{"type":"Point","coordinates":[4.9,52.37]}},` +
    `{"type":"Feature","properties":{"id":2},"geometry":{"type":"Point","coordinates":${second}}}]}`;
  it.each([
    ['nested.geojson', '[[1,2],[3,4]]', /Point coordinates nested too deep/], // PostGIS reads POINT(0 0)
    ['nested-one.geojson', '[[1,2]]', /Point coordinates nested too deep/],
    ['five.geojson', '[1,2,3,4,5]', /a position has 5 numbers, not 2 or 3/],
    ['infinite.geojson', '[1e400,-1e400]', /a coordinate is not finite/],
  ])('%s (coordinates %s)', async (name, coordinates, reason) => {
    await expectSecondFeatureQuarantined(name, collection(coordinates), reason);
  });
});

describe('GeoJSON: a ring not closed or too short, a line of one point quarantines its feature, with the reason (was: loaded as if whole)', () => {
  it.each([
    [
      'unclosed.geojson',
      {
        type: 'Polygon',
        coordinates: [
          [
            [0, 0],
            [1, 0],
            [1, 1],
            [0, 1],
          ],
        ],
      },
      'ring 1 of the Polygon is not closed',
    ],
    [
      'short-ring.geojson',
      {
        type: 'Polygon',
        coordinates: [
          [
            [0, 0],
            [1, 0],
          ],
        ],
      },
      'ring 1 of the Polygon has 2 positions, fewer than 4',
    ],
    ['one-point.geojson', { type: 'LineString', coordinates: [[1, 2]] }, 'the LineString has 1 position, fewer than 2'],
  ])('%s', async (name, geometry, reason) => {
    const body = JSON.stringify({
      type: 'FeatureCollection',
      features: [
        { type: 'Feature', properties: { id: 1 }, geometry: { type: 'Point', coordinates: [4.9, 52.37] } },
        { type: 'Feature', properties: { id: 2 }, geometry },
      ],
    });
    await expectSecondFeatureQuarantined(name, body, reason);
  });
});

describe('coordinate systems', () => {
  it('a GeoJSON crs naming an SRID PostGIS does not know fails, naming the file and the SRID (was: PostGIS\'s "Invalid reserved SRID", retried)', async () => {
    const body = JSON.stringify({
      type: 'FeatureCollection',
      crs: { type: 'name', properties: { name: 'urn:ogc:def:crs:EPSG::999999' } },
      features: [{ type: 'Feature', properties: { id: 1 }, geometry: { type: 'Point', coordinates: [4.9, 52.37] } }],
    });
    const load = await upload('places', 'bogus-crs.geojson', body);
    expect(load).toMatchObject({ status: 'failed', error_kind: 'permanent' });
    expect(load.error).toContain('incoming/acme/places/bogus-crs.geojson: its crs member (at byte 34) names SRID 999999: no such SRID');
    expect(load.error).toContain('set read.srid (dataset places) to an EPSG code PostGIS knows');
  });
});

describe('shapefile: a NaN or infinite coordinate quarantines its feature, with the reason', () => {
  it.each([
    ['infinite.zip', Infinity],
    ['nan.zip', NaN],
  ])('%s', async (name, x) => {
    const { shp, shx, dbf } = shapefileBytes({
      shapeType: POINT,
      fields: [{ name: 'id', type: 'N', length: 4 }],
      records: [
        { shape: { parts: [[[4.9, 52.37]]] }, values: [1] },
        { shape: { parts: [[[x, 52]]] }, values: [2] },
      ],
    });
    const load = await upload('parks', name, await makeZip({ 'parks.shp': shp, 'parks.shx': shx, 'parks.dbf': dbf }));
    expect(load).toMatchObject({ status: 'loaded', rows_loaded: 1, rows_quarantined: 1 });
    expect(await rows(local.pool, 'SELECT id::int, ST_AsText(geom) AS g FROM it_wrong.parks ORDER BY id')).toEqual([{ id: 1, g: 'POINT(4.9 52.37)' }]);
    const quarantined = await rows(local.pool, 'SELECT source_line::int AS line, column_name, reason FROM it_wrong.parks_quarantine WHERE load_id = $1', [load.id]);
    expect(quarantined).toEqual([{ line: 2, column_name: 'geom', reason: 'not a valid geometry: invalid shape (a coordinate is NaN or infinite)' }]);
  });
});

describe('shapefile: a .prj we cannot read or identify fails, naming the .prj and read.srid (was: loaded as EPSG:4326)', () => {
  const zipped = async (prj: string) => {
    const { shp, shx, dbf } = shapefileBytes({
      shapeType: POINT,
      fields: [{ name: 'id', type: 'N', length: 4 }],
      records: [{ shape: { parts: [[[4.9, 52.37]]] }, values: [1] }],
    });
    return makeZip({ 'parks.shp': shp, 'parks.shx': shx, 'parks.dbf': dbf, 'parks.prj': prj });
  };
  it('a .prj that is not WKT', async () => {
    await expectRefused(
      'parks',
      'bad-prj.zip',
      await zipped('this is not a projection'),
      /bad-prj\.zip!parks\.shp: its \.prj is not a coordinate system in WKT \(it begins "this is not a projection"\): give the source's EPSG code with read\.srid \(--source-srid for civic-etl load\)/,
    );
  });
  it('a .prj naming a system on another planet, over coordinates that look like longitudes and latitudes', async () => {
    const mars = 'PROJCS["Nowhere",GEOGCS["Mars 2000",DATUM["D_Mars",SPHEROID["Mars",3396190,169.89]]]]';
    await expectRefused(
      'parks',
      'mars.zip',
      await zipped(mars),
      /its \.prj names coordinate system "Nowhere", which is not one PostGIS knows by its parameters, nor longitude\/latitude on the Earth.*read\.srid \(dataset parks\)/,
    );
  });
});

describe('CSV', () => {
  const rowsAfter = Array.from({ length: 30_000 }, (_, i) => `${i + 10},name ${i}\n`).join(''); // past the 256 KiB head detection reads
  it.each([
    ['unclosed.csv', 'id,name\n1,Ann\n2,"Bo\n3,Cy\n', 3],
    ['unclosed-large.csv', `id,name\n1,Ann\n2,"Bo\n${rowsAfter}`, 3],
  ])('an unclosed quote in a file that quotes nothing else (%s) fails, naming the line and field where it opened', async (name, body, line) => {
    await expectRefused('records', name, body, new RegExp(`${name.replace('.', '\\.')} line ${line}, field 2 \\("name"\\): a quote opens a field there that is never closed`));
  });
});

describe('a file with no data rows does not empty a table holding rows', () => {
  it.each([
    ['comma.csv', ','],
    ['header-only.csv', 'id,name\n'],
  ])('%s is refused in mode replace, naming the file and the way to allow it; the table is kept', async (name, body) => {
    await expectRefused('records', name, body, /no data rows — loading it would empty it_wrong\.records \(mode replace\); the table is kept\. .*clean\.allowEmpty: true/);
  });

  it('a one-byte file (") fails as a file with no complete line; the table is kept', async () => {
    await expectRefused('records', 'quote.csv', '"', /no complete line/);
  });

  it('a dataset with clean.allowEmpty: true is emptied by a file with no data rows', async () => {
    expect(await upload('optional', 'some.csv', 'id,name\n1,Ann\n')).toMatchObject({ status: 'loaded', rows_loaded: 1 });
    expect(await upload('optional', 'none.csv', 'id,name\n')).toMatchObject({ status: 'loaded', rows_loaded: 0 });
    expect(await rows(local.pool, 'SELECT * FROM it_wrong.optional')).toEqual([]);
  });
});

/** The text of one member of a zip on disk. */
async function memberText(path: string, member: string): Promise<string> {
  const { default: yauzl } = await import('yauzl');
  const zip = await new Promise<import('yauzl').ZipFile>((resolve, reject) => yauzl.open(path, { lazyEntries: true }, (e, z) => (e ? reject(e) : resolve(z!))));
  try {
    for (;;) {
      const entry = await new Promise<import('yauzl').Entry | undefined>((resolve, reject) => {
        zip
          .once('entry', resolve)
          .once('end', () => resolve(undefined))
          .once('error', reject);
        zip.readEntry();
      });
      if (!entry) throw new Error(`${member} is not in ${path}`);
      if (entry.fileName !== member) continue;
      const stream = await new Promise<NodeJS.ReadableStream>((resolve, reject) => zip.openReadStream(entry, (e, s) => (e ? reject(e) : resolve(s!))));
      const parts: Buffer[] = [];
      for await (const chunk of stream) parts.push(chunk as Buffer);
      return Buffer.concat(parts).toString('utf8');
    }
  } finally {
    zip.close();
  }
}

describe('truncated or impossible files', () => {
  it('a zipped shapefile whose .dbf claims 2³¹ records fails, naming the .dbf, the count and the file size', async () => {
    const { shp, shx, dbf } = shapefileBytes({
      shapeType: POINT,
      fields: [{ name: 'id', type: 'N', length: 4 }],
      records: [1, 2].map((id) => ({ shape: { parts: [[[id, id]]] }, values: [id] })),
      dbfRecordCount: 2 ** 31,
    });
    const body = await makeZip({ 'parks.shp': shp, 'parks.shx': shx, 'parks.dbf': dbf });
    await expectRefused(
      'records',
      'parks.zip',
      body,
      /parks\.zip!parks\.shp: its \.dbf \(parks\.dbf\) says it holds 2147483648 records of \d+ bytes .* but the file has \d+ bytes: it is cut off or its header is damaged/,
    );
  });

  it('an .ods whose content.xml is cut off after the sheet fails, naming the file (was: loaded)', async () => {
    const whole = join(dir, 'whole.ods');
    await writeOds(whole, [{ name: 'Sheet1', rows: [ods.row([ods.text('id'), ods.text('name')]), ...[1, 2, 3].map((i) => ods.row([ods.float(i), ods.text(`n${i}`)]))] }]);
    const content = await memberText(whole, 'content.xml');
    // cut after the sheet's table: every row is there, the document is not
    const cut = content.slice(0, content.indexOf('</table:table>') + '</table:table>'.length);
    const body = await makeZip({ mimetype: 'application/vnd.oasis.opendocument.spreadsheet', 'content.xml': cut }, { compress: false });
    await expectRefused('records', 'cut.ods', body, /cut\.ods#Sheet1: the XML ends before the document does \(near row 4\): unclosed tag: office:spreadsheet; the file is cut off or damaged/);
  });

  it('a UTF-16 CSV of an odd number of bytes fails, naming the file and the last byte (was: the byte dropped)', async () => {
    const body = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('id,name\n1,Ann\n2,Bo\n', 'utf16le'), Buffer.from([0x41])]);
    await expectRefused('records', 'odd.csv', body, new RegExp(`odd\\.csv: a UTF-16LE file of ${body.length} bytes, an odd number: its last byte \\(offset ${body.length - 1}\\) is half a character`));
  });
});

describe('encodings', () => {
  it('a JSON file with a byte that is not UTF-8 fails, naming the byte offset (was U+FFFD in the data)', async () => {
    const head = '[{"id":1,"name":"Ann"},{"id":2,"name":"Caf';
    const body = Buffer.concat([Buffer.from(head), Buffer.from([0xe9]), Buffer.from('"}]')]); // "Café" in Latin-1
    await expectRefused('records', 'latin1.json', body, new RegExp(`byte ${head.length} \\(0xe9\\) is not UTF-8`));
  });
});

describe('archives', () => {
  /** A zip holding `members` in order, names repeated as given (yazl writes what it is told). */
  async function zipOf(members: [string, string][]): Promise<Buffer> {
    const zip = new yazl.ZipFile();
    for (const [name, body] of members) zip.addBuffer(Buffer.from(body), name, { mtime: new Date(2026, 0, 1) });
    zip.end();
    const parts: Buffer[] = [];
    for await (const chunk of zip.outputStream) parts.push(chunk as Buffer);
    return Buffer.concat(parts);
  }

  it("a zip with two members of the same name fails, naming the member (was: one kept, the other's rows dropped)", async () => {
    const body = await zipOf([
      ['people.csv', 'id,name\n1,Ann\n'],
      ['people.csv', 'id,name\n2,Bo\n'],
    ]);
    await expectRefused('records', 'twice.zip', body, /twice\.zip!people\.csv: the archive holds two members named "people\.csv"/);
  });
});
