import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BUNDLED_PIPELINE_FILE } from '../../contract/names.ts';
import type { DatasetDefinition, PipelineDefinition } from '../../contract/definition.ts';
import { loadResolvedJsonPipeline } from '../../contract/validate.ts';

let cached: { file: string; pipeline: PipelineDefinition } | undefined;

/**
 * The pipeline definition this function serves: the file its configuration names
 * (`CIVIC_ETL_PIPELINE_FILE`, a path relative to the working directory or, in Lambda, to the
 * bundle), validated once and cached. The definition bundled into a Lambda is JSON with its value
 * maps read (validate.ts); any other (YAML, map files to read) is read by the loader, imported
 * then: the YAML and CSV parsers are not part of a function's cold start.
 */
export async function currentPipeline(configured: string = BUNDLED_PIPELINE_FILE): Promise<PipelineDefinition> {
  let file = resolve(configured);
  if (!existsSync(file)) {
    // In Lambda the file sits beside the bundled handler, whatever the working directory.
    const beside = join(dirname(fileURLToPath(import.meta.url)), configured);
    if (existsSync(beside)) file = beside;
  }
  if (cached?.file !== file) cached = { file, pipeline: loadResolvedJsonPipeline(file) ?? (await import('../../contract/load.ts')).loadPipeline(file) };
  return cached.pipeline;
}

export function findDataset(pipeline: PipelineDefinition, name: string): DatasetDefinition | undefined {
  return pipeline.datasets.find((d) => d.name === name);
}
