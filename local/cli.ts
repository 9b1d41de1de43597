/**
 * `civic-etl` — the command line: run the pipeline locally, load one file, validate definitions,
 * fetch a source, show the ledger, serve the local console, manage the local services.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ENV } from '../contract/names.ts';
import { readsOf } from '../functions/profile/column-type.ts';

import { args, DEFAULT_PIPELINE, logsToStderr, printJson, printTable, ROOT, UsageError } from './cli-kit.ts';

/**
 * The help of each command: its synopsis and what it does. `civic-etl CMD --help` prints one,
 * `civic-etl help` all. A command in its own file exports its help beside it (DLQ_HELP…).
 */
const HELP: Record<string, string> = {
  run: `  civic-etl run [--pipeline FILE] [--upload-examples] [--max-seconds N] [--verbose] [--json]
      Run the pipeline locally against real services (PostgreSQL + PostGIS, moto for S3/SQS),
      starting them if needed, until every queue is empty; then print the views and the ledger.
      --upload-examples first uploads <pipeline dir>/data/<dataset>.* as each supplier would.
      --max-seconds N stops waiting for the queues to empty after N s (default 600). --json prints
      one JSON object at the end: uploads, messages per queue, views, loads, failures.`,
  load: `  civic-etl load FILE --table SCHEMA.TABLE [--database-url URL] [--delimiter D] [--append] [--recreate]
                 [--format F] [--sheet S] [--layer L] [--member GLOB]
                 [--srid N] [--source-srid N] [--lat COL --lon COL] [--invalid repair|quarantine]
                 [--type-threshold SHARE] [--into-pipeline-schema] [--verbose] [--json]
      Load one file straight into a table: CSV in any encoding, XLSX/ODS/XLS, JSON/NDJSON, GeoJSON,
      a zipped shapefile, a GeoPackage, Parquet (gzip or zip around any of them). Detect, stage with COPY,
      infer types (a type is kept when SHARE, default 0.99, of a column's values cast), cast.
      Rows that do not cast go to SCHEMA.TABLE_rejects with line and reason; a new table gets
      laundered column names. Geometry (the file's own, or lat/lon columns) becomes a geom column
      in EPSG:4326 (or --srid) with a GiST index; --source-srid names the source SRID when the
      file does not. --sheet/--layer/--member choose one table of a workbook, GeoPackage or zip.
      A schema a pipeline owns (<project>, <project>_staging, etl) is refused unless
      --into-pipeline-schema: a table loaded there can break that pipeline's clean step.`,
  profile: `  civic-etl profile FILE [--json] [--locale fr,nl,us] [--sample N] [--type-threshold SHARE] [--delimiter D] [--format F] [--sheet S] [--layer L] [--member GLOB]
      Detect how a file is written (CSV: encoding, delimiter, header row…; or a spreadsheet, JSON,
      GeoJSON, shapefile, GeoPackage, Parquet) and profile each column: base type, semantic format
      with a confidence score, the type \`load\` gives it (and how it reads the values: decimal
      comma, date order), missing, distinct, top values, ranges. Reads gzip, and each data member
      of a zip archive. --json prints one JSON object (an array for several members).
      --sheet (a name, else a 0-based index) profiles that sheet instead of the one holding the table.
      --delimiter (, ; tab |) reads a CSV with that delimiter instead of the detected one.`,
  validate: `  civic-etl validate [FILE…] [--database | --database-url URL] [--json]
      Check pipeline definitions (default: ${relative(process.cwd(), DEFAULT_PIPELINE)}). With --database
      (the local one) or --database-url, also create each view in that database, in a transaction
      rolled back at the end, and name the file's line of every view that fails, all in one pass
      (datasets without a clean table there get a stand-in from their declared columns). --json
      prints an array: each file, valid or not, its problems and its views' checks.`,
  fetch: `  civic-etl fetch DATASET|EDFI_API [--pipeline FILE] [--verbose] [--json]
      Fetch a dataset's source once into raw/ (a file URL with a conditional GET, or an API's records), as the scheduled function does.`,
  status: `  civic-etl status [DATASET] [--pipeline FILE] [--limit N] [--json]
      The latest N loads of the project from the ledger (default 20), newest first: load id, start,
      duration, status, rows, error; then the latest 5 queue messages rejected as unreadable
      (not an S3 event, not JSON…: acknowledged, not retried) with their message id and reason,
      and the messages waiting in each dead-letter queue.
      With DATASET, its latest N loads (default 5) each with its quality report: rows read,
      loaded and quarantined, counts by rule with example lines, unmapped values, schema
      changes, the error of a failed load. --json prints the same as one JSON document: without
      DATASET an object of project, loads, loadsInLedger (their number in all),
      rejectedMessages (total, and the latest with step, messageId, queue, receivedAt, reason,
      receives and body) and deadLetters (step, queueUrl, messages; deadLettersNotChecked and
      why, when moto does not answer); with DATASET the loads and their reports.`,
  replay: `  civic-etl replay DATASET [--from DATE] [--version ID] [--dry-run] [--pipeline FILE] [--verbose] [--json]
      Stage a dataset's object versions in the local bucket again, oldest first, and clean each:
      the clean table ends as a fresh run over those versions would leave it. Each replay is a
      new load in the ledger that names the load it replays. --from keeps versions last
      modified at or after DATE (2024-05-01 or 2024-05-01T10:00:00Z); --version replays one
      version id; --dry-run lists the versions. Exit code 1 if a replayed load failed or was
      skipped (a newer load applied meanwhile).`,
  catalog: `  civic-etl catalog [search] [WORDS…] [--organization O] [--tag T] [--license L] [--pipeline FILE] [--limit N] [--json]
      Find the project's staged open-data catalogue resources by what their portal says of them:
      words of the dataset and resource titles, description, organisation, tags or column names
      (web-search syntax: "espaces verts" -arbres), the organisation (name or id), a tag, a licence.
      \`civic-etl catalog search WORDS…\` is the same search.`,
  services: `  civic-etl services start|stop|status|env|clean [--json]
      Manage the local PostgreSQL + PostGIS and moto services (scripts/services.sh). --json prints
      one object: for status each service's state, for env the variables of .local/env.`,
};

const USAGE = `civic-etl — get, stage, clean and combine public data into PostgreSQL + PostGIS

Usage:
${Object.values(HELP).join('\n')}
  civic-etl dlq list|redrive [stage|clean|fetch] [--outputs FILE] [--json]
      The dead-letter queues, locally or of a deployed stack: what waits, and redrive (civic-etl dlq --help).
  civic-etl quarantine DATASET [--rule RULE] [--column COL] [--load ID] [--limit N] [--json]
      The values the dataset's loads set aside: load, source line, column, value, rule, reason.
  civic-etl upload FILE --supplier S --dataset D [--json]
      Upload a file to the local landing bucket as that supplier would (incoming/S/D/<file>).
  civic-etl ui [--port N] [--host 127.0.0.1] [--open] [--pipeline FILE]
      The local console in a browser, on loopback: loads, queues and DLQs (redrive), quarantine, catalog, views.
  civic-etl demo edfi [--students N] [--days N] [--pipeline FILE]
      The Ed-Fi example end to end on loopback, full then incremental (civic-etl demo --help).
  civic-etl --version

Every command answers --help. Environment: DATABASE_URL (use this database instead of the local one), CIVIC_ETL_PIPELINE_FILE.`;

/** Commands kept in a file of their own: their help is there too. */
const HELP_IN_FILES: Record<string, () => Promise<string>> = {
  dlq: async () => (await import('./dlq-command.ts')).DLQ_HELP,
  quarantine: async () => (await import('./quarantine-command.ts')).QUARANTINE_HELP,
  upload: async () => (await import('./upload-command.ts')).UPLOAD_HELP,
  ui: async () => (await import('./ui-command.ts')).UI_HELP,
  demo: async () => (await import('./edfi-demo.ts')).DEMO_HELP,
};

async function helpOf(command: string): Promise<string | undefined> {
  if (HELP[command] !== undefined) return `Usage:\n${HELP[command]}`;
  return HELP_IN_FILES[command]?.();
}

function version(): string {
  return (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === '--version' || command === '-V' || command === 'version') {
    console.log(`civic-etl ${version()}`);
    return 0;
  }
  if (command !== undefined && (rest.includes('--help') || rest.includes('-h') || (command === 'help' && rest.length > 0))) {
    const help = await helpOf(command === 'help' ? rest[0]! : command);
    if (help === undefined) throw new UsageError(`unknown command "${command === 'help' ? rest[0] : command}"`);
    console.log(help);
    return 0;
  }
  // the runtime's JSON log lines go to stderr: stdout holds what the command prints
  await logsToStderr();
  // the handlers' metric lines are for CloudWatch (functions/common/metrics.ts); here the ledger and `status` tell
  process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
  switch (command) {
    case 'run':
      return run(rest);
    case 'load':
      return load(rest);
    case 'validate':
      return validate(rest);
    case 'profile':
      return profile(rest);
    case 'fetch':
      return fetchCommand(rest);
    case 'status':
      return status(rest);
    case 'replay':
      return replay(rest);
    case 'catalog':
      return catalogCommand(rest);
    case 'demo': {
      const { demoCommand, DemoUsageError } = await import('./edfi-demo.ts');
      return demoCommand(rest).catch((error: unknown) => {
        throw error instanceof DemoUsageError ? new UsageError(error.message) : error;
      });
    }
    case 'services':
      return services(rest);
    case 'dlq':
      return (await import('./dlq-command.ts')).dlqCommand(rest);
    case 'quarantine':
      return (await import('./quarantine-command.ts')).quarantineCommand(rest);
    case 'upload':
      return (await import('./upload-command.ts')).uploadCommand(rest);
    case 'ui':
      return (await import('./ui-command.ts')).uiCommand(rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      console.log(USAGE);
      return command === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

/** Logs from the handlers are JSON for CloudWatch; on a terminal only warnings and errors show. */
async function quietHandlers(verbose: boolean): Promise<void> {
  process.env.POWERTOOLS_LOG_LEVEL ??= verbose ? 'INFO' : 'ERROR';
  await logsToStderr();
}

async function run(argv: string[]): Promise<number> {
  const { values } = args(argv, {
    pipeline: { type: 'string' },
    'upload-examples': { type: 'boolean' },
    verbose: { type: 'boolean', short: 'v' },
    'max-seconds': { type: 'string' },
    json: { type: 'boolean' },
  });
  await quietHandlers(values.verbose ?? false);
  const json = values.json ?? false;
  const say = json ? () => undefined : (line: string) => console.log(line);
  const file = values.pipeline ?? DEFAULT_PIPELINE;
  const pipeline = (await import('../contract/load.ts')).loadPipeline(file);
  say(`pipeline ${pipeline.project}: ${pipeline.datasets.length} datasets, ${pipeline.views.length} views (${relative(process.cwd(), file)})`);
  const { ensureServices } = await import('./services.ts');
  await ensureServices();
  const { openLocalPipeline, exampleFiles } = await import('./pipeline.ts');
  const { closePool } = await import('../functions/common/db.ts');
  const local = await openLocalPipeline(file);
  try {
    const uploaded: { dataset: string; file: string; key: string }[] = [];
    if (values['upload-examples']) {
      const examples = exampleFiles(file, pipeline);
      if (examples.length === 0) say('no example files found beside the definition (data/<dataset>.*)');
      for (const { dataset, path } of examples) {
        const key = await local.uploadAsSupplier(dataset, path);
        uploaded.push({ dataset, file: relative(process.cwd(), path), key });
        say(`uploaded ${relative(process.cwd(), path)} → s3://${local.resources.bucket}/${key}`);
      }
    }
    const { queueDepth } = await import('./runner.ts');
    const dlqs = [local.resources.stageDlqUrl, local.resources.cleanDlqUrl];
    const deadBefore = await Promise.all(dlqs.map(queueDepth));
    const started = Date.now();
    const { startProgress } = await import('./progress.ts');
    const progress = startProgress('run', { unit: 'messages', silent: json });
    let handled = 0;
    const stats = await local
      .run({
        maxMs: Number(values['max-seconds'] ?? 600) * 1000,
        onBatch: (name, received, failed) => {
          progress.set((handled += received));
          progress.step(`last: ${name}`);
          if (!json) progress.print(`  ${name}: ${received} message${received === 1 ? '' : 's'}${failed ? `, ${failed} failed (will be retried, then DLQ)` : ''}`);
        },
      })
      .finally(() => progress.end());
    const total = Object.values(stats).reduce((n, s) => n + s.messages, 0);
    const seconds = (Date.now() - started) / 1000;
    say(`pipeline idle after ${seconds.toFixed(1)} s (${total} messages handled)`);
    if (!json) {
      await printViews(local.pool, pipeline);
      await printLedger(local.pool, pipeline.project);
    }
    const failed = await local.pool.query(`SELECT count(*)::int AS n FROM etl.loads WHERE project = $1 AND status = 'failed' AND received_at >= to_timestamp($2 / 1000.0)`, [pipeline.project, started]);
    const deadAfter = await Promise.all(dlqs.map(queueDepth));
    const dead = deadAfter.reduce((n, d, i) => n + d - deadBefore[i]!, 0);
    // messages no step could read: acknowledged, so in no DLQ, but failures all the same
    const { rejectedMessages, describeRejectedMessages } = await import('../functions/common/rejected-messages.ts');
    const rejected = await rejectedMessages(local.pool, pipeline.project, 10, new Date(started));
    if (json) {
      const { ledgerSummary } = await import('../functions/common/ledger.ts');
      printJson({
        project: pipeline.project,
        uploaded,
        seconds,
        queues: stats,
        views: await viewCounts(local.pool, pipeline),
        loads: await ledgerSummary(local.pool, pipeline.project, 20),
        failedLoads: failed.rows[0].n,
        deadLettered: dead,
        rejectedMessages: rejected.total,
      });
    }
    if (dead > 0) say(`\n${dead} message${dead === 1 ? '' : 's'} moved to a dead-letter queue (${dlqs.join(', ')}): see the ledger's error column, then \`civic-etl dlq list\``);
    if (failed.rows[0].n > 0) say(`\n${failed.rows[0].n} load${failed.rows[0].n === 1 ? '' : 's'} failed: see the ledger above`);
    if (rejected.total > 0) say(`\n${describeRejectedMessages(rejected).join('\n')}`);
    return failed.rows[0].n > 0 || dead > 0 || rejected.total > 0 ? 1 : 0;
  } finally {
    await closePool();
  }
}

/** Each view of the pipeline with its row count, or null when it is not created yet. */
async function viewCounts(pool: import('pg').Pool, pipeline: import('../contract/definition.ts').PipelineDefinition): Promise<{ view: string; rows: number | null }[]> {
  const out = [];
  for (const view of pipeline.views) {
    const exists = await pool.query(`SELECT to_regclass(format('%I.%I', $1::text, $2::text)) IS NOT NULL AS ok`, [pipeline.project, view.name]);
    const rows = exists.rows[0].ok ? (await pool.query(`SELECT count(*)::int AS n FROM "${pipeline.project}"."${view.name}"`)).rows[0].n : null;
    out.push({ view: view.name, rows });
  }
  return out;
}

async function load(argv: string[]): Promise<number> {
  const { values, positionals } = args(
    argv,
    {
      table: { type: 'string', short: 't' },
      'database-url': { type: 'string' },
      delimiter: { type: 'string', short: 'd' },
      append: { type: 'boolean' },
      recreate: { type: 'boolean' },
      'type-threshold': { type: 'string' },
      format: { type: 'string' },
      sheet: { type: 'string' },
      layer: { type: 'string' },
      member: { type: 'string' },
      srid: { type: 'string' },
      'source-srid': { type: 'string' },
      lat: { type: 'string' },
      lon: { type: 'string' },
      invalid: { type: 'string' },
      verbose: { type: 'boolean', short: 'v' },
      json: { type: 'boolean' },
      'into-pipeline-schema': { type: 'boolean' },
    },
    true,
  );
  if (positionals.length !== 1) throw new UsageError('load takes exactly one FILE');
  const { FORMAT_HINTS } = await import('../functions/read/open.ts');
  if (values.format !== undefined && !(FORMAT_HINTS as readonly string[]).includes(values.format)) throw new UsageError(`--format must be one of ${FORMAT_HINTS.join(', ')}`);
  const srid = (flag: string, v: string | undefined) => {
    if (v === undefined) return undefined;
    if (!/^[1-9][0-9]{0,5}$/.test(v)) throw new UsageError(`${flag} must be an EPSG code such as 4326 or 28992`);
    return Number(v);
  };
  if (values.invalid !== undefined && values.invalid !== 'repair' && values.invalid !== 'quarantine') throw new UsageError('--invalid must be repair or quarantine');
  if ((values.lat === undefined) !== (values.lon === undefined)) throw new UsageError('--lat and --lon go together');
  if (!values.table) throw new UsageError('load needs --table SCHEMA.TABLE');
  const delimiter = values.delimiter === '\\t' || values.delimiter === 'tab' ? '\t' : values.delimiter;
  if (delimiter !== undefined && ![',', ';', '\t', '|'].includes(delimiter)) throw new UsageError('--delimiter must be one of , ; tab |');
  await quietHandlers(values.verbose ?? false);
  if (values['database-url']) process.env[ENV.databaseUrl] = values['database-url'];
  if (!process.env[ENV.databaseUrl]) await (await import('./services.ts')).ensureServices();
  const { getPool, closePool } = await import('../functions/common/db.ts');
  const { loadFile } = await import('./load-file.ts');
  type LoadFileOptions = import('./load-file.ts').LoadFileOptions;
  if (!values['into-pipeline-schema']) {
    // a table of our own in a pipeline's schema breaks that pipeline's clean later: only when told
    const schema = values.table.includes('.') ? values.table.split('.', 1)[0]! : 'public';
    const pool = await getPool();
    await (await import('../functions/migrate/migrate.ts')).migrate(pool, undefined);
    const owner = await (await import('./schema-guard.ts')).pipelineOwning(pool, schema);
    if (owner !== undefined) {
      await closePool();
      throw new UsageError(
        `schema ${schema} belongs to pipeline ${owner}: a table loaded there can break its clean and combine steps; load into another schema, or add --into-pipeline-schema if that is what you mean`,
      );
    }
  }
  const { startProgress } = await import('./progress.ts');
  const progress = startProgress('load', { unit: 'bytes', silent: values.json });
  try {
    const started = Date.now();
    const r = await loadFile(await getPool(), positionals[0]!, {
      table: values.table,
      delimiter: delimiter as ',' | ';' | '\t' | '|' | undefined,
      append: values.append,
      recreate: values.recreate,
      typeThreshold: values['type-threshold'] === undefined ? undefined : Number(values['type-threshold']),
      format: values.format as LoadFileOptions['format'],
      sheet: values.sheet, // a name, or a 0-based index when no sheet is so named (pickSheet)
      layer: values.layer,
      member: values.member,
      srid: srid('--srid', values.srid),
      sourceSrid: srid('--source-srid', values['source-srid']),
      lat: values.lat,
      lon: values.lon,
      invalid: values.invalid as LoadFileOptions['invalid'],
      onPhase: (what, seconds) => {
        progress.step(`done: ${what}`);
        if (values.verbose) console.error(`${what} in ${seconds.toFixed(2)} s`);
      },
      onRead: (stream, size) => {
        progress.set(0, size);
        progress.sample(() => stream.bytesRead);
      },
    });
    progress.end();
    if (values.json) {
      printJson({ ...r, seconds: (Date.now() - started) / 1000 });
      return 0;
    }
    const how = r.delimiter !== undefined ? `${r.format}, delimiter ${JSON.stringify(r.delimiter)}` : r.format;
    console.log(`${r.created ? 'created' : values.append ? 'appended to' : 'replaced rows of'} ${r.table} (${how})`);
    for (const w of r.warnings) console.log(`warning: ${w}`);
    printTable(r.columns.map((c) => ({ column: c.name, type: c.type, from: c.from, reads: c.reads ?? '' })));
    if (r.geometry) console.log(`geometry ${r.geometry}`);
    console.log(`rows read ${r.rowsRead}, loaded ${r.rowsLoaded}, rejected ${r.rowsRejected}${r.rowsRejected ? ` (see ${r.rejectsTable})` : ''} in ${((Date.now() - started) / 1000).toFixed(2)} s`);
    return 0;
  } finally {
    progress.end();
    await closePool();
  }
}

/** Files above this size are profiled on two threads (profileStream's `workers`): below it, starting the thread costs more than it saves. */
const PROFILE_WORKER_BYTES = 32 * 1024 * 1024;

async function profile(argv: string[]): Promise<number> {
  const { values, positionals } = args(
    argv,
    {
      json: { type: 'boolean' },
      locale: { type: 'string' },
      sample: { type: 'string' },
      delimiter: { type: 'string', short: 'd' },
      format: { type: 'string' },
      sheet: { type: 'string' },
      layer: { type: 'string' },
      member: { type: 'string' },
      'type-threshold': { type: 'string' },
    },
    true,
  );
  if (positionals.length !== 1) throw new UsageError('profile takes exactly one FILE');
  const { FORMAT_HINTS } = await import('../functions/read/open.ts');
  if (values.format !== undefined && !(FORMAT_HINTS as readonly string[]).includes(values.format)) throw new UsageError(`--format must be one of ${FORMAT_HINTS.join(', ')}`);
  const typeThreshold = values['type-threshold'] === undefined ? undefined : Number(values['type-threshold']);
  if (typeThreshold !== undefined && !(typeThreshold > 0 && typeThreshold <= 1)) throw new UsageError('--type-threshold must be a share in (0, 1]');
  const locales = (values.locale ?? '')
    .split(',')
    .map((l) => l.trim())
    .filter(Boolean);
  const unknown = locales.filter((l) => !['fr', 'nl', 'us'].includes(l));
  if (unknown.length > 0) throw new UsageError(`unknown locale ${unknown.join(', ')} (packs: fr, nl, us)`);
  const sample = values.sample === undefined ? undefined : Number(values.sample);
  if (sample !== undefined && !(Number.isInteger(sample) && sample > 0)) throw new UsageError('--sample must be a positive whole number of records');
  const delimiter = values.delimiter === '\\t' || values.delimiter === 'tab' ? '\t' : values.delimiter;
  if (delimiter !== undefined && ![',', ';', '\t', '|'].includes(delimiter)) throw new UsageError('--delimiter must be one of , ; tab |');
  const file = positionals[0]!;
  const { openSource } = await import('../functions/read/open.ts');
  const { profileStream, profileTable } = await import('../functions/profile/profile.ts');
  const started = performance.now();
  const { createReadStream, statSync } = await import('node:fs');
  const { startProgress } = await import('./progress.ts');
  const progress = startProgress('profile', { unit: 'bytes', silent: values.json, total: statSync(file, { throwIfNoEntry: false })?.size });
  const opened = await openSource(
    {
      name: file,
      path: file,
      open: async (signal) => {
        const stream = createReadStream(file, { highWaterMark: 256 * 1024, ...(signal ? { signal } : {}) });
        progress.sample(() => stream.bytesRead);
        return stream;
      },
    },
    {
      format: values.format as (typeof FORMAT_HINTS)[number] | undefined,
      sheet: values.sheet, // a name, or a 0-based index when no sheet is so named (pickSheet)
      layer: values.layer,
      member: values.member,
    },
  );
  // a second thread profiles columns of a large CSV when a core is likely free for it: on two
  // cores shared with other work it cost more than it saved (docs/performance.md);
  // CIVIC_ETL_PROFILE_WORKERS=0 or 1 decides instead
  const { availableParallelism } = await import('node:os');
  const forced = process.env.CIVIC_ETL_PROFILE_WORKERS;
  const workers = forced !== undefined && forced !== '' ? Number(forced) : availableParallelism() >= 4 && (statSync(file, { throwIfNoEntry: false })?.size ?? 0) > PROFILE_WORKER_BYTES ? 1 : 0;
  try {
    const results = [];
    for (const entry of opened.entries) {
      const settings = { file: entry.name, locales: locales as ('fr' | 'nl' | 'us')[], sample, typeThreshold };
      results.push(
        entry.kind === 'table'
          ? await profileTable(entry.table, settings)
          : await profileStream(await entry.open(), { ...settings, workers: sample === undefined ? workers : 0, hints: delimiter ? { delimiter } : undefined }),
      );
    }
    progress.end();
    // profiling needs no table: a file too wide to load is profiled all the same, and told so
    const { maxFileColumns, PG_MAX_COLUMNS } = await import('../functions/common/limits.ts');
    for (const result of results) {
      if (result.columns.length > maxFileColumns({ history: true })) {
        result.warnings.push(
          `${result.columns.length} columns: civic-etl load takes at most ${maxFileColumns('load')}, the pipeline ${maxFileColumns({ history: false })} (${maxFileColumns({ history: true })} in mode history); PostgreSQL allows ${PG_MAX_COLUMNS} in a table`,
        );
      }
    }
    if (values.json) {
      console.log(JSON.stringify(results.length === 1 ? results[0] : results, null, 2));
      return 0;
    }
    for (const result of results) printProfile(result, ((performance.now() - started) / 1000).toFixed(2));
    for (const s of opened.skipped) console.log(`skipped ${s}`);
    return 0;
  } finally {
    progress.end();
    await opened.dispose();
  }
}

function printProfile(result: import('../functions/profile/profile.ts').FileProfile & { format?: string }, seconds: string): void {
  if (result.format && result.format !== 'csv') console.log(`${result.file}: ${result.format}`);
  else
    console.log(
      `${result.file}: ${result.encoding}${result.bom ? ' (BOM)' : ''}, delimiter ${JSON.stringify(result.delimiter)}, quote ${JSON.stringify(result.quote)}, line ending ${JSON.stringify(result.lineEnding)}${result.decimalComma ? ', decimal comma' : ''}`,
    );
  if (result.headerRow > 0) console.log(`header on line ${result.headerRow + 1}, after ${result.headerRow} preamble line${result.headerRow === 1 ? '' : 's'}`);
  console.log(
    `${result.rowCount} records${result.sampled ? ' profiled (a sample)' : ''}, ${result.duplicateRows} duplicate${result.duplicateRows === 1 ? '' : 's'}, ${result.raggedCount} ragged line${result.raggedCount === 1 ? '' : 's'} — ${seconds} s`,
  );
  printTable(
    result.columns.map((c) => ({
      column: c.name,
      type: c.type,
      format: c.format ?? '',
      score: c.score.toFixed(2),
      loads: [c.clean.type, readsOf(c.clean)].filter(Boolean).join(' '),
      missing: c.profile.missing,
      distinct: `${c.profile.distinct}${c.profile.distinctCapped ? '+' : ''}`,
      min: c.profile.min ?? (c.profile.minLength !== undefined ? `len ${c.profile.minLength}` : ''),
      max: c.profile.max ?? (c.profile.maxLength !== undefined ? `len ${c.profile.maxLength}` : ''),
      top: c.profile.top
        .slice(0, 3)
        .map((t) => `${t.value} (${t.count})`)
        .join(', '),
    })),
    60,
  );
  for (const w of result.warnings) console.log(`warning: ${w}`);
}

async function validate(argv: string[]): Promise<number> {
  const { values, positionals } = args(argv, { json: { type: 'boolean' }, database: { type: 'boolean' }, 'database-url': { type: 'string' } }, true);
  const files = positionals.length > 0 ? positionals : [DEFAULT_PIPELINE];
  const checkSql = values.database || values['database-url'] !== undefined;
  let pool: import('pg').Pool | undefined;
  if (checkSql) {
    if (values['database-url']) process.env[ENV.databaseUrl] = values['database-url'];
    if (!process.env[ENV.databaseUrl]) await (await import('./services.ts')).ensureServices();
    pool = await (await import('../functions/common/db.ts')).getPool();
  }
  // the pipeline reader (yaml) only for the commands that read one: `load` starts without it
  const { loadPipeline, PipelineDefinitionError } = await import('../contract/load.ts');
  const results = [];
  try {
    for (const file of files) {
      let p: import('../contract/definition.ts').PipelineDefinition;
      try {
        p = loadPipeline(file);
      } catch (error) {
        if (!(error instanceof PipelineDefinitionError)) throw error;
        results.push({ file, valid: false, message: error.message, problems: error.problems });
        if (!values.json) console.error(error.message);
        continue;
      }
      const { checkViews, checkViewStatements, readableChecks } = await import('./validate-views.ts');
      const views = pool ? await checkViews(pool, p, file) : undefined;
      // without a database, what needs none: each view's SQL is exactly one statement
      const failing = views?.filter((v) => v.status === 'error') ?? checkViewStatements(p, file);
      results.push({
        file,
        valid: failing.length === 0,
        project: p.project,
        suppliers: p.suppliers.length,
        datasets: p.datasets.length,
        views: p.views.length,
        ...(views ? { viewChecks: views } : failing.length ? { viewChecks: failing } : {}),
      });
      if (values.json) continue;
      for (const line of readableChecks(file, failing)) console.error(line);
      for (const line of readableChecks(file, views?.filter((v) => v.status === 'not checked') ?? [])) console.log(line);
      const checked = views
        ? `; views checked against the database: ${views.filter((v) => v.status === 'ok').length} ok, ${failing.length} failing, ${views.filter((v) => v.status === 'not checked').length} not checked`
        : '';
      console.log(`${file}: ${failing.length === 0 ? 'valid' : 'invalid'} — project ${p.project}, ${p.suppliers.length} suppliers, ${p.datasets.length} datasets, ${p.views.length} views${checked}`);
    }
  } finally {
    if (pool) await (await import('../functions/common/db.ts')).closePool();
  }
  if (values.json) printJson(results);
  return results.some((r) => !r.valid) ? 1 : 0;
}

async function fetchCommand(argv: string[]): Promise<number> {
  const { values, positionals } = args(argv, { pipeline: { type: 'string' }, verbose: { type: 'boolean', short: 'v' }, json: { type: 'boolean' } }, true);
  if (positionals.length !== 1) throw new UsageError('fetch takes exactly one DATASET (or Ed-Fi API)');
  await quietHandlers(values.verbose ?? false);
  const file = values.pipeline ?? DEFAULT_PIPELINE;
  const pipeline = (await import('../contract/load.ts')).loadPipeline(file);
  const dataset = pipeline.datasets.find((d) => d.name === positionals[0]);
  const api = pipeline.edfi.find((a) => a.name === positionals[0]);
  if (!dataset && !api) {
    const apis = pipeline.edfi.length ? `; Ed-Fi APIs: ${pipeline.edfi.map((a) => a.name).join(', ')}` : '';
    throw new UsageError(`unknown dataset "${positionals[0]}" (datasets: ${pipeline.datasets.map((d) => d.name).join(', ')}${apis})`);
  }
  await (await import('./services.ts')).ensureServices();
  const { ensureLocalResources } = await import('./resources.ts');
  const { s3Client, readJsonSecret } = await import('../functions/common/aws.ts');
  const resources = await ensureLocalResources({ project: pipeline.project });
  const { fetchDataset, fetchEdfiApi } = await import('../functions/get/fetch-dataset.ts');
  const deps = { s3: s3Client(), bucket: resources.bucket, readSecret: readJsonSecret };
  // a run that checkpoints (as it would near the Lambda time limit) is continued, as the handler does
  const runs = [];
  for (;;) {
    const result = api ? await fetchEdfiApi(deps, pipeline, api.name) : await fetchDataset(deps, dataset!, pipeline);
    runs.push(result);
    const partial = result.status === 'checkpointed' || result.status === 'partial';
    if (!values.json) console.log(`${positionals[0]}: ${result.summary}${result.status === 'fetched' || partial ? '; run `civic-etl run` to stage it' : ''}`);
    if (result.status !== 'checkpointed') break;
  }
  if (values.json) printJson({ [api ? 'edfi' : 'dataset']: positionals[0], runs });
  return 0;
}

async function status(argv: string[]): Promise<number> {
  const { values, positionals } = args(argv, { pipeline: { type: 'string' }, json: { type: 'boolean' }, limit: { type: 'string' } }, true);
  if (positionals.length > 1) throw new UsageError('status takes at most one DATASET');
  const limit = values.limit === undefined ? undefined : Number(values.limit);
  if (limit !== undefined && !(Number.isInteger(limit) && limit > 0)) throw new UsageError('--limit must be a positive whole number of loads');
  const pipeline = (await import('../contract/load.ts')).loadPipeline(values.pipeline ?? DEFAULT_PIPELINE);
  const name = positionals[0];
  if (name !== undefined && !pipeline.datasets.some((d) => d.name === name)) {
    throw new UsageError(`unknown dataset "${name}" (datasets: ${pipeline.datasets.map((d) => d.name).join(', ')})`);
  }
  if (!process.env[ENV.databaseUrl]) await (await import('./services.ts')).ensureServices();
  const { getPool, closePool } = await import('../functions/common/db.ts');
  try {
    const pool = await getPool();
    if (name === undefined && values.json) {
      // what the text says, as data: the loads, the messages rejected as unreadable, the dead letters
      const { ledgerSummary } = await import('../functions/common/ledger.ts');
      const { rejectedMessages } = await import('../functions/common/rejected-messages.ts');
      const { n } = (await pool.query(`SELECT count(*)::int AS n FROM etl.loads WHERE project = $1`, [pipeline.project])).rows[0];
      console.log(
        JSON.stringify(
          {
            project: pipeline.project,
            loads: await ledgerSummary(pool, pipeline.project, limit ?? 20),
            loadsInLedger: n,
            rejectedMessages: await rejectedMessages(pool, pipeline.project, REJECTED_SHOWN),
            ...(await deadLetters(pipeline.project)),
          },
          null,
          2,
        ),
      );
    } else if (name === undefined) {
      await printLedger(pool, pipeline.project, limit ?? 20);
      await printRejectedMessages(pool, pipeline.project);
      await printDeadLetters(pipeline.project);
    } else {
      const { datasetLoads } = await import('../functions/common/report.ts');
      const loads = await datasetLoads(pool, pipeline.project, name, limit ?? 5);
      if (values.json) console.log(JSON.stringify(loads, null, 2));
      else {
        await printDatasetLoads(pipeline.project, name, loads);
        await printDeadLetters(pipeline.project);
      }
    }
  } finally {
    await closePool();
  }
  return 0;
}

/** How many of the latest queue messages rejected as unreadable `status` shows (text and JSON); the total is given too. */
const REJECTED_SHOWN = 5;

/** Queue messages the steps rejected as unreadable: they name no load, so the ledger's table cannot show them. */
async function printRejectedMessages(pool: import('pg').Pool, project: string): Promise<void> {
  const { rejectedMessages, describeRejectedMessages } = await import('../functions/common/rejected-messages.ts');
  const lines = describeRejectedMessages(await rejectedMessages(pool, project, REJECTED_SHOWN));
  if (lines.length > 0) console.log(`\n${lines.join('\n')}`);
}

/** The project's local dead-letter queues (moto) and the messages in each, or why they could not be counted. */
async function deadLetters(project: string): Promise<{ deadLetters: { step: 'stage' | 'clean'; queueUrl: string; messages: number }[] } | { deadLettersNotChecked: string }> {
  try {
    const { deadLetterDepths } = await import('./resources.ts');
    return { deadLetters: await deadLetterDepths(project) };
  } catch (error) {
    return { deadLettersNotChecked: (error as Error).message };
  }
}

/** Messages waiting in the project's local dead-letter queues (moto), or why they could not be counted. */
async function printDeadLetters(project: string): Promise<void> {
  const dead = await deadLetters(project);
  if ('deadLettersNotChecked' in dead) {
    console.log(`\nDLQ: not checked (${dead.deadLettersNotChecked})`);
    return;
  }
  for (const q of dead.deadLetters.filter((d) => d.messages > 0)) {
    console.log(`\nDLQ: ${q.messages} message${q.messages === 1 ? '' : 's'} waiting in the ${q.step} dead-letter queue (${q.queueUrl}); the loads' errors are above; fix the cause, then redrive`);
  }
}

/** The latest loads of one dataset, each with its quality report in words. */
async function printDatasetLoads(project: string, dataset: string, loads: import('../functions/common/report.ts').DatasetLoad[]): Promise<void> {
  const { describeReport } = await import('../functions/common/report.ts');
  if (loads.length === 0) {
    console.log(`dataset ${project}.${dataset}: no loads yet`);
    return;
  }
  console.log(`dataset ${project}.${dataset}: latest ${loads.length} load${loads.length === 1 ? '' : 's'}, newest first`);
  for (const load of loads) {
    const version = load.report ? ` (version ${load.report.objectVersion})` : '';
    console.log(`\nload ${load.loadId} · ${load.objectKey}${version} · ${load.status} · received ${load.receivedAt.slice(0, 19).replace('T', ' ')} UTC`);
    if (!load.report) continue;
    for (const line of describeReport(load.report, { examples: 3 })) console.log(`  ${line}`);
    if (load.report.replayOf !== undefined) console.log(`  A replay of load ${load.report.replayOf}.`);
    const r = load.report;
    if (r.supplierCopy) {
      const page = r.supplierPage && !r.supplierPage.error ? [r.supplierPage.key] : [];
      console.log(`  Written back to the supplier: ${[r.supplierCopy, r.supplierCopy.replace(/\.json$/, '.txt'), ...page].join(', ')}`);
      if (r.supplierPage?.error) console.log(`  The HTML report (${r.supplierPage.key}) could not be written: ${r.supplierPage.error}`);
    }
  }
}

async function replay(argv: string[]): Promise<number> {
  const { values, positionals } = args(
    argv,
    { pipeline: { type: 'string' }, from: { type: 'string' }, version: { type: 'string' }, 'dry-run': { type: 'boolean' }, verbose: { type: 'boolean', short: 'v' }, json: { type: 'boolean' } },
    true,
  );
  if (positionals.length !== 1) throw new UsageError('replay takes exactly one DATASET');
  await quietHandlers(values.verbose ?? false);
  const file = values.pipeline ?? DEFAULT_PIPELINE;
  const pipeline = (await import('../contract/load.ts')).loadPipeline(file);
  const name = positionals[0]!;
  if (!pipeline.datasets.some((d) => d.name === name)) throw new UsageError(`unknown dataset "${name}" (datasets: ${pipeline.datasets.map((d) => d.name).join(', ')})`);
  const { parseFrom, replayDataset, cleanRowCount, datasetPrefixes, ReplayError } = await import('./replay.ts');
  let from: Date | undefined;
  try {
    from = values.from === undefined ? undefined : parseFrom(values.from);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  await (await import('./services.ts')).ensureServices();
  const { openLocalPipeline } = await import('./pipeline.ts');
  const { s3Client } = await import('../functions/common/aws.ts');
  const { closePool } = await import('../functions/common/db.ts');
  const local = await openLocalPipeline(file);
  const { startProgress } = await import('./progress.ts');
  const progress = startProgress(`replay ${name}`, { unit: 'versions', silent: values.json || values['dry-run'] });
  let replayed = 0;
  try {
    const summary = await replayDataset({ pool: local.pool, s3: s3Client(), pipeline, bucket: local.resources.bucket }, name, {
      from,
      versionId: values.version,
      dryRun: values['dry-run'],
      onPlan: (versions) => {
        progress.set(0, versions.length);
        if (values.json) return;
        const where = datasetPrefixes(pipeline.datasets.find((d) => d.name === name)!)
          .map((p) => `s3://${local.resources.bucket}/${p}`)
          .join(' and ');
        const chosen = [values.version && `version ${values.version}`, from && `last modified at or after ${from.toISOString()}`].filter(Boolean).join(', ');
        console.log(
          `${values['dry-run'] ? 'would replay' : 'replaying'} ${versions.length} object version${versions.length === 1 ? '' : 's'} of ${name} from ${where}${chosen ? `: ${chosen}` : ''}, oldest first`,
        );
        if (values['dry-run']) for (const v of versions) console.log(`  ${v.lastModified.toISOString()}  ${v.key}  version ${v.versionId}  ${v.size ?? '?'} bytes`);
      },
      onVersion: (r) => {
        progress.set(++replayed);
        if (values.json) return;
        const what =
          r.status === 'loaded' ? `loaded, ${r.rowsLoaded} row${r.rowsLoaded === 1 ? '' : 's'}${r.rowsQuarantined ? ` (${r.rowsQuarantined} quarantined)` : ''}` : `${r.status}: ${r.error ?? ''}`;
        const load = r.loadId === undefined ? '' : ` — load ${r.loadId}${r.replayOf === undefined ? ' (never delivered before)' : `, replays load ${r.replayOf}`}`;
        progress.print(`  ${r.lastModified.toISOString()}  ${r.key}  version ${r.versionId}: ${what}${load}`);
      },
    });
    progress.end();
    if (values['dry-run']) {
      if (values.json) printJson(summary);
      return 0;
    }
    const count = (s: 'loaded' | 'failed' | 'skipped') => summary.versions.filter((v) => v.status === s).length;
    const rowsNow = await cleanRowCount(local.pool, pipeline.project, name);
    if (values.json) {
      printJson({ ...summary, rowsNow: rowsNow ?? null });
      return count('failed') > 0 || count('skipped') > 0 ? 1 : 0;
    }
    console.log(
      `replayed ${summary.versions.length} version${summary.versions.length === 1 ? '' : 's'}: ${count('loaded')} loaded, ${count('failed')} failed, ${count('skipped')} skipped` +
        (rowsNow === undefined ? '' : `; ${pipeline.project}.${name} now has ${rowsNow} row${rowsNow === 1 ? '' : 's'}`),
    );
    if (summary.stopped) console.log(`stopped: ${summary.notReplayed} later version${summary.notReplayed === 1 ? '' : 's'} not replayed (an error a retry may cure; run the replay again)`);
    return count('failed') > 0 || count('skipped') > 0 ? 1 : 0;
  } catch (error) {
    if (!(error instanceof ReplayError)) throw error;
    console.error(`civic-etl: ${error.message}`);
    return 1;
  } finally {
    progress.end();
    await closePool();
  }
}

async function services(argv: string[]): Promise<number> {
  const { values, positionals } = args(argv, { json: { type: 'boolean' } }, true);
  const action = positionals[0];
  if (!action || positionals.length > 1 || !['start', 'stop', 'status', 'clean', 'env'].includes(action)) throw new UsageError('services takes start, stop, status, clean or env');
  if (!values.json) {
    const r = spawnSync('bash', [join(ROOT, 'scripts/services.sh'), action], { stdio: 'inherit' });
    return r.status ?? 1;
  }
  if (action === 'env') {
    const { LOCAL_ENV_FILE, parseEnvFile } = await import('./services.ts');
    if (!existsSync(LOCAL_ENV_FILE)) throw new Error(`no ${LOCAL_ENV_FILE} yet: run civic-etl services start`);
    printJson(parseEnvFile(readFileSync(LOCAL_ENV_FILE, 'utf8')));
    return 0;
  }
  // the script's "name: state" lines as an object; its progress (stderr) stays on stderr
  const r = spawnSync('bash', [join(ROOT, 'scripts/services.sh'), action], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
  const lines = (r.stdout ?? '').split('\n').filter(Boolean);
  const states: Record<string, string> = {};
  for (const l of lines) {
    const m = /^([^:]+): (.*)$/.exec(l);
    if (m) states[m[1]!] = m[2]!;
  }
  printJson({ action, ok: r.status === 0, exitCode: r.status, services: states });
  return r.status ?? 1;
}

async function printViews(pool: import('pg').Pool, pipeline: import('../contract/definition.ts').PipelineDefinition): Promise<void> {
  for (const view of pipeline.views) {
    const exists = await pool.query(`SELECT to_regclass(format('%I.%I', $1::text, $2::text)) IS NOT NULL AS ok`, [pipeline.project, view.name]);
    if (!exists.rows[0].ok) {
      console.log(`\nview ${pipeline.project}.${view.name}: not created yet (it waits for ${view.datasets.join(', ')})`);
      continue;
    }
    const count = await pool.query(`SELECT count(*)::int AS n FROM "${pipeline.project}"."${view.name}"`);
    // geometry reads better as WKT than as hex EWKB on a terminal
    const columns = await pool.query<{ name: string; geometry: boolean }>(
      `SELECT a.attname AS name, t.typname = 'geometry' AS geometry FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
        WHERE a.attrelid = to_regclass(format('%I.%I', $1::text, $2::text)) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
      [pipeline.project, view.name],
    );
    const list = columns.rows.map((c) => (c.geometry ? `ST_AsText("${c.name}") AS "${c.name}"` : `"${c.name}"`)).join(', ');
    const { rows } = await pool.query(`SELECT ${list} FROM "${pipeline.project}"."${view.name}" LIMIT 5`);
    console.log(`\nview ${pipeline.project}.${view.name} — ${count.rows[0].n} rows, first ${rows.length}:`);
    printTable(rows);
  }
}

async function printLedger(pool: import('pg').Pool, project: string, limit = 20): Promise<void> {
  const { ledgerSummary } = await import('../functions/common/ledger.ts');
  const rows = await ledgerSummary(pool, project, limit);
  const { n } = (await pool.query(`SELECT count(*)::int AS n FROM etl.loads WHERE project = $1`, [project])).rows[0];
  console.log(`\nledger (etl.loads) for ${project}: the latest ${rows.length} of ${n} load${n === 1 ? '' : 's'}, newest first${rows.length < n ? ' (--limit N for more)' : ''}:`);
  printTable(
    rows.map((r) => ({
      load: r.id,
      started: r.received_at.toISOString().slice(0, 19).replace('T', ' '),
      took: r.seconds === null ? (r.status === 'received' || r.status === 'staged' ? 'running' : '') : duration(r.seconds),
      dataset: r.dataset ?? '—',
      object: r.object_key,
      status: r.status,
      read: r.rows_read ?? '',
      loaded: r.rows_loaded ?? '',
      quarantined: r.rows_quarantined ?? '',
      error: r.error ? `${r.error_kind ? `[${r.error_kind}${r.error_kind === 'permanent' ? '' : `, attempt ${r.attempts}`}] ` : ''}${r.error}` : '',
    })),
    80,
  );
}

/** A duration as people read it: 0.42 s, 12.3 s, 4 min 05 s, 2 h 03 min. */
function duration(seconds: number): string {
  if (seconds < 10) return `${seconds.toFixed(2)} s`;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${String(Math.floor(seconds % 60)).padStart(2, '0')} s`;
  return `${Math.floor(seconds / 3600)} h ${String(Math.floor((seconds % 3600) / 60)).padStart(2, '0')} min`;
}

/**
 * Exit with `code` once stdout and stderr have handed everything to the OS. process.exit alone
 * drops what a pipe has not taken yet: `civic-etl profile --json big.csv | jq` read 64 KiB, then
 * the end of the document was lost. An empty write calls back after every earlier write; a reader
 * gone away (`| head`) ends the wait too.
 */
async function exitFlushed(code: number): Promise<never> {
  const flushed = (stream: NodeJS.WriteStream) =>
    new Promise<void>((resolve) => {
      if (stream.destroyed || !stream.writable) return resolve();
      stream.once('error', () => resolve());
      stream.write('', () => resolve());
    });
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
  process.exit(code);
}

// a reader that went away (`civic-etl status | head -3`) is the end of the output, not a crash
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

main(process.argv.slice(2)).then(
  (code) => exitFlushed(code),
  (error: unknown) => {
    if (error instanceof UsageError) {
      console.error(`civic-etl: ${error.message}\nRun \`civic-etl help\` for usage.`);
      return exitFlushed(2);
    }
    console.error(`civic-etl: ${error instanceof Error ? error.message : String(error)}`);
    return exitFlushed(1);
  },
);

/** `civic-etl catalog`: the project's staged catalogue resources, found by their portal metadata (etl.catalog_resources). */
async function catalogCommand(argv: string[]): Promise<number> {
  const { values, positionals } = args(
    argv,
    { pipeline: { type: 'string' }, organization: { type: 'string' }, tag: { type: 'string' }, license: { type: 'string' }, limit: { type: 'string' }, json: { type: 'boolean' } },
    true,
  );
  const limit = values.limit === undefined ? undefined : Number(values.limit);
  if (limit !== undefined && !(Number.isInteger(limit) && limit > 0)) throw new UsageError('--limit must be a positive whole number of resources');
  // `civic-etl catalog search TEXT` is `civic-etl catalog TEXT`
  if (positionals[0] === 'search') positionals.shift();
  const pipeline = (await import('../contract/load.ts')).loadPipeline(values.pipeline ?? DEFAULT_PIPELINE);
  if (!process.env[ENV.databaseUrl]) await (await import('./services.ts')).ensureServices();
  const { getPool, closePool } = await import('../functions/common/db.ts');
  const { searchCatalogResources } = await import('../functions/profile/catalog.ts');
  try {
    const found = await searchCatalogResources(await getPool(), {
      project: pipeline.project,
      words: positionals.join(' ') || undefined,
      organization: values.organization,
      tag: values.tag,
      license: values.license,
      limit,
    });
    if (values.json) {
      console.log(JSON.stringify(found, null, 2));
      return 0;
    }
    if (found.length === 0) console.log(`no staged catalogue resource of project ${pipeline.project} fits`);
    for (const r of found) {
      console.log(`${r.datasetTitle ?? '(untitled)'} · ${r.resourceTitle ?? r.resourceId} (${r.format ?? '?'}) · ${r.organization ?? '?'} · ${r.license ?? 'no licence'}`);
      console.log(`  dataset ${r.dataset}, load ${r.loadId}, ${r.rowCount ?? '?'} rows · ${r.objectKey}${r.tags.length ? ` · tags: ${r.tags.join(', ')}` : ''}`);
    }
  } finally {
    await closePool();
  }
  return 0;
}
