/** `civic-etl quarantine DATASET`: the values a dataset's loads set aside, with the rule, column and source line. */
import { loadPipeline } from '../contract/load.ts';
import { ENV } from '../contract/names.ts';
import { args, DEFAULT_PIPELINE, positiveInt, printJson, printTable, UsageError } from './cli-kit.ts';

export const QUARANTINE_HELP = `Usage:
  civic-etl quarantine DATASET [--rule RULE] [--column COL] [--load ID] [--limit N] [--pipeline FILE] [--json]
      The values the dataset's loads set aside (<project>.<dataset>_quarantine), newest load
      first, in source-line order: load, source line, column, value, the rule that failed and why;
      then the count by rule. --rule keeps one rule (type, required, unique, references, a value
      map's name…), --column one column, --load one load; --limit N values (default 50).
      --json prints { dataset, total, byRule, values }.`;

export interface QuarantinedValue {
  loadId: number;
  objectKey: string | null;
  line: number;
  column: string;
  value: string | null;
  rule: string;
  reason: string;
}

export async function quarantineCommand(argv: string[]): Promise<number> {
  const { values, positionals } = args(
    argv,
    { pipeline: { type: 'string' }, rule: { type: 'string' }, column: { type: 'string' }, load: { type: 'string' }, limit: { type: 'string' }, json: { type: 'boolean' } },
    true,
  );
  if (positionals.length !== 1) throw new UsageError('quarantine takes exactly one DATASET');
  const limit = positiveInt('--limit', values.limit, 'values') ?? 50;
  const loadId = positiveInt('--load', values.load, 'a load id');
  const pipeline = loadPipeline(values.pipeline ?? DEFAULT_PIPELINE);
  const name = positionals[0]!;
  if (!pipeline.datasets.some((d) => d.name === name)) throw new UsageError(`unknown dataset "${name}" (datasets: ${pipeline.datasets.map((d) => d.name).join(', ')})`);
  if (!process.env[ENV.databaseUrl]) await (await import('./services.ts')).ensureServices();
  const { getPool, closePool, ident } = await import('../functions/common/db.ts');
  try {
    const pool = await getPool();
    const table = `${ident(pipeline.project)}.${ident(`${name}_quarantine`)}`;
    const exists = (await pool.query(`SELECT to_regclass($1) IS NOT NULL AS ok`, [`${pipeline.project}.${name}_quarantine`])).rows[0].ok as boolean;
    const where = ['($1::text IS NULL OR q.rule = $1)', '($2::text IS NULL OR q.column_name = $2)', '($3::bigint IS NULL OR q.load_id = $3)'].join(' AND ');
    const params = [values.rule ?? null, values.column ?? null, loadId ?? null];
    let found: QuarantinedValue[] = [];
    let byRule: { rule: string; values: number; rows: number }[] = [];
    if (exists) {
      const { rows } = await pool.query(
        `SELECT q.load_id::int, l.object_key, q.source_line::int AS line, q.column_name, q.raw_value, q.rule, q.reason
           FROM ${table} q LEFT JOIN etl.loads l ON l.id = q.load_id
          WHERE ${where} ORDER BY q.load_id DESC, q.source_line, q.column_name LIMIT $4`,
        [...params, limit],
      );
      found = rows.map((r) => ({ loadId: r.load_id, objectKey: r.object_key, line: r.line, column: r.column_name, value: r.raw_value, rule: r.rule, reason: r.reason }));
      byRule = (
        await pool.query(
          `SELECT q.rule, count(*)::int AS values, count(DISTINCT (q.load_id, q.source_line))::int AS rows FROM ${table} q WHERE ${where} GROUP BY q.rule ORDER BY count(*) DESC, q.rule`,
          params,
        )
      ).rows;
    }
    const total = byRule.reduce((n, r) => n + r.values, 0);
    if (values.json) {
      printJson({ dataset: `${pipeline.project}.${name}`, total, byRule, values: found });
      return 0;
    }
    const filters = [values.rule && `rule ${values.rule}`, values.column && `column ${values.column}`, loadId && `load ${loadId}`].filter(Boolean).join(', ');
    if (total === 0) {
      console.log(`dataset ${pipeline.project}.${name}: no quarantined value${filters ? ` (${filters})` : ''}`);
      return 0;
    }
    console.log(
      `dataset ${pipeline.project}.${name}: ${total} quarantined value${total === 1 ? '' : 's'}${filters ? ` (${filters})` : ''}, ${found.length < total ? `the first ${found.length}, ` : ''}newest load first:`,
    );
    printTable(
      found.map((v) => ({ load: v.loadId, line: v.line, column: v.column, value: v.value ?? '(empty)', rule: v.rule, reason: v.reason })),
      60,
    );
    console.log('\nby rule:');
    printTable(byRule.map((r) => ({ rule: r.rule, values: r.values, rows: r.rows })));
    return 0;
  } finally {
    await closePool();
  }
}
