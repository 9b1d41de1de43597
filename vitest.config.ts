import { defineConfig } from 'vitest/config';

/**
 * Three kinds of test, each a vitest project (`vitest run --project unit`, or `npm run test:unit`):
 * - unit: no service at all (no PostgreSQL, no moto); runs in parallel;
 * - infra: cdk synth + cdk-nag; no service; bundles only where a test reads the bundles;
 * - integration: against the real local services (PostgreSQL + PostGIS, MariaDB, moto), which its
 *   global setup starts (and on a fresh machine installs) unless DATABASE_URL / AWS_ENDPOINT_URL
 *   point elsewhere; also the real-data acceptance suite, the hostile-input fuzz subset, and the
 *   tests in a real browser (test/browser: Debian's Chromium, headless).
 */
export default defineConfig({
  test: {
    testTimeout: 60_000,
    // some files build their fixtures in beforeAll: room for that on a busy machine
    hookTimeout: 60_000,
    setupFiles: ['test/setup-env.ts'],
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          // No service: addresses where nothing answers (port 9, discard), so a unit test that
          // reaches for a database or moto fails at once instead of quietly using one that runs.
          env: { DATABASE_URL: 'postgres://unit-tests@127.0.0.1:9/no-database', AWS_ENDPOINT_URL: 'http://127.0.0.1:9' },
        },
      },
      {
        extends: true,
        // Each file synthesizes once in beforeAll: give the hooks room on a busy machine.
        test: { name: 'infra', include: ['test/infra/**/*.test.ts'], hookTimeout: 180_000 },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts', 'test/browser/**/*.test.ts', 'test/acceptance/**/*.test.ts', 'test/fuzz/**/*.test.ts'],
          globalSetup: ['test/global-setup.ts'],
          setupFiles: ['test/setup-services.ts'],
          // The files share one PostgreSQL and one moto; each uses its own project schema and
          // queues, but running them one at a time keeps timings honest on a 2-core machine.
          fileParallelism: false,
          // a cold start installs the services (apt, pip)
          hookTimeout: 600_000,
        },
      },
    ],
  },
});
