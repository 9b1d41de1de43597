/**
 * zod for the code every function runs from its start — the environment (functions/common/config.ts),
 * the queue messages and events, the connector contract (contract/objects.ts) — is zod/mini: it
 * builds the same validators as zod, without a method per schema on every instance, so importing it
 * and building these schemas costs a cold start less (`npm run bench -- coldstart`). The pipeline
 * definition's schemas (contract/schema.ts, full zod) are built only where a definition is validated.
 *
 * zod/mini loads no locale. Each module that uses it imports this one (`import './zod-mini.ts'`)
 * beside `zod/mini` itself, for English messages — zod's own ("Too small: expected string to have
 * >=1 characters"), as full zod gives them. (Re-exporting `z` from here would put every locale in
 * the bundle: esbuild cannot leave out what a namespace passed on as a value holds.)
 */
import { config } from 'zod/mini';
import en from 'zod/v4/locales/en.js';

config(en());
