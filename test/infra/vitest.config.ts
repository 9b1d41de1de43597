/**
 * The infrastructure tests need no local services (no PostgreSQL, no moto): only synthesis.
 * Run them on their own with
 *   npx vitest run --config test/infra/vitest.config.ts
 * Each file synthesizes (and bundles) once in beforeAll; files run in parallel.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  root: fileURLToPath(new URL('../..', import.meta.url)),
  test: {
    include: ['test/infra/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 180_000,
  },
});
