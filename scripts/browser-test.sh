#!/usr/bin/env bash
# Browser test of the live chart page (GET /): Debian's chromium driven by npm
# playwright-core against the real all-in-one binary on simulated rates.
# Installs what is missing (chromium from apt, the npm packages from the lockfile),
# builds `ratecast`, runs crates/api/tests/browser with node's test runner, and
# writes docs/img/chart.png. Works as root on a fresh Debian machine, unattended.
#
# Env: CHROMIUM (default /usr/bin/chromium), RATECAST_BIN (default: the debug build).
set -euo pipefail
cd "$(dirname "$0")/.."

export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$CHROMIUM" ]; then
    echo "== installing chromium"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q chromium
fi
"$CHROMIUM" --version 2>/dev/null || true

# Node.js comes with the machine image; playwright-core needs 20 or newer.
if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' 2>/dev/null; then
    echo "error: the browser test needs Node.js >= 20 and npm (found: $(node --version 2>/dev/null || echo none))" >&2
    exit 1
fi

echo "== npm ci (crates/api/tests/browser)"
# playwright-core never downloads a browser; this is belt and braces.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
(cd crates/api/tests/browser && npm ci --no-audit --no-fund)

if [ -z "${RATECAST_BIN:-}" ]; then
    echo "== cargo build -p ratecast"
    cargo build -p ratecast
    RATECAST_BIN="${CARGO_TARGET_DIR:-target}/debug/ratecast"
fi
RATECAST_BIN="$(realpath "$RATECAST_BIN")"   # the test runs in another directory
export RATECAST_BIN

echo "== browser test"
cd crates/api/tests/browser
node --test chart.test.mjs
