#!/usr/bin/env bash
# The project's test command (README: "Testing"). Runs every crate's unit, property
# and black-box tests.
#
# What it reads from the environment:
#   RATECAST_TEST_MONGODB_URI  a MongoDB replica set for the MongoDB integration
#                              tests; without it they pass without checking anything
#                              (scripts/test-mongo.sh sets one up with Docker).
#   RATECAST_TEST_SERVER_LOG   1: tests that run a server binary copy its log to
#                              their stderr.
#   any cargo/rustc variable, and extra `cargo test` arguments ("$@").
#
# Nothing else: every setting the services read (MONGO_CONNECTION_URI, ASSET_LIST,
# RATE_LIMIT, ...) is set below to a value that would break a test that read it,
# so a test that depends on what a developer exported fails here instead of
# passing on the wrong store or limits. Tests build their configurations blind to
# the environment (ratecast_process::parse_ignoring_env) and start binaries with an
# empty one (ratecast_testkit::binary, ::process).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${RATECAST_TEST_MONGODB_URI:-}" ]; then
  echo "note: RATECAST_TEST_MONGODB_URI is not set: MongoDB integration tests will be SKIPPED"
  echo "      (no MongoDB replica set here; run scripts/test-mongo.sh on a machine with Docker)"
fi
poison=(
  MONGO_CONNECTION_URI='mongodb://poisoned.invalid:1/?replicaSet=poison'
  MONGO_INITDB_DATABASE=poisoned
  MONGO_RETENTION=1s
  EMCONT_EXCHANGE_RATES_URL='http://poisoned.invalid:1/rates'
  ASSET_LIST=POISON
  SERVER_HOST=203.0.113.1
  SERVER_PORT=1
  PING_INTERVAL=1s
  IDLE_TIMEOUT=1s
  MAX_MESSAGE_BYTES=64
  RATE_LIMIT=1
  RATE_BURST=1
  SEND_TIMEOUT=1s
  MAX_QUEUED_BYTES=65536
  MAX_HISTORY_QUERIES=1
  MAX_CONNECTIONS=1
  ALLOWED_ORIGINS='https://poisoned.invalid'
  SHUTDOWN_TIMEOUT=1s
  SHUTDOWN_DRAIN=1s
  API_WORKERS=1
  MEMORY_RETENTION=1s
  FETCHER_BUFFER_SECONDS=1
  FETCHER_HTTP_HOST=203.0.113.1
  FETCHER_HTTP_PORT=1
  LOG_FORMAT=json
  RATECAST_URL='ws://poisoned.invalid:1/'
)
env "${poison[@]}" cargo test --workspace --locked "$@"
