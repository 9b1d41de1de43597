#!/usr/bin/env node
// The `civic-etl` command. The CLI is TypeScript (local/cli.ts); tsx compiles it on the fly
// with the same esbuild that bundles the Lambdas, so there is no separate build step.
import { register } from 'tsx/esm/api';

// The AWS SDK warns on every start that its 2027 releases will need Node 22, in five lines that
// hide the output. The Lambdas run Node 22 and so should this command (package.json engines):
// on an older Node, one line says how to get it, and the SDK's notice is dropped.
const major = Number(process.versions.node.split('.')[0]);
if (major < 22) {
  process.stderr.write(
    `civic-etl: this is Node ${process.versions.node}; civic-etl runs on Node 22, as its Lambdas do. \`npm run civic-etl -- …\` runs it on Node 22 (installed into .local/node if the machine lacks it), as does \`bash scripts/with-node.sh npx civic-etl …\`.\n`,
  );
}
const emitWarning = process.emitWarning.bind(process);
process.emitWarning = (warning, ...rest) => {
  const type = typeof rest[0] === 'string' ? rest[0] : rest[0]?.type;
  if (type === 'NodeVersionSupportWarning' || String(warning).includes('NodeVersionSupportWarning')) return;
  emitWarning(warning, ...rest);
};

register();
await import('../local/cli.ts');
