#!/usr/bin/env node
// The `civic-etl` command. The CLI is TypeScript (local/cli.ts); tsx compiles it on the fly
// with the same esbuild that bundles the Lambdas, so there is no separate build step.
import { register } from 'tsx/esm/api';

// The AWS SDK warns on every start that its 2027 releases will need Node 22. The Lambdas already
// run on Node 22; on a terminal the notice only hides the output, so it is dropped here alone.
const emitWarning = process.emitWarning.bind(process);
process.emitWarning = (warning, ...rest) => {
  const type = typeof rest[0] === 'string' ? rest[0] : rest[0]?.type;
  if (type === 'NodeVersionSupportWarning' || String(warning).includes('NodeVersionSupportWarning')) return;
  emitWarning(warning, ...rest);
};

register();
await import('../local/cli.ts');
