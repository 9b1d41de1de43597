/**
 * The `nl` pack: Dutch postcodes, BAG identifiers, CBS region codes and Rijksdriehoek coordinates.
 */
import type { FormatDefinition } from '../types.ts';
import { allDigits, looseNumber } from './helpers.ts';

/** `1234 AB` / `1234AB`: no leading zero, two letters, not SA, SD or SS (never issued). */
const POSTCODE = /^[1-9]\d{3} ?(?!SA|SD|SS|sa|sd|ss)[A-Za-z]{2}$/;

export const postcodeNl: FormatDefinition = {
  name: 'postcode_nl',
  locale: 'nl',
  baseType: 'string',
  test: (v) => (v.length === 6 || v.length === 7) && POSTCODE.test(v),
  headerHints: ['postcode', 'post code', 'postal code', 'pc6', 'zip'],
  threshold: 0.9,
  description: 'Dutch postcode: four digits (no leading zero) and two letters, "1234 AB" or "1234AB".',
};

// --- BAG --------------------------------------------------------------------------------------

/**
 * BAG object identifiers are 16 digits: 4-digit municipality code (gemeentecode), 2-digit object
 * type, 10-digit sequence number. Also accepted with the PDOK/IMBAG prefix
 * (`NL.IMBAG.Pand.0363100012345678`).
 */
function bagTest(type: string, prefix: string): (v: string) => boolean {
  const full = `NL.IMBAG.${prefix}.`;
  return (v: string) => {
    let s = v;
    if (s.length === 16 + full.length && s.startsWith(full)) s = s.slice(full.length);
    return s.length === 16 && allDigits(s) && s.charCodeAt(4) === type.charCodeAt(0) && s.charCodeAt(5) === type.charCodeAt(1) && !s.startsWith('0000');
  };
}

function bag(name: string, type: string, prefix: string, label: string, hints: string[]): FormatDefinition {
  return {
    name,
    locale: 'nl',
    baseType: 'string',
    test: bagTest(type, prefix),
    headerHints: [...hints, 'bag id', 'bag'],
    threshold: 0.9,
    description: `BAG ${label} id: 16 digits, municipality code + object type ${type} + sequence number.`,
  };
}

export const bagVerblijfsobject = bag('bag_verblijfsobject_id', '01', 'Verblijfsobject', 'verblijfsobject (dwelling/unit)', [
  'verblijfsobject',
  'verblijfsobject id',
  'vbo id',
  'adresseerbaarobject',
  'adresseerbaar object id',
]);
export const bagLigplaats = bag('bag_ligplaats_id', '02', 'Ligplaats', 'ligplaats (mooring)', ['ligplaats', 'ligplaats id']);
export const bagStandplaats = bag('bag_standplaats_id', '03', 'Standplaats', 'standplaats (pitch)', ['standplaats', 'standplaats id']);
export const bagPand = bag('bag_pand_id', '10', 'Pand', 'pand (building)', ['pand', 'pand id', 'pandid', 'gebouw id']);
export const bagNummeraanduiding = bag('bag_nummeraanduiding_id', '20', 'Nummeraanduiding', 'nummeraanduiding (address)', ['nummeraanduiding', 'nummeraanduiding id', 'num id', 'adres id']);
export const bagOpenbareRuimte = bag('bag_openbare_ruimte_id', '30', 'OpenbareRuimte', 'openbare ruimte (street)', ['openbare ruimte', 'openbareruimte', 'openbare ruimte id', 'straat id']);

// --- CBS region codes -------------------------------------------------------------------------

function cbs(name: string, prefix: string, digits: number, label: string, hints: string[]): FormatDefinition {
  return {
    name,
    locale: 'nl',
    baseType: 'string',
    test: (v) => v.length === 2 + digits && v.startsWith(prefix) && allDigits(v, 2) && !v.startsWith('0000', 2),
    headerHints: [...hints, 'regiocode', 'codering', 'cbs code', 'gwb code'],
    threshold: 0.9,
    description: `CBS ${label} code: ${prefix} + ${digits} digits (the first four are the municipality code).`,
  };
}

export const cbsGemeente = cbs('cbs_gemeentecode', 'GM', 4, 'gemeente (municipality)', ['gemeentecode', 'gemeente', 'gm code']);
export const cbsWijk = cbs('cbs_wijkcode', 'WK', 6, 'wijk (district)', ['wijkcode', 'wijk', 'wk code', 'gwb code 8']);
export const cbsBuurt = cbs('cbs_buurtcode', 'BU', 8, 'buurt (neighbourhood)', ['buurtcode', 'buurt', 'bu code', 'gwb code 10']);

export const cbsProvincie: FormatDefinition = {
  name: 'cbs_provinciecode',
  locale: 'nl',
  baseType: 'string',
  test: (v) => v.length === 4 && v.startsWith('PV') && v >= 'PV20' && v <= 'PV31' && allDigits(v, 2),
  headerHints: ['provinciecode', 'provincie', 'pv code', 'regiocode'],
  threshold: 0.9,
  description: 'CBS provincie code: PV20 (Groningen) to PV31 (Flevoland).',
};

// --- Rijksdriehoek (RD New, EPSG:28992) -------------------------------------------------------

/** Projected bounds of EPSG:28992. */
const RD_X: [number, number] = [-7000, 300000];
const RD_Y: [number, number] = [289000, 629000];

export const rdX: FormatDefinition = {
  name: 'rd_x',
  locale: 'nl',
  baseType: 'number',
  test: (v) => {
    const n = looseNumber(v);
    // |x| ≤ 180 is left to longitude
    return n !== undefined && n >= RD_X[0] && n <= RD_X[1] && (n > 180 || n < -180);
  },
  headerHints: ['x', 'rd x', 'x rd', 'rdx', 'x coord', 'x coordinaat', 'xcoord', 'rijksdriehoek x'],
  threshold: 0.95,
  requiresHeaderHint: true,
  description: 'Rijksdriehoek (RD New, EPSG:28992) x in metres, -7 000 to 300 000 (|x| > 180).',
};

export const rdY: FormatDefinition = {
  name: 'rd_y',
  locale: 'nl',
  baseType: 'number',
  test: (v) => {
    const n = looseNumber(v);
    return n !== undefined && n >= RD_Y[0] && n <= RD_Y[1];
  },
  headerHints: ['y', 'rd y', 'y rd', 'rdy', 'y coord', 'y coordinaat', 'ycoord', 'rijksdriehoek y'],
  threshold: 0.95,
  requiresHeaderHint: true,
  description: 'Rijksdriehoek (RD New, EPSG:28992) y in metres, 289 000 to 629 000.',
};

export const NL_FORMATS: readonly FormatDefinition[] = [
  postcodeNl,
  bagVerblijfsobject,
  bagLigplaats,
  bagStandplaats,
  bagPand,
  bagNummeraanduiding,
  bagOpenbareRuimte,
  cbsGemeente,
  cbsWijk,
  cbsBuurt,
  cbsProvincie,
  rdX,
  rdY,
];
