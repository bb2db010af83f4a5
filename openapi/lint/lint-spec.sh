#!/usr/bin/env bash
# Lints the committed OpenAPI spec with the pinned Redocly CLI (tools/spec-lint/package.json,
# rules in redocly.yaml). Installs the linter into openapi/lint/node_modules on first use
# (npm ci, from package-lock.json). Exits non-zero on any problem: the spec must lint clean.
# Needs Node 20.19+ or 22.12+, and npm.
set -euo pipefail
cd "$(dirname "$0")/../.."

LINT_DIR=openapi/lint
REDOCLY=$LINT_DIR/node_modules/.bin/redocly
SPEC=${1:-openapi/openapi.json}
# No usage reports, no update checks: the run stays on this machine.
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true REDOCLY_SUPPRESS_NOTIFICATIONS=true

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "lint-spec: needs Node.js (20.19+ or 22.12+) and npm on PATH" >&2
  exit 2
fi
wanted=$(node -p "require('./$LINT_DIR/package-lock.json').packages['node_modules/@redocly/cli'].version")
if [[ ! -x $REDOCLY ]] || [[ $(node -p "require('./$LINT_DIR/node_modules/@redocly/cli/package.json').version" 2>/dev/null) != "$wanted" ]]; then
  echo "lint-spec: installing @redocly/cli $wanted into $LINT_DIR/node_modules (npm ci)"
  npm ci --prefix "$LINT_DIR" --no-audit --no-fund --loglevel=error
fi

"$REDOCLY" lint "$SPEC" --config $LINT_DIR/redocly.yaml --max-problems 1000
