/**
 * The console's catalog pages: full-text search over what the stage step detected and profiled
 * in each object version (etl.catalog: titles, dataset names, column names, portal metadata), and
 * one page per object version, like a data portal's resource page: the structure detected, and
 * each column with its type, semantic format and score, missing and distinct counts, range and
 * most frequent values.
 */
import { html, type Html } from '../../functions/common/html.ts';
import { barChart } from '../../functions/common/svg.ts';
import type { ColumnProfile } from '../../functions/profile/types.ts';
import { exists, objectKey, fmt, href, idParam, notice, PAGE_SIZE, pageNumber, pager, readOnly, when, type ConsoleContext, type PageRequest, type PageResult } from './kit.ts';

interface CatalogRow {
  load_id: number;
  dataset: string;
  title: string | null;
  object_key: string;
  object_version: string;
  row_count: string | null;
  column_names: string | null;
  columns: number | null;
  error: string | null;
  profiled_at: Date;
  portal_title: string | null;
  status: string | null;
}

const MISSING_CATALOG = 'The catalog (etl.catalog) is not in this database yet: run the pipeline once (civic-etl run), or check DATABASE_URL.';

/** The words of a search, lower case, for marking the column names they match. */
function words(q: string): string[] {
  return q
    .toLowerCase()
    .split(/[^\p{L}\p{N}]+/u)
    .filter((w) => w.length > 0 && w !== 'or');
}

export async function catalogPage(ctx: ConsoleContext, req: PageRequest): Promise<PageResult> {
  const project = ctx.pipeline.project;
  const q = (req.params.get('q') ?? '').trim().slice(0, 200);
  const page = pageNumber(req.params);
  return readOnly(ctx, async (db) => {
    if (!(await exists(db, 'etl', 'catalog'))) return { title: 'Catalog', body: html`<h1>Catalog</h1>${notice(MISSING_CATALOG)}` };
    const match = `c.project = $1 AND ($2 = '' OR c.search @@ websearch_to_tsquery('simple', $2))`;
    const total = (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM etl.catalog c WHERE ${match}`, [project, q])).rows[0]!.n;
    const { rows } = await db.query<CatalogRow>(
      `SELECT c.load_id::int, c.dataset, c.title, c.object_key, c.object_version, c.row_count, c.column_names, jsonb_array_length(c.columns) AS columns, c.error, c.profiled_at,
              c.portal ->> 'resourceTitle' AS portal_title, l.status
         FROM etl.catalog c LEFT JOIN etl.loads l ON l.id = c.load_id
        WHERE ${match}
        ORDER BY CASE WHEN $2 = '' THEN 0 ELSE ts_rank(c.search, websearch_to_tsquery('simple', $2)) END DESC, c.load_id DESC
        LIMIT $3 OFFSET $4`,
      [project, q, PAGE_SIZE, (page - 1) * PAGE_SIZE],
    );
    const wanted = words(q);
    const body = html`<h1>Catalog</h1>
<p class="muted">Every object version the stage step profiled (etl.catalog), searchable by title, dataset, column names and portal metadata — web-search syntax: <code>"community area" -snapshot</code>, <code>latitude or longitude</code>.</p>
<form class="filters" method="get" action="/catalog" role="search"><label>search <input type="search" name="q" value="${q}" placeholder="words of a title or column name" autofocus></label><button type="submit">Search</button></form>
${
  rows.length === 0
    ? notice(q ? html`Nothing in the catalog of ${project} matches “${q}”.` : 'The catalog is empty: no object has been staged yet.')
    : html`<p class="found"><span id="found-count">${fmt(total)}</span> object version${total === 1 ? '' : 's'}${q && html` match “${q}”`}</p>
<table class="catalog"><thead><tr><th class="num">load</th><th>dataset</th><th>title</th><th>object</th><th class="num">rows</th><th>columns</th><th>profiled</th></tr></thead><tbody>${rows.map(
        (r) =>
          html`<tr data-dataset="${r.dataset}"><td class="num"><a href="/loads/${r.load_id}">${r.load_id}</a></td><td><a href="/catalog/${r.load_id}">${r.dataset}</a></td><td>${r.portal_title ?? r.title ?? ''}</td><td><a href="/catalog/${r.load_id}">${objectKey(r.object_key)}</a></td><td class="num">${fmt(r.row_count)}</td>
<td class="cols">${r.error ? html`<span class="bad">not profiled: ${r.error}</span>` : wanted.length ? markWords(r.column_names ?? '', wanted) : (r.column_names ?? '')}</td><td class="num">${when(r.profiled_at)}</td></tr>`,
      )}</tbody></table>${pager('/catalog', { q: q || undefined }, page, total, 'object versions')}`
}`;
    return { title: `Catalog · ${project}`, body };
  });
}

/** Text with each word of the search marked (the column names a search found the object by). */
function markWords(text: string, wanted: string[]): Html {
  const parts = text.split(/([\p{L}\p{N}]+)/u);
  return html`${parts.map((p) => (wanted.includes(p.toLowerCase()) ? html`<mark>${p}</mark>` : p))}`;
}

interface ResourceRow {
  load_id: number;
  project: string;
  dataset: string;
  title: string | null;
  object_key: string;
  object_version: string;
  structure: Record<string, unknown> | null;
  columns: ColumnProfile[] | null;
  row_count: string | null;
  profiled_rows: string | null;
  duplicate_rows: string | null;
  ragged_lines: string | null;
  error: string | null;
  profiled_at: Date;
  portal: Record<string, unknown> | null;
  status: string | null;
}

const STRUCTURE_FIELDS: [string, string][] = [
  ['format', 'format'],
  ['encoding', 'encoding'],
  ['encodingDeclared', 'encoding declared by the pipeline (read.encoding)'],
  ['bom', 'byte-order mark'],
  ['delimiter', 'delimiter'],
  ['quote', 'quote'],
  ['lineEnding', 'line ending'],
  ['headerRow', 'header row (0-based)'],
  ['firstDataLine', 'first data line'],
  ['decimalComma', 'decimal comma'],
  ['sheet', 'sheet'],
  ['layer', 'layer'],
  ['geometryType', 'geometry type'],
  ['srid', 'SRID'],
];

function shown(value: unknown): string {
  if (value === '\t') return 'tab';
  if (value === '\n') return 'LF (\\n)';
  if (value === '\r\n') return 'CRLF (\\r\\n)';
  if (value === '\r') return 'CR (\\r)';
  if (value === '') return '(none)';
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

/** A value in a narrow cell: at most 40 characters. */
const short = (v: string) => (Array.from(v).length > 40 ? `${Array.from(v).slice(0, 39).join('')}…` : v);

function range(p: ColumnProfile['profile']): string {
  if (p.min === undefined && p.max === undefined) return '';
  const n = (v: number | string | undefined) => (typeof v === 'number' ? v.toLocaleString('en-US', { maximumFractionDigits: 4 }) : (v ?? ''));
  return `${n(p.min)} – ${n(p.max)}`;
}

export async function resourcePage(ctx: ConsoleContext, req: PageRequest): Promise<PageResult> {
  const id = idParam(new URLSearchParams({ id: req.rest[0] ?? '' }), 'id');
  const project = ctx.pipeline.project;
  if (id === undefined) return { title: 'No such object version', status: 404, body: html`<h1>No such object version</h1>${notice(`"${req.rest[0] ?? ''}" is not a load id.`)}` };
  return readOnly(ctx, async (db) => {
    if (!(await exists(db, 'etl', 'catalog'))) return { title: 'Catalog', body: html`<h1>Catalog</h1>${notice(MISSING_CATALOG)}` };
    const { rows } = await db.query<ResourceRow>(
      `SELECT c.load_id::int, c.project, c.dataset, c.title, c.object_key, c.object_version, c.structure, c.columns, c.row_count, c.profiled_rows, c.duplicate_rows, c.ragged_lines, c.error, c.profiled_at, c.portal, l.status
         FROM etl.catalog c LEFT JOIN etl.loads l ON l.id = c.load_id WHERE c.load_id = $1 AND c.project = $2`,
      [id, project],
    );
    const r = rows[0];
    if (!r)
      return {
        title: 'Not in the catalog',
        status: 404,
        body: html`<h1>Load ${id} is not in the catalog</h1>${notice(html`Project ${project} has no catalog entry for load ${id}. <a href="/loads/${id}">Its load</a>, if any.`)}`,
      };
    const structure = r.structure ?? {};
    const columns = r.columns ?? [];
    const warnings = Array.isArray(structure.warnings) ? (structure.warnings as unknown[]).map(String) : [];
    const preamble = Array.isArray(structure.preamble) ? (structure.preamble as unknown[]).map(String) : [];
    const portal = r.portal ?? {};
    const sampled = r.profiled_rows !== null && r.row_count !== null && Number(r.profiled_rows) < Number(r.row_count);
    const body = html`<h1>${String(portal.resourceTitle ?? r.title ?? r.dataset)}</h1>
<p><span class="mono">${r.object_key}</span> · version <span class="mono">${r.object_version}</span> · dataset <a href="${href('/loads', { dataset: r.dataset })}">${r.dataset}</a> · <a href="/loads/${r.load_id}">load ${r.load_id}</a>${r.status && html` (${r.status})`} · profiled ${when(r.profiled_at)} UTC</p>
${typeof portal.description === 'string' && html`<p>${portal.description}</p>`}
${r.error && notice(`The profiler could not read this object: ${r.error}`)}
<div class="cards">
<div class="card"><div class="n" id="row-count">${fmt(r.row_count)}</div><div class="l">rows staged</div></div>
<div class="card"><div class="n" id="column-count">${fmt(columns.length)}</div><div class="l">columns</div></div>
<div class="card"><div class="n">${fmt(r.duplicate_rows)}</div><div class="l">duplicate rows${sampled ? ' (in the sample)' : ''}</div></div>
<div class="card"><div class="n">${fmt(r.ragged_lines)}</div><div class="l">ragged lines</div></div>
</div>
${sampled && html`<p class="muted">The profile below is of the first ${fmt(r.profiled_rows)} rows; the row count is exact.</p>`}
<h2>Structure detected</h2>
<dl class="facts">${STRUCTURE_FIELDS.filter(([k]) => structure[k] !== undefined).map(([k, label]) => html`<dt>${label}</dt><dd class="mono">${shown(structure[k])}</dd>`)}</dl>
${preamble.length > 0 && html`<h3>Lines above the header</h3><pre>${preamble.join('\n')}</pre>`}
${warnings.length > 0 && html`<h3>How the file was read</h3><ul>${warnings.map((w) => html`<li>${w}</li>`)}</ul>`}
${
  Object.keys(portal).length > 0 &&
  html`<h2>Portal</h2><dl class="facts">${['datasetTitle', 'organization', 'license', 'format', 'url']
    .filter((k) => portal[k] !== undefined && portal[k] !== null)
    .map((k) => html`<dt>${k}</dt><dd>${shown(portal[k])}</dd>`)}${Array.isArray(portal.tags) && html`<dt>tags</dt><dd>${(portal.tags as unknown[]).join(', ')}</dd>`}</dl>`
}
<h2>Columns</h2>
${
  columns.length === 0
    ? notice('No column profile.')
    : html`<table class="columns"><thead><tr><th>column</th><th>type</th><th>loads as</th><th>format</th><th class="num">score</th><th class="num">missing</th><th class="num">distinct</th><th>min – max</th><th>most frequent values</th></tr></thead><tbody>${columns.map(
        (c) => {
          const p = c.profile ?? ({} as ColumnProfile['profile']);
          const top = (p.top ?? []).slice(0, 5);
          return html`<tr data-column="${c.name}"><td class="name"><strong>${c.name}</strong></td><td class="type">${c.type}</td><td class="mono">${c.clean?.type ?? ''}</td><td class="format">${c.format ?? html`<span class="muted">—</span>`}</td>
<td class="num">${typeof c.score === 'number' && c.format ? c.score.toFixed(2) : ''}</td><td class="num">${fmt(p.missing)}</td><td class="num">${fmt(p.distinct)}${p.distinctCapped ? '+' : ''}</td><td class="num">${range(p)}</td>
<td>${
            p.categorical && top.length > 1
              ? barChart(
                  top.map((t) => ({ label: t.value, value: t.count })),
                  { width: 300, barHeight: 12, color: '#2f6fb2', label: `most frequent values of ${c.name}` },
                )
              : html`<span class="top">${top.map((t, i) => html`${i > 0 && ' · '}<span class="mono">${short(t.value)}</span> (${fmt(t.count)})`)}</span>`
          }</td></tr>`;
        },
      )}</tbody></table>`
}`;
    return { title: `${r.dataset} · load ${r.load_id} · ${project}`, body };
  });
}
