import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { describePrj, sameShape, shapeFromProj4, shapeFromWkt } from '../../functions/read/prj.ts';

// texts GDAL writes for these EPSG codes (test/fixtures/prj/README.md): ESRI and OGC WKT1, PROJ strings
const DIR = join(import.meta.dirname, '..', 'fixtures', 'prj');
const text = (name: string) => readFileSync(join(DIR, name), 'utf8');
const CODES = readdirSync(DIR)
  .flatMap((f) => /^esri-(\d+)\.prj$/.exec(f)?.[1] ?? [])
  .map(Number)
  .sort((a, b) => a - b);
/** OGC WKT1 as writers without an EPSG database write it: no AUTHORITY nodes. */
const withoutAuthority = (wkt: string) => wkt.replace(/,\s*AUTHORITY\["[^"]*","[^"]*"\]/g, '');

describe('a .prj reduced to its projection parameters', () => {
  it('has fixtures for the systems suppliers use: RD New, Lambert-93, UTM north and south, State Planes in metres and US feet, GDA94/GDA2020, British National Grid, Paris grads', () => {
    expect(CODES).toEqual(expect.arrayContaining([28992, 2154, 32631, 32755, 26986, 2249, 2263, 28355, 7855, 27700, 27572]));
  });

  it.each(CODES)('EPSG:%i: the ESRI text, the OGC text and the PROJ string describe one shape', (code) => {
    const esri = shapeFromWkt(text(`esri-${code}.prj`));
    const ogc = shapeFromWkt(withoutAuthority(text(`ogc-${code}.prj`)));
    const proj = shapeFromProj4(text(`proj4-${code}.txt`));

    expect(esri, 'ESRI WKT').toBeDefined();
    expect(ogc, 'OGC WKT').toBeDefined();
    expect(proj, 'PROJ string').toBeDefined();
    expect(sameShape(esri!, proj!)).toBe(true);
    expect(sameShape(ogc!, proj!)).toBe(true);
    expect(sameShape(esri!, ogc!)).toBe(true);
  });

  it('reads the MassGIS senate districts .prj as the Lambert conic of Massachusetts Mainland in metres, and not as its US-feet twin', () => {
    const massgis = shapeFromWkt(text('massgis-senate-26986.prj'))!;

    expect(massgis).toMatchObject({ proj: 'lcc', toMeter: 1, a: 6378137 });
    expect(massgis.params).toMatchObject({ lon_0: -71.5, lat_0: 41, x_0: 200000, y_0: 750000 });
    expect(sameShape(massgis, shapeFromProj4(text('proj4-26986.txt'))!)).toBe(true);
    // the same projection with coordinates in US survey feet is another system
    expect(sameShape(massgis, shapeFromProj4(text('proj4-2249.txt'))!)).toBe(false);
    // its ESRI name is not in the hand list: only the parameters can tell
    expect(describePrj(text('massgis-senate-26986.prj'))).toEqual({ keyword: 'PROJCS', name: 'NAD_1983_StatePlane_Massachusetts_Mainland_FIPS_2001' });
  });

  it('converts grads (NTF Paris) and US feet (New York Long Island) to degrees and metres', () => {
    const paris = shapeFromWkt(text('esri-27572.prj'))!;
    const longIsland = shapeFromWkt(text('esri-2263.prj'))!;

    expect(paris.params.lat_0).toBeCloseTo(46.8, 9);
    expect(paris.pm).toBeCloseTo(2.33722917, 8);
    expect(longIsland.params.x_0).toBeCloseTo(300000, 3);
    expect(longIsland.toMeter).toBeCloseTo(0.3048006096, 9);
  });

  it('tells systems apart by any parameter: UTM 31N from 32N, north from south, RD New from a shifted copy, GRS80 from Bessel', () => {
    const utm31 = shapeFromWkt(text('esri-32631.prj'))!;
    const rd = text('esri-28992.prj');

    expect(sameShape(utm31, shapeFromProj4('+proj=utm +zone=32 +datum=WGS84 +units=m +no_defs')!)).toBe(false);
    expect(sameShape(utm31, shapeFromProj4('+proj=utm +zone=31 +south +datum=WGS84 +units=m +no_defs')!)).toBe(false);
    expect(sameShape(shapeFromWkt(rd)!, shapeFromWkt(rd.replace('155000.0', '155001.0'))!)).toBe(false);
    expect(sameShape(shapeFromWkt(rd)!, shapeFromWkt(rd.replace('6377397.155,299.1528128', '6378137.0,298.257222101'))!)).toBe(false);
  });

  it('has no shape for text that is not WKT or a projection method it does not map', () => {
    expect(shapeFromWkt('hello')).toBeUndefined();
    expect(shapeFromWkt('PROJCS["x",GEOGCS["g",DATUM["d",SPHEROID["s",6378137,298.257223563]]],PROJECTION["Some_Other_Method"],UNIT["Meter",1]]')).toBeUndefined();
  });
});
