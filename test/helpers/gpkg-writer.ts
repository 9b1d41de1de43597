/**
 * Builds small GeoPackages for tests with sql.js: the required metadata tables
 * (gpkg_spatial_ref_sys, gpkg_contents, gpkg_geometry_columns), layers with the columns and rows
 * the test gives, and GeoPackage geometry blobs (`GP` header + ISO WKB) from coordinates.
 */
import { writeFileSync } from 'node:fs';
import initSqlJs from 'sql.js';
import type { SqlValue } from 'sql.js';

export interface GpkgSrs {
  srsId: number;
  name: string;
  organization: string;
  coordsysId: number;
  definition: string;
}

export interface GpkgLayer {
  table: string;
  dataType?: 'features' | 'attributes' | 'tiles';
  /** Column declarations; a geometry column is declared with its type name (e.g. `POLYGON`). */
  columns: { name: string; type: string }[];
  geometry?: { column: string; type: string; srsId: number; z?: 0 | 1 | 2; m?: 0 | 1 | 2 };
  /** Values aligned with `columns`. */
  rows: SqlValue[][];
}

export const WGS84_SRS: GpkgSrs = {
  srsId: 4326,
  name: 'WGS 84 geodetic',
  organization: 'EPSG',
  coordsysId: 4326,
  definition: 'GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563]],PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433],AUTHORITY["EPSG","4326"]]',
};

/** Write a GeoPackage to `path`. `srs` adds systems besides 4326 and the spec's -1 and 0. */
export async function writeGeoPackage(path: string, spec: { layers: GpkgLayer[]; srs?: GpkgSrs[]; applicationId?: boolean }): Promise<void> {
  const SQL = await initSqlJs();
  const db = new SQL.Database();
  try {
    if (spec.applicationId !== false) db.run('PRAGMA application_id = 1196444487; PRAGMA user_version = 10300;');
    db.run(`CREATE TABLE gpkg_spatial_ref_sys (srs_name TEXT NOT NULL, srs_id INTEGER PRIMARY KEY, organization TEXT NOT NULL,
      organization_coordsys_id INTEGER NOT NULL, definition TEXT NOT NULL, description TEXT)`);
    db.run(`CREATE TABLE gpkg_contents (table_name TEXT NOT NULL PRIMARY KEY, data_type TEXT NOT NULL, identifier TEXT UNIQUE,
      description TEXT DEFAULT '', last_change DATETIME, min_x DOUBLE, min_y DOUBLE, max_x DOUBLE, max_y DOUBLE, srs_id INTEGER)`);
    db.run(`CREATE TABLE gpkg_geometry_columns (table_name TEXT NOT NULL, column_name TEXT NOT NULL, geometry_type_name TEXT NOT NULL,
      srs_id INTEGER NOT NULL, z TINYINT NOT NULL, m TINYINT NOT NULL, PRIMARY KEY (table_name, column_name))`);
    const systems: GpkgSrs[] = [
      { srsId: -1, name: 'Undefined cartesian SRS', organization: 'NONE', coordsysId: -1, definition: 'undefined' },
      { srsId: 0, name: 'Undefined geographic SRS', organization: 'NONE', coordsysId: 0, definition: 'undefined' },
      WGS84_SRS,
      ...(spec.srs ?? []),
    ];
    for (const s of systems) {
      db.run('INSERT INTO gpkg_spatial_ref_sys VALUES (?, ?, ?, ?, ?, NULL)', [s.name, s.srsId, s.organization, s.coordsysId, s.definition]);
    }
    for (const layer of spec.layers) {
      const cols = layer.columns.map((c) => `"${c.name}" ${c.type}`).join(', ');
      db.run(`CREATE TABLE "${layer.table}" (${cols})`);
      const srsId = layer.geometry?.srsId ?? null;
      db.run('INSERT INTO gpkg_contents (table_name, data_type, identifier, srs_id) VALUES (?, ?, ?, ?)', [layer.table, layer.dataType ?? (layer.geometry ? 'features' : 'attributes'), layer.table, srsId]);
      if (layer.geometry) {
        const g = layer.geometry;
        db.run('INSERT INTO gpkg_geometry_columns VALUES (?, ?, ?, ?, ?, ?)', [layer.table, g.column, g.type, g.srsId, g.z ?? 0, g.m ?? 0]);
      }
      const insert = db.prepare(`INSERT INTO "${layer.table}" VALUES (${layer.columns.map(() => '?').join(', ')})`);
      for (const row of layer.rows) insert.run(row);
      insert.free();
    }
    writeFileSync(path, db.export());
  } finally {
    db.close();
  }
}

/** A coordinate tree: a vertex is number[], a ring/line number[][], a polygon number[][][]… */
type Coords = number[] | number[][] | number[][][] | number[][][][];

const WKB_CODES = { Point: 1, LineString: 2, Polygon: 3, MultiPoint: 4, MultiLineString: 5, MultiPolygon: 6 } as const;

/**
 * ISO WKB (little-endian) of a simple geometry. `dims` says what each vertex holds: 'xy',
 * 'xyz' (code + 1000), 'xym' (+ 2000) or 'xyzm' (+ 3000).
 */
export function isoWkb(type: keyof typeof WKB_CODES, coords: Coords, dims: 'xy' | 'xyz' | 'xym' | 'xyzm' = 'xy'): Buffer {
  const offset = { xy: 0, xyz: 1000, xym: 2000, xyzm: 3000 }[dims];
  const parts: Buffer[] = [];
  const header = (code: number) => {
    const b = Buffer.alloc(5);
    b[0] = 1;
    b.writeUInt32LE(code + offset, 1);
    parts.push(b);
  };
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n, 0);
    parts.push(b);
  };
  const vertex = (v: number[]) => {
    const b = Buffer.alloc(8 * dims.length);
    v.slice(0, dims.length).forEach((c, i) => b.writeDoubleLE(c, 8 * i));
    parts.push(b);
  };
  const line = (vs: number[][]) => {
    u32(vs.length);
    vs.forEach(vertex);
  };
  const polygon = (rings: number[][][]) => {
    u32(rings.length);
    rings.forEach(line);
  };
  header(WKB_CODES[type]);
  switch (type) {
    case 'Point':
      vertex(coords as number[]);
      break;
    case 'LineString':
      line(coords as number[][]);
      break;
    case 'Polygon':
      polygon(coords as number[][][]);
      break;
    case 'MultiPoint':
      u32(coords.length);
      for (const v of coords as number[][]) parts.push(isoWkb('Point', v, dims));
      break;
    case 'MultiLineString':
      u32(coords.length);
      for (const l of coords as number[][][]) parts.push(isoWkb('LineString', l, dims));
      break;
    case 'MultiPolygon':
      u32(coords.length);
      for (const p of coords as number[][][][]) parts.push(isoWkb('Polygon', p, dims));
      break;
  }
  return Buffer.concat(parts);
}

/**
 * A GeoPackage geometry blob: `GP`, version 0, flags (little-endian header, envelope indicator,
 * empty flag), srs_id, the envelope (4, 6 or 8 numbers: indicator 1, 2 or 4), then the WKB.
 */
export function gpkgBlob(wkb: Buffer, opts: { srsId?: number; envelope?: number[]; empty?: boolean; envelopeIndicator?: number } = {}): Uint8Array {
  const envelope = opts.envelope ?? [];
  const indicator = opts.envelopeIndicator ?? ({ 0: 0, 4: 1, 6: 2, 8: 4 } as Record<number, number>)[envelope.length]!;
  const header = Buffer.alloc(8 + 8 * envelope.length);
  header.write('GP', 0, 'latin1');
  header[2] = 0;
  header[3] = 0x01 | (indicator << 1) | (opts.empty ? 0x10 : 0);
  header.writeInt32LE(opts.srsId ?? 4326, 4);
  envelope.forEach((v, i) => header.writeDoubleLE(v, 8 + 8 * i));
  return new Uint8Array(Buffer.concat([header, wkb]));
}
