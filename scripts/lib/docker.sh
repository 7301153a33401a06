# Docker plumbing shared by scripts/local-images.sh, scripts/compose-smoke.sh and .ci/run
# (sourced, not run). It never touches a daemon or a package that is already there.
#
#   docker_install      installs Debian's docker.io when docker or dockerd is missing
#                       (root only), and docker-compose when no Compose exists at all.
#   docker_daemon       starts dockerd in the background when none answers (root, no
#                       systemd): log in $DOCKERD_LOG (default /tmp/dockerd.log), flags in
#                       $RATECAST_DOCKERD_ARGS (default --iptables=false: machines without
#                       an iptables the daemon may program; published ports still work
#                       through docker-proxy, containers just get no outbound NAT). Waits
#                       for `docker info` with a deadline.
#   compose_cmd         sets the array COMPOSE to `docker compose` (v2) or
#                       `docker-compose` (v1), whichever exists, v2 first.

docker_log() { printf '== %s\n' "$*"; }
docker_die() {
    printf 'docker: %s\n' "$*" >&2
    return 1
}

docker_install() {
    local want=()
    command -v docker >/dev/null 2>&1 || want+=(docker.io)
    # A docker CLI alone (no engine) is not enough to run anything.
    if ! command -v dockerd >/dev/null 2>&1 && ! docker info >/dev/null 2>&1; then
        want+=(docker.io)
    fi
    if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null 2>&1; then
        want+=(docker-compose)
    fi
    ((${#want[@]} == 0)) && return 0
    [[ "$(id -u)" == 0 ]] || docker_die "missing ${want[*]}: install them (apt-get install ${want[*]})" || return 1
    docker_log "apt-get install ${want[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${want[@]}"
}

docker_daemon() {
    docker info >/dev/null 2>&1 && return 0
    command -v dockerd >/dev/null 2>&1 || docker_die "no docker daemon answers and dockerd is not installed" || return 1
    [[ "$(id -u)" == 0 ]] || docker_die "no docker daemon answers; start one (dockerd needs root)" || return 1
    local log="${DOCKERD_LOG:-/tmp/dockerd.log}"
    local flags="${RATECAST_DOCKERD_ARGS-"--iptables=false"}"
    docker_log "starting dockerd $flags (log: $log)"
    # setsid: the daemon outlives this script and is not in its process group. Word
    # splitting of the flags is intended.
    # shellcheck disable=SC2086
    setsid dockerd $flags >"$log" 2>&1 </dev/null &
    local deadline=$((SECONDS + 60))
    until docker info >/dev/null 2>&1; do
        if ((SECONDS > deadline)); then
            tail -n 20 "$log" >&2
            docker_die "dockerd did not answer within 60 s (log: $log)"
            return 1
        fi
        sleep 1
    done
}

compose_cmd() {
    if docker compose version >/dev/null 2>&1; then
        COMPOSE=(docker compose)
    elif command -v docker-compose >/dev/null 2>&1; then
        COMPOSE=(docker-compose)
    else
        docker_die "neither 'docker compose' (v2) nor 'docker-compose' (v1) is installed"
        return 1
    fi
}
