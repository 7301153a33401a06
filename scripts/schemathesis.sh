#!/usr/bin/env bash
# Runs schemathesis (PyPI, pinned below) against a real `ratecast` all-in-one:
# memory store, simulated rates, a free loopback port. Every operation of
# docs/openapi.yaml, valid and invalid inputs, with the checks that no answer
# is a 5xx and that every status code, content type and body is the one the
# spec documents. Installs schemathesis in a virtualenv under target/ (kept
# between runs), builds the binary, starts it, waits for /readyz, runs,
# stops the server; exits non-zero when any check fails. Works unattended on a
# fresh machine with python3 (venv) and cargo.
#
# GET /v1/stream (getStream, Server-Sent Events) is excluded: a valid request
# opens a stream that never ends, so schemathesis would wait on its first
# answer until its request timeout and report that as a failure. Its error
# answers and its events are checked by crates/api/tests/sse.rs instead.
#
# Env: RATECAST_BIN (default: the debug build), MAX_EXAMPLES (default 100 per
# operation).
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
mkdir -p "${CARGO_TARGET_DIR:-target}"
target="$(realpath "${CARGO_TARGET_DIR:-target}")"
venv="$target/venv-schemathesis"
export PIP_CERT="${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}"
export PIP_DISABLE_PIP_VERSION_CHECK=1

if [ ! -x "$venv/bin/schemathesis" ] ||
    ! "$venv/bin/pip" show schemathesis 2>/dev/null | grep -qx "Version: $SCHEMATHESIS_VERSION"; then
    echo "== installing schemathesis $SCHEMATHESIS_VERSION in $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION"
fi

if [ -z "${RATECAST_BIN:-}" ]; then
    echo "== cargo build -p ratecast"
    cargo build -p ratecast
    RATECAST_BIN="$target/debug/ratecast"
fi

log="$(mktemp)"
server=""
stop_server() {
    if [ -n "$server" ] && kill -0 "$server" 2>/dev/null; then
        kill -TERM "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
    fi
    rm -f "$log"
}
trap stop_server EXIT

echo "== starting $RATECAST_BIN (memory store, simulated rates, a free port)"
# Whatever the machine has configured, this run wants simulated rates in memory.
env -u EMCONT_EXCHANGE_RATES_URL -u MONGO_CONNECTION_URI -u ASSET_LIST \
    RUST_LOG=info LOG_FORMAT=text \
    "$RATECAST_BIN" --host 127.0.0.1 --port 0 2>"$log" &
server=$!

addr=""
for _ in $(seq 300); do
    addr="$(sed -n 's|.*websocket API listening on ws://\([^ /]*\)/.*|\1|p' "$log" | head -n1)"
    [ -n "$addr" ] && break
    kill -0 "$server" 2>/dev/null || { cat "$log" >&2; echo "error: ratecast exited" >&2; exit 1; }
    sleep 0.1
done
[ -n "$addr" ] || { cat "$log" >&2; echo "error: ratecast did not say where it listens" >&2; exit 1; }
for _ in $(seq 300); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$addr/readyz")" = 200 ] && break
    sleep 0.1
done
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://$addr/readyz")" = 200 ] ||
    { cat "$log" >&2; echo "error: /readyz never answered 200" >&2; exit 1; }
echo "   listening on $addr, ready"

echo "== schemathesis $SCHEMATHESIS_VERSION on docs/openapi.yaml"
status=0
# From the target directory: schemathesis keeps its cache (.schemathesis/) where it runs.
spec="$PWD/docs/openapi.yaml"
(cd "$target" && "$venv/bin/schemathesis" run "$spec" \
    --url "http://$addr" \
    --checks "${CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance}" \
    --mode all \
    --exclude-operation-id getStream \
    --max-examples "${MAX_EXAMPLES:-100}" \
    --seed 1 \
    --no-color) || status=$?
if [ "$status" -ne 0 ]; then
    echo "== server log (last 40 lines)" >&2
    tail -n 40 "$log" >&2
fi
exit "$status"
