/**
 * The SRID a shapefile's `.prj` (or a GeoPackage's `definition`) names.
 *
 * A `.prj` is WKT: WKT1 as GDAL writes it (`PROJCS["…", …, AUTHORITY["EPSG","2154"]]`), WKT1 as
 * ESRI writes it (names only, no authority: `PROJCS["RGF_1993_Lambert_93", …]`), or WKT2
 * (`PROJCRS["…", …, ID["EPSG",2154]]`). The text is parsed into its bracket tree so that only the
 * authority of the outermost node counts: a projected CRS without one still holds the authority
 * of its base geographic CRS, its datum and its units deeper down, and taking those would be
 * wrong. Without an authority the name of the outermost node is looked up among the names ESRI
 * and GDAL give the coordinate systems suppliers use most; anything else stays unknown (the
 * caller warns and the dataset's `read.srid` hint decides).
 */

/** What a `.prj` says, as far as this module understands it. */
export interface PrjInfo {
  /** The EPSG code, when the WKT carries one or names a system we know. */
  srid?: number;
  /** Keyword of the outermost node (`PROJCS`, `GEOGCS`, `PROJCRS`…), when the text parses. */
  keyword?: string;
  /** Name of the outermost node, e.g. `RGF_1993_Lambert_93`. */
  name?: string;
}

/**
 * A coordinate system reduced to what decides where a coordinate lands, in PROJ's terms: the
 * projection method (`lcc`, `tmerc`…, `longlat` for a geographic CRS), its parameters (angles in
 * degrees, false easting/northing in metres, whatever unit the WKT writes them in), the
 * ellipsoid, the prime meridian and the linear unit. Two texts naming one CRS in different words
 * (ESRI's `NAD_1983_StatePlane_Massachusetts_Mainland_FIPS_2001` and EPSG's `NAD83 /
 * Massachusetts Mainland`) reduce to the same shape; `sameShape` compares two of them, and
 * `shapeFromProj4` reads PostGIS's `spatial_ref_sys.proj4text` into one.
 */
export interface CrsShape {
  proj: string;
  /** `lat_0`, `lon_0`, `lat_1`, `lat_2`, `lat_ts`, `k`, `x_0`, `y_0` (metres). */
  params: Record<string, number>;
  /** Semi-major axis (metres) and inverse flattening (0: a sphere), when the text says them. */
  a?: number;
  rf?: number;
  /** Prime meridian, degrees east of Greenwich. */
  pm: number;
  /** Metres per unit of the coordinates (projected systems); 1 for geographic ones. */
  toMeter: number;
  /** Datum name as written, for choosing among systems that differ only by their datum. */
  datum?: string;
}

/** The EPSG code a WKT coordinate system names, or `undefined` when it names none we recognise. */
export function sridFromPrj(wkt: string): number | undefined {
  return describePrj(wkt).srid;
}

/** The SRID, keyword and name of a WKT coordinate system, for messages about ones we do not know. */
export function describePrj(wkt: string): PrjInfo {
  const root = parseWkt(wkt.replace(/^\uFEFF/, ''));
  if (!root) return {};
  const crs = horizontalPart(root);
  const name = typeof crs.args[0] === 'string' ? crs.args[0] : undefined;
  const srid = authorityCode(crs) ?? (name !== undefined ? sridFromName(name) : undefined) ?? baseGeographicSrid(crs);
  return { srid, keyword: crs.keyword, ...(name !== undefined ? { name } : {}) };
}

interface WktNode {
  keyword: string;
  args: (string | number | WktNode)[];
}

/**
 * A compound CRS (horizontal + vertical) stores its SRID only when it has an authority of its
 * own; otherwise the horizontal part is what a 2D geometry column can use.
 */
function horizontalPart(root: WktNode): WktNode {
  if (!/^(COMPD_CS|COMPOUNDCRS)$/i.test(root.keyword) || authorityCode(root) !== undefined) return root;
  const first = root.args.find((a): a is WktNode => typeof a === 'object');
  return first ?? root;
}

/** `AUTHORITY["EPSG","2154"]` (WKT1) or `ID["EPSG",2154]` (WKT2) directly under `node`. */
function authorityCode(node: WktNode): number | undefined {
  for (const child of node.args) {
    if (typeof child !== 'object' || !/^(AUTHORITY|ID)$/i.test(child.keyword)) continue;
    const [authority, code] = child.args;
    if (typeof authority === 'string' && authority.toUpperCase() === 'EPSG') {
      const n = typeof code === 'number' ? code : Number(code);
      if (Number.isInteger(n) && n > 0) return n;
    }
  }
  return undefined;
}

/**
 * A geographic CRS whose own name we do not know but whose datum we do (`GEOGCS["unnamed",
 * DATUM["D_WGS_1984", …]]`) — common in files written by small tools.
 */
function baseGeographicSrid(crs: WktNode): number | undefined {
  if (!/^(GEOGCS|GEOGCRS|GEODCRS)$/i.test(crs.keyword)) return undefined;
  const datum = crs.args.find((a): a is WktNode => typeof a === 'object' && /^(DATUM|TRF|GEODETICDATUM)$/i.test(a.keyword));
  const datumName = datum && typeof datum.args[0] === 'string' ? datum.args[0] : undefined;
  if (!datumName) return undefined;
  return DATUMS[normalise(datumName)];
}

/** Names normalised with `normalise` → EPSG code. ESRI names and the EPSG/GDAL names side by side. */
const NAMES: Record<string, number> = {
  // geographic
  gcs_wgs_1984: 4326,
  wgs_84: 4326,
  wgs_1984: 4326,
  wgs84: 4326,
  gcs_north_american_1983: 4269,
  nad83: 4269,
  nad_83: 4269,
  gcs_north_american_1927: 4267,
  nad27: 4267,
  gcs_etrs_1989: 4258,
  etrs89: 4258,
  gcs_rgf_1993: 4171,
  rgf93: 4171,
  rgf93_v1: 4171,
  gcs_amersfoort: 4289,
  amersfoort: 4289,
  gcs_belge_1972: 4313,
  belge_1972: 4313,
  gcs_osgb_1936: 4277,
  osgb_1936: 4277,
  osgb36: 4277,
  gcs_gda_1994: 4283,
  gda94: 4283,
  gcs_gda2020: 7844,
  gda2020: 7844,
  gcs_dhdn: 4314,
  dhdn: 4314,
  // web and world
  wgs_1984_web_mercator: 3857,
  wgs_1984_web_mercator_auxiliary_sphere: 3857,
  wgs_84_pseudo_mercator: 3857,
  web_mercator: 3857,
  popular_visualisation_crs_mercator: 3857,
  google_maps_global_mercator: 3857,
  wgs_1984_world_mercator: 3395,
  wgs_84_world_mercator: 3395,
  // national grids
  rd_new: 28992,
  amersfoort_rd_new: 28992,
  rgf93_lambert_93: 2154,
  rgf_1993_lambert_93: 2154,
  rgf93_v1_lambert_93: 2154,
  belge_lambert_1972: 31370,
  bd72_belgian_lambert_72: 31370,
  belge_1972_belgian_lambert_72: 31370,
  british_national_grid: 27700,
  osgb_1936_british_national_grid: 27700,
  osgb36_british_national_grid: 27700,
  etrs_1989_laea: 3035,
  etrs_1989_laea_europe: 3035,
  etrs89_laea_europe: 3035,
  etrs89_extended_laea_europe: 3035,
  etrs_1989_lcc: 3034,
  etrs89_lcc_europe: 3034,
  etrs89_extended_lcc_europe: 3034,
  nad_1983_stateplane_illinois_east_fips_1201_feet: 3435,
  nad83_illinois_east_ftus: 3435,
  nad_1983_stateplane_illinois_east_fips_1201: 26971,
  nad83_illinois_east: 26971,
  nad_1983_stateplane_illinois_west_fips_1202_feet: 3436,
  nad83_illinois_west_ftus: 3436,
  nad_1983_stateplane_new_york_long_island_fips_3104_feet: 2263,
  nad83_new_york_long_island_ftus: 2263,
  nad_1983_stateplane_california_v_fips_0405_feet: 2229,
  nad83_california_zone_5_ftus: 2229,
  nad_1983_conus_albers: 5070,
  nad83_conus_albers: 5070,
  usa_contiguous_albers_equal_area_conic_usgs_version: 5070,
  gda_1994_mga_zone_55: 28355,
  gda94_mga_zone_55: 28355,
  ch1903_lv03: 21781,
  ch1903_lv95: 2056,
  dhdn_3_degree_gauss_zone_4: 31468,
  dhdn_3_degree_gauss_kruger_zone_4: 31468,
};

/** Datum names (ESRI `D_…` and EPSG) → the geographic CRS on that datum. */
const DATUMS: Record<string, number> = {
  d_wgs_1984: 4326,
  wgs_1984: 4326,
  world_geodetic_system_1984: 4326,
  d_north_american_1983: 4269,
  north_american_datum_1983: 4269,
  d_etrs_1989: 4258,
  european_terrestrial_reference_system_1989: 4258,
  d_rgf_1993: 4171,
  reseau_geodesique_francais_1993: 4171,
};

/** Families whose zone is part of the name: UTM zones and the French conic conformal zones. */
const PATTERNS: [RegExp, (m: RegExpMatchArray) => number | undefined][] = [
  [/^(?:etrs_1989|etrs89)_utm_zone_(\d+)n$/, (m) => inRange(Number(m[1]), 28, 38, 25800)],
  [/^(?:wgs_1984|wgs_84)_utm_zone_(\d+)([ns])$/, (m) => inRange(Number(m[1]), 1, 60, m[2] === 'n' ? 32600 : 32700)],
  [/^(?:nad_1983|nad83)_utm_zone_(\d+)n$/, (m) => inRange(Number(m[1]), 1, 23, 26900)],
  [/^(?:rgf93|rgf_1993|rgf93_v1)_(?:cc|conus_cc)(\d+)$/, (m) => inRange(Number(m[1]), 42, 50, 3900)],
];

function inRange(zone: number, min: number, max: number, base: number): number | undefined {
  return zone >= min && zone <= max ? base + zone : undefined;
}

function sridFromName(name: string): number | undefined {
  const key = normalise(name);
  const known = NAMES[key];
  if (known !== undefined) return known;
  for (const [pattern, code] of PATTERNS) {
    const m = key.match(pattern);
    if (m) return code(m);
  }
  return undefined;
}

/** `Amersfoort / RD New` and `Amersfoort_RD_New` both become `amersfoort_rd_new`. */
function normalise(name: string): string {
  return name
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '');
}

/**
 * A minimal WKT reader: keywords, quoted strings (`""` inside is a quote), numbers, nested
 * `[…]` or `(…)`. Returns `undefined` for text that is not WKT, rather than throwing: a `.prj`
 * that cannot be read is reported as an unknown coordinate system.
 */
function parseWkt(text: string): WktNode | undefined {
  let i = 0;
  const n = text.length;
  const skipSpace = () => {
    while (i < n && /\s/.test(text[i]!)) i++;
  };
  const parseNode = (depth: number): WktNode | undefined => {
    if (depth > 64) return undefined;
    skipSpace();
    const start = i;
    while (i < n && /[A-Za-z0-9_]/.test(text[i]!)) i++;
    const keyword = text.slice(start, i);
    if (!keyword) return undefined;
    skipSpace();
    const open = text[i];
    if (open !== '[' && open !== '(') return { keyword, args: [] };
    const close = open === '[' ? ']' : ')';
    i++;
    const args: WktNode['args'] = [];
    for (;;) {
      skipSpace();
      const c = text[i];
      if (c === undefined) return undefined;
      if (c === close || c === ']' || c === ')') {
        i++;
        return { keyword, args };
      }
      if (c === ',') {
        i++;
        continue;
      }
      if (c === '"') {
        let value = '';
        i++;
        for (;;) {
          const q = text.indexOf('"', i);
          if (q < 0) return undefined;
          value += text.slice(i, q);
          i = q + 1;
          if (text[i] === '"') {
            value += '"';
            i++;
          } else break;
        }
        args.push(value);
        continue;
      }
      if (/[-+.0-9]/.test(c)) {
        const m = /^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?/.exec(text.slice(i, i + 64));
        if (!m) return undefined;
        args.push(Number(m[0]));
        i += m[0].length;
        continue;
      }
      const child = parseNode(depth + 1);
      if (!child) return undefined;
      args.push(child);
    }
  };
  const root = parseNode(0);
  return root && root.args.length > 0 ? root : undefined;
}

// ---------------------------------------------------------------------------------------------
// shapes: a CRS by its parameters, for recognising one that carries no authority and no known name

/**
 * Projection method names (ESRI WKT1, OGC WKT1 and WKT2/EPSG, normalised by `key`) → PROJ's. Only
 * methods PostGIS's spatial_ref_sys writes with these parameters; others stay unrecognised.
 */
const METHODS: Record<string, string> = {
  transversemercator: 'tmerc',
  gausskruger: 'tmerc',
  lambertconformalconic: 'lcc',
  lambertconformalconic2sp: 'lcc',
  lambertconformalconic1sp: 'lcc',
  lambertconicconformal2sp: 'lcc',
  lambertconicconformal1sp: 'lcc',
  doublestereographic: 'sterea',
  obliquestereographic: 'sterea',
  polarstereographic: 'stere',
  polarstereographicvarianta: 'stere',
  polarstereographicvariantb: 'stere',
  stereographic: 'stere',
  lambertazimuthalequalarea: 'laea',
  albers: 'aea',
  albersconicequalarea: 'aea',
  albersequalarea: 'aea',
  mercator: 'merc',
  mercator1sp: 'merc',
  mercator2sp: 'merc',
  mercatorvarianta: 'merc',
  mercatorvariantb: 'merc',
  cassini: 'cass',
  cassinisoldner: 'cass',
  equirectangular: 'eqc',
  equidistantcylindrical: 'eqc',
};

/** Parameter names (normalised by `key`) → PROJ's. False easting/northing are lengths, the rest angles but `k`. */
const PARAMETERS: Record<string, string> = {
  falseeasting: 'x_0',
  eastingatfalseorigin: 'x_0',
  eastingatprojectioncentre: 'x_0',
  falsenorthing: 'y_0',
  northingatfalseorigin: 'y_0',
  northingatprojectioncentre: 'y_0',
  centralmeridian: 'lon_0',
  longitudeoforigin: 'lon_0',
  longitudeofcenter: 'lon_0',
  longitudeofnaturalorigin: 'lon_0',
  longitudeoffalseorigin: 'lon_0',
  longitudeofprojectioncentre: 'lon_0',
  straightverticallongitudefrompole: 'lon_0',
  latitudeoforigin: 'lat_0',
  latitudeofcenter: 'lat_0',
  latitudeofnaturalorigin: 'lat_0',
  latitudeoffalseorigin: 'lat_0',
  latitudeofprojectioncentre: 'lat_0',
  scalefactor: 'k',
  scalefactoratnaturalorigin: 'k',
  standardparallel1: 'lat_1',
  latitudeof1ststandardparallel: 'lat_1',
  standardparallel2: 'lat_2',
  latitudeof2ndstandardparallel: 'lat_2',
  latitudeofstandardparallel: 'lat_ts',
};

const key = (s: string) =>
  s
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '');
const child = (node: WktNode, pattern: RegExp) => node.args.find((a): a is WktNode => typeof a === 'object' && pattern.test(a.keyword));
const children = (node: WktNode, pattern: RegExp) => node.args.filter((a): a is WktNode => typeof a === 'object' && pattern.test(a.keyword));
const num = (v: unknown) => (typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN);

/**
 * The shape of a WKT coordinate system (WKT1 as ESRI or GDAL write it; WKT2 too, where its
 * parameters carry their own units), or `undefined` when the text is not WKT or uses a method
 * this module does not map.
 */
export function shapeFromWkt(wkt: string): CrsShape | undefined {
  const root = parseWkt(wkt.replace(/^\uFEFF/, ''));
  if (!root) return undefined;
  const crs = horizontalPart(root);
  const projected = /^(PROJCS|PROJCRS|PROJECTEDCRS)$/i.test(crs.keyword);
  const geog = projected ? child(crs, /^(GEOGCS|BASEGEOGCRS|BASEGEODCRS|GEOGCRS|GEODCRS)$/i) : /^(GEOGCS|GEOGCRS|GEODCRS)$/i.test(crs.keyword) ? crs : undefined;
  if (!geog) return undefined;
  const datum = child(geog, /^(DATUM|TRF|GEODETICDATUM)$/i);
  const spheroid = datum && child(datum, /^(SPHEROID|ELLIPSOID)$/i);
  const a = num(spheroid?.args[1]);
  const rf = num(spheroid?.args[2]);
  const unitOf = (node: WktNode) => child(node, /^(UNIT|ANGLEUNIT|LENGTHUNIT)$/i);
  // WKT1 writes a geographic system's parameters in its angular unit (degrees, or grads in Paris-based systems)
  const angular = num(unitOf(geog)?.args[1]);
  const ratio = Number.isFinite(angular) && angular > 0 ? angular / (Math.PI / 180) : 1;
  // 0.0174532925199433 is a degree written to 15 digits: exactly 1, not 1.0000000000000002
  const toDegrees = Math.abs(ratio - 1) < 1e-9 ? 1 : ratio;
  const primem = child(geog, /^PRIMEM$/i);
  // the prime meridian is written in degrees (GDAL and ESRI do so whatever the angular unit)
  const pm = primem ? num(primem.args[1]) : 0;
  const shape: CrsShape = {
    proj: 'longlat',
    params: {},
    ...(Number.isFinite(a) ? { a } : {}),
    ...(Number.isFinite(rf) ? { rf } : {}),
    pm: Number.isFinite(pm) ? pm : NaN,
    toMeter: 1,
    ...(datum && typeof datum.args[0] === 'string' ? { datum: datum.args[0] } : {}),
  };
  if (!projected) return shape;
  const conversion = child(crs, /^CONVERSION$/i) ?? crs;
  const method = child(conversion, /^(PROJECTION|METHOD)$/i);
  const proj = method && typeof method.args[0] === 'string' ? METHODS[key(method.args[0])] : undefined;
  if (!proj) return undefined;
  // the linear unit: WKT1's last UNIT under PROJCS; WKT2's in its coordinate system
  const cs = child(crs, /^CS$/i) ? crs : undefined;
  const linear = cs ? (child(child(crs, /^AXIS$/i) ?? crs, /^(LENGTHUNIT|UNIT)$/i) ?? child(crs, /^(LENGTHUNIT|UNIT)$/i)) : unitOf(crs);
  const toMeter = num(linear?.args[1]);
  shape.proj = proj;
  shape.toMeter = Number.isFinite(toMeter) && toMeter > 0 ? toMeter : 1;
  for (const p of children(conversion, /^PARAMETER$/i)) {
    const name = typeof p.args[0] === 'string' ? PARAMETERS[key(p.args[0])] : undefined;
    const value = num(p.args[1]);
    if (!name || !Number.isFinite(value)) continue;
    // WKT2 states each parameter's unit; WKT1 uses the linear unit for lengths and the angular one for angles
    const own = child(p, /^(LENGTHUNIT|ANGLEUNIT|SCALEUNIT|UNIT)$/i);
    const factor = num(own?.args[1]);
    if (name === 'x_0' || name === 'y_0') shape.params[name] = value * (own && Number.isFinite(factor) ? factor : shape.toMeter);
    else if (name === 'k') shape.params[name] = value;
    else shape.params[name] = value * (own && Number.isFinite(factor) ? factor / (Math.PI / 180) : toDegrees);
  }
  return normaliseShape(shape);
}

/** Ellipsoids PROJ names in spatial_ref_sys (`+ellps=`, or implied by `+datum=`): semi-major axis and inverse flattening. */
const ELLIPSOIDS: Record<string, [number, number]> = {
  GRS80: [6378137, 298.257222101],
  WGS84: [6378137, 298.257223563],
  WGS72: [6378135, 298.26],
  intl: [6378388, 297],
  bessel: [6377397.155, 299.1528128],
  airy: [6377563.396, 299.3249646],
  mod_airy: [6377340.189, 299.3249646],
  clrk66: [6378206.4, 294.978698213898],
  clrk80: [6378249.145, 293.4663],
  clrk80ign: [6378249.2, 293.466021293627],
  krass: [6378245, 298.3],
  aust_SA: [6378160, 298.25],
  evrst30: [6377276.345, 300.8017],
  helmert: [6378200, 298.3],
  GRS67: [6378160, 298.247167427],
};
const DATUM_ELLIPSOIDS: Record<string, string> = {
  WGS84: 'WGS84',
  NAD83: 'GRS80',
  NAD27: 'clrk66',
  OSGB36: 'airy',
  potsdam: 'bessel',
  nzgd49: 'intl',
  ire65: 'mod_airy',
  carthage: 'clrk80ign',
  hermannskogel: 'bessel',
  GGRS87: 'GRS80',
};
const MERIDIANS: Record<string, number> = {
  greenwich: 0,
  paris: 2.33722917,
  lisbon: -9.131906111,
  bogota: -74.08091667,
  madrid: -3.687938889,
  rome: 12.45233333,
  bern: 7.439583333,
  jakarta: 106.8077194,
  ferro: -17.66666667,
  brussels: 4.367975,
  stockholm: 18.05827778,
  athens: 23.7163375,
  oslo: 10.72291667,
};
const UNITS: Record<string, number> = { m: 1, km: 1000, 'us-ft': 0.3048006096012192, ft: 0.3048, 'ind-ft': 0.30479841, 'us-yd': 0.914401828803658, yd: 0.9144, 'us-ch': 20.11684023368047, link: 0.201168 };

/** The shape of a PROJ string as spatial_ref_sys holds it (`+proj=utm +zone=31 +datum=WGS84 …`). */
export function shapeFromProj4(text: string): CrsShape | undefined {
  const args = new Map<string, string>();
  for (const token of text.trim().split(/\s+/)) {
    const m = /^\+([a-z_0-9]+)(?:=(.*))?$/i.exec(token);
    if (m) args.set(m[1]!, m[2] ?? '');
  }
  let proj = args.get('proj');
  if (!proj) return undefined;
  const params: Record<string, number> = {};
  for (const p of ['lat_0', 'lon_0', 'lat_1', 'lat_2', 'lat_ts', 'k', 'k_0', 'x_0', 'y_0']) {
    const v = args.get(p);
    if (v !== undefined) params[p === 'k_0' ? 'k' : p] = Number(v);
  }
  if (proj === 'utm') {
    const zone = Number(args.get('zone'));
    if (!Number.isInteger(zone)) return undefined;
    proj = 'tmerc';
    Object.assign(params, { lat_0: 0, lon_0: zone * 6 - 183, k: 0.9996, x_0: 500000, y_0: args.has('south') ? 10000000 : 0 });
  }
  if (proj === 'latlong' || proj === 'lonlat' || proj === 'latlon') proj = 'longlat';
  let a = Number(args.get('a'));
  let rf = Number(args.get('rf'));
  const b = Number(args.get('b'));
  const ellps = args.get('ellps') ?? DATUM_ELLIPSOIDS[args.get('datum') ?? ''];
  if (ellps !== undefined && ELLIPSOIDS[ellps]) [a, rf] = ELLIPSOIDS[ellps]!;
  else if (Number.isFinite(a) && Number.isFinite(b)) rf = a === b ? 0 : a / (a - b);
  else if (Number.isFinite(Number(args.get('R')))) [a, rf] = [Number(args.get('R')), 0];
  const pmText = args.get('pm');
  const pm = pmText === undefined ? 0 : (MERIDIANS[pmText.toLowerCase()] ?? Number(pmText));
  const unit = args.get('units');
  const toMeter = args.has('to_meter') ? Number(args.get('to_meter')) : unit === undefined ? 1 : (UNITS[unit] ?? NaN);
  return normaliseShape({
    proj,
    params,
    ...(Number.isFinite(a) ? { a } : {}),
    ...(Number.isFinite(rf) ? { rf } : {}),
    pm,
    toMeter: proj === 'longlat' ? 1 : toMeter,
  });
}

/** Defaults made explicit, so that a parameter left out and one written as its default compare equal. */
function normaliseShape(shape: CrsShape): CrsShape {
  const p = shape.params;
  const defaults: Record<string, number> = { lat_0: 0, lon_0: 0, x_0: 0, y_0: 0, k: 1 };
  if (shape.proj === 'longlat') return { ...shape, params: {} };
  for (const [name, value] of Object.entries(defaults)) p[name] ??= value;
  // a one-parallel Lambert conic: its parallel is its origin's latitude
  if (shape.proj === 'lcc') {
    p.lat_1 ??= p.lat_0!;
    p.lat_2 ??= p.lat_1;
  }
  // Mercator: a standard parallel or a scale, either way; the origin's latitude does not matter
  if (shape.proj === 'merc') {
    p.lat_ts ??= 0;
    p.lat_0 = 0;
  }
  if (shape.proj === 'aea') p.lat_2 ??= p.lat_1!;
  return shape;
}

/**
 * Whether two shapes put every coordinate at the same place: same method, parameters within a
 * millimetre (lengths) or 1e-8 degree (angles), same ellipsoid, prime meridian and unit. Datum
 * names are not compared here (systems that differ only by their datum realisation share every
 * parameter: the caller chooses among them by name).
 */
export function sameShape(a: CrsShape, b: CrsShape): boolean {
  if (a.proj !== b.proj) return false;
  if (Math.abs(a.pm - b.pm) > 1e-7) return false;
  if (Math.abs(a.toMeter - b.toMeter) > 1e-9 * Math.max(a.toMeter, b.toMeter)) return false;
  if (a.a === undefined || b.a === undefined || Math.abs(a.a - b.a) > 1e-3) return false;
  const rfa = a.rf ?? 0;
  const rfb = b.rf ?? 0;
  if ((rfa === 0) !== (rfb === 0) || Math.abs(rfa - rfb) > 1e-6 * Math.max(rfa, rfb)) return false;
  const names = new Set([...Object.keys(a.params), ...Object.keys(b.params)]);
  for (const name of names) {
    const x = a.params[name];
    const y = b.params[name];
    if (x === undefined || y === undefined) return false;
    const tolerance = name === 'x_0' || name === 'y_0' ? 1e-3 : name === 'k' ? 1e-10 : 1e-8;
    // the two standard parallels of a conic may be written in either order
    if (Math.abs(x - y) > tolerance) {
      if ((name === 'lat_1' || name === 'lat_2') && a.params.lat_1 !== undefined && a.params.lat_2 !== undefined) {
        const other = name === 'lat_1' ? 'lat_2' : 'lat_1';
        if (Math.abs(x - (b.params[other] ?? NaN)) <= tolerance && Math.abs((a.params[other] ?? NaN) - y) <= tolerance) continue;
      }
      return false;
    }
  }
  return true;
}

/**
 * Words of a datum or CRS name for comparing names written by different authorities:
 * `D_North_American_1983` and `North_American_Datum_1983` share every word; two-digit years are
 * widened (`NAD83` → `nad`, `1983`). Filler words (`D`, `datum`, `of`, `GCS`) are left out.
 */
export function nameWords(name: string): Set<string> {
  const words = new Set<string>();
  const raw =
    name
      .normalize('NFD')
      .replace(/[\u0300-\u036f]/g, '')
      .toLowerCase()
      .match(/[a-z]+|\d+/g) ?? [];
  for (const w of raw) {
    if (['d', 'datum', 'of', 'the', 'gcs', 'geodetic', 'reference', 'system', 'ft', 'feet', 'm', 'meter', 'metre', 'zone', 'fips', 'stateplane'].includes(w)) continue;
    for (const word of ACRONYMS[w] ?? [w]) words.add(/^\d\d$/.test(word) && Number(word) >= 20 ? `19${word}` : word);
  }
  return words;
}

/** Datum abbreviations ESRI writes where EPSG spells the name out (`D_GDA_1994`, `Geocentric_Datum_of_Australia_1994`). */
const ACRONYMS: Record<string, string[]> = {
  nad: ['north', 'american'],
  etrs: ['european', 'terrestrial'],
  etrf: ['european', 'terrestrial', 'frame'],
  gda: ['geocentric', 'australia'],
  rgf: ['reseau', 'geodesique', 'francais'],
  harn: ['high', 'accuracy', 'network'],
  nsrs: ['national', 'spatial'],
  wgs: ['world'],
  dhdn: ['deutsches', 'hauptdreiecksnetz'],
  nzgd: ['new', 'zealand'],
};
