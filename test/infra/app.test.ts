/**
 * The app as `cdk synth` runs it (`npx tsx bin/app.ts` with CDK_OUTDIR and CDK_CONTEXT_JSON set
 * the way the CLI sets them): real handlers bundled, cdk-nag applied, bad input refused.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadPipeline } from '../../contract/load.ts';
import { FIXTURE_PIPELINE, FIXTURES, SYNTH_TIMEOUT } from './synth.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

function runApp(context: Record<string, unknown>) {
  const outdir = mkdtempSync(join(tmpdir(), 'civic-etl-app-'));
  const result = spawnSync(process.execPath, ['--import', 'tsx', 'bin/app.ts'], {
    cwd: ROOT,
    env: { ...process.env, CDK_OUTDIR: outdir, CDK_CONTEXT_JSON: JSON.stringify(context) },
    encoding: 'utf8',
    timeout: SYNTH_TIMEOUT,
  });
  return { outdir, status: result.status, stderr: result.stderr };
}

describe('the app, given a valid definition', () => {
  let run: ReturnType<typeof runApp>;
  let template: { Resources: Record<string, { Type: string; Properties: Record<string, unknown> }> };
  beforeAll(() => {
    run = runApp({ 'civic-etl:pipeline': FIXTURE_PIPELINE });
    const file = join(run.outdir, 'CivicEtl-springfield.template.json');
    if (run.status !== 0 || !existsSync(file)) throw new Error(`synth failed (${run.status}):\n${run.stderr}`);
    template = JSON.parse(readFileSync(file, 'utf8'));
  }, SYNTH_TIMEOUT);

  it('synthesizes one stack, CivicEtl-<project>, and passes cdk-nag', () => {
    const manifest = JSON.parse(readFileSync(join(run.outdir, 'manifest.json'), 'utf8')) as { artifacts: Record<string, { type: string }> };
    const stacks = Object.entries(manifest.artifacts)
      .filter(([, a]) => a.type === 'aws:cloudformation:stack')
      .map(([id]) => id);
    expect(stacks).toEqual(['CivicEtl-springfield']);
    expect(run.stderr).not.toMatch(/AwsSolutions-/);
  });

  it('bundles each real handler as an ES module with its source map, the chunks it imports on demand, and the validated definition beside it', () => {
    const expected = loadPipeline(FIXTURE_PIPELINE);
    const functions = Object.values(template.Resources).filter((r) => r.Type === 'AWS::Lambda::Function' && (r.Properties.Runtime as string) === 'nodejs22.x');
    expect(functions).toHaveLength(4);
    for (const fn of functions) {
      const asset = join(run.outdir, `asset.${(fn.Properties.Code as { S3Key: string }).S3Key.replace(/\.zip$/, '')}`);
      expect(readdirSync(asset).sort()).toEqual(['chunks', 'index.mjs', 'index.mjs.map', 'pipeline.json']);
      // what a message imports when it needs it: ES modules with their source maps
      const chunks = readdirSync(join(asset, 'chunks'));
      expect(chunks.length).toBeGreaterThan(0);
      for (const chunk of chunks.filter((c) => !c.endsWith('.map'))) {
        expect(chunk).toMatch(/\.mjs$/);
        expect(chunks).toContain(`${chunk}.map`);
      }
      expect(JSON.parse(readFileSync(join(asset, 'pipeline.json'), 'utf8'))).toEqual(expected);
      expect(readFileSync(join(asset, 'index.mjs'), 'utf8')).toMatch(/^import \{ createRequire \} from 'module';const require = createRequire\(import\.meta\.url\);/);
    }
  });
});

describe('the app, given an invalid definition', () => {
  it(
    'refuses a dataset with an unknown supplier, naming the dataset and the field, without a stack trace',
    () => {
      const run = runApp({ 'civic-etl:pipeline': join(FIXTURES, 'invalid-unknown-supplier.yaml') });
      expect(run.status).toBe(1);
      expect(run.stderr).toContain('dataset "complaints" → source.supplier: unknown supplier "nobody" (declare it under suppliers)');
      expect(run.stderr).not.toMatch(/\n\s+at /);
    },
    SYNTH_TIMEOUT,
  );

  it(
    'refuses a column of an unknown type, naming the dataset and the column',
    () => {
      const run = runApp({ 'civic-etl:pipeline': join(FIXTURES, 'invalid-column-type.yaml') });
      expect(run.status).toBe(1);
      expect(run.stderr).toContain('dataset "parcels" → clean.columns[1].type');
      expect(run.stderr).not.toMatch(/\n\s+at /);
    },
    SYNTH_TIMEOUT,
  );

  it(
    'refuses a definition file that does not exist, naming it',
    () => {
      const run = runApp({ 'civic-etl:pipeline': 'pipelines/nowhere/pipeline.yaml' });
      expect(run.status).toBe(1);
      expect(run.stderr).toContain('cannot read pipeline definition pipelines/nowhere/pipeline.yaml');
    },
    SYNTH_TIMEOUT,
  );

  it(
    'refuses a bad operational setting, naming the context key',
    () => {
      const run = runApp({ 'civic-etl:pipeline': FIXTURE_PIPELINE, 'civic-etl:maxReceiveCount': 'lots' });
      expect(run.status).toBe(1);
      expect(run.stderr).toContain('civic-etl:maxReceiveCount: must be a whole number');
      expect(run.stderr).not.toMatch(/\n\s+at /);
    },
    SYNTH_TIMEOUT,
  );
});
