#!/usr/bin/env bash
# The backlog-flush benchmark (issue 9): a fetcher writes 15 minutes of buffered
# points at once into an API process with 19,000 subscribers. How long until every
# subscriber is current, and what does it cost?
#
# Builds the release binaries, starts `ratecast-bench backlog-server` (the real
# ratecast API over an in-memory store; it stores a history that ends BENCH_BACKLOG
# before the flush, writes nothing until BENCH_FLUSH_AFTER after its start, then
# flushes BENCH_BACKLOG seconds × 5 assets in one insert and goes on with one point
# per asset per second) and runs `ratecast-bench run --expect-backlog` against it:
# the clients subscribe during the outage, the hold lasts until every one of them
# has the newest flushed point (at most BENCH_CATCH_UP_TIMEOUT), then 10 s more. The
# JSON and text reports, the server log (with the flush time, Unix ms) and the
# machine description land in target/bench/<UTC time>-backlog/.
#
# Knobs (environment): BENCH_CLIENTS (19000), BENCH_BACKLOG (900s), BENCH_FLUSH_AFTER
# (60s: the storm of BENCH_CLIENTS / BENCH_RAMP seconds must be over by then),
# BENCH_RAMP (1000 clients/s), BENCH_HOLD (10s: the least hold; it waits for the
# catch-up anyway), BENCH_CATCH_UP_TIMEOUT (10m), BENCH_PORT (18080), BENCH_OUT.
# A quick look: BENCH_CLIENTS=200 BENCH_BACKLOG=60s BENCH_FLUSH_AFTER=10s scripts/bench-backlog.sh
set -euo pipefail
cd "$(dirname "$0")/.."

clients=${BENCH_CLIENTS:-19000}
backlog=${BENCH_BACKLOG:-900s}
flush_after=${BENCH_FLUSH_AFTER:-60s}
ramp=${BENCH_RAMP:-1000}
hold=${BENCH_HOLD:-10s}
catch_up_timeout=${BENCH_CATCH_UP_TIMEOUT:-10m}
port=${BENCH_PORT:-18080}
out=${BENCH_OUT:-target/bench/$(date -u +%Y%m%dT%H%M%SZ)-backlog}

cargo build --release --locked -p ratecast-bench
ulimit -n "$(ulimit -Hn)"
mkdir -p "$out"

# shellcheck source=scripts/lib/bench-common.sh
source scripts/lib/bench-common.sh
describe_machine "$out"

name="backlog-$clients"
echo "== $name: $clients clients, ramp $ramp/s, backlog $backlog flushed $flush_after after the server started" >&2
# The API's own logs at warn, the backlog server's timeline (history, flush) at info.
RUST_LOG=warn,ratecast_bench=info \
    target/release/ratecast-bench backlog-server --host 127.0.0.1 --port "$port" \
    --backlog "$backlog" --flush-after "$flush_after" >"$out/$name.server.log" 2>&1 &
server_pid=$!
# The generator waits for the server to answer `assets` before the storm.
target/release/ratecast-bench run \
    --url "ws://127.0.0.1:$port/" \
    --clients "$clients" --ramp "$ramp" --hold "$hold" \
    --expect-backlog "$backlog" --catch-up-timeout "$catch_up_timeout" \
    --server-pid "$server_pid" --label "$name" \
    --json "$out/$name.json" | tee "$out/$name.txt"
grep -h 'flushed the backlog' "$out/$name.server.log" >&2 || true
stop_server
echo "results in $out" >&2
