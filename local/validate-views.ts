/**
 * `civic-etl validate --database-url URL`: create each view of a definition in a database, inside
 * a transaction that is always rolled back, and name the YAML line of every view that fails —
 * all of them in one pass (each view in a savepoint of its own).
 *
 * A dataset without a clean table in that database gets a stand-in for the check: its declared
 * columns, a geometry column (unless `geometry.enabled: false` — a dataset may have one, so a view
 * using it is not flagged) and the lineage columns, as the clean step makes them. A view reading a
 * dataset whose columns are detected from the data, and that has no clean table there yet, cannot
 * be checked: it is reported as not checked.
 */
import { readFileSync } from 'node:fs';
import type pg from 'pg';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node } from 'yaml';
import { COLUMN_TYPES, type PipelineDefinition, type ViewDefinition } from '../contract/definition.ts';
import { ident } from '../functions/common/db.ts';
import { combineSql } from '../functions/combine/compile.ts';
import { singleStatementProblem, viewSql } from '../functions/combine/views.ts';

export interface ViewCheck {
  view: string;
  status: 'ok' | 'error' | 'not checked';
  /** The definition file's line: of the mistake within the SQL when PostgreSQL says where, else of the view's sql (or combine). */
  line?: number;
  message?: string;
}

/**
 * The checks that need no database: the SQL of each view is exactly one statement (the runtime's
 * rule, functions/combine/views.ts `singleStatementProblem`). Returns the failing views only, each
 * with the file's line of the second statement.
 */
export function checkViewStatements(pipeline: PipelineDefinition, file: string): ViewCheck[] {
  const where = locateViews(file);
  return pipeline.views.flatMap((view, i) => statementCheck(pipeline, view, where[i]) ?? []);
}

function statementCheck(pipeline: PipelineDefinition, view: ViewDefinition, at: ViewPlace | undefined): ViewCheck | undefined {
  if (view.sql === undefined) return undefined;
  const sql = viewSql(pipeline, view as ViewDefinition & { sql: string });
  const problem = singleStatementProblem(sql);
  if (!problem) return undefined;
  return { view: view.name, status: 'error', line: at?.sqlLine(sql.slice(0, problem.offset)), message: problem.message };
}

export async function checkViews(pool: pg.Pool, pipeline: PipelineDefinition, file: string): Promise<ViewCheck[]> {
  const where = locateViews(file);
  const schema = ident(pipeline.project);
  const client = await pool.connect();
  const results: ViewCheck[] = [];
  try {
    await client.query('BEGIN');
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    const unknown = new Set<string>();
    for (const d of pipeline.datasets) {
      const { rows } = await client.query(`SELECT to_regclass(format('%I.%I', $1::text, $2::text)) IS NOT NULL AS ok`, [pipeline.project, d.name]);
      if (rows[0].ok) continue;
      const columns = d.clean.columns ?? [];
      if (columns.length === 0) {
        unknown.add(d.name);
        continue;
      }
      const geometry = d.geometry.enabled ? [`${ident(d.geometry.column)} geometry(Geometry, ${d.geometry.srid})`] : [];
      const history = d.clean.mode === 'history' ? ['valid_from timestamptz', 'valid_to timestamptz'] : [];
      const table = `${schema}.${ident(d.name)}`;
      const all = [...columns.map((c) => `${ident(c.name)} ${COLUMN_TYPES[c.type]}`), ...geometry, '_load_id bigint', '_source_line bigint', ...history];
      await client.query(`CREATE TABLE ${table} (${all.join(', ')})`);
      if (history.length) await client.query(`CREATE VIEW ${schema}.${ident(`${d.name}_current`)} AS SELECT * FROM ${table} WHERE valid_to IS NULL`);
    }
    for (const [i, view] of pipeline.views.entries()) {
      const at = where[i];
      const statements = statementCheck(pipeline, view, at);
      if (statements) {
        results.push(statements);
        continue;
      }
      const missing = view.datasets.filter((d) => unknown.has(d));
      if (missing.length > 0) {
        results.push({
          view: view.name,
          status: 'not checked',
          line: at?.line,
          message: `it reads ${missing.join(', ')}, whose columns come from the data, and there is no clean table yet in this database`,
        });
        continue;
      }
      await client.query('SAVEPOINT view_check');
      let sql = '';
      try {
        sql = view.combine ? await combineSql(client, pipeline, view.combine) : viewSql(pipeline, view as ViewDefinition & { sql: string });
        const name = `${schema}.${ident(view.name)}`;
        await client.query(`DROP VIEW IF EXISTS ${name} CASCADE`).catch(() => undefined);
        const kind = view.materialized ? 'MATERIALIZED VIEW' : 'VIEW';
        const prefix = `CREATE ${kind} ${name} AS `;
        try {
          await client.query({ text: `${prefix}${sql}${view.materialized ? ' WITH NO DATA' : ''}`, queryMode: 'extended' } as pg.QueryConfig);
        } catch (error) {
          const position = Number((error as { position?: string }).position);
          throw Object.assign(error as Error, { offset: Number.isFinite(position) && position > prefix.length ? position - 1 - prefix.length : undefined });
        }
        await client.query('RELEASE SAVEPOINT view_check');
        results.push({ view: view.name, status: 'ok', line: at?.line });
      } catch (error) {
        await client.query('ROLLBACK TO SAVEPOINT view_check');
        const offset = (error as { offset?: number }).offset;
        const line = at === undefined ? undefined : offset === undefined || view.combine ? at.line : at.sqlLine(sql.slice(0, offset));
        results.push({ view: view.name, status: 'error', line, message: (error as Error).message });
      }
    }
  } finally {
    await client.query('ROLLBACK').catch(() => undefined);
    client.release();
  }
  return results;
}

interface ViewPlace {
  /** Line of the view's `sql:` (or `combine:`) value. */
  line: number;
  /** The file's line of a place in the view's SQL, given the SQL before it (as viewSql trims it). */
  sqlLine(before: string): number;
}

/** Where each view's SQL is in the definition file (YAML or JSON), by the view's index. */
export function locateViews(file: string): (ViewPlace | undefined)[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter });
  const views = doc.get('views', true) as Node | undefined;
  if (!isSeq(views)) return [];
  return views.items.map((item) => {
    if (!isMap(item)) return undefined;
    const node = (item.get('sql', true) ?? item.get('combine', true)) as Node | undefined;
    if (!node?.range) return undefined;
    const line = lineCounter.linePos(node.range[0]).line;
    const value = isScalar(node) && typeof node.value === 'string' ? node.value : '';
    // a block scalar (sql: |) starts on the line after its header; viewSql trims leading blank lines
    const block = isScalar(node) && (node.type === 'BLOCK_LITERAL' || node.type === 'BLOCK_FOLDED');
    const leading = (/^\s*/.exec(value)?.[0].match(/\n/g) ?? []).length;
    const first = line + (block ? 1 : 0) + leading;
    return { line, sqlLine: (before: string) => first + (before.match(/\n/g) ?? []).length };
  });
}

export function readableChecks(file: string, checks: ViewCheck[]): string[] {
  return checks.filter((c) => c.status !== 'ok').map((c) => `${file}${c.line ? `:${c.line}` : ''}: view "${c.view}" ${c.status === 'error' ? 'fails' : 'not checked'}: ${c.message}`);
}
