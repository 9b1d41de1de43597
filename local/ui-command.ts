/** `civic-etl ui`: the local console, pages over the ledger, queues, quarantine, catalog and views (local/console/). */
import { spawn } from 'node:child_process';
import { relative } from 'node:path';
import { loadPipeline } from '../contract/load.ts';
import { ENV } from '../contract/names.ts';
import { args, DEFAULT_PIPELINE, UsageError } from './cli-kit.ts';

export const DEFAULT_UI_PORT = 7270;

export const UI_HELP = `Usage:
  civic-etl ui [--port N] [--host 127.0.0.1] [--open] [--pipeline FILE]
      The local console: pages in a browser over the pipeline's ledger (every load, its status,
      timings, rows and error), its queues and dead-letter queues (depths, and a redrive button),
      its quarantine (filter by dataset, load, rule and column), its catalog (full-text search, one
      page per object version with the structure and column profile) and its views (first rows,
      and a map when a view has a geometry column). Read-only, except the redrive of a DLQ.
      --port N listens on port N (default ${DEFAULT_UI_PORT}; 0 picks a free one); --host a loopback
      address (127.0.0.1, the default, ::1 or localhost): the console serves on loopback only.
      --open opens the console in the default browser. Stop it with Ctrl-C.`;

/** Where the desktop opens a URL in the default browser. */
function opener(): string[] {
  if (process.platform === 'darwin') return ['open'];
  if (process.platform === 'win32') return ['cmd', '/c', 'start', '""'];
  return ['xdg-open'];
}

export async function uiCommand(argv: string[]): Promise<number> {
  const { values } = args(argv, { port: { type: 'string' }, host: { type: 'string' }, open: { type: 'boolean' }, pipeline: { type: 'string' } });
  const port = values.port === undefined ? DEFAULT_UI_PORT : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError('--port must be a whole number from 0 to 65535');
  const host = values.host ?? '127.0.0.1';
  const { isLoopbackHost, startConsole } = await import('./console/server.ts');
  if (!isLoopbackHost(host)) {
    throw new UsageError(
      `--host ${host} is not a loopback address: the console shows the ledger and quarantined values and can redrive queues, so it serves on loopback only (127.0.0.1, ::1 or localhost); to reach it from elsewhere, use an SSH tunnel (ssh -L ${port || DEFAULT_UI_PORT}:127.0.0.1:${port || DEFAULT_UI_PORT} …)`,
    );
  }
  const file = values.pipeline ?? DEFAULT_PIPELINE;
  const pipeline = loadPipeline(file);
  if (!process.env[ENV.databaseUrl] || !process.env.AWS_ENDPOINT_URL) await (await import('./services.ts')).ensureServices();
  const { getPool, closePool } = await import('../functions/common/db.ts');
  const { sqsClient } = await import('../functions/common/aws.ts');
  const pool = await getPool();
  let console_: Awaited<ReturnType<typeof startConsole>>;
  try {
    console_ = await startConsole({ pool, pipeline, sqs: sqsClient(), host, port });
  } catch (error) {
    await closePool();
    if ((error as { code?: string }).code === 'EADDRINUSE') throw new UsageError(`port ${port} is in use on ${host}: choose another with --port N (0 picks a free one)`);
    throw error;
  }
  console.log(`civic-etl console of ${pipeline.project} (${relative(process.cwd(), file) || file}) on ${console_.url}`);
  console.log('read-only but for the DLQ redrive; Ctrl-C stops it');
  if (values.open) {
    const [command, ...rest] = opener();
    const child = spawn(command!, [...rest, console_.url], { stdio: 'ignore', detached: true });
    child.on('error', (error) => console.error(`civic-etl: could not open a browser (${error.message}): open ${console_.url} yourself`));
    child.unref();
  }
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await console_.close();
  await closePool();
  return 0;
}
