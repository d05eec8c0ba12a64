# Shared by the CI scripts: timed phases and steps, and one closing count.
PHASES=()
STEPS_PASSED=0
STEPS_FAILED=0

TOTAL_PASSED=0
TOTAL_FAILED=0

# phase TITLE COMMAND…: runs a phase, prints its duration and adds its closing count ("N passed,
# N failed") to the run's; a failed phase fails the run.
phase() {
  local title=$1; shift
  local started=$SECONDS log code counts
  log=$(mktemp)
  printf '\n=== %s\n' "$title"
  local errexit=0
  case $- in *e*) errexit=1; set +e ;; esac
  "$@" 2>&1 | tee "$log"
  code=${PIPESTATUS[0]}
  [ "$errexit" -eq 1 ] && set -e
  counts=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1 || true)
  rm -f "$log"
  if [ -n "$counts" ]; then
    TOTAL_PASSED=$((TOTAL_PASSED + $(echo "$counts" | cut -d' ' -f1)))
    TOTAL_FAILED=$((TOTAL_FAILED + $(echo "$counts" | cut -d' ' -f3)))
  fi
  if [ "$code" -eq 0 ]; then
    PHASES+=("$(printf '%-32s %5ss  ok' "$title" $((SECONDS - started)))")
  else
    PHASES+=("$(printf '%-32s %5ss  FAILED (exit %s)' "$title" $((SECONDS - started)) "$code")")
    [ "$TOTAL_FAILED" -gt 0 ] || TOTAL_FAILED=1
    summary
    exit "$code"
  fi
}

# step TITLE COMMAND…: one proof inside a phase script; its output is shown only when it fails.
step() {
  local title=$1; shift
  local started=$SECONDS log
  log=$(mktemp)
  if "$@" >"$log" 2>&1; then
    printf '  ok    %-70s %4ss\n' "$title" $((SECONDS - started))
    STEPS_PASSED=$((STEPS_PASSED + 1))
  else
    printf '  FAIL  %-70s %4ss\n' "$title" $((SECONDS - started))
    tail -n 60 "$log" | sed 's/^/        /'
    STEPS_FAILED=$((STEPS_FAILED + 1))
  fi
  rm -f "$log"
}

# steps_verdict: the closing count of a phase script, and its exit code.
steps_verdict() {
  echo "${STEPS_PASSED} passed, ${STEPS_FAILED} failed"
  [ "$STEPS_FAILED" -eq 0 ]
}

# The phases with their durations, then the run's closing count, the last line of the output.
summary() {
  printf '\n=== Phases\n'
  printf '  %s\n' "${PHASES[@]}"
  echo "${TOTAL_PASSED} passed, ${TOTAL_FAILED} failed"
}
