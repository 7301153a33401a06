#!/usr/bin/env bash
# Fuzzes the parsers that read bytes nobody vouches for; docs/reliability.md
# records the runs. Targets:
#   parse_body            upstream body bytes -> ratecast_fetcher::emcont::parse_body
#                         (crates/fetcher/fuzz)
#   inbound_frames        a client's bytes after the upgrade, in arbitrary chunks at
#                         arbitrary times -> ratecast_api::inbound::Decoder; asserts
#                         the bytes held stay within the bound   (crates/api/fuzz)
#   parse_request         client frame bytes  -> ratecast_core::protocol::parse_request
#   parse_request_fields  client frames built from typed fields (integer limits
#                         included) -> parse_request               (crates/core/fuzz)
#
#   scripts/fuzz.sh [seconds] [target...]    # default: 300 s, every target at once
#
# Targets run in parallel, one libFuzzer process each (fork mode, so a crash is
# saved and fuzzing goes on). Builds use debug assertions, so integer overflow
# panics as it does in `cargo test`. Works on a stable toolchain: cargo-fuzz needs
# nightly flags, which RUSTC_BOOTSTRAP=1 makes stable accept.
#
# Corpora are seeded from crates/fetcher/tests/fixtures/upstream/*.txt, from every
# `{"action":…}` line of docs/protocol.md and from crates/core/fuzz/seeds/ (which
# also holds inputs that once crashed). FUZZ_FRESH=1 starts from the seeds alone
# instead of the corpus of earlier runs. Per target, the libFuzzer log lands in
# crates/*/fuzz/logs/<target>.log and crash inputs in crates/*/fuzz/artifacts/<target>/;
# minimize one with `cargo fuzz tmin -a <target> <file>` in that crate's fuzz
# directory. Exits 1 when any target saved a crash, timeout or out-of-memory input.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-300}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(parse_body parse_request parse_request_fields inbound_frames)

# target → fuzz crate directory, inbound size limit (bytes)
fuzz_dir() {
    case $1 in
        parse_body) echo crates/fetcher/fuzz ;;
        parse_request | parse_request_fields) echo crates/core/fuzz ;;
        inbound_frames) echo crates/api/fuzz ;;
        *) echo "unknown target $1 (known: parse_body parse_request parse_request_fields inbound_frames)" >&2; exit 2 ;;
    esac
}
max_len() {
    case $1 in
        # Bodies are capped at 1 MiB upstream; 8 KiB leaves room to grow past the
        # ~0.9 KiB fixtures and keeps executions fast.
        parse_body) echo 8192 ;;
        # The server refuses inbound messages over 4096 bytes (close 1009).
        parse_request | parse_request_fields) echo 4096 ;;
        # Several messages and frames of up to 4 KiB, in chunks.
        inbound_frames) echo 32768 ;;
    esac
}

seed() {
    local target=$1 corpus=$2
    case $target in
        parse_body)
            cp crates/fetcher/tests/fixtures/upstream/*.txt "$corpus/"
            ;;
        parse_request)
            cp crates/core/fuzz/seeds/* "$corpus/"
            local n=0 line
            while IFS= read -r line; do
                n=$((n + 1))
                printf '%s' "$line" >"$corpus/protocol-md-$n.json"
            done < <(grep -E '^\{"action"' docs/protocol.md)
            ;;
        parse_request_fields | inbound_frames) ;; # arbitrary's encoding: libFuzzer starts from nothing
    esac
}

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
if ! rustc --version | grep -q nightly; then
    export RUSTC_BOOTSTRAP=1
fi

for target in "${targets[@]}"; do
    dir=$(fuzz_dir "$target")
    if [ "${FUZZ_FRESH:-0}" = 1 ]; then
        rm -rf "${dir:?}/corpus/$target"
    fi
    mkdir -p "$dir/corpus/$target" "$dir/logs"
    seed "$target" "$dir/corpus/$target"
    # Builds one at a time: they share two cores with whatever else runs.
    (cd "$dir" && cargo fuzz build -a "$target")
done

started=$(mktemp)
trap 'rm -f "$started"' EXIT
echo "fuzzing ${targets[*]} for $seconds s each, in parallel; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
pids=()
for target in "${targets[@]}"; do
    dir=$(fuzz_dir "$target")
    dict=()
    [ ! -f "$dir/$target.dict" ] || dict=(-dict="$target.dict")
    (
        cd "$dir"
        cargo fuzz run -a "$target" "corpus/$target" -- \
            -max_total_time="$seconds" -max_len="$(max_len "$target")" "${dict[@]}" \
            -timeout=10 -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1
    ) >"$dir/logs/$target.log" 2>&1 &
    pids+=($!)
done
# The load average while fuzzing, every 60 s: other work on the machine shows here.
(
    while sleep 60; do echo "load at $(date -u +%H:%M:%S): $(cut -d' ' -f1-3 /proc/loadavg)"; done
) &
sampler=$!
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
kill "$sampler" 2>/dev/null || true
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

# One summary line per target from the last libFuzzer status line
# (`#EXECS: cov: C ft: F corp: N exec/s: … oom/timeout/crash: a/b/c time: Ts …`).
findings=0
for target in "${targets[@]}"; do
    dir=$(fuzz_dir "$target")
    last=$(grep -E '^#[0-9]+: cov:' "$dir/logs/$target.log" | tail -n 1 || true)
    execs=$(sed -E 's/^#([0-9]+):.*/\1/' <<<"$last")
    time=$(sed -E 's/.* time: ([0-9]+)s.*/\1/' <<<"$last")
    cov=$(sed -E 's/.* cov: ([0-9]+) ft: ([0-9]+) corp: ([0-9]+).*/cov \1, features \2, corpus \3/' <<<"$last")
    mapfile -t saved < <(find "$dir/artifacts/$target" -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' \) -newer "$started" 2>/dev/null | sort)
    count=${#saved[@]}
    rate=$([ -n "$time" ] && [ "$time" -gt 0 ] && echo $((execs / time)) || echo "?")
    echo "$target: ${execs:-?} executions in ${time:-?} s (~$rate exec/s), ${cov:-no status line}, inputs saved by this run: $count"
    [ "$count" -eq 0 ] || printf '  %s\n' "${saved[@]}"
    [ "$count" -eq 0 ] || findings=1
done
echo "logs: $(for t in "${targets[@]}"; do printf '%s ' "$(fuzz_dir "$t")/logs/$t.log"; done)"
[ "$status" -eq 0 ] || echo "a fuzzer exited with an error; see its log" >&2
[ "$findings" -eq 0 ] && [ "$status" -eq 0 ]
