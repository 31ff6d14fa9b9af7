#!/usr/bin/env bash
# Do the integration tests hold when the machine stops the whole test process for a moment?
# A CI machine can: one run saw a test binary take 8.7 s instead of 1 s, and its arrivals were
# dropped behind schedule. This stops each test binary once (SIGSTOP, then SIGCONT after STALL
# seconds) at a random moment within its first WITHIN seconds, RUNS times, and lists the tests
# that failed. Tests whose point is not timing take such a stall with `common::on_schedule`
# (README, "Tests"). Not part of CI: it takes as long as RUNS test suites, and its stalls are
# random.
#
#   .ci/stall.sh                     # every test binary
#   RUNS=5 STALL=1 .ci/stall.sh ws_tracking pool
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
RUNS=${RUNS:-2}
STALL=${STALL:-0.5}
WITHIN=${WITHIN:-5}
OUT=${OUT:-$(mktemp -d /tmp/inrush-stall.XXXXXX)}
mkdir -p "$OUT"

# The binaries cargo built, by test name ("Executable tests/pool.rs (target/debug/deps/pool-…)").
declare -A BIN
while read -r name path; do
  BIN[$name]=$path
done < <(cargo test --locked --no-run 2>&1 |
  sed -n 's/^ *Executable tests\/\([a-z_0-9]*\)\.rs (\(.*\))$/\1 \2/p')
names=("$@")
[[ ${#names[@]} -gt 0 ]] || mapfile -t names < <(printf '%s\n' "${!BIN[@]}" | sort)

failed=0
for name in "${names[@]}"; do
  bin=${BIN[$name]:-}
  [[ -n $bin ]] || { echo "no test binary named $name" >&2; exit 2; }
  for run in $(seq "$RUNS"); do
    log=$OUT/$name.$run.log
    "$bin" -q >"$log" 2>&1 &
    pid=$!
    at=$(python3 -c "import random; print(round(random.uniform(0.05, $WITHIN), 2))")
    (sleep "$at"; kill -STOP "$pid" 2>/dev/null && sleep "$STALL"; kill -CONT "$pid" 2>/dev/null) &
    rc=0
    wait "$pid" || rc=$?
    wait
    if [[ $rc -ne 0 ]]; then
      failed=$((failed + 1))
      echo "$name, run $run, stopped at ${at}s for ${STALL}s: $(grep -o '^test [a-z_0-9:]* ... FAILED' "$log" | sed 's/^test //; s/ ... FAILED//' | tr '\n' ' ')($log)"
    fi
  done
done
echo "$failed failing runs of ${#names[@]} binaries x $RUNS (logs in $OUT)"
[[ $failed -eq 0 ]]
