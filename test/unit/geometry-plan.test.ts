import { describe, expect, it } from 'vitest';
import { geometrySchema } from '../../contract/schema.ts';
import { planGeometry } from '../../functions/clean/geometry.ts';

const def = geometrySchema.parse({});
const plan = (header: string[]) =>
  planGeometry(
    def,
    undefined,
    header,
    header.map((_, i) => `c${i}`),
    'file.csv',
  );

describe('points from coordinate columns found by name', () => {
  it('finds latitude and longitude named in the languages of the portals', () => {
    expect(plan(['name', 'Latitude', 'Longitude'])?.source).toMatchObject({ kind: 'latlon', lat: 'c1', lon: 'c2' });
    expect(plan(['Breitengrad', 'Längengrad'])?.source).toMatchObject({ kind: 'latlon', lat: 'c0', lon: 'c1' });
    expect(plan(['comune', 'latitudine', 'longitudine'])?.source).toMatchObject({ kind: 'latlon', lat: 'c1', lon: 'c2' });
    expect(plan(['naam', 'breedtegraad', 'lengtegraad'])?.source).toMatchObject({ kind: 'latlon', lat: 'c1', lon: 'c2' });
    expect(plan(['lon_wgs84', 'lat_wgs84'])?.source).toMatchObject({ kind: 'latlon', lat: 'c1', lon: 'c0' });
  });

  it('does not take width and length for coordinates', () => {
    // DB Station&Service writes its stations' coordinates as Laenge/Breite — and a road table its
    // lengths and widths so: those need --lat/--lon
    expect(plan(['NAME', 'Laenge', 'Breite'])).toBeUndefined();
    expect(plan(['Straße', 'Länge', 'Breite'])).toBeUndefined();
  });
});
