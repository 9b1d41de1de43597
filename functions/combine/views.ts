import { createHash } from 'node:crypto';
import type pg from 'pg';
import type { PipelineDefinition, ViewDefinition } from '../../contract/definition.ts';
import { ident } from '../common/db.ts';
import { BlockedError } from '../common/errors.ts';
import { analystRole } from '../migrate/migrations.ts';
import { CombineError, combineSql } from './compile.ts';
import { syncValueMapTable } from './value-map-tables.ts';
/**
 * A declared view cannot be created. Not the file's fault: the definition must be fixed (and
 * deployed); until then the load waits — it is retried, then sits in the DLQ for a redrive.
 */
/** A view that cannot be created: the definition must change (a blocked failure, common/errors.ts). */
export class ViewError extends BlockedError {
  override name = 'ViewError';
}

export interface CombineResult {
  /** Views (re)created. */
  created: string[];
  /** Views that exist with the same SQL: left alone. */
  unchanged: string[];
  /** Views not created yet, with the datasets they still wait for. */
  waiting: { view: string; missing: string[] }[];
  /** Materialized views refreshed (their SQL unchanged, a dataset they read cleaned). */
  refreshed: string[];
}

/** Drop the view or materialized view of that name, if there is one (and what depends on it). */
async function dropRelation(client: pg.PoolClient, project: string, name: string): Promise<void> {
  const { rows } = await client.query<{ relkind: string }>(`SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2`, [project, name]);
  const kind = rows[0]?.relkind;
  if (kind === 'v') await client.query(`DROP VIEW ${ident(project)}.${ident(name)} CASCADE`);
  if (kind === 'm') await client.query(`DROP MATERIALIZED VIEW ${ident(project)}.${ident(name)} CASCADE`);
}

/** The view's SELECT with `{{schema}}` replaced by the project's quoted schema. */
export function viewSql(pipeline: PipelineDefinition, view: ViewDefinition & { sql: string }): string {
  return view.sql
    .replace(/\{\{\s*schema\s*\}\}/g, ident(pipeline.project))
    .trim()
    .replace(/;\s*$/, '');
}

/**
 * The statements of `sql`, as PostgreSQL's lexer splits them: each top-level `;` ends one, while
 * a `;` inside a string (`'…'`, `E'…'` with backslash escapes), a quoted identifier (`"…"`), a
 * dollar-quoted string (`$tag$…$tag$`) or a comment (`--`, nested `/* … *\/`) does not. Only
 * statements holding something besides white space and comments are returned, each as the offset
 * of its first character of code and its text.
 */
export function sqlStatements(sql: string): { offset: number; text: string }[] {
  const out: { offset: number; text: string }[] = [];
  let code = -1;
  const n = sql.length;
  const identChar = (c: string | undefined) => c !== undefined && /[A-Za-z0-9_$\u0080-\uffff]/.test(c);
  for (let i = 0; i < n;) {
    const c = sql[i]!;
    const next = sql[i + 1];
    if (c === '-' && next === '-') {
      const end = sql.indexOf('\n', i);
      i = end < 0 ? n : end + 1;
      continue;
    }
    if (c === '/' && next === '*') {
      let depth = 1;
      i += 2;
      while (i < n && depth > 0) {
        if (sql[i] === '/' && sql[i + 1] === '*') {
          depth++;
          i += 2;
        } else if (sql[i] === '*' && sql[i + 1] === '/') {
          depth--;
          i += 2;
        } else i++;
      }
      continue;
    }
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === ';') {
      if (code >= 0) out.push({ offset: code, text: sql.slice(code, i) });
      code = -1;
      i++;
      continue;
    }
    if (code < 0) code = i;
    if (c === "'" || c === '"') {
      // E'…' (not part of a longer name) takes backslash escapes; elsewhere a doubled quote is the escape
      const escapes = c === "'" && (sql[i - 1] === 'E' || sql[i - 1] === 'e') && !identChar(sql[i - 2]);
      i++;
      while (i < n) {
        if (escapes && sql[i] === '\\') i += 2;
        else if (sql[i] === c && sql[i + 1] === c) i += 2;
        else if (sql[i] === c) break;
        else i++;
      }
      i++;
      continue;
    }
    if (c === '$' && !identChar(sql[i - 1])) {
      const tag = /^\$([A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/.exec(sql.slice(i, i + 200));
      if (tag) {
        const end = sql.indexOf(tag[0], i + tag[0].length);
        i = end < 0 ? n : end + tag[0].length;
        continue;
      }
    }
    i++;
  }
  if (code >= 0) out.push({ offset: code, text: sql.slice(code) });
  return out;
}

/**
 * Why the SQL of a view is not exactly one statement, with the offset of the second one (or of
 * nothing at all); `undefined` when it is. A view is created with the extended query protocol,
 * which runs one statement only; this says so before the database is asked, naming the place.
 */
export function singleStatementProblem(sql: string): { message: string; offset: number } | undefined {
  const statements = sqlStatements(sql);
  if (statements.length === 1) return undefined;
  if (statements.length === 0) return { message: 'the SQL holds no statement', offset: 0 };
  const second = statements[1]!;
  return {
    message: `the SQL holds ${statements.length} statements, where a view is exactly one SELECT; the second starts with "${second.text.slice(0, 40).replace(/\s+/g, ' ')}"`,
    offset: second.offset,
  };
}

/**
 * Combine: keep the value maps as a table (value-map-tables.ts), then create every declared view
 * whose datasets all have a clean table, in declared order (a view may read the views above it).
 * A view that reads a nested table no record has filled yet (and the views over it) waits too. A view that exists with the same SQL is left alone (no
 * lock taken, so readers are never in the way); a new or changed one is replaced. Runs inside the
 * caller's transaction, so readers switch from the old tables and views to the new ones at one
 * commit. A view whose SQL fails is a ViewError naming the view: the transaction rolls back,
 * leaving the previous tables and views intact.
 */
export async function recreateViews(client: pg.PoolClient, pipeline: PipelineDefinition, cleaned?: string): Promise<CombineResult> {
  const result: CombineResult = { created: [], unchanged: [], waiting: [], refreshed: [] };
  const schema = ident(pipeline.project);
  // the value maps as a table (<project>._value_maps), for views that match descriptors many-to-many
  await syncValueMapTable(client, pipeline);
  for (const view of pipeline.views) {
    const { rows } = await client.query<{ dataset: string }>(`SELECT d AS dataset FROM unnest($1::text[]) AS d WHERE to_regclass(format('%I.%I', $2::text, d)) IS NULL`, [view.datasets, pipeline.project]);
    const name = `${schema}.${ident(view.name)}`;
    if (rows.length > 0) {
      result.waiting.push({ view: view.name, missing: rows.map((r) => r.dataset) });
      continue;
    }
    let sql: string;
    try {
      sql = view.combine ? await combineSql(client, pipeline, view.combine) : viewSql(pipeline, view as ViewDefinition & { sql: string });
    } catch (error) {
      if (error instanceof CombineError) throw new ViewError(`view "${view.name}" cannot be created: ${error.message}`, { cause: error });
      throw error;
    }
    const problem = view.combine ? undefined : singleStatementProblem(sql);
    if (problem) throw new ViewError(`view "${view.name}" cannot be created: ${problem.message}`);
    const kind = view.materialized ? 'MATERIALIZED VIEW' : 'VIEW';
    const sha = createHash('sha256')
      .update(`${kind}\n${sql}\n${view.description ?? ''}`)
      .digest('hex');
    const same = await client.query(`SELECT 1 FROM etl.views WHERE project = $1 AND name = $2 AND sql_sha256 = $3 AND to_regclass(format('%I.%I', $1::text, $2::text)) IS NOT NULL`, [
      pipeline.project,
      view.name,
      sha,
    ]);
    if (same.rowCount) {
      // a materialized view is data: it follows every clean of a dataset it reads
      if (view.materialized && (cleaned === undefined || view.datasets.includes(cleaned))) {
        await client.query(`REFRESH MATERIALIZED VIEW ${name}`);
        result.refreshed.push(view.name);
      }
      result.unchanged.push(view.name);
      continue;
    }
    await client.query('SAVEPOINT combine_view');
    try {
      await dropRelation(client, pipeline.project, view.name);
      // extended protocol: one statement only, so view SQL cannot smuggle in a second one
      await client.query({ text: `CREATE ${kind} ${name} AS ${sql}`, queryMode: 'extended' } as pg.QueryConfig);
      if (view.description) await client.query(`COMMENT ON ${kind} ${name} IS '${view.description.replace(/'/g, "''")}'`);
      await client.query(`GRANT SELECT ON ${name} TO ${ident(analystRole(pipeline.project))}`);
      await client.query(
        `INSERT INTO etl.views (project, name, sql_sha256) VALUES ($1, $2, $3)
         ON CONFLICT (project, name) DO UPDATE SET sql_sha256 = excluded.sql_sha256, created_at = now()`,
        [pipeline.project, view.name, sha],
      );
      await client.query('RELEASE SAVEPOINT combine_view');
    } catch (error) {
      await client.query('ROLLBACK TO SAVEPOINT combine_view');
      const pgError = error as { code?: string; message?: string };
      const missing = pgError.code === '42P01' ? notYetThere(pipeline, view, pgError.message ?? '', result) : undefined;
      if (missing) {
        // a nested table no record has filled yet (no student has a characteristic): the view waits for it
        result.waiting.push({ view: view.name, missing: [missing] });
        continue;
      }
      if (pgError.code && /^(42|22|0A)/.test(pgError.code)) {
        throw new ViewError(`view "${view.name}" cannot be created: ${pgError.message}`, { cause: error });
      }
      throw error;
    }
    result.created.push(view.name);
  }
  return result;
}

/**
 * The relation a view's SQL named that does not exist yet but will: a nested table of a dataset it
 * reads (`<dataset>_<array>`, made by the first record that has the array: `read.arrays: explode`),
 * or a view above it that is itself waiting. Undefined for any other missing relation (a typo
 * stays a ViewError).
 */
function notYetThere(pipeline: PipelineDefinition, view: ViewDefinition, message: string, result: CombineResult): string | undefined {
  const named = /relation "([^"]+)" does not exist/.exec(message)?.[1];
  if (!named) return undefined;
  const name = named.slice(named.lastIndexOf('.') + 1);
  if (result.waiting.some((w) => w.view === name)) return name;
  const nested = view.datasets.some((d) => name.startsWith(`${d}_`) && pipeline.datasets.find((x) => x.name === d)?.read.arrays === 'explode');
  return nested ? name : undefined;
}
