/**
 * The handlers' bundles (lib/bundle.ts): what a cold start reads, and what only a message that
 * needs it loads. Built with the stack's own esbuild options, with esbuild's metafile to see
 * which packages end up in which output file.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Metafile } from 'esbuild';
import { afterAll, describe, expect, it } from 'vitest';
import { lambdaBuildOptions } from '../../lib/bundle.ts';
import { PIPELINE_NODE_MAJOR } from '../../lib/pipeline-function.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** The packages (node_modules/<name>) and files of ours in what a cold start reads, and in all the output. */
async function bundled(entry: string): Promise<{ outdir: string; atStart: Set<string>; anywhere: Set<string>; zodLocalesAtStart: string[] }> {
  const outdir = mkdtempSync(join(tmpdir(), 'civic-etl-bundle-'));
  dirs.push(outdir);
  const { metafile } = await build({ ...lambdaBuildOptions(join(ROOT, entry), outdir, PIPELINE_NODE_MAJOR), metafile: true, logLevel: 'silent' });
  const outputs = (metafile as Metafile).outputs;
  const index = Object.keys(outputs).find((k) => k.endsWith('/index.mjs'))!;
  // index.mjs and the chunks it imports statically, transitively; an `import()` waits for a message
  const start = new Set<string>();
  const visit = (out: string) => {
    if (start.has(out)) return;
    start.add(out);
    for (const i of outputs[out]!.imports) if (i.kind === 'import-statement' && !i.external) visit(i.path);
  };
  visit(index);
  const names = (outs: string[]) =>
    new Set(
      outs
        .flatMap((o) => Object.keys(outputs[o]!.inputs))
        .map((input) => {
          const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(input);
          return pkg ? pkg[1]! : input.replace(/^.*?((?:functions|contract)\/)/, '$1');
        }),
    );
  // zod's locales other than English (its default messages), which no function uses
  const zodLocalesAtStart = [...start].flatMap((o) => Object.keys(outputs[o]!.inputs)).filter((input) => /zod\/v4\/locales\/(?!en\.js$|index\.js$)/.test(input));
  return { outdir, atStart: names([...start]), anywhere: names(Object.keys(outputs).filter((o) => o.endsWith('.mjs'))), zodLocalesAtStart };
}

describe('the handler bundles', () => {
  it('leave the SQL drivers, undici and the connectors out of what a fetch cold start reads, and keep them in the bundle for the message that needs them', async () => {
    const fetch = await bundled('functions/get/handler.ts');
    for (const lazy of ['mysql2', 'pg', 'undici', '@aws-sdk/client-lambda', 'functions/get/fetch-sql.ts', 'functions/get/fetch-edfi.ts', 'functions/get/fetch-catalog.ts', 'functions/get/fetch-rest.ts']) {
      expect(fetch.atStart, lazy).not.toContain(lazy);
      expect(fetch.anywhere, lazy).toContain(lazy);
    }
    // what every fetch needs is there from the start
    for (const eager of ['@aws-sdk/client-s3', 'zod', 'functions/get/fetch-handler.ts']) expect(fetch.atStart, eager).toContain(eager);
  });

  it('leave the GeoPackage, Parquet, spreadsheet, shapefile and GeoJSON readers out of what a stage cold start reads', async () => {
    const stage = await bundled('functions/stage/handler.ts');
    for (const lazy of [
      'sql.js',
      'hyparquet',
      'hyparquet-compressors',
      'saxes',
      'functions/read/gpkg.ts',
      'functions/read/parquet.ts',
      'functions/read/xlsx.ts',
      'functions/read/shapefile.ts',
      'functions/read/geojson.ts',
    ]) {
      expect(stage.atStart, lazy).not.toContain(lazy);
      expect(stage.anywhere, lazy).toContain(lazy);
    }
    for (const eager of ['functions/read/csv.ts', 'functions/read/json.ts', 'pg-copy-streams']) expect(stage.atStart, eager).toContain(eager);
  });

  it('leave the decoders of files not in UTF-8, the zip reader, the failure report and the YAML definition loader out of what a stage cold start reads', async () => {
    const stage = await bundled('functions/stage/handler.ts');
    for (const lazy of ['iconv-lite', 'yauzl', 'functions/read/archive.ts', 'functions/common/report.ts', 'contract/load.ts', 'yaml', 'csv-parse']) {
      expect(stage.atStart, lazy).not.toContain(lazy);
      expect(stage.anywhere, lazy).toContain(lazy);
    }
    for (const eager of ['functions/profile/codecs.ts']) expect(stage.atStart, eager).toContain(eager);
    expect(stage.zodLocalesAtStart).toEqual([]);
  });

  it('leave the definition schemas out of every cold start: the bundled definition was validated by cdk synth, and one that differs is validated by the chunk that has them', async () => {
    for (const entry of ['functions/get/handler.ts', 'functions/stage/handler.ts', 'functions/clean/handler.ts', 'functions/migrate/handler.ts']) {
      const b = await bundled(entry);
      for (const lazy of ['contract/schema.ts', 'contract/validate.ts']) {
        expect(b.atStart, `${entry}: ${lazy}`).not.toContain(lazy);
        expect(b.anywhere, `${entry}: ${lazy}`).toContain(lazy);
      }
    }
  });

  it('leave the exporter out of what a clean cold start reads', async () => {
    const clean = await bundled('functions/clean/handler.ts');
    expect(clean.atStart).not.toContain('functions/combine/exports.ts');
    expect(clean.anywhere).toContain('functions/combine/exports.ts');
    for (const lazy of ['iconv-lite', 'yaml', 'csv-parse']) expect(clean.atStart, lazy).not.toContain(lazy);
    expect(clean.zodLocalesAtStart).toEqual([]);
  });

  it("leave zod's locales out of what a fetch or migrate cold start reads", async () => {
    for (const entry of ['functions/get/handler.ts', 'functions/migrate/handler.ts']) expect((await bundled(entry)).zodLocalesAtStart, entry).toEqual([]);
  });

  it("print a failing function's stack at its places in the sources, without --enable-source-maps, where Node with it prints them", async () => {
    const { outdir } = await bundled('functions/stage/handler.ts');
    // the stage function without its queue: its configuration fails at import, and Node prints the uncaught error
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', DATABASE_URL: 'postgres://nobody@127.0.0.1:9/none', AWS_REGION: 'us-east-1' };
    const run = (nodeOptions: string) => spawnSync(process.execPath, [join(outdir, 'index.mjs')], { env: { ...env, NODE_OPTIONS: nodeOptions }, encoding: 'utf8' });
    const ours = run('');
    const nodes = run('--enable-source-maps');
    for (const r of [ours, nodes]) {
      expect(r.status).not.toBe(0);
      expect(r.stderr).toContain('environment variable CIVIC_ETL_CLEAN_QUEUE_URL is not set');
    }
    const places = (stderr: string) => [...stderr.matchAll(/((?:functions|contract)\/[\w/.-]+\.ts):(\d+):(\d+)/g)].map((m) => `${m[1]}:${m[2]}:${m[3]}`);
    // the throw in config.ts, at the line where the source has it (read from the source, not from a map)
    const configLines = readFileSync(join(ROOT, 'functions/common/config.ts'), 'utf8').split('\n');
    const throwLine = configLines.findIndex((l) => /throw new ConfigurationError\(`invalid configuration of/.test(l)) + 1;
    expect(throwLine).toBeGreaterThan(0);
    expect(places(ours.stderr)[0]).toMatch(new RegExp(`^functions/common/config\\.ts:${throwLine}:`));
    // each frame as Node prints it, `name (place)`: the function's name in the source, not the bundle's minified one
    expect(ours.stderr).toMatch(new RegExp(`\\n    at parseEnv \\((?:[\\w.-]+/)*functions/common/config\\.ts:${throwLine}:\\d+\\)\\n`));
    expect(places(ours.stderr)).toContain(places(ours.stderr).find((p) => p.startsWith('functions/stage/handler.ts:')));
    // the same places as Node's own source maps give (Node also prints the source line; the frames are what matter)
    expect(places(ours.stderr)).toEqual(places(nodes.stderr).filter((p, i, all) => all.indexOf(p) === i));
    // and no frame left in the minified bundle where the map knows the place
    expect(ours.stderr).not.toMatch(/index\.mjs:\d+:\d+/);
  });
});
