#!/usr/bin/env node
// The `civic-etl` command. The CLI is TypeScript (local/cli.ts); tsx compiles it on the fly
// with the same esbuild that bundles the Lambdas, so there is no separate build step.
import { register } from 'tsx/esm/api';

register();
await import('../local/cli.ts');
