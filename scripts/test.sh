#!/usr/bin/env bash
# The whole test suite, on the Lambda's Node (22; installed into .local/node where the machine
# lacks it, see scripts/node.sh): type check, lint (typescript-eslint and the import boundaries), format check,
# then the three vitest projects — unit (no service), infra (cdk synth + cdk-nag, no service) and
# integration, against the real local services, which its setup starts (and installs on first use)
# unless DATABASE_URL / AWS_ENDPOINT_URL point elsewhere.
# Arguments go to vitest: `bash scripts/test.sh --project unit`.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/node.sh
[ -d node_modules ] || npm ci --no-audit --no-fund
npx tsc -p . --noEmit
npx eslint .
npx prettier --check .
npx vitest run "$@"
