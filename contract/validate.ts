/**
 * Validating a pipeline definition already read (value map files resolved): the Ed-Fi preset's
 * resources expanded, the schema applied, every problem named by dataset and field. Apart from
 * load.ts, which reads YAML and value map files, so that a function whose bundled definition is
 * JSON with its maps already read (as `cdk synth` writes it) validates it without loading the YAML
 * and CSV parsers at its cold start.
 */
import { readFileSync } from 'node:fs';
import type { z } from 'zod';
import { edfiDatasetName, type PipelineDefinition } from './definition.ts';
import { pipelineSchema } from './schema.ts';
import { hasValueMapFilesToRead } from './value-maps.ts';

/** A pipeline definition that does not validate; the message names the file, dataset and field. */
export class PipelineDefinitionError extends Error {
  override name = 'PipelineDefinitionError';
  constructor(
    message: string,
    readonly problems: readonly string[] = [],
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/**
 * Validate a definition whose map files are read; `problems` found before (reading those files)
 * are reported with the schema's. `origin` (a file name) prefixes every message.
 */
export function validatePipeline(input: unknown, origin = 'pipeline definition', problemsBefore: readonly string[] = []): PipelineDefinition {
  input = expandEdfiResources(input);
  const result = pipelineSchema.safeParse(input);
  if (result.success && problemsBefore.length === 0) return result.data;
  const problems = [...problemsBefore, ...(result.error?.issues.map((issue) => describeIssue(input, issue)) ?? [])];
  throw new PipelineDefinitionError(`${origin} is not a valid pipeline definition:\n  - ${problems.join('\n  - ')}`, problems);
}

/** The text of a definition file; a file that cannot be read is a PipelineDefinitionError naming it. */
export function readDefinitionText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (cause) {
    throw new PipelineDefinitionError(`cannot read pipeline definition ${file}: ${(cause as Error).message}`, [], { cause });
  }
}

/** JSON text of a definition file, parsed; invalid JSON is a PipelineDefinitionError naming the file. */
export function parseDefinitionJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new PipelineDefinitionError(`${file} is not valid JSON: ${(cause as Error).message}`, [], { cause });
  }
}

/**
 * A `.json` definition that names no map file still to read (as `cdk synth` bundles one into each
 * function), read and validated; `undefined` for any other file, which load.ts's `loadPipeline`
 * reads (YAML, map files).
 */
export function loadResolvedJsonPipeline(file: string): PipelineDefinition | undefined {
  if (!/\.json$/i.test(file)) return undefined;
  const data = parseDefinitionJson(readDefinitionText(file), file);
  return hasValueMapFilesToRead(data) ? undefined : validatePipeline(data, file);
}

/** `datasets[1].clean.columns[0].type` becomes `dataset "programs" → clean.columns[0].type`. */
function describeIssue(input: unknown, issue: z.core.$ZodIssue): string {
  const path = [...issue.path];
  let where = '';
  if ((path[0] === 'datasets' || path[0] === 'views' || path[0] === 'suppliers' || path[0] === 'valueMaps') && typeof path[1] === 'number') {
    const kind = path[0].slice(0, -1);
    const items = (input as Record<string, unknown> | null)?.[path[0]];
    const item = Array.isArray(items) ? (items[path[1]] as { name?: unknown } | undefined) : undefined;
    where = typeof item?.name === 'string' ? `${kind} "${item.name}"` : `${kind} #${path[1] + 1}`;
    path.splice(0, 2);
  }
  const field = path.reduce<string>((acc, p) => (typeof p === 'number' ? `${acc}[${p}]` : acc ? `${acc}.${String(p)}` : String(p)), '');
  const location = [where, field].filter(Boolean).join(' → ') || '(top level)';
  return `${location}: ${issue.message}`;
}

/**
 * The Ed-Fi preset's `resources` become datasets: a declared dataset of the resource's name gets
 * the `edfi` source (when it has none), others are generated — records cleaned by their `id` with
 * mode upsert (change queries bring changes only), columns as detected. Unreadable shapes are left
 * for the schema to report.
 */
function expandEdfiResources(input: unknown): unknown {
  if (!input || typeof input !== 'object') return input;
  const doc = input as { edfi?: unknown; datasets?: unknown };
  if (!Array.isArray(doc.edfi) || !Array.isArray(doc.datasets)) return input;
  const datasets = [...(doc.datasets as Record<string, unknown>[])];
  for (const api of doc.edfi as Record<string, unknown>[]) {
    if (!api || typeof api.name !== 'string' || !Array.isArray(api.resources)) continue;
    for (const entry of api.resources as unknown[]) {
      const resource = typeof entry === 'string' ? entry : (entry as { resource?: unknown })?.resource;
      if (typeof resource !== 'string') continue;
      const name = typeof entry === 'object' && typeof (entry as { dataset?: unknown }).dataset === 'string' ? (entry as { dataset: string }).dataset : edfiDatasetName(api.name, resource);
      const source = { type: 'edfi', api: api.name, resource };
      const i = datasets.findIndex((d) => d && d.name === name);
      if (i >= 0) {
        if (datasets[i]!.source === undefined) datasets[i] = { ...datasets[i], source };
        continue;
      }
      datasets.push({ name, title: `${resource} (Ed-Fi ${api.name})`, source, clean: { key: ['id'], mode: 'upsert' } });
    }
  }
  return { ...doc, datasets: datasets.map(edfiKeyAsColumns) };
}

/**
 * The key of an Ed-Fi dataset may name fields as the API spells them (`[id, odsSchoolYear]`): each
 * becomes its column — the declared column whose `source` it is, or its name lower-cased, as detected
 * columns are (`odsSchoolYear` → `odsschoolyear`).
 */
function edfiKeyAsColumns(dataset: Record<string, unknown>): Record<string, unknown> {
  const source = dataset?.source as { type?: unknown } | undefined;
  const clean = dataset?.clean as { key?: unknown; columns?: unknown } | undefined;
  if (source?.type !== 'edfi' || !clean || !Array.isArray(clean.key)) return dataset;
  const columns = Array.isArray(clean.columns) ? (clean.columns as { name?: unknown; source?: unknown }[]) : [];
  const column = (field: unknown): unknown => {
    if (typeof field !== 'string' || /^[a-z][a-z0-9_]*$/.test(field)) return field;
    const declared = columns.find((c) => c?.source === field && typeof c.name === 'string');
    if (declared) return declared.name;
    return /^[A-Za-z][A-Za-z0-9_]*$/.test(field) ? field.toLowerCase() : field;
  };
  return { ...dataset, clean: { ...clean, key: clean.key.map(column) } };
}
