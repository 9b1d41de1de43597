import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadPipeline } from '../../contract/load.ts';
import { BUNDLED_PIPELINE_FILE } from '../../contract/names.ts';
import type { DatasetDefinition, PipelineDefinition } from '../../contract/definition.ts';

let cached: { file: string; pipeline: PipelineDefinition } | undefined;

/**
 * The pipeline definition this function serves: the file its configuration names
 * (`CIVIC_ETL_PIPELINE_FILE`, a path relative to the working directory or, in Lambda, to the
 * bundle), validated once and cached.
 */
export function currentPipeline(configured: string = BUNDLED_PIPELINE_FILE): PipelineDefinition {
  let file = resolve(configured);
  if (!existsSync(file)) {
    // In Lambda the file sits beside the bundled handler, whatever the working directory.
    const beside = join(dirname(fileURLToPath(import.meta.url)), configured);
    if (existsSync(beside)) file = beside;
  }
  if (cached?.file !== file) cached = { file, pipeline: loadPipeline(file) };
  return cached.pipeline;
}

export function findDataset(pipeline: PipelineDefinition, name: string): DatasetDefinition | undefined {
  return pipeline.datasets.find((d) => d.name === name);
}
