/**
 * How a pipeline function's handler is bundled: esbuild, ES modules, minified, source maps
 * without the sources, the runtime's Node target, the `require` banner, the AWS SDK bundled at
 * the versions package-lock.json pins, pg's optional native binding left out — and code
 * splitting: what a handler loads with `import()` at the point of use (the readers of each file
 * format, the fetchers of each source type, the SDK clients a message may not need) goes into
 * chunks beside `index.mjs` (`chunks/*.mjs`), read and compiled only when a message needs them.
 * Without splitting, esbuild puts them in the one file, and every cold start parses all of it:
 * compiling the 2.8 MB fetch bundle alone took about half its import time (`npm run bench --
 * coldstart`, docs/performance.md).
 *
 * Used by the stack (lib/pipeline-function.ts, at synth, synchronously) and by the benchmarks
 * that run code as the Lambda runs it (bench/lambda-like.ts).
 */
import { join } from 'node:path';
import { buildSync, type BuildOptions } from 'esbuild';

/** ES module bundles have no `require`; some dependencies (CommonJS inside) still call it. */
export const ESM_REQUIRE_BANNER = "import { createRequire } from 'module';const require = createRequire(import.meta.url);";

/** Where the chunks go, under the function's code directory. */
export const CHUNK_DIR = 'chunks';

/** The esbuild options of a handler bundled into `outdir` as `index.mjs` (and `chunks/`), for Node `nodeMajor`. */
export function lambdaBuildOptions(entry: string, outdir: string, nodeMajor: number): BuildOptions {
  return {
    entryPoints: { index: entry },
    outdir,
    bundle: true,
    splitting: true,
    chunkNames: `${CHUNK_DIR}/[name]-[hash]`,
    outExtension: { '.js': '.mjs' },
    platform: 'node',
    format: 'esm',
    target: `node${nodeMajor}`,
    minify: true,
    sourcemap: true,
    // Stack traces need the mappings, not a copy of every source file: a third of the size.
    sourcesContent: false,
    mainFields: ['module', 'main'],
    banner: { js: ESM_REQUIRE_BANNER },
    external: ['pg-native'],
    logLevel: 'warning',
  };
}

/** Bundle `entry` into `outdir` (`index.mjs`, its map, `chunks/`); throws with esbuild's errors. */
export function bundleHandler(entry: string, outdir: string, nodeMajor: number): void {
  buildSync(lambdaBuildOptions(entry, outdir, nodeMajor));
}

/** The bundle's entry file in `outdir`. */
export const bundleEntry = (outdir: string) => join(outdir, 'index.mjs');
