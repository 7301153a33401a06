#!/usr/bin/env bash
# Base images for the compose stack on a machine that cannot pull them (a closed
# network, no registry mirror). For each official image the stack uses, it keeps one
# that is already present, else tries `docker pull`, and ONLY when that fails builds
# a stand-in from Debian's packages under a clearly local name:
#
#   official               local stand-in (made only when the pull fails)
#   debian:bookworm-slim   ratecast-local/debian:bookworm           debootstrap --variant=minbase
#   rust:1.95-bookworm     ratecast-local/rust:<host rustc>-bookworm the machine's own toolchain
#   nginx:1.27-alpine      ratecast-local/nginx:sid                  Debian unstable's nginx
#   mongo:7.0              ratecast-local/mongo-standin:nx-27017-0.8.1
#                          NOT MongoDB: a wire-protocol stand-in (compose/standin/README.md)
#
#   scripts/local-images.sh            # then: set -a; . compose/local-images.env; set +a
#   scripts/local-images.sh --rebuild  # rebuild the local stand-ins that exist
#
# It writes compose/local-images.env (git-ignored): RUST_IMAGE, RUNTIME_IMAGE and
# NGINX_IMAGE name the image to use for each role (official or local), and
# RATECAST_COMPOSE_OVERRIDES lists the override files the stack then needs:
# compose/local-images.override.yaml when anything is local (build arguments, the load
# balancer's image, builds on the host network), compose/standin.override.yaml when
# mongo:7.0 could not be pulled. Where every pull works, the file names the official
# images and no override: scripts/compose-smoke.sh then runs the default stack.
#
# Needs root, docker, and for the stand-ins debootstrap (installed with apt-get when
# missing), the host's Rust toolchain (rustc on PATH) and network access to Debian's
# packages and PyPI. Locally made images get the host's CA bundle
# (/etc/ssl/certs/ca-certificates.crt), so that builds behind a TLS-intercepting proxy
# reach the package registries. Builds run with --network host.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/docker.sh
. scripts/lib/docker.sh

rebuild=false
[[ "${1:-}" == --rebuild ]] && rebuild=true

# The official images, declared once here; the defaults of Dockerfile.api,
# Dockerfile.fetcher and docker-compose.yaml are the same names.
OFFICIAL_RUST=rust:1.95-bookworm
OFFICIAL_RUNTIME=debian:bookworm-slim
OFFICIAL_NGINX=nginx:1.27-alpine
OFFICIAL_MONGO=mongo:7.0
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

log() { printf '== %s\n' "$*"; }
die() {
    printf 'local-images: %s\n' "$*" >&2
    exit 1
}

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

# pullable IMAGE: true when IMAGE is present or `docker pull` fetches it.
pullable() {
    have_image "$1" && return 0
    log "docker pull $1"
    docker pull -q "$1" >/dev/null 2>&1
}

workdir="$(mktemp -d)"
trap 'rm -rf "$workdir"' EXIT

# debian_base SUITE NAME: a minbase Debian SUITE imported as NAME, with the host's CA
# bundle (also as a local CA, so that installing ca-certificates keeps it) and apt
# told not to reject Release files past their Valid-Until (unstable's are short-lived,
# and a mirror snapshot outlives them).
debian_base() {
    local suite=$1 name=$2
    if have_image "$name" && ! $rebuild; then return 0; fi
    command -v debootstrap >/dev/null 2>&1 || {
        log "apt-get install debootstrap"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null
    }
    local root="$workdir/rootfs-$suite"
    log "debootstrap --variant=minbase $suite ($MIRROR) -> $name"
    debootstrap --variant=minbase "$suite" "$root" "$MIRROR" >"$workdir/debootstrap-$suite.log" 2>&1 ||
        { tail -n 30 "$workdir/debootstrap-$suite.log" >&2; die "debootstrap $suite failed"; }
    mkdir -p "$root/etc/ssl/certs" "$root/usr/local/share/ca-certificates"
    cp "$CA_BUNDLE" "$root/etc/ssl/certs/ca-certificates.crt"
    cp "$CA_BUNDLE" "$root/usr/local/share/ca-certificates/ratecast-host-bundle.crt"
    printf 'Acquire::Check-Valid-Until "false";\n' >"$root/etc/apt/apt.conf.d/99ratecast-local"
    # Like a slim image: no downloaded packages kept after an install, no package
    # caches, no translations, no documentation from later installs.
    cat >"$root/etc/apt/apt.conf.d/99ratecast-slim" <<'APT'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
Acquire::Languages "none";
APT
    mkdir -p "$root/etc/dpkg/dpkg.cfg.d"
    printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
        'path-exclude /usr/share/man/*' 'path-exclude /usr/share/info/*' \
        'path-exclude /usr/share/locale/*' >"$root/etc/dpkg/dpkg.cfg.d/99ratecast-slim"
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
        "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/*
    tar -C "$root" -c . | docker import \
        -c 'CMD ["/bin/bash"]' \
        -c 'ENV LANG=C.UTF-8' \
        -m "ratecast local stand-in: debootstrap --variant=minbase $suite" - "$name" >/dev/null
    rm -rf "$root"
}

# build NAME DOCKERFILE CONTEXT BASE: docker build on the host network.
build() {
    local name=$1 dockerfile=$2 context=$3 base=$4
    log "docker build $name"
    docker build --network host --build-arg "BASE_IMAGE=$base" -f "$dockerfile" -t "$name" "$context" \
        >"$workdir/build.log" 2>&1 ||
        { tail -n 40 "$workdir/build.log" >&2; die "docker build $name failed"; }
}

local_bookworm=ratecast-local/debian:bookworm
need_bookworm() { debian_base bookworm "$local_bookworm"; }

# --- runtime base
runtime="$OFFICIAL_RUNTIME"
if ! pullable "$OFFICIAL_RUNTIME"; then
    runtime="$local_bookworm"
    need_bookworm
fi

# --- Rust toolchain
rust="$OFFICIAL_RUST"
if ! pullable "$OFFICIAL_RUST"; then
    command -v rustc >/dev/null 2>&1 || die "cannot pull $OFFICIAL_RUST and no Rust toolchain on this machine"
    version="$(rustc --version | awk '{print $2}')"
    rust="ratecast-local/rust:${version}-bookworm"
    if ! have_image "$rust" || $rebuild; then
        need_bookworm
        sysroot="$(rustc --print sysroot)"
        ctx="$workdir/rust"
        mkdir -p "$ctx/toolchain"
        log "copying the host toolchain $version from $sysroot (without docs)"
        parts=()
        for part in bin lib libexec etc; do [[ -e "$sysroot/$part" ]] && parts+=("$part"); done
        tar -C "$sysroot" -c --exclude=lib/rustlib/src "${parts[@]}" | tar -C "$ctx/toolchain" -x
        build "$rust" compose/local/rust.Dockerfile "$ctx" "$local_bookworm"
        rm -rf "$ctx"
    fi
fi

# --- load balancer
nginx="$OFFICIAL_NGINX"
if ! pullable "$OFFICIAL_NGINX"; then
    nginx=ratecast-local/nginx:sid
    if ! have_image "$nginx" || $rebuild; then
        debian_base sid ratecast-local/debian:sid
        mkdir -p "$workdir/nginx"
        build "$nginx" compose/local/nginx.Dockerfile "$workdir/nginx" ratecast-local/debian:sid
    fi
fi

# --- database
overrides=()
[[ "$rust" != "$OFFICIAL_RUST" || "$runtime" != "$OFFICIAL_RUNTIME" || "$nginx" != "$OFFICIAL_NGINX" ]] &&
    overrides+=(compose/local-images.override.yaml)
if ! pullable "$OFFICIAL_MONGO"; then
    standin=ratecast-local/mongo-standin:nx-27017-0.8.1
    if ! have_image "$standin" || $rebuild; then
        need_bookworm
        build "$standin" compose/standin/Dockerfile compose/standin "$local_bookworm"
    fi
    overrides+=(compose/standin.override.yaml)
    log "NOTE: $OFFICIAL_MONGO cannot be pulled: the stack will run on $standin, which is NOT MongoDB"
fi

cat >compose/local-images.env <<EOF
# Written by scripts/local-images.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ). Images for each role of the
# compose stack on this machine; local ones are stand-ins made from Debian's packages.
RUST_IMAGE=$rust
RUNTIME_IMAGE=$runtime
NGINX_IMAGE=$nginx
RATECAST_COMPOSE_OVERRIDES="${overrides[*]}"
EOF
log "compose/local-images.env:"
sed -n '/^[A-Z]/p' compose/local-images.env
