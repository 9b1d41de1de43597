import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { sridFromCrs } from '../../functions/read/crs.ts';
import { readGeoJson, type GeoJsonTable } from '../../functions/read/geojson.ts';
import type { JsonReadOptions } from '../../functions/read/json.ts';
import { geoJsonToHexWkb, geometryBytesToHexWkb, stagedGeometry } from '../../functions/read/geojson-wkb.ts';
import { ReadError, type ReadRow } from '../../functions/read/types.ts';
import { atLineColumn, lineColumn } from '../helpers/text-position.ts';

const NAME = 'incoming/acme/parks/parks.geojson';

/** A source that gives `text` in chunks of `size` bytes. */
function source(text: string | Buffer, size = 7) {
  const bytes = Buffer.isBuffer(text) ? text : Buffer.from(text);
  return async () =>
    (async function* () {
      for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
    })();
}

async function rowsOf(table: GeoJsonTable): Promise<ReadRow[]> {
  const rows: ReadRow[] = [];
  for await (const row of table.rows()) rows.push(row);
  return rows;
}

/** The table and its rows as objects keyed by column. */
async function read(text: string | Buffer, opts: JsonReadOptions = {}, size = 7) {
  const table = await readGeoJson(source(text, size), NAME, opts);
  const columnsBefore = [...table.columns];
  const sridBefore = table.geometry.srid;
  const rows = await rowsOf(table);
  return {
    table,
    columnsBefore,
    sridBefore,
    rows: rows.map((r): Record<string, string | number | null> => ({ position: r.position, ...Object.fromEntries(table.columns.map((c, i) => [c, r.values[i] ?? null])) })),
  };
}

async function failure(text: string | Buffer, opts: JsonReadOptions = {}, size = 7): Promise<{ error: ReadError; rows: ReadRow[] }> {
  const rows: ReadRow[] = [];
  try {
    const table = await readGeoJson(source(text, size), NAME, opts);
    for await (const r of table.rows()) rows.push(r);
  } catch (error) {
    expect(error).toBeInstanceOf(ReadError);
    return { error: error as ReadError, rows };
  }
  throw new Error('expected a ReadError');
}

const SQUARE = '{ "type": "Polygon", "coordinates": [ [ [4.89, 52.37], [4.90, 52.37], [4.90, 52.38], [4.89, 52.37] ] ] }';
const TWO_SQUARES = '{"type":"MultiPolygon","coordinates":[[[[0,0],[1,0],[1,1],[0,0]]],[[[5,5],[6,5],[6,6],[5,5]]]]}';

/** What the reader writes for a geometry: hex WKB of it (PostGIS reads that fastest). */
const wkb = (geometry: string) => geoJsonToHexWkb(geometry);

function feature(props: Record<string, unknown> | null, geometry: string, id?: string | number): string {
  return `{"type": "Feature", ${id !== undefined ? `"id": ${JSON.stringify(id)}, ` : ''}"properties": ${JSON.stringify(props)}, "geometry": ${geometry}}`;
}

function collection(features: string[], extra = '', after = ''): string {
  return `{"type": "FeatureCollection",${extra} "features": [\n${features.join(',\n')}\n]${after}}\n`;
}

describe('readGeoJson: a FeatureCollection', () => {
  const text = collection(
    [
      feature({ name: 'Vondelpark', area: 47.5, tags: ['a', 'b'], address: { city: 'Amsterdam', zip: { code: '1071' } } }, SQUARE, 'NL.1'),
      feature({ name: 'Park "[Oost]" {x}', area: 1.1, open: true }, TWO_SQUARES, 'NL.2'),
      feature({ name: 'no shape', area: null }, 'null', 'NL.3'),
    ],
    ' "name": "parks",',
  );

  it('gives one row per feature, the same for 1-byte, 7-byte and whole-file chunks', async () => {
    const whole = await read(text, {}, 1 << 20);
    for (const size of [1, 7, 100]) expect((await read(text, {}, size)).rows).toEqual(whole.rows);

    expect(whole.table).toMatchObject({ name: NAME, format: 'geojson', unit: 'feature', warnings: [] });
    expect(whole.table.columns).toEqual(['id', 'name', 'area', 'tags', 'address.city', 'address.zip.code', 'open', 'geometry']);
    expect(whole.rows.map((r) => r.position)).toEqual([1, 2, 3]);
  });

  it('writes each geometry as hex WKB of the exact text of the file, and a null geometry as NULL', async () => {
    const { table, rows } = await read(text);

    expect(table.geometry).toMatchObject({ column: 'geometry', encoding: 'wkb' });
    expect(rows.map((r) => r.geometry)).toEqual([wkb(SQUARE), wkb(TWO_SQUARES), null]);
    expect(wkb(SQUARE)).toBe(
      '01030000000100000004000000' +
        ['4.89', '52.37', '4.90', '52.37', '4.90', '52.38', '4.89', '52.37']
          .map((n) => {
            const b = Buffer.alloc(8);
            b.writeDoubleLE(Number(n));
            return b.toString('hex');
          })
          .join(''),
    );
  });

  it('flattens properties, keeps numbers as written and arrays as JSON text', async () => {
    const { rows } = await read(text);

    expect(rows[0]).toMatchObject({ id: 'NL.1', name: 'Vondelpark', area: '47.5', tags: '["a","b"]', 'address.city': 'Amsterdam', 'address.zip.code': '1071', open: null });
    expect(rows[1]).toMatchObject({ name: 'Park "[Oost]" {x}', area: '1.1', open: 'true' });
    expect(rows[2]).toMatchObject({ area: null });
  });

  it('records the geometry type seen, or Geometry when they are mixed', async () => {
    const polygons = await read(collection([feature({ a: 1 }, SQUARE), feature({ a: 2 }, 'null')]));
    const mixed = await read(text);

    expect(polygons.table.geometry.type).toBe('Polygon');
    expect(mixed.table.geometry.type).toBe('Geometry');
  });

  it('keeps the members other than features, wherever they are', async () => {
    const { table } = await read(collection([feature({ a: 1 }, SQUARE)], ' "name": "parks",', ', "bbox": [0, 0, 1, 1]'));

    expect(table.members).toEqual({ type: 'FeatureCollection', name: 'parks', bbox: [0, 0, 1, 1] });
  });

  it('names the feature id column id_2 and the geometry column geometry_2 when properties take those names', async () => {
    const { table, rows } = await read(collection([feature({ id: 7, geometry: 'round' }, SQUARE, 'f1')]));

    expect(table.columns).toEqual(['id_2', 'id', 'geometry', 'geometry_2']);
    expect(table.geometry.column).toBe('geometry_2');
    expect(rows[0]).toMatchObject({ id_2: 'f1', id: '7', geometry: 'round', geometry_2: wkb(SQUARE) });
  });

  it('has no id column when features have no id, and adds properties first seen late', async () => {
    const features = Array.from({ length: 1200 }, (_, i) => feature(i === 1100 ? { n: i, late: 'x' } : { n: i }, '{"type":"Point","coordinates":[1,2]}'));

    const { columnsBefore, table, rows } = await read(collection(features), {}, 4096);

    expect(columnsBefore).toEqual(['n', 'geometry']);
    expect(table.columns).toEqual(['n', 'geometry', 'late']);
    expect(rows[1100]).toMatchObject({ n: '1100', late: 'x' });
  });

  it('puts a property named like the id column, first seen late, in its own column and says so', async () => {
    const features = Array.from({ length: 1200 }, (_, i) => feature(i === 1100 ? { n: i, id: 'p' } : { n: i }, 'null', i + 1));

    const { table, rows } = await read(collection(features), {}, 4096);

    expect(table.columns).toEqual(['id', 'n', 'geometry', 'id_2']);
    expect(rows[1100]).toMatchObject({ id: '1101', id_2: 'p' });
    expect(table.warnings).toEqual([`${NAME}: the property "id" first seen at feature 1101 is in column "id_2": "id" is the column of the feature ids`]);
  });
});

describe('readGeoJson: SRID', () => {
  const rd = '"crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::28992"}},';
  const crs84 = ', "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}}';

  it('takes the SRID from a crs before the features, before rows() runs', async () => {
    const { sridBefore, table } = await read(collection([feature({ a: 1 }, SQUARE)], rd));

    expect(sridBefore).toBe(28992);
    expect(table.geometry.srid).toBe(28992);
  });

  it('sets the SRID from a crs after the features once rows() has read it', async () => {
    const features = Array.from({ length: 1500 }, (_, i) => feature({ n: i }, '{"type":"Point","coordinates":[4.9,52.4]}'));
    const table = await readGeoJson(source(collection(features, '', crs84), 4096), NAME);

    expect(table.geometry.srid).toBeUndefined();
    const rows = await rowsOf(table);
    expect(rows).toHaveLength(1500);
    expect(table.geometry.srid).toBe(4326);
    expect(table.members.crs).toEqual({ type: 'name', properties: { name: 'urn:ogc:def:crs:OGC:1.3:CRS84' } });
  });

  it('leaves the SRID unknown without a crs (the stage step takes 4326)', async () => {
    const { table } = await read(collection([feature({ a: 1 }, SQUARE)]));

    expect(table.geometry.srid).toBeUndefined();
    expect(table.warnings).toEqual([]);
  });

  it('lets the srid hint override the crs, and says so', async () => {
    const { table } = await read(collection([feature({ a: 1 }, SQUARE)], rd), { srid: 2154 });

    expect(table.geometry.srid).toBe(2154);
    expect(table.warnings).toEqual([`${NAME}: its crs says EPSG:28992; read.srid 2154 overrides it`]);
  });

  it('warns about a link-style crs and leaves the SRID unknown', async () => {
    const link = '"crs": {"type": "link", "properties": {"href": "http://example.org/crs/42", "type": "proj4"}},';

    const { table } = await read(collection([feature({ a: 1 }, SQUARE)], link));

    expect(table.geometry.srid).toBeUndefined();
    expect(table.warnings).toEqual([
      `${NAME}: its crs member is a link to a definition (http://example.org/crs/42), which names no EPSG code; the coordinates are taken as EPSG:4326 unless read.srid says otherwise`,
    ]);
  });
});

describe('sridFromCrs', () => {
  const named = (name: string) => ({ type: 'name', properties: { name } });

  it('reads the EPSG code of the names GDAL, QGIS and portals write', () => {
    expect(sridFromCrs(named('urn:ogc:def:crs:EPSG::28992'))).toBe(28992);
    expect(sridFromCrs(named('urn:ogc:def:crs:EPSG:6.6:2154'))).toBe(2154);
    expect(sridFromCrs(named('EPSG:3857'))).toBe(3857);
    expect(sridFromCrs(named('http://www.opengis.net/def/crs/EPSG/0/31370'))).toBe(31370);
    expect(sridFromCrs({ type: 'EPSG', properties: { code: 25832 } })).toBe(25832);
    expect(sridFromCrs('EPSG:4326')).toBe(4326);
  });

  it('reads the OGC CRS84 names as 4326, and web mercator aliases as 3857', () => {
    expect(sridFromCrs(named('urn:ogc:def:crs:OGC:1.3:CRS84'))).toBe(4326);
    expect(sridFromCrs(named('urn:ogc:def:crs:OGC::CRS84'))).toBe(4326);
    expect(sridFromCrs(named('CRS84'))).toBe(4326);
    expect(sridFromCrs(named('urn:ogc:def:crs:EPSG::900913'))).toBe(3857);
    expect(sridFromCrs(named('ESRI:102100'))).toBe(3857);
  });

  it('gives nothing for a link, an unknown name or no crs', () => {
    expect(sridFromCrs({ type: 'link', properties: { href: 'http://example.org/crs', type: 'proj4' } })).toBeUndefined();
    expect(sridFromCrs(named('Amersfoort / RD New'))).toBeUndefined();
    expect(sridFromCrs(named('ESRI:54009'))).toBeUndefined();
    expect(sridFromCrs(null)).toBeUndefined();
    expect(sridFromCrs(undefined)).toBeUndefined();
  });
});

describe('readGeoJson: other GeoJSON shapes', () => {
  it('reads a single Feature as one row', async () => {
    const { table, rows } = await read(feature({ name: 'solo' }, SQUARE, 9));

    expect(table.columns).toEqual(['id', 'name', 'geometry']);
    expect(rows).toEqual([{ position: 1, id: '9', name: 'solo', geometry: wkb(SQUARE) }]);
    expect(table.geometry.type).toBe('Polygon');
  });

  it('reads a bare geometry as one row with only a geometry', async () => {
    const { table, rows } = await read('{"type": "Point", "coordinates": [4.9, 52.37]}');

    expect(table.columns).toEqual(['geometry']);
    expect(rows).toEqual([{ position: 1, geometry: wkb('{"type":"Point","coordinates":[4.9, 52.37]}') }]);
  });

  it('reads a GeoJSON text sequence, one Feature per line or after RS', async () => {
    const seq = `${feature({ n: 1 }, SQUARE)}\n\u001e${feature({ n: 2 }, 'null')}\n`;

    const { rows } = await read(seq, {}, 3);

    expect(rows).toEqual([
      { position: 1, n: '1', geometry: wkb(SQUARE) },
      { position: 2, n: '2', geometry: null },
    ]);
  });
});

describe('readGeoJson: bad input', () => {
  const good = (n: number) => Array.from({ length: n }, (_, i) => feature({ n: i + 1 }, '{"type":"Point","coordinates":[1,2]}'));

  it('names the feature and the byte of a broken feature, after yielding the features before it', async () => {
    const broken = '{"type": "Feature", "properties": {"n": 1201}, "geometry": {"type": "Point", "coordinates": [1,, 2]}}';
    const text = collection([...good(1200), broken, ...good(3)]);

    const { error, rows } = await failure(text, {}, 4096);

    const start = text.indexOf(broken);
    const at = start + broken.indexOf(',,') + 1;
    expect(error.message).toBe(`${NAME}: feature 1201 (from byte ${start}) is not valid JSON: expected a JSON value, found ',' at byte ${at}${atLineColumn(text, at)}`);
    expect(error.position).toMatchObject({ offset: at, line: lineColumn(text, at).line });
    expect(rows).toHaveLength(1200);
  });

  it("names the line and column of a broken value in a real pretty-printed file (Vaterstetten's polling districts), read in chunks", async () => {
    // a public uMap export (test/acceptance/files/SOURCES.md), one value per line; its 10th "stroke": false misspelt
    const original = readFileSync(new URL('../acceptance/files/de-vaterstetten-stimmbezirke-2021.geojson', import.meta.url), 'utf8');
    const lines = original.split('\n');
    const strokes = lines.flatMap((l, i) => (l.includes('"stroke": false') ? [i] : []));
    expect(strokes.length).toBeGreaterThanOrEqual(10);
    const lineNo = strokes[9]! + 1;
    const broken = lines.map((l, i) => (i === lineNo - 1 ? l.replace('"stroke": false', '"stroke": flase') : l)).join('\n');
    const column = lines[lineNo - 1]!.indexOf('false') + 2; // the 'l' where 'a' was expected

    const { error } = await failure(broken, {}, 4096);

    expect(error.message).toMatch(new RegExp(`unexpected 'l' in what looks like 'false' at byte \\d+ \\(line ${lineNo}, column ${column}\\)$`));
    expect(error.position.line).toBe(lineNo);
    expect(broken.split('\n')[lineNo - 1]![column - 1]).toBe('l');
  });

  it('counts the column in characters, not bytes, across chunks that split them', async () => {
    const line1 = '{"type": "FeatureCollection", "features": [';
    const line2 = `${feature({ name: 'Straße Nº 5 — été', n: 1 }, '{"type": "Point", "coordinates": [4.1, 52.2]}')},`;
    const line3 = '{"type": "Feature", "properties": {"name": "Ærøskøbing"}, "geometry": {"type": "Point", "coordinates": [10.4,, 54.9]}}]}';
    const text = [line1, line2, line3].join('\n');

    const { error } = await failure(text, {}, 3);

    // the second ',' of ',,', counted in characters (Æ, ø: two bytes each, cut across the 3-byte chunks)
    expect(error.message.endsWith(` (line 3, column ${[...line3.slice(0, line3.indexOf(',,'))].length + 2})`)).toBe(true);
    expect(error.message).toContain(atLineColumn(text, Buffer.byteLength(text.slice(0, text.indexOf(',,') + 1))));
  });

  it('says where a truncated file ends', async () => {
    const text = collection(good(2));
    const cut = text.slice(0, text.lastIndexOf('"coordinates"'));

    const { error } = await failure(cut);

    expect(error.message).toBe(
      `${NAME}: the file ends at byte ${cut.length} inside feature 2, which starts at byte ${cut.lastIndexOf('{"type": "Feature"')}: it is truncated or not complete JSON${atLineColumn(cut, cut.length)}`,
    );
    expect(error.position.offset).toBe(cut.length);
  });

  it('rejects a FeatureCollection without features, or whose features are not an array', async () => {
    expect((await failure('{"type": "FeatureCollection", "name": "empty"}')).error.message).toBe(`${NAME}: the FeatureCollection (from byte 0) has no "features" member (line 1, column 1)`);
    const object = '{"type": "FeatureCollection", "features": {"a": 1}}';
    expect((await failure(object)).error.message).toBe(`${NAME}: "features" (at byte 42) is an object, not an array of features${atLineColumn(object, 42)}`);
  });

  it('rejects a feature whose geometry is not an object, naming the feature', async () => {
    const text = collection([feature({ n: 1 }, SQUARE), feature({ n: 2 }, '"POINT (1 2)"')]);

    const { error } = await failure(text);

    expect(error.message).toBe(`${NAME}: feature 2 (at byte ${text.indexOf('"POINT')}): its geometry is a string, not an object or null${atLineColumn(text, text.indexOf('"POINT'))}`);
  });

  it('rejects a feature that is not a Feature object, or a geometry of an unknown type', async () => {
    const array = collection(['[1, 2]']);
    expect((await failure(array)).error.message).toBe(`${NAME}: feature 1 (at byte ${array.indexOf('[1, 2]')}) is an array, not a Feature object${atLineColumn(array, array.indexOf('[1, 2]'))}`);
    const geometry = collection([SQUARE]);
    expect((await failure(geometry)).error.message).toBe(
      `${NAME}: feature 1 (at byte ${geometry.indexOf('"Polygon"')}): its type is "Polygon", not "Feature"${atLineColumn(geometry, geometry.indexOf('"Polygon"'))}`,
    );
    const odd = collection([feature({}, '{"type": "Circle", "radius": 3}')]);
    expect((await failure(odd)).error.message).toBe(
      `${NAME}: feature 1 (at byte ${odd.indexOf('{"type": "Circle"')}): its geometry type "Circle" is not a GeoJSON geometry type${atLineColumn(odd, odd.indexOf('{"type": "Circle"'))}`,
    );
  });

  it('rejects a file that is not a GeoJSON object', async () => {
    expect((await failure('[{"type": "Feature"}]')).error.message).toBe(`${NAME}: not GeoJSON: the file starts with an array at byte 0, not an object`);
    expect((await failure('{"type": "Topology", "objects": {}}')).error.message).toBe(
      `${NAME}: not GeoJSON: the top-level object (from byte 0) has type "Topology", not FeatureCollection, Feature or a geometry type (line 1, column 1)`,
    );
  });

  it('fails on a feature larger than the limit without reading on', async () => {
    const big = feature({ blob: 'x'.repeat(50_000) }, SQUARE);

    const { error } = await failure(collection([feature({ n: 1 }, SQUARE), big]), { maxElementBytes: 10_000 }, 1024);

    expect(error.message).toMatch(new RegExp(`^${NAME}: feature 2 \\(from byte \\d+\\) is larger than 10000 bytes, the limit for one feature`));
  });
});

describe('GeoJSON geometry as WKB', () => {
  it('encodes every geometry type, in 2D and 3D', () => {
    const hex = (g: unknown) => geoJsonToHexWkb(JSON.stringify(g))!;

    expect(hex({ type: 'Point', coordinates: [1, 2] })).toBe('0101000000000000000000f03f0000000000000040');
    expect(hex({ type: 'Point', coordinates: [1, 2, 3] }).slice(0, 10)).toBe('01e9030000'); // ISO Point Z (1001)
    expect(
      hex({
        type: 'MultiPoint',
        coordinates: [
          [1, 2],
          [3, 4],
        ],
      }).slice(0, 18),
    ).toBe('010400000002000000');
    expect(
      hex({
        type: 'MultiLineString',
        coordinates: [
          [
            [0, 0],
            [1, 1],
          ],
        ],
      }).slice(0, 18),
    ).toBe('010500000001000000');
    expect(hex({ type: 'GeometryCollection', geometries: [{ type: 'Point', coordinates: [1, 2] }] })).toBe('0107000000010000000101000000000000000000f03f0000000000000040');
  });

  it('leaves to PostGIS what it does not take on: mixed dimensions, empty or malformed coordinates', () => {
    expect(geoJsonToHexWkb('{"type":"LineString","coordinates":[[0,0],[1,1,1]]}')).toBeUndefined();
    expect(geoJsonToHexWkb('{"type":"Point","coordinates":[]}')).toBeUndefined();
    expect(geoJsonToHexWkb('{"type":"Polygon","coordinates":[[1,2]]}')).toBeUndefined();
    expect(geoJsonToHexWkb('{"type":"Point","coordinates":["a","b"]}')).toBeUndefined();
    expect(geoJsonToHexWkb('{"type":"Pentagon","coordinates":[1,2]}')).toBeUndefined();
  });

  it('marks positions that are not numbers, which PostGIS would silently read as 0, so the row is quarantined', () => {
    expect(stagedGeometry('{"type":"Point","coordinates":["a","b"]}')).toMatch(/^invalid GeoJSON geometry \(a position is not numbers\): /);
    expect(stagedGeometry('{"type":"LineString","coordinates":[[0,0],[1,null]]}')).toMatch(/^invalid GeoJSON geometry/);
    expect(stagedGeometry('{"type":"LineString","coordinates":[[0,0],[1,1,1]]}')).toBe('{"type":"LineString","coordinates":[[0,0],[1,1,1]]}');
    expect(stagedGeometry('{"type":"Point","coordinates":[]}')).toBe('{"type":"Point","coordinates":[]}');
  });

  it('marks a ring not closed or of fewer than 4 positions, and a line of one position, which PostGIS would load as if whole', () => {
    const cases: [unknown, string][] = [
      [
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
        {
          type: 'Polygon',
          coordinates: [
            [
              [0, 0],
              [1, 0],
              [1, 1],
              [0, 0],
            ],
            [
              [0, 0],
              [1, 0],
            ],
          ],
        },
        'ring 2 of the Polygon has 2 positions, fewer than 4',
      ],
      [
        {
          type: 'MultiPolygon',
          coordinates: [
            [
              [
                [0, 0],
                [1, 0],
                [1, 1],
                [0, 0],
              ],
            ],
            [
              [
                [5, 5, 1],
                [6, 5, 1],
                [6, 6, 1],
                [5, 5, 2],
              ],
            ],
          ],
        },
        'ring 1 of polygon 2 is not closed',
      ],
      [{ type: 'LineString', coordinates: [[1, 2]] }, 'the LineString has 1 position, fewer than 2'],
      [
        {
          type: 'MultiLineString',
          coordinates: [
            [
              [0, 0],
              [1, 1],
            ],
            [[1, 2]],
          ],
        },
        'line 2 has 1 position, fewer than 2',
      ],
    ];
    for (const [g, reason] of cases) {
      const text = JSON.stringify(g);
      expect(stagedGeometry(text), text).toBe(`invalid GeoJSON geometry (${reason}): ${text}`);
      const b = Buffer.from(text);
      expect(geometryBytesToHexWkb(b, 0, b.length), text).toBeUndefined(); // the fast path leaves it to the general one
    }
    // closed rings (0 and -0 are the same number), empty parts and two-point lines are fine
    for (const g of [
      {
        type: 'Polygon',
        coordinates: [
          [
            [0, 0],
            [1, 0],
            [1, 1],
            [-0, 0],
          ],
        ],
      },
      { type: 'Polygon', coordinates: [[]] },
      {
        type: 'MultiPolygon',
        coordinates: [
          [
            [
              [0, 0],
              [1, 0],
              [1, 1],
              [0, 0],
            ],
          ],
          [
            [
              [2, 2],
              [2, 2],
            ],
          ],
        ],
      }, // closed, collapsed: the repair drops it and says so
      {
        type: 'LineString',
        coordinates: [
          [1, 2],
          [3, 4],
        ],
      },
      { type: 'MultiLineString', coordinates: [[]] },
    ]) {
      const text = JSON.stringify(g);
      const b = Buffer.from(text);
      expect(stagedGeometry(text), text).toBe(geoJsonToHexWkb(text));
      expect(geometryBytesToHexWkb(b, 0, b.length)?.hex, text).toBe(geoJsonToHexWkb(text));
    }
  });
});

describe('geometryBytesToHexWkb', () => {
  const bytes = (text: string) => {
    const b = Buffer.from(text);
    return geometryBytesToHexWkb(b, 0, b.length);
  };

  it('writes the same WKB as JSON.parse would, straight from the bytes, for every plain geometry', () => {
    const geometries = [
      '{"type":"Point","coordinates":[-87.551385,41.921407]}',
      '{ "type" : "Point" , "coordinates" : [ 1e2 , -0 , 3.25E-3 ] }',
      '{"coordinates":[[1,2],[3,4]],"type":"LineString"}',
      '{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0]],[[0.2,0.2],[0.4,0.2],[0.4,0.4],[0.2,0.2]]],"bbox":[0,0,1,1]}',
      '{"type":"Polygon","coordinates":[]}',
      '{"type":"MultiPoint","coordinates":[[1,2,3],[4,5,6]]}',
      '{"type":"MultiLineString","coordinates":[[[1,2],[3,4]],[]],"crs":{"type":"name","properties":{"name":"x\\u0041"}}}',
      '{"type":"MultiPolygon","coordinates":[[[[1,2,3],[3,4,5],[5,6,7],[1,2,3]]],[[[1.5,2.5,0],[3,4,0],[5,6,0],[1.5,2.5,0]]]]}',
      // more digits or larger exponents than the exact fast path: left to Number, which rounds as JSON.parse does
      '{"type":"Point","coordinates":[0.30000000000000004441,9007199254740993]}',
      '{"type":"Point","coordinates":[1e-400,1.7976931348623157e308]}',
      '{"type":"Point","coordinates":[4.9e-324,123456789012345678901234567890]}',
    ];
    for (const g of geometries) {
      const fast = bytes(g);
      expect(fast, g).toBeDefined();
      expect(fast!.hex, g).toBe(geoJsonToHexWkb(g));
      expect(fast!.after).toBe(Buffer.byteLength(g));
    }
  });

  it('rounds random coordinates exactly as JSON.parse does', () => {
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    for (let i = 0; i < 2000; i++) {
      const n = () => (random() * 360 - 180).toFixed(Math.floor(random() * 17));
      const g = `{"type":"Point","coordinates":[${n()},${n()}]}`;
      expect(bytes(g)!.hex, g).toBe(geoJsonToHexWkb(g));
    }
  });

  it('leaves anything but the plain case to the general path', () => {
    const others = [
      '{"type":"GeometryCollection","geometries":[]}',
      '{"type":"Point","coordinates":[]}',
      '{"type":"Point","coordinates":[1,2,3,4]}',
      '{"type":"LineString","coordinates":[[1,2],[3,4,5]]}',
      '{"type":"LineString","coordinates":[[1,2],[3,"4"]]}',
      '{"type":"Point","coordinates":[01,2]}',
      '{"type":"Point","coordinates":[1.,2]}',
      '{"type":"Point","coordinates":[1,2],}',
      '{"type":"Point","type":"Point","coordinates":[1,2]}',
      '{"type":"Poin\\u0074","coordinates":[1,2]}',
      '{"type":"Point"}',
      '{"type":"Point","coordinates":[1,2]',
    ];
    for (const g of others) expect(bytes(g), g).toBeUndefined();
  });
});
