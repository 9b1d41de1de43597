/**
 * The `us` pack: ZIP codes, USPS state codes and names, FIPS state and county codes, and
 * month-first numeric dates.
 */
import type { FormatDefinition } from '../types.ts';
import { allDigits, isDigit, isValidDate, nameMatcher } from './helpers.ts';

/** ZIP codes run from 00501 (Holtsville, NY) to 99950 (Ketchikan, AK). */
function isZip5(v: string): boolean {
  return allDigits(v, 0, 5) && v.slice(0, 5) >= '00501' && v.slice(0, 5) <= '99950';
}

export const zipCode: FormatDefinition = {
  name: 'zip_code',
  locale: 'us',
  baseType: 'string',
  test: (v) => (v.length === 5 || (v.length === 10 && v.charCodeAt(5) === 45 && allDigits(v, 6))) && isZip5(v),
  headerHints: ['zip', 'zipcode', 'zip code', 'zip5', 'postal code', 'postcode', 'zcta'],
  threshold: 0.9,
  requiresHeaderHint: true,
  description: 'US ZIP code: 5 digits (00501–99950) or ZIP+4 (12345-6789). A bare 5-digit number needs a header hint.',
};

export const zipPlus4: FormatDefinition = {
  name: 'zip_plus4',
  locale: 'us',
  baseType: 'string',
  test: (v) => v.length === 10 && v.charCodeAt(5) === 45 && allDigits(v, 6) && isZip5(v),
  headerHints: ['zip', 'zipcode', 'zip code', 'zip4', 'zip plus 4', 'postal code'],
  threshold: 0.9,
  description: 'US ZIP+4 code (12345-6789); distinctive enough to need no header hint.',
};

/** USPS codes: states, DC, inhabited territories, freely associated states, armed forces. */
export const USPS_STATES: Readonly<Record<string, string>> = {
  AL: 'Alabama',
  AK: 'Alaska',
  AZ: 'Arizona',
  AR: 'Arkansas',
  CA: 'California',
  CO: 'Colorado',
  CT: 'Connecticut',
  DE: 'Delaware',
  DC: 'District of Columbia',
  FL: 'Florida',
  GA: 'Georgia',
  HI: 'Hawaii',
  ID: 'Idaho',
  IL: 'Illinois',
  IN: 'Indiana',
  IA: 'Iowa',
  KS: 'Kansas',
  KY: 'Kentucky',
  LA: 'Louisiana',
  ME: 'Maine',
  MD: 'Maryland',
  MA: 'Massachusetts',
  MI: 'Michigan',
  MN: 'Minnesota',
  MS: 'Mississippi',
  MO: 'Missouri',
  MT: 'Montana',
  NE: 'Nebraska',
  NV: 'Nevada',
  NH: 'New Hampshire',
  NJ: 'New Jersey',
  NM: 'New Mexico',
  NY: 'New York',
  NC: 'North Carolina',
  ND: 'North Dakota',
  OH: 'Ohio',
  OK: 'Oklahoma',
  OR: 'Oregon',
  PA: 'Pennsylvania',
  RI: 'Rhode Island',
  SC: 'South Carolina',
  SD: 'South Dakota',
  TN: 'Tennessee',
  TX: 'Texas',
  UT: 'Utah',
  VT: 'Vermont',
  VA: 'Virginia',
  WA: 'Washington',
  WV: 'West Virginia',
  WI: 'Wisconsin',
  WY: 'Wyoming',
  AS: 'American Samoa',
  GU: 'Guam',
  MP: 'Northern Mariana Islands',
  PR: 'Puerto Rico',
  VI: 'U.S. Virgin Islands',
  FM: 'Federated States of Micronesia',
  MH: 'Marshall Islands',
  PW: 'Palau',
  AA: 'Armed Forces Americas',
  AE: 'Armed Forces Europe',
  AP: 'Armed Forces Pacific',
};

const STATE_CODES = new Set(Object.keys(USPS_STATES));

export const usStateCode: FormatDefinition = {
  name: 'us_state_code',
  locale: 'us',
  baseType: 'string',
  test: (v) => v.length === 2 && STATE_CODES.has(v),
  headerHints: ['state', 'st', 'state code', 'state abbr', 'state abbreviation', 'usps', 'stusps', 'stusab'],
  threshold: 0.9,
  description: 'USPS two-letter state code, upper case (states, DC, territories, AA/AE/AP).',
};

/** USPS codes whose names are not states or territories of the US. */
const NOT_STATES = new Set(['FM', 'MH', 'PW', 'AA', 'AE', 'AP']);

export const usState: FormatDefinition = {
  name: 'us_state',
  locale: 'us',
  baseType: 'string',
  test: nameMatcher([
    ...Object.entries(USPS_STATES)
      .filter(([code]) => !NOT_STATES.has(code))
      .map(([, name]) => name),
    'US Virgin Islands',
    'Virgin Islands',
    'Washington DC',
  ]),
  headerHints: ['state', 'state name', 'statename', 'state nm'],
  threshold: 0.9,
  description: 'US state (or DC, territory) name, case-insensitive ("New York", "district of columbia").',
};

/** FIPS state codes (states, DC, territories). */
export const FIPS_STATES: ReadonlySet<string> = new Set(
  '01 02 04 05 06 08 09 10 11 12 13 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32 33 34 35 36 37 38 39 40 41 42 44 45 46 47 48 49 50 51 53 54 55 56 60 66 69 72 78'.split(' '),
);

export const fipsState: FormatDefinition = {
  name: 'fips_state_code',
  locale: 'us',
  baseType: 'string',
  test: (v) => v.length === 2 && FIPS_STATES.has(v),
  headerHints: ['fips', 'state fips', 'statefp', 'state fp', 'fips state', 'st fips', 'state code'],
  threshold: 0.9,
  requiresHeaderHint: true,
  description: 'FIPS state code: 2 digits with leading zero (01 Alabama … 56 Wyoming, 60–78 territories).',
};

export const fipsCounty: FormatDefinition = {
  name: 'fips_county_code',
  locale: 'us',
  baseType: 'string',
  test: (v) => v.length === 5 && allDigits(v) && FIPS_STATES.has(v.slice(0, 2)) && v.slice(2) !== '000',
  headerHints: ['fips', 'county fips', 'countyfp', 'county fp', 'fips county', 'geoid', 'cnty fips', 'fips code', 'county code'],
  threshold: 0.9,
  requiresHeaderHint: true,
  description: 'FIPS county code: 5 digits, a FIPS state code then a 3-digit county (06037 Los Angeles County).',
};

const DATE_MDY = /^(\d{1,2})([/-])(\d{1,2})\2(\d{4})$/;

export const dateUs: FormatDefinition = {
  name: 'date_us',
  locale: 'us',
  baseType: 'date',
  test: (v) => {
    if (v.length < 8 || v.length > 10 || !isDigit(v.charCodeAt(0))) return false;
    const m = DATE_MDY.exec(v);
    return m !== null && isValidDate(Number(m[4]), Number(m[1]), Number(m[3]));
  },
  headerHints: ['date', 'day'],
  threshold: 0.95,
  description: 'Month-first numeric date mm/dd/yyyy (also with -), a real date read month-first: tells the loader the order.',
};

export const US_FORMATS: readonly FormatDefinition[] = [zipCode, zipPlus4, usStateCode, usState, fipsState, fipsCounty, dateUs];
