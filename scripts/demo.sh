#!/usr/bin/env bash
# The quick start: put the Lambda's Node (22) on PATH (installed into .local/node where the machine
# lacks it), install dependencies if needed, start the local services (PostgreSQL + PostGIS and
# moto, installed on first use), upload the Chicago example files as the suppliers would, run the
# pipeline until every queue is empty, and print the combined views and the ledger.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/node.sh
[ -d node_modules ] || npm ci --no-audit --no-fund
bash scripts/services.sh start
exec node bin/civic-etl.mjs run --upload-examples "$@"
