#!/usr/bin/env bash
# Issue 15's hostile clients, each beside ordinary subscribers, from a clean
# checkout: builds the release binaries, then for each attack starts a fresh
# all-in-one server on 127.0.0.1 (simulated rates, in-memory store), runs
# `ratecast-bench hostile` against it (a warm-up storm, then a calm phase and an
# attack phase of the same length, see `ratecast-bench hostile --help`) and
# stops the server. JSON reports, text reports, server logs, the machine
# description and a markdown table (table.md) land in
# target/bench/hostile-<UTC time>/.
#
# Knobs (environment): HOSTILE_SUBSCRIBERS (2000), HOSTILE_HOLD (20s, each
# phase), HOSTILE_ATTACKS (all of them: giant-frame continuations pong-flood
# ping-flood empty-frames empty-texts zero-window slow-headers no-request),
# HOSTILE_ATTACKERS (1: the fan-out target is for one attacker),
# HOSTILE_RSS_CEILING (2G: the attack phase is aborted when the server's RSS
# passes it; giant-frame reaches it within seconds at HEAD), HOSTILE_CLOSE_WITHIN
# (5s), HOSTILE_PORT (18500), HOSTILE_OUT (the output directory). Each attack
# takes about 2 × (subscribers / 1000 + hold + 7) seconds; the defaults about
# 9 minutes. The binaries are taken from $CARGO_TARGET_DIR/release when that is
# set (target/release otherwise); the results always land under target/bench/.
#
# Server settings per attack: zero-window runs with MAX_CONNECTIONS =
# subscribers + attackers, so the connection slots are exactly taken and the
# admission probe (one client more, from the start of the hold) gets in only
# when the server frees an attacker's slot, and with SEND_TIMEOUT=5s; its close
# target is SEND_TIMEOUT + HOSTILE_CLOSE_WITHIN, since a server cannot tell a
# stalled reader before SEND_TIMEOUT (issue 15: "within SEND_TIMEOUT plus your
# bound"). Every other attack runs the server's defaults.
set -euo pipefail
cd "$(dirname "$0")/.."

subscribers=${HOSTILE_SUBSCRIBERS:-2000}
hold=${HOSTILE_HOLD:-20s}
attacks=${HOSTILE_ATTACKS:-"giant-frame continuations pong-flood ping-flood empty-frames empty-texts zero-window slow-headers no-request"}
attackers=${HOSTILE_ATTACKERS:-1}
ceiling=${HOSTILE_RSS_CEILING:-2G}
close_within=${HOSTILE_CLOSE_WITHIN:-5s}
port=${HOSTILE_PORT:-18500}
out=${HOSTILE_OUT:-target/bench/hostile-$(date -u +%Y%m%dT%H%M%SZ)}
zero_window_send_timeout=5
bin=${CARGO_TARGET_DIR:-target}/release

cargo build --release --locked -p ratecast -p ratecast-bench
ulimit -n "$(ulimit -Hn)"
mkdir -p "$out"

# shellcheck source=scripts/lib/bench-common.sh
source scripts/lib/bench-common.sh
describe_machine "$out"

# Seconds of a duration like 5s or 5 (what the close target needs).
seconds() {
    local value=${1%s}
    [[ $value =~ ^[0-9]+$ ]] || {
        echo "$1: give the close target in whole seconds, e.g. 5s" >&2
        exit 2
    }
    echo "$value"
}

reports=()
for attack in $attacks; do
    server_env=()
    target=$close_within
    if [[ $attack == zero-window ]]; then
        server_env=(MAX_CONNECTIONS=$((subscribers + attackers)) SEND_TIMEOUT=${zero_window_send_timeout}s)
        target=$(($(seconds "$close_within") + zero_window_send_timeout))s
    fi
    name=hostile-$attack
    echo "== $attack: $attackers attacker(s) beside $subscribers subscribers, hold $hold per phase${server_env[*]:+, server ${server_env[*]}}" >&2
    env -u MONGO_CONNECTION_URI -u EMCONT_EXCHANGE_RATES_URL RUST_LOG=warn "${server_env[@]}" \
        "$bin/ratecast" --host 127.0.0.1 --port "$port" >"$out/$name.server.log" 2>&1 &
    server_pid=$!
    # The generator waits for the server to answer `assets` before the warm-up.
    # One attack that fails to run (a server that stopped answering) does not
    # stop the others.
    if ! {
        echo "server settings: ${server_env[*]:-defaults}"
        "$bin/ratecast-bench" hostile \
            --url "ws://127.0.0.1:$port/" --server-pid "$server_pid" \
            --attack "$attack" --attackers "$attackers" \
            --subscribers "$subscribers" --hold "$hold" \
            --rss-ceiling "$ceiling" --close-within "$target" \
            --label "$name" --json "$out/$name.json"
    } 2>&1 | tee "$out/$name.txt"; then
        echo "== $attack: the run failed, see $out/$name.txt" >&2
    fi
    stop_server
    if [[ -f $out/$name.json ]]; then
        reports+=("$out/$name.json")
    fi
done

if ((${#reports[@]} == 0)); then
    echo "no attack produced a report" >&2
    exit 1
fi

"$bin/ratecast-bench" hostile-table "${reports[@]}" | tee "$out/table.md"
echo "results in $out" >&2
