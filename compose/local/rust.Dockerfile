# LOCAL STAND-IN for the official rust:*-bookworm image, made by scripts/local-images.sh
# only where that image cannot be pulled. It carries the build machine's own Rust
# toolchain (copied into the build context as toolchain/: bin, lib, libexec, etc of
# `rustc --print sysroot`, without docs) on a Debian base made by debootstrap, plus
# what the workspace's build scripts need (a C compiler and make for jemalloc).
# Paths and variables follow the official image: CARGO_HOME=/usr/local/cargo, tools
# on PATH, so Dockerfile.api and Dockerfile.fetcher run unchanged on it.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates gcc libc6-dev make pkg-config \
    && rm -rf /var/lib/apt/lists/*
COPY toolchain/ /usr/local/rust/
ENV CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUN mkdir -p /usr/local/cargo/bin && cargo --version && rustc --version
