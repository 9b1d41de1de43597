/**
 * The definition a Lambda serves (functions/common/pipeline.ts): the pipeline.json `cdk synth`
 * bundles is read without validating it again when its bytes are those synth validated
 * (CIVIC_ETL_PIPELINE_SHA256), and validated like any other file when they are not.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadPipeline, PipelineDefinitionError } from '../../contract/load.ts';
import { currentPipeline } from '../../functions/common/pipeline.ts';
import { writeDefinitionForBundling } from '../../lib/pipeline-function.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Every definition the project ships and the fixtures the tests deploy: their Ed-Fi presets, value maps, views, geometry, REST sources. */
const DEFINITIONS = ['pipelines/amsterdam/pipeline.yaml', 'pipelines/chicago/pipeline.yaml', 'pipelines/edfi/pipeline.yaml', 'test/fixtures/value-maps/pipeline.yaml', 'test/infra/fixtures/pipeline.yaml'];

let n = 0;
/** A copy of `file` under a name of its own (currentPipeline caches by file). */
function copyOf(file: string): string {
  const to = join(mkdtempSync(join(tmpdir(), 'civic-etl-bundled-')), `pipeline-${n++}.json`);
  copyFileSync(file, to);
  return to;
}

describe('the definition bundled into a Lambda', () => {
  it.each(DEFINITIONS)('%s: read by its digest, it is the definition the function would have validated', async (definition) => {
    const bundled = writeDefinitionForBundling(loadPipeline(join(ROOT, definition)));
    const trusted = await currentPipeline(copyOf(bundled.file), bundled.sha256);
    const validated = await currentPipeline(copyOf(bundled.file), undefined);
    expect(trusted).toEqual(validated);
    expect(trusted.datasets.length).toBeGreaterThan(0);
  });

  it('is validated at synth whatever the stack is given: a definition changed in code after loading fails there, not in the Lambda', () => {
    const pipeline = loadPipeline(join(ROOT, 'pipelines/chicago/pipeline.yaml'));
    expect(() => writeDefinitionForBundling({ ...pipeline, project: 'Not A Name' })).toThrow(PipelineDefinitionError);
    expect(() => writeDefinitionForBundling({ ...pipeline, project: 'Not A Name' })).toThrow(/the pipeline definition given to the stack is not a valid pipeline definition:\n {2}- project: /);
  });

  it('is validated when its bytes are not those synth validated: an invalid edit fails, naming the file', async () => {
    const bundled = writeDefinitionForBundling(loadPipeline(join(ROOT, 'pipelines/chicago/pipeline.yaml')));
    const edited = copyOf(bundled.file);
    writeFileSync(edited, readFileSync(edited, 'utf8').replace(/"project": "[a-z_]+"/, '"project": "Not A Name"'));
    const failure = await currentPipeline(edited, bundled.sha256).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(PipelineDefinitionError);
    expect((failure as Error).message).toContain(edited);
    expect((failure as PipelineDefinitionError).problems.join('\n')).toMatch(/^project: /m);
  });

  it('is validated when its bytes are not those synth validated: a valid edit gets the defaults validation fills in', async () => {
    const bundled = writeDefinitionForBundling(loadPipeline(join(ROOT, 'pipelines/chicago/pipeline.yaml')));
    const edited = copyOf(bundled.file);
    const { profile, ...withoutProfile } = JSON.parse(readFileSync(edited, 'utf8')) as { profile: unknown };
    expect(profile).toBeDefined();
    writeFileSync(edited, JSON.stringify(withoutProfile));
    expect((await currentPipeline(edited, bundled.sha256)).profile).toEqual({ locales: [], sample: 100_000 });
    // the digest decides: told the edited bytes' own digest, the function takes them as they are (no profile)
    const editedSha256 = createHash('sha256').update(readFileSync(edited)).digest('hex');
    expect((await currentPipeline(copyOf(edited), editedSha256)).profile).toBeUndefined();
  });
});
