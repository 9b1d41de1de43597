import { mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import iconv from 'iconv-lite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sridFromPrj } from '../../functions/read/prj.ts';
import { encodingFromCpg, readShapefile } from '../../functions/read/shapefile.ts';
import { POINT, POLYGON, PRJ_LAMBERT93_ESRI, PRJ_RD_NEW_ESRI, PRJ_WGS84_ESRI, square, writeShapefile, type TestShapefile } from '../helpers/shapefile-writer.ts';
import { readError, rowsOf } from '../helpers/read-table.ts';

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'read-shp-'));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

let seq = 0;
function shapefile(spec: TestShapefile) {
  return writeShapefile(dir, `f${++seq}`, spec);
}

describe('readShapefile attributes', () => {
  const fields = [
    { name: 'NAME', type: 'C', length: 20 },
    { name: 'AREA', type: 'N', length: 12, decimals: 3 },
    { name: 'RATIO', type: 'F', length: 10 },
    { name: 'OPENED', type: 'D', length: 8 },
    { name: 'FREE', type: 'L', length: 1 },
  ];

  it('reads text trimmed, numbers as written, dates as ISO and logicals as true/false, blanks as NULL', async () => {
    const parts = shapefile({
      shapeType: POINT,
      fields,
      records: [
        { shape: { parts: [[[0, 0]]] }, values: ['  Parc  ', 1234.5, '-1.5e3', '20240229', 'Y'] },
        { shape: { parts: [[[1, 1]]] }, values: [null, null, null, null, '?'] },
        { shape: { parts: [[[2, 2]]] }, values: ['x', Buffer.from('************'), '0', '00000000', 'n'] },
      ],
    });

    const table = await readShapefile(parts, 'parks.shp');
    const rows = await rowsOf(table);

    expect(table.columns).toEqual(['NAME', 'AREA', 'RATIO', 'OPENED', 'FREE', 'geometry']);
    expect(table).toMatchObject({ format: 'shapefile', unit: 'feature', geometry: { column: 'geometry', encoding: 'wkb', type: 'Point' } });
    expect(rows.map((r) => r.values.slice(0, -1))).toEqual([
      ['Parc', '1234.500', '-1.5e3', '2024-02-29', 'true'],
      [null, null, null, null, null],
      ['x', null, '0', null, 'false'],
    ]);
  });

  it("declares each field's type from its descriptor once the records are read, blanks and all", async () => {
    const parts = shapefile({
      shapeType: POINT,
      fields: [
        { name: 'ID', type: 'N', length: 9 },
        { name: 'BIG', type: 'N', length: 15 },
        { name: 'AREA', type: 'N', length: 12, decimals: 3 },
        { name: 'NAME', type: 'C', length: 20 },
        { name: 'OPENED', type: 'D', length: 8 },
        { name: 'FREE', type: 'L', length: 1 },
      ],
      records: [
        { shape: { parts: [[[0, 0]]] }, values: [1, 12345678901, 1234.5, 'Parc', '20240229', 'Y'] },
        { shape: { parts: [[[1, 1]]] }, values: [null, null, null, null, null, '?'] },
        { shape: { parts: [[[2, 2]]] }, values: [-3, 7, '-0.25', '12', '00000000', 'f'] },
      ],
    });

    const table = await readShapefile(parts, 'parks.shp');
    const before = table.declaredTypes!();
    await rowsOf(table);

    expect(before).toEqual([undefined, undefined, undefined, undefined, undefined, undefined, undefined]);
    expect(table.declaredTypes!()).toEqual(['integer', 'bigint', 'numeric', 'text', 'date', 'boolean', undefined]);
  });

  it('declares numeric a decimal field written with three-digit exponents, as dBASE writers pad them', async () => {
    const parts = shapefile({
      shapeType: POINT,
      fields: [{ name: 'SURFACE', type: 'N', length: 19, decimals: 11 }],
      records: [
        { shape: { parts: [[[0, 0]]] }, values: ['4.63355654586e+007'] },
        { shape: { parts: [[[1, 1]]] }, values: ['-1.5E-003'] },
      ],
    });

    const table = await readShapefile(parts, 'areas.shp');
    const rows = await rowsOf(table);

    expect(table.declaredTypes!()).toEqual(['numeric', undefined]);
    expect(rows.map((r) => r.values[0])).toEqual(['4.63355654586e+007', '-1.5E-003']);
  });

  it('declares no type for a field whose values do not all fit it: the load infers one, as today', async () => {
    const parts = shapefile({
      shapeType: POINT,
      fields: [
        { name: 'CODE', type: 'N', length: 5 },
        { name: 'RATIO', type: 'F', length: 10, decimals: 2 },
        { name: 'OPENED', type: 'D', length: 8 },
        { name: 'FREE', type: 'L', length: 1 },
        { name: 'MEMO', type: 'M', length: 10 },
      ],
      records: [
        { shape: { parts: [[[0, 0]]] }, values: ['00123', '1.5', '20230230', 'X', 'a'] },
        { shape: { parts: [[[1, 1]]] }, values: ['7', 'n/a', '20230101', 'T', 'b'] },
      ],
    });

    const table = await readShapefile(parts, 'codes.shp');
    await rowsOf(table);

    expect(table.declaredTypes!()).toEqual([undefined, undefined, undefined, undefined, undefined, undefined]);
  });

  it('skips deleted records and keeps the record numbers of the others as positions', async () => {
    const parts = shapefile({
      shapeType: POINT,
      fields: [{ name: 'ID', type: 'N', length: 4 }],
      records: [1, 2, 3, 4].map((id) => ({ shape: { parts: [[[id, id]]] }, values: [id], deleted: id === 2 })),
    });

    const rows = await rowsOf(await readShapefile(parts, 'p.shp'));

    expect(rows.map((r) => [r.position, r.values[0]])).toEqual([
      [1, '1'],
      [3, '3'],
      [4, '4'],
    ]);
  });

  it('names the geometry column geometry_2 when a field is already called geometry', async () => {
    const parts = shapefile({ shapeType: POINT, fields: [{ name: 'GEOMETRY', type: 'C', length: 5 }], records: [{ shape: { parts: [[[0, 0]]] }, values: ['a'] }] });

    const table = await readShapefile(parts, 'p.shp');

    expect(table.columns).toEqual(['GEOMETRY', 'geometry_2']);
    expect(table.geometry?.column).toBe('geometry_2');
  });

  describe('text encoding', () => {
    const text = (spec: Partial<TestShapefile>) =>
      shapefile({ shapeType: POINT, fields: [{ name: 'NOM', type: 'C', length: 30 }], records: [{ shape: { parts: [[[0, 0]]] }, values: ['Forêt de Bécon – Œuvre'] }], ...spec });
    const first = async (parts: ReturnType<typeof text>, encoding?: string) => (await rowsOf(await readShapefile(parts, 'p.shp', { encoding })))[0]!.values[0];

    it('follows the .cpg', async () => {
      expect(await first(text({ encoding: 'windows-1252', cpg: '1252' }))).toBe('Forêt de Bécon – Œuvre');
      expect(await first(text({ encoding: 'utf-8', cpg: 'UTF-8\r\n' }))).toBe('Forêt de Bécon – Œuvre');
      expect(await first(text({ encoding: 'iso-8859-1', cpg: 'ISO-8859-1', records: [{ shape: { parts: [[[0, 0]]] }, values: ['Forêt à Zoë'] }] }))).toBe('Forêt à Zoë');
    });

    it('follows the language driver byte when there is no .cpg', async () => {
      const parts = shapefile({
        shapeType: POINT,
        fields: [{ name: 'NOM', type: 'C', length: 30 }],
        records: [{ shape: { parts: [[[0, 0]]] }, values: [iconv.encode('Café Öl', 'cp850')] }],
        ldid: 0x02,
      });

      expect(await first(parts)).toBe('Café Öl');
    });

    it('detects UTF-8, and falls back to windows-1252 with a warning when the text is not UTF-8', async () => {
      const utf8 = text({ encoding: 'utf-8' });
      const ansi = text({ encoding: 'windows-1252' });
      const table = await readShapefile(ansi, 'ansi.shp');

      expect(await first(utf8)).toBe('Forêt de Bécon – Œuvre');
      expect((await rowsOf(table))[0]!.values[0]).toBe('Forêt de Bécon – Œuvre');
      expect(table.warnings).toContain('ansi.shp: the .dbf declares no encoding (no .cpg) and its text is not UTF-8: read as windows-1252');
    });

    it('understands the ways a .cpg names an encoding, and says when it does not', async () => {
      const table = await readShapefile(text({ encoding: 'utf-8', cpg: 'Klingon-7' }), 'p.shp');

      expect(['UTF-8', '65001', '1252', 'ANSI 1251', '88591', 'ISO 8859-15', 'OEM', '850', 'cp1250'].map(encodingFromCpg)).toEqual([
        'utf-8',
        'utf-8',
        'windows-1252',
        'windows-1251',
        'iso-8859-1',
        'iso-8859-15',
        'cp437',
        'cp850',
        'windows-1250',
      ]);
      expect((await rowsOf(table))[0]!.values[0]).toBe('Forêt de Bécon – Œuvre');
      expect(table.warnings).toContain('p.shp: the .cpg names the encoding "Klingon-7", which this reader does not know: the attributes\' encoding was detected instead');
    });

    it('lets read.encoding override the .cpg', async () => {
      expect(await first(text({ encoding: 'windows-1252', cpg: 'UTF-8' }), 'windows-1252')).toBe('Forêt de Bécon – Œuvre');
    });
  });
});

describe('readShapefile coordinate system', () => {
  const point = (prj?: string) => shapefile({ shapeType: POINT, records: [{ shape: { parts: [[[155000, 463000]]] } }], ...(prj !== undefined ? { prj } : {}) });

  it('reports the SRID of a projected .prj (RD New, Lambert-93) and of WGS 84', async () => {
    const srids = await Promise.all([PRJ_RD_NEW_ESRI, PRJ_LAMBERT93_ESRI, PRJ_WGS84_ESRI].map(async (prj) => (await readShapefile(point(prj), 'p.shp')).geometry?.srid));

    expect(srids).toEqual([28992, 2154, 4326]);
  });

  it('leaves the SRID unknown without a .prj, unless read.srid gives it', async () => {
    const parts = point();

    expect((await readShapefile(parts, 'p.shp')).geometry?.srid).toBeUndefined();
    expect((await readShapefile(parts, 'p.shp', { srid: 31370 })).geometry?.srid).toBe(31370);
  });

  it('hands on a .prj it does not recognise by authority or name, with its name, for the load to identify (no SRID assumed)', async () => {
    const wkt = 'PROJCS["Lunar_Grid_2001",GEOGCS["GCS_Moon",DATUM["D_Moon",SPHEROID["Moon",1737400,0]]]]';
    const table = await readShapefile(point(wkt), 'moon.zip!moon.shp');

    expect(table.geometry?.srid).toBeUndefined();
    expect(table.geometry?.crs).toEqual({ wkt, name: 'Lunar_Grid_2001', from: 'its .prj' });
    // read.srid given: it decides, nothing is handed on
    const given = await readShapefile(point(wkt), 'moon.zip!moon.shp', { srid: 30100 });
    expect(given.geometry).toMatchObject({ srid: 30100 });
    expect(given.geometry?.crs).toBeUndefined();
  });

  it('fails on a .prj that is not WKT, naming the file and read.srid, unless read.srid gives the SRID (was: taken as 4326)', async () => {
    await expect(readShapefile(point('this is not a projection'), 'bad.zip!bad.shp')).rejects.toThrow(
      'bad.zip!bad.shp: its .prj is not a coordinate system in WKT (it begins "this is not a projection"): give the source\'s EPSG code with read.srid (--source-srid for civic-etl load)',
    );
    expect((await readShapefile(point('this is not a projection'), 'bad.zip!bad.shp', { srid: 28992 })).geometry?.srid).toBe(28992);
  });
});

describe('readShapefile bad input', () => {
  const pointsFile = (n: number) =>
    shapefile({
      shapeType: POLYGON,
      fields: [{ name: 'ID', type: 'N', length: 5 }],
      records: Array.from({ length: n }, (_, i) => ({ shape: { parts: [square(i, 0, 1, true)] }, values: [i + 1] })),
    });

  it('refuses a .shp without its .dbf, naming both', async () => {
    const parts = pointsFile(1);

    const error = await readError(readShapefile({ shp: parts.shp }, 'incoming/acme/parks.zip!parks.shp'));

    expect(error.message).toBe(`incoming/acme/parks.zip!parks.shp: the .dbf that goes with ${parts.shp.split('/').at(-1)} is missing`);
  });

  it('names the feature and byte offset where a truncated .shp is cut off', async () => {
    const parts = pointsFile(3);
    // each record: 8-byte header + 4 + 32 + 4 + 4 + 4 + 5 * 16 = 136 bytes; cut the third in half
    truncateSync(parts.shp, 100 + 2 * 136 + 60);
    const table = await readShapefile(parts, 'parks.zip!parks.shp');

    const error = await readError(rowsOf(table));

    expect(error.message).toBe('parks.zip!parks.shp: the .shp is cut off in feature 3: its record at byte offset 372 needs 136 bytes, the file has 60 left');
    expect(error.position).toMatchObject({ file: 'parks.zip!parks.shp', line: 3, offset: 372 });
  });

  it('refuses a .dbf with fewer records than the .shp, at the first feature without attributes', async () => {
    const parts = pointsFile(3);
    const short = pointsFile(2);
    writeFileSync(parts.dbf, readFileSync(short.dbf));
    const table = await readShapefile(parts, 'parks.shp');

    const error = await readError(rowsOf(table));

    expect(error.message).toMatch(/^parks\.shp: its \.dbf \(f\d+\.dbf\) has 2 records, fewer than the \.shp: feature 3 \(byte offset 372 of the \.shp\) has no attributes$/);
  });

  it('refuses a .dbf whose header claims more records than the file can hold (2³¹), naming the count and the size', async () => {
    const parts = pointsFile(3);
    const dbf = readFileSync(parts.dbf);
    const recordBytes = dbf.readUInt16LE(10);
    const headerBytes = dbf.readUInt16LE(8);
    dbf.writeUInt32LE(2 ** 31, 4);
    writeFileSync(parts.dbf, dbf);

    const error = await readError(readShapefile(parts, 'parks.zip!parks.shp'));

    expect(error.message).toBe(
      `parks.zip!parks.shp: its .dbf (${parts.dbf.split('/').pop()}) says it holds 2147483648 records of ${recordBytes} bytes after a ${headerBytes}-byte header (${headerBytes + 2 ** 31 * recordBytes} bytes), but the file has ${dbf.length} bytes: it is cut off or its header is damaged`,
    );
    expect(error.position).toMatchObject({ file: 'parks.zip!parks.shp', offset: 4 });
  });

  it('refuses a file that is not a shapefile', async () => {
    const path = join(dir, 'not.shp');
    writeFileSync(path, 'id,name\n1,a\n'.repeat(20));
    const parts = pointsFile(1);

    const error = await readError(readShapefile({ ...parts, shp: path }, 'upload.zip!not.shp'));

    expect(error.message).toMatch(/^upload\.zip!not\.shp: not a shapefile: a \.shp starts with the file code 9994, this one with \d+$/);
  });

  it('names the feature whose record claims more points than it holds', async () => {
    const parts = pointsFile(2);
    const bytes = readFileSync(parts.shp);
    bytes.writeInt32LE(1000, 100 + 136 + 8 + 40); // numPoints of record 2
    writeFileSync(parts.shp, bytes);

    const error = await readError(rowsOf(await readShapefile(parts, 'p.shp')));

    expect(error.message).toBe('p.shp: feature 2 (record at byte offset 236 of the .shp) claims 1 part and 1000 points, which need 16048 bytes; the record holds 128');
    expect(statSync(parts.shp).size).toBe(100 + 2 * 136);
  });
});

describe('sridFromPrj', () => {
  it('takes the EPSG authority of the whole system, not of its datum or units', () => {
    const gdal =
      'PROJCS["RGF93 v1 / Lambert-93",GEOGCS["RGF93 v1",DATUM["Reseau_Geodesique_Francais_1993_v1",SPHEROID["GRS 1980",6378137,298.257222101,AUTHORITY["EPSG","7019"]],AUTHORITY["EPSG","6171"]],PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433,AUTHORITY["EPSG","9122"]],AUTHORITY["EPSG","4171"]],PROJECTION["Lambert_Conformal_Conic_2SP"],UNIT["metre",1,AUTHORITY["EPSG","9001"]],AUTHORITY["EPSG","2154"]]';
    const noOwnAuthority = 'PROJCS["My grid",GEOGCS["WGS 84",AUTHORITY["EPSG","4326"]],UNIT["metre",1,AUTHORITY["EPSG","9001"]]]';
    const wkt2 = 'PROJCRS["Amersfoort / RD New",BASEGEOGCRS["Amersfoort",ID["EPSG",4289]],CS[Cartesian,2],ID["EPSG",28992]]';

    expect(sridFromPrj(gdal)).toBe(2154);
    expect(sridFromPrj(noOwnAuthority)).toBeUndefined();
    expect(sridFromPrj(wkt2)).toBe(28992);
  });

  it('recognises the ESRI names suppliers use most', () => {
    const names: [string, number][] = [
      ['GEOGCS["GCS_WGS_1984"]', 4326],
      ['PROJCS["WGS_1984_Web_Mercator_Auxiliary_Sphere"]', 3857],
      ['PROJCS["WGS_1984_Web_Mercator"]', 3857],
      ['PROJCS["Amersfoort_RD_New"]', 28992],
      ['PROJCS["RGF93_Lambert_93"]', 2154],
      ['PROJCS["NAD_1983_StatePlane_Illinois_East_FIPS_1201_Feet"]', 3435],
      ['PROJCS["ETRS_1989_UTM_Zone_31N"]', 25831],
      ['PROJCS["ETRS_1989_UTM_Zone_32N"]', 25832],
      ['GEOGCS["GCS_North_American_1983"]', 4269],
      ['GEOGCS["GCS_ETRS_1989"]', 4258],
      ['PROJCS["ETRS_1989_LAEA"]', 3035],
      ['PROJCS["Belge_Lambert_1972"]', 31370],
      ['PROJCS["British_National_Grid"]', 27700],
      ['PROJCS["WGS_1984_UTM_Zone_33S"]', 32733],
      ['PROJCS["RGF93_CC49"]', 3949],
    ];

    expect(names.map(([wkt]) => sridFromPrj(`${wkt.slice(0, -1)},UNIT["Meter",1.0]]`))).toEqual(names.map(([, code]) => code));
  });

  it('knows nothing of unknown names and of text that is not WKT', () => {
    expect(sridFromPrj('PROJCS["Local_Grid",UNIT["Meter",1.0]]')).toBeUndefined();
    expect(sridFromPrj('hello')).toBeUndefined();
    expect(sridFromPrj('')).toBeUndefined();
  });
});
