#!/usr/bin/env bash
# `kvbits report` on bad input: each case must exit non-zero with exactly one line on stderr that
# starts with "error:", never crash or hang. Plus positive checks (merging shards, tables, a
# missing gnuplot being one warning). Result files are written here by hand (no model needed).
#
# usage: bash tests/cli/report_bad_input.sh KVBITS_BINARY SOURCE_DIR   (VERBOSE=1: show errors)
set -u

KVBITS=${1:?usage: report_bad_input.sh KVBITS_BINARY SOURCE_DIR}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/kvbits-report-XXXXXX")
trap 'rm -rf "$TMP"' EXIT

source "$(dirname "${BASH_SOURCE[0]}")/lib/harness.sh"
run_cmd() { run_limited 60 "$@"; }
# expect_stderr NAME PATTERN: the last command's stderr matches PATTERN (grep -E).
expect_stderr() {
  if grep -qE "$2" "$TMP/err"; then pass; else fail "$1: stderr lacks /$2/"; fi
}

# result POLICY SHARD_INDEX SHARD_COUNT ITEMS_JSON N: a 4-item arc_easy result file on stdout.
result() {
  cat <<JSON
{"format": "kvbits-eval-result", "format_version": 1, "kvbits": {"version": "0.1.0", "commit": "test"},
 "timestamp": "2025-01-01T00:00:00Z", "model": {"path": "m.gguf", "sha256": "00ff"},
 "policy": {"name": "$1", "family": "", "budget_bits": null, "params": {}},
 "task": {"name": "arc_easy", "kind": "multiple_choice", "data_file": "arc_easy_test.jsonl"},
 "shard": {"index": $2, "count": $3}, "limit": 0, "n_total": 4, "n": $5, "n_skipped": 0, "complete": true,
 "metrics": null, "kv": {"effective_bits": 4.5, "kv_bytes": 10, "kv_bytes_allocated": 12, "tokens": 3},
 "decode_ms_per_token": 9.5, "wall_seconds": 1.0,
 "items": $4}
JSON
}
I0='{"index": 0, "gold": 0, "ll": [-1, -2], "len": [1, 1]}'
I1='{"index": 1, "gold": 1, "ll": [-1, -2], "len": [1, 1]}'
I2='{"index": 2, "gold": 0, "ll": [-1, -2], "len": [1, 1]}'
I3='{"index": 3, "gold": 0, "ll": [-1, -2], "len": [1, 1]}'
result fp16 1 1 "[$I0, $I1, $I2, $I3]" 4 >"$TMP/fp16.json"
result kivi@2 1 2 "[$I0, $I2]" 2 >"$TMP/k2_1.json"
result kivi@2 2 2 "[$I1, $I3]" 2 >"$TMP/k2_2.json"
result kivi@2 1 2 "[$I0, $I2]" 2 >"$TMP/k2_1_again.json"
result kivi@2 1 4 "[$I0]" 1 | sed 's/"n_total": 4/"n_total": 3/' >"$TMP/k2_limit.json"
sed 's/"name": "fp16", //' "$TMP/fp16.json" >"$TMP/no_policy_name.json"
sed 's/"n": 4/"n": 5/' "$TMP/fp16.json" >"$TMP/wrong_n.json"
result fp16 1 1 "[$I0, $I0]" 2 >"$TMP/dup_item.json"
result fp16 2 2 "[$I0]" 1 >"$TMP/wrong_shard.json"
head -c 200 "$TMP/fp16.json" >"$TMP/truncated.json"
echo '{}' >"$TMP/empty_object.json"
printf 'plain file' >"$TMP/plainfile"

# --- bad input ---------------------------------------------------------------------------------
expect_error "no result files" report
expect_error "missing result file" report "$TMP/nope.json" --out "$TMP/o"
expect_error "directory as result file" report "$TMP" --out "$TMP/o"
expect_error "truncated JSON" report "$TMP/truncated.json" --out "$TMP/o"
expect_error "not a result file" report "$TMP/empty_object.json" --out "$TMP/o"
expect_error "missing field" report "$TMP/no_policy_name.json" --out "$TMP/o"
grep -q "field 'policy.name' missing" "$TMP/err" && pass || fail "missing field: not named"
expect_error "n disagrees with the records" report "$TMP/wrong_n.json" --out "$TMP/o"
expect_error "duplicate item in one file" report "$TMP/dup_item.json" --out "$TMP/o"
expect_error "item outside its shard" report "$TMP/wrong_shard.json" --out "$TMP/o"
expect_error "overlapping shards" report "$TMP/k2_1.json" "$TMP/k2_2.json" "$TMP/k2_1_again.json" --out "$TMP/o"
expect_stderr "overlapping shards" "k2_1_again.json \(shard 1/2\) both hold item 0"
expect_error "shards of different --limit" report "$TMP/k2_1.json" "$TMP/k2_limit.json" --out "$TMP/o"
expect_error "--pair without a comma" report "$TMP/fp16.json" --pair fp16 --out "$TMP/o"
expect_error "--pair unknown policy" report "$TMP/fp16.json" --pair fp16,kivi@9 --out "$TMP/o"
expect_error "--out is a file" report "$TMP/fp16.json" --out "$TMP/plainfile"
[[ -e "$TMP/o" ]] && fail "a failed report left its output directory" || pass

# --- positive checks ---------------------------------------------------------------------------
run_cmd report "$TMP/fp16.json" "$TMP/k2_1.json" "$TMP/k2_2.json" --pair fp16,kivi@2 --out "$TMP/ok"
if [[ $rc -eq 0 ]]; then
  pass
  grep -q '^| kivi@2 | 4.50 | 9.50 | 0.7500 ± 0.2165 | 0.7500 ± 0.2165 | 4 |$' "$TMP/out" && pass || fail "merged row"
  grep -q '^| arc_easy | 4 | ' "$TMP/out" && pass || fail "paired row"
  cmp -s "$TMP/out" "$TMP/ok/report.md" && pass || fail "stdout and report.md differ"
else
  fail "valid report: exit $rc"
fi
run_cmd report "$TMP/k2_1.json" --out "$TMP/ok2"
[[ $rc -eq 0 ]] && pass || fail "missing shard: exit $rc"
expect_stderr "missing shard" "^warning: arc_easy / kivi@2: missing shard\(s\) 2/2 \(2 of 4 items\)$"
# No gnuplot on PATH: one warning, tables still written.
timeout 60 env PATH=/nonexistent "$KVBITS" report "$TMP/fp16.json" --out "$TMP/ok3" </dev/null >"$TMP/out" 2>"$TMP/err"
rc=$?
[[ $rc -eq 0 && -s "$TMP/ok3/report.md" ]] && pass || fail "no gnuplot: exit $rc or no report.md"
[[ $(grep -c '^warning: gnuplot not found' "$TMP/err") -eq 1 ]] && pass || fail "no gnuplot: not one warning line"

echo "cli: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
