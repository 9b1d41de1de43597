#!/usr/bin/env bash
# Run a command with the Lambda's Node (22) first on PATH, installing it into .local/node on a
# machine without it (see scripts/node.sh): `bash scripts/with-node.sh vitest run --project unit`.
set -euo pipefail
# shellcheck source=scripts/node.sh
. "$(dirname "${BASH_SOURCE[0]}")/node.sh"
exec "$@"
