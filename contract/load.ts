import { dirname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { PipelineDefinition } from './definition.ts';
import { parseDefinitionJson, PipelineDefinitionError, readDefinitionText, validatePipeline } from './validate.ts';
import { resolveValueMapFiles } from './value-map-files.ts';

export { PipelineDefinitionError } from './validate.ts';

/**
 * Validate an already-parsed definition. `origin` (a file name) prefixes every message. Value map
 * files (`valueMaps[].file`) are read relative to `baseDir` (loadPipeline: the pipeline file's folder).
 *
 * @example
 *   const pipeline = parsePipeline(JSON.parse(text), 'pipeline.json');
 */
export function parsePipeline(input: unknown, origin = 'pipeline definition', baseDir = process.cwd()): PipelineDefinition {
  const maps = resolveValueMapFiles(input, baseDir);
  return validatePipeline(maps.input, origin, maps.problems);
}

/** Read a definition from a `.yaml`, `.yml` or `.json` file and validate it. */
export function loadPipeline(file: string): PipelineDefinition {
  const text = readDefinitionText(file);
  if (/\.json$/i.test(file)) return parsePipeline(parseDefinitionJson(text, file), file, dirname(file));
  let data: unknown;
  try {
    data = parseYaml(text);
  } catch (cause) {
    throw new PipelineDefinitionError(`${file} is not valid YAML: ${(cause as Error).message}`, [], { cause });
  }
  return parsePipeline(data, file, dirname(file));
}
