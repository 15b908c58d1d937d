#!/usr/bin/env bash
# `kvbits eval` on bad input: each case must exit non-zero with exactly one line on stderr that
# starts with "error:", never crash (exit >= 128) or hang. Every such mistake must surface before
# the model is loaded (src/cli/cmd_eval.cc): the bad-input cases name a model that is a FIFO with
# no writer, so loading it would block until the 10 s limit (reported as "timed out"), and the
# error line must not mention the model. Plus positive checks on a tiny model written by
# `kvbits synth`: --skip-bad, a mc:FILE run whose result file `kvbits report` accepts, shards.
#
# usage: bash tests/cli/eval_bad_input.sh KVBITS_BINARY SOURCE_DIR   (VERBOSE=1: show each error line)
set -u

KVBITS=${1:?usage: eval_bad_input.sh KVBITS_BINARY SOURCE_DIR}
[[ $KVBITS == */* ]] && KVBITS=$(realpath "$KVBITS")
TMP=$(mktemp -d "${TMPDIR:-/tmp}/kvbits-eval-cli-XXXXXX")
trap 'rm -rf "$TMP"' EXIT
source "$(dirname "${BASH_SOURCE[0]}")/lib/harness.sh"
cd "$TMP" || exit 1  # so that the default data directory ../shared/data is not the real one

# run_cmd LIMIT ARGS...: runs kvbits with a LIMIT-second limit.
run_cmd() { run_limited "$@"; }

# expect_early_error NAME [PATTERN] -- EVAL_ARGS...: `kvbits eval -m FIFO EVAL_ARGS` fails at once
# with one error line (matching PATTERN, grep -E, if given) that does not mention the model.
expect_early_error() {
  local name=$1 pattern=""
  shift
  if [[ $1 != "--" ]]; then
    pattern=$1
    shift
  fi
  shift  # --
  run_cmd 10 eval -m "$FIFO" "$@"
  check_one_error "$name" "did it load the model first?" || return
  if grep -q 'fifo.gguf' "$TMP/err"; then fail "$name: the error mentions the model (loaded too early?)"; else pass; fi
  if [[ -n $pattern ]]; then
    if grep -qE -- "$pattern" "$TMP/err"; then pass; else fail "$name: error lacks /$pattern/"; fi
  fi
}

# expect_ok NAME ARGS...: exit 0 (60 s limit).
expect_ok() {
  local name=$1
  shift
  run_cmd 60 "$@"
  if [[ $rc -ne 0 ]]; then
    fail "$name: exit $rc, expected 0"
    return 1
  fi
  return 0
}

# --- fixtures ----------------------------------------------------------------------------------
TINY="$TMP/tiny.gguf"
if ! expect_ok "synth tiny" synth --shape tiny --type q4_1 -o "$TINY" || [[ ! -s "$TINY" ]]; then
  echo "eval cli: cannot write the tiny model; giving up" >&2
  echo "eval cli: $passed passed, $((failed + 1)) failed"
  exit 1
fi
FIFO="$TMP/fifo.gguf"
mkfifo "$FIFO"

GOOD="$TMP/good.jsonl"
cat >"$GOOD" <<'EOF'
{"query": "The sky is", "choices": ["blue", "green"], "gold": 0}
{"query": "Two plus two is", "choices": ["four", "five", "twenty-two"], "gold": 0}
{"query": "Water is", "choices": ["wet", "dry"], "gold": 0}
{"query": "Fire is", "choices": ["hot", "cold"], "gold": 0}
EOF
BAD="$TMP/bad.jsonl"  # line 3 is cut short
cat >"$BAD" <<'EOF'
{"query": "The sky is", "choices": ["blue", "green"], "gold": 0}
{"query": "Two plus two is", "choices": ["four", "five"], "gold": 0}
{"query": "Water is", "choices": ["wet", "dr
{"query": "Fire is", "choices": ["hot", "cold"], "gold": 0}
EOF
printf '{"query": "a", "choices": ["x", "y"], "gold": 0}\n{"query": "b", "choices": ["x", "y"], "gold": 2}\n' >"$TMP/gold_range.jsonl"
printf '{"query": "a", "choices": ["x", "y"], "gold": 0}\n{"query": "b", "choices": ["x"], "gold": 0}\n' >"$TMP/one_choice.jsonl"
printf '{"query": "a", "choices": ["x", "y"], "gold": 0}\n{"query": "\xff\xfe", "choices": ["x", "y"], "gold": 0}\n' >"$TMP/bad_utf8.jsonl"
printf '{"choices": ["x", "y"], "gold": 0}\n' >"$TMP/no_query.jsonl"
: >"$TMP/empty.jsonl"
printf '\n\n' >"$TMP/blank.jsonl"
mkdir -p "$TMP/data" "$TMP/nodata" "$TMP/dir.json" "$TMP/outdir/mc_good.jsonl.fp16.json"
printf 'ctx line\n0\nending a\nending b\n' >"$TMP/data/hellaswag_val_full.txt"     # truncated item
printf '{"id": "q1", "question": {"stem": "s", "choices": [{"text": "a", "label": "A"}, {"text": "b", "label": "B"}]}, "answerKey": "C"}\n' \
  >"$TMP/data/arc_easy_test.jsonl"                                                     # answer not a label
printf 'plain file' >"$TMP/plainfile"

# --- bad input: everything must fail before the model is loaded --------------------------------
expect_early_error "no --task" -- --data "$TMP/data"
expect_early_error "unknown task" "unknown task 'nosuch'" -- --task nosuch --data "$TMP/data"
expect_early_error "unknown split" -- --task arc_easy:validation --data "$TMP/data"
expect_early_error "unknown task among good ones" "unknown task" -- --task "mc:$GOOD" --task nosuch
expect_early_error "missing data directory" "does not exist" -- --task arc_challenge --data "$TMP/no-such-dir"
expect_early_error "missing data file" "arc_challenge_test.jsonl" -- --task arc_challenge --data "$TMP/nodata"
KVBITS_DATA="$TMP/no-such-dir" expect_early_error "missing KVBITS_DATA directory" "KVBITS_DATA" -- --task openbookqa
expect_early_error "missing mc file" "missing.jsonl" -- --task "mc:$TMP/missing.jsonl"
expect_early_error "malformed jsonl line names FILE:LINE" "bad\.jsonl:3:" -- --task "mc:$BAD"
expect_early_error "gold out of range names FILE:LINE" "gold_range\.jsonl:2:" -- --task "mc:$TMP/gold_range.jsonl"
expect_early_error "one choice names FILE:LINE" "one_choice\.jsonl:2:" -- --task "mc:$TMP/one_choice.jsonl"
expect_early_error "invalid UTF-8 names FILE:LINE" "bad_utf8\.jsonl:2:" -- --task "mc:$TMP/bad_utf8.jsonl"
expect_early_error "missing field names FILE:LINE" "no_query\.jsonl:1:" -- --task "mc:$TMP/no_query.jsonl"
expect_early_error "truncated hellaswag names FILE:LINE" "hellaswag_val_full\.txt:1" -- --task hellaswag --data "$TMP/data"
expect_early_error "arc answerKey not a label names FILE:LINE" "arc_easy_test\.jsonl:1:" -- --task arc_easy --data "$TMP/data"
expect_early_error "empty task file" "empty\.jsonl" -- --task "mc:$TMP/empty.jsonl"
expect_early_error "blank-lines-only task file" "blank\.jsonl" -- --task "mc:$TMP/blank.jsonl"
expect_early_error "mc file is a directory" -- --task "mc:$TMP/data"
expect_early_error "--shard 0/2" "shard" -- --task "mc:$GOOD" --shard 0/2
expect_early_error "--shard 3/2" "shard" -- --task "mc:$GOOD" --shard 3/2
expect_early_error "--shard garbage" "shard" -- --task "mc:$GOOD" --shard x
expect_early_error "--shard 1/0" "shard" -- --task "mc:$GOOD" --shard 1/0
expect_early_error "--shard 1/2/3" "shard" -- --task "mc:$GOOD" --shard 1/2/3
expect_early_error "--limit -1" "limit" -- --task "mc:$GOOD" --limit -1
expect_early_error "--limit abc" "limit" -- --task "mc:$GOOD" --limit abc
expect_early_error "unknown --kv policy" "nosuch" -- --task "mc:$GOOD" --kv nosuch
expect_early_error "--kv int3" "int3" -- --task "mc:$GOOD" --kv int3
expect_early_error "--kv int4/int4/int4" "int4/int4/int4" -- --task "mc:$GOOD" --kv int4/int4/int4
expect_early_error "--kv int4/" -- --task "mc:$GOOD" --kv int4/
expect_early_error "--kv-residual -1" "kv-residual" -- --task "mc:$GOOD" --kv-residual -1
expect_early_error "--ppl-window 1" "ppl-window" -- --task "mc:$GOOD" --ppl-window 1
expect_early_error "unknown flag" -- --task "mc:$GOOD" --no-such-flag
expect_early_error "results path under a file" "x\.json" -- --task "mc:$GOOD" -o "$TMP/plainfile/x.json"
expect_early_error "results path in an uncreatable location" -- --task "mc:$GOOD" -o /proc/kvbits-eval-test/x.json
expect_early_error "results path is a directory" "dir\.json" -- --task "mc:$GOOD" -o "$TMP/dir.json"
expect_early_error "results file in --out is a directory" "mc_good\.jsonl\.fp16\.json" -- --task "mc:$GOOD" -o "$TMP/outdir"
expect_early_error "results directory under a file" -- --task "mc:$GOOD" -o "$TMP/plainfile/results"
[[ -e "$TMP/dir.json.partial" || -e "$TMP/outdir/mc_good.jsonl.fp16.json.partial" ]] &&
  fail "a failed run left a .partial file behind" || pass

# A model that fails to load after the result path was reserved: one error, nothing left behind.
run_cmd 60 eval -m "$TMP/no-such-model.gguf" --task "mc:$GOOD" -o "$TMP/r.json"
check_one_error "missing model"
[[ -e "$TMP/r.json" || -e "$TMP/r.json.partial" ]] && fail "missing model: left a result file behind" || pass

# --- positive checks ---------------------------------------------------------------------------
# --skip-bad: the malformed line is dropped and counted; the run succeeds.
if expect_ok "--skip-bad" eval -m "$TINY" -c 256 --task "mc:$BAD" --skip-bad -o "$TMP/skip.json" --decode-tokens 0; then
  if grep -qE 'skipped 1 malformed item.*bad\.jsonl:3:' "$TMP/err"; then pass; else fail "--skip-bad: no 'skipped 1' report"; fi
  if grep -q '"n_skipped": 1' "$TMP/skip.json" && grep -q '"n": 3' "$TMP/skip.json"; then pass; else
    fail "--skip-bad: result file lacks n_skipped 1 / n 3"
  fi
fi

# A full mc:FILE run: a valid result file that kvbits report accepts.
if expect_ok "mc:FILE run" eval -m "$TINY" -c 256 --task "mc:$GOOD" -o "$TMP/results"; then
  RES="$TMP/results/mc_good.jsonl.fp16.json"
  if [[ -s "$RES" ]] && grep -q '"format": "kvbits-eval-result"' "$RES" && grep -q '"n": 4' "$RES" &&
    grep -q '"complete": true' "$RES" && grep -q '"n_skipped": 0' "$RES"; then
    pass
  else
    fail "mc:FILE run: result file missing or incomplete"
  fi
  [[ -e "$RES.partial" ]] && fail "mc:FILE run: left $RES.partial" || pass
  if grep -qE '^mc:good\.jsonl	fp16	n=4	acc ' "$TMP/out"; then pass; else fail "mc:FILE run: no summary line"; fi
  if expect_ok "report accepts the result" report "$RES" --out "$TMP/report"; then
    if grep -q 'mc:good.jsonl' "$TMP/out" && [[ -s "$TMP/report/report.md" ]]; then pass; else fail "report: no table"; fi
  fi
fi

# Two shards of a quantized policy merge back into all four items.
if expect_ok "shard 1/2" eval -m "$TINY" -c 256 --task "mc:$GOOD" --kv int4 --shard 1/2 -o "$TMP/shards" --decode-tokens 0 &&
  expect_ok "shard 2/2" eval -m "$TINY" -c 256 --task "mc:$GOOD" --kv int4 --shard 2/2 -o "$TMP/shards" --decode-tokens 0; then
  if expect_ok "report merges shards" report "$TMP"/shards/*.json; then
    if grep -qE '^\| int4 .*\| 4 \|' "$TMP/out" && ! grep -qi 'warning' "$TMP/err"; then pass; else
      fail "report merges shards: expected one int4 row with n = 4 and no warning"
    fi
  fi
fi

echo "eval cli: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
