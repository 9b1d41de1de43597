#!/usr/bin/env bash
# The whole test suite: type check, then unit, infrastructure (cdk synth + cdk-nag) and
# integration tests against the real local services, which the test setup starts (and installs
# on first use) unless DATABASE_URL / AWS_ENDPOINT_URL point elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci --no-audit --no-fund
npx tsc -p . --noEmit
npx vitest run "$@"
