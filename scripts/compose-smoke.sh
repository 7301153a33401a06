#!/usr/bin/env bash
# End-to-end test of the compose stack (docker-compose.yaml): built, started, used
# through the load balancer and broken on purpose.
#
#   scripts/compose-smoke.sh            # RATECAST_SMOKE_PORT=28080 scripts/compose-smoke.sh
#
# 1. Docker: runs with `docker compose` (v2) or `docker-compose` (v1.29), whichever
#    exists. As root it installs Debian's docker.io / docker-compose when missing and
#    starts dockerd when none answers (no systemd needed; scripts/lib/docker.sh).
# 2. Images: scripts/local-images.sh keeps or pulls the official base images and only
#    where a pull fails builds local stand-ins from Debian's packages; MongoDB is then a
#    wire-protocol stand-in that is NOT MongoDB (compose/standin.override.yaml).
# 3. Builds both images (timed) and starts the stack in its own compose project,
#    `ratecast-smoke` (RATECAST_SMOKE_PROJECT), so it never touches a deployment's
#    containers or volume, with the load balancer on 127.0.0.1:${RATECAST_SMOKE_PORT:-18080}.
# 4. scripts/compose_smoke.py, through the load balancer: every container non-root,
#    image sizes, /metrics 404 at the load balancer, the protocol (assets, a full
#    asset_history, live points), `--scale api=3` with new connections on all three,
#    `kill -9` of an api replica under subscribed clients (they reconnect with `since`:
#    nothing lost or repeated; restarted by policy, healthy; new clients served
#    meanwhile), `docker stop` of a replica (its clients get 1001 within the grace
#    period, exit code 0), `kill -9` of the fetcher (no second lost beyond the outage),
#    an api replica cut off from the database network (/readyz 503, then back).
# On exit, always: `down -v` of the smoke project (its containers, networks, volume).
# The last line is `compose-smoke: PASS` or `compose-smoke: FAIL ...`.
#
# Needs: root or a docker group member, python3 with venv, network access for pip
# (`websockets` goes into a temporary venv) and, for local images, Debian's packages.
# If compose/envs/common.env is missing, it is created from the sample and left.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/docker.sh
. scripts/lib/docker.sh

port="${RATECAST_SMOKE_PORT:-18080}"
project="${RATECAST_SMOKE_PROJECT:-ratecast-smoke}"

log() { printf '== %s\n' "$*"; }
fail() {
    printf 'compose-smoke: FAIL: %s\n' "$*" >&2
    exit 1
}

command -v python3 >/dev/null 2>&1 || fail "python3 is not installed"
docker_install || fail "docker is not installed"
docker_daemon || fail "no docker daemon"
compose_cmd || fail "no docker compose"

if [[ ! -f compose/envs/common.env ]]; then
    cp compose/envs/sample.common.env compose/envs/common.env
    log "created compose/envs/common.env from compose/envs/sample.common.env"
fi
# The client checks the asset list against the configuration the services run with.
assets="$(sed -n 's/^ASSET_LIST=//p' compose/envs/common.env | tail -n 1)"
assets="${assets:-EURUSD,USDJPY,GBPUSD,AUDUSD,USDCAD}"

log "base images (scripts/local-images.sh)"
scripts/local-images.sh
set -a
# shellcheck source=/dev/null
. compose/local-images.env
set +a
files=(-f docker-compose.yaml)
for override in $RATECAST_COMPOSE_OVERRIDES; do files+=(-f "$override"); done
# Published on the loopback address only: the test talks to 127.0.0.1.
export RATECAST_PORT="127.0.0.1:$port"
COMPOSE+=(-p "$project" "${files[@]}")
log "compose: ${COMPOSE[*]}"

workdir="$(mktemp -d)"
stack_started=false

cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    if [[ "$stack_started" == true ]]; then
        if ((rc != 0)); then
            log "diagnostics"
            "${COMPOSE[@]}" ps
            "${COMPOSE[@]}" logs --no-color --tail=40
        fi
        log "${COMPOSE[*]} down -v"
        "${COMPOSE[@]}" down -v --remove-orphans
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

log "build the images"
started=$SECONDS
"${COMPOSE[@]}" build
log "images built in $((SECONDS - started)) s"

log "start the stack"
stack_started=true
"${COMPOSE[@]}" up -d
# `up --wait` is Compose v2 only: wait for every health check here, with a deadline.
deadline=$((SECONDS + 240))
while :; do
    states="$(docker ps -a --filter "label=com.docker.compose.project=$project" \
        --format '{{.Names}} {{.State}} {{.Status}}')"
    # Every container running, and none (with a health check) anything but healthy.
    if [[ -n "$states" ]] && ! grep -v -q ' running ' <<<"$states" &&
        ! grep -q -E 'health: starting|unhealthy' <<<"$states"; then
        break
    fi
    if ((SECONDS > deadline)); then
        printf '%s\n' "$states"
        fail "the stack was not healthy within 240 s"
    fi
    sleep 2
done
printf '%s\n' "$states" | sed 's/^/   /'
log "stack healthy in $((SECONDS - started)) s since the build started"
until curl -fs -o /dev/null --noproxy '*' "http://127.0.0.1:$port/healthz"; do
    ((SECONDS < deadline)) || fail "the load balancer does not answer on 127.0.0.1:$port"
    sleep 1
done

log "checks through the load balancer at ws://127.0.0.1:$port/"
SMOKE_URL="ws://127.0.0.1:$port/" SMOKE_HTTP="http://127.0.0.1:$port" SMOKE_ASSETS="$assets" \
    SMOKE_PROJECT="$project" SMOKE_COMPOSE="$(python3 -c 'import json, sys; print(json.dumps(sys.argv[1:]))' "${COMPOSE[@]}")" \
    "$workdir/venv/bin/python" scripts/compose_smoke.py
