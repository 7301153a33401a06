# Shared by scripts/bench.sh, scripts/bench-backlog.sh and scripts/bench-multi.sh (sourced, not run):
# the machine description of a run, and stopping the server under test.

# Writes what the numbers depend on to $1/machine.txt (and shows it).
describe_machine() { # out_dir
    {
        echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
        echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with local changes)')"
        echo "nproc: $(nproc)"
        echo "cpu: $(lscpu | sed -n 's/^Model name: *//p')"
        echo "memory: $(free -m | awk '/^Mem:/ {print $2 " MiB"}')"
        echo "kernel: $(uname -r)"
        echo "open files: soft $(ulimit -Sn), hard $(ulimit -Hn)"
        echo "rustc: $(rustc --version)"
    } | tee "$1/machine.txt"
}

# The pid of the server under test; stop_server ends it (also on exit).
server_pid=""
stop_server() {
    if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid"
        wait "$server_pid" || true
    fi
    server_pid=""
}
trap stop_server EXIT
