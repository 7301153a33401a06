#!/usr/bin/env bash
# Runs the MongoDB integration tests (the store conformance suite and the Mongo
# end-to-end tests) against the compose MongoDB replica set. Needs Docker.
#
#   scripts/test-mongo.sh            # starts mongo, runs the tests, leaves mongo running
#   scripts/test-mongo.sh --down     # ... and removes the container and its volume after
set -euo pipefail
cd "$(dirname "$0")/.."

down=false
[ "${1:-}" = "--down" ] && down=true
[ -f compose/envs/common.env ] || cp compose/envs/sample.common.env compose/envs/common.env

compose=(docker compose -f docker-compose.yaml -f compose/test-mongo.override.yaml)
"${compose[@]}" up -d --wait mongo
if $down; then
  trap '"${compose[@]}" down -v' EXIT
fi

# The replica-set member is named mongo:27017, which the host cannot resolve:
# connect directly to the published port instead.
export RATECAST_TEST_MONGODB_URI="mongodb://127.0.0.1:27017/?directConnection=true"
cargo test --locked -p ratecast-mongo -p ratecast -- --test-threads 4
