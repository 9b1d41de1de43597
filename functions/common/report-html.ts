/**
 * The HTML quality report a supplier opens (`reports/<supplier>/<dataset>/<file>.report.html`):
 * one self-contained page — no script, no font, no request (html.ts's policy) — drawn from a
 * plain object that report-page.ts gathers. Rendering is a pure function of that object, so it
 * is tested without a database, and nothing reaches the page unescaped.
 */
import { formatNumber, html, page, type Html } from './html.ts';
import type { ReportExample, SupplierReport } from './report.ts';
import { localizeReason } from './report-reasons.ts';
import { countIn, REPORT_TEXT, type ReportLanguage, type ReportText } from './report-text.ts';
import { barChart, histogram, mapSvg, type Bin, type Geometry } from './svg.ts';

/** One column as detected and profiled (etl.catalog.columns), with the distribution of the rows loaded. */
export interface ReportColumn {
  name: string;
  type: string;
  format: string | null;
  /** Confidence of the format (or type) in [0, 1]. */
  score: number | null;
  missing: number | null;
  distinct: number | null;
  distinctCapped?: boolean;
  min?: number | string;
  max?: number | string;
  /** Bins of the loaded rows' values (numbers, dates): at most 12. */
  histogram?: Bin[];
}

/** A sample of the load's geometries, drawn on the map; the totals are exact. */
export interface ReportMap {
  /** Loaded features (lon/lat), at most a couple of thousand. */
  loaded: Geometry[];
  /** Features this load brought with a geometry. */
  loadedTotal: number;
  /** Set-aside rows whose location could be read (lon/lat), with their line. */
  rejected: { line: number; geometry: Geometry }[];
  /** Set-aside rows whose location could be read. */
  rejectedReadable: number;
}

/** Everything the page shows: the supplier's copy of the report, and what was gathered beside it. */
export interface ReportPageData {
  language: ReportLanguage;
  report: SupplierReport;
  /** The first refused values in file order (a sample; the counts in `report` are exact). */
  examples: (ReportExample & { rule: string })[];
  /** Refused values in all (rows can have several). */
  valuesTotal: number;
  /** How the file is written: label key (ReportText.structure_) and value, in reading order. */
  structure: { key: string; value: string | number | boolean }[];
  columns: ReportColumn[];
  map?: ReportMap;
  /** ISO 8601: when the page was written. */
  generatedAt: string;
}

const CSS = `
.summary{font-size:1.05em;margin:.6em 0}
.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:.4em 0 .8em;font-size:.92em}.meta dt{color:var(--muted)}.meta dd{margin:0}
.card.bad .n{color:var(--bad)}.card.ok .n{color:var(--ok)}
.charts{display:flex;flex-wrap:wrap;gap:8px 32px}.charts figure{margin:0}.charts figcaption{font-weight:600;margin:.3em 0}
td.value{font-family:ui-monospace,"DejaVu Sans Mono",monospace;word-break:break-all;max-width:24em}
td.empty{color:var(--muted);font-style:italic}
.profile td{vertical-align:middle}
footer{margin-top:2em;color:var(--muted);font-size:.85em}
`;

const DATE_TIME: Intl.DateTimeFormatOptions = { dateStyle: 'medium', timeStyle: 'short', timeZone: 'UTC' };

/** The whole page, in the report's language. */
export function renderReportPage(data: ReportPageData): string {
  const t = REPORT_TEXT[data.language];
  const lang = data.language;
  const f = countIn(lang);
  const r = data.report;
  const file = r.objectKey.split('/').at(-1) ?? r.objectKey;
  const when = (iso: string | null) => (iso ? new Date(iso).toLocaleString(lang, DATE_TIME) : t.notYet);
  const status = t.status[r.status] ?? r.status;
  const body = html`
    <h1>${t.title} — <span class="mono">${file}</span> <span class="status ${r.status}" data-status="${r.status}">${status}</span></h1>
    <p class="muted">${t.intro(r.objectKey)}</p>
    <dl class="meta">
      <dt>${t.dataset}</dt><dd>${r.dataset ?? '—'}</dd>
      <dt>${t.load}</dt><dd>${r.loadId}</dd>
      <dt>${t.version}</dt><dd class="mono">${r.objectVersion}</dd>
      <dt>${t.received}</dt><dd>${when(r.receivedAt)}</dd>
      <dt>${t.finished}</dt><dd>${when(r.finishedAt)}</dd>
    </dl>
    ${cards(data, t)}
    <p class="summary">${summary(r, t, f)}</p>
    ${r.error && errorBlock(r.error, r.status, t, f)}
    ${rejects(data, t)}
    ${unmapped(r, t, f)}
    ${schemaChanges(r, t, f)}
    ${r.readNotes?.length ? html`<h2>${t.readNotes}</h2><ul class="notes">${r.readNotes.map((n) => html`<li>${n}</li>`)}</ul>` : null}
    ${data.map && mapSection(data.map, t, f)}
    ${structure(data, t, f)}
    ${profile(data, t, lang)}
    <footer>${t.footer(new Date(data.generatedAt).toLocaleString(lang, DATE_TIME))}</footer>`;
  return page({ title: `${t.title} — ${file}`, lang, body, css: CSS });
}

function cards(data: ReportPageData, t: ReportText): Html {
  const { read, loaded, quarantined } = data.report.rows;
  const card = (name: string, cls: string, n: number | null, label: string) =>
    html`<div class="card ${cls}" data-card="${name}"><div class="n">${n === null ? '—' : formatNumber(n, data.language)}</div><div class="l">${label}</div></div>`;
  return html`<div class="cards">${card('read', '', read, t.read)}${card('loaded', 'ok', loaded, t.loaded)}${card('quarantined', 'bad', quarantined, t.quarantined)}${
    data.valuesTotal > 0 ? card('values', '', data.valuesTotal, t.values) : null
  }</div>`;
}

function summary(r: SupplierReport, t: ReportText, f: (n: number) => string): string {
  if (r.status === 'loaded') return t.summaryLoaded(r.rows.loaded ?? 0, r.rows.read ?? 0, r.rows.quarantined ?? 0, f);
  if (r.status === 'failed') return t.summaryFailed;
  if (r.status === 'skipped') return t.summarySkipped;
  return t.summaryWaiting;
}

function errorBlock(e: NonNullable<SupplierReport['error']>, status: string, t: ReportText, f: (n: number) => string): Html {
  return html`<div class="error" role="alert">
    <strong>${status === 'skipped' ? t.reason : t.error}</strong>
    <dl class="meta"><dt>${t.file}</dt><dd class="mono">${e.file}</dd>${e.line !== null ? html`<dt>${t.line}</dt><dd class="error-line">${f(e.line)}</dd>` : null}${
      e.column ? html`<dt>${t.column}</dt><dd class="error-column">${e.column}</dd>` : null
    }</dl>
    <p class="mono error-message">${e.message}</p></div>`;
}

/** A refused value as a cell: the value, or the word for empty. */
const valueCell = (value: string | null, t: ReportText) => (value === null || value === '' ? html`<td class="value empty">${t.empty}</td>` : html`<td class="value">${value}</td>`);

function rejects(data: ReportPageData, t: ReportText): Html | null {
  const r = data.report;
  if (r.byRule.length === 0) return null;
  const f = countIn(data.language);
  const byColumn = new Map<string, number>();
  for (const rule of r.byRule) for (const c of rule.columns) byColumn.set(c.column, (byColumn.get(c.column) ?? 0) + c.values);
  const columnBars = [...byColumn].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).slice(0, 15);
  const meaning = (rule: string) => t.rule_[rule] ?? '';
  return html`<h2 id="rejects">${t.rejects}</h2>
    <div class="charts">
      <figure class="by-rule"><figcaption>${t.byRule}</figcaption>${barChart(
        r.byRule.map((x) => ({ label: x.rule, value: x.rows, title: `${x.rule} (${meaning(x.rule)}): ${f(x.rows)}` })),
        { width: 480, format: f, label: t.byRule },
      )}</figure>
      <figure class="by-column"><figcaption>${t.byColumn}</figcaption>${barChart(
        columnBars.map(([label, value]) => ({ label, value })),
        { width: 480, format: f, color: '#9a6700', label: t.byColumn },
      )}</figure>
    </div>
    <table class="rules"><thead><tr><th>${t.rule}</th><th>${t.meaning}</th><th class="num">${t.rows}</th><th class="num">${t.valuesHead}</th><th>${t.columns}</th></tr></thead><tbody>
    ${r.byRule.map(
      (x) =>
        html`<tr data-rule="${x.rule}"><td><code>${x.rule}</code></td><td>${meaning(x.rule)}</td><td class="num">${f(x.rows)}</td><td class="num">${f(x.values)}</td><td>${x.columns.map(
          (c, i) => html`${i > 0 ? ', ' : ''}${c.column} (${f(c.values)})`,
        )}</td></tr>`,
    )}
    </tbody></table>
    <h3>${t.examples}</h3>
    <p class="muted">${t.examplesNote(data.examples.length, data.valuesTotal, f)}</p>
    ${exampleTable(data.examples.slice(0, EXAMPLES_SHOWN), data.language, t, f)}
    ${
      data.examples.length > EXAMPLES_SHOWN
        ? html`<details class="more-examples"><summary>${t.moreExamples(data.examples.length - EXAMPLES_SHOWN, f)}</summary>${exampleTable(data.examples.slice(EXAMPLES_SHOWN), data.language, t, f)}</details>`
        : null
    }`;
}

/** Example lines shown before the rest is folded away. */
const EXAMPLES_SHOWN = 12;

/** The example lines; each reason in the report's language (report-reasons.ts), the stored English one where it is not understood. */
function exampleTable(examples: ReportPageData['examples'], lang: ReportLanguage, t: ReportText, f: (n: number) => string): Html {
  return html`<table class="examples"><thead><tr><th class="num">${t.line}</th><th>${t.column}</th><th>${t.value}</th><th>${t.rule}</th><th>${t.reason}</th></tr></thead><tbody>
    ${examples.map(
      (e) =>
        html`<tr class="example" data-line="${e.line}"><td class="num line">${f(e.line)}</td><td>${e.column}</td>${valueCell(e.value, t)}<td><code>${e.rule}</code></td><td class="reason">${localizeReason(lang, e)}</td></tr>`,
    )}
    </tbody></table>`;
}

function unmapped(r: SupplierReport, t: ReportText, f: (n: number) => string): Html | null {
  if (!r.unmapped?.length) return null;
  return html`<h2>${t.unmapped}</h2><table class="unmapped"><thead><tr><th>${t.column}</th><th>${t.map}</th><th>${t.policy}</th><th class="num">${t.rows}</th><th class="num">${t.distinctValues}</th><th>${t.valuesHead}</th></tr></thead><tbody>
    ${r.unmapped.map(
      (u) =>
        html`<tr><td>${u.column}</td><td>${u.map ?? ''}</td><td>${u.policy ? (t.policy_[u.policy] ?? u.policy) : ''}</td><td class="num">${u.rows !== undefined ? f(u.rows) : ''}</td><td class="num">${
          u.distinct !== undefined ? f(u.distinct) : ''
        }</td><td>${u.values.map((v, i) => html`${i > 0 ? ', ' : ''}<code>${v.value}</code> (${f(v.rows)})`)}</td></tr>`,
    )}</tbody></table>`;
}

function schemaChanges(r: SupplierReport, t: ReportText, f: (n: number) => string): Html | null {
  if (!r.schemaChanges?.length) return null;
  return html`<h2>${t.schemaChanges}</h2><table class="schema-changes"><thead><tr><th>${t.column}</th><th>${t.change}</th><th>${t.from}</th><th>${t.to}</th><th>${t.action}</th></tr></thead><tbody>
    ${r.schemaChanges.map(
      (c) =>
        html`<tr><td>${c.column}</td><td>${t.change_[c.change] ?? c.change}</td><td>${c.from ?? ''}</td><td>${c.to ?? ''}</td><td>${t.action_[c.action] ?? c.action}${c.type ? html` (<code>${c.type}</code>)` : null}${
          c.rows !== undefined ? html` — ${f(c.rows)} ${t.rows.toLowerCase()}` : null
        }${c.line !== undefined ? html` — ${t.line.toLowerCase()} ${f(c.line)}` : null}</td></tr>`,
    )}</tbody></table>`;
}

function mapSection(m: ReportMap, t: ReportText, f: (n: number) => string): Html {
  const svg = mapSvg(
    [
      { name: 'loaded', label: t.mapLoaded, color: '#2f6fb2', geometries: m.loaded },
      { name: 'rejected', label: t.mapRejected, color: '#c4314b', geometries: m.rejected.map((r) => r.geometry), titles: m.rejected.map((r) => `${t.line} ${f(r.line)}`) },
    ],
    { width: 960, height: 560, label: t.mapTitle, emptyText: t.mapEmpty, format: f, colon: t.colon },
  );
  return html`<h2 id="map">${t.mapTitle}</h2><p class="muted map-note">${t.mapNote(m.loaded.length, m.loadedTotal, m.rejected.length, m.rejectedReadable, f)}</p>${svg}`;
}

function structure(data: ReportPageData, t: ReportText, f: (n: number) => string): Html | null {
  if (data.structure.length === 0) return null;
  const shown = (key: string, v: string | number | boolean) => {
    if (typeof v === 'boolean') return v ? t.yes : t.no;
    if (typeof v === 'number') return key === 'srid' ? `EPSG:${v}` : f(v);
    if (key === 'delimiter') return v === '\t' ? t.tab : v === ' ' ? t.space : v;
    if (key === 'quote') return v === '' ? t.none : v;
    if (key === 'lineEnding') return v === '\r\n' ? 'CRLF' : v === '\r' ? 'CR' : v === '\n' ? 'LF' : v;
    return v;
  };
  return html`<h2>${t.structure}</h2><dl class="meta structure">${data.structure.map(
    (s) => html`<dt>${t.structure_[s.key] ?? s.key}</dt><dd data-key="${s.key}"${typeof s.value === 'string' && s.key !== 'format' ? html` class="mono"` : null}>${shown(s.key, s.value)}</dd>`,
  )}</dl>`;
}

function profile(data: ReportPageData, t: ReportText, lang: ReportLanguage): Html | null {
  if (data.columns.length === 0) return null;
  const f = countIn(lang);
  // bounds such as years read better ungrouped: grouping from five digits on
  const bound = (v: number | string | undefined) =>
    v === undefined ? '' : typeof v === 'number' ? v.toLocaleString(lang, { maximumFractionDigits: 4, useGrouping: 'min2' } as Intl.NumberFormatOptions) : v;
  return html`<h2 id="columns">${t.profile}</h2><p class="muted">${t.profileNote}</p>
    <table class="profile"><thead><tr><th>${t.column}</th><th>${t.type}</th><th>${t.format}</th><th class="num">${t.score}</th><th class="num">${t.missing}</th><th class="num">${t.distinct}</th><th>${t.min}</th><th>${t.max}</th><th>${t.distribution}</th></tr></thead><tbody>
    ${data.columns.map(
      (c) =>
        html`<tr data-column="${c.name}"><td>${c.name}</td><td><code>${c.type}</code></td><td>${c.format ?? ''}</td><td class="num">${c.score === null ? '' : formatNumber(c.score, lang, 2)}</td><td class="num">${
          c.missing === null ? '' : f(c.missing)
        }</td><td class="num">${c.distinct === null ? '' : `${c.distinctCapped ? '≥ ' : ''}${f(c.distinct)}`}</td><td>${bound(c.min)}</td><td>${bound(c.max)}</td><td>${
          c.histogram?.length ? histogram(c.histogram, { width: 160, height: 44, label: `${t.distribution}: ${c.name}`, format: f, boundFormat: (n) => bound(n) }) : null
        }</td></tr>`,
    )}</tbody></table>`;
}
