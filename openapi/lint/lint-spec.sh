#!/usr/bin/env bash
# Lints the committed OpenAPI spec with the pinned Redocly CLI (rules in redocly.yaml) and the
# pinned Spectral CLI: Spectral's own OpenAPI rules (spectral-oas.yaml, no error and no warning)
# and the OWASP API Security ruleset (spectral-owasp.yaml, no error). Versions are in
# openapi/lint/package.json; the linters are installed into openapi/lint/node_modules on first use
# (npm ci, from package-lock.json). Exits non-zero on any problem: the spec must lint clean.
# Needs Node 20.19+ or 22.12+, and npm.
set -euo pipefail
cd "$(dirname "$0")/../.."

LINT_DIR=openapi/lint
REDOCLY=$LINT_DIR/node_modules/.bin/redocly
SPECTRAL=$LINT_DIR/node_modules/.bin/spectral
SPEC=${1:-openapi/openapi.json}
# No usage reports, no update checks: the run stays on this machine.
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true REDOCLY_SUPPRESS_NOTIFICATIONS=true

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "lint-spec: needs Node.js (20.19+ or 22.12+) and npm on PATH" >&2
  exit 2
fi
installed() {
  node -p "require('./$LINT_DIR/node_modules/$1/package.json').version" 2>/dev/null
}
wanted() {
  node -p "require('./$LINT_DIR/package-lock.json').packages['node_modules/$1'].version"
}
for package in @redocly/cli @stoplight/spectral-cli @stoplight/spectral-owasp-ruleset; do
  if [[ $(installed "$package") != "$(wanted "$package")" ]]; then
    echo "lint-spec: installing the pinned linters into $LINT_DIR/node_modules (npm ci)"
    npm ci --prefix "$LINT_DIR" --no-audit --no-fund --loglevel=error
    break
  fi
done

"$REDOCLY" lint "$SPEC" --config $LINT_DIR/redocly.yaml --max-problems 1000
echo "lint-spec: Spectral, spectral:oas (no error, no warning)"
"$SPECTRAL" lint "$SPEC" --ruleset $LINT_DIR/spectral-oas.yaml --fail-severity=hint
echo "lint-spec: Spectral, OWASP API Security Top 10 2023 (no error)"
"$SPECTRAL" lint "$SPEC" --ruleset $LINT_DIR/spectral-owasp.yaml --fail-severity=error \
  --display-only-failures
