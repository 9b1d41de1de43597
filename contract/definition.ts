/**
 * The pipeline definition: one *project* (it owns one PostgreSQL schema) and its datasets,
 * suppliers and views. This is the one contract shared by the infrastructure (`lib/`) and the
 * runtime (`functions/`). Its schemas are in contract/schema.ts, which both validate a definition
 * with (contract/validate.ts); here are the types they infer, and the constants and helpers the
 * runtime uses without building the schemas.
 */
import type * as z from 'zod';
import type * as S from './schema.ts';

/** Column types the clean step casts to, with the PostgreSQL type each becomes. */
export const COLUMN_TYPES = {
  text: 'text',
  integer: 'integer',
  bigint: 'bigint',
  numeric: 'numeric',
  double: 'double precision',
  boolean: 'boolean',
  date: 'date',
  timestamp: 'timestamp',
  timestamptz: 'timestamptz',
} as const;
export type ColumnType = keyof typeof COLUMN_TYPES;

/** Datasets fetched from inside the VPC (SQL sources with `network: vpc`), by the in-VPC fetch function. */
export function fetchedInVpc(dataset: { source: SourceDefinition }): boolean {
  return dataset.source.type === 'sql' && dataset.source.network === 'vpc';
}

/** The Secrets Manager secrets a fetched source reads (the fetch function is granted exactly these). */
export function sourceSecrets(source: SourceDefinition): string[] {
  switch (source.type) {
    case 'http':
    case 'catalog':
      return source.headersSecret ? [source.headersSecret] : [];
    case 'rest':
      return source.auth ? [source.auth.secret] : [];
    case 'sql':
      return [source.secret];
    case 'upload':
    case 'edfi': // the API's secret (edfi[].secret), granted with the API
      return [];
  }
}

/** The dataset name generated for an Ed-Fi resource: `ods` + `studentSchoolAssociations` → `ods_student_school_associations`. */
export function edfiDatasetName(api: string, resource: string): string {
  const [namespace, name] = resource.includes('/') ? resource.split('/') : ['ed-fi', resource];
  const snake = (t: string) =>
    t
      .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
      .replace(/-/g, '_')
      .toLowerCase();
  // ≤ 45 characters: `<dataset>_quarantine_load` (an index name) must stay within PostgreSQL's 63
  return [api.replace(/-/g, '_'), namespace === 'ed-fi' ? '' : snake(namespace!), snake(name!)].filter(Boolean).join('_').slice(0, 45).replace(/_+$/, '');
}

/** The `edfi` resources of the API `api`, each with its dataset. */
export function edfiResources(pipeline: { datasets: readonly DatasetDefinition[] }, api: string): { resource: string; dataset: DatasetDefinition }[] {
  return pipeline.datasets.filter((d) => d.source.type === 'edfi' && d.source.api === api).map((d) => ({ resource: (d.source as z.infer<typeof S.edfiSourceSchema>).resource, dataset: d }));
}

export type ColumnDefinition = z.infer<typeof S.columnSchema>;
export type SourceDefinition = z.infer<typeof S.sourceSchema>;
export type ReadHints = z.infer<typeof S.readHintsSchema>;
export type GeometryDefinition = z.infer<typeof S.geometrySchema>;
export type DatasetDefinition = z.infer<typeof S.datasetSchema>;
export type CombineDefinition = z.infer<typeof S.combineSchema>;
export type ViewDefinition = z.infer<typeof S.viewSchema>;
export type SupplierDefinition = z.infer<typeof S.supplierSchema>;
export type ValueMapDefinition = z.infer<typeof S.valueMapSchema>;
export type ProfileSettings = z.infer<typeof S.profileSettingsSchema>;
export type EdfiApiDefinition = z.infer<typeof S.edfiApiSchema>;
export type PipelineDefinition = z.infer<typeof S.pipelineSchema>;
export type PipelineInput = z.input<typeof S.pipelineSchema>;
