/**
 * `npm run bench -- coldstart`: what every cold start of every pipeline function pays before its
 * handler runs — importing its bundle.
 *
 * The bundles are built as `cdk synth` builds them: the app (bin/app.ts) runs under tsx with
 * CDK_OUTDIR set, as the CDK CLI runs it (offline; local esbuild, lib/bundle.ts), for the
 * definition BENCH_COLDSTART_PIPELINE (default: the app's, pipelines/chicago). Each function of
 * the synthesized template (its step from POWERTOOLS_SERVICE_NAME) is then imported in
 * BENCH_COLDSTART_RUNS fresh Node processes (default 10, the functions taken in turn so that the
 * machine's load falls on all alike), each timing `await import('<code dir>/index.mjs')` and
 * checking that it exports `handler`. Each process runs as the Lambda runtime would start it:
 * working directory the code directory, the function's environment from the template (its
 * NODE_OPTIONS, if it sets any) with references (bucket, queues, secret) replaced
 * by harmless values, the Lambda's own variables (region, dummy credentials, function name,
 * memory), and AWS_ENDPOINT_URL on a closed loopback port, so that nothing reaches a network.
 * NODE_EXTRA_CA_CERTS is left out (the Lambda's CA bundle is not on this machine).
 *
 * Prints, per function, the code's size (what a cold start reads: index.mjs and the chunks it
 * imports statically; the chunks only a message's `import()` loads; the source maps) and the import time (median, min–max, IQR);
 * where iconv-lite is a chunk of its own (imported by the first file that is not UTF-8), the same
 * process then imports it, and the import plus that is printed too; and it ends with
 * `RESULT coldstart ours=<the slowest function's median ms> baseline=100 ratio=<100 ÷ ours> unit=ms`:
 * 100 ms is issue 19's target for every function.
 *
 * BENCH_COLDSTART_OUT=<a cdk.out directory> measures the bundles already there instead of
 * synthesizing. BENCH_COLDSTART_BEFORE=<another checkout's cdk.out> measures its functions in the
 * same rounds (before, after, before, …: the load of the machine falls on both alike) and adds a
 * before/after table; the RESULT line is still this checkout's.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, median, resultLine, summarize, type Stats } from './interleave.ts';

const ROOT = join(import.meta.dirname, '..');
const OUT = join(ROOT, '.local/bench/coldstart/cdk.out');
/** Issue 19: each function imports in at most this many ms on this machine. */
const TARGET_MS = 100;

interface FunctionCode {
  step: string;
  logicalId: string;
  dir: string;
  env: Record<string, string>;
  memory: number;
}

/** Harmless stand-ins for the values the template only references. */
const STAND_INS: Record<string, string> = {
  CIVIC_ETL_BUCKET: 'coldstart-landing',
  CIVIC_ETL_CLEAN_QUEUE_URL: 'http://127.0.0.1:9/000000000000/coldstart-clean',
  CIVIC_ETL_STAGE_QUEUE_URL: 'http://127.0.0.1:9/000000000000/coldstart-stage',
  CIVIC_ETL_DB_SECRET_ARN: 'arn:aws:secretsmanager:us-east-1:000000000000:secret:coldstart',
};

/** Run the app as `cdk synth` does, into `outdir`. */
function synth(outdir: string): void {
  rmSync(outdir, { recursive: true, force: true });
  const pipeline = process.env.BENCH_COLDSTART_PIPELINE;
  const context = pipeline ? { 'civic-etl:pipeline': pipeline } : {};
  const started = performance.now();
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'bin/app.ts')], {
    cwd: ROOT,
    env: { ...process.env, CDK_OUTDIR: outdir, CDK_CONTEXT_JSON: JSON.stringify(context) },
    encoding: 'utf8',
    timeout: 300_000,
  });
  if (r.status !== 0) throw new Error(`cdk synth (bin/app.ts) failed (exit ${r.status}):\n${r.stderr}`);
  console.log(`synthesized ${pipeline ?? 'the default definition'} into ${relative(ROOT, outdir)} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

/** The pipeline functions of the synthesized template(s) in `outdir`, with the directory of their code. */
function functionsIn(outdir: string): FunctionCode[] {
  const templates = readdirSync(outdir).filter((f) => f.endsWith('.template.json'));
  const found: FunctionCode[] = [];
  for (const t of templates) {
    const template = JSON.parse(readFileSync(join(outdir, t), 'utf8')) as { Resources: Record<string, { Type: string; Properties: Record<string, unknown> }> };
    for (const [logicalId, r] of Object.entries(template.Resources)) {
      if (r.Type !== 'AWS::Lambda::Function') continue;
      const vars = (r.Properties.Environment as { Variables?: Record<string, unknown> } | undefined)?.Variables ?? {};
      const service = vars.POWERTOOLS_SERVICE_NAME;
      if (typeof service !== 'string' || !service.startsWith('civic-etl-')) continue;
      const key = (r.Properties.Code as { S3Key?: string }).S3Key;
      const dir = join(outdir, `asset.${String(key).replace(/\.zip$/, '')}`);
      if (!existsSync(join(dir, 'index.mjs'))) throw new Error(`${logicalId}: no index.mjs in ${dir}`);
      const env: Record<string, string> = {};
      for (const [name, value] of Object.entries(vars)) {
        if (name === 'NODE_EXTRA_CA_CERTS') continue;
        env[name] = typeof value === 'string' ? value : (STAND_INS[name] ?? `coldstart-${name.toLowerCase()}`);
      }
      found.push({ step: service.slice('civic-etl-'.length), logicalId, dir, env, memory: Number(r.Properties.MemorySize ?? 128) });
    }
  }
  if (found.length === 0) throw new Error(`no pipeline function in the templates of ${outdir}`);
  // a second fetch function (FetchInVpc) keeps its logical id apart
  const steps = found.map((f) => f.step);
  for (const f of found) if (steps.filter((s) => s === f.step).length > 1) f.step = `${f.step} (${f.logicalId.replace(/[0-9A-F]{8}$/, '')})`;
  return found.sort((a, b) => a.step.localeCompare(b.step));
}

/**
 * The code files a cold start reads: index.mjs and the chunks it imports statically, transitively
 * (`import … from "./chunks/x.mjs"`; an `import("./chunks/y.mjs")` waits for a message that needs it).
 */
function loadedAtStart(dir: string): string[] {
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const code = readFileSync(file, 'utf8');
    for (const m of code.matchAll(/(?:\bfrom|\bimport)\s*"(\.{1,2}\/[^"]+\.mjs)"/g)) visit(join(dirname(file), m[1]!));
  };
  visit(join(dir, 'index.mjs'));
  return [...seen];
}

/** Files imported statically from `file`, transitively, `file` included. */
function staticClosure(file: string, seen = new Set<string>()): Set<string> {
  if (seen.has(file)) return seen;
  seen.add(file);
  for (const m of readFileSync(file, 'utf8').matchAll(/(?:\bfrom|\bimport)\s*"(\.{1,2}\/[^"]+\.mjs)"/g)) staticClosure(join(dirname(file), m[1]!), seen);
  return seen;
}

/** A text only iconv-lite's code holds (its error for an unknown encoding). */
const ICONV_MARK = 'Encoding not recognized';

/**
 * The chunk that a file not in UTF-8 makes a function import (iconv-lite's, functions/profile/codecs.ts):
 * an `import()` target of the files read at start whose static closure holds iconv-lite, when
 * those files do not already hold it (a bundle from before the change). Undefined otherwise.
 */
function codecsChunk(dir: string): string | undefined {
  const start = loadedAtStart(dir);
  const has = (f: string) => readFileSync(f, 'utf8').includes(ICONV_MARK);
  if (start.some(has)) return undefined;
  const targets = new Set<string>();
  for (const f of start) for (const m of readFileSync(f, 'utf8').matchAll(/\bimport\("(\.{1,2}\/[^"]+\.mjs)"\)/g)) targets.add(join(dirname(f), m[1]!));
  // the smallest such target: iconv-lite's own entry, not a reader that imports it (shapefile)
  const found = [...targets].filter((t) => [...staticClosure(t)].some(has)).map((t) => ({ t, size: [...staticClosure(t)].reduce((n, f) => n + statSync(f).size, 0) }));
  return found.sort((a, b) => a.size - b.size)[0]?.t;
}

/** Bytes of the files under `dir` whose names match. */
function bytesOf(dir: string, match: (name: string) => boolean): number {
  let total = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && match(e.name)) total += statSync(join(e.parentPath, e.name)).size;
  }
  return total;
}

/** Import the function's bundle in a fresh Node process, as the Lambda runtime would; ms. */
function importOnce(f: FunctionCode): Promise<{ ms: number; cpuMs: number; codecsMs?: number }> {
  const codecs = codecsChunk(f.dir);
  const script = [
    `const url = ${JSON.stringify(pathToFileURL(join(f.dir, 'index.mjs')).href)};`,
    'const cpu = process.cpuUsage();',
    'const t = performance.now();',
    'const m = await import(url);',
    'const ms = performance.now() - t;',
    'const used = process.cpuUsage(cpu);',
    "if (typeof m.handler !== 'function') throw new Error('index.mjs exports no handler');",
    // then what the first file not in UTF-8 imports (iconv-lite), as its message would
    ...(codecs ? [`const t2 = performance.now(); await import(${JSON.stringify(pathToFileURL(codecs).href)}); const codecsMs = performance.now() - t2;`] : ['const codecsMs = undefined;']),
    'process.stdout.write(JSON.stringify({ ms, cpuMs: (used.user + used.system) / 1000, codecsMs }), () => process.exit(0));',
  ].join('\n');
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: '/tmp',
    LANG: 'en_US.UTF-8',
    TZ: ':UTC',
    AWS_REGION: 'us-east-1',
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'coldstart',
    AWS_SECRET_ACCESS_KEY: 'coldstart',
    AWS_SESSION_TOKEN: 'coldstart',
    AWS_ENDPOINT_URL: 'http://127.0.0.1:9',
    AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs22.x',
    AWS_LAMBDA_FUNCTION_NAME: `coldstart-${f.step}`,
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(f.memory),
    AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
    LAMBDA_TASK_ROOT: f.dir,
    ...f.env,
  };
  return new Promise((resolve, reject) => {
    // BENCH_COLDSTART_CPU_PROF=<dir>: each import also writes a V8 CPU profile there (50 µs samples), to see where the time goes
    const prof = process.env.BENCH_COLDSTART_CPU_PROF ? ['--cpu-prof', '--cpu-prof-interval', '50', '--cpu-prof-dir', join(process.env.BENCH_COLDSTART_CPU_PROF, f.step)] : [];
    const child = spawn(process.execPath, [...prof, '--input-type=module', '-e', script], { cwd: f.dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b));
    child.stderr.on('data', (b: Buffer) => (err += b));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`importing the ${f.step} bundle (${f.dir}/index.mjs) failed (exit ${code}):\n${err.trim()}`));
      try {
        resolve(JSON.parse(out) as { ms: number; cpuMs: number; codecsMs?: number });
      } catch (e) {
        reject(new Error(`importing the ${f.step} bundle printed no timing: ${out.slice(0, 200)} ${err.slice(0, 500)}`, { cause: e }));
      }
    });
  });
}

export async function main(): Promise<void> {
  const given = process.env.BENCH_COLDSTART_OUT;
  const outdir = given ?? OUT;
  if (!given) synth(outdir);
  const runs = Number(process.env.BENCH_COLDSTART_RUNS ?? 10);
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`BENCH_COLDSTART_RUNS must be a whole number ≥ 1, got "${process.env.BENCH_COLDSTART_RUNS}"`);
  const functions = functionsIn(outdir);
  const beforeDir = process.env.BENCH_COLDSTART_BEFORE;
  const before = beforeDir ? functionsIn(beforeDir) : [];
  console.log(`${functions.length} functions; each bundle imported in ${runs} fresh Node ${process.version} processes (taken in turn), NODE_OPTIONS as the template sets it`);

  const all = [...functions, ...before];
  const samples = new Map<FunctionCode, number[]>(all.map((f) => [f, []]));
  const cpu = new Map<FunctionCode, number[]>(all.map((f) => [f, []]));
  // import, then iconv-lite's chunk (what a first file not in UTF-8 adds), where it is apart
  const withCodecs = new Map<FunctionCode, number[]>(all.map((f) => [f, []]));
  for (let run = 0; run < runs; run++) {
    for (const f of functions) {
      for (const g of [before.find((b) => b.step === f.step), f]) {
        if (!g) continue;
        const r = await importOnce(g);
        samples.get(g)!.push(r.ms);
        cpu.get(g)!.push(r.cpuMs);
        if (r.codecsMs !== undefined) withCodecs.get(g)!.push(r.ms + r.codecsMs);
      }
    }
  }
  if (before.length > 0) {
    console.log(`\nbefore (${beforeDir}) and after (${outdir}), measured in the same rounds: medians`);
    console.log(`function      read at start MB      CPU ms        import wall ms`);
    for (const f of functions) {
      const b = before.find((x) => x.step === f.step);
      if (!b) continue;
      const start = (x: FunctionCode) => (loadedAtStart(x.dir).reduce((sum, file) => sum + statSync(file).size, 0) / 1e6).toFixed(2);
      const pair = (m: Map<FunctionCode, number[]>) => `${median(m.get(b)!).toFixed(0).padStart(4)} → ${median(m.get(f)!).toFixed(0).padEnd(4)}`;
      console.log(`${f.step.padEnd(13)} ${start(b).padStart(6)} → ${start(f).padEnd(6)}  ${pair(cpu)}   ${pair(samples)}`);
    }
  }

  const mb = (n: number) => (n / 1e6).toFixed(2);
  console.log(`\nfunction      read at start MB  on demand MB  maps MB  CPU ms  import (wall ms)`);
  const stats: [FunctionCode, Stats][] = [];
  for (const f of functions) {
    const start = loadedAtStart(f.dir).reduce((sum, file) => sum + statSync(file).size, 0);
    const all = bytesOf(f.dir, (n) => n.endsWith('.mjs'));
    const maps = bytesOf(f.dir, (n) => n.endsWith('.map'));
    const s = summarize(samples.get(f)!);
    stats.push([f, s]);
    console.log(`${f.step.padEnd(13)} ${mb(start).padStart(16)}  ${mb(all - start).padStart(12)}  ${mb(maps).padStart(7)}  ${median(cpu.get(f)!).toFixed(0).padStart(6)}  ${describe(s, 'ms')}`);
  }
  // with a before: the functions whose before bundle held iconv-lite at start (fetch's never did)
  const heldAtStart = (f: FunctionCode) => loadedAtStart(f.dir).some((file) => readFileSync(file, 'utf8').includes(ICONV_MARK));
  const later = functions.filter((f) => withCodecs.get(f)!.length > 0 && (before.length === 0 || before.some((b) => b.step === f.step && heldAtStart(b))));
  if (later.length > 0) {
    console.log(`\nimport + iconv-lite's chunk, imported by the first file not in UTF-8 (a UTF-8 file imports no more at its first message):`);
    for (const f of later) console.log(`${f.step.padEnd(13)} ${describe(summarize(withCodecs.get(f)!), 'ms')}`);
  }
  const [slowest, worst] = stats.reduce((a, b) => (b[1].median > a[1].median ? b : a));
  const over = stats.filter(([, s]) => s.median > TARGET_MS).map(([f]) => f.step);
  console.log(`\nslowest: ${slowest.step}, median ${worst.median.toFixed(0)} ms; target ≤ ${TARGET_MS} ms for every function: ${over.length ? `NOT met (${over.join(', ')})` : 'met'}`);
  console.log(resultLine('coldstart', worst.median, TARGET_MS, TARGET_MS / worst.median, 'ms'));
}
