/**
 * The `fr` pack: what csv-detective recognises in French public data (and a little more).
 * Codes and names follow the INSEE Code officiel géographique as of 2024 (18 régions since 2016,
 * 101 départements).
 */
import type { FormatDefinition } from '../types.ts';
import { allDigits, fold, isDigit, isValidDate, looseNumber, luhn, nameMatcher, startsWithLetter, stripSpaces } from './helpers.ts';

// --- SIREN / SIRET ----------------------------------------------------------------------------

/** 9 digits (optionally written `123 456 789`) passing the Luhn check. */
export function isSiren(v: string): boolean {
  const s = v.length === 9 ? v : v.length === 11 ? stripSpaces(v) : '';
  return s.length === 9 && allDigits(s) && luhn(s);
}

/** SIREN of La Poste, whose establishments use a digit-sum rule instead of Luhn. */
const LA_POSTE = '356000000';

/**
 * 14 digits (optionally written `123 456 789 00012`): the SIREN part passes Luhn and the whole
 * passes Luhn — except La Poste's establishments (SIREN 356000000), whose SIRET has a digit sum
 * that is a multiple of 5.
 */
export function isSiret(v: string): boolean {
  const s = v.length === 14 ? v : v.length > 14 && v.length <= 17 ? stripSpaces(v) : '';
  if (s.length !== 14 || !allDigits(s)) return false;
  if (s.startsWith(LA_POSTE)) {
    if (luhn(s)) return true;
    let sum = 0;
    for (let i = 0; i < 14; i++) sum += s.charCodeAt(i) - 48;
    return sum % 5 === 0;
  }
  return luhn(s.slice(0, 9)) && luhn(s);
}

export const siren: FormatDefinition = {
  name: 'siren',
  locale: 'fr',
  baseType: 'string',
  test: isSiren,
  headerHints: ['siren', 'num siren', 'numero siren', 'n siren', 'sirene'],
  threshold: 0.9,
  csvDetective: 'siren',
  description: 'SIREN company number: 9 digits with a valid Luhn key.',
};

export const siret: FormatDefinition = {
  name: 'siret',
  locale: 'fr',
  baseType: 'string',
  test: isSiret,
  headerHints: ['siret', 'num siret', 'numero siret', 'n siret'],
  threshold: 0.9,
  csvDetective: 'siret',
  description: 'SIRET establishment number: 14 digits, SIREN and SIRET Luhn keys valid (La Poste: digit sum multiple of 5).',
};

// --- geographic codes -------------------------------------------------------------------------

/** Current départements: code → name. */
export const DEPARTEMENTS: Readonly<Record<string, string>> = {
  '01': 'Ain',
  '02': 'Aisne',
  '03': 'Allier',
  '04': 'Alpes-de-Haute-Provence',
  '05': 'Hautes-Alpes',
  '06': 'Alpes-Maritimes',
  '07': 'Ardèche',
  '08': 'Ardennes',
  '09': 'Ariège',
  '10': 'Aube',
  '11': 'Aude',
  '12': 'Aveyron',
  '13': 'Bouches-du-Rhône',
  '14': 'Calvados',
  '15': 'Cantal',
  '16': 'Charente',
  '17': 'Charente-Maritime',
  '18': 'Cher',
  '19': 'Corrèze',
  '2A': 'Corse-du-Sud',
  '2B': 'Haute-Corse',
  '21': "Côte-d'Or",
  '22': "Côtes-d'Armor",
  '23': 'Creuse',
  '24': 'Dordogne',
  '25': 'Doubs',
  '26': 'Drôme',
  '27': 'Eure',
  '28': 'Eure-et-Loir',
  '29': 'Finistère',
  '30': 'Gard',
  '31': 'Haute-Garonne',
  '32': 'Gers',
  '33': 'Gironde',
  '34': 'Hérault',
  '35': 'Ille-et-Vilaine',
  '36': 'Indre',
  '37': 'Indre-et-Loire',
  '38': 'Isère',
  '39': 'Jura',
  '40': 'Landes',
  '41': 'Loir-et-Cher',
  '42': 'Loire',
  '43': 'Haute-Loire',
  '44': 'Loire-Atlantique',
  '45': 'Loiret',
  '46': 'Lot',
  '47': 'Lot-et-Garonne',
  '48': 'Lozère',
  '49': 'Maine-et-Loire',
  '50': 'Manche',
  '51': 'Marne',
  '52': 'Haute-Marne',
  '53': 'Mayenne',
  '54': 'Meurthe-et-Moselle',
  '55': 'Meuse',
  '56': 'Morbihan',
  '57': 'Moselle',
  '58': 'Nièvre',
  '59': 'Nord',
  '60': 'Oise',
  '61': 'Orne',
  '62': 'Pas-de-Calais',
  '63': 'Puy-de-Dôme',
  '64': 'Pyrénées-Atlantiques',
  '65': 'Hautes-Pyrénées',
  '66': 'Pyrénées-Orientales',
  '67': 'Bas-Rhin',
  '68': 'Haut-Rhin',
  '69': 'Rhône',
  '70': 'Haute-Saône',
  '71': 'Saône-et-Loire',
  '72': 'Sarthe',
  '73': 'Savoie',
  '74': 'Haute-Savoie',
  '75': 'Paris',
  '76': 'Seine-Maritime',
  '77': 'Seine-et-Marne',
  '78': 'Yvelines',
  '79': 'Deux-Sèvres',
  '80': 'Somme',
  '81': 'Tarn',
  '82': 'Tarn-et-Garonne',
  '83': 'Var',
  '84': 'Vaucluse',
  '85': 'Vendée',
  '86': 'Vienne',
  '87': 'Haute-Vienne',
  '88': 'Vosges',
  '89': 'Yonne',
  '90': 'Territoire de Belfort',
  '91': 'Essonne',
  '92': 'Hauts-de-Seine',
  '93': 'Seine-Saint-Denis',
  '94': 'Val-de-Marne',
  '95': "Val-d'Oise",
  '971': 'Guadeloupe',
  '972': 'Martinique',
  '973': 'Guyane',
  '974': 'La Réunion',
  '976': 'Mayotte',
};

/** Current régions (since 2016): code → name. */
export const REGIONS: Readonly<Record<string, string>> = {
  '01': 'Guadeloupe',
  '02': 'Martinique',
  '03': 'Guyane',
  '04': 'La Réunion',
  '06': 'Mayotte',
  '11': 'Île-de-France',
  '24': 'Centre-Val de Loire',
  '27': 'Bourgogne-Franche-Comté',
  '28': 'Normandie',
  '32': 'Hauts-de-France',
  '44': 'Grand Est',
  '52': 'Pays de la Loire',
  '53': 'Bretagne',
  '75': 'Nouvelle-Aquitaine',
  '76': 'Occitanie',
  '84': 'Auvergne-Rhône-Alpes',
  '93': "Provence-Alpes-Côte d'Azur",
  '94': 'Corse',
};

const DEPARTEMENT_CODES = new Set(Object.keys(DEPARTEMENTS));
const REGION_CODES = new Set(Object.keys(REGIONS));

/** `01`–`95` (not `20`), `2A`, `2B`, `971`–`974`, `976` (975 is Saint-Pierre-et-Miquelon, a collectivité). */
const isCodeDepartement = (v: string) => (v.length === 2 || v.length === 3) && DEPARTEMENT_CODES.has(v);

/** First digits of a valid French postcode: 01–95, 971–976 (DOM, incl. Saint-Pierre-et-Miquelon), 980 (Monaco), 986–988 (Pacific). */
function isCodePostal(v: string): boolean {
  if (v.length !== 5 || !allDigits(v)) return false;
  const d = (v.charCodeAt(0) - 48) * 10 + (v.charCodeAt(1) - 48);
  if (d >= 1 && d <= 95) return true;
  const t = d * 10 + (v.charCodeAt(2) - 48);
  return (t >= 971 && t <= 976) || t === 980 || (t >= 986 && t <= 988);
}

/**
 * 2-character département (01–95 but not 20, 2A, 2B) + 3-digit commune, or 971–978 + 2 digits
 * (overseas départements and Saint-Pierre-et-Miquelon, Saint-Barthélemy, Saint-Martin); commune
 * part not all zeros.
 */
function isCodeCommuneInsee(v: string): boolean {
  if (v.length !== 5) return false;
  const c0 = v.charCodeAt(0);
  const c1 = v.charCodeAt(1);
  if (c0 === 50 /* 2 */ && (c1 === 65 || c1 === 66) /* A B */) return allDigits(v, 2) && v.slice(2) !== '000';
  if (!allDigits(v)) return false;
  if (c0 === 57 && c1 === 55 /* 97 */) {
    const t = v.charCodeAt(2) - 48;
    return t >= 1 && t <= 8 && v.slice(3) !== '00';
  }
  const d = (c0 - 48) * 10 + (c1 - 48);
  return d >= 1 && d <= 95 && d !== 20 && v.slice(2) !== '000';
}

export const codePostal: FormatDefinition = {
  name: 'code_postal',
  locale: 'fr',
  baseType: 'string',
  test: isCodePostal,
  headerHints: ['code postal', 'codepostal', 'codes postaux', 'cp', 'postal', 'postcode', 'post code', 'code post'],
  threshold: 0.9,
  requiresHeaderHint: true,
  csvDetective: 'code_postal',
  description: 'French postcode: 5 digits with a valid département prefix (01–95, 971–976, 980, 986–988). Format only, not checked against the La Poste list.',
};

export const codeCommuneInsee: FormatDefinition = {
  name: 'code_commune_insee',
  locale: 'fr',
  baseType: 'string',
  test: isCodeCommuneInsee,
  headerHints: ['code commune', 'code insee', 'insee', 'code commune insee', 'codgeo', 'code geo', 'depcom', 'com', 'code com', 'cog', 'citycode', 'insee com', 'codeinsee'],
  threshold: 0.9,
  requiresHeaderHint: true,
  csvDetective: 'code_commune',
  description: 'INSEE commune code: 5 characters, département (incl. 2A/2B, 971–978) then commune number. Format only, not checked against the COG.',
};

export const codeDepartement: FormatDefinition = {
  name: 'code_departement',
  locale: 'fr',
  baseType: 'string',
  test: isCodeDepartement,
  headerHints: ['departement', 'dep', 'dept', 'dpt', 'code departement', 'code dep', 'num dep', 'numero departement'],
  threshold: 0.9,
  requiresHeaderHint: true,
  csvDetective: 'code_departement',
  description: 'Département code: 01–95, 2A, 2B, 971–974, 976 (two or three characters, leading zero kept).',
};

export const codeRegion: FormatDefinition = {
  name: 'code_region',
  locale: 'fr',
  baseType: 'string',
  test: (v) => v.length === 2 && REGION_CODES.has(v),
  headerHints: ['region', 'reg', 'code region', 'code reg', 'code insee region'],
  threshold: 0.9,
  requiresHeaderHint: true,
  csvDetective: 'code_region',
  description: 'INSEE région code, current list (01–04, 06, 11, 24, 27, 28, 32, 44, 52, 53, 75, 76, 84, 93, 94).',
};

export const departement: FormatDefinition = {
  name: 'departement',
  locale: 'fr',
  baseType: 'string',
  test: nameMatcher([...Object.values(DEPARTEMENTS), 'Réunion', 'Corse du Sud', 'Belfort']),
  headerHints: ['departement', 'dep', 'dept', 'dpt', 'nom departement', 'libelle departement'],
  threshold: 0.9,
  csvDetective: 'departement',
  description: 'Département name, case- and accent-insensitive ("Côte-d\'Or", "cote d or", "SEINE-SAINT-DENIS").',
};

export const region: FormatDefinition = {
  name: 'region',
  locale: 'fr',
  baseType: 'string',
  test: nameMatcher([...Object.values(REGIONS), 'Réunion', 'Centre', 'Région Centre', 'PACA', 'Ile de France']),
  headerHints: ['region', 'reg', 'nom region', 'libelle region'],
  threshold: 0.9,
  csvDetective: 'region',
  description: 'Région name (current 18 régions), case- and accent-insensitive ("Île-de-France", "ILE DE FRANCE").',
};

// --- identifiers ------------------------------------------------------------------------------

const UAI_LETTERS = 'ABCDEFGHJKLMNPRSTUVWXYZ';
const UAI = /^(?:00[1-9]|0[1-8]\d|09[0-5]|97[1-8]|98[0-9]|620|720)\d{4}[A-Z]$/;

/**
 * UAI (ex-RNE) of a school or other education establishment: 3-digit département (620/720 for
 * Corsica, 97x/98x overseas), 4-digit number, and a key letter: the 7-digit number modulo 23,
 * read in the alphabet without I, O and Q.
 */
export function isUai(v: string): boolean {
  if (v.length !== 8 || !UAI.test(v)) return false;
  return UAI_LETTERS.charAt(Number(v.slice(0, 7)) % 23) === v.charAt(7);
}

export const uai: FormatDefinition = {
  name: 'uai',
  locale: 'fr',
  baseType: 'string',
  test: isUai,
  headerHints: ['uai', 'rne', 'code uai', 'numero uai', 'code rne', 'code etablissement', 'numero etablissement', 'codeetab'],
  threshold: 0.9,
  csvDetective: 'uai',
  description: 'UAI education-establishment code: 7 digits and its key letter (checked).',
};

export const codeRna: FormatDefinition = {
  name: 'code_rna',
  locale: 'fr',
  baseType: 'string',
  test: (v) => v.length === 10 && v.charCodeAt(0) === 87 /* W */ && allDigits(v, 1),
  headerHints: ['rna', 'code rna', 'numero rna', 'id rna', 'identifiant association', 'numero association'],
  threshold: 0.9,
  csvDetective: 'code_rna',
  description: 'RNA association number: W followed by 9 digits.',
};

// --- Lambert-93 -------------------------------------------------------------------------------

/** Projected bounds of EPSG:2154 (Lambert-93, metropolitan France). */
const L93_X: [number, number] = [-357823.24, 1313632.36];
const L93_Y: [number, number] = [6037008.69, 7230727.37];

export const lambert93X: FormatDefinition = {
  name: 'lambert93_x',
  locale: 'fr',
  baseType: 'number',
  test: (v) => {
    const n = looseNumber(v);
    // |x| ≤ 180 is left to longitude: a Lambert-93 x that small is off the map of France
    return n !== undefined && n >= L93_X[0] && n <= L93_X[1] && (n > 180 || n < -180);
  },
  headerHints: ['x', 'xl93', 'x93', 'lambx', 'lambert x', 'x lambert', 'coord x', 'coordonnee x', 'longitude', 'lon'],
  threshold: 0.95,
  requiresHeaderHint: true,
  csvDetective: 'longitude_l93',
  description: 'Lambert-93 (EPSG:2154) easting x in metres, within the projection bounds (|x| > 180).',
};

export const lambert93Y: FormatDefinition = {
  name: 'lambert93_y',
  locale: 'fr',
  baseType: 'number',
  test: (v) => {
    const n = looseNumber(v);
    return n !== undefined && n >= L93_Y[0] && n <= L93_Y[1];
  },
  headerHints: ['y', 'yl93', 'y93', 'lamby', 'lambert y', 'y lambert', 'coord y', 'coordonnee y', 'latitude', 'lat'],
  threshold: 0.95,
  requiresHeaderHint: true,
  csvDetective: 'latitude_l93',
  description: 'Lambert-93 (EPSG:2154) northing y in metres, 6 037 008 to 7 230 727.',
};

// --- dates, weekdays, months ------------------------------------------------------------------

const MONTHS = new Map<string, number>([
  ['janvier', 1],
  ['janv', 1],
  ['jan', 1],
  ['fevrier', 2],
  ['fevr', 2],
  ['fev', 2],
  ['mars', 3],
  ['mar', 3],
  ['avril', 4],
  ['avr', 4],
  ['mai', 5],
  ['juin', 6],
  ['juillet', 7],
  ['juil', 7],
  ['aout', 8],
  ['septembre', 9],
  ['sept', 9],
  ['sep', 9],
  ['octobre', 10],
  ['oct', 10],
  ['novembre', 11],
  ['nov', 11],
  ['decembre', 12],
  ['dec', 12],
]);

const WEEKDAYS = new Set(['lundi', 'mardi', 'mercredi', 'jeudi', 'vendredi', 'samedi', 'dimanche', 'lun', 'mar', 'mer', 'jeu', 'ven', 'sam', 'dim']);

const DATE_FR_TEXT = /^(?:([a-z]+) )?(1er|\d{1,2}) ([a-z]+) (\d{4})$/;

/**
 * The ISO date of a French written date: "12 janvier 2024", "1er mars 2024", "lundi 12 févr. 2024",
 * "12-janv-2024" (case and accents ignored); undefined if it is not a real date.
 */
export function parseDateFr(v: string): string | undefined {
  const n = v.length;
  if (n < 10 || n > 32 || !allDigits(v, n - 4) || v.charCodeAt(n - 5) === 47 /* / */) return undefined;
  const m = DATE_FR_TEXT.exec(fold(v));
  if (!m) return undefined;
  if (m[1] !== undefined && !WEEKDAYS.has(m[1])) return undefined;
  const month = MONTHS.get(m[3] as string);
  if (month === undefined) return undefined;
  const day = m[2] === '1er' ? 1 : Number(m[2]);
  const year = Number(m[4]);
  if (!isValidDate(year, month, day)) return undefined;
  return `${m[4]}-${month < 10 ? '0' : ''}${month}-${day < 10 ? '0' : ''}${day}`;
}

export const dateFr: FormatDefinition = {
  name: 'date_fr',
  locale: 'fr',
  baseType: 'string',
  test: (v) => {
    const c = v.charCodeAt(0);
    return (c >= 48 && c <= 57) || (c | 0x20) >= 97 ? parseDateFr(v) !== undefined : false;
  },
  headerHints: ['date', 'jour'],
  threshold: 0.9,
  description: 'Date written out in French ("12 janvier 2024", "1er mars 2024", "lundi 12 févr. 2024"); a real calendar date. Stored as text: read it with parseDateFr.',
};

const DATE_NUMERIC = /^(\d{1,2})([/.-])(\d{1,2})\2(\d{4})$/;

export const dateFrNumeric: FormatDefinition = {
  name: 'date_fr_numeric',
  locale: 'fr',
  baseType: 'date',
  test: (v) => {
    if (v.length < 8 || v.length > 10 || !isDigit(v.charCodeAt(0))) return false;
    const m = DATE_NUMERIC.exec(v);
    return m !== null && isValidDate(Number(m[4]), Number(m[3]), Number(m[1]));
  },
  headerHints: ['date', 'jour'],
  threshold: 0.95,
  description: 'Day-first numeric date jj/mm/aaaa (also with - or .), a real date read day-first: tells the loader the day/month order.',
};

export const jourDeLaSemaine: FormatDefinition = {
  name: 'jour_de_la_semaine',
  locale: 'fr',
  baseType: 'string',
  test: (v) => v.length >= 3 && v.length <= 9 && startsWithLetter(v) && WEEKDAYS.has(fold(v)),
  headerHints: ['jour', 'jour semaine', 'jour de la semaine', 'nomjour', 'nom jour', 'jours'],
  threshold: 0.9,
  csvDetective: 'jour_de_la_semaine',
  description: 'French weekday name or abbreviation (lundi … dimanche, lun. … dim.), case-insensitive.',
};

export const moisDeLAnnee: FormatDefinition = {
  name: 'mois_de_lannee',
  locale: 'fr',
  baseType: 'string',
  test: (v) => v.length >= 3 && v.length <= 10 && startsWithLetter(v) && MONTHS.has(fold(v)),
  headerHints: ['mois', 'month', 'nom mois', 'mois de l annee'],
  threshold: 0.9,
  csvDetective: 'mois_de_lannee',
  description: 'French month name or abbreviation (janvier … décembre, janv., févr.…), case- and accent-insensitive.',
};

const TEL_FR = /^(?:(?:\+|00)33[ .-]?(?:\(0\)[ .-]?)?|0)[1-9](?:[ .-]?\d{2}){4}$/;

export const telFr: FormatDefinition = {
  name: 'tel_fr',
  locale: 'fr',
  baseType: 'string',
  test: (v) => v.length >= 10 && v.length <= 20 && TEL_FR.test(v),
  headerHints: ['tel', 'telephone', 'portable', 'mobile', 'fax', 'numero telephone', 'num tel'],
  threshold: 0.9,
  csvDetective: 'tel_fr',
  description: 'French telephone number: 0 or +33/0033 then 9 digits, optionally grouped by spaces, dots or dashes.',
};

export const FR_FORMATS: readonly FormatDefinition[] = [
  siren,
  siret,
  codePostal,
  codeCommuneInsee,
  codeDepartement,
  codeRegion,
  departement,
  region,
  uai,
  codeRna,
  lambert93X,
  lambert93Y,
  dateFr,
  dateFrNumeric,
  jourDeLaSemaine,
  moisDeLAnnee,
  telFr,
];
