import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BUNDLED_PIPELINE_FILE } from '../../contract/names.ts';
import type { DatasetDefinition, PipelineDefinition } from '../../contract/definition.ts';
import { logger } from './logger.ts';

let cached: { file: string; pipeline: PipelineDefinition } | undefined;

/**
 * The pipeline definition this function serves: the file its configuration names
 * (`CIVIC_ETL_PIPELINE_FILE`, a path relative to the working directory or, in Lambda, to the
 * bundle), validated once and cached.
 *
 * The definition `cdk synth` bundles into a Lambda is the JSON it validated, and the function is
 * told its SHA-256 (`CIVIC_ETL_PIPELINE_SHA256`, lib/pipeline-function.ts; `validatedSha256`, from the
 * function's configuration): a file of exactly those
 * bytes is read as it is, without building the schemas again (contract/schema.ts, about 13 ms of
 * every cold start). Any other file is validated here: a bundled file that differs from the digest
 * (with a warning), a JSON definition with its value maps read (contract/validate.ts), or one the
 * loader reads (YAML, map files to read; contract/load.ts) — imported then, so that neither the
 * schemas nor the YAML and CSV parsers are part of a function's cold start.
 */
export async function currentPipeline(configured: string = BUNDLED_PIPELINE_FILE, validatedSha256?: string): Promise<PipelineDefinition> {
  let file = resolve(configured);
  if (!existsSync(file)) {
    // In Lambda the file sits beside the bundled handler, whatever the working directory.
    const beside = join(dirname(fileURLToPath(import.meta.url)), configured);
    if (existsSync(beside)) file = beside;
  }
  if (cached?.file !== file) cached = { file, pipeline: validatedAtSynth(file, validatedSha256) ?? (await validated(file)) };
  return cached.pipeline;
}

/** The definition in `file` when its bytes are those `cdk synth` validated (their SHA-256 is `sha256`); otherwise undefined. */
function validatedAtSynth(file: string, sha256: string | undefined): PipelineDefinition | undefined {
  if (!sha256?.trim()) return undefined;
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch {
    return undefined; // validation reads it again and names the problem
  }
  const actual = createHash('sha256').update(bytes).digest('hex');
  if (actual === sha256.trim().toLowerCase()) return JSON.parse(bytes.toString('utf8')) as PipelineDefinition;
  logger.warn('the pipeline definition is not the one cdk synth validated: validating it now', { file, expectedSha256: sha256.trim(), actualSha256: actual });
  return undefined;
}

async function validated(file: string): Promise<PipelineDefinition> {
  const { loadResolvedJsonPipeline } = await import('../../contract/validate.ts');
  return loadResolvedJsonPipeline(file) ?? (await import('../../contract/load.ts')).loadPipeline(file);
}

export function findDataset(pipeline: PipelineDefinition, name: string): DatasetDefinition | undefined {
  return pipeline.datasets.find((d) => d.name === name);
}
