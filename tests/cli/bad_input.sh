#!/usr/bin/env bash
# CLI behaviour on bad input: each case must exit non-zero with exactly one line on stderr that
# starts with "error:", never crash (exit >= 128) or hang (60 s). Plus a few positive checks.
# Uses only a tiny synthetic model written by `kvbits synth` (no real model needed).
#
# usage: bash tests/cli/bad_input.sh KVBITS_BINARY SOURCE_DIR   (VERBOSE=1: show each error line)
set -u

KVBITS=${1:?usage: bad_input.sh KVBITS_BINARY SOURCE_DIR}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/kvbits-cli-XXXXXX")
trap 'rm -rf "$TMP"' EXIT

source "$(dirname "${BASH_SOURCE[0]}")/lib/harness.sh"

# run_cmd ARGS...: runs kvbits with a 60 s limit.
run_cmd() { run_limited 60 "$@"; }

# expect_ok NAME ARGS...: exit 0.
expect_ok() {
  local name=$1
  shift
  run_cmd "$@"
  if [[ $rc -ne 0 ]]; then
    fail "$name: exit $rc, expected 0"
    return 1
  fi
  return 0
}

# --- fixtures ----------------------------------------------------------------------------------
TINY="$TMP/tiny.gguf"
if expect_ok "synth tiny" synth --shape tiny --type q4_1 -o "$TINY"; then
  if grep -q "tiny.gguf" "$TMP/out" && [[ -s "$TINY" ]]; then pass; else fail "synth tiny: no summary or no file"; fi
fi
if [[ ! -s "$TINY" ]]; then
  echo "cli: cannot write the tiny model; giving up" >&2
  echo "cli: $passed passed, $((failed + 1)) failed"
  exit 1
fi
printf 'NOTGGUF-this-is-not-a-model-file' >"$TMP/badmagic.gguf"
head -c 4000 "$TINY" >"$TMP/truncated.gguf"   # inside the metadata
size=$(wc -c <"$TINY")
head -c $((size - 100)) "$TINY" >"$TMP/truncated_data.gguf"  # tensor data cut short
mkdir -p "$TMP/dir.gguf"
LONG_PROMPT=$(printf 'the quick brown fox jumps over the lazy dog %.0s' $(seq 1 10))

# --- bad input ---------------------------------------------------------------------------------
expect_error "missing model file" run -m "$TMP/does-not-exist.gguf" -p hi -n 1
expect_error "directory as model" run -m "$TMP/dir.gguf" -p hi -n 1
expect_error "wrong magic" run -m "$TMP/badmagic.gguf" -p hi -n 1
expect_error "truncated model (metadata)" run -m "$TMP/truncated.gguf" -p hi -n 1
expect_error "truncated model (tensor data)" run -m "$TMP/truncated_data.gguf" -p hi -n 1
expect_error "inspect wrong magic" inspect "$TMP/badmagic.gguf"
expect_error "inspect truncated" inspect "$TMP/truncated.gguf"
if expect_ok "synth --arch" synth --shape tiny --arch gpt2 -o "$TMP/gpt2.gguf"; then
  pass
  expect_error "architecture not llama" run -m "$TMP/gpt2.gguf" -p hi -n 1
fi
expect_error "unknown subcommand" frobnicate
expect_error "no subcommand"
expect_error "unknown flag" run -m "$TINY" -c 256 -p hi --no-such-flag
expect_error "-n abc" run -m "$TINY" -c 256 -p hi -n abc
expect_error "-t 0" run -m "$TINY" -c 256 -p hi -t 0
expect_error "-c -5" run -m "$TINY" -p hi -c -5
expect_error "-c beyond the model's context" run -m "$TINY" -p hi -c 100000
expect_error "context overflow" run -m "$TINY" -c 8 -p "$LONG_PROMPT" -n 1
expect_error "invalid UTF-8 prompt" run -m "$TINY" -c 256 -p $'\xff\xfe' -n 1
expect_error "empty prompt" run -m "$TINY" -c 256 -p "" -n 1
expect_error "missing prompt file" run -m "$TINY" -c 256 -f "$TMP/no-such-prompt.txt" -n 1
expect_error "-p and -f together" run -m "$TINY" -c 256 -p hi -f "$TMP/no-such-prompt.txt"
expect_error "bench --depth 1,x" bench -m "$TINY" -c 256 --depth 1,x
expect_error "bench --depth -3" bench -m "$TINY" -c 256 --depth -3
expect_error "bench missing model" bench -m "$TMP/does-not-exist.gguf"
expect_error "synth unknown shape" synth --shape 7b -o "$TMP/x.gguf"
expect_error "synth unknown type" synth --type q5_k -o "$TMP/x.gguf"
expect_error "synth unwritable output" synth --shape tiny -o "$TMP/no-such-dir/x.gguf"
expect_error "synth tokenizer vocab mismatch" synth --shape 135m --tokenizer-from "$TINY" -o "$TMP/x.gguf"
[[ -e "$TMP/x.gguf" ]] && fail "failed synth left a file behind" || pass
# KV cache flags (run, chat, bench and eval share them)
expect_error "--kv unknown policy" run -m "$TINY" -c 256 -p hi -n 1 --kv int3
expect_error "--kv empty" run -m "$TINY" -c 256 -p hi -n 1 --kv ""
expect_error "--kv three widths" run -m "$TINY" -c 256 -p hi -n 1 --kv int4/int4/int4
expect_error "--kv bad width pair" run -m "$TINY" -c 256 -p hi -n 1 --kv int4/int5
expect_error "--kv bad kivi" run -m "$TINY" -c 256 -p hi -n 1 --kv kivi:8
expect_error "--kv-sinklike bad width" run -m "$TINY" -c 256 -p hi -n 1 --kv int2 --kv-sinklike int3
expect_error "--kv-key-weight bad value" run -m "$TINY" -c 256 -p hi -n 1 --kv int2 --kv-key-weight maybe
expect_error "--kv layers: wrong layer count" run -m "$TINY" -c 256 -p hi -n 1 --kv layers:int4x3
expect_error "--kv layers: bad repeat" run -m "$TINY" -c 256 -p hi -n 1 --kv layers:int4x0,int2
expect_error "--kv layers: bad width" run -m "$TINY" -c 256 -p hi -n 1 --kv layers:int4,int3
expect_error "--kv layers: empty entry" run -m "$TINY" -c 256 -p hi -n 1 --kv layers:int4,,int2
expect_error "--kv layers: empty" run -m "$TINY" -c 256 -p hi -n 1 --kv layers:
expect_error "--kv alloc: missing file" run -m "$TINY" -c 256 -p hi -n 1 --kv "alloc:$TMP/none.json@3"
expect_error "--kv alloc: no file" run -m "$TINY" -c 256 -p hi -n 1 --kv alloc:@3
expect_error "--kv alloc: no budget" run -m "$TINY" -c 256 -p hi -n 1 --kv "alloc:$TMP/none.json"
echo '{"format": "kvbits-layer-sensitivity", "format_version": 1, "model": {"n_layers": 30}, "classes": ["int2"], "kl": [[' > "$TMP/trunc.json"
expect_error "--kv alloc: truncated file" run -m "$TINY" -c 256 -p hi -n 1 --kv "alloc:$TMP/trunc.json@3"
expect_error "--kv-residual -1" run -m "$TINY" -c 256 -p hi -n 1 --kv int4 --kv-residual -1
expect_error "--kv-residual abc" run -m "$TINY" -c 256 -p hi -n 1 --kv-residual abc
expect_error "--kv-group 8" run -m "$TINY" -c 256 -p hi -n 1 --kv int4 --kv-group 8
expect_error "--kv-rotate bad" run -m "$TINY" -c 256 -p hi -n 1 --kv-rotate x
expect_error "--kv-mb -1" run -m "$TINY" -c 256 -p hi -n 1 --kv-mb -1
expect_error "--kv-mb too small for the context" run -m "$TINY" -c 512 -p hi -n 1 --kv int4 --kv-mb 0.01
expect_error "--kv-page not a multiple of 16" run -m "$TINY" -c 256 -p hi -n 1 --kv int4 --kv-page 40
expect_error "--kv-page out of range" run -m "$TINY" -c 256 -p hi -n 1 --kv int4 --kv-page 8
expect_error "bench --kv unknown" bench -m "$TINY" -c 256 --depth 4 --kv nope
expect_error "bench --baseline unknown" bench -m "$TINY" -c 256 --depth 4 --kv int4 --baseline nope

# --- positive checks ---------------------------------------------------------------------------
if expect_ok "inspect tiny" inspect "$TINY"; then
  if grep -q '^tensors: ' "$TMP/out" && grep -q 'blk.0.attn_q.weight' "$TMP/out" && grep -q 'token_embd.weight' "$TMP/out"; then
    pass
  else
    fail "inspect tiny: no tensor table"
  fi
fi
if expect_ok "run tiny" run -m "$TINY" -c 256 -p "hello world" -n 4 --temp 0 --ignore-eos; then
  if grep -q '^kvbits: prompt .* tokens.*generated 4 tokens' "$TMP/err"; then pass; else fail "run tiny: no summary line"; fi
fi
for kv in int8 int4 int2 int4/int2 fp16/int4 kivi:2 rule; do
  if expect_ok "run tiny --kv $kv" run -m "$TINY" -c 256 -p "hello world" -n 4 --temp 0 --ignore-eos --kv "$kv"; then
    if grep -q 'KV .*effective bits' "$TMP/err"; then pass; else fail "run tiny --kv $kv: no KV summary"; fi
  fi
done
# bench: per depth, the step time and the attention timed inside the steps (0 < attention < step).
if expect_ok "bench tiny" bench -m "$TINY" -c 256 --depth 0,64 --n-gen 4 --runs 1 --kv int4; then
  # JSON keys come sorted: attention_step_ms, then ms_per_token, then x_roofline closes an entry.
  if awk -F': ' '/"attention_step_ms"/ { a = $2 + 0 } /"ms_per_token"/ { step = $2 + 0 }
                 /"x_roofline"/ { n++; if (!(a > 0 && a < step)) bad = 1 } END { exit !(n == 2 && !bad) }' "$TMP/out"; then
    pass
  else
    fail "bench tiny: attention_step_ms missing or not within (0, ms_per_token)"
  fi
fi
# bench: the share of the committed rows at each class, in the JSON (one class: all of them) and,
# for a mixed cache, on stderr; run prints it in its KV summary.
if expect_ok "bench tiny int4 classes" bench -m "$TINY" -c 256 --depth 64 --n-gen 4 --runs 1 --kv int4; then
  if grep -q '"k4/v4": 1.0' "$TMP/out" && ! grep -q ': rows ' "$TMP/err"; then pass; else fail "bench tiny int4: kv_classes not all k4/v4"; fi
fi
if expect_ok "bench tiny rule classes" bench -m "$TINY" -c 256 --depth 64 --n-gen 4 --runs 1 --kv rule; then
  if grep -q '^bench: rule depth 64: rows k[0-9]*/v[0-9]* [0-9.]*% k[0-9]*/v[0-9]* [0-9.]*%' "$TMP/err" &&
     awk '/"kv_classes"/ { on = 1; next } on && /}/ { on = 0 } on { sum += $2 + 0; n++ } END { exit !(n >= 2 && sum > 0.999 && sum < 1.001) }' "$TMP/out"; then
    pass
  else
    fail "bench tiny rule: no class mix on stderr, or kv_classes shares do not sum to 1"
  fi
fi
if expect_ok "run tiny rule classes" run -m "$TINY" -c 256 -p "hello world" -n 4 --temp 0 --ignore-eos --kv rule; then
  if grep -q 'allocated; rows k[0-9]*/v[0-9]* [0-9.]*%' "$TMP/err"; then pass; else fail "run tiny rule: no class mix in the KV summary"; fi
fi
# bench --baseline: both policies timed in alternation, and their ratio (> 0) per depth: of the
# runs' means, and the median over the 2 runs x 4 step pairs.
if expect_ok "bench tiny --baseline" bench -m "$TINY" -c 256 --depth 0,64 --n-gen 4 --runs 2 --kv int2 --baseline fp16; then
  if [ "$(grep -c '"ratio_to_baseline": [0-9]*\.[0-9]*[1-9]' "$TMP/out")" = 2 ] && grep -q '"spec": "fp16"' "$TMP/out" &&
     [ "$(grep -c '"ratio_paired_median": [0-9]*\.[0-9]*[1-9]' "$TMP/out")" = 2 ] &&
     grep -q '^bench: fp16 depth 64, steps alternated: .* int2 / fp16 = .*; median of the 8 step pairs [0-9.]*)$' "$TMP/err"; then
    pass
  else
    fail "bench tiny --baseline: no ratio_to_baseline or ratio_paired_median per depth"
  fi
fi
# bench --text FILE: the cache filled with the file's tokens instead of random ids (named in the
# JSON); a file that cannot be read, is not UTF-8, or holds fewer tokens than a depth needs is refused.
printf '%s' "$LONG_PROMPT $LONG_PROMPT" >"$TMP/text.txt"
printf 'abc \xff\xfe def' >"$TMP/bad_utf8.txt"
if expect_ok "bench tiny --text" bench -m "$TINY" -c 256 --depth 0,64 --n-gen 4 --runs 1 --prefill 16 --kv int4 --text "$TMP/text.txt"; then
  if grep -q "\"source\": \"$TMP/text.txt\"" "$TMP/out" && grep -q '"tokens": [0-9]' "$TMP/out"; then
    pass
  else
    fail "bench tiny --text: the fill source is not named in the JSON"
  fi
fi
expect_error "bench --text missing" bench -m "$TINY" -c 256 --depth 4 --text "$TMP/no-such-text.txt"
expect_error "bench --text directory" bench -m "$TINY" -c 256 --depth 4 --text "$TMP/dir.gguf"
expect_error "bench --text invalid UTF-8" bench -m "$TINY" -c 256 --depth 4 --text "$TMP/bad_utf8.txt"
printf 'hello world, a short text' >"$TMP/short.txt"
expect_error "bench --text shorter than the depth" bench -m "$TINY" -c 256 --depth 64 --prefill 0 --text "$TMP/short.txt"
expect_error "bench --text shorter than --prefill" bench -m "$TINY" -c 256 --depth 0 --prefill 200 --text "$TMP/short.txt"
expect_error "run -f directory" run -m "$TINY" -c 256 -f "$TMP/dir.gguf" -n 1
if expect_ok "run tiny --kv-page 256" run -m "$TINY" -c 256 -p "hello world" -n 4 --temp 0 --ignore-eos --kv int4 --kv-page 256; then
  pass
fi
if expect_ok "run tiny prompt file" run -m "$TINY" -c 256 -f "$TMP/badmagic.gguf" -n 2 --temp 0; then pass; fi
if expect_ok "--version" --version; then
  if grep -q '^kvbits ' "$TMP/out"; then pass; else fail "--version: unexpected output"; fi
fi

echo "cli: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
