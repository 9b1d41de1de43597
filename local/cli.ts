/**
 * `civic-etl` — the command line: run the pipeline locally, load one file, validate definitions,
 * fetch a source, show the ledger, manage the local services.
 */
import { spawnSync } from 'node:child_process';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadPipeline, PipelineDefinitionError } from '../contract/load.ts';
import { ENV } from '../contract/names.ts';
import { readsOf } from '../functions/profile/column-type.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const DEFAULT_PIPELINE = process.env[ENV.pipelineFile] ?? join(ROOT, 'pipelines/chicago/pipeline.yaml');

const USAGE = `civic-etl — get, stage, clean and combine public data into PostgreSQL + PostGIS

Usage:
  civic-etl run [--pipeline FILE] [--upload-examples] [--verbose]
      Run the pipeline locally against real services (PostgreSQL + PostGIS, moto for S3/SQS),
      starting them if needed, until every queue is empty; then print the views and the ledger.
      --upload-examples first uploads <pipeline dir>/data/<dataset>.* as each supplier would.
  civic-etl load FILE --table SCHEMA.TABLE [--database-url URL] [--delimiter D] [--append] [--recreate]
                 [--format F] [--sheet S] [--layer L] [--member GLOB]
                 [--srid N] [--source-srid N] [--lat COL --lon COL] [--invalid repair|quarantine]
                 [--type-threshold SHARE]
      Load one file straight into a table: CSV in any encoding, XLSX/ODS/XLS, JSON/NDJSON, GeoJSON,
      a zipped shapefile, a GeoPackage, Parquet (gzip or zip around any of them). Detect, stage with COPY,
      infer types (a type is kept when SHARE, default 0.99, of a column's values cast), cast.
      Rows that do not cast go to SCHEMA.TABLE_rejects with line and reason; a new table gets
      laundered column names. Geometry (the file's own, or lat/lon columns) becomes a geom column
      in EPSG:4326 (or --srid) with a GiST index; --source-srid names the source SRID when the
      file does not. --sheet/--layer/--member choose one table of a workbook, GeoPackage or zip.
  civic-etl profile FILE [--json] [--locale fr,nl,us] [--sample N] [--type-threshold SHARE] [--format F] [--sheet S] [--layer L] [--member GLOB]
      Detect how a file is written (CSV: encoding, delimiter, header row…; or a spreadsheet, JSON,
      GeoJSON, shapefile, GeoPackage, Parquet) and profile each column: base type, semantic format
      with a confidence score, the type \`load\` gives it (and how it reads the values: decimal
      comma, date order), missing, distinct, top values, ranges. Reads gzip, and each data member
      of a zip archive. --json prints one JSON object (an array for several members).
      --sheet (a name, else a 0-based index) profiles that sheet instead of the one holding the table.
  civic-etl validate [FILE…]
      Check pipeline definitions (default: ${relative(process.cwd(), DEFAULT_PIPELINE)}).
  civic-etl fetch DATASET|EDFI_API [--pipeline FILE]
      Fetch a dataset's source once into raw/ (a file URL with a conditional GET, or an API's records), as the scheduled function does.
  civic-etl status [DATASET] [--pipeline FILE] [--limit N] [--json]
      The latest loads of the project from the ledger. With DATASET, its latest N loads (default
      5) each with its quality report: rows read, loaded and quarantined, counts by rule with
      example lines, unmapped values, schema changes, the error of a failed load. --json prints
      the loads (and reports) as JSON.
  civic-etl replay DATASET [--from DATE] [--version ID] [--dry-run] [--pipeline FILE]
      Stage a dataset's object versions in the local bucket again, oldest first, and clean each:
      the clean table ends as a fresh run over those versions would leave it. Each replay is a
      new load in the ledger that names the load it replays. --from keeps versions last
      modified at or after DATE (2024-05-01 or 2024-05-01T10:00:00Z); --version replays one
      version id; --dry-run lists the versions. Exit code 1 if a replayed load failed or was
      skipped (a newer load applied meanwhile).
  civic-etl catalog [WORDS…] [--organization O] [--tag T] [--license L] [--pipeline FILE] [--limit N] [--json]
      Find the project's staged open-data catalogue resources by what their portal says of them:
      words of the dataset and resource titles, description, organisation, tags or column names
      (web-search syntax: "espaces verts" -arbres), the organisation (name or id), a tag, a licence.
  civic-etl services start|stop|status|clean
      Manage the local PostgreSQL + PostGIS and moto services (scripts/services.sh).

Environment: DATABASE_URL (use this database instead of the local one), CIVIC_ETL_PIPELINE_FILE.`;

class UsageError extends Error {}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
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
    case 'services':
      return services(rest);
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

function args<T extends Record<string, { type: 'string' | 'boolean'; short?: string }>>(argv: string[], options: T, positionals = false) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: positionals, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** Logs from the handlers are JSON for CloudWatch; on a terminal only warnings and errors show. */
function quietHandlers(verbose: boolean): void {
  process.env.POWERTOOLS_LOG_LEVEL ??= verbose ? 'INFO' : 'ERROR';
  // the metric lines are for CloudWatch (functions/common/metrics.ts); here the ledger and `status` tell
  process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
}

async function run(argv: string[]): Promise<number> {
  const { values } = args(argv, {
    pipeline: { type: 'string' },
    'upload-examples': { type: 'boolean' },
    verbose: { type: 'boolean', short: 'v' },
    'max-seconds': { type: 'string' },
  });
  quietHandlers(values.verbose ?? false);
  const file = values.pipeline ?? DEFAULT_PIPELINE;
  const pipeline = loadPipeline(file);
  console.log(`pipeline ${pipeline.project}: ${pipeline.datasets.length} datasets, ${pipeline.views.length} views (${relative(process.cwd(), file)})`);
  const { ensureServices } = await import('./services.ts');
  await ensureServices();
  const { openLocalPipeline, exampleFiles } = await import('./pipeline.ts');
  const { closePool } = await import('../functions/common/db.ts');
  const local = await openLocalPipeline(file);
  try {
    if (values['upload-examples']) {
      const examples = exampleFiles(file, pipeline);
      if (examples.length === 0) console.log('no example files found beside the definition (data/<dataset>.*)');
      for (const { dataset, path } of examples) {
        const key = await local.uploadAsSupplier(dataset, path);
        console.log(`uploaded ${relative(process.cwd(), path)} → s3://${local.resources.bucket}/${key}`);
      }
    }
    const { queueDepth } = await import('./runner.ts');
    const dlqs = [local.resources.stageDlqUrl, local.resources.cleanDlqUrl];
    const deadBefore = await Promise.all(dlqs.map(queueDepth));
    const started = Date.now();
    const stats = await local.run({
      maxMs: Number(values['max-seconds'] ?? 600) * 1000,
      onBatch: (name, received, failed) =>
        console.log(`  ${name}: ${received} message${received === 1 ? '' : 's'}${failed ? `, ${failed} failed (will be retried, then DLQ)` : ''}`),
    });
    const total = Object.values(stats).reduce((n, s) => n + s.messages, 0);
    console.log(`pipeline idle after ${((Date.now() - started) / 1000).toFixed(1)} s (${total} messages handled)`);
    await printViews(local.pool, pipeline);
    await printLedger(local.pool, pipeline.project);
    const failed = await local.pool.query(`SELECT count(*)::int AS n FROM etl.loads WHERE project = $1 AND status = 'failed' AND received_at >= to_timestamp($2 / 1000.0)`, [
      pipeline.project,
      started,
    ]);
    const deadAfter = await Promise.all(dlqs.map(queueDepth));
    const dead = deadAfter.reduce((n, d, i) => n + d - deadBefore[i]!, 0);
    if (dead > 0) console.log(`\n${dead} message${dead === 1 ? '' : 's'} moved to a dead-letter queue (${dlqs.join(', ')}): see the ledger's error column`);
    if (failed.rows[0].n > 0) console.log(`\n${failed.rows[0].n} load${failed.rows[0].n === 1 ? '' : 's'} failed: see the ledger above`);
    return failed.rows[0].n > 0 || dead > 0 ? 1 : 0;
  } finally {
    await closePool();
  }
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
  quietHandlers(values.verbose ?? false);
  if (values['database-url']) process.env[ENV.databaseUrl] = values['database-url'];
  if (!process.env[ENV.databaseUrl]) await (await import('./services.ts')).ensureServices();
  const { getPool, closePool } = await import('../functions/common/db.ts');
  const { loadFile } = await import('./load-file.ts');
  type LoadFileOptions = import('./load-file.ts').LoadFileOptions;
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
      onPhase: values.verbose ? (what, seconds) => console.error(`${what} in ${seconds.toFixed(2)} s`) : undefined,
    });
    const how = r.delimiter !== undefined ? `${r.format}, delimiter ${JSON.stringify(r.delimiter)}` : r.format;
    console.log(`${r.created ? 'created' : values.append ? 'appended to' : 'replaced rows of'} ${r.table} (${how})`);
    for (const w of r.warnings) console.log(`warning: ${w}`);
    printTable(r.columns.map((c) => ({ column: c.name, type: c.type, from: c.from, reads: c.reads ?? '' })));
    if (r.geometry) console.log(`geometry ${r.geometry}`);
    console.log(`rows read ${r.rowsRead}, loaded ${r.rowsLoaded}, rejected ${r.rowsRejected}${r.rowsRejected ? ` (see ${r.rejectsTable})` : ''} in ${((Date.now() - started) / 1000).toFixed(2)} s`);
    return 0;
  } finally {
    await closePool();
  }
}

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
  const locales = (values.locale ?? '').split(',').map((l) => l.trim()).filter(Boolean);
  const unknown = locales.filter((l) => !['fr', 'nl', 'us'].includes(l));
  if (unknown.length > 0) throw new UsageError(`unknown locale ${unknown.join(', ')} (packs: fr, nl, us)`);
  const sample = values.sample === undefined ? undefined : Number(values.sample);
  if (sample !== undefined && !(Number.isInteger(sample) && sample > 0)) throw new UsageError('--sample must be a positive whole number of records');
  const file = positionals[0]!;
  const { openSource } = await import('../functions/read/open.ts');
  const { profileStream, profileTable } = await import('../functions/profile/profile.ts');
  const started = performance.now();
  const { createReadStream } = await import('node:fs');
  const opened = await openSource(
    { name: file, path: file, open: async () => createReadStream(file, { highWaterMark: 256 * 1024 }) },
    {
      format: values.format as (typeof FORMAT_HINTS)[number] | undefined,
      sheet: values.sheet, // a name, or a 0-based index when no sheet is so named (pickSheet)
      layer: values.layer,
      member: values.member,
    },
  );
  try {
    const results = [];
    for (const entry of opened.entries) {
      const settings = { file: entry.name, locales: locales as ('fr' | 'nl' | 'us')[], sample, typeThreshold };
      results.push(
        entry.kind === 'table'
          ? await profileTable(entry.table, settings)
          : await profileStream(await entry.open(), { ...settings, hints: values.delimiter ? { delimiter: values.delimiter === 'tab' ? '\t' : values.delimiter } : undefined }),
      );
    }
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
    await opened.dispose();
  }
}

function printProfile(result: import('../functions/profile/profile.ts').FileProfile & { format?: string }, seconds: string): void {
  if (result.format && result.format !== 'csv') console.log(`${result.file}: ${result.format}`);
  else console.log(`${result.file}: ${result.encoding}${result.bom ? ' (BOM)' : ''}, delimiter ${JSON.stringify(result.delimiter)}, quote ${JSON.stringify(result.quote)}, line ending ${JSON.stringify(result.lineEnding)}${result.decimalComma ? ', decimal comma' : ''}`);
  if (result.headerRow > 0) console.log(`header on line ${result.headerRow + 1}, after ${result.headerRow} preamble line${result.headerRow === 1 ? '' : 's'}`);
  console.log(`${result.rowCount} records${result.sampled ? ' profiled (a sample)' : ''}, ${result.duplicateRows} duplicate${result.duplicateRows === 1 ? '' : 's'}, ${result.raggedCount} ragged line${result.raggedCount === 1 ? '' : 's'} — ${seconds} s`);
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
      top: c.profile.top.slice(0, 3).map((t) => `${t.value} (${t.count})`).join(', '),
    })),
    60,
  );
  for (const w of result.warnings) console.log(`warning: ${w}`);
}

function validate(argv: string[]): number {
  const { positionals } = args(argv, {}, true);
  const files = positionals.length > 0 ? positionals : [DEFAULT_PIPELINE];
  let bad = 0;
  for (const file of files) {
    try {
      const p = loadPipeline(file);
      console.log(`${file}: valid — project ${p.project}, ${p.suppliers.length} suppliers, ${p.datasets.length} datasets, ${p.views.length} views`);
    } catch (error) {
      if (!(error instanceof PipelineDefinitionError)) throw error;
      console.error(error.message);
      bad++;
    }
  }
  return bad > 0 ? 1 : 0;
}

async function fetchCommand(argv: string[]): Promise<number> {
  const { values, positionals } = args(argv, { pipeline: { type: 'string' }, verbose: { type: 'boolean', short: 'v' } }, true);
  if (positionals.length !== 1) throw new UsageError('fetch takes exactly one DATASET (or Ed-Fi API)');
  quietHandlers(values.verbose ?? false);
  const file = values.pipeline ?? DEFAULT_PIPELINE;
  const pipeline = loadPipeline(file);
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
  for (;;) {
    const result = api ? await fetchEdfiApi(deps, pipeline, api.name) : await fetchDataset(deps, dataset!, pipeline);
    const partial = result.status === 'checkpointed' || result.status === 'partial';
    console.log(`${positionals[0]}: ${result.summary}${result.status === 'fetched' || partial ? '; run `civic-etl run` to stage it' : ''}`);
    if (result.status !== 'checkpointed') break;
  }
  return 0;
}

async function status(argv: string[]): Promise<number> {
  const { values, positionals } = args(argv, { pipeline: { type: 'string' }, json: { type: 'boolean' }, limit: { type: 'string' } }, true);
  if (positionals.length > 1) throw new UsageError('status takes at most one DATASET');
  const limit = values.limit === undefined ? undefined : Number(values.limit);
  if (limit !== undefined && !(Number.isInteger(limit) && limit > 0)) throw new UsageError('--limit must be a positive whole number of loads');
  const pipeline = loadPipeline(values.pipeline ?? DEFAULT_PIPELINE);
  const name = positionals[0];
  if (name !== undefined && !pipeline.datasets.some((d) => d.name === name)) {
    throw new UsageError(`unknown dataset "${name}" (datasets: ${pipeline.datasets.map((d) => d.name).join(', ')})`);
  }
  if (!process.env[ENV.databaseUrl]) await (await import('./services.ts')).ensureServices();
  const { getPool, closePool } = await import('../functions/common/db.ts');
  try {
    const pool = await getPool();
    if (name === undefined && values.json) {
      const { ledgerSummary } = await import('../functions/common/ledger.ts');
      console.log(JSON.stringify(await ledgerSummary(pool, pipeline.project, limit ?? 20), null, 2));
    } else if (name === undefined) {
      await printLedger(pool, pipeline.project);
      await printDeadLetters(pipeline.project);
    } else {
      const { datasetLoads } = await import('../functions/clean/report.ts');
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

/** Messages waiting in the project's local dead-letter queues (moto), or why they could not be counted. */
async function printDeadLetters(project: string): Promise<void> {
  try {
    const { deadLetterDepths } = await import('./resources.ts');
    const waiting = (await deadLetterDepths(project)).filter((q) => q.messages > 0);
    for (const q of waiting) {
      console.log(`\nDLQ: ${q.messages} message${q.messages === 1 ? '' : 's'} waiting in the ${q.step} dead-letter queue (${q.queueUrl}); the loads' errors are above; fix the cause, then redrive`);
    }
  } catch (error) {
    console.log(`\nDLQ: not checked (${(error as Error).message})`);
  }
}

/** The latest loads of one dataset, each with its quality report in words. */
async function printDatasetLoads(project: string, dataset: string, loads: import('../functions/clean/report.ts').DatasetLoad[]): Promise<void> {
  const { describeReport } = await import('../functions/clean/report.ts');
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
    if (load.report.supplierCopy) console.log(`  Written back to the supplier: ${load.report.supplierCopy}, ${load.report.supplierCopy.replace(/\.json$/, '.txt')}`);
  }
}

async function replay(argv: string[]): Promise<number> {
  const { values, positionals } = args(
    argv,
    { pipeline: { type: 'string' }, from: { type: 'string' }, version: { type: 'string' }, 'dry-run': { type: 'boolean' }, verbose: { type: 'boolean', short: 'v' } },
    true,
  );
  if (positionals.length !== 1) throw new UsageError('replay takes exactly one DATASET');
  quietHandlers(values.verbose ?? false);
  const file = values.pipeline ?? DEFAULT_PIPELINE;
  const pipeline = loadPipeline(file);
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
  try {
    const summary = await replayDataset({ pool: local.pool, s3: s3Client(), pipeline, bucket: local.resources.bucket }, name, {
      from,
      versionId: values.version,
      dryRun: values['dry-run'],
      onPlan: (versions) => {
        const where = datasetPrefixes(pipeline.datasets.find((d) => d.name === name)!).map((p) => `s3://${local.resources.bucket}/${p}`).join(' and ');
        const chosen = [values.version && `version ${values.version}`, from && `last modified at or after ${from.toISOString()}`].filter(Boolean).join(', ');
        console.log(`${values['dry-run'] ? 'would replay' : 'replaying'} ${versions.length} object version${versions.length === 1 ? '' : 's'} of ${name} from ${where}${chosen ? `: ${chosen}` : ''}, oldest first`);
        if (values['dry-run']) for (const v of versions) console.log(`  ${v.lastModified.toISOString()}  ${v.key}  version ${v.versionId}  ${v.size ?? '?'} bytes`);
      },
      onVersion: (r) => {
        const what = r.status === 'loaded' ? `loaded, ${r.rowsLoaded} row${r.rowsLoaded === 1 ? '' : 's'}${r.rowsQuarantined ? ` (${r.rowsQuarantined} quarantined)` : ''}` : `${r.status}: ${r.error ?? ''}`;
        const load = r.loadId === undefined ? '' : ` — load ${r.loadId}${r.replayOf === undefined ? ' (never delivered before)' : `, replays load ${r.replayOf}`}`;
        console.log(`  ${r.lastModified.toISOString()}  ${r.key}  version ${r.versionId}: ${what}${load}`);
      },
    });
    if (values['dry-run']) return 0;
    const count = (s: 'loaded' | 'failed' | 'skipped') => summary.versions.filter((v) => v.status === s).length;
    const rowsNow = await cleanRowCount(local.pool, pipeline.project, name);
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
    await closePool();
  }
}

function services(argv: string[]): number {
  const action = argv[0];
  if (!action || !['start', 'stop', 'status', 'clean', 'env'].includes(action)) throw new UsageError('services takes start, stop, status, clean or env');
  const r = spawnSync('bash', [join(ROOT, 'scripts/services.sh'), action], { stdio: 'inherit' });
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

async function printLedger(pool: import('pg').Pool, project: string): Promise<void> {
  const { ledgerSummary } = await import('../functions/common/ledger.ts');
  const rows = await ledgerSummary(pool, project, 20);
  console.log(`\nledger (etl.loads) for ${project}, newest first:`);
  printTable(
    rows.map((r) => ({
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

/** A plain text table; long cells are cut so a row fits a terminal line or two. */
function printTable(rows: Record<string, unknown>[], maxWidth = 40): void {
  if (rows.length === 0) {
    console.log('  (no rows)');
    return;
  }
  const columns = Object.keys(rows[0]!).filter((c) => !c.startsWith('_'));
  const cell = (v: unknown) => {
    const s = v === null || v === undefined ? '' : v instanceof Date ? v.toISOString().slice(0, 10) : String(v);
    return s.length > maxWidth ? `${s.slice(0, maxWidth - 1)}…` : s;
  };
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (values: string[]) => `  ${values.map((v, i) => v.padEnd(widths[i]!)).join(' │ ')}`.trimEnd();
  console.log(line(columns));
  console.log(`  ${widths.map((w) => '─'.repeat(w)).join('─┼─')}`);
  for (const r of rows) console.log(line(columns.map((c) => cell(r[c]))));
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
  const pipeline = loadPipeline(values.pipeline ?? DEFAULT_PIPELINE);
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
