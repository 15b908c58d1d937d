# Shared harness of the CLI tests (tests/cli/*.sh), sourced after the script sets KVBITS (the
# binary) and TMP (its scratch directory). Each command's stdout goes to $TMP/out, its stderr to
# $TMP/err, its exit status to $rc. Not a test itself: CMake adds tests/cli/*.sh only.

passed=0
failed=0
pass() { passed=$((passed + 1)); }
# fail MESSAGE: counts a failure and shows it with the first lines of the last stderr.
fail() {
  failed=$((failed + 1))
  echo "FAIL: $1" >&2
  if [[ -s "$TMP/err" ]]; then sed 's/^/  stderr: /' "$TMP/err" | head -n 5 >&2; fi
}

# run_limited SECONDS ARGS...: runs kvbits ARGS with a time limit and stdin from /dev/null.
run_limited() {
  local limit=$1
  shift
  timeout "$limit" "$KVBITS" "$@" </dev/null >"$TMP/out" 2>"$TMP/err"
  rc=$?
}

# expect_error NAME ARGS...: runs the calling script's run_cmd (its own time limit), then
# check_one_error: non-zero, not a crash or timeout, exactly one stderr line "error: ...". A
# script that needs more (controller_bad_input.sh: a needle in the message) defines its own.
expect_error() {
  local name=$1
  shift
  run_cmd "$@"
  check_one_error "$name"
}

# check_one_error NAME [HINT]: the last command exited non-zero, did not crash (exit >= 128) or
# time out (124), and wrote exactly one stderr line starting with "error: ". Counts a pass or a
# failure (HINT is added to a timeout's message); returns 1 on failure.
check_one_error() {
  local name=$1 hint=${2:-} lines
  lines=$(wc -l <"$TMP/err")
  if [[ $rc -eq 124 ]]; then
    fail "$name: timed out${hint:+ ($hint)}"
  elif [[ $rc -ge 128 ]]; then
    fail "$name: crashed (exit $rc)"
  elif [[ $rc -eq 0 ]]; then
    fail "$name: exit 0, expected an error"
  elif [[ $lines -ne 1 ]]; then
    fail "$name: $lines lines on stderr, expected 1"
  elif ! head -n 1 "$TMP/err" | grep -q '^error: '; then
    fail "$name: stderr does not start with 'error: '"
  else
    pass
    if [[ -n "${VERBOSE:-}" ]]; then echo "ok: $name: $(cat "$TMP/err")"; fi
    return 0
  fi
  return 1
}

# expect_stderr_has NAME TEXT: the last command's stderr contains TEXT (fixed string).
expect_stderr_has() {
  if grep -qF -- "$2" "$TMP/err"; then pass; else fail "$1: the error does not mention '$2'"; fi
}
