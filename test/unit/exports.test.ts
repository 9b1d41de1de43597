import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { describe, expect, it } from 'vitest';
import { parsePipeline } from '../../contract/load.ts';
import type { PipelineInput } from '../../contract/definition.ts';
import { crlfRecords, curatedPrefix, geometryColumn, latestKey, neutraliseCell, runId, viewsToExport, type ViewColumn } from '../../functions/combine/exports.ts';

/** Pass `chunks` through the CRLF transform, chunk boundaries as given. */
async function throughCrlf(chunks: string[]): Promise<string> {
  return text(Readable.from(chunks.map((c) => Buffer.from(c))).pipe(crlfRecords()));
}

describe('CSV record endings', () => {
  it('end every record with CRLF', async () => {
    expect(await throughCrlf(['a,b\n1,2\n'])).toBe('a,b\r\n1,2\r\n');
  });

  it('keep a line break inside a quoted field as it is, also when a chunk ends inside the quotes', async () => {
    expect(await throughCrlf(['id,note\n1,"first', '\nsecond"\n2,"say ""hi', '""\n"\n'])).toBe('id,note\r\n1,"first\nsecond"\r\n2,"say ""hi""\n"\r\n');
  });

  it('leave a chunk without any line feed untouched', async () => {
    expect(await throughCrlf(['abc', 'def\n'])).toBe('abcdef\r\n');
  });
});

describe('curated keys', () => {
  it('name runs by UTC time to the millisecond, then the load, so they sort as they happened', () => {
    const first = runId(new Date('2025-01-31T10:15:30.123Z'), 42);
    const second = runId(new Date('2025-01-31T10:15:30.124Z'), 7);

    expect(first).toBe('20250131T101530123Z-load42');
    expect(runId(new Date('2025-01-31T10:15:30.123Z'))).toBe('20250131T101530123Z');
    expect([second, first].sort()).toEqual([first, second]);
  });

  it('keep every run of a view and its latest.json under curated/<project>/<view>/', () => {
    expect(curatedPrefix('chicago', 'programs_per_area')).toBe('curated/chicago/programs_per_area/');
    expect(latestKey('chicago', 'programs_per_area')).toBe('curated/chicago/programs_per_area/latest.json');
  });
});

const pipeline: PipelineInput = {
  project: 'gold',
  suppliers: [{ name: 'city' }],
  datasets: [
    { name: 'sites', source: { type: 'upload', supplier: 'city' } },
    { name: 'areas', source: { type: 'upload', supplier: 'city' } },
  ],
  views: [
    { name: 'sites_gold', datasets: ['sites'], sql: 'SELECT * FROM {{schema}}.sites', export: {} },
    { name: 'joined_gold', datasets: ['sites', 'areas'], sql: 'SELECT * FROM {{schema}}.sites, {{schema}}.areas', export: { formats: ['csv'] } },
    { name: 'sites_internal', datasets: ['sites'], sql: 'SELECT * FROM {{schema}}.sites' },
  ],
};

describe('the export option of a view', () => {
  it('exports Parquet and CSV unless told otherwise', () => {
    const views = parsePipeline(pipeline).views;

    expect(views.map((v) => v.export?.formats)).toEqual([['parquet', 'csv'], ['csv'], undefined]);
  });

  it('is rejected with a format listed twice, or one it cannot write', () => {
    const twice = { ...pipeline, views: [{ name: 'v', datasets: ['sites'], sql: 'SELECT 1', export: { formats: ['csv', 'csv'] } }] } as PipelineInput;
    const xlsx = { ...pipeline, views: [{ name: 'v', datasets: ['sites'], sql: 'SELECT 1', export: { formats: ['xlsx'] } }] } as unknown as PipelineInput;

    expect(() => parsePipeline(twice)).toThrow(/lists a format twice/);
    expect(() => parsePipeline(xlsx)).toThrow(/formats/);
  });

  it('selects, after a clean, the exported views that read the cleaned dataset', () => {
    const parsed = parsePipeline(pipeline);

    expect(viewsToExport(parsed, 'sites').map((v) => v.name)).toEqual(['sites_gold', 'joined_gold']);
    expect(viewsToExport(parsed, 'areas').map((v) => v.name)).toEqual(['joined_gold']);
  });
});

describe('GeoParquet column metadata', () => {
  const geom: ViewColumn = { name: 'geom', type: 'geometry(Geometry,0)', kind: 'geometry', srid: 0 };
  const stats = (srids: number[], types = ['Point'], unknownType = false) => ({
    srids: new Set(srids),
    types: new Set(types),
    unknownType,
    bbox: [1, 2, 3, 4] as [number, number, number, number],
  });

  it("leaves the CRS out for EPSG:4326, which is GeoParquet's default (OGC:CRS84, longitude first)", () => {
    const { summary, geo } = geometryColumn(geom, stats([4326]));

    expect(geo).toEqual({ encoding: 'WKB', geometry_types: ['Point'], bbox: [1, 2, 3, 4] });
    expect(summary).toMatchObject({ srid: 4326, crs: 'OGC:CRS84' });
  });

  it('gives a bundled CRS as PROJJSON with its EPSG id', () => {
    const { geo } = geometryColumn(geom, stats([2154], ['MultiPolygon', 'Polygon']));

    expect(geo.geometry_types).toEqual(['MultiPolygon', 'Polygon']);
    expect(geo.crs).toMatchObject({ type: 'ProjectedCRS', name: 'RGF93 v1 / Lambert-93', id: { authority: 'EPSG', code: 2154 } });
  });

  it('says the CRS is unknown (null) rather than guess, for a code without PROJJSON or for mixed SRIDs', () => {
    expect(geometryColumn(geom, stats([32632])).geo.crs).toBeNull();
    expect(geometryColumn(geom, stats([32632])).summary.crs).toBe('EPSG:32632');
    const mixed = geometryColumn(geom, stats([4326, 28992]));
    expect(mixed.geo.crs).toBeNull();
    expect(mixed.summary).toMatchObject({ srid: null, crs: null });
  });

  it('takes the SRID of an empty column from its type', () => {
    const typed: ViewColumn = { ...geom, type: 'geometry(Point,28992)', srid: 28992 };

    expect(geometryColumn(typed, { srids: new Set(), types: new Set(), unknownType: false }).summary).toEqual({ column: 'geom', srid: 28992, crs: 'EPSG:28992', types: [] });
  });

  it('lists no geometry types when a geometry has one GeoParquet cannot name (curves, TINs)', () => {
    expect(geometryColumn(geom, stats([4326], ['Point'], true)).geo.geometry_types).toEqual([]);
  });
});

describe('neutraliseCell (the CSV export against formula injection)', () => {
  it('puts a quote before a cell starting with = + - @ tab or CR, and leaves plain numbers and other text alone', () => {
    expect(['=1+1', '+SUM(A1)', '-2+3', '@SUM(A1)', '\tx', '\rx', '- note'].map(neutraliseCell)).toEqual(["'=1+1", "'+SUM(A1)", "'-2+3", "'@SUM(A1)", "'\tx", "'\rx", "'- note"]);
    expect(['-3.5', '+12', '1e-3', '-.5', 'plain', " '=already", '', 'a=b'].map(neutraliseCell)).toEqual(['-3.5', '+12', '1e-3', '-.5', 'plain', " '=already", '', 'a=b']);
  });
});
