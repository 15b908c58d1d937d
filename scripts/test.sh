#!/usr/bin/env bash
# Builds kvbits and runs the whole test suite: unit tests, CLI bad-input tests, and the tests
# against the real model and the committed golden fixtures (the model is fetched if missing).
# Select a subset with ctest labels, e.g. `scripts/test.sh -L unit` (labels: unit, cli, model).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"
bash scripts/build.sh
export KVBITS_MODEL="${KVBITS_MODEL:-$(bash scripts/fetch-model.sh)}"
# One test at a time: the engine's tests use 2 threads each on a 2-core machine.
ctest --test-dir build --output-on-failure --timeout 900 "$@"
