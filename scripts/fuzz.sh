#!/usr/bin/env bash
# Builds the libFuzzer targets with clang in build-fuzz/ and runs each for a bounded time.
#   scripts/fuzz.sh [SECONDS_PER_TARGET]   (default 60)
# Corpora live in fuzz/corpus-<target>/ (git-ignored) and grow across runs; crash inputs go to
# build-fuzz/artifacts/. Prints executions per target; exits non-zero if any target crashed.
set -euo pipefail

SECONDS_PER_TARGET="${1:-60}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="$ROOT/build-fuzz"
JOBS="${JOBS:-2}"
CC_BIN="${CC:-$(command -v clang-14 || command -v clang)}"
CXX_BIN="${CXX:-$(command -v clang++-14 || command -v clang++)}"

cd "$ROOT"
cmake -S . -B "$BUILD" -DCMAKE_C_COMPILER="$CC_BIN" -DCMAKE_CXX_COMPILER="$CXX_BIN" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKVBITS_BUILD_FUZZ=ON -DKVBITS_BUILD_TESTS=OFF \
  -DKVBITS_BUILD_BENCH=OFF >/dev/null

# Every fuzz/<name>_fuzz.cc registered in fuzz/CMakeLists.txt is a target; build each (and its
# seed generator if any).
KNOWN="$(cmake --build "$BUILD" --target help | sed -n 's/^\.\.\. //p')"
TARGETS=()
for src in fuzz/*_fuzz.cc; do
  t="$(basename "$src" .cc)"
  if grep -qx "$t" <<<"$KNOWN"; then
    TARGETS+=("$t")
  else
    echo "warning: $src has no target in fuzz/CMakeLists.txt; skipped" >&2
  fi
done
BUILD_TARGETS=()
for t in "${TARGETS[@]}"; do
  BUILD_TARGETS+=("$t")
  if grep -qx "${t}_seeds" <<<"$KNOWN"; then BUILD_TARGETS+=("${t}_seeds"); fi
done
cmake --build "$BUILD" -j"$JOBS" --target "${BUILD_TARGETS[@]}"

mkdir -p "$BUILD/artifacts"
status=0
summary=()
for t in "${TARGETS[@]}"; do
  corpus="fuzz/corpus-$t"
  mkdir -p "$corpus"
  if [[ -x "$BUILD/fuzz/${t}_seeds" ]]; then "$BUILD/fuzz/${t}_seeds" "$corpus"; fi
  args=(-max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048
        -print_final_stats=1 -artifact_prefix="$BUILD/artifacts/$t-")
  [[ -f "fuzz/$t.dict" ]] && args+=(-dict="fuzz/$t.dict")
  log="$BUILD/artifacts/$t.log"
  echo "== $t: fuzzing for ${SECONDS_PER_TARGET}s (log: $log)"
  rc=0
  "$BUILD/fuzz/$t" "${args[@]}" "$corpus" >"$log" 2>&1 || rc=$?
  execs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)"
  corpus_size="$(find "$corpus" -type f | wc -l)"
  if [[ $rc -ne 0 ]]; then
    status=1
    summary+=("$t: CRASH (exit $rc) after ${execs:-?} executions; see $log and $BUILD/artifacts/")
    grep -m1 -E 'ERROR|runtime error|deadly signal' "$log" || true
  else
    summary+=("$t: ${execs:-?} executions, no crashes, corpus $corpus_size files")
  fi
done

echo "== fuzz summary"
printf '%s\n' "${summary[@]}"
exit $status
