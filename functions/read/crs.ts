/**
 * The SRID a GeoJSON `crs` member names.
 *
 * RFC 7946 dropped `crs` (coordinates are WGS 84 longitude/latitude), but the 2008 GeoJSON spec
 * had it and much of what suppliers send still carries it, mostly in the form GDAL writes:
 * `{"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::28992"}}`. Understood:
 *
 * - named CRSs: `urn:ogc:def:crs:EPSG::28992` (with or without a version between the colons),
 *   `EPSG:28992`, `http://www.opengis.net/def/crs/EPSG/0/28992`, and the OGC CRS84 family
 *   (`urn:ogc:def:crs:OGC:1.3:CRS84`, `urn:ogc:def:crs:OGC::CRS84`, `CRS84`) → 4326, CRS83 → 4269,
 *   CRS27 → 4267; the ESRI/Google codes for web mercator (102100, 102113, 900913) → 3857;
 * - the 2008 draft's `{"type": "EPSG", "properties": {"code": 28992}}`;
 * - a bare string where a tool wrote the name alone (`"crs": "EPSG:28992"`).
 *
 * A link-style CRS (`"type": "link"`, a URL to a definition) names no code: `undefined`, and the
 * reader warns. So does anything else it does not recognise.
 */

/** OGC's CRS84-style names, longitude first, by their EPSG equivalent. */
const OGC_CRS: Record<string, number> = { CRS84: 4326, CRS83: 4269, CRS27: 4267 };

/** Codes outside the EPSG registry that name an EPSG system. */
const ALIASES: Record<number, number> = { 900913: 3857, 102100: 3857, 102113: 3857 };

/** The SRID of a GeoJSON `crs` member (parsed JSON), or `undefined` when it names none we recognise. */
export function sridFromCrs(crs: unknown): number | undefined {
  if (typeof crs === 'string') return sridFromCrsName(crs);
  if (!crs || typeof crs !== 'object' || Array.isArray(crs)) return undefined;
  const { type, properties } = crs as { type?: unknown; properties?: unknown };
  const props = properties && typeof properties === 'object' ? (properties as Record<string, unknown>) : {};
  const kind = typeof type === 'string' ? type.toLowerCase() : '';
  if (kind === 'name') return typeof props.name === 'string' ? sridFromCrsName(props.name) : undefined;
  if (kind === 'epsg') return code(props.code);
  return undefined;
}

/** The SRID a CRS name (URN, `AUTHORITY:CODE`, OGC URL) stands for. */
export function sridFromCrsName(name: string): number | undefined {
  const s = name.trim();
  const ogc = /^urn:(?:x-)?ogc:def:crs:OGC:[^:]*:(CRS\d\d)$/i.exec(s) ?? /^(?:OGC:)?(CRS\d\d)$/i.exec(s) ?? /^https?:\/\/www\.opengis\.net\/def\/crs\/OGC\/[^/]+\/(CRS\d\d)$/i.exec(s);
  if (ogc) return OGC_CRS[ogc[1]!.toUpperCase()];
  const authority = /^urn:(?:x-)?ogc:def:crs:(EPSG|ESRI):[^:]*:(\d+)$/i.exec(s) ?? /^(EPSG|ESRI):+(\d+)$/i.exec(s) ?? /^https?:\/\/www\.opengis\.net\/def\/crs\/(EPSG|ESRI)\/[^/]+\/(\d+)$/i.exec(s);
  if (!authority) return undefined;
  const n = code(authority[2]);
  if (n === undefined) return undefined;
  if (authority[1]!.toUpperCase() === 'ESRI') return ALIASES[n];
  return ALIASES[n] ?? n;
}

function code(value: unknown): number | undefined {
  const n = typeof value === 'number' ? value : typeof value === 'string' && /^\d+$/.test(value.trim()) ? Number(value) : NaN;
  return Number.isInteger(n) && n > 0 && n < 1_000_000 ? n : undefined;
}

/** Why a `crs` member gave no SRID, for the reader's warning; `undefined` when it gave one (or is absent). */
export function crsProblem(crs: unknown): string | undefined {
  if (crs === undefined || crs === null || sridFromCrs(crs) !== undefined) return undefined;
  const { type, properties } = (crs && typeof crs === 'object' ? crs : {}) as { type?: unknown; properties?: Record<string, unknown> };
  if (typeof type === 'string' && type.toLowerCase() === 'link') {
    const href = properties && typeof properties.href === 'string' ? ` (${properties.href})` : '';
    return `its crs member is a link to a definition${href}, which names no EPSG code`;
  }
  const named = typeof crs === 'string' ? crs : typeof properties?.name === 'string' ? properties.name : undefined;
  return named !== undefined ? `its crs "${named}" is not one this reader knows` : `its crs member ${JSON.stringify(crs).slice(0, 120)} is not one this reader understands`;
}
