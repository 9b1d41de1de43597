/**
 * What the pages of the local console (`civic-etl ui`) share: the context a page is rendered in,
 * read-only transactions with a statement timeout, links that keep their filters, pagination,
 * the navigation bar, and how times, durations and numbers are written.
 */
import type { SQSClient } from '@aws-sdk/client-sqs';
import type pg from 'pg';
import type { PipelineDefinition } from '../../contract/definition.ts';
import type { Queryable } from '../../functions/common/db.ts';
import { html, raw, type Html } from '../../functions/common/html.ts';
import { messageOf } from '../../functions/common/errors.ts';

export interface ConsoleContext {
  pool: pg.Pool;
  pipeline: PipelineDefinition;
  sqs: SQSClient;
  /** The per-server random token a redrive form must send back. */
  token: string;
  /** Longest a page's query may run, ms. */
  statementTimeoutMs: number;
}

/** A request as a page sees it: the path's parts after the page's own, and the query string. */
export interface PageRequest {
  params: URLSearchParams;
  /** Path segments after the page's prefix, decoded (`/loads/12/report` → ['12', 'report']). */
  rest: string[];
}

/** What a page renders: its title and body (the server wraps them in the shell). */
export interface PageResult {
  title: string;
  body: Html;
  status?: number;
  /** A whole document of its own (the quality report a supplier reads), sent as it is instead of `body` in the console's shell. */
  document?: string;
}

/** Rows of one page of a table. */
export const PAGE_SIZE = 50;

/**
 * Run `fn` in a READ ONLY transaction whose statements stop after `ctx.statementTimeoutMs`: a
 * page can neither change the database nor hold a connection for long.
 */
export async function readOnly<T>(ctx: ConsoleContext, fn: (db: Queryable) => Promise<T>): Promise<T> {
  const client = await ctx.pool.connect();
  let failed: Error | undefined;
  try {
    await client.query(`BEGIN READ ONLY; SET LOCAL statement_timeout = ${Math.max(1, Math.round(ctx.statementTimeoutMs))}`);
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    failed = error as Error;
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    // a broken connection is not handed out again
    client.release(failed && /Connection terminated|connection is closed/i.test(failed.message) ? failed : undefined);
  }
}

/** Does this relation exist (a table or view not made yet reads as a message, not an error)? */
export async function exists(db: Queryable, schema: string, name: string): Promise<boolean> {
  const { rows } = await db.query<{ ok: boolean }>(`SELECT to_regclass(format('%I.%I', $1::text, $2::text)) IS NOT NULL AS ok`, [schema, name]);
  return rows[0]?.ok ?? false;
}

/** A link to `path` with these query parameters (empty ones left out). */
export function href(path: string, params: Record<string, string | number | undefined | null> = {}): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

/** The 1-based page number a request asks for (`?page=`), 1 when absent or not a number. */
export function pageNumber(params: URLSearchParams): number {
  const n = Number(params.get('page') ?? '1');
  return Number.isInteger(n) && n >= 1 && n <= 1_000_000 ? n : 1;
}

/** A positive whole number from the query string, or undefined. */
export function idParam(params: URLSearchParams, name: string): number | undefined {
  const v = params.get(name);
  if (v === null || v === '') return undefined;
  const n = Number(v);
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

/** "rows 51–100 of 300" and the previous/next links, keeping the other filters. */
export function pager(path: string, filters: Record<string, string | number | undefined>, page: number, total: number, what = 'rows'): Html {
  if (total === 0) return html``;
  const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
  const from = (page - 1) * PAGE_SIZE + 1;
  const to = Math.min(total, page * PAGE_SIZE);
  const prev = page > 1 ? html`<a rel="prev" href="${href(path, { ...filters, page: page - 1 })}">← previous</a>` : '';
  const next = page < pages ? html`<a rel="next" href="${href(path, { ...filters, page: page + 1 })}">next →</a>` : '';
  return html`<p class="pager"><span class="range">${what} ${fmt(Math.min(from, total))}–${fmt(to)} of <span class="total">${fmt(total)}</span></span> ${prev} ${next}</p>`;
}

export const fmt = (n: number | string | null | undefined): string => (n === null || n === undefined ? '' : Number(n).toLocaleString('en-US'));

/** A time as UTC, to the second: 2024-05-01 10:00:00. */
export function when(value: Date | string | null | undefined): string {
  if (value === null || value === undefined) return '';
  const d = value instanceof Date ? value : new Date(value);
  return Number.isNaN(d.getTime()) ? String(value) : d.toISOString().slice(0, 19).replace('T', ' ');
}

/** A duration in ms as people read it: 42 ms, 1.25 s, 4 min 05 s. */
export function ms(value: number | string | null | undefined): string {
  if (value === null || value === undefined) return '';
  const n = Number(value);
  if (n < 1000) return `${Math.round(n)} ms`;
  if (n < 60_000) return `${(n / 1000).toFixed(2)} s`;
  return `${Math.floor(n / 60_000)} min ${String(Math.floor((n % 60_000) / 1000)).padStart(2, '0')} s`;
}

/** An object key that may wrap after each "/" (a long key must not widen its table). */
export function objectKey(key: string): Html {
  return html`<span class="mono key" title="${key}">${key.split('/').map((part, i) => html`${i > 0 && raw('/<wbr>')}${part}`)}</span>`;
}

export function statusBadge(status: string): Html {
  return html`<span class="status ${status}">${status}</span>`;
}

const SECTIONS = [
  ['loads', 'Loads'],
  ['queues', 'Queues'],
  ['quarantine', 'Quarantine'],
  ['catalog', 'Catalog'],
  ['views', 'Views'],
] as const;

/** The navigation bar: the project, then one link per section, the current one marked. */
export function navigation(project: string, current: string): Html {
  return html`<nav><strong>civic-etl · ${project}</strong> ${SECTIONS.map(
    ([path, label]) => html` <a href="/${path}"${current === path ? raw(' aria-current="page" class="here"') : ''}>${label}</a>`,
  )}</nav>`;
}

/** A message in place of a table that is not there yet. */
export function notice(text: string | Html): Html {
  return html`<div class="error notice">${text}</div>`;
}

/** A `<select>` of a filter form, the chosen value selected. */
export function select(name: string, label: string, options: readonly (string | { value: string; label: string })[], chosen: string | null | undefined, anyLabel = 'any'): Html {
  return html`<label>${label} <select name="${name}"><option value="">${anyLabel}</option>${options.map((o) => {
    const value = typeof o === 'string' ? o : o.value;
    const text = typeof o === 'string' ? o : o.label;
    return html`<option value="${value}"${value === chosen ? raw(' selected') : ''}>${text}</option>`;
  })}</select></label>`;
}

/** The console's CSS, added to the shared page style. */
export const CONSOLE_CSS = `
nav strong{margin-right:20px}nav a.here{font-weight:650;text-decoration:none;color:var(--fg)}
form.filters{display:flex;flex-wrap:wrap;gap:10px;align-items:end;margin:.6em 0 1em}
form.filters label{display:flex;flex-direction:column;font-size:.85em;color:var(--muted)}
form.filters input,form.filters select{font:inherit;font-size:1rem;padding:3px 6px;min-width:9em}
button{font:inherit;padding:4px 12px;cursor:pointer}
.pager a{margin-left:12px}
td.err{min-width:180px;max-width:420px;overflow-wrap:anywhere}
table.loads{font-size:.8em}table.loads td,table.loads th{padding:4px 6px}
pre{background:var(--soft);border:1px solid var(--line);padding:8px;overflow:auto;font-size:.85em}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:.6em 0}dl.facts dt{color:var(--muted)}dl.facts dd{margin:0}
.notice{border-left-color:var(--warn);background:#fff8e6}
.done{border-left:4px solid var(--ok);background:#eef8f0;padding:8px 12px;margin:.8em 0}
td .top{color:var(--muted);font-size:.9em}
mark{background:#fff0a8}
pre.report{white-space:pre-wrap;font-size:.95em}
main{max-width:1400px}
.scroll{overflow-x:auto;max-width:100%}
table.rows td{white-space:nowrap}
`;

/** Why a database error is not the console's fault, in words, when it is one of those. */
export function readableDatabaseError(error: unknown): string | undefined {
  const code = (error as { code?: string }).code;
  const message = messageOf(error);
  if (code === '42P01' || code === '3F000') return `Not in this database yet: ${message}. Run the pipeline once (civic-etl run), or check DATABASE_URL.`;
  if (code === '57014') return `The page's query took too long and was stopped (${message}).`;
  if (code === '28P01' || code === '3D000' || /ECONNREFUSED|connect ETIMEDOUT/.test(message))
    return `The database cannot be reached: ${message}. Are the local services running (civic-etl services status)?`;
  return undefined;
}
