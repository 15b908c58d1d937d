#!/usr/bin/env bash
# Per-layer KV sensitivity: for every layer l and width W, the KL (vs the FP16 cache) when only
# layer l is stored at W (policy layers:fp16xl,W,fp16x(L-1-l)), on the first 4 windows of the
# ARC train text (calib_text.py). One result file per (W, l) in OUT_DIR; allocate.py turns them
# into a layers: policy per budget. About 10 s per run on 1 thread (90 runs for 3 widths).
# Usage: scripts/layers/sensitivity.sh MODEL OUT_DIR [WIDTHS...]   (default: int2 int4/int2 int4)
# KVBITS_SENSITIVITY_FLAGS: more eval flags for every run, e.g. "--kv-sinks 1 --kv-sinklike int4"
# to measure each layer as the allocation will run it (recorded in OUT_DIR/flags.txt).
set -euo pipefail
model="$1"; out="$2"; shift 2
widths=("$@"); [ ${#widths[@]} -gt 0 ] || widths=(int2 int4/int2 int4)
here="$(cd "$(dirname "$0")/../.." && pwd)"
kvbits="$here/build/kvbits"
# awk reads to the end: exiting at the match would SIGPIPE inspect and fail the pipeline (pipefail).
layers=$("$kvbits" inspect "$model" | awk '/block_count/ && !n {n = $NF} END {print n}')
[[ "$layers" =~ ^[0-9]+$ ]] || { echo "error: cannot read llama.block_count from $model" >&2; exit 1; }
mkdir -p "$out"
read -r -a extra <<< "${KVBITS_SENSITIVITY_FLAGS:-}"
if [ -f "$out/flags.txt" ] && [ "$(cat "$out/flags.txt")" != "${KVBITS_SENSITIVITY_FLAGS:-}" ]; then
  echo "error: $out holds runs with other flags ($(cat "$out/flags.txt"))" >&2; exit 1
fi
printf '%s\n' "${KVBITS_SENSITIVITY_FLAGS:-}" > "$out/flags.txt"
text="$out/calib.txt"
[ -f "$text" ] || python3 "$here/scripts/layers/calib_text.py" "${KVBITS_DATA:-$here/../shared/data}" "$text"
for w in "${widths[@]}"; do
  for ((l = 0; l < layers; ++l)); do
    spec="layers:"
    ((l > 0)) && spec+="fp16x$l,"
    spec+="$w"
    ((layers - 1 - l > 0)) && spec+=",fp16x$((layers - 1 - l))"
    f="$out/$(echo "$w" | tr / _)-l$l.json"
    [ -f "$f" ] && continue
    "$kvbits" eval -m "$model" -t 1 --jobs 1 --task "text:$text" --kv "$spec" ${extra[@]+"${extra[@]}"} --kl --limit 4 --decode-tokens 0 -o "$f" 2>/dev/null
  done
done
