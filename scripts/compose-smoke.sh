#!/usr/bin/env bash
# End-to-end smoke test of the compose stack (docker-compose.yaml), on a machine with
# Docker and Compose v2:
#
#   scripts/compose-smoke.sh            # RATECAST_PORT=9090 scripts/compose-smoke.sh
#
# 1. Builds and starts the stack (`docker compose up -d --build --wait`).
# 2. Through the load balancer at ws://localhost:${RATECAST_PORT:-8080}/, a Python
#    websocket client checks the asset list, subscribes to asset 1, checks the
#    `asset_history` and at least 3 live `point` messages, and remembers the last
#    point's time T.
# 3. It kills ONE api replica. The client's connection may drop or keep working
#    (either is fine); it reconnects (retrying for up to 30 s), subscribes again and
#    checks that the new history still holds every point seen before (T included:
#    nothing lost) and that live points continue after it.
# 4. The killed replica is started again and must become healthy.
# On exit, always: `docker compose down -v` (containers and the MongoDB volume).
# The last line is `compose-smoke: PASS` or `compose-smoke: FAIL ...`.
#
# Needs: docker (with `docker compose`), python3 with venv, network for pip
# (`websockets` is installed into a temporary venv). If compose/envs/common.env is
# missing, it is created from compose/envs/sample.common.env and left in place.
set -euo pipefail
cd "$(dirname "$0")/.."

port="${RATECAST_PORT:-8080}"
url="ws://localhost:${port}/"

log() { printf '== %s\n' "$*"; }
fail() {
    printf 'compose-smoke: FAIL: %s\n' "$*" >&2
    exit 1
}

command -v docker >/dev/null 2>&1 || fail "docker is not installed"
docker compose version >/dev/null 2>&1 || fail "'docker compose' (Compose v2) is not available"
command -v python3 >/dev/null 2>&1 || fail "python3 is not installed"

if [[ ! -f compose/envs/common.env ]]; then
    cp compose/envs/sample.common.env compose/envs/common.env
    log "created compose/envs/common.env from compose/envs/sample.common.env"
fi
# The client checks the asset list against the configuration the services run with.
assets="$(sed -n 's/^ASSET_LIST=//p' compose/envs/common.env | tail -n 1)"
assets="${assets:-EURUSD,USDJPY,GBPUSD,AUDUSD,USDCAD}"

workdir="$(mktemp -d)"
stack_started=false

cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    if [[ "$stack_started" == true ]]; then
        if ((rc != 0)); then
            log "diagnostics"
            docker compose ps -a
            docker compose logs --no-color --tail=60
        fi
        log "docker compose down -v"
        docker compose down -v --remove-orphans
    fi
    rm -rf "$workdir"
    if ((rc == 0)); then
        echo "compose-smoke: PASS"
    else
        echo "compose-smoke: FAIL (exit code $rc)"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "python websocket client (temporary venv in $workdir)"
python3 -m venv "$workdir/venv" || fail "python3 -m venv failed (Debian/Ubuntu: apt-get install python3-venv)"
"$workdir/venv/bin/pip" install --quiet --disable-pip-version-check 'websockets>=15'

cat >"$workdir/client.py" <<'PY'
"""ratecast compose smoke client: protocol checks through the load balancer and the
loss of one api replica. Usage: client.py WS_URL ASSET_LIST KILLED_ID_FILE"""

import contextlib
import json
import math
import subprocess
import sys
import time

from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.sync.client import connect

URL, ASSETS, KILLED_FILE = sys.argv[1], sys.argv[2].split(","), sys.argv[3]
ASSET_ID = 1
POINT_TIMEOUT = 15  # seconds to wait for each live point (one is due every second)
RECONNECT_FOR = 30  # seconds of reconnect attempts after the kill


class Fail(Exception):
    """A check failed: the test fails."""


class Timeout(Fail):
    """Nothing arrived in time (retried while reconnecting)."""


def say(text):
    print(f"   {text}", flush=True)


def check(condition, text):
    if not condition:
        raise Fail(text)


def open_ws():
    # proxy=None: never route localhost through an HTTP(S)_PROXY from the environment.
    return connect(URL, open_timeout=10, close_timeout=2, max_size=8 * 1024 * 1024, proxy=None)


def send(ws, action, message):
    ws.send(json.dumps({"action": action, "message": message}))


def recv(ws, timeout):
    try:
        raw = ws.recv(timeout=timeout)
    except TimeoutError:
        raise Timeout(f"no message within {timeout:.0f} s") from None
    check(isinstance(raw, str), f"expected a text frame, got {type(raw).__name__}")
    msg = json.loads(raw)
    check(isinstance(msg, dict) and isinstance(msg.get("message"), dict), f"bad envelope: {raw[:200]}")
    check(msg.get("action") != "error", f"server error: {msg.get('message')}")
    return msg["action"], msg["message"]


def expect(ws, action, timeout=10):
    got, message = recv(ws, timeout)
    check(got == action, f"expected {action!r}, got {got!r}: {json.dumps(message)[:200]}")
    return message


def check_point(p):
    check(isinstance(p, dict), f"point is not an object: {p!r}")
    check(set(p) == {"assetId", "assetName", "time", "value"}, f"point members: {sorted(p)}")
    check(p["assetId"] == ASSET_ID and p["assetName"] == ASSETS[ASSET_ID - 1], f"point of the wrong asset: {p}")
    check(type(p["time"]) is int, f"time is not an integer: {p}")
    value = p["value"]
    check(type(value) in (int, float) and math.isfinite(value) and value > 0, f"bad value: {p}")


def check_history(points):
    check(isinstance(points, list), "asset_history.points is not a list")
    for p in points:
        check_point(p)
    times = [p["time"] for p in points]
    check(all(a < b for a, b in zip(times, times[1:])), "asset_history is not in strictly ascending time order")
    span = f"{times[0]}..{times[-1]}" if times else "empty"
    say(f"asset_history: {len(points)} points ({span}), ascending, integer times")


def live_points(ws, after, count):
    """Receives `count` point messages; times strictly increase and follow `after`."""
    points, last = [], after
    for _ in range(count):
        p = expect(ws, "point", POINT_TIMEOUT)
        check_point(p)
        check(last is None or p["time"] > last, f"point time {p['time']} does not follow {last}")
        points.append(p)
        last = p["time"]
    say(f"{count} live points: times {[p['time'] for p in points]}")
    return points


def subscribe(ws):
    send(ws, "subscribe", {"assetId": ASSET_ID})
    history = expect(ws, "asset_history")["points"]
    check_history(history)
    return history


def first_connection():
    deadline = time.monotonic() + RECONNECT_FOR
    while True:
        try:
            return open_ws()
        except (OSError, WebSocketException) as e:
            if time.monotonic() > deadline:
                raise Fail(f"cannot connect to {URL}: {e}") from None
            time.sleep(1)


def first_phase(ws):
    """Asset list, subscription, live points; then kill one api replica. Returns the
    live points seen (the last one's time is T)."""
    send(ws, "assets", {})
    listed = expect(ws, "assets")["assets"]
    expected = [{"id": i, "name": n} for i, n in enumerate(ASSETS, start=1)]
    check(listed == expected, f"assets: expected {expected}, got {listed}")
    say(f"assets: {len(listed)} ({', '.join(a['name'] for a in listed)})")

    history = subscribe(ws)
    seen = live_points(ws, history[-1]["time"] if history else None, 3)
    t_last = seen[-1]["time"]
    say(f"T = {t_last}")

    ids = subprocess.run(["docker", "compose", "ps", "-q", "api"], check=True, capture_output=True, text=True).stdout.split()
    check(len(ids) >= 2, f"expected at least 2 running api replicas, found {len(ids)}")
    victim = ids[0]
    with open(KILLED_FILE, "w") as f:
        f.write(victim + "\n")
    say(f"docker kill {victim[:12]} (one of {len(ids)} api replicas)")
    subprocess.run(["docker", "kill", victim], check=True, stdout=subprocess.DEVNULL)

    # The old connection either went through the killed replica (it drops, or stalls
    # until the load balancer notices) or through the other one (it keeps working).
    try:
        p = expect(ws, "point", 10)
        check_point(p)
        check(p["time"] > t_last, f"point time {p['time']} does not follow {t_last}")
        say(f"old connection kept working (point at {p['time']})")
    except ConnectionClosed as e:
        say(f"old connection dropped ({e})")
    except Timeout:
        say("old connection silent for 10 s (its replica is gone); dropping it")
    return seen


def reconnect():
    """Connects and subscribes again, retrying for RECONNECT_FOR seconds. Returns the
    ExitStack that closes the connection, the connection and the new history."""
    deadline = time.monotonic() + RECONNECT_FOR
    attempt = 0
    while True:
        attempt += 1
        stack = contextlib.ExitStack()
        try:
            ws = stack.enter_context(open_ws())
            history = subscribe(ws)
            say(f"reconnected (attempt {attempt})")
            return stack, ws, history
        except (OSError, WebSocketException, Timeout) as e:
            stack.close()
            if time.monotonic() > deadline:
                raise Fail(f"no reconnect within {RECONNECT_FOR} s ({attempt} attempts): {e}") from None
            say(f"reconnect attempt {attempt} failed ({e}); retrying")
            time.sleep(1)


def main():
    say(f"connect {URL}")
    with first_connection() as ws:
        seen = first_phase(ws)
    t_last = seen[-1]["time"]

    stack, ws, history = reconnect()
    with stack:
        by_time = {p["time"]: p["value"] for p in history}
        check(t_last in by_time, f"new history lacks T = {t_last}: points were lost")
        missing = [p["time"] for p in seen if by_time.get(p["time"]) != p["value"]]
        check(not missing, f"new history lacks or changed earlier points at {missing}")
        say(f"new history holds T = {t_last} and every point seen before")
        live_points(ws, history[-1]["time"], 3)


if __name__ == "__main__":
    try:
        main()
    except Fail as e:
        print(f"client: FAIL: {e}", file=sys.stderr)
        sys.exit(1)
    print("client: ok")
PY

log "docker compose up -d --build --wait"
stack_started=true
docker compose up -d --build --wait

log "client via the load balancer at $url"
"$workdir/venv/bin/python" "$workdir/client.py" "$url" "$assets" "$workdir/killed"

killed="$(cat "$workdir/killed")"
log "docker compose start api (restarts the killed replica ${killed:0:12})"
docker compose start api
for _ in $(seq 1 60); do
    health="$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$killed")"
    [[ "$health" == healthy ]] && break
    sleep 2
done
[[ "$health" == healthy ]] || fail "the restarted api replica ${killed:0:12} is not healthy after 120 s (status: $health)"
log "api replica ${killed:0:12} is healthy again"
