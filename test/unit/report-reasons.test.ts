import { describe, expect, it } from 'vitest';
import { localizeReason, REASON_KINDS } from '../../functions/common/report-reasons.ts';
import { renderReportPage, type ReportPageData } from '../../functions/common/report-html.ts';
import { REPORT_LANGUAGES, REPORT_TEXT } from '../../functions/common/report-text.ts';

const NBSP = '\u00a0';
const fr = (rule: string, reason: string, value: string | null = null) => localizeReason('fr', { rule, reason, value });
const nl = (rule: string, reason: string, value: string | null = null) => localizeReason('nl', { rule, reason, value });

/**
 * Each template a clean step writes (functions/clean), with a value as the quarantine stores it,
 * and what a French and a Dutch reader read. Inputs are the English texts the clean step writes;
 * the integration test (report.test.ts) checks those of a real load.
 */
const CASES: { rule: string; value: string | null; en: string; fr: string; nl: string }[] = [
  { rule: 'required', value: null, en: 'required value is missing', fr: 'une valeur obligatoire manque', nl: 'een verplichte waarde ontbreekt' },
  {
    rule: 'null',
    value: 'NULL',
    en: 'required value is missing (null token NULL)',
    fr: 'une valeur obligatoire manque (NULL compte comme vide)',
    nl: 'een verplichte waarde ontbreekt (NULL geldt als leeg)',
  },
  { rule: 'type', value: 'abc', en: 'not a valid integer: abc', fr: `n'est pas un entier valide${NBSP}: abc`, nl: 'geen geldig geheel getal: abc' },
  { rule: 'type', value: 'x', en: 'not a valid boolean: x', fr: `n'est pas un booléen valide${NBSP}: x`, nl: 'geen geldige booleaanse waarde: x' },
  { rule: 'type', value: 'POINT(', en: 'not a valid geometry: POINT(', fr: `n'est pas une géométrie valide${NBSP}: POINT(`, nl: 'geen geldige geometrie: POINT(' },
  { rule: 'type', value: '50,x', en: 'not a valid latitude: 50,x', fr: `n'est pas une latitude valide${NBSP}: 50,x`, nl: 'geen geldige breedtegraad: 50,x' },
  {
    rule: 'type',
    value: '12.345.678.901',
    en: 'not an integer in the form 1.234 (or out of range): 12.345.678.901',
    fr: `n'est pas un entier de la forme 1.234 (ou hors limites)${NBSP}: 12.345.678.901`,
    nl: 'geen geheel getal in de vorm 1.234 (of buiten bereik): 12.345.678.901',
  },
  { rule: 'type', value: '1,2,3', en: 'not a number in the form 1 234,5: 1,2,3', fr: `n'est pas un nombre de la forme 1 234,5${NBSP}: 1,2,3`, nl: 'geen getal in de vorm 1 234,5: 1,2,3' },
  {
    rule: 'type',
    value: '31-12-2020',
    en: 'not a date in dd/mm/yyyy or an Excel serial date: 31-12-2020',
    fr: `n'est pas une date au format dd/mm/yyyy ni une date sérielle Excel${NBSP}: 31-12-2020`,
    nl: 'geen datum volgens dd/mm/yyyy en geen Excel-datumgetal: 31-12-2020',
  },
  {
    rule: 'type',
    value: '12:30',
    en: 'not a timestamp in dd.mm.yyyy hh:mi: 12:30',
    fr: `n'est pas un horodatage au format dd.mm.yyyy hh:mi${NBSP}: 12:30`,
    nl: 'geen tijdstip volgens dd.mm.yyyy hh:mi: 12:30',
  },
  {
    rule: 'type',
    value: 'soon',
    en: 'not a date (yyyy-mm-dd) or an Excel serial date: soon',
    fr: `n'est pas une date (aaaa-mm-jj) ni une date sérielle Excel${NBSP}: soon`,
    nl: 'geen datum (jjjj-mm-dd) en geen Excel-datumgetal: soon',
  },
  // a pattern with ": " in it, and a value with one: the value is known, so the pattern is whole
  { rule: 'pattern', value: 'a: b', en: 'does not match the pattern x: [0-9]+: a: b', fr: `ne respecte pas le motif x: [0-9]+${NBSP}: a: b`, nl: 'voldoet niet aan het patroon x: [0-9]+: a: b' },
  {
    rule: 'enum',
    value: 'maybe',
    en: 'not one of "open", "closed", 3, …: maybe',
    fr: `ne fait pas partie des valeurs autorisées ("open", "closed", 3, …)${NBSP}: maybe`,
    nl: 'niet een van de toegestane waarden ("open", "closed", 3, …): maybe',
  },
  { rule: 'range', value: '10.25', en: 'not between -0.5 and 10.2: 10.25', fr: `n'est pas entre -0,5 et 10,2${NBSP}: 10.25`, nl: 'niet tussen -0,5 en 10,2: 10.25' },
  { rule: 'range', value: '12', en: 'below the minimum 15000: 12', fr: `inférieur au minimum ${(15000).toLocaleString('fr')}${NBSP}: 12`, nl: 'onder het minimum 15.000: 12' },
  { rule: 'range', value: '2031-01-01', en: 'above the maximum 2030-12-31: 2031-01-01', fr: `supérieur au maximum 2030-12-31${NBSP}: 2031-01-01`, nl: 'boven het maximum 2030-12-31: 2031-01-01' },
  { rule: 'range', value: '95', en: 'latitude out of range: 95', fr: `latitude hors limites${NBSP}: 95`, nl: 'breedtegraad buiten bereik: 95' },
  { rule: 'reference', value: '99', en: 'not in districts.code: 99', fr: `absente de districts.code${NBSP}: 99`, nl: 'staat niet in districts.code: 99' },
  { rule: 'map', value: 'Zz', en: 'not in value map "status": Zz', fr: `absente de la table de correspondance «${NBSP}status${NBSP}»${NBSP}: Zz`, nl: 'staat niet in waardetabel "status": Zz' },
  {
    rule: 'valid',
    value: 'POLYGON((0 0,1 1,1 0,0 1,0 0))',
    en: 'invalid geometry: Self-intersection[0.5 0.5]',
    fr: `géométrie invalide${NBSP}: auto-intersection (au point 0.5 0.5)`,
    nl: 'ongeldige geometrie: zelfdoorsnijding (bij punt 0.5 0.5)',
  },
  { rule: 'valid', value: 'POLYGON((', en: 'invalid geometry: unreadable', fr: `géométrie invalide${NBSP}: illisible`, nl: 'ongeldige geometrie: onleesbaar' },
  {
    rule: 'unique',
    value: 'a@b.be',
    en: 'duplicate value: same email as line 12345',
    fr: `valeur en double${NBSP}: même email qu'à la ligne ${(12345).toLocaleString('fr')}`,
    nl: 'dubbele waarde: zelfde email als regel 12.345',
  },
  {
    rule: 'unique',
    value: 'a@b.be',
    en: 'value already in the table (load 17, line 4)',
    fr: 'valeur déjà présente dans la table (chargement 17, ligne 4)',
    nl: 'waarde staat al in de tabel (lading 17, regel 4)',
  },
  { rule: 'unique', value: '7', en: 'key already in the table (load 17, line 4)', fr: 'clé déjà présente dans la table (chargement 17, ligne 4)', nl: 'sleutel staat al in de tabel (lading 17, regel 4)' },
  { rule: 'unique', value: '7, 2024', en: 'duplicate key: same id, year as line 2', fr: `clé en double${NBSP}: même id, year qu'à la ligne 2`, nl: 'dubbele sleutel: zelfde id, year als regel 2' },
  {
    rule: 'dedupe',
    value: '7',
    en: 'duplicate key: same id as line 9, which is kept (the last by updated, version)',
    fr: `clé en double${NBSP}: même id qu'à la ligne 9, qui est conservée (la dernière dans l'ordre de updated, version)`,
    nl: 'dubbele sleutel: zelfde id als regel 9, die behouden blijft (de laatste in de volgorde van updated, version)',
  },
  {
    rule: 'dedupe',
    value: '7',
    en: 'duplicate key: same id as line 3, which is kept (the first in the file)',
    fr: `clé en double${NBSP}: même id qu'à la ligne 3, qui est conservée (la première du fichier)`,
    nl: 'dubbele sleutel: zelfde id als regel 3, die behouden blijft (de eerste in het bestand)',
  },
  {
    rule: 'superseded',
    value: '7',
    en: 'a newer object (load 31) already brought this key',
    fr: 'un fichier plus récent (chargement 31) a déjà apporté cette clé',
    nl: 'een nieuwer bestand (lading 31) bracht deze sleutel al',
  },
  {
    rule: 'superseded',
    value: '7',
    en: "a newer object (load 31) changed this record's key",
    fr: 'un fichier plus récent (chargement 31) a changé la clé de cet enregistrement',
    nl: 'een nieuwer bestand (lading 31) veranderde de sleutel van dit record',
  },
  {
    rule: 'deleted',
    value: '7',
    en: 'a newer object (load 31) deleted this record',
    fr: 'un fichier plus récent (chargement 31) a supprimé cet enregistrement',
    nl: 'een nieuwer bestand (lading 31) heeft dit record verwijderd',
  },
  {
    rule: 'parent',
    value: '4',
    en: 'its parent row (schools 4) was not loaded: not a valid integer: abc',
    fr: `sa ligne parente (schools 4) n'a pas été chargée${NBSP}: n'est pas un entier valide${NBSP}: abc`,
    nl: 'de bovenliggende rij (schools 4) is niet geladen: geen geldig geheel getal: abc',
  },
  {
    rule: 'parent',
    value: '4',
    en: 'its parent row (schools 4) was not loaded: not in the parent table',
    fr: `sa ligne parente (schools 4) n'a pas été chargée${NBSP}: absente de la table parente`,
    nl: 'de bovenliggende rij (schools 4) is niet geladen: staat niet in de bovenliggende tabel',
  },
  {
    rule: 'deleted',
    value: '4',
    en: 'its parent row (schools 4) was not loaded: a newer object (load 8) deleted this record',
    fr: `sa ligne parente (schools 4) n'a pas été chargée${NBSP}: un fichier plus récent (chargement 8) a supprimé cet enregistrement`,
    nl: 'de bovenliggende rij (schools 4) is niet geladen: een nieuwer bestand (lading 8) heeft dit record verwijderd',
  },
  {
    rule: 'schema',
    value: 'x',
    en: 'column "note" is not in the clean table (new in this file; drift policy quarantine)',
    fr: `la colonne «${NBSP}note${NBSP}» n'est pas dans la table nettoyée (nouvelle dans ce fichier${NBSP}; politique de changement de schéma${NBSP}: quarantaine)`,
    nl: 'kolom "note" staat niet in de opgeschoonde tabel (nieuw in dit bestand; beleid bij schemawijziging: quarantaine)',
  },
  {
    rule: 'schema',
    value: 'x',
    en: 'column "naam" is not in the clean table; it looks like a rename of "name" (same place, same type), which the drift policy quarantine does not apply',
    fr: `la colonne «${NBSP}naam${NBSP}» n'est pas dans la table nettoyée${NBSP}; elle semble être la colonne «${NBSP}name${NBSP}» renommée (même place, même type), ce que la politique de changement de schéma «${NBSP}quarantaine${NBSP}» n'applique pas`,
    nl: 'kolom "naam" staat niet in de opgeschoonde tabel; het lijkt erop dat "name" is hernoemd (zelfde plaats, zelfde type), wat het beleid bij schemawijziging (quarantaine) niet toepast',
  },
  {
    rule: 'schema',
    value: '1.5',
    en: 'column "n" is integer in the clean table; not a valid integer: 1.5',
    fr: `la colonne «${NBSP}n${NBSP}» est de type integer dans la table nettoyée${NBSP}; cette valeur n'est pas un entier valide${NBSP}: 1.5`,
    nl: 'kolom "n" is van het type integer in de opgeschoonde tabel; deze waarde is geen geldig geheel getal: 1.5',
  },
  {
    rule: 'schema',
    value: '0 0',
    en: 'geometry column "geom" is geometry(Point,4326) in the clean table; this geometry is a LineString (drift policy quarantine)',
    fr: `la colonne géométrique «${NBSP}geom${NBSP}» est de type geometry(Point,4326) dans la table nettoyée${NBSP}; cette géométrie est de type LineString (politique de changement de schéma${NBSP}: quarantaine)`,
    nl: 'geometriekolom "geom" is van het type geometry(Point,4326) in de opgeschoonde tabel; deze geometrie is van het type LineString (beleid bij schemawijziging: quarantaine)',
  },
];

describe("a quarantined value's reason in the report's language", () => {
  it.each(CASES)('$rule: $en', ({ rule, value, en, fr: french, nl: dutch }) => {
    expect(fr(rule, en, value)).toBe(french);
    expect(nl(rule, en, value)).toBe(dutch);
    expect(localizeReason('en', { rule, reason: en, value })).toBe(en);
  });

  it('covers every rule the clean step quarantines a row with, each by at least one case', () => {
    expect(Object.keys(REASON_KINDS).sort()).toEqual(['dedupe', 'deleted', 'enum', 'map', 'null', 'parent', 'pattern', 'range', 'reference', 'required', 'schema', 'superseded', 'type', 'unique', 'valid']);
    for (const rule of Object.keys(REASON_KINDS))
      expect(
        CASES.some((c) => c.rule === rule),
        rule,
      ).toBe(true);
  });

  it('quotes the value of the row: a value cut to 80 characters in the reason is still known', () => {
    const long = `${'x'.repeat(150)}`;
    expect(fr('type', `not a valid date: ${'x'.repeat(80)}`, long)).toBe(`n'est pas une date valide${NBSP}: ${'x'.repeat(80)}`);
    // an empty value quotes as nothing
    expect(fr('type', 'not a valid date: ', null)).toBe(`n'est pas une date valide${NBSP}: `);
  });

  it('keeps the English reason of what it does not understand, never dropping or garbling it', () => {
    // a rule it does not know
    expect(fr('frobnicate', 'not a valid integer: abc', 'abc')).toBe('not a valid integer: abc');
    // a template of another rule than the row's
    expect(fr('enum', 'not a valid integer: abc', 'abc')).toBe('not a valid integer: abc');
    // a value other than the row's: the reason is not what the clean step wrote for it
    expect(fr('pattern', 'does not match the pattern [0-9]+: abc', 'abd')).toBe('does not match the pattern [0-9]+: abc');
    // a reason the report cut short
    expect(fr('pattern', 'does not match the pattern [0-9]+: ab…', 'abc')).toBe('does not match the pattern [0-9]+: ab…');
    // a type, a coordinate or a GEOS message it has no words for
    expect(fr('type', 'not a valid uuid: abc', 'abc')).toBe('not a valid uuid: abc');
    expect(fr('range', 'altitude out of range: 9', '9')).toBe('altitude out of range: 9');
    expect(fr('valid', 'invalid geometry: Something new[1 2]', 'x')).toBe('invalid geometry: Something new[1 2]');
    // a parent's reason read two ways (its value is not known): kept whole
    const twoWays = 'its parent row (schools 4) was not loaded: does not match the pattern a: b: c';
    expect(fr('parent', twoWays, '4')).toBe(twoWays);
    // a parent's reason it does not understand: the child's stays English too, not half translated
    const unknown = 'its parent row (schools 4) was not loaded: something else';
    expect(fr('parent', unknown, '4')).toBe(unknown);
  });

  it('has the words of every type, kind, coordinate and GEOS message in every language', () => {
    for (const lang of REPORT_LANGUAGES) {
      const r = REPORT_TEXT[lang].reason_;
      for (const key of ['notValid_', 'kind_', 'coordinate_', 'geometry_'] as const) expect(Object.keys(r[key]).sort(), `${lang}.${key}`).toEqual(Object.keys(REPORT_TEXT.en.reason_[key]).sort());
    }
  });

  it('is rendered in the example table of a French page, escaped like every value from the file', () => {
    const hostile = '<script>alert(1)</script>';
    const data: ReportPageData = {
      language: 'fr',
      report: {
        report: 'civic-etl load quality report',
        version: 1,
        loadId: 1,
        dataset: 'd',
        objectKey: 'incoming/s/d/f.csv',
        objectVersion: 'v1',
        receivedAt: '2024-05-01T10:00:00.000Z',
        finishedAt: '2024-05-01T10:00:05.000Z',
        status: 'loaded',
        rows: { read: 3, loaded: 1, quarantined: 2 },
        byRule: [
          { rule: 'pattern', values: 1, rows: 1, columns: [{ column: 'cp', values: 1 }], examples: [] },
          { rule: 'custom', values: 1, rows: 1, columns: [{ column: 'cp', values: 1 }], examples: [] },
        ],
      },
      examples: [
        { line: 2, column: 'cp', value: hostile, reason: `does not match the pattern [0-9]{4}: ${hostile}`, rule: 'pattern' },
        { line: 3, column: 'cp', value: 'x', reason: 'some other reason', rule: 'custom' },
      ],
      valuesTotal: 2,
      structure: [],
      columns: [],
      generatedAt: '2024-05-01T10:00:06.000Z',
    };
    const page = renderReportPage(data);
    expect(page).not.toContain('<script');
    expect(page).toContain(`<td class="reason">ne respecte pas le motif [0-9]{4}${NBSP}: &lt;script&gt;alert(1)&lt;/script&gt;</td>`);
    expect(page).toContain('<td class="reason">some other reason</td>');
    // the rule's meaning is in French too
    expect(page).toContain(`<td>${REPORT_TEXT.fr.rule_.pattern}</td>`);
  });
});
