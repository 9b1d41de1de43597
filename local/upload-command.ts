/** `civic-etl upload FILE --supplier S --dataset D`: put a file where that supplier's upload goes, locally, as the supplier would. */
import { basename, relative } from 'node:path';
import { statSync } from 'node:fs';
import { loadPipeline } from '../contract/load.ts';
import { args, DEFAULT_PIPELINE, printJson, UsageError } from './cli-kit.ts';

export const UPLOAD_HELP = `Usage:
  civic-etl upload FILE --supplier S --dataset D [--pipeline FILE] [--json]
      Upload FILE to the local landing bucket as supplier S would upload it on AWS:
      s3://<bucket>/incoming/S/D/<file name>, a new object version; \`civic-etl run\` then stages and
      cleans it. Refused, as the supplier's credentials would refuse it, when D is not a dataset
      that S delivers. --json prints { bucket, key, versionId, bytes }.`;

export async function uploadCommand(argv: string[]): Promise<number> {
  const { values, positionals } = args(argv, { supplier: { type: 'string' }, dataset: { type: 'string' }, pipeline: { type: 'string' }, json: { type: 'boolean' } }, true);
  if (positionals.length !== 1) throw new UsageError('upload takes exactly one FILE');
  if (!values.supplier || !values.dataset) throw new UsageError('upload needs --supplier S and --dataset D');
  const path = positionals[0]!;
  const stat = statSync(path, { throwIfNoEntry: false });
  if (!stat?.isFile()) throw new UsageError(`${path}: no such file`);
  const file = values.pipeline ?? DEFAULT_PIPELINE;
  const pipeline = loadPipeline(file);
  if (!pipeline.suppliers.some((s) => s.name === values.supplier)) {
    throw new UsageError(`unknown supplier "${values.supplier}" (suppliers: ${pipeline.suppliers.map((s) => s.name).join(', ')})`);
  }
  const delivered = pipeline.datasets.filter((d) => d.source.type === 'upload' && d.source.supplier === values.supplier).map((d) => d.name);
  const dataset = pipeline.datasets.find((d) => d.name === values.dataset);
  if (!dataset) throw new UsageError(`unknown dataset "${values.dataset}" (datasets: ${pipeline.datasets.map((d) => d.name).join(', ')})`);
  if (!delivered.includes(dataset.name)) {
    const whose = dataset.source.type === 'upload' ? `it is uploaded by ${dataset.source.supplier}` : `it is fetched (${dataset.source.type}), not uploaded`;
    throw new UsageError(`supplier ${values.supplier} may not upload dataset ${dataset.name}: ${whose} (${values.supplier} delivers ${delivered.join(', ') || 'no dataset'})`);
  }
  await (await import('./services.ts')).ensureServices();
  const { ensureLocalResources } = await import('./resources.ts');
  const { s3Client } = await import('../functions/common/aws.ts');
  const { ZONES } = await import('../contract/names.ts');
  const { PutObjectCommand } = await import('@aws-sdk/client-s3');
  const { createReadStream } = await import('node:fs');
  const resources = await ensureLocalResources({ project: pipeline.project });
  const key = `${ZONES.incoming}${values.supplier}/${dataset.name}/${basename(path)}`;
  const out = await s3Client().send(new PutObjectCommand({ Bucket: resources.bucket, Key: key, Body: createReadStream(path), ContentLength: stat.size }));
  if (values.json) {
    printJson({ bucket: resources.bucket, key, versionId: out.VersionId ?? null, bytes: stat.size });
    return 0;
  }
  console.log(`uploaded ${relative(process.cwd(), path) || path} (${stat.size} bytes) → s3://${resources.bucket}/${key}${out.VersionId ? ` (version ${out.VersionId})` : ''}`);
  console.log('run `civic-etl run` to stage and clean it');
  return 0;
}
