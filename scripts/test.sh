#!/usr/bin/env bash
# The whole test suite, on the Lambda's Node (22; installed into .local/node where the machine
# lacks it, see scripts/node.sh): type check, then unit, infrastructure (cdk synth + cdk-nag) and
# integration tests against the real local services, which the test setup starts (and installs
# on first use) unless DATABASE_URL / AWS_ENDPOINT_URL point elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/node.sh
[ -d node_modules ] || npm ci --no-audit --no-fund
npx tsc -p . --noEmit
npx vitest run "$@"
