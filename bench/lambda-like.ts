/**
 * Running code in a benchmark as the Lambda runs it: bundled by esbuild with the functions'
 * settings (lib/pipeline-function.ts). Imported by the parent benchmark only — it pulls in
 * aws-cdk-lib, which must not end up in the bundle it builds.
 */
import { ESM_REQUIRE_BANNER, PIPELINE_RUNTIME } from '../lib/pipeline-function.ts';

/** Bundle `entry` to `outfile` (ESM, minified, the runtime's Node target), as NodejsFunction does. */
export async function bundleLikeLambda(entry: string, outfile: string): Promise<void> {
  const { build } = await import('esbuild');
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: PIPELINE_RUNTIME.name.replace(/^nodejs(\d+)\.x$/, 'node$1'),
    minify: true,
    sourcemap: true,
    sourcesContent: false,
    mainFields: ['module', 'main'],
    banner: { js: ESM_REQUIRE_BANNER },
    external: ['pg-native'],
    logLevel: 'warning',
  });
}
