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
  gcs_wgs_1984: 4326, wgs_84: 4326, wgs_1984: 4326, wgs84: 4326,
  gcs_north_american_1983: 4269, nad83: 4269, nad_83: 4269,
  gcs_north_american_1927: 4267, nad27: 4267,
  gcs_etrs_1989: 4258, etrs89: 4258,
  gcs_rgf_1993: 4171, rgf93: 4171, rgf93_v1: 4171,
  gcs_amersfoort: 4289, amersfoort: 4289,
  gcs_belge_1972: 4313, belge_1972: 4313,
  gcs_osgb_1936: 4277, osgb_1936: 4277, osgb36: 4277,
  gcs_gda_1994: 4283, gda94: 4283,
  gcs_gda2020: 7844, gda2020: 7844,
  gcs_dhdn: 4314, dhdn: 4314,
  // web and world
  wgs_1984_web_mercator: 3857, wgs_1984_web_mercator_auxiliary_sphere: 3857, wgs_84_pseudo_mercator: 3857,
  web_mercator: 3857, popular_visualisation_crs_mercator: 3857, google_maps_global_mercator: 3857,
  wgs_1984_world_mercator: 3395, wgs_84_world_mercator: 3395,
  // national grids
  rd_new: 28992, amersfoort_rd_new: 28992,
  rgf93_lambert_93: 2154, rgf_1993_lambert_93: 2154, rgf93_v1_lambert_93: 2154,
  belge_lambert_1972: 31370, bd72_belgian_lambert_72: 31370, belge_1972_belgian_lambert_72: 31370,
  british_national_grid: 27700, osgb_1936_british_national_grid: 27700, osgb36_british_national_grid: 27700,
  etrs_1989_laea: 3035, etrs_1989_laea_europe: 3035, etrs89_laea_europe: 3035, etrs89_extended_laea_europe: 3035,
  etrs_1989_lcc: 3034, etrs89_lcc_europe: 3034, etrs89_extended_lcc_europe: 3034,
  nad_1983_stateplane_illinois_east_fips_1201_feet: 3435, nad83_illinois_east_ftus: 3435,
  nad_1983_stateplane_illinois_east_fips_1201: 26971, nad83_illinois_east: 26971,
  nad_1983_stateplane_illinois_west_fips_1202_feet: 3436, nad83_illinois_west_ftus: 3436,
  nad_1983_stateplane_new_york_long_island_fips_3104_feet: 2263, nad83_new_york_long_island_ftus: 2263,
  nad_1983_stateplane_california_v_fips_0405_feet: 2229, nad83_california_zone_5_ftus: 2229,
  nad_1983_conus_albers: 5070, nad83_conus_albers: 5070, usa_contiguous_albers_equal_area_conic_usgs_version: 5070,
  gda_1994_mga_zone_55: 28355, gda94_mga_zone_55: 28355,
  ch1903_lv03: 21781, ch1903_lv95: 2056,
  dhdn_3_degree_gauss_zone_4: 31468, dhdn_3_degree_gauss_kruger_zone_4: 31468,
};

/** Datum names (ESRI `D_…` and EPSG) → the geographic CRS on that datum. */
const DATUMS: Record<string, number> = {
  d_wgs_1984: 4326, wgs_1984: 4326, world_geodetic_system_1984: 4326,
  d_north_american_1983: 4269, north_american_datum_1983: 4269,
  d_etrs_1989: 4258, european_terrestrial_reference_system_1989: 4258,
  d_rgf_1993: 4171, reseau_geodesique_francais_1993: 4171,
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
