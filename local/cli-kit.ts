/**
 * What every `civic-etl` command shares: its option parser, its usage errors, plain-text tables
 * that fit the terminal, one JSON document on stdout for `--json`, and the runtime's JSON log
 * lines sent to stderr so that they never mix with what a command prints.
 */
import { Console } from 'node:console';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ENV } from '../contract/names.ts';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const DEFAULT_PIPELINE = process.env[ENV.pipelineFile] ?? join(ROOT, 'pipelines/chicago/pipeline.yaml');

/** A mistake in how the command was called: exit code 2 and a pointer to the usage. */
export class UsageError extends Error {}

type OptionSpec = Record<string, { type: 'string' | 'boolean'; short?: string }>;

/** Parse a command's arguments strictly; an unknown option or a missing value is a UsageError. */
export function args<T extends OptionSpec>(argv: string[], options: T, positionals = false) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: positionals, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** A positive whole number given to `flag`, or undefined when it was not given. */
export function positiveInt(flag: string, value: string | undefined, what: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!(Number.isInteger(n) && n > 0)) throw new UsageError(`${flag} must be a positive whole number of ${what}`);
  return n;
}

/**
 * The runtime's logger (Powertools, JSON lines for CloudWatch) writes INFO to stdout; in the
 * command line every log line goes to stderr instead, so that stdout holds only what the command
 * prints (a table, or one JSON document). Call before the handlers log anything.
 */
export async function logsToStderr(): Promise<void> {
  const { logger } = await import('../functions/common/logger.ts');
  const toStderr = new Console({ stdout: process.stderr, stderr: process.stderr });
  // the Logger keeps the Console it writes with in this field (setConsole); one logger in the runtime
  Object.assign(logger, { console: toStderr });
  // the level is read when the logger is made: a level set since (quiet or --verbose) applies now
  const level = process.env.POWERTOOLS_LOG_LEVEL?.toUpperCase();
  if (level && ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'CRITICAL', 'SILENT'].includes(level)) logger.setLogLevel(level as 'INFO');
}

/** Print one JSON document on stdout (the whole output of a command run with --json). */
export function printJson(value: unknown): void {
  console.log(JSON.stringify(value, null, 2));
}

/** The width tables must fit: the terminal's, else $COLUMNS, else none (a pipe or a file). */
export function outputWidth(stream: { isTTY?: boolean; columns?: number } = process.stdout): number | undefined {
  if (stream.isTTY && stream.columns) return stream.columns;
  const columns = Number(process.env.COLUMNS);
  return Number.isInteger(columns) && columns > 0 ? columns : undefined;
}

/**
 * A plain text table, as lines. Cells longer than `maxCell` are cut with "…"; then, while the table
 * is wider than `width`, the widest column loses a character (down to 3, headings cut too), so that
 * each row fits one terminal line.
 */
export function formatTable(rows: Record<string, unknown>[], opts: { maxCell?: number; width?: number } = {}): string[] {
  if (rows.length === 0) return ['  (no rows)'];
  const maxCell = opts.maxCell ?? 40;
  const columns = Object.keys(rows[0]!).filter((c) => !c.startsWith('_'));
  const text = (v: unknown) => (v === null || v === undefined ? '' : v instanceof Date ? v.toISOString().slice(0, 10) : String(v).replace(/\s+/g, ' '));
  const cut = (s: string, w: number) => (s.length > w ? `${s.slice(0, Math.max(0, w - 1))}…` : s);
  const cells = rows.map((r) => columns.map((c) => cut(text(r[c]), maxCell)));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)));
  if (opts.width !== undefined) {
    const total = () => 2 + widths.reduce((a, b) => a + b, 0) + 3 * (widths.length - 1);
    const floor = widths.map((w) => Math.min(3, w));
    while (total() > opts.width) {
      let widest = -1;
      for (let i = 0; i < widths.length; i++) if (widths[i]! > floor[i]! && (widest < 0 || widths[i]! > widths[widest]!)) widest = i;
      if (widest < 0) break; // nothing left to narrow: the line wraps
      widths[widest]!--;
    }
  }
  const line = (values: string[]) => `  ${values.map((v, i) => cut(v, widths[i]!).padEnd(widths[i]!)).join(' │ ')}`.trimEnd();
  return [line(columns), `  ${widths.map((w) => '─'.repeat(w)).join('─┼─')}`, ...cells.map(line)];
}

/** Print a table fitted to the output's width. */
export function printTable(rows: Record<string, unknown>[], maxCell = 40): void {
  for (const l of formatTable(rows, { maxCell, width: outputWidth() })) console.log(l);
}
