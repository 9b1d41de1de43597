/**
 * International formats, always on. Each is one declarative `FormatDefinition`; the helpers above
 * each definition are the only code it needs.
 *
 * `baseType` is the type a column of the format is stored as: identifiers that look like integers
 * (numeric country codes…) are `string` so leading zeros survive, and values that carry a unit or
 * a symbol (`€ 12,50`, `12 %`) are `string` because they cannot be cast as they are.
 */
import type { FormatDefinition } from '../types.ts';
import { decimalNumber } from './helpers.ts';
import { ISO_ALPHA2, ISO_ALPHA3, ISO_NUMERIC } from './iso-3166.ts';

// --- email, url, uuid -------------------------------------------------------------------------

const EMAIL = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$/;

export const email: FormatDefinition = {
  name: 'email',
  baseType: 'string',
  test: (v) => v.length <= 254 && v.indexOf('@') > 0 && EMAIL.test(v),
  headerHints: ['email', 'mail', 'e mail', 'courriel', 'adresse electronique', 'emailadres'],
  threshold: 0.9,
  csvDetective: 'email',
  description: 'E-mail address (local part @ domain with a top-level domain).',
};

const URL_SCHEME = /^(?:https?|ftp):\/\/(?:[^\s/?#@]+@)?[^\s/?#:@]+(?::\d{1,5})?(?:[/?#]\S*)?$/i;
const URL_WWW = /^www\.[^\s/?#.:]+(?:\.[^\s/?#.:]+)+(?::\d{1,5})?(?:[/?#]\S*)?$/i;

export const url: FormatDefinition = {
  name: 'url',
  baseType: 'string',
  test: (v) => {
    const c = v.charCodeAt(0) | 0x20;
    if (c === 0x68 /* h */ || c === 0x66 /* f */) return URL_SCHEME.test(v);
    return c === 0x77 /* w */ && URL_WWW.test(v);
  },
  headerHints: ['url', 'uri', 'lien', 'link', 'site', 'website', 'site web', 'site internet', 'web', 'homepage', 'href'],
  threshold: 0.9,
  csvDetective: 'url',
  description: 'Web address: http(s):// or ftp:// with a host, or a bare www. host.',
};

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const uuid: FormatDefinition = {
  name: 'uuid',
  baseType: 'string',
  test: (v) => v.length === 36 && UUID.test(v),
  headerHints: ['uuid', 'guid', 'id', 'identifiant'],
  threshold: 0.9,
  csvDetective: 'uuid',
  description: 'UUID / GUID in the 8-4-4-4-12 hexadecimal form (any version, case-insensitive).',
};

// --- phone ------------------------------------------------------------------------------------

/** Digits, one dot, digits: a decimal number, never a telephone number. */
const DECIMAL = /^\d+\.\d+$/;
const NANP = /^(?:\+?1[-. ]?)?(?:\(\d{3}\) ?|\d{3}[-. ])\d{3}[-. ]\d{4}$/;

/**
 * International (`+` or `00` then 8–15 digits) or national (trunk `0` then 9–11 digits, or the
 * North-American `(555) 123-4567` / `555-123-4567`), with single spaces, dots, dashes or slashes
 * between groups and at most one pair of parentheses.
 */
function isPhone(v: string): boolean {
  const n = v.length;
  if (n < 9 || n > 26) return false;
  // a decimal number (`0.2523206751`, a share written by a statistics office) is not a phone
  if (DECIMAL.test(v)) return false;
  let i = v.charCodeAt(0) === 43 ? 1 : 0;
  const plus = i === 1;
  let digits = 0;
  let first = -1;
  let parens = 0;
  let lastSep = plus;
  for (; i < n; i++) {
    const c = v.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (first < 0) first = c - 48;
      digits++;
      lastSep = false;
    } else if (c === 32 || c === 46 || c === 45 || c === 47 || c === 0xa0) {
      if (lastSep) return false;
      lastSep = true;
    } else if (c === 40) {
      if (parens !== 0) return false;
      parens = 1;
    } else if (c === 41) {
      if (parens !== 1) return false;
      parens = 2;
    } else return false;
  }
  if (parens === 1 || lastSep) return false;
  if (plus) return first !== 0 && digits >= 8 && digits <= 15;
  if (v.charCodeAt(0) === 48 && v.charCodeAt(1) === 48) return digits >= 10 && digits <= 17;
  if (first === 0) return digits >= 9 && digits <= 11;
  return NANP.test(v);
}

export const phone: FormatDefinition = {
  name: 'phone',
  baseType: 'string',
  test: isPhone,
  headerHints: ['tel', 'telephone', 'phone', 'mobile', 'portable', 'gsm', 'fax', 'telefoon', 'telefoonnummer', 'phone number', 'cell'],
  threshold: 0.9,
  description: 'Telephone number: international (+33 1 23 45 67 89, 0031 20 123 4567) or national with a trunk 0 (01 23 45 67 89, 020-1234567), or North-American ((555) 123-4567).',
};

// --- coordinates ------------------------------------------------------------------------------

const isLatitude = (v: string) => {
  const n = decimalNumber(v);
  return n !== undefined && n >= -90 && n <= 90;
};
const isLongitude = (v: string) => {
  const n = decimalNumber(v);
  return n !== undefined && n >= -180 && n <= 180;
};

export const latitudeWgs84: FormatDefinition = {
  name: 'latitude_wgs84',
  baseType: 'number',
  test: isLatitude,
  headerHints: ['lat', 'latitude', 'y', 'ylat', 'latitud', 'breedtegraad', 'wgs84 y', 'gps lat'],
  threshold: 0.95,
  requiresHeaderHint: true,
  csvDetective: 'latitude_wgs',
  description: 'WGS84 latitude in decimal degrees, -90 to 90, with a decimal part (dot or comma).',
};

export const longitudeWgs84: FormatDefinition = {
  name: 'longitude_wgs84',
  baseType: 'number',
  test: isLongitude,
  headerHints: ['lon', 'lng', 'long', 'longitude', 'x', 'xlong', 'longitud', 'lengtegraad'],
  threshold: 0.95,
  requiresHeaderHint: true,
  csvDetective: 'longitude_wgs',
  description: 'WGS84 longitude in decimal degrees, -180 to 180, with a decimal part (dot or comma).',
};

/**
 * Split a coordinate pair: `48.85,2.35`, `48.85, 2.35`, `[48.85, 2.35]`, `(48.85 2.35)`,
 * `48,85;2,35`. With a comma as the separator the numbers must use dot decimals.
 */
function splitPair(v: string): [string, string] | undefined {
  let s = v;
  const first = s.charCodeAt(0);
  const last = s.charCodeAt(s.length - 1);
  if ((first === 91 && last === 93) || (first === 40 && last === 41)) s = s.slice(1, -1);
  else if (first === 91 || first === 40 || last === 93 || last === 41) return undefined;
  let i = s.indexOf(';');
  let skip = 1;
  if (i < 0) {
    i = s.indexOf(',');
    if (i >= 0 && s.indexOf(',', i + 1) >= 0) i = -1;
  }
  if (i < 0) {
    const t = s.trim();
    i = t.indexOf(' ');
    if (i < 0) return undefined;
    s = t;
    while (s.charCodeAt(i + skip) === 32) skip++;
  }
  const a = s.slice(0, i).trim();
  const b = s.slice(i + skip).trim();
  return a && b ? [a, b] : undefined;
}

const pairTest = (latFirst: boolean) => (v: string) => {
  if (v.length < 7 || v.length > 60) return false;
  const first = v.charCodeAt(0);
  const last = v.charCodeAt(v.length - 1);
  // starts with a digit, a sign, '[' or '('; ends with a digit, ']' or ')'
  if (!((first >= 48 && first <= 57) || first === 45 || first === 43 || first === 91 || first === 40)) return false;
  if (!((last >= 48 && last <= 57) || last === 93 || last === 41)) return false;
  const pair = splitPair(v);
  if (!pair) return false;
  return latFirst ? isLatitude(pair[0]) && isLongitude(pair[1]) : isLongitude(pair[0]) && isLatitude(pair[1]);
};

const PAIR_HINTS = [
  'coordinates',
  'coordonnees',
  'coord',
  'coords',
  'geopoint',
  'geo point',
  'geo point 2d',
  'geoloc',
  'geolocalisation',
  'gps',
  'localisation',
  'location',
  'position',
  'point',
  'wgs84',
  'coordinaten',
];

export const latlonWgs84: FormatDefinition = {
  name: 'latlon_wgs84',
  baseType: 'string',
  test: pairTest(true),
  headerHints: ['latlon', 'lat lon', 'lat lng', 'latlng', 'lat long', ...PAIR_HINTS],
  threshold: 0.95,
  csvDetective: 'latlon_wgs',
  description: 'WGS84 "latitude, longitude" pair in one field ("48.85, 2.35", "[48.85,2.35]", "48,85;2,35").',
};

export const lonlatWgs84: FormatDefinition = {
  name: 'lonlat_wgs84',
  baseType: 'string',
  test: pairTest(false),
  headerHints: ['lonlat', 'lon lat', 'lng lat', 'lnglat', 'long lat', 'x y', 'xy', ...PAIR_HINTS],
  threshold: 0.95,
  csvDetective: 'lonlat_wgs',
  description: 'WGS84 "longitude, latitude" pair in one field ("2.35, 48.85"). Ambiguous with latlon when |longitude| ≤ 90: header hints decide.',
};

// --- geometries -------------------------------------------------------------------------------

const GEOMETRY_TYPES = new Set(['Point', 'MultiPoint', 'LineString', 'MultiLineString', 'Polygon', 'MultiPolygon', 'GeometryCollection']);

function isPosition(p: unknown): boolean {
  if (!Array.isArray(p) || p.length < 2 || p.length > 4) return false;
  for (const x of p) if (typeof x !== 'number' || !Number.isFinite(x)) return false;
  return true;
}

/** An array nested `depth` levels deep whose leaves are positions (depth 0 = a position). */
function isNested(c: unknown, depth: number): boolean {
  if (depth === 0) return isPosition(c);
  if (!Array.isArray(c)) return false;
  for (const x of c) if (!isNested(x, depth - 1)) return false;
  return true;
}

const DEPTH: Record<string, number> = { Point: 0, MultiPoint: 1, LineString: 1, MultiLineString: 2, Polygon: 2, MultiPolygon: 3 };

function isGeometry(o: unknown): boolean {
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return false;
  const g = o as { type?: unknown; coordinates?: unknown; geometries?: unknown };
  if (typeof g.type !== 'string' || !GEOMETRY_TYPES.has(g.type)) return false;
  if (g.type === 'GeometryCollection') return Array.isArray(g.geometries) && g.geometries.every(isGeometry);
  const depth = DEPTH[g.type] as number;
  if (!isNested(g.coordinates, depth)) return false;
  if (g.type === 'LineString') return (g.coordinates as unknown[]).length >= 2;
  return true;
}

function isGeoJson(v: string): boolean {
  if (v.charCodeAt(0) !== 123 || v.charCodeAt(v.length - 1) !== 125 || v.indexOf('"type"') < 0) return false;
  let o: unknown;
  try {
    o = JSON.parse(v);
  } catch {
    return false;
  }
  if (isGeometry(o)) return true;
  const f = o as { type?: unknown; geometry?: unknown };
  return f.type === 'Feature' && (f.geometry === null || isGeometry(f.geometry));
}

export const geojson: FormatDefinition = {
  name: 'geojson',
  baseType: 'json',
  test: isGeoJson,
  headerHints: ['geojson', 'geometry', 'geometrie', 'geom', 'geo shape', 'shape', 'the geom', 'geo', 'contour'],
  threshold: 0.9,
  csvDetective: 'geojson',
  description: 'GeoJSON geometry (Point, LineString, Polygon, Multi*, GeometryCollection) or Feature, as a JSON object.',
};

// A small recursive-descent reader for WKT / EWKT. The cursor is module state (the reader is
// synchronous and not re-entrant), so reading a value allocates nothing but the type names.

const GEOMETRIES = new Set(['POINT', 'LINESTRING', 'POLYGON', 'MULTIPOINT', 'MULTILINESTRING', 'MULTIPOLYGON', 'GEOMETRYCOLLECTION']);
const WKT_NUMBER = /[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?/y;

let text = '';
let at = 0;

function ws(): void {
  while (at < text.length) {
    const c = text.charCodeAt(at);
    if (c !== 32 && c !== 9 && c !== 10 && c !== 13) return;
    at++;
  }
}

function eat(code: number): boolean {
  ws();
  if (text.charCodeAt(at) !== code) return false;
  at++;
  return true;
}

function word(): string {
  ws();
  const start = at;
  while (at < text.length) {
    const c = text.charCodeAt(at) | 0x20;
    if (c < 0x61 || c > 0x7a) break;
    at++;
  }
  return text.slice(start, at).toUpperCase();
}

function wktNumber(): boolean {
  ws();
  WKT_NUMBER.lastIndex = at;
  if (!WKT_NUMBER.test(text)) return false;
  at = WKT_NUMBER.lastIndex;
  return true;
}

/** 2 to 4 numbers separated by white space. */
function coord(): boolean {
  let k = 0;
  while (k < 4 && wktNumber()) k++;
  return k >= 2;
}

/** '(' item (',' item)* ')' */
function list(item: () => boolean): boolean {
  if (!eat(40)) return false;
  for (;;) {
    if (!item()) return false;
    if (!eat(44)) return eat(41);
  }
}

const pointBody = (): boolean => eat(40) && coord() && eat(41);
const coords = (): boolean => list(coord);
const rings = (): boolean => list(coords);
const polygons = (): boolean => list(rings);
const multipoint = (): boolean =>
  list(() => {
    ws();
    return text.charCodeAt(at) === 40 ? list(coord) : coord();
  });
const collection = (): boolean => list(geometry);

function geometry(): boolean {
  let type = word();
  if (!GEOMETRIES.has(type)) {
    // PostGIS also writes the dimensions glued to the name: POINTZ, POINTM, POINTZM
    const base = type.replace(/(?:ZM|Z|M)$/, '');
    if (!GEOMETRIES.has(base)) return false;
    type = base;
  }
  let save = at;
  const dims = word();
  if (dims !== 'Z' && dims !== 'M' && dims !== 'ZM') at = save;
  save = at;
  if (word() === 'EMPTY') return true;
  at = save;
  switch (type) {
    case 'POINT':
      return pointBody();
    case 'LINESTRING':
      return coords();
    case 'POLYGON':
    case 'MULTILINESTRING':
      return rings();
    case 'MULTIPOINT':
      return multipoint();
    case 'MULTIPOLYGON':
      return polygons();
    default:
      return collection();
  }
}

/** [SRID=n;] geometry, then nothing else. */
function readWkt(value: string): boolean {
  text = value;
  at = 0;
  if ((value.charCodeAt(0) | 0x20) === 0x73 /* s */) {
    const semi = value.indexOf(';');
    if (semi < 6 || !/^srid=\d+;/i.test(value.slice(0, semi + 1))) return false;
    at = semi + 1;
  }
  const ok = geometry();
  ws();
  const done = ok && at === value.length;
  text = '';
  return done;
}

function isWkt(v: string): boolean {
  const c = v.charCodeAt(0) | 0x20;
  // p(oint, olygon), l(inestring), m(ulti…), g(eometrycollection), s(rid=)
  if (c !== 0x70 && c !== 0x6c && c !== 0x6d && c !== 0x67 && c !== 0x73) return false;
  const last = v.charCodeAt(v.length - 1);
  // ends with ')' or with 'EMPTY'
  if (v.length < 9 || (last !== 41 && ((last | 0x20) !== 0x79 || !/EMPTY$/i.test(v)))) return false;
  return readWkt(v);
}

export const wkt: FormatDefinition = {
  name: 'wkt',
  baseType: 'string',
  test: isWkt,
  headerHints: ['wkt', 'ewkt', 'geometry', 'geometrie', 'geom', 'the geom', 'shape', 'geo shape', 'contour'],
  threshold: 0.9,
  description: 'WKT or EWKT geometry (POINT(…), LINESTRING, POLYGON((…)), MULTI*, GEOMETRYCOLLECTION, Z/M/ZM, EMPTY, optional SRID=n;).',
};

// --- countries --------------------------------------------------------------------------------

const COUNTRY_HINTS = ['pays', 'country', 'land', 'iso', 'nation', 'nationalite', 'nationality', 'code pays', 'country code'];

export const isoCountryAlpha2: FormatDefinition = {
  name: 'iso_country_alpha2',
  baseType: 'string',
  test: (v) => v.length === 2 && ISO_ALPHA2.has(v),
  headerHints: [...COUNTRY_HINTS, 'alpha2', 'iso2', 'iso 2'],
  threshold: 0.9,
  csvDetective: 'iso_country_code_alpha2',
  description: 'ISO 3166-1 alpha-2 country code, upper case (FR, NL, US).',
};

export const isoCountryAlpha3: FormatDefinition = {
  name: 'iso_country_alpha3',
  baseType: 'string',
  test: (v) => v.length === 3 && ISO_ALPHA3.has(v),
  headerHints: [...COUNTRY_HINTS, 'alpha3', 'iso3', 'iso 3'],
  threshold: 0.9,
  csvDetective: 'iso_country_code_alpha3',
  description: 'ISO 3166-1 alpha-3 country code, upper case (FRA, NLD, USA).',
};

export const isoCountryNumeric: FormatDefinition = {
  name: 'iso_country_numeric',
  baseType: 'string',
  test: (v) => v.length === 3 && ISO_NUMERIC.has(v),
  headerHints: [...COUNTRY_HINTS, 'numeric', 'm49', 'iso numeric'],
  threshold: 0.9,
  requiresHeaderHint: true,
  csvDetective: 'iso_country_code_numeric',
  description: 'ISO 3166-1 numeric country code, three digits with leading zeros (250, 528, 840, 004).',
};

// --- amounts and percentages ------------------------------------------------------------------

const AMOUNT = /^[+-]?(?:\d{1,3}(?:([ ,.'\u00a0\u202f])\d{3})(?:\1\d{3})*|\d+)(?:[.,]\d+)?$/;
const SYMBOLS = new Set(['€', '$', '£', '¥', '₹', '₽', '₩', '₺', '₪', '₫', '₱', '฿', '₴', '₦', '₣', '₡', '₲', '₵', '₸', '₮', '₭', '﷼']);
/** Written before the amount (`US$ 3`, `CHF 12.50`). */
const PREFIX_WORDS = ['US$', 'CA$', 'C$', 'A$', 'AU$', 'NZ$', 'HK$', 'S$', 'R$', 'MX$', 'CHF', 'Fr.'];
/** Written after the amount (`100 kr`, `12,50 zł`). */
const SUFFIX_WORDS = ['kr', 'zł', 'Kč', 'Ft', 'lei', 'CHF', 'Fr.'];
const CURRENCY_CODES = new Set(
  'EUR USD GBP JPY CHF CAD AUD NZD CNY HKD SGD SEK NOK DKK ISK PLN CZK HUF RON BGN RSD TRY RUB UAH INR IDR MYR THB VND PHP KRW TWD BRL MXN ARS CLP COP PEN ZAR NGN EGP MAD TND DZD XOF XAF XPF ILS AED SAR QAR KWD'.split(
    ' ',
  ),
);

const isAmount = (s: string) => s.length > 0 && AMOUNT.test(s);

function isNumeric(c: number): boolean {
  return (c >= 48 && c <= 57) || c === 46 || c === 44;
}

/** `€ 12,50`, `12,50 €`, `$1,234.00`, `-$5`, `12.50 EUR`, `EUR 12.50`, `US$ 3`. One marker only. */
function isCurrencyAmount(v: string): boolean {
  const n = v.length;
  if (n < 2 || n > 40) return false;
  const c0 = v.charCodeAt(0);
  const signed = c0 === 45 || c0 === 43 || c0 === 0x2212;
  const s = signed ? v.slice(1) : v;
  const sign = signed ? '-' : '';
  const first = s.charCodeAt(0);
  if (!isNumeric(first)) {
    // the marker comes first: a symbol, or a word or code starting with an upper-case letter
    if (first >= 97 && first <= 122) return false;
    if (SYMBOLS.has(s.charAt(0))) return isAmount(sign + s.slice(1).trim());
    if (first < 65 || first > 90) return false;
    for (const p of PREFIX_WORDS) if (s.startsWith(p)) return isAmount(sign + s.slice(p.length).trim());
    return s.length > 3 && CURRENCY_CODES.has(s.slice(0, 3)) && isAmount(sign + s.slice(3).trim());
  }
  // the marker comes last
  const last = s.charCodeAt(s.length - 1);
  if (last >= 48 && last <= 57) return false;
  if (SYMBOLS.has(s.charAt(s.length - 1))) return isAmount(sign + s.slice(0, -1).trim());
  if (last >= 65 && last <= 90 && s.length > 3 && CURRENCY_CODES.has(s.slice(-3))) return isAmount(sign + s.slice(0, -3).trim());
  for (const p of SUFFIX_WORDS) if (s.endsWith(p) && s.length > p.length) return isAmount(sign + s.slice(0, -p.length).trim());
  return false;
}

export const currencyAmount: FormatDefinition = {
  name: 'currency_amount',
  baseType: 'string',
  test: isCurrencyAmount,
  headerHints: ['montant', 'prix', 'price', 'amount', 'cout', 'cost', 'budget', 'salaire', 'salary', 'euro', 'euros', 'bedrag', 'prijs', 'kosten', 'total', 'tarif'],
  threshold: 0.9,
  csvDetective: 'money',
  description: 'Amount with a currency symbol or ISO 4217 code before or after it ("€ 12,50", "$1,234.00", "12.50 EUR").',
};

const PERCENT = /^[+-]?(?:\d+(?:[.,]\d+)?|[.,]\d+)[ \u00a0\u202f]?%$/;

export const percentage: FormatDefinition = {
  name: 'percentage',
  baseType: 'string',
  test: (v) => v.charCodeAt(v.length - 1) === 37 && PERCENT.test(v),
  headerHints: ['pourcentage', 'percentage', 'percent', 'pct', 'taux', 'rate', 'part', 'ratio', 'procent'],
  threshold: 0.9,
  csvDetective: 'percent',
  description: 'Number followed by a per cent sign ("12.5 %", "12,5%", "-3%").',
};

// --- postal codes -----------------------------------------------------------------------------

const POSTAL_CODE = new RegExp(
  '^(?:' +
    [
      '\\d{5}(?:-\\d{4})?', // FR, DE, IT, ES, US (ZIP+4)
      '\\d{4}', // NL (digits only), BE, CH, AT, DK, NO, AU
      '[1-9]\\d{3} ?[A-Za-z]{2}', // NL
      '\\d{3} ?\\d{2}', // SE, CZ, SK, GR
      '\\d{2}-\\d{3}', // PL
      '\\d{4}-\\d{3}', // PT
      '\\d{5}-\\d{3}', // BR
      '\\d{3}-\\d{4}', // JP
      '\\d{6}', // RU, IN, CN
      '[A-Za-z]{1,2}\\d[A-Za-z\\d]? ?\\d[A-Za-z]{2}', // UK
      '[A-Za-z]\\d[A-Za-z] ?\\d[A-Za-z]\\d', // CA
      '[A-Za-z]\\d{2} ?[A-Za-z\\d]{4}', // IE (Eircode)
      'L-\\d{4}', // LU
    ].join('|') +
    ')$',
);

export const postalCode: FormatDefinition = {
  name: 'postal_code',
  baseType: 'string',
  test: (v) => v.length >= 4 && v.length <= 10 && POSTAL_CODE.test(v),
  headerHints: ['postal code', 'postcode', 'post code', 'zip', 'zipcode', 'zip code', 'code postal', 'cp', 'plz', 'postleitzahl', 'codigo postal', 'cap'],
  threshold: 0.9,
  requiresHeaderHint: true,
  description: 'Postal code in one of the common national shapes (5 or 4 digits, ZIP+4, NL 1234 AB, UK, Canada, PT, PL, BR, JP, Eircode).',
};

export const INTERNATIONAL_FORMATS: readonly FormatDefinition[] = [
  email,
  url,
  uuid,
  phone,
  latitudeWgs84,
  longitudeWgs84,
  latlonWgs84,
  lonlatWgs84,
  geojson,
  wkt,
  isoCountryAlpha2,
  isoCountryAlpha3,
  isoCountryNumeric,
  currencyAmount,
  percentage,
  postalCode,
];
