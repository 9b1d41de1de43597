/**
 * The console's ledger pages: every load of the project (etl.loads) with its status, timings,
 * rows and error, filtered by dataset and status; a page per load; and that load's quality report.
 */
import { html, type Html } from '../../functions/common/html.ts';
import { reportOf, supplierReportPage } from '../../functions/common/report.ts';
import { exists, objectKey, fmt, href, idParam, ms, notice, PAGE_SIZE, pageNumber, pager, readOnly, select, statusBadge, when, type ConsoleContext, type PageRequest, type PageResult } from './kit.ts';

export const STATUSES = ['received', 'staged', 'loaded', 'failed', 'skipped', 'expanded'] as const;

interface LoadListRow {
  id: number;
  dataset: string | null;
  object_key: string;
  status: string;
  received_at: Date;
  staged_at: Date | null;
  finished_at: Date | null;
  stage_ms: number | null;
  clean_ms: number | null;
  rows_read: string | null;
  rows_loaded: string | null;
  rows_quarantined: string | null;
  error: string | null;
  error_line: string | null;
  error_column: string | null;
  error_kind: string | null;
  attempts: number;
}

/** Where a load's error is in its file, and what kind it is: `line 12, column "capacity" · permanent`. */
function errorText(r: Pick<LoadListRow, 'error' | 'error_line' | 'error_column' | 'error_kind' | 'attempts'>, max = Infinity): Html {
  if (!r.error) return html``;
  const message = r.error.length > max ? `${r.error.slice(0, max - 1)}…` : r.error;
  const where = [r.error_line !== null && `line ${r.error_line}`, r.error_column && `column "${r.error_column}"`].filter(Boolean).join(', ');
  const kind = r.error_kind ? `${r.error_kind}${r.error_kind === 'permanent' ? '' : `, attempt ${r.attempts}`}` : '';
  return html`${where && html`<strong class="where">${where}</strong>: `}${message}${kind && html` <span class="muted">[${kind}]</span>`}`;
}

/** A later time of the same load: the time alone when it is the same day (UTC) as `start`. */
function sameDay(start: Date, later: Date | null): string {
  const full = when(later);
  return full.slice(0, 10) === when(start).slice(0, 10) ? full.slice(11) : full;
}

export async function loadsPage(ctx: ConsoleContext, req: PageRequest): Promise<PageResult> {
  const project = ctx.pipeline.project;
  const dataset = req.params.get('dataset') || null;
  const status = (STATUSES as readonly string[]).includes(req.params.get('status') ?? '') ? req.params.get('status')! : null;
  const page = pageNumber(req.params);
  return readOnly(ctx, async (db) => {
    if (!(await exists(db, 'etl', 'loads')))
      return { title: 'Loads', body: html`<h1>Loads</h1>${notice('The ledger (etl.loads) is not in this database yet: run the pipeline once (civic-etl run), or check DATABASE_URL.')}` };
    const byStatus = (
      await db.query<{ status: string; n: number }>(`SELECT status, count(*)::int AS n FROM etl.loads WHERE project = $1 AND ($2::text IS NULL OR dataset = $2) GROUP BY status`, [project, dataset])
    ).rows;
    const counts = new Map(byStatus.map((r) => [r.status, r.n]));
    const all = byStatus.reduce((n, r) => n + r.n, 0);
    const total = status === null ? all : (counts.get(status) ?? 0);
    const { rows } = await db.query<LoadListRow>(
      `SELECT id::int, dataset, object_key, status, received_at, staged_at, finished_at, stage_ms, clean_ms, rows_read, rows_loaded, rows_quarantined,
              error, error_line, error_column, error_kind, attempts
         FROM etl.loads WHERE project = $1 AND ($2::text IS NULL OR dataset = $2) AND ($3::text IS NULL OR status = $3)
        ORDER BY id DESC LIMIT $4 OFFSET $5`,
      [project, dataset, status, PAGE_SIZE, (page - 1) * PAGE_SIZE],
    );
    const inLedger = (await db.query<{ dataset: string }>(`SELECT DISTINCT dataset FROM etl.loads WHERE project = $1 AND dataset IS NOT NULL`, [project])).rows.map((r) => r.dataset);
    const datasets = [...new Set([...ctx.pipeline.datasets.map((d) => d.name), ...inLedger])].sort();
    const filters = { dataset: dataset ?? undefined, status: status ?? undefined };
    const card = (s: string | null, n: number) =>
      html`<a class="card" data-status="${s ?? 'all'}" href="${href('/loads', { dataset: dataset ?? undefined, status: s ?? undefined })}"><div class="n">${fmt(n)}</div><div class="l">${s ?? (dataset ? `all loads of ${dataset}` : 'all loads')}</div></a>`;
    const body = html`<h1>Loads${dataset && html` of ${dataset}`}</h1>
<p class="muted">The ledger (etl.loads) of project ${project}: one load per object version staged, newest first. Times are UTC.</p>
<div class="cards">${card(null, all)}${STATUSES.filter((s) => counts.has(s)).map((s) => card(s, counts.get(s)!))}</div>
<form class="filters" method="get" action="/loads">${select('dataset', 'dataset', datasets, dataset)}${select('status', 'status', STATUSES, status)}<button type="submit">Filter</button></form>
${
  rows.length === 0
    ? notice(
        total > 0
          ? `Page ${page} is past the last page of these loads.`
          : dataset === null && status === null
            ? 'No load yet: upload a file (civic-etl upload) and run the pipeline (civic-etl run).'
            : `No load matches these filters${dataset === null ? '' : ` (dataset ${dataset}${datasets.includes(dataset) ? '' : ': not a dataset of this project'})`}.`,
      )
    : html`<div class="scroll"><table class="loads">
<thead><tr><th class="num">load</th><th>dataset</th><th>object</th><th>status</th><th class="num">received</th><th class="num">staged</th><th class="num">finished</th><th class="num">stage</th><th class="num">clean</th><th class="num">read</th><th class="num">loaded</th><th class="num">quarantined</th><th>error</th></tr></thead>
<tbody>${rows.map(
        (
          r,
        ) => html`<tr data-load="${r.id}" data-status="${r.status}"><td class="num"><a href="/loads/${r.id}">${r.id}</a></td><td>${r.dataset ?? '—'}</td><td>${objectKey(r.object_key)}</td><td>${statusBadge(r.status)}</td>
<td class="num">${when(r.received_at)}</td><td class="num">${sameDay(r.received_at, r.staged_at)}</td><td class="num">${sameDay(r.received_at, r.finished_at)}</td><td class="num">${ms(r.stage_ms)}</td><td class="num">${ms(r.clean_ms)}</td>
<td class="num">${fmt(r.rows_read)}</td><td class="num">${fmt(r.rows_loaded)}</td><td class="num">${Number(r.rows_quarantined) > 0 ? html`<a href="${href('/quarantine', { dataset: r.dataset, load: r.id })}">${fmt(r.rows_quarantined)}</a>` : fmt(r.rows_quarantined)}</td><td class="err">${errorText(r, 300)}</td></tr>`,
      )}</tbody></table></div>${pager('/loads', filters, page, total, 'loads')}`
}`;
    return { title: `Loads · ${project}`, body };
  });
}

type LedgerRow = LoadListRow & {
  bucket: string;
  object_version: string;
  etag: string | null;
  size_bytes: string | null;
  staging_table: string | null;
  parent_id: string | null;
  replay_of: string | null;
  owner_id: string | null;
  error_step: string | null;
  last_attempt_at: string | null;
  header: string[] | null;
  detected: Record<string, unknown> | null;
  replaces: string | null;
  holds: string | null;
  run: string | null;
  resource: string | null;
};

export async function loadPage(ctx: ConsoleContext, req: PageRequest): Promise<PageResult> {
  const id = idParam(new URLSearchParams({ id: req.rest[0] ?? '' }), 'id');
  if (id === undefined) return { title: 'No such load', status: 404, body: html`<h1>No such load</h1>${notice(`"${req.rest[0] ?? ''}" is not a load id.`)}` };
  if (req.rest[1] === 'report') return reportPage(ctx, id, req.params);
  const project = ctx.pipeline.project;
  return readOnly(ctx, async (db) => {
    const { rows } = await db.query<{ row: LedgerRow }>(`SELECT to_jsonb(l) - 'report' AS row FROM etl.loads l WHERE id = $1 AND project = $2`, [id, project]);
    const l = rows[0]?.row;
    if (!l) return { title: 'No such load', status: 404, body: html`<h1>No load ${id}</h1>${notice(`Project ${project} has no load ${id} in the ledger.`)}` };
    const related = await db.query<{ id: number; dataset: string | null; object_key: string; status: string; how: string }>(
      `SELECT id::int, dataset, object_key, status, CASE WHEN parent_id = $1 THEN 'member' WHEN owner_id = $1 THEN 'child table' ELSE 'replay' END AS how
         FROM etl.loads WHERE parent_id = $1 OR owner_id = $1 OR replay_of = $1 ORDER BY id LIMIT 200`,
      [id],
    );
    const catalogued = (await exists(db, 'etl', 'catalog')) && ((await db.query('SELECT 1 FROM etl.catalog WHERE load_id = $1', [id])).rowCount ?? 0) > 0;
    const link = (other: string | null, label: string) => other !== null && html`<dt>${label}</dt><dd><a href="/loads/${other}">load ${other}</a></dd>`;
    const body = html`<h1>Load ${l.id} ${statusBadge(l.status)}</h1>
<p class="mono">${l.object_key}</p>
<div class="cards">
<div class="card" data-count="read"><div class="n">${fmt(l.rows_read) || '—'}</div><div class="l">rows read</div></div>
<div class="card" data-count="loaded"><div class="n">${fmt(l.rows_loaded) || '—'}</div><div class="l">rows loaded</div></div>
<div class="card" data-count="quarantined"><div class="n">${fmt(l.rows_quarantined) || '—'}</div><div class="l">rows quarantined</div></div>
</div>
${l.error && html`<div class="error"><strong>${l.status === 'skipped' ? 'Reason' : 'Error'}</strong>${l.error_step && html` in the ${l.error_step} step`}: ${errorText(l)}</div>`}
<p><a href="/loads/${l.id}/report">Quality report</a>${catalogued && html` · <a href="/catalog/${l.id}">Structure and column profile (catalog)</a>`}${
      Number(l.rows_quarantined) > 0 && html` · <a href="${href('/quarantine', { dataset: l.dataset, load: l.id })}">Quarantined rows</a>`
    }${l.dataset && html` · <a href="${href('/loads', { dataset: l.dataset })}">Other loads of ${l.dataset}</a>`}</p>
<h2>Timings (UTC)</h2>
<dl class="facts">
<dt>received</dt><dd>${when(l.received_at)}</dd>
<dt>staged</dt><dd>${when(l.staged_at) || '—'}</dd>
<dt>finished</dt><dd>${when(l.finished_at) || '—'}</dd>
<dt>stage step</dt><dd>${ms(l.stage_ms) || '—'}</dd>
<dt>clean step</dt><dd>${ms(l.clean_ms) || '—'}</dd>
<dt>attempts</dt><dd>${l.attempts}${l.last_attempt_at && ` (last ${when(l.last_attempt_at)})`}</dd>
</dl>
<h2>Object</h2>
<dl class="facts">
<dt>dataset</dt><dd>${l.dataset ?? '— (the key routes to no dataset)'}</dd>
<dt>bucket</dt><dd class="mono">${l.bucket}</dd>
<dt>version</dt><dd class="mono">${l.object_version}</dd>
${l.size_bytes !== null && html`<dt>size</dt><dd>${fmt(l.size_bytes)} bytes</dd>`}
${l.staging_table && html`<dt>staging table</dt><dd class="mono">${l.staging_table}</dd>`}
${l.replaces && html`<dt>replaces</dt><dd>${l.replaces}${l.holds && ` (holds ${l.holds})`}${l.run && `, run ${l.run}`}${l.resource && `, resource ${l.resource}`}</dd>`}
${link(l.parent_id, 'member of')}${link(l.owner_id, 'child table of')}${link(l.replay_of, 'replays')}
</dl>
${l.header?.length && html`<h2>Header as read</h2><p class="mono">${l.header.join(' · ')}</p>`}
${
  related.rows.length > 0 &&
  html`<h2>Related loads</h2><table><thead><tr><th class="num">load</th><th>how</th><th>dataset</th><th>object</th><th>status</th></tr></thead><tbody>${related.rows.map(
    (r) => html`<tr><td class="num"><a href="/loads/${r.id}">${r.id}</a></td><td>${r.how}</td><td>${r.dataset ?? '—'}</td><td>${objectKey(r.object_key)}</td><td>${statusBadge(r.status)}</td></tr>`,
  )}</tbody></table>`
}
${l.detected && html`<details><summary>What the stage step detected (JSON)</summary><pre>${JSON.stringify(l.detected, null, 2)}</pre></details>`}`;
    return { title: `Load ${l.id} · ${project}`, body };
  });
}

/**
 * The quality report of a load as its supplier reads it (`<file>.report.html`): the same page,
 * made now from the ledger, in the supplier's language unless `?lang=en|fr|nl` asks for another.
 */
async function reportPage(ctx: ConsoleContext, id: number, params: URLSearchParams): Promise<PageResult> {
  return readOnly(ctx, async (db) => {
    const owned = await db.query('SELECT 1 FROM etl.loads WHERE id = $1 AND project = $2', [id, ctx.pipeline.project]);
    const report = owned.rowCount ? await reportOf(db, id) : undefined;
    if (!report) return { title: 'No such load', status: 404, body: html`<h1>No load ${id}</h1>${notice(`Project ${ctx.pipeline.project} has no load ${id} in the ledger.`)}` };
    const document = await supplierReportPage(db, report, ctx.pipeline, params.get('lang'));
    return { title: `Report of load ${id} · ${ctx.pipeline.project}`, body: html``, document };
  });
}
