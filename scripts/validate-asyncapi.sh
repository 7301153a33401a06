#!/usr/bin/env bash
# Validates docs/asyncapi.yaml with the official AsyncAPI parser (npm
# @asyncapi/parser, pinned in docs/asyncapi/package-lock.json): the AsyncAPI 3
# schema, the parser's semantic rules and every message payload schema.
# Installs the parser with `npm ci` from the committed lockfile, without running
# install scripts. Prints every diagnostic; exits non-zero on any error (warnings
# only print). Needs Node.js >= 20 and npm; works unattended on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/../docs/asyncapi"

if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' 2>/dev/null; then
    echo "error: validating the AsyncAPI spec needs Node.js >= 20 and npm (found: $(node --version 2>/dev/null || echo none))" >&2
    exit 1
fi

echo "== npm ci (docs/asyncapi)"
# --ignore-scripts: the parser needs no build step, and a dependency's postinstall
# only sends install telemetry (also switched off here).
export SCARF_ANALYTICS=false
npm ci --ignore-scripts --no-audit --no-fund

echo "== validate docs/asyncapi.yaml"
node validate.mjs ../asyncapi.yaml
