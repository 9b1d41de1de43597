/**
 * The console's quarantine page: the values each dataset's loads set aside
 * (`<project>.<dataset>_quarantine`), filtered by load, rule and column, as
 * `civic-etl quarantine` lists them. Counts are exact (grouped in PostgreSQL); rows are paginated.
 */
import { ident } from '../../functions/common/db.ts';
import { html } from '../../functions/common/html.ts';
import { barChart } from '../../functions/common/svg.ts';
import { exists, fmt, href, idParam, notice, PAGE_SIZE, pageNumber, pager, readOnly, select, type ConsoleContext, type PageRequest, type PageResult } from './kit.ts';

export async function quarantinePage(ctx: ConsoleContext, req: PageRequest): Promise<PageResult> {
  const project = ctx.pipeline.project;
  const datasets = ctx.pipeline.datasets.map((d) => d.name);
  const dataset = datasets.includes(req.params.get('dataset') ?? '') ? req.params.get('dataset')! : null;
  const rule = req.params.get('rule') || null;
  const column = req.params.get('column') || null;
  const loadId = idParam(req.params, 'load') ?? null;
  const page = pageNumber(req.params);
  return readOnly(ctx, async (db) => {
    if (dataset === null) {
      // every dataset: how much each set aside
      const counts = [];
      for (const d of datasets) {
        if (!(await exists(db, project, `${d}_quarantine`))) {
          counts.push({ dataset: d, values: null, rows: null });
          continue;
        }
        const values = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${ident(project)}.${ident(`${d}_quarantine`)}`);
        const rows = await db.query<{ n: string | null }>(`SELECT sum(rows_quarantined) AS n FROM etl.loads WHERE project = $1 AND dataset = $2`, [project, d]);
        counts.push({ dataset: d, values: values.rows[0]!.n, rows: Number(rows.rows[0]?.n ?? 0) });
      }
      const body = html`<h1>Quarantine</h1>
<p class="muted">The values the loads of project ${project} set aside instead of loading: each with its load, the line of the file, the column, the value, the rule it failed and why. Choose a dataset.</p>
<table class="datasets"><thead><tr><th>dataset</th><th class="num">values</th><th class="num">rows quarantined (ledger)</th></tr></thead><tbody>${counts.map(
        (c) =>
          html`<tr data-dataset="${c.dataset}"><td><a href="${href('/quarantine', { dataset: c.dataset })}">${c.dataset}</a></td><td class="num">${c.values === null ? html`<span class="muted">no quarantine table yet</span>` : fmt(c.values)}</td><td class="num">${fmt(c.rows)}</td></tr>`,
      )}</tbody></table>`;
      return { title: `Quarantine · ${project}`, body };
    }
    const table = `${ident(project)}.${ident(`${dataset}_quarantine`)}`;
    const heading = html`<h1>Quarantine of ${dataset}</h1>`;
    if (!(await exists(db, project, `${dataset}_quarantine`))) {
      return { title: `Quarantine of ${dataset}`, body: html`${heading}${notice(`${project}.${dataset}_quarantine does not exist yet: no load of ${dataset} has been cleaned.`)}` };
    }
    const where = `($1::text IS NULL OR q.rule = $1) AND ($2::text IS NULL OR q.column_name = $2) AND ($3::bigint IS NULL OR q.load_id = $3)`;
    const params = [rule, column, loadId];
    // values and distinct rows per rule; a row is (load, line) folded into one bigint (lines < 10^10,
    // loads < 9·10^8), which PostgreSQL counts distinct four times faster than the pair
    const byRule = (
      await db.query<{ rule: string; values: number; rows: number }>(
        `SELECT q.rule, count(*)::int AS values, count(DISTINCT q.load_id * 10000000000 + q.source_line)::int AS rows
           FROM ${table} q WHERE ${where} GROUP BY q.rule ORDER BY count(*) DESC, q.rule`,
        params,
      )
    ).rows;
    // the choices of the filters: every rule and column the table holds, every load of the dataset that set values aside
    const filtered = rule !== null || column !== null || loadId !== null;
    const rules = filtered ? (await db.query<{ rule: string }>(`SELECT DISTINCT rule FROM ${table}`)).rows.map((r) => r.rule) : byRule.map((r) => r.rule);
    const columns = (await db.query<{ column_name: string }>(`SELECT DISTINCT column_name FROM ${table}`)).rows.map((r) => r.column_name);
    const loads = (await db.query<{ id: string }>(`SELECT id FROM etl.loads WHERE project = $1 AND dataset = $2 AND rows_quarantined > 0 ORDER BY id DESC LIMIT 500`, [project, dataset])).rows.map(
      (r) => r.id,
    );
    if (loadId !== null && !loads.includes(String(loadId))) loads.unshift(String(loadId));
    const total = byRule.reduce((n, r) => n + r.values, 0);
    const found = (
      await db.query<{ load_id: number; object_key: string | null; line: string; column_name: string; raw_value: string | null; rule: string; reason: string }>(
        `SELECT q.load_id::int, l.object_key, q.source_line AS line, q.column_name, left(q.raw_value, 500) AS raw_value, q.rule, left(q.reason, 1000) AS reason
           FROM ${table} q LEFT JOIN etl.loads l ON l.id = q.load_id
          WHERE ${where} ORDER BY q.load_id DESC, q.source_line, q.column_name LIMIT $4 OFFSET $5`,
        [...params, PAGE_SIZE, (page - 1) * PAGE_SIZE],
      )
    ).rows;
    const filters = { dataset, rule: rule ?? undefined, column: column ?? undefined, load: loadId ?? undefined };
    const sorted = (xs: string[]) => [...xs].sort((a, b) => a.localeCompare(b));
    const rowsByRule = byRule.reduce((n, r) => n + r.rows, 0);
    const body = html`${heading}
<form class="filters" method="get" action="/quarantine">${select('dataset', 'dataset', datasets, dataset, 'all datasets')}${select(
      'load',
      'load',
      [...loads].sort((a, b) => Number(b) - Number(a)),
      loadId === null ? null : String(loadId),
    )}${select('rule', 'rule', sorted(rules), rule)}${select('column', 'column', sorted(columns), column)}<button type="submit">Filter</button></form>
<div class="cards"><div class="card"><div class="n" id="quarantined-values">${fmt(total)}</div><div class="l">values set aside${(rule || column || loadId) && ' (filtered)'}</div></div>
<div class="card"><div class="n">${fmt(rowsByRule)}</div><div class="l">${rowsByRule === 1 ? 'row' : 'rows'} (summed by rule: a row set aside by two rules counts twice)</div></div></div>
${
  total === 0
    ? notice(`No quarantined value${rule || column || loadId ? ' matches these filters' : ` in ${project}.${dataset}_quarantine`}.`)
    : html`<h2>Values set aside, by rule</h2>${barChart(
        byRule.map((r) => ({ label: r.rule, value: r.values, title: `${r.rule}: ${fmt(r.values)} values in ${fmt(r.rows)} rows` })),
        { label: 'quarantined values by rule' },
      )}
<h2>Values</h2>
<table class="quarantine"><thead><tr><th class="num">load</th><th class="num">line</th><th>column</th><th>value</th><th>rule</th><th>reason</th></tr></thead><tbody>${found.map(
        (v) =>
          html`<tr data-rule="${v.rule}" data-column="${v.column_name}"><td class="num"><a href="/loads/${v.load_id}" title="${v.object_key ?? ''}">${v.load_id}</a></td><td class="num">${v.line}</td><td>${v.column_name}</td><td class="mono">${v.raw_value ?? html`<span class="muted">(empty)</span>`}</td><td><a href="${href('/quarantine', { ...filters, rule: v.rule, page: undefined })}">${v.rule}</a></td><td class="err">${v.reason}</td></tr>`,
      )}</tbody></table>${pager('/quarantine', filters, page, total, 'values')}`
}`;
    return { title: `Quarantine of ${dataset} · ${project}`, body };
  });
}
