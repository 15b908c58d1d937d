#!/usr/bin/env bash
# The learned controller on the command line (issue 5): bad controller files, budgets and
# calibration data give one-line errors and a non-zero exit; a controller trained on a tiny
# synthetic model runs, meets its budget and refuses another model.
# Uses only a tiny synthetic model written by `kvbits synth` (no real model needed).
#
# usage: bash tests/cli/controller_bad_input.sh KVBITS_BINARY SOURCE_DIR   (VERBOSE=1: show errors)
set -u

KVBITS=${1:?usage: controller_bad_input.sh KVBITS_BINARY SOURCE_DIR}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/kvbits-ctl-cli-XXXXXX")
trap 'rm -rf "$TMP"' EXIT

source "$(dirname "${BASH_SOURCE[0]}")/lib/harness.sh"
run_cmd() { run_limited 120 "$@"; }
# expect_error NAME NEEDLE ARGS...: non-zero, no crash, one stderr line "error: ..." containing NEEDLE.
expect_error() {
  local name=$1 needle=$2
  shift 2
  run_cmd "$@"
  check_one_error "$name" && expect_stderr_has "$name" "$needle"
}
expect_ok() {
  local name=$1
  shift
  run_cmd "$@"
  if [[ $rc -ne 0 ]]; then
    fail "$name: exit $rc, expected 0"
    return 1
  fi
  pass
  return 0
}

# --- fixtures ----------------------------------------------------------------------------------
TINY="$TMP/tiny.gguf"
if ! expect_ok "synth tiny" synth --shape tiny -o "$TINY"; then
  echo "cli: cannot write the tiny model; giving up" >&2
  exit 1
fi
for i in $(seq 1 80); do echo "line $i: a fox $((i * 7))"; done >"$TMP/calib_train.txt"
CTL="$TMP/ctl.json"
if expect_ok "train a tiny controller" train -m "$TINY" --calib "$TMP/calib_train.txt" --tokens 150 --seq-tokens 32 \
  --horizon 4 --epochs 3 --hidden 8,8 -o "$CTL"; then
  if grep -q 'held-out label accuracy' "$TMP/out" && [[ -s "$CTL" ]]; then pass; else fail "train: no report or no file"; fi
fi
# Labels measured in a quantized context (--probe-context): the label file says which.
if expect_ok "train in an int2 context" train -m "$TINY" --calib "$TMP/calib_train.txt" --tokens 60 --seq-tokens 32 \
  --horizon 4 --epochs 1 --hidden 8 --probe-context int2 --probe-sinks 1 --save-labels "$TMP/ctx_labels.json" \
  -o "$TMP/ctx.json"; then
  if grep -Eq '"context": ?"int2"' "$TMP/ctx_labels.json" && grep -Eq '"context_sinks": ?1' "$TMP/ctx_labels.json"; then
    pass
  else
    fail "train --probe-context: the labels do not record their context"
  fi
fi
head -c 300 "$CTL" >"$TMP/truncated.json"
sed -E 's/"n_layers": ?[0-9]+/"n_layers":99/' "$CTL" >"$TMP/other_model.json"
sed -E 's/"format_version": ?1/"format_version": 7/' "$CTL" >"$TMP/version.json"
sed -E 's/"features": ?\[\{/"features":[{"name":"entropy","transform":"none","mean":0,"std":1},{/' "$CTL" >"$TMP/features.json"
sed -E 's/"format": ?"kvbits-controller"/"format": "something"/' "$CTL" >"$TMP/format.json"
: >"$TMP/empty.txt"
echo '{"format": "kvbits-layer-sensitivity", "kl": [' >"$TMP/layers_bad.json"
# A layer sensitivity file for the tiny model's depth (and one for another depth): int2 hurts
# every third layer most.
tiny_layers=$("$KVBITS" inspect "$TINY" | awk '/block_count/ && !n {n = $NF} END {print n}')
write_layers() {  # write_layers N FILE
  awk -v n="$1" 'BEGIN {
    printf "{\"format\":\"kvbits-layer-sensitivity\",\"format_version\":1,\"model\":{\"name\":\"tiny\",\"n_layers\":%d},", n
    printf "\"classes\":[\"int2\",\"int4/int2\",\"int2/int4\",\"int4\"],\"kl\":["
    for (c = 0; c < 4; ++c) {
      printf "%s[", c ? "," : ""
      for (l = 0; l < n; ++l) printf "%s%g", l ? "," : "", 0.003 + (3 - c) * (l % 3 == 0 ? 0.01 : 0.002)
      printf "]"
    }
    printf "]}\n" }' >"$2"
}
write_layers "$tiny_layers" "$TMP/layers.json"
write_layers $((tiny_layers + 1)) "$TMP/layers_other.json"
RUN=(run -m "$TINY" -c 256 -p "hello world" --temp 0 --ignore-eos)

# --- bad input ---------------------------------------------------------------------------------
expect_error "missing controller" "not found" "${RUN[@]}" --kv "learned:$TMP/nope.json"
expect_error "truncated controller" "truncated" "${RUN[@]}" --kv "learned:$TMP/truncated.json"
expect_error "controller for another model" "trained for" "${RUN[@]}" --kv "learned:$TMP/other_model.json"
expect_error "unknown controller version" "version 7" "${RUN[@]}" --kv "learned:$TMP/version.json"
expect_error "wrong feature count" "features" "${RUN[@]}" --kv "learned:$TMP/features.json"
expect_error "not a controller" "not a kvbits controller" "${RUN[@]}" --kv "learned:$TMP/format.json"
expect_error "learned without a file" "controller file" "${RUN[@]}" --kv "learned"
expect_error "--kv-bits 1.5" "outside [2, 16]" "${RUN[@]}" --kv "learned:$CTL" --kv-bits 1.5
expect_error "--kv-bits 17" "outside [2, 16]" "${RUN[@]}" --kv "learned:$CTL" --kv-bits 17
expect_error "@1.5" "outside [2, 16]" "${RUN[@]}" --kv "learned:$CTL@1.5"
expect_error "@abc" "must be a number" "${RUN[@]}" --kv "learned:$CTL@abc"
expect_error "budget below the cheapest class" "cheapest class" "${RUN[@]}" --kv "learned:$CTL" --kv-bits 2.05
expect_error "--kv-bits with a static policy" "fixed widths" "${RUN[@]}" --kv int4 --kv-bits 3
expect_error "oracle without a budget" "needs a budget" "${RUN[@]}" --kv oracle
expect_error "oracle --kv-bits 16.5" "outside [2, 16]" "${RUN[@]}" --kv oracle --kv-bits 16.5
expect_error "train: empty calibration data" "no usable calibration text" train -m "$TMP/no-model.gguf" --calib "$TMP/empty.txt" -o "$TMP/x.json"
expect_error "train: missing calibration file" "not found" train -m "$TINY" --calib "$TMP/nope.txt" -o "$TMP/x.json"
cp "$TMP/calib_train.txt" "$TMP/arc_easy_test.jsonl"
expect_error "train: a test split" "evaluation split" train -m "$TINY" --calib "$TMP/arc_easy_test.jsonl" -o "$TMP/x.json"
expect_error "train: no calibration" "--calib" train -m "$TINY" -o "$TMP/x.json"
expect_error "train: unknown feature" "unknown feature" train -m "$TINY" --calib "$TMP/calib_train.txt" --features rarity,magic -o "$TMP/x.json"
expect_error "train: bad class" "--classes" train -m "$TINY" --calib "$TMP/calib_train.txt" --classes int2,int3 -o "$TMP/x.json"
expect_error "train: a class twice" "listed twice" train -m "$TINY" --calib "$TMP/calib_train.txt" --classes int2,int4,int2 -o "$TMP/x.json"
expect_error "train: bad probe context" "--probe-context" train -m "$TINY" --calib "$TMP/calib_train.txt" --probe-context int3 -o "$TMP/x.json"
expect_error "train: negative probe sinks" "probe-sinks" train -m "$TINY" --calib "$TMP/calib_train.txt" --probe-sinks -1 -o "$TMP/x.json"
expect_error "train: one class" "2 to 16" train -m "$TINY" --calib "$TMP/calib_train.txt" --classes int4 -o "$TMP/x.json"
expect_error "train: unwritable output" "cannot" train -m "$TINY" --calib "$TMP/calib_train.txt" -o "$TMP/empty.txt/x.json"
[[ -e "$TMP/x.json" ]] && fail "a failed train left a file behind" || pass
expect_error "sweep: budget 1.5" "outside [2, 16]" sweep -m "$TINY" --tasks wikitext2 --policies int4 --budgets 1.5 -o "$TMP/sw"
expect_error "sweep: unknown policy" "not a KV width" sweep -m "$TINY" --tasks wikitext2 --policies int3 -o "$TMP/sw"
expect_error "sweep: budget in the policy" "--budgets" sweep -m "$TINY" --tasks wikitext2 --policies "learned:$CTL@3" -o "$TMP/sw"
expect_error "--kv-layers with a static policy" "not a learned policy" "${RUN[@]}" --kv int4 --kv-layers "$TMP/layers.json"
expect_error "--kv-layers missing file" "nope_layers.json" "${RUN[@]}" --kv "learned:$CTL@5" --kv-layers "$TMP/nope_layers.json"
expect_error "--kv-layers not JSON" "layers_bad.json" "${RUN[@]}" --kv "learned:$CTL@5" --kv-layers "$TMP/layers_bad.json"
expect_error "--kv-layers for another depth" "measured on a model with" "${RUN[@]}" --kv "learned:$CTL@5" --kv-layers "$TMP/layers_other.json"

# --- positive checks ---------------------------------------------------------------------------
for bits in 5 7; do  # tiny: head_dim 16, int2 costs ~4.25 bits
  if expect_ok "run tiny learned @$bits" "${RUN[@]}" -n 150 --kv "learned:$CTL" --kv-bits "$bits"; then
    eff=$(grep -o '([0-9.]* effective bits)' "$TMP/err" | tr -d '(' | cut -d' ' -f1)
    if [[ -n "$eff" ]] && awk -v e="$eff" -v t="$bits" 'BEGIN { d = e - t; if (d < 0) d = -d; exit !(d <= 0.2) }'; then
      pass
    else
      fail "run tiny learned @$bits: effective bits '$eff' far from the target"
    fi
  fi
done
if expect_ok "run tiny learned @5 with --kv-layers" "${RUN[@]}" -n 150 --kv "learned:$CTL@5" --kv-layers "$TMP/layers.json"; then
  eff=$(grep -o '([0-9.]* effective bits)' "$TMP/err" | tr -d '(' | cut -d' ' -f1)
  if [[ -n "$eff" ]] && awk -v e="$eff" 'BEGIN { d = e - 5; if (d < 0) d = -d; exit !(d <= 0.2) }' &&
    grep -q 'learned:ctl+layers:layers@5' "$TMP/err"; then
    pass
  else
    fail "run tiny learned @5 with --kv-layers: effective bits '$eff' far from the target, or no spec in: $(cat "$TMP/err")"
  fi
fi
expect_ok "run tiny oracle" "${RUN[@]}" -n 8 --kv "oracle:h2@6"
# A budget the policy cannot hold (every row a sink: FP16) is reported on stderr; one it holds is not.
if expect_ok "bench: budget missed" bench -m "$TINY" -t 1 --kv "learned:$CTL@5" --kv-sinks 100000 --depth 32 \
  --n-gen 4 --runs 1 --prefill 0; then
  grep -q '^warning: bench depth 32: .* stored [0-9.]* effective bits against its budget of 5.00' "$TMP/err" && pass ||
    fail "bench: budget missed: no warning in: $(cat "$TMP/err")"
fi
if expect_ok "sweep: budget missed" sweep -m "$TINY" -t 1 --tasks "text:$TMP/calib_train.txt" --limit 1 \
  --policies "learned:$CTL" --budgets 5 --kv-sinks 100000 --decode-tokens 0 --no-report -o "$TMP/sweep_warn"; then
  grep -q '^warning: sweep .*: .* against its budget of 5.00' "$TMP/err" && pass ||
    fail "sweep: budget missed: no warning in: $(cat "$TMP/err")"
fi
if expect_ok "bench: budget held" bench -m "$TINY" -t 1 --kv "learned:$CTL@5" --depth 150 --n-gen 4 --runs 1 --prefill 0; then
  grep -q '^warning:' "$TMP/err" && fail "bench: budget held: unexpected warning: $(grep '^warning:' "$TMP/err")" || pass
fi

echo "cli: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
