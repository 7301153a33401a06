#!/usr/bin/env bash
# One connection for five assets against five single-asset connections (issue 19).
# Builds the release binaries, starts the all-in-one `ratecast` (simulated rates,
# in-memory store) and runs `ratecast-bench multi` against it: phase A, N clients
# each following all 5 assets on one connection (`subscribe` with `assetIds`);
# then phase B, N × 5 connections following one asset each, on the same server
# after every client of A closed and BENCH_SETTLE passed. The JSON and text
# reports, the server log and the machine description land in
# target/bench/<UTC time>-multi/.
#
# Knobs (environment): BENCH_CLIENTS (N, 3600: phase B holds 18,000 sockets in
# the server and in the generator, under the 20,000 open files per process of the
# benchmark machine; the issue's 5,000 × 5 = 25,000 does not fit), BENCH_HOLD
# (30s), BENCH_RAMP (1000 connections/s), BENCH_SETTLE (30s), BENCH_PORT (18080),
# BENCH_OUT. About 2 × (hold + settle) + 6 × N / ramp + 20 seconds.
# A quick look: BENCH_CLIENTS=200 BENCH_HOLD=10s BENCH_SETTLE=5s scripts/bench-multi.sh
set -euo pipefail
cd "$(dirname "$0")/.."

clients=${BENCH_CLIENTS:-3600}
hold=${BENCH_HOLD:-30s}
ramp=${BENCH_RAMP:-1000}
port=${BENCH_PORT:-18080}
export BENCH_SETTLE=${BENCH_SETTLE:-30s}
out=${BENCH_OUT:-target/bench/$(date -u +%Y%m%dT%H%M%SZ)-multi}

cargo build --release --locked -p ratecast -p ratecast-bench
ulimit -n "$(ulimit -Hn)"
mkdir -p "$out"

# shellcheck source=scripts/lib/bench-common.sh
source scripts/lib/bench-common.sh
describe_machine "$out"

name="multi-$clients"
echo "== $name: $clients clients × 5 assets, one connection each, then five; ramp $ramp/s, hold $hold" >&2
env -u MONGO_CONNECTION_URI -u EMCONT_EXCHANGE_RATES_URL RUST_LOG=warn \
    target/release/ratecast --host 127.0.0.1 --port "$port" >"$out/$name.server.log" 2>&1 &
server_pid=$!
# The generator waits for the server to answer `assets` before each phase.
target/release/ratecast-bench multi \
    --url "ws://127.0.0.1:$port/" \
    --clients "$clients" --ramp "$ramp" --hold "$hold" \
    --server-pid "$server_pid" --label ratecast \
    --json "$out/$name.json" | tee "$out/$name.txt"
stop_server
echo "results in $out" >&2
