#!/usr/bin/env bash
# The standard fan-out benchmark of docs/benchmarks.md, from a clean checkout:
# builds the release binaries, then for each server (ratecast, baseline) and each
# step of the ladder starts a fresh server on 127.0.0.1 with simulated rates, runs
# ratecast-bench against it and stops it. JSON reports, server logs, the machine
# description and a markdown table land in target/bench/<UTC time>/.
#
# Knobs (environment): BENCH_STEPS ("1000 5000 10000 19000"), BENCH_HOLD (60s),
# BENCH_RAMP (1000 clients/s), BENCH_SERVERS ("ratecast baseline"), BENCH_PORT
# (18080), BENCH_OUT (the output directory). Each step needs about
# clients / ramp + hold + 15 seconds; the default ladder takes about 12 minutes.
# Every client is one socket in the generator and one in the server: the open-file
# hard limit must exceed the largest step (both processes raise their soft limit).
set -euo pipefail
cd "$(dirname "$0")/.."

steps=${BENCH_STEPS:-"1000 5000 10000 19000"}
hold=${BENCH_HOLD:-60s}
ramp=${BENCH_RAMP:-1000}
servers=${BENCH_SERVERS:-"ratecast baseline"}
port=${BENCH_PORT:-18080}
out=${BENCH_OUT:-target/bench/$(date -u +%Y%m%dT%H%M%SZ)}

cargo build --release --locked -p ratecast -p ratecast-bench
ulimit -n "$(ulimit -Hn)"
mkdir -p "$out"

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with local changes)')"
    echo "nproc: $(nproc)"
    echo "cpu: $(lscpu | sed -n 's/^Model name: *//p')"
    echo "memory: $(free -m | awk '/^Mem:/ {print $2 " MiB"}')"
    echo "kernel: $(uname -r)"
    echo "open files: soft $(ulimit -Sn), hard $(ulimit -Hn)"
    echo "rustc: $(rustc --version)"
} | tee "$out/machine.txt"

server_pid=""
stop_server() {
    if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid"
        wait "$server_pid" || true
    fi
    server_pid=""
}
trap stop_server EXIT

start_server() { # name log
    case $1 in
        ratecast)
            env -u MONGO_CONNECTION_URI -u EMCONT_EXCHANGE_RATES_URL RUST_LOG=warn \
                target/release/ratecast --host 127.0.0.1 --port "$port" >"$2" 2>&1 &
            ;;
        baseline)
            RUST_LOG=warn target/release/ratecast-bench baseline-server \
                --host 127.0.0.1 --port "$port" >"$2" 2>&1 &
            ;;
        *)
            echo "unknown server $1 (ratecast or baseline)" >&2
            exit 2
            ;;
    esac
    server_pid=$!
}

for server in $servers; do
    for clients in $steps; do
        name="$server-$clients"
        echo "== $name: $clients clients, ramp $ramp/s, hold $hold" >&2
        start_server "$server" "$out/$name.server.log"
        # The generator waits for the server to answer `assets` before the storm.
        target/release/ratecast-bench run \
            --url "ws://127.0.0.1:$port/" \
            --clients "$clients" --ramp "$ramp" --hold "$hold" \
            --server-pid "$server_pid" --label "$name" \
            --json "$out/$name.json" | tee "$out/$name.txt"
        stop_server
    done
done

reports=()
for server in $servers; do
    for clients in $steps; do
        reports+=("$out/$server-$clients.json")
    done
done
target/release/ratecast-bench table "${reports[@]}" | tee "$out/table.md"
echo "results in $out" >&2
