/**
 * The console's views pages: each view of the project (the pipeline definition's views and those
 * the combine step recorded in etl.views), and a page per view with its exact row count, its first
 * rows and, when it has a geometry column, a map of its features (in WGS 84, at most
 * {@link MAP_FEATURES} of them, the exact count beside it).
 */
import type { ViewDefinition } from '../../contract/definition.ts';
import { ident, type Queryable } from '../../functions/common/db.ts';
import { html } from '../../functions/common/html.ts';
import { mapSvg, type Geometry, type MapLayer } from '../../functions/common/svg.ts';
import { exists, fmt, notice, readOnly, when, type ConsoleContext, type PageRequest, type PageResult } from './kit.ts';

/** Rows shown on a view's page. */
export const FIRST_ROWS = 50;
/** Features drawn on a view's map at most. */
export const MAP_FEATURES = 2000;
/** Characters of a cell shown (geometry as WKT, long text). */
const CELL_CHARS = 120;

interface ViewInfo {
  name: string;
  definition?: ViewDefinition;
  createdAt?: Date;
}

async function viewsOf(ctx: ConsoleContext, db: Queryable): Promise<ViewInfo[]> {
  const views = new Map<string, ViewInfo>(ctx.pipeline.views.map((v) => [v.name, { name: v.name, definition: v }]));
  if (await exists(db, 'etl', 'views')) {
    const { rows } = await db.query<{ name: string; created_at: Date }>('SELECT name, created_at FROM etl.views WHERE project = $1 ORDER BY name', [ctx.pipeline.project]);
    for (const r of rows) views.set(r.name, { ...(views.get(r.name) ?? { name: r.name }), createdAt: r.created_at });
  }
  return [...views.values()];
}

export async function viewsPage(ctx: ConsoleContext): Promise<PageResult> {
  const project = ctx.pipeline.project;
  return readOnly(ctx, async (db) => {
    const views = await viewsOf(ctx, db);
    const present = new Set(
      (await db.query<{ name: string }>(`SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind IN ('v', 'm')`, [project])).rows.map(
        (r) => r.name,
      ),
    );
    const body = html`<h1>Views</h1>
<p class="muted">The views of project ${project}: what analysts and dashboards read (schema ${project}). Each is (re)created once every dataset it reads has a clean table.</p>
${
  views.length === 0
    ? notice('The pipeline defines no view.')
    : html`<table class="views"><thead><tr><th>view</th><th>description</th><th>reads</th><th>created</th></tr></thead><tbody>${views.map(
        (v) =>
          html`<tr data-view="${v.name}"><td>${present.has(v.name) ? html`<a href="/views/${v.name}">${v.name}</a>` : html`${v.name} <span class="muted">(not created yet)</span>`}</td><td>${v.definition?.description ?? (v.definition ? '' : html`<span class="muted">not in the definition any more</span>`)}</td>
<td>${(v.definition?.datasets ?? []).join(', ')}</td><td class="num">${when(v.createdAt)}</td></tr>`,
      )}</tbody></table>`
}`;
    return { title: `Views · ${project}`, body };
  });
}

/** Geometry columns of a relation. */
async function geometryColumns(db: Queryable, schema: string, name: string): Promise<string[]> {
  const { rows } = await db.query<{ name: string }>(
    `SELECT a.attname AS name FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
      WHERE a.attrelid = to_regclass(format('%I.%I', $1::text, $2::text)) AND a.attnum > 0 AND NOT a.attisdropped AND t.typname IN ('geometry', 'geography') ORDER BY a.attnum`,
    [schema, name],
  );
  return rows.map((r) => r.name);
}

/**
 * The reference datasets a view reads that have geometries (community areas, districts…), drawn
 * in grey beneath the view's features so that a person sees where they landed; only those small
 * enough to draw whole ({@link MAP_FEATURES} features at most).
 */
async function referenceLayers(ctx: ConsoleContext, db: Queryable, datasets: readonly string[]): Promise<MapLayer[]> {
  const layers: MapLayer[] = [];
  const project = ctx.pipeline.project;
  for (const d of ctx.pipeline.datasets.filter((x) => x.reference && datasets.includes(x.name))) {
    const [column] = await geometryColumns(db, project, d.name);
    if (!column) continue;
    const g = `${ident(column)}::geometry`;
    const { rows } = await db.query<{ geojson: string }>(
      `SELECT ST_AsGeoJSON(CASE WHEN ST_SRID(${g}) IN (0, 4326) THEN ${g} ELSE ST_Transform(${g}, 4326) END, 5) AS geojson
         FROM ${ident(project)}.${ident(d.name)} WHERE ${ident(column)} IS NOT NULL LIMIT ${MAP_FEATURES + 1}`,
    );
    if (rows.length === 0 || rows.length > MAP_FEATURES) continue;
    layers.push({ name: `reference-${d.name}`, label: `${d.name} (reference)`, color: '#9aa5b1', geometries: rows.map((r) => JSON.parse(r.geojson) as Geometry) });
  }
  return layers;
}

export async function viewPage(ctx: ConsoleContext, req: PageRequest): Promise<PageResult> {
  const project = ctx.pipeline.project;
  const name = req.rest[0] ?? '';
  return readOnly(ctx, async (db) => {
    const view = (await viewsOf(ctx, db)).find((v) => v.name === name);
    if (!view) return { title: 'No such view', status: 404, body: html`<h1>No view “${name}”</h1>${notice(html`Project ${project} has no view of that name: see <a href="/views">its views</a>.`)}` };
    const heading = html`<h1>View ${project}.${name}</h1>${view.definition?.description && html`<p>${view.definition.description}</p>`}`;
    if (!(await exists(db, project, name))) {
      return {
        title: `View ${name}`,
        body: html`${heading}${notice(`${project}.${name} is not created yet: it waits for ${(view.definition?.datasets ?? []).join(', ') || 'its datasets'} to have clean tables.`)}`,
      };
    }
    const columns = (
      await db.query<{ name: string; type: string; geometry: boolean }>(
        `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, t.typname IN ('geometry', 'geography') AS geometry
           FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
          WHERE a.attrelid = to_regclass(format('%I.%I', $1::text, $2::text)) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
        [project, name],
      )
    ).rows;
    const relation = `${ident(project)}.${ident(name)}`;
    const geom = columns.find((c) => c.geometry);
    const counts = (await db.query<{ n: string; g: string | null }>(`SELECT count(*) AS n${geom ? `, count(${ident(geom.name)}) AS g` : ''} FROM ${relation}`)).rows[0]!;
    const total = Number(counts.n);
    const list = columns.map((c) => (c.geometry ? `left(ST_AsText(${ident(c.name)}::geometry), ${CELL_CHARS + 1})` : `left(${ident(c.name)}::text, ${CELL_CHARS + 1})`) + ` AS ${ident(c.name)}`).join(', ');
    const first = (await db.query<Record<string, string | null>>(`SELECT ${list} FROM ${relation} LIMIT ${FIRST_ROWS}`)).rows;
    let map = html``;
    if (geom) {
      const context = await referenceLayers(ctx, db, view.definition?.datasets ?? []);
      const withGeometry = Number(counts.g);
      // a label for each feature: the first column that is not a geometry
      const label = columns.find((c) => !c.geometry);
      const g = `${ident(geom.name)}::geometry`;
      const features = (
        await db.query<{ geojson: string; title: string | null }>(
          `SELECT ST_AsGeoJSON(CASE WHEN ST_SRID(${g}) IN (0, 4326) THEN ${g} ELSE ST_Transform(${g}, 4326) END, 6) AS geojson${label ? `, left(${ident(label.name)}::text, 80) AS title` : ''}
             FROM ${relation} WHERE ${ident(geom.name)} IS NOT NULL LIMIT ${MAP_FEATURES}`,
        )
      ).rows;
      const drawn = features.length;
      map = html`<h2>Map</h2>
<p class="map-count">${fmt(withGeometry)} of ${fmt(total)} rows have a geometry (${geom.name})${drawn < withGeometry ? html`; the first <span id="drawn">${fmt(drawn)}</span> are drawn` : html`; all are drawn`}.</p>
${mapSvg(
  [
    ...context,
    {
      name: name,
      label: `${name} (${geom.name})`,
      color: '#2f6fb2',
      geometries: features.map((f) => JSON.parse(f.geojson) as Geometry),
      titles: features.map((f) => (label ? `${label.name}: ${f.title ?? ''}` : '')),
    },
  ],
  { width: 900, height: 560, label: `map of ${project}.${name}` },
)}`;
    }
    const cell = (v: string | null) => (v === null ? html`<span class="muted">null</span>` : v.length > CELL_CHARS ? `${v.slice(0, CELL_CHARS - 1)}…` : v);
    const body = html`${heading}
<div class="cards"><div class="card"><div class="n" id="view-rows">${fmt(total)}</div><div class="l">rows</div></div><div class="card"><div class="n">${fmt(columns.length)}</div><div class="l">columns</div></div></div>
${map}
<h2>First rows</h2>
<p class="muted">${total > first.length ? `The first ${fmt(first.length)} of ${fmt(total)} rows, in the order the view returns them.` : `All ${fmt(total)} rows.`}</p>
<div class="scroll"><table class="rows"><thead><tr>${columns.map((c) => html`<th title="${c.type}">${c.name}<br><span class="muted">${c.type}</span></th>`)}</tr></thead>
<tbody>${first.map((r) => html`<tr>${columns.map((c) => html`<td>${cell(r[c.name] ?? null)}</td>`)}</tr>`)}</tbody></table></div>
${
  view.definition &&
  html`<details><summary>Definition</summary>${view.definition.datasets && html`<p>Reads ${view.definition.datasets.join(', ')}.</p>`}<pre>${view.definition.sql ?? JSON.stringify(view.definition.combine, null, 2)}</pre></details>`
}`;
    return { title: `${name} · ${project}`, body };
  });
}
