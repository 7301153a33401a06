#!/usr/bin/env bash
# The project's test command (README: "Testing"). Runs every crate's unit, property
# and black-box tests. MongoDB integration tests run only when
# RATECAST_TEST_MONGODB_URI names a replica set; otherwise they print why they skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --locked "$@"
