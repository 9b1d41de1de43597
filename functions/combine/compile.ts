/**
 * Declarative combines (`views[].combine`) compiled to one SELECT. Compiled when the view is
 * created, against the clean tables as they are then: the joined dataset's columns (all of them
 * unless `columns` says) and the geometry columns' SRIDs come from the database, so a combine
 * works on datasets with declared and with detected columns alike.
 *
 * - attribute: `LEFT JOIN … ON etl.normalised(a) = etl.normalised(b)` (or plain equality);
 * - contains: point (or shape) in polygon, `ST_Contains`, with the row's geometry transformed to
 *   the joined dataset's SRID when they differ (GiST-indexed on the joined side);
 * - nearest: the closest joined geometry within `within` metres (`ST_DWithin` on geography for
 *   geographic SRIDs, on geometry for projected ones, whose units are metres), with its distance;
 * - overlap: every intersecting joined geometry, with the share of the row's area inside it.
 * With `per: join` the result is one row per joined row instead: the count of matching rows and,
 * with `perCapita`, that count per N of a joined column (programs per 10,000 residents).
 */
import type pg from 'pg';
import type { CombineDefinition, PipelineDefinition } from '../../contract/definition.ts';
import { ident } from '../common/db.ts';

interface Column {
  name: string;
  type: string;
  /** For geometry columns: their SRID (0 when the column is not constrained). */
  srid?: number;
}

const LINEAGE = new Set(['_load_id', '_source_line', 'valid_from', 'valid_to']);

export async function combineSql(client: pg.PoolClient, pipeline: PipelineDefinition, c: CombineDefinition): Promise<string> {
  const schema = ident(pipeline.project);
  const from = await columnsOf(client, pipeline.project, c.from);
  const join = await columnsOf(client, pipeline.project, c.join);
  const fromGeometry = from.find((col) => col.srid !== undefined);
  const joinGeometry = join.find((col) => col.srid !== undefined);
  const spatial = c.how !== 'attribute';
  if (spatial && (!fromGeometry || !joinGeometry)) {
    const missing = !fromGeometry ? c.from : c.join;
    throw new CombineError(`combine of ${c.from} and ${c.join} (how: ${c.how}) needs geometry, and ${missing} has none`);
  }
  const picked = c.columns
    ? c.columns.map((name) => {
        const col = join.find((j) => j.name === name);
        if (!col) throw new CombineError(`combine: ${c.join} has no column "${name}" (it has ${join.map((j) => j.name).join(', ')})`);
        return col;
      })
    : join.filter((col) => col.srid === undefined && !LINEAGE.has(col.name));
  const f = (name: string) => `f.${ident(name)}`;
  const j = (name: string) => `j.${ident(name)}`;
  // the row's geometry, in the joined dataset's SRID
  const fg =
    fromGeometry && joinGeometry && fromGeometry.srid !== joinGeometry.srid && fromGeometry.srid && joinGeometry.srid
      ? `ST_Transform(${f(fromGeometry.name)}, ${joinGeometry.srid})`
      : fromGeometry && f(fromGeometry.name);
  const jg = joinGeometry && j(joinGeometry.name);
  const geographic = joinGeometry?.srid === 4326 || joinGeometry?.srid === 4258 || joinGeometry?.srid === 4269;
  const metres = (a: string, b: string) => (geographic ? `ST_Distance(${a}::geography, ${b}::geography)` : `ST_Distance(${a}, ${b})`);
  const area = (g: string) => (geographic ? `ST_Area(${g}::geography)` : `ST_Area(${g})`);

  let condition: string;
  let extra: string[] = [];
  let joinClause: string;
  switch (c.how) {
    case 'attribute': {
      const on = c.on!;
      const norm = (x: string) => (on.normalise ? `etl.normalised(${x})` : x);
      condition = `${norm(f(on.from))} = ${norm(j(on.join))}`;
      joinClause = `LEFT JOIN ${schema}.${ident(c.join)} j ON ${condition}`;
      break;
    }
    case 'contains':
      condition = `ST_Contains(${jg}, ${fg})`;
      joinClause = `LEFT JOIN ${schema}.${ident(c.join)} j ON ${condition}`;
      break;
    case 'overlap':
      condition = `ST_Intersects(${jg}, ${fg})`;
      joinClause = `LEFT JOIN ${schema}.${ident(c.join)} j ON ${condition}`;
      extra = [`round((${area(`ST_Intersection(${jg}, ${fg})`)} / NULLIF(${area(fg!)}, 0))::numeric, 4) AS ${ident(`${c.join}_overlap_share`)}`];
      break;
    case 'nearest': {
      const within = c.within!;
      const near = geographic ? `ST_DWithin(${jg}::geography, ${fg}::geography, ${within})` : `ST_DWithin(${jg}, ${fg}, ${within})`;
      condition = near;
      // the closest one only: a lateral subquery ordered by the index-assisted distance operator
      joinClause = `LEFT JOIN LATERAL (SELECT j.*, ${metres(jg!, fg!)} AS civic_etl_distance FROM ${schema}.${ident(c.join)} j
                     WHERE ${near} ORDER BY ${jg} <-> ${fg} LIMIT 1) j ON true`;
      extra = [`round(j.civic_etl_distance::numeric, 1) AS ${ident(`${c.join}_distance_m`)}`];
      break;
    }
  }

  if (c.per === 'join') {
    const keep = join.filter((col) => !LINEAGE.has(col.name));
    const groups = keep.map((col) => j(col.name));
    const count = `count(f.*)::integer`;
    const outputs = [...keep.map((col) => j(col.name)), `${count} AS ${ident(`${c.from}_count`)}`];
    if (c.perCapita) {
      const per = c.perCapita.per;
      outputs.push(`round(${count} * ${per}.0 / NULLIF(${j(c.perCapita.column)}, 0), 2) AS ${ident(`${c.from}_per_${per}`)}`);
    }
    // every joined row, also those nothing matched: the join is turned around (for nearest, the
    // rows within the distance count)
    return `SELECT ${outputs.join(', ')} FROM ${schema}.${ident(c.join)} j LEFT JOIN ${schema}.${ident(c.from)} f ON ${condition} GROUP BY ${groups.join(', ')}`;
  }
  const fromColumns = from.filter((col) => !LINEAGE.has(col.name)).map((col) => f(col.name));
  const joined = picked.map((col) => `${j(col.name)} AS ${ident(`${c.join}_${col.name}`)}`);
  return `SELECT ${[...fromColumns, ...joined, ...extra].join(', ')} FROM ${schema}.${ident(c.from)} f ${joinClause}`;
}

/** A combine that cannot be compiled: the definition (or the data it assumes) must change. */
export class CombineError extends Error {
  override name = 'CombineError';
}

async function columnsOf(client: pg.PoolClient, project: string, table: string): Promise<Column[]> {
  const { rows } = await client.query<{ name: string; type: string; srid: number | null }>(
    `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type,
            CASE WHEN t.typname = 'geometry' THEN postgis_typmod_srid(a.atttypmod) END AS srid
       FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
      WHERE a.attrelid = to_regclass(format('%I.%I', $1::text, $2::text)) AND a.attnum > 0 AND NOT a.attisdropped
      ORDER BY a.attnum`,
    [project, table],
  );
  return rows.map((r) => ({ name: r.name, type: r.type, ...(r.srid !== null ? { srid: r.srid } : {}) }));
}
