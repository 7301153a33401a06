#!/usr/bin/env bash
# The project's test command (README: "Testing"). Runs every crate's unit, property
# and black-box tests. MongoDB integration tests run only when
# RATECAST_TEST_MONGODB_URI names a replica set (scripts/test-mongo.sh sets one up
# with Docker); otherwise they pass without checking anything, as said below.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${RATECAST_TEST_MONGODB_URI:-}" ]; then
  echo "note: RATECAST_TEST_MONGODB_URI is not set: MongoDB integration tests will be SKIPPED"
  echo "      (no MongoDB replica set here; run scripts/test-mongo.sh on a machine with Docker)"
fi
cargo test --workspace --locked "$@"
