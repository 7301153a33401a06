#!/usr/bin/env bash
# Validates docs/openapi.yaml against the OpenAPI 3.1 schema with PyPI's
# openapi-spec-validator (pinned below), installed in a virtualenv under
# target/ (kept between runs). Prints the first error; exits non-zero on any.
# Needs python3 with venv; works unattended on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

VALIDATOR_VERSION=0.9.0
venv="${CARGO_TARGET_DIR:-target}/venv-openapi"
# Debian's certificate bundle: pip's own is not the machine's trust store here.
export PIP_CERT="${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}"
export PIP_DISABLE_PIP_VERSION_CHECK=1

if [ ! -x "$venv/bin/openapi-spec-validator" ] ||
    ! "$venv/bin/pip" show openapi-spec-validator 2>/dev/null | grep -qx "Version: $VALIDATOR_VERSION"; then
    echo "== installing openapi-spec-validator $VALIDATOR_VERSION in $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "openapi-spec-validator==$VALIDATOR_VERSION"
fi

echo "== validate docs/openapi.yaml"
"$venv/bin/openapi-spec-validator" --schema 3.1.0 docs/openapi.yaml
