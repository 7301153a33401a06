#!/usr/bin/env bash
# The standard fan-out benchmark of docs/benchmarks.md, from a clean checkout:
# builds the release binaries, then for each step of the ladder and each server
# (ratecast, then the baseline, so both runs of a step are close in time) starts a
# fresh server on 127.0.0.1 with simulated rates, runs ratecast-bench against it
# and stops it. After each step that ran both servers it prints ratecast's figures
# as ratios of the baseline's (`ratecast-bench compare`), and all of them again at
# the end. JSON reports, text reports, server logs, the machine description, a
# markdown table (table.md) and the comparisons (compare.md) land in
# target/bench/<UTC time>/.
#
# Knobs (environment): BENCH_STEPS ("1000 5000 10000 19000"), BENCH_HOLD (60s),
# BENCH_RAMP (1000 clients/s), BENCH_SERVERS ("ratecast baseline"), BENCH_PORT
# (18080), BENCH_OUT (the output directory), BENCH_IDLE (1: also run each step and
# server with idle clients, `run --idle`, labelled <server>-<clients>-idle, for the
# memory of a connection without subscription), BENCH_SETTLE (30s: how long after
# every client closed the server's memory is read again; the fan-out target is
# "back to idle + 10 % of the peak within 30 s"). Each run needs about
# clients / ramp + hold + settle + 10 seconds; the default ladder takes about
# 14 minutes (about twice that with BENCH_IDLE=1).
# Every client is one socket in the generator and one in the server: the open-file
# hard limit must exceed the largest step (both processes raise their soft limit).
set -euo pipefail
cd "$(dirname "$0")/.."

steps=${BENCH_STEPS:-"1000 5000 10000 19000"}
hold=${BENCH_HOLD:-60s}
ramp=${BENCH_RAMP:-1000}
servers=${BENCH_SERVERS:-"ratecast baseline"}
port=${BENCH_PORT:-18080}
idle=${BENCH_IDLE:-0}
export BENCH_SETTLE=${BENCH_SETTLE:-30s}
out=${BENCH_OUT:-target/bench/$(date -u +%Y%m%dT%H%M%SZ)}

cargo build --release --locked -p ratecast -p ratecast-bench
ulimit -n "$(ulimit -Hn)"
mkdir -p "$out"

# shellcheck source=scripts/lib/bench-common.sh
source scripts/lib/bench-common.sh
describe_machine "$out"

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

run_step() { # server clients name [run flags…]
    local server=$1 clients=$2 name=$3
    shift 3
    echo "== $name: $clients clients, ramp $ramp/s, hold $hold $*" >&2
    start_server "$server" "$out/$name.server.log"
    # The generator waits for the server to answer `assets` before the storm.
    target/release/ratecast-bench run \
        --url "ws://127.0.0.1:$port/" \
        --clients "$clients" --ramp "$ramp" --hold "$hold" \
        --server-pid "$server_pid" --label "$name" \
        --json "$out/$name.json" "$@" | tee "$out/$name.txt"
    stop_server
    reports+=("$out/$name.json")
}

# Prints ratecast's figures of a step as ratios of the baseline's, when both ran.
compare_step() { # suffix of the report names: <clients> or <clients>-idle
    local ours="$out/ratecast-$1.json" theirs="$out/baseline-$1.json"
    if [[ " $servers " == *" ratecast "* && " $servers " == *" baseline "* ]]; then
        target/release/ratecast-bench compare "$ours" "$theirs" | tee "$out/compare-$1.md"
        comparisons+=("$out/compare-$1.md")
    fi
}

reports=()
comparisons=()
for clients in $steps; do
    for server in $servers; do
        run_step "$server" "$clients" "$server-$clients"
    done
    compare_step "$clients"
    if [[ $idle == 1 ]]; then
        for server in $servers; do
            run_step "$server" "$clients" "$server-$clients-idle" --idle
        done
        compare_step "$clients-idle"
    fi
done

target/release/ratecast-bench table "${reports[@]}" | tee "$out/table.md"
if ((${#comparisons[@]})); then
    for comparison in "${comparisons[@]}"; do
        cat "$comparison"
        echo
    done | tee "$out/compare.md"
fi
echo "results in $out" >&2
