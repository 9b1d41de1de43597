/**
 * Running code in a benchmark as the Lambda runs it: bundled by esbuild with the functions'
 * settings (lib/bundle.ts: ESM, minified, source maps, the runtime's Node target, code
 * splitting). Imported by the parent benchmark only — it pulls in aws-cdk-lib, which must not
 * end up in the bundle it builds.
 */
import { bundleEntry, bundleHandler } from '../lib/bundle.ts';
import { PIPELINE_NODE_MAJOR } from '../lib/pipeline-function.ts';

/** Bundle `entry` into `outdir` as the stack bundles a handler; returns the path of its `index.mjs`. */
export function bundleLikeLambda(entry: string, outdir: string): string {
  bundleHandler(entry, outdir, PIPELINE_NODE_MAJOR);
  return bundleEntry(outdir);
}
