import { describe, expect, it } from 'vitest';
import { parsePipeline } from '../../contract/load.ts';
import { renderReportPage, type ReportPageData } from '../../functions/common/report-html.ts';
import { REPORT_LANGUAGES, REPORT_TEXT, reportLanguage } from '../../functions/common/report-text.ts';

const HOSTILE = '<script>alert(1)</script>';

function data(over: Partial<ReportPageData> = {}): ReportPageData {
  return {
    language: 'en',
    report: {
      report: 'civic-etl load quality report',
      version: 1,
      loadId: 42,
      dataset: 'stations',
      objectKey: `incoming/rail/stations/${HOSTILE}.csv`,
      objectVersion: 'v1',
      receivedAt: '2024-05-01T10:00:00.000Z',
      finishedAt: '2024-05-01T10:00:05.000Z',
      status: 'loaded',
      rows: { read: 12345, loaded: 12000, quarantined: 345 },
      byRule: [
        {
          rule: 'type',
          values: 400,
          rows: 345,
          columns: [{ column: `col ${HOSTILE}`, values: 400 }],
          examples: [{ line: 7, column: `col ${HOSTILE}`, value: HOSTILE, reason: `not a number: ${HOSTILE}` }],
        },
      ],
      unmapped: [{ column: 'kind', map: 'kinds', policy: 'quarantine', rows: 3, distinct: 1, values: [{ value: HOSTILE, rows: 3 }] }],
      schemaChanges: [{ change: 'added', column: HOSTILE, from: null, to: 'text', policy: 'evolve', action: 'added', type: 'text' }],
      readNotes: [`note ${HOSTILE}`],
    },
    examples: [{ line: 7, column: `col ${HOSTILE}`, value: HOSTILE, reason: `not a number: ${HOSTILE}`, rule: 'type' }],
    valuesTotal: 400,
    structure: [
      { key: 'encoding', value: 'utf-8' },
      { key: 'delimiter', value: HOSTILE },
    ],
    columns: [{ name: HOSTILE, type: 'integer', format: null, score: 1, missing: 0, distinct: 10, min: HOSTILE, max: 9, histogram: [{ from: HOSTILE, to: 2, count: 3 }] }],
    map: { loaded: [{ type: 'Point', coordinates: [4.35, 50.85] }], loadedTotal: 1, rejected: [{ line: 7, geometry: { type: 'Point', coordinates: [4.4, 50.9] } }], rejectedReadable: 1 },
    generatedAt: '2024-05-01T10:00:06.000Z',
    ...over,
  };
}

describe('the HTML quality report', () => {
  it('escapes every value from the file: a <script> in a cell, a column name or a file name stays text', () => {
    const page = renderReportPage(data());
    expect(page).not.toContain('<script');
    expect(page).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    // nothing but the page's own markup: no script, no link, no remote source
    expect(page).not.toMatch(/<(script|link|iframe|img|object|embed)\b/i);
    expect(page).not.toMatch(/\b(src|href)=/i);
  });

  it('writes the counts as people of the language write them', () => {
    const en = renderReportPage(data());
    const fr = renderReportPage(data({ language: 'fr' }));
    const nl = renderReportPage(data({ language: 'nl' }));
    expect(en).toContain('>12,345<');
    expect(fr).toContain(`>${(12345).toLocaleString('fr')}<`);
    expect((12345).toLocaleString('fr')).toMatch(/^12\s345$/u);
    expect(nl).toContain('>12.345<');
    expect(fr).toContain('<html lang="fr">');
    expect(fr).toContain('Rapport de qualité');
    expect(nl).toContain('Kwaliteitsrapport');
  });

  it('has every text in every language, each one filled in', () => {
    const keys = (o: object, prefix = ''): string[] => Object.entries(o).flatMap(([k, v]) => (typeof v === 'object' && v !== null ? keys(v as object, `${prefix}${k}.`) : [`${prefix}${k}`]));
    const english = keys(REPORT_TEXT.en).sort();
    for (const lang of REPORT_LANGUAGES) {
      expect(keys(REPORT_TEXT[lang]).sort(), lang).toEqual(english);
      for (const [k, v] of Object.entries(REPORT_TEXT[lang])) {
        if (typeof v === 'string') expect(v.trim(), `${lang}.${k}`).not.toBe('');
        if (typeof v === 'function') {
          // (text) or (count…, format)
          const fn = v as (...a: unknown[]) => string;
          const args = fn.length === 1 ? ['x'] : [...Array.from({ length: fn.length - 1 }, () => 3), (n: number) => String(n)];
          expect(fn(...args).trim(), `${lang}.${k}`).not.toBe('');
        }
      }
    }
    // translated, not copied: the sentences differ from English
    for (const lang of ['fr', 'nl'] as const) {
      expect(REPORT_TEXT[lang].summaryFailed).not.toBe(REPORT_TEXT.en.summaryFailed);
      expect(REPORT_TEXT[lang].rejects).not.toBe(REPORT_TEXT.en.rejects);
    }
    expect(reportLanguage('fr')).toBe('fr');
    expect(reportLanguage(undefined)).toBe('en');
    expect(reportLanguage('de')).toBe('en');
  });

  it('writes the bounds of a histogram as the language writes numbers', () => {
    const columns = [
      {
        name: 'latitude',
        type: 'number',
        format: null,
        score: 1,
        missing: 0,
        distinct: 2,
        min: 41.6527,
        max: 42.0143,
        histogram: [
          { from: 41.6527, to: 41.8, count: 3 },
          { from: 41.8, to: 42.0143, count: 5 },
        ],
      },
    ];
    const fr = renderReportPage(data({ language: 'fr', columns }));
    expect(fr).toContain('>41,6527</text>');
    expect(fr).toContain('>42,0143</text>');
    expect(renderReportPage(data({ language: 'en', columns }))).toContain('>41.6527</text>');
  });

  it('does not give two Dutch headings the same word for a line and a rule', () => {
    expect(REPORT_TEXT.nl.line).not.toBe(REPORT_TEXT.nl.rule);
    expect(REPORT_TEXT.fr.line).not.toBe(REPORT_TEXT.fr.rule);
  });

  it('names the file, line and column of a failed load', () => {
    const page = renderReportPage(
      data({
        report: {
          ...data().report,
          status: 'failed',
          rows: { read: null, loaded: null, quarantined: null },
          byRule: [],
          error: { message: 'unclosed quote', file: 'incoming/a/b/c.csv', line: 1234, column: 'name' },
        },
        examples: [],
        valuesTotal: 0,
      }),
    );
    expect(page).toMatch(/<dd class="error-line">1,234<\/dd>/);
    expect(page).toContain('<dd class="error-column">name</dd>');
    expect(page).toContain('unclosed quote');
    expect(page).toContain(REPORT_TEXT.en.summaryFailed);
  });

  it('draws a map with both layers and a histogram', () => {
    const page = renderReportPage(data());
    expect(page.match(/class="feature"/g)).toHaveLength(2);
    expect(page).toContain('data-layer="rejected"');
    expect(page).toContain('class="bin"');
  });
});

describe("a supplier's language", () => {
  const pipeline = (language: string) =>
    parsePipeline({ project: 'p', suppliers: [{ name: 'city', language }], datasets: [{ name: 'd', source: { type: 'upload', supplier: 'city' } }] } as Parameters<typeof parsePipeline>[0]);
  it('is one the report is written in: English, French or Dutch', () => {
    expect(pipeline('nl').suppliers[0]!.language).toBe('nl');
    expect(() => pipeline('de')).toThrow(/language/);
  });
});
