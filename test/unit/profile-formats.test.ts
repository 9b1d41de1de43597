import { describe, expect, it } from 'vitest';
import { BASE_TYPES, type BaseType, type FormatDefinition } from '../../functions/profile/types.ts';
import {
  ALL_FORMATS,
  FR_FORMATS,
  INTERNATIONAL_FORMATS,
  NL_FORMATS,
  US_FORMATS,
  baseTypeOf,
  booleanValue,
  dateOrder,
  formatsFor,
  formatsTable,
  headerMatches,
  normaliseHeaderForHints,
  parseDate,
  parseDateFr,
  parseDateTime,
  parseNumber,
  typeCompatible,
  widen,
} from '../../functions/profile/formats/index.ts';
import { ISO_ALPHA2, ISO_ALPHA3, ISO_NUMERIC } from '../../functions/profile/formats/iso-3166.ts';

const dot = { decimalComma: false };
const comma = { decimalComma: true };

function format(name: string): FormatDefinition {
  const f = ALL_FORMATS.find((x) => x.name === name);
  if (!f) throw new Error(`no format ${name}`);
  return f;
}

describe('baseTypeOf', () => {
  const cases: [string, BaseType, BaseType?][] = [
    // [value, type with a dot decimal, type with a decimal comma (if different)]
    ['0', 'integer'],
    ['1', 'integer'],
    ['42', 'integer'],
    ['-17', 'integer'],
    ['+7', 'integer'],
    ['-0', 'integer'],
    ['123456789012345678', 'integer'],
    ['1234567890123456789', 'string'], // 19 digits: an identifier, not a bigint-safe integer
    ['01234', 'string'], // leading zero: a code
    ['007', 'string'],
    ['-01', 'string'],
    ['2024', 'year'],
    ['1000', 'year'],
    ['2999', 'year'],
    ['3000', 'integer'],
    ['999', 'integer'],
    ['0999', 'string'],
    ['12.5', 'number'],
    ['-0.25', 'number'],
    ['.5', 'number'],
    ['-.5', 'number'],
    ['5.', 'string'],
    ['00.5', 'string'],
    ['1,234', 'number'], // thousands (dot file) / 1.234 (comma file)
    ['1,234,567.89', 'number', 'string'],
    ['1 234 567.89', 'number', 'string'],
    ['1\u00a0234,5', 'string', 'number'],
    ['1.234.567,89', 'string', 'number'],
    ['12,5', 'string', 'number'],
    [',5', 'string', 'number'],
    ['48.8566', 'number'], // dot decimal is accepted in a comma file too
    ['1,23,456', 'string'], // bad grouping
    ['1,2345', 'string', 'number'],
    ['1e5', 'number'],
    ['1.5E-3', 'number'],
    ['-2.5e+10', 'number'],
    ['1e', 'string'],
    ['NaN', 'string'],
    ['Infinity', 'string'],
    ['-', 'string'],
    ['+', 'string'],
    ['true', 'boolean'],
    ['FALSE', 'boolean'],
    ['Yes', 'boolean'],
    ['no', 'boolean'],
    ['oui', 'boolean'],
    ['Non', 'boolean'],
    ['ja', 'boolean'],
    ['nee', 'boolean'],
    ['t', 'boolean'],
    ['F', 'boolean'],
    ['vrai', 'boolean'],
    ['faux', 'boolean'],
    ['nein', 'string'],
    ['2024-12-31', 'date'],
    ['2024/12/31', 'date'],
    ['2024-02-29', 'date'],
    ['2023-02-29', 'string'],
    ['2024-02-30', 'string'],
    ['2024-13-01', 'string'],
    ['2024-1-5', 'string'],
    ['31/12/2024', 'date'], // day-first
    ['12/31/2024', 'date'], // month-first
    ['12/01/2024', 'date'], // either
    ['1/2/2024', 'date'],
    ['31/31/2024', 'string'],
    ['31/02/2024', 'string'],
    ['31-12-2024', 'date'],
    ['31.12.2024', 'date'],
    ['12.31.2024', 'string'], // dots are day-first only
    ['12/01/24', 'string'],
    ['2024-12-31T23:59', 'datetime'],
    ['2024-12-31 23:59:59', 'datetime'],
    ['2024-12-31T23:59:59.123456', 'datetime'],
    ['31/12/2024 08:30', 'datetime'],
    ['2024-12-31T23:59:59Z', 'datetime_tz'],
    ['2024-12-31T23:59:59+01:00', 'datetime_tz'],
    ['2024-12-31 23:59:59-0500', 'datetime_tz'],
    ['2024-12-31 23:59:59+02', 'datetime_tz'],
    ['2024-12-31T24:00:00', 'string'],
    ['2024-12-31T23:60', 'string'],
    ['2024-12-31T23:59:59+25:00', 'string'],
    ['2024-12-31T23:59:59 foo', 'string'],
    ['08:30', 'time'],
    ['8:30', 'time'],
    ['23:59:59', 'time'],
    ['23:59:59.5', 'time'],
    ['24:00', 'string'],
    ['12:60', 'string'],
    ['3:1', 'string'],
    ['{"a": 1}', 'json'],
    ['[1, 2, 3]', 'json'],
    ['[]', 'json'],
    ['{not json}', 'string'],
    ['{"a": 1} and more', 'string'],
    ['[1, 2', 'string'],
    ['{Paris}', 'string'],
    ['hello world', 'string'],
    ['75001 Paris', 'string'],
  ];
  it.each(cases)('%j', (value, dotType, commaType) => {
    expect(baseTypeOf(value, dot)).toBe(dotType);
    expect(baseTypeOf(value, comma)).toBe(commaType ?? dotType);
  });
});

describe('parseNumber', () => {
  it('reads numbers in the file convention, undefined otherwise', () => {
    expect(parseNumber('42', false)).toBe(42);
    expect(parseNumber('2024', false)).toBe(2024);
    expect(parseNumber('-12.5', false)).toBe(-12.5);
    expect(parseNumber('1,234,567.89', false)).toBe(1234567.89);
    expect(parseNumber('1 234 567.89', false)).toBe(1234567.89);
    expect(parseNumber('1e3', false)).toBe(1000);
    expect(parseNumber('12,5', false)).toBeUndefined();
    expect(parseNumber('12,5', true)).toBe(12.5);
    expect(parseNumber('1.234.567,89', true)).toBe(1234567.89);
    expect(parseNumber('1\u202f234,5', true)).toBe(1234.5);
    expect(parseNumber('1.234.567', true)).toBe(1234567);
    // a single dot and no comma is a dot decimal, even in a decimal-comma file
    expect(parseNumber('48.8566', true)).toBe(48.8566);
    expect(parseNumber('1.234', true)).toBe(1.234);
    expect(parseNumber('01234', false)).toBeUndefined();
    expect(parseNumber('abc', false)).toBeUndefined();
    expect(parseNumber('1e999', false)).toBeUndefined();
  });
});

describe('dates', () => {
  it('parseDate returns ISO dates in the order asked', () => {
    expect(parseDate('2024-02-29')).toBe('2024-02-29');
    expect(parseDate('2024/12/31')).toBe('2024-12-31');
    expect(parseDate('31/12/2024')).toBe('2024-12-31');
    expect(parseDate('1/2/2024')).toBe('2024-02-01');
    expect(parseDate('1/2/2024', 'mdy')).toBe('2024-01-02');
    expect(parseDate('12/31/2024', 'mdy')).toBe('2024-12-31');
    expect(parseDate('12/31/2024')).toBeUndefined(); // not a day-first date
    expect(parseDate('31.12.2024', 'mdy')).toBeUndefined(); // dots are day-first only
    expect(parseDate('2024-02-30')).toBeUndefined();
    expect(parseDate('2024-12-31T23:30:00-05:00')).toBe('2024-12-31'); // the date as written
    expect(parseDate('12/31/2024 10:00', 'mdy')).toBe('2024-12-31');
    expect(parseDate('hello')).toBeUndefined();
  });

  it('dateOrder tells which readings are possible', () => {
    expect(dateOrder('2024-12-31')).toBe('ymd');
    expect(dateOrder('31/12/2024')).toBe('dmy');
    expect(dateOrder('12/31/2024')).toBe('mdy');
    expect(dateOrder('12/01/2024')).toBe('either');
    expect(dateOrder('12.01.2024')).toBe('dmy');
    expect(dateOrder('31/12/2024 10:00')).toBe('dmy');
    expect(dateOrder('31/31/2024')).toBeUndefined();
    expect(dateOrder('12:30')).toBeUndefined();
  });

  it('parseDateTime gives sortable ISO strings, offsets converted to UTC', () => {
    expect(parseDateTime('2024-12-31')).toBe('2024-12-31T00:00:00');
    expect(parseDateTime('2024-12-31 8:05')).toBe('2024-12-31T08:05:00');
    expect(parseDateTime('2024-12-31T23:59:59.25')).toBe('2024-12-31T23:59:59.25');
    expect(parseDateTime('31/12/2024 10:00:00')).toBe('2024-12-31T10:00:00');
    expect(parseDateTime('2024-12-31T23:30:00Z')).toBe('2024-12-31T23:30:00.000Z');
    expect(parseDateTime('2025-01-01T00:30:00+01:00')).toBe('2024-12-31T23:30:00.000Z');
    expect(parseDateTime('2024-12-31T20:00:00-0530')).toBe('2025-01-01T01:30:00.000Z');
    expect(parseDateTime('0099-06-01T00:00:00Z')).toBe('0099-06-01T00:00:00.000Z');
    expect(parseDateTime('nope')).toBeUndefined();
  });

  it('parseDateFr reads French written dates', () => {
    expect(parseDateFr('12 janvier 2024')).toBe('2024-01-12');
    expect(parseDateFr('1er Mars 2024')).toBe('2024-03-01');
    expect(parseDateFr('lundi 12 févr. 2024')).toBe('2024-02-12');
    expect(parseDateFr('31 février 2024')).toBeUndefined();
  });
});

describe('booleanValue', () => {
  it('reads boolean words and 0/1', () => {
    expect(['1', 'true', 'Yes', 'oui', 'O', 'vrai', 'ja', 'waar', 't', 'y'].map(booleanValue)).toEqual(Array(10).fill(true));
    expect(['0', 'false', 'No', 'non', 'faux', 'nee', 'onwaar', 'f', 'n'].map(booleanValue)).toEqual(Array(9).fill(false));
    expect(['2', 'maybe', '', 'truthy', '-1'].map(booleanValue)).toEqual(Array(5).fill(undefined));
  });
});

describe('widen / typeCompatible', () => {
  it('follows the lattice year ⊂ integer ⊂ number, date ⊂ datetime ⊂ datetime_tz, all ⊂ string', () => {
    expect(widen('year', 'integer')).toBe('integer');
    expect(widen('integer', 'year')).toBe('integer');
    expect(widen('year', 'number')).toBe('number');
    expect(widen('integer', 'number')).toBe('number');
    expect(widen('date', 'datetime')).toBe('datetime');
    expect(widen('datetime_tz', 'date')).toBe('datetime_tz');
    expect(widen('datetime', 'datetime_tz')).toBe('datetime_tz');
    expect(widen('boolean', 'integer')).toBe('string');
    expect(widen('date', 'time')).toBe('string');
    expect(widen('year', 'date')).toBe('string');
    expect(widen('json', 'json')).toBe('json');
    expect(widen('json', 'string')).toBe('string');
    expect(typeCompatible('integer', 'number')).toBe(true);
    expect(typeCompatible('number', 'integer')).toBe(false);
    expect(typeCompatible('date', 'datetime_tz')).toBe(true);
    expect(typeCompatible('time', 'datetime')).toBe(false);
    expect(typeCompatible('boolean', 'string')).toBe(true);
  });

  it('is commutative and associative over all base types', () => {
    for (const a of BASE_TYPES)
      for (const b of BASE_TYPES) {
        expect(widen(a, b)).toBe(widen(b, a));
        expect(typeCompatible(a, widen(a, b))).toBe(true);
        for (const c of BASE_TYPES) expect(widen(widen(a, b), c)).toBe(widen(a, widen(b, c)));
      }
  });
});

// Every format: values that pass and near misses that fail. A new format without cases fails the
// completeness test below.
const CASES: Record<string, { pass: string[]; fail: string[] }> = {
  // --- international
  email: {
    pass: ['jean.dupont@example.fr', 'a+b@sub.example.co.uk', 'x_y@mail-server.org'],
    fail: ['jean.dupont@example', '@example.fr', 'jean dupont@example.fr', 'jean..dupont@example.fr', 'jean@.example.fr', 'jean@example.f'],
  },
  url: {
    pass: ['https://www.data.gouv.fr/fr/datasets/', 'http://example.com', 'ftp://ftp.example.org/pub/file.csv', 'www.example.com/path?q=1', 'https://localhost:8080/x', 'HTTPS://EXAMPLE.COM'],
    fail: ['http//example.com', 'https://', 'www.example', 'example.com', 'https://exa mple.com', 'mailto:a@b.fr'],
  },
  uuid: {
    pass: ['123e4567-e89b-12d3-a456-426614174000', '00000000-0000-0000-0000-000000000000', '123E4567-E89B-12D3-A456-426614174000'],
    fail: ['123e4567-e89b-12d3-a456-42661417400', '123e4567e89b12d3a456426614174000', 'g23e4567-e89b-12d3-a456-426614174000', '123e4567-e89b-12d3-a456_426614174000'],
  },
  phone: {
    pass: [
      '+33 1 23 45 67 89',
      '+33612345678',
      '+33 (0)1 23 45 67 89',
      '0031 20 123 4567',
      '01 23 45 67 89',
      '0612345678',
      '020-1234567',
      '(555) 123-4567',
      '555-123-4567',
      '+1 555 123 4567',
      '1-555-123-4567',
    ],
    fail: ['2024-01-01', '12.5', '0.2523206751', '020.1234567', '01-02-2024', '+0 123 456 789', '01  23 45 67 89', '(555 123-4567', '1234567890', '+33 1 23 45 67 89 12 34 56 78', '06 12 34 56 7a'],
  },
  latitude_wgs84: {
    pass: ['48.8566', '-22.61', '-3.0', '48,8566', '90.0', '-90.0'],
    fail: ['91.5', '-90.01', '48', 'abc', '48.85.66', '1e1'],
  },
  longitude_wgs84: {
    pass: ['2.3522', '-179.99', '180.0', '2,35'],
    fail: ['180.01', '2', '-200.5', '2.35 E'],
  },
  latlon_wgs84: {
    pass: ['48.85, 2.35', '43.2,-22.6', '[12.01,-0.28]', '(48.85 2.35)', '48,85;2,35', '-40.791, 140.81'],
    fail: ['0.1,192.5', '91.0, 2.35', '1,2', '43, -23', '[23.02,4.1', '48.85 2.35 3.1', '48.85,'],
  },
  lonlat_wgs84: {
    pass: ['2.35, 48.85', '-122.42,37.77', '[140.81, -40.79]'],
    fail: ['48.85, 192.5', '2.35, 91.5', '1,2', '-200.1, 40.2'],
  },
  geojson: {
    pass: [
      '{"type":"Point","coordinates":[2.35,48.85]}',
      '{"type": "LineString", "coordinates": [[0, 0], [1, 1]]}',
      '{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0]]]}',
      '{"type":"MultiPolygon","coordinates":[[[[0,0],[1,0],[1,1],[0,0]]]]}',
      '{"type":"GeometryCollection","geometries":[{"type":"Point","coordinates":[1,2]}]}',
      '{"type":"Feature","properties":{},"geometry":{"type":"Point","coordinates":[1,2,3]}}',
    ],
    fail: [
      '{"type":"Circle","coordinates":[1,2]}',
      '{"type":"Point","coordinates":[2.35]}',
      '{"type":"Point"}',
      '{"type":"Polygon","coordinates":[2,3]}',
      '{"type":"LineString","coordinates":[[1,2]]}',
      '{"type":"Point","coordinates":["2.35","48.85"]}',
      '{type:"Point"}',
      '{"name":"Point"}',
    ],
  },
  wkt: {
    pass: [
      'POINT(2.35 48.85)',
      'POINT Z (1 2 3)',
      'POINTZ(1 2 3)',
      'point(2.35 48.85)',
      'LINESTRING(0 0, 1 1, 2 2)',
      'POLYGON((0 0, 1 0, 1 1, 0 0))',
      'POLYGON ((0 0, 10 0, 10 10, 0 0), (1 1, 2 1, 2 2, 1 1))',
      'MULTIPOLYGON(((0 0,1 0,1 1,0 0)),((5 5,6 5,6 6,5 5)))',
      'MULTIPOINT((1 2),(3 4))',
      'MULTIPOINT(1 2, 3 4)',
      'MULTILINESTRING((0 0,1 1),(2 2,3 3))',
      'GEOMETRYCOLLECTION(POINT(1 2),LINESTRING(0 0,1 1))',
      'SRID=4326;POINT(2.35 48.85)',
      'SRID=2154;MULTIPOLYGON(((652000 6862000,653000 6862000,653000 6863000,652000 6862000)))',
      'POINT EMPTY',
      'POINT(-1.5e2 4E1)',
    ],
    fail: [
      'POINT(2.35)',
      'POINT(1 2',
      'POLYGON(0 0, 1 0, 1 1, 0 0)',
      'CIRCLE(1 2)',
      'SRID=abc;POINT(1 2)',
      'POINT(1 2) extra',
      'POINT(a b)',
      'POINT(1 2 3 4 5)',
      'POINT(1 2, 3 4)',
      'LINESTRING()',
      'Paris (75)',
    ],
  },
  iso_country_alpha2: { pass: ['FR', 'NL', 'US', 'DE', 'AX'], fail: ['fr', 'XX', 'UK', 'FRA', 'F'] },
  iso_country_alpha3: { pass: ['FRA', 'NLD', 'USA', 'ALA'], fail: ['fra', 'XXX', 'UK', 'FRAN'] },
  iso_country_numeric: { pass: ['250', '528', '840', '004'], fail: ['4', '999', '2500', '000'] },
  currency_amount: {
    pass: ['€ 12,50', '12,50 €', '$1,234.00', '-$5', '€-5', '12.50 EUR', 'EUR 12.50', 'US$ 3', '1 234,56 €', '100 kr', '£0.99', "CHF 1'250.00"],
    fail: ['12.50', '€', 'EUR', '12.50 ABC', '$ 12.5.0', '€ abc', '€€ 12', '12 euros'],
  },
  percentage: {
    pass: ['12.5 %', '12,5%', '-3%', '100%', '.5%', '12,5\u00a0%'],
    fail: ['12.5', '%', '12.5 %%', 'abc%', '12. 5%', '12.5  %'],
  },
  postal_code: {
    pass: ['75001', '1234 AB', 'SW1A 1AA', 'K1A 0B1', '12345-6789', '1000', '00-950', '1000-001', '114 55', 'D02 X285'],
    fail: ['123', 'ABCDEF', '75001-', '1234 ABC', '7500 1', 'Paris'],
  },
  // --- fr
  siren: {
    pass: ['130025265', '123456782', '130 025 265', '356000000'],
    fail: ['130025266', '12345678', '1300252650', '13002526A', '130-025-265'],
  },
  siret: {
    pass: ['13002526500013', '130 025 265 00013', '35600000000048', '35600000012346'],
    fail: ['13002526500012', '35600000012347', '1300252650001', '1300252650001A', '13002526500013 0'],
  },
  code_postal: {
    pass: ['75001', '01000', '20000', '97400', '98000', '98800'],
    fail: ['00100', '96000', '97700', '98500', '7501', '750011', '2A000'],
  },
  code_commune_insee: {
    pass: ['75056', '2A004', '2B033', '97411', '01001', '97701'],
    fail: ['2C004', '2a004', '20004', '00001', '75000', '97900', '7505', '2A000'],
  },
  code_departement: {
    pass: ['01', '2A', '2B', '75', '95', '971', '976'],
    fail: ['2C', '20', '96', '00', '975', '1', '977', '2a'],
  },
  code_region: { pass: ['11', '84', '94', '01', '06'], fail: ['55', '05', '21', '1', '111'] },
  departement: {
    pass: ['Ain', "Côte-d'Or", 'cote d or', "COTE-D'OR", 'Côte d’Or', 'Seine-Saint-Denis', 'seine saint denis', 'La Réunion', 'Réunion', 'Corse-du-Sud', 'Territoire de Belfort'],
    fail: ['Seine-et-Oise', 'Paris 15', 'Côte', 'Bretagne', '75'],
  },
  region: {
    pass: ['Île-de-France', 'ile de france', 'ILE-DE-FRANCE', "Provence-Alpes-Côte d'Azur", 'Grand Est', 'Corse', 'Hauts-de-France', 'Centre-Val de Loire'],
    fail: ['Rhône-Alpes', 'Aquitaine', 'Nord-Pas-de-Calais', 'Ile de Fr', '11'],
  },
  uai: {
    pass: ['0750654D', '0422170F', '0130040Y', '0693446W', '6200001G', '9710012L'],
    fail: ['0750654E', '04292E', '0750654', '0960001X', '075065AD', '0750654d', '0750654I'],
  },
  code_rna: { pass: ['W751515517', 'W123456789'], fail: ['w143788974', 'W12', '678W23456', 'W1234567890', '165789325', 'W12345678A'] },
  lambert93_x: { pass: ['652469.02', '1265783,45', '34723.4', '-154000'], fail: ['1456669.8', '-776225', '2.35', '0', '346_3214'] },
  lambert93_y: { pass: ['6862035.26', '6037008.69', '7124528,5'], fail: ['7245669.8', '-6734529.6', '48.85', '3422674,78'] },
  date_fr: {
    pass: ['12 janvier 2024', '1er mars 2024', 'lundi 12 févr. 2024', '29 février 2024', '12-janv-2024', '15 decembre 2024', '13 Février 1996', '3 AOÛT 2021'],
    fail: ['31 février 2024', '29 février 2023', '44 mars 2025', '12 january 2024', '12 janvier 24', 'funday 12 janvier 2024', '12/01/2024'],
  },
  date_fr_numeric: {
    pass: ['12/01/2024', '31/12/2024', '1/2/2024', '31.12.2024', '31-12-2024'],
    fail: ['12/31/2024', '31/02/2024', '2024-12-31', '12/01/24', '31/12/2024 10:00'],
  },
  jour_de_la_semaine: { pass: ['lundi', 'Mardi', 'DIMANCHE', 'lun', 'ven.', 'sam'], fail: ['monday', 'lundis', 'jour de la biere', 'lu'] },
  mois_de_lannee: { pass: ['janvier', 'Février', 'fevr.', 'AOÛT', 'déc', 'JUIN'], fail: ['november', 'janvie', '13', 'january'] },
  tel_fr: {
    pass: ['0123456789', '01 23 45 67 89', '01.23.45.67.89', '06-12-34-56-78', '+33 1 23 45 67 89', '+33612345678', '0033 6 12 34 56 78', '+33 (0)1 23 45 67 89'],
    fail: ['0023456789', '012345678', '+44 20 7946 0958', '01 23 45 67 8', '01 23 45 67 890'],
  },
  // --- nl
  postcode_nl: { pass: ['1234 AB', '1234AB', '9999 zz', '1011 AC'], fail: ['1234 A', '1234 ABC', '0123 AB', '1234 SS', '12345 AB', '1234-AB'] },
  bag_verblijfsobject_id: {
    pass: ['0363010000659396', 'NL.IMBAG.Verblijfsobject.0363010000659396'],
    fail: ['0363100012345678', '03630100006593961', 'NL.IMBAG.Pand.0363010000659396', '0000010000659396'],
  },
  bag_ligplaats_id: { pass: ['0363020000123456'], fail: ['0363030000123456', '363020000123456'] },
  bag_standplaats_id: { pass: ['0363030000123456'], fail: ['0363020000123456', '036303000012345X'] },
  bag_pand_id: {
    pass: ['0363100012345678', 'NL.IMBAG.Pand.0363100012345678'],
    fail: ['0363010000659396', '036310001234567', '0000100012345678', 'NL.IMBAG.Verblijfsobject.0363100012345678'],
  },
  bag_nummeraanduiding_id: {
    pass: ['0363200000123456', 'NL.IMBAG.Nummeraanduiding.0363200000123456'],
    fail: ['0363300000123456', '0363200000A23456'],
  },
  bag_openbare_ruimte_id: { pass: ['0363300000098765', 'NL.IMBAG.OpenbareRuimte.0363300000098765'], fail: ['0363200000098765', '363300000098765'] },
  cbs_gemeentecode: { pass: ['GM0363', 'GM1680'], fail: ['GM363', 'gm0363', 'GM0000', 'WK0363', 'GM03630'] },
  cbs_wijkcode: { pass: ['WK036300', 'WK168001'], fail: ['WK03630', 'WK0363000', 'BU036300', 'WK0363AB'] },
  cbs_buurtcode: { pass: ['BU03630000', 'BU16800101'], fail: ['BU0363000', 'BU036300000', 'WK03630000'] },
  cbs_provinciecode: { pass: ['PV20', 'PV27', 'PV31'], fail: ['PV19', 'PV32', 'PV2A', 'pv27'] },
  rd_x: { pass: ['121000', '155000.5', '13500,25'], fail: ['300001', '5.12', '-8000', 'x'] },
  rd_y: { pass: ['487000', '600000.5', '289000'], fail: ['288999', '629001', '52.37'] },
  // --- us
  zip_code: { pass: ['10001', '90210', '00501', '12345-6789'], fail: ['00500', '99999', '1234', '12345-678', '123456', '1234A'] },
  zip_plus4: { pass: ['12345-6789', '00501-0001'], fail: ['12345', '12345 6789', '00000-1234'] },
  us_state_code: { pass: ['CA', 'NY', 'DC', 'PR', 'AE'], fail: ['ca', 'XX', 'UK', 'CAL'] },
  us_state: {
    pass: ['California', 'new york', 'District of Columbia', 'Puerto Rico', 'WASHINGTON', 'Washington DC', 'U.S. Virgin Islands'],
    fail: ['Cali', 'New Amsterdam', 'Ontario', 'Palau', 'CA'],
  },
  fips_state_code: { pass: ['01', '06', '56', '72'], fail: ['03', '07', '57', '1', '99'] },
  fips_county_code: { pass: ['06037', '36061', '72001'], fail: ['03001', '06000', '6037', '060370'] },
  date_us: { pass: ['12/31/2024', '1/2/2024', '02/29/2024', '12-31-2024'], fail: ['31/12/2024', '02/30/2024', '12.31.2024', '2024-12-31'] },
};

describe('formats', () => {
  it('every format has test cases, and every case a format', () => {
    expect(ALL_FORMATS.map((f) => f.name).filter((n) => !(n in CASES))).toEqual([]);
    expect(Object.keys(CASES).filter((n) => !ALL_FORMATS.some((f) => f.name === n))).toEqual([]);
  });

  for (const f of ALL_FORMATS) {
    const c = CASES[f.name];
    if (!c) continue;
    describe(f.name, () => {
      it.each(c.pass)('accepts %j', (v) => expect(f.test(v)).toBe(true));
      it.each(c.fail)('rejects %j', (v) => expect(f.test(v)).toBe(false));
    });
  }

  it('definitions are well formed', () => {
    const names = ALL_FORMATS.map((f) => f.name);
    expect(new Set(names).size).toBe(names.length);
    for (const f of ALL_FORMATS) {
      expect(f.name).toMatch(/^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$/);
      expect(BASE_TYPES).toContain(f.baseType);
      expect(f.threshold).toBeGreaterThan(0);
      expect(f.threshold).toBeLessThanOrEqual(1);
      expect(f.description.length).toBeGreaterThan(10);
      if (f.requiresHeaderHint) expect(f.headerHints?.length).toBeGreaterThan(0);
    }
    for (const f of INTERNATIONAL_FORMATS) expect(f.locale).toBeUndefined();
    for (const f of FR_FORMATS) expect(f.locale).toBe('fr');
    for (const f of NL_FORMATS) expect(f.locale).toBe('nl');
    for (const f of US_FORMATS) expect(f.locale).toBe('us');
  });

  it('csv-detective names are ones csv-detective has, each used once', () => {
    // the format names of csv-detective 0.13.0 (its formats/ folder)
    const known = new Set([
      'adresse',
      'binary',
      'bool',
      'code_commune',
      'code_csp_insee',
      'code_departement',
      'code_epci',
      'code_fantoir',
      'code_import',
      'code_postal',
      'code_region',
      'code_rna',
      'code_waldec',
      'commune',
      'csp_insee',
      'date',
      'datetime_aware',
      'datetime_naive',
      'datetime_rfc822',
      'departement',
      'email',
      'float',
      'geojson',
      'id_rnb',
      'insee_ape700',
      'insee_canton',
      'int',
      'iso_country_code_alpha2',
      'iso_country_code_alpha3',
      'iso_country_code_numeric',
      'jour_de_la_semaine',
      'json',
      'latitude_l93',
      'latitude_wgs',
      'latitude_wgs_fr_metropole',
      'latlon_wgs',
      'longitude_l93',
      'longitude_wgs',
      'longitude_wgs_fr_metropole',
      'lonlat_wgs',
      'mois_de_lannee',
      'money',
      'mongo_object_id',
      'pays',
      'percent',
      'region',
      'sexe',
      'siren',
      'siret',
      'tel_fr',
      'uai',
      'url',
      'username',
      'uuid',
      'year',
    ]);
    const used = ALL_FORMATS.flatMap((f) => (f.csvDetective ? [f.csvDetective] : []));
    for (const name of used) expect(known).toContain(name);
    expect(new Set(used).size).toBe(used.length);
  });

  it('format tests do not throw on odd input', () => {
    const odd = ['{', '[', '}', ']', '(', ')', '"', "'", ',', ';', '%', '€', '+', '-', '.', 'SRID=', 'POINT(', '{"type":', 'W', '2A', '\u00a0', '🙂', 'x'.repeat(10_000), '1'.repeat(10_000)];
    for (const f of ALL_FORMATS) for (const v of odd) expect(typeof f.test(v)).toBe('boolean');
    for (const v of odd) expect(BASE_TYPES).toContain(baseTypeOf(v, dot));
  });

  it('ISO 3166-1 lists hold the 249 assigned codes', () => {
    expect(ISO_ALPHA2.size).toBe(249);
    expect(ISO_ALPHA3.size).toBe(249);
    expect(ISO_NUMERIC.size).toBe(249);
  });
});

describe('formatsFor', () => {
  it('returns the chosen packs, then the international formats', () => {
    expect(formatsFor([])).toEqual(INTERNATIONAL_FORMATS);
    expect(formatsFor(['fr'])).toEqual([...FR_FORMATS, ...INTERNATIONAL_FORMATS]);
    expect(formatsFor(['us', 'nl', 'us'])).toEqual([...US_FORMATS, ...NL_FORMATS, ...INTERNATIONAL_FORMATS]);
    expect(formatsFor(['fr', 'nl', 'us'])).toHaveLength(ALL_FORMATS.length);
    expect(formatsFor(['fr'])).toBe(formatsFor(['fr']));
  });

  it('rejects an unknown pack', () => {
    expect(() => formatsFor(['de' as never])).toThrow(/unknown locale pack: de/);
  });
});

describe('header hints', () => {
  it('normalises headers', () => {
    expect(normaliseHeaderForHints('Code_Postal (établissement)')).toBe('code postal etablissement');
    expect(normaliseHeaderForHints('codePostal')).toBe('code postal');
    expect(normaliseHeaderForHints('  Latitude-WGS84 ')).toBe('latitude wgs84');
    expect(normaliseHeaderForHints('N° SIRET')).toBe('n siret');
    expect(normaliseHeaderForHints('Œuvre')).toBe('oeuvre');
    expect(normaliseHeaderForHints('---')).toBe('');
  });

  it('matches whole words, not substrings', () => {
    const lat = format('latitude_wgs84');
    expect(headerMatches(lat, 'lat')).toBe(true);
    expect(headerMatches(lat, 'Latitude')).toBe(true);
    expect(headerMatches(lat, 'LAT (WGS84)')).toBe(true);
    expect(headerMatches(lat, 'gps_lat')).toBe(true);
    expect(headerMatches(lat, 'y')).toBe(true);
    expect(headerMatches(lat, 'population')).toBe(false);
    expect(headerMatches(lat, 'year')).toBe(false);
    expect(headerMatches(lat, 'lateral')).toBe(false);
    const lon = format('longitude_wgs84');
    expect(headerMatches(lon, 'lng')).toBe(true);
    expect(headerMatches(lon, 'longueur')).toBe(false);
    expect(headerMatches(lon, 'x')).toBe(true);
    expect(headerMatches(lon, 'max')).toBe(false);
  });

  it('matches multi-word hints in sequence, glued, and plurals', () => {
    const cp = format('code_postal');
    expect(headerMatches(cp, 'Code postal')).toBe(true);
    expect(headerMatches(cp, 'code_postal_etab')).toBe(true);
    expect(headerMatches(cp, 'CODEPOSTAL')).toBe(true);
    expect(headerMatches(cp, 'codePostal')).toBe(true);
    expect(headerMatches(cp, 'CP')).toBe(true);
    expect(headerMatches(cp, 'Postal code')).toBe(true);
    expect(headerMatches(cp, 'code')).toBe(false); // one word of a two-word hint is not enough
    expect(headerMatches(cp, 'code commune')).toBe(false);
    expect(headerMatches(cp, 'cpu')).toBe(false);
    expect(headerMatches(format('email'), 'Emails')).toBe(true);
    expect(headerMatches(format('email'), 'e-mail')).toBe(true);
    expect(headerMatches(format('email'), 'mailing')).toBe(false);
    expect(headerMatches(format('siret'), 'N° SIRET')).toBe(true);
    expect(headerMatches(format('code_departement'), 'dépenses')).toBe(false);
    expect(headerMatches(format('code_commune_insee'), 'commentaire')).toBe(false);
  });

  it('is false for formats without hints and for empty headers', () => {
    const bare: FormatDefinition = { name: 'bare', baseType: 'string', test: () => true, threshold: 1, description: 'no hints' };
    expect(headerMatches(bare, 'anything')).toBe(false);
    expect(headerMatches(format('email'), '')).toBe(false);
    expect(headerMatches(format('email'), '***')).toBe(false);
  });
});

describe('formatsTable', () => {
  it('lists every format in a markdown table', () => {
    const table = formatsTable();
    const lines = table.trim().split('\n');
    expect(lines[0]).toBe('| Format | Pack | Base type | Threshold | Header hint | csv-detective | Description |');
    expect(lines).toHaveLength(ALL_FORMATS.length + 2);
    expect(table).toContain('| `code_postal` | fr | string | 0.9 | required | `code_postal` |');
    expect(table).toContain('| `email` | international | string | 0.9 | lifts score | `email` |');
    expect(table).toContain('| `postcode_nl` | nl | string | 0.9 | lifts score | — |');
    // a pipe in a description does not break the row
    for (const line of lines) expect(line.replace(/\\\|/g, '').split('|')).toHaveLength(9);
  });
});
