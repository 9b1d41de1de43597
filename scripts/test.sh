#!/usr/bin/env bash
# The whole test suite: type check, lint (typescript-eslint and the import boundaries), then unit,
# infrastructure (cdk synth + cdk-nag) and integration tests against the real local services,
# which the test setup starts (and installs on first use) unless DATABASE_URL / AWS_ENDPOINT_URL
# point elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci --no-audit --no-fund
npx tsc -p . --noEmit
npx eslint .
# After the one-time reformat of the whole tree (npm run format), check the formatting too:
# npx prettier --check .
npx vitest run "$@"
