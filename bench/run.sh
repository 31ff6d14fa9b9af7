#!/usr/bin/env bash
# inrush benchmark: how many signups/s and chat messages/s one generator core sustains against
# the built-in messenger on another core, compared with wrk in the same run, and how many idle
# connected users one generator process holds, with its memory per user. See bench/README.md.
#
#   bench/run.sh            # full run, ~13 minutes
#   QUICK=1 bench/run.sh    # ~4 minutes, shorter steps, coarser search
#
# Writes reports/bench-<UTC stamp>.md (the table) and reports/bench-<UTC stamp>/ (every step's
# summary.json, server logs, results.jsonl). reports/ is git-ignored. All traffic goes to 127.0.0.1.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
HELP="$ROOT/bench/bench.py"
py() { python3 "$HELP" "$@"; }

QUICK=${QUICK:-0}
ORIG_PARTS=${PARTS:-}
if [[ $QUICK == 1 ]]; then
  STEP_S=${STEP_S:-5};          BISECT=${BISECT:-1};        CONFIRM=${CONFIRM:-0}
  SIGNUP_START=${SIGNUP_START:-200}
  MSG_USERS=${MSG_USERS:-500};  MSG_JOIN_S=${MSG_JOIN_S:-2}; MSG_CHAT_S=${MSG_CHAT_S:-5}
  MSG_START=${MSG_START:-4000}; WRK_S=${WRK_S:-4};         QUIET_WAIT=${QUIET_WAIT:-5}
  CONN_N1=${CONN_N1:-5000};      CONN_N2=${CONN_N2:-15000}; CONN_RATE=${CONN_RATE:-500}
  CONN_HOLD_S=${CONN_HOLD_S:-8}
  KA_S=${KA_S:-5}
else
  CONN_N1=${CONN_N1:-5000};      CONN_N2=${CONN_N2:-15000}; CONN_RATE=${CONN_RATE:-500}
  CONN_HOLD_S=${CONN_HOLD_S:-20}
  STEP_S=${STEP_S:-15};         BISECT=${BISECT:-3};        CONFIRM=${CONFIRM:-1}
  SIGNUP_START=${SIGNUP_START:-50}
  MSG_USERS=${MSG_USERS:-1000}; MSG_JOIN_S=${MSG_JOIN_S:-5}; MSG_CHAT_S=${MSG_CHAT_S:-15}
  MSG_START=${MSG_START:-1000}; WRK_S=${WRK_S:-10}
  KA_S=${KA_S:-10}
fi
KA_USERS=${KA_USERS:-64}          # keep-alive users of the TLS part (as wrk's -c64)
KA_ROUNDS=${KA_ROUNDS:-3}         # plain/TLS pairs of the TLS part, alternating
SIGNUP_MAX=${SIGNUP_MAX:-51200}    # stop doubling here even if everything passes
MSG_MAX=${MSG_MAX:-512000}
BUDGET_S=${BUDGET_S:-$([[ $QUICK == 1 ]] && echo 150 || echo 720)}  # past this, no retries/waits/bisection
RETRY=${RETRY:-1}                # reruns of a step that failed while other load used a pinned core
QUIET_WAIT=${QUIET_WAIT:-20}      # before each step, wait up to this long for both cores to be idle
PARTS=${PARTS:-signup message wrk connected tls}   # which parts to run (in this order)
STRICT_LAG_MS=${STRICT_LAG_MS:-1}  # the signup sweep also bisects the rate with schedule lag p99 below this
export LAG_MS=${LAG_MS:-5} STRICT_LAG_MS
TARGET_CORE=${TARGET_CORE:-0}
GEN_CORE=${GEN_CORE:-1}

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=${OUT:-$ROOT/reports/bench-$STAMP}
REPORT=${REPORT:-$OUT.md}
mkdir -p "$OUT/steps" "$OUT/logs"
RESULTS=$OUT/results.jsonl
: >"$RESULTS"
T_START=$(date +%s)

SP=""   # pid of the running target
stop_target() {
  if [[ -n $SP ]]; then
    kill "$SP" 2>/dev/null || true
    wait "$SP" 2>/dev/null || true
    SP=""
  fi
}
trap stop_target EXIT
trap 'stop_target; exit 130' INT TERM

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*"; }
# True once the bench has used its time budget: retries, quiet waits, bisection and confirmation
# are then skipped so that a busy machine cannot stretch the run without bound.
over_budget() { (($(date +%s) - T_START > BUDGET_S)); }

# ---------------------------------------------------------------------------------------------
# BENCH_REV=<git revision> benchmarks that commit (exported to a temp dir, built into
# target/bench-rev/) instead of the working tree, e.g. while the tree is mid-edit.
# BENCH_BIN=<path> benchmarks that binary as it is (no build), e.g. a release build of an earlier
# run kept in its reports/bench-…/inrush, while the tree builds something else.
if [[ -n ${BENCH_BIN:-} ]]; then
  REV=$(basename "$BENCH_BIN")  # a label: names files and the binaries of PARTS=timer
  log "benchmarking $BENCH_BIN as it is (BENCH_BIN, not built)"
  BUILT=$BENCH_BIN
elif [[ -n ${BENCH_REV:-} ]]; then
  REV=$(git rev-parse --short "$BENCH_REV")
  SRC=$(mktemp -d /tmp/inrush-bench-src.XXXXXX)
  git archive "$REV" | tar -x -C "$SRC"
  log "building $REV (cargo build --release --locked, in $SRC)"
  (cd "$SRC" && CARGO_TARGET_DIR=$ROOT/target/bench-rev cargo build --release --locked --quiet)
  BUILT=$ROOT/target/bench-rev/release/inrush
  rm -rf "$SRC"
else
  REV=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
  git diff --quiet HEAD -- src Cargo.toml Cargo.lock 2>/dev/null || REV="$REV+uncommitted"
  log "building the working tree (cargo build --release --locked)"
  cargo build --release --locked --quiet
  BUILT=$ROOT/target/release/inrush
fi
# A private copy: another build in this tree must not swap the binary in the middle of the bench.
BIN=$OUT/inrush
cp "$BUILT" "$BIN"

if ! command -v wrk >/dev/null; then
  log "installing wrk from Debian"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk) >"$OUT/logs/apt.log" 2>&1 \
    || log "could not install wrk (see $OUT/logs/apt.log); the peer comparison is skipped"
fi

py meta "$RESULTS" "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  "command=$( [[ $QUICK == 1 ]] && echo 'QUICK=1 ' )$( [[ -n ${ORIG_PARTS:-} ]] && echo "PARTS=\"$ORIG_PARTS\" " )$( [[ -n ${BENCH_REV:-} ]] && echo "BENCH_REV=$BENCH_REV " )bench/run.sh" \
  "commit=$REV" \
  "cpus=$(nproc)" "cpu_model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" \
  "nofile=$(ulimit -n)" "step_s=$STEP_S" "lag_ms=$LAG_MS" "strict_lag_ms=$STRICT_LAG_MS"

# The benchmark judges schedule lag itself (LAG_MS): a run past inrush's own overload limits
# (exit 4, inconclusive) is still a measurement here. Binaries before the flag (BENCH_REV) lack it.
ACCEPT_OVERLOAD=()
if "$BIN" run --help 2>/dev/null | grep -q -- --accept-overload; then
  ACCEPT_OVERLOAD=(--accept-overload)
fi

# Starts a fresh target (no registered phones, no sockets) on a free port, pinned to TARGET_CORE;
# `start_target NAME https` serves it over TLS with the bench's throwaway certificate.
start_target() {
  local name=$1 scheme=${2:-http} tls=()
  [[ $scheme == https ]] && tls=(--tls-cert "$SCEN/tls-cert.pem" --tls-key "$SCEN/tls-key.pem")
  PORT=$(py freeport)
  taskset -c "$TARGET_CORE" "$BIN" serve --listen "127.0.0.1:$PORT" "${tls[@]}" >"$OUT/logs/serve-$name.log" 2>&1 &
  SP=$!
  py wait-healthy "$PORT" 10 "$scheme"
}

# CPU use of the pinned cores and of the target around a measured command: the machine may be
# shared with load this script cannot see, so every step reports (and is judged by) it.
measure_begin() {
  read -r M_GEN0 M_TGT0 < <(py core-busy "$GEN_CORE" "$TARGET_CORE")
  read -r M_TCPU0 _ < <(py proc-stats "$SP")
  M_T0=$(date +%s.%N)
}
measure_end() {  # prints key=value arguments for bench.py
  local t1 gen1 tgt1 tcpu1 rss
  t1=$(date +%s.%N)
  read -r gen1 tgt1 < <(py core-busy "$GEN_CORE" "$TARGET_CORE")
  read -r tcpu1 rss < <(py proc-stats "$SP")
  python3 -c 'import sys; g0,g1,t0,t1,c0,c1,w0,w1=map(float,sys.argv[1:]); print(f"gen_core_busy_s={g1-g0:.3f} target_core_busy_s={t1-t0:.3f} target_cpu_s={c1-c0:.3f} wall_s={w1-w0:.3f}")' \
    "$M_GEN0" "$gen1" "$M_TGT0" "$tgt1" "$M_TCPU0" "$tcpu1" "$M_T0" "$t1"
  echo "target_rss_mb=$rss"
}

STEP=0
# run_step KIND LABEL SCENARIO PHASE_S EXPECTED_ARRIVALS MAX_SECONDS key=value...
#   → exit 0 pass, 1 fail, 3 fail while other load disturbed a pinned core
run_step() {
  local kind=$1 label=$2 scenario=$3 phase_s=$4 expected=$5 max_s=$6
  shift 6
  STEP=$((STEP + 1))
  local seed=$((1000 + STEP)) dir="$OUT/steps/$STEP-$kind-$label"
  over_budget || py wait-quiet "$QUIET_WAIT" "$GEN_CORE" "$TARGET_CORE"
  start_target "$STEP"
  local ovf0 ovf1 rc=0 measured
  ovf0=$(py listen-overflows)
  measure_begin
  timeout --signal=INT --kill-after=10 "$max_s" \
    taskset -c "$GEN_CORE" "$BIN" run "$scenario" --target "http://127.0.0.1:$PORT" \
    --out "$dir" --workers 1 --quiet --seed "$seed" "${ACCEPT_OVERLOAD[@]}" >"$OUT/logs/run-$STEP.log" 2>&1 || rc=$?
  measured=$(measure_end)
  ovf1=$(py listen-overflows)
  stop_target
  # shellcheck disable=SC2086  # $measured is a list of key=value words
  py eval "$kind" "$dir/summary.json" "$RESULTS" "label=$label" "seed=$seed" "rc=$rc" \
    "phase_s=$phase_s" "expected_arrivals=$expected" $measured \
    "listen_overflows=$((ovf1 - ovf0))" "$@"
}

# attempt NAME VALUE [LAG_MS]: one sweep step, retried (RETRY times) when it failed while
# disturbed; pass/fail at schedule lag p99 < LAG_MS (default: the loose LAG_MS).
attempt() {
  local name=$1 value=$2 lag=${3:-$LAG_MS} tries=0 rc
  while :; do
    rc=0
    "${name}_step" "$value" || true
    py verdict "$RESULTS" "$lag" || rc=$?
    if ((rc == 3 && tries < RETRY)) && ! over_budget; then
      tries=$((tries + 1))
      log "$name $value failed while other load used a pinned core; retrying"
      continue
    fi
    return $((rc == 0 ? 0 : 1))
  done
}

# sweep NAME START MAX ROUND: doubles from START until a step fails (or MAX), then bisects
# BISECT times between the last pass and the first failure, then (CONFIRM=1) runs the highest
# passing value once more with another seed; the report only counts a value whose every run
# passed. Calls "${NAME}_step VALUE".
sweep() {
  local name=$1 value=$2 max=$3 round=$4 lo=0 hi=0
  while :; do
    if attempt "$name" "$value"; then
      lo=$value
      ((value * 2 <= max)) || break
      value=$((value * 2))
    else
      hi=$value
      break
    fi
  done
  if ((hi > 0 && lo > 0)); then
    local i mid
    for ((i = 0; i < BISECT; i++)); do
      over_budget && { log "$name: time budget used, no more bisection"; break; }
      mid=$(((lo + hi) / 2 / round * round))
      ((mid > lo && mid < hi)) || break
      if attempt "$name" "$mid"; then lo=$mid; else hi=$mid; fi
    done
  fi
  if ((lo > 0 && CONFIRM == 1)) && ! over_budget; then
    log "$name: confirming $lo with another seed"
    attempt "$name" "$lo" || log "$name: the confirmation of $lo failed (an undisturbed failure makes the report fall back to a lower value)"
  fi
  log "$name: highest passing $lo, lowest failing ${hi/#0/none}"
}

# refine NAME KIND KEY LAG_MS ROUND MIN: after a sweep, finds the boundary for a stricter lag
# limit from the steps already run (bench.py bracket): halves below the lowest step while none
# passes (down to MIN), then bisects BISECT times, then confirms (CONFIRM=1).
refine() {
  local name=$1 kind=$2 key=$3 lag=$4 round=$5 min=$6 lo hi i mid
  read -r lo hi < <(py bracket "$RESULTS" "$kind" "$key" "$lag")
  log "$name, lag p99 < $lag ms: passing so far ${lo/#0/none}, failing ${hi/#0/none}"
  while ((lo == 0 && hi / 2 >= min)) && ! over_budget; do
    mid=$((hi / 2 / round * round))
    if attempt "$name" "$mid" "$lag"; then lo=$mid; else hi=$mid; fi
  done
  if ((hi > 0 && lo > 0)); then
    for ((i = 0; i < BISECT; i++)); do
      over_budget && { log "$name: time budget used, no more bisection"; break; }
      mid=$(((lo + hi) / 2 / round * round))
      ((mid > lo && mid < hi)) || break
      if attempt "$name" "$mid" "$lag"; then lo=$mid; else hi=$mid; fi
    done
  fi
  if ((lo > 0 && CONFIRM == 1)) && ! over_budget; then
    log "$name: confirming $lo at lag p99 < $lag ms with another seed"
    attempt "$name" "$lo" "$lag" || log "$name: the confirmation of $lo failed"
  fi
  log "$name, lag p99 < $lag ms: highest passing ${lo/#0/none}, lowest failing ${hi/#0/none}"
}

SCEN=$OUT/scenarios
mkdir -p "$SCEN"

signup_step() {
  local rate=$1 f="$SCEN/signup-$1.toml"
  py signup-scenario "$rate" "$STEP_S" >"$f"
  run_step signup "$rate" "$f" "$STEP_S" "$((rate * STEP_S))" "$((STEP_S + 60))" "rate=$rate"
}

message_step() {
  local rate=$1 f="$SCEN/message-$1.toml"
  py message-scenario "$MSG_USERS" "$MSG_JOIN_S" "$MSG_CHAT_S" "$rate" >"$f"
  run_step message "$rate" "$f" "$MSG_CHAT_S" "$MSG_USERS" "$((MSG_JOIN_S + MSG_CHAT_S + 60))" \
    "msg_rate=$rate" "users=$MSG_USERS"
}

# ---------------------------------------------------------------------------------------------
if [[ " $PARTS " == *" signup "* ]]; then
  log "signup sweep: ${STEP_S}s constant-rate Poisson steps from $SIGNUP_START users/s"
  sweep signup "$SIGNUP_START" "$SIGNUP_MAX" 10
  refine signup signup rate "$STRICT_LAG_MS" 10 20
fi

if [[ " $PARTS " == *" message "* ]]; then
  log "message sweep: $MSG_USERS users join in ${MSG_JOIN_S}s, then chat ${MSG_CHAT_S}s; from $MSG_START msg/s"
  sweep message "$MSG_START" "$MSG_MAX" 100
fi

# ---------------------------------------------------------------------------------------------
if [[ " $PARTS " == *" wrk "* ]] && command -v wrk >/dev/null; then
  log "peer: wrk -t1 -c64 -d${WRK_S}s GET /healthz"
  py wait-quiet "$QUIET_WAIT" "$GEN_CORE" "$TARGET_CORE"
  start_target wrk-healthz
  measure_begin
  timeout $((WRK_S + 30)) python3 -c '
import resource, subprocess, sys, time
t = time.monotonic(); rc = subprocess.call(sys.argv[2:]); wall = time.monotonic() - t
r = resource.getrusage(resource.RUSAGE_CHILDREN)
open(sys.argv[1], "w").write(f"{r.ru_utime} {r.ru_stime} {wall}\n"); sys.exit(rc)' \
    "$OUT/logs/wrk-healthz.time" taskset -c "$GEN_CORE" wrk -t1 -c64 "-d${WRK_S}s" \
    "http://127.0.0.1:$PORT/healthz" >"$OUT/logs/wrk-healthz.txt" 2>&1 || true
  measured=$(measure_end)
  stop_target
  # shellcheck disable=SC2086
  py wrk-parse "$OUT/logs/wrk-healthz.txt" "$OUT/logs/wrk-healthz.time" "$RESULTS" label=healthz $measured || true

  log "peer: wrk -t1 -c64 -d${WRK_S}s POST /v1/register (unique phones): the target's own register capacity"
  py wait-quiet "$QUIET_WAIT" "$GEN_CORE" "$TARGET_CORE"
  cat >"$SCEN/register.lua" <<'LUA'
-- One thread (-t1), one Lua state: the counter makes every phone unique.
local n = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  n = n + 1
  return wrk.format(nil, "/v1/register", nil, string.format('{"phone":"+1999%09d"}', n))
end
LUA
  start_target wrk-register
  measure_begin
  timeout $((WRK_S + 30)) python3 -c '
import resource, subprocess, sys, time
t = time.monotonic(); rc = subprocess.call(sys.argv[2:]); wall = time.monotonic() - t
r = resource.getrusage(resource.RUSAGE_CHILDREN)
open(sys.argv[1], "w").write(f"{r.ru_utime} {r.ru_stime} {wall}\n"); sys.exit(rc)' \
    "$OUT/logs/wrk-register.time" taskset -c "$GEN_CORE" wrk -t1 -c64 "-d${WRK_S}s" \
    -s "$SCEN/register.lua" "http://127.0.0.1:$PORT" >"$OUT/logs/wrk-register.txt" 2>&1 || true
  measured=$(measure_end)
  stop_target
  # shellcheck disable=SC2086
  py wrk-parse "$OUT/logs/wrk-register.txt" "$OUT/logs/wrk-register.time" "$RESULTS" label=register $measured || true
fi

# ---------------------------------------------------------------------------------------------
# connected_step USERS: USERS sign up at CONN_RATE/s (evenly spaced), open their WebSocket and
# stay connected, idle, for CONN_HOLD_S; meanwhile the generator's and the target's VmRSS and
# descriptors and the host's TCP socket counts are sampled every 0.5 s (bench.py sample).
connected_step() {
  local users=$1 f="$SCEN/connected-$1.toml"
  STEP=$((STEP + 1))
  local seed=$((1000 + STEP)) dir="$OUT/steps/$STEP-connected-$users" samples="$OUT/steps/$STEP-samples.jsonl"
  local connect_s=$(((users + CONN_RATE - 1) / CONN_RATE))
  local max_s=$((connect_s + CONN_HOLD_S + 90)) rc=0 gp ovf0 ovf1 tw0 measured
  py hold-scenario "$users" "$CONN_RATE" "$CONN_HOLD_S" >"$f"
  py wait-quiet "$QUIET_WAIT" "$GEN_CORE" "$TARGET_CORE"
  start_target "$STEP"
  ovf0=$(py listen-overflows)
  tw0=$(awk '/^TCP:/ { for (i = 2; i < NF; i++) if ($i == "tw") print $(i + 1) }' /proc/net/sockstat)
  measure_begin
  timeout --signal=INT --kill-after=10 "$max_s" \
    taskset -c "$GEN_CORE" "$BIN" run "$f" --target "http://127.0.0.1:$PORT" \
    --out "$dir" --workers 1 --quiet --seed "$seed" "${ACCEPT_OVERLOAD[@]}" >"$OUT/logs/run-$STEP.log" 2>&1 &
  gp=$!
  # $gp is timeout(1); the generator is its child (taskset execs inrush).
  local ip="" i
  for ((i = 0; i < 50; i++)); do
    ip=$(pgrep -P "$gp" | head -n1 || true)
    [[ -n $ip ]] && break
    sleep 0.1
  done
  local sampler=""
  if [[ -n $ip ]]; then
    py sample "$ip" "$SP" "$samples" 0.5 &
    sampler=$!
  fi
  wait "$gp" || rc=$?
  [[ -z $sampler ]] || wait "$sampler" || true
  measured=$(measure_end)
  ovf1=$(py listen-overflows)
  stop_target
  # shellcheck disable=SC2086
  py connected-eval "$dir" "$samples" "$RESULTS" "users=$users" "conn_rate=$CONN_RATE" \
    "hold_s=$CONN_HOLD_S" "seed=$seed" "rc=$rc" "nofile=$(ulimit -n)" "tw_before=$tw0" \
    "listen_overflows=$((ovf1 - ovf0))" $measured || true
}

if [[ " $PARTS " == *" connected "* ]]; then
  if ((CONN_N2 + 100 > $(ulimit -n))); then
    log "connected: $CONN_N2 users need ~$((CONN_N2 + 20)) descriptors, the open-file limit is $(ulimit -n); lowering"
    CONN_N2=$(($(ulimit -n) - 200))
  fi
  log "connected users: $CONN_N1 then $CONN_N2 users connect at $CONN_RATE/s and stay idle for ${CONN_HOLD_S}s"
  connected_step "$CONN_N1"
  connected_step "$CONN_N2"
fi

# ---------------------------------------------------------------------------------------------
# soak: SOAK_RATE signups/s for SOAK_S seconds (not in the default PARTS: PARTS=soak); the
# generator's RSS sampled every 5 s and its slope fitted after SOAK_WARM_S (bench.py soak-eval).
SOAK_RATE=${SOAK_RATE:-20}; SOAK_S=${SOAK_S:-600}; SOAK_WARM_S=${SOAK_WARM_S:-300}
if [[ " $PARTS " == *" soak "* ]]; then
  log "soak: $SOAK_RATE signups/s for ${SOAK_S}s, RSS slope after ${SOAK_WARM_S}s"
  STEP=$((STEP + 1))
  f="$SCEN/soak.toml" dir="$OUT/steps/$STEP-soak" samples="$OUT/steps/$STEP-samples.jsonl"
  py soak-scenario "$SOAK_RATE" "$SOAK_S" >"$f"
  start_target "$STEP"
  rc=0
  timeout --signal=INT --kill-after=10 $((SOAK_S + 120)) \
    taskset -c "$GEN_CORE" "$BIN" run "$f" --target "http://127.0.0.1:$PORT" \
    --out "$dir" --workers 1 --quiet "${ACCEPT_OVERLOAD[@]}" --seed "$((2000 + STEP))" >"$OUT/logs/run-$STEP.log" 2>&1 &
  gp=$!
  ip=""
  for ((i = 0; i < 50; i++)); do
    ip=$(pgrep -P "$gp" | head -n1 || true)
    [[ -n $ip ]] && break
    sleep 0.1
  done
  sampler=""
  if [[ -n $ip ]]; then
    py sample "$ip" "$SP" "$samples" 5 &
    sampler=$!
  fi
  wait "$gp" || rc=$?
  [[ -z $sampler ]] || wait "$sampler" || true
  stop_target
  py soak-eval "$samples" "$RESULTS" "rate=$SOAK_RATE" "seconds=$SOAK_S" "warm_s=$SOAK_WARM_S" "rc=$rc" || true
fi

# ---------------------------------------------------------------------------------------------
# timer (PARTS=timer, not in the default PARTS): schedule lag at low rates and CPU per signup at
# each of TIMER_CPU_RATES, for each generator of TIMER_BINS ("name=path ..."; default: the built binary),
# the binaries alternating within each of TIMER_RUNS rounds (the first one rotating) so that a
# neighbour's build hits them alike. The target is always the bench's own binary.
TIMER_RUNS=${TIMER_RUNS:-$([[ $QUICK == 1 ]] && echo 2 || echo 3)}
TIMER_S=${TIMER_S:-$([[ $QUICK == 1 ]] && echo 5 || echo 10)}
TIMER_LAG_RATES=${TIMER_LAG_RATES:-20 100 200}   # signups/s: 100, 500 and 1 000 timer-started ops/s
TIMER_CPU_RATES=${TIMER_CPU_RATES:-1600 800}     # signups/s of the CPU steps

# timer_step NAME BINARY ROLE RATE: one signup step at RATE users/s with that generator.
# TIMER_ARGS_<NAME> adds flags to that generator's runs: the same binary twice, once with
# TIMER_ARGS_live="--stream … --metrics 127.0.0.1:0", prices the live outputs (bench/README.md).
timer_step() {
  local name=$1 gen=$2 role=$3 rate=$4 f="$SCEN/signup-$4-${TIMER_S}s.toml" rc=0 measured
  local args_var="TIMER_ARGS_${name//[^A-Za-z0-9_]/_}" extra=()
  read -r -a extra <<<"${!args_var:-}"
  STEP=$((STEP + 1))
  local seed=$((1000 + STEP)) dir="$OUT/steps/$STEP-timer-$name-$rate"
  [[ -f $f ]] || py signup-scenario "$rate" "$TIMER_S" >"$f"
  py wait-quiet "$QUIET_WAIT" "$GEN_CORE" "$TARGET_CORE"
  start_target "$STEP"
  measure_begin
  # The generator's voluntary context switches (getrusage of the finished child): how often its
  # threads went to sleep, i.e. how often something had to wake them — the cost the timer's
  # policy sets, counted without the noise that other load puts into CPU time.
  timeout --signal=INT --kill-after=10 $((TIMER_S + 60)) python3 -c '
import resource, subprocess, sys
rc = subprocess.call(sys.argv[2:])
r = resource.getrusage(resource.RUSAGE_CHILDREN)
open(sys.argv[1], "w").write(f"sleeps={r.ru_nvcsw} preempted={r.ru_nivcsw}\n"); sys.exit(rc)' \
    "$OUT/logs/run-$STEP.rusage" taskset -c "$GEN_CORE" "$gen" run "$f" --target "http://127.0.0.1:$PORT" \
    --out "$dir" --workers 1 --quiet --seed "$seed" "${ACCEPT_OVERLOAD[@]}" "${extra[@]}" >"$OUT/logs/run-$STEP.log" 2>&1 || rc=$?
  measured=$(measure_end)
  stop_target
  # shellcheck disable=SC2086,SC2046
  python3 "$ROOT/bench/timer.py" eval "$dir/summary.json" "$RESULTS" "bin=$name" "role=$role" \
    "rate=$rate" "seed=$seed" "rc=$rc" $measured $(cat "$OUT/logs/run-$STEP.rusage" 2>/dev/null) || true
}

if [[ " $PARTS " == *" timer "* ]]; then
  read -r -a TIMER_SPECS <<<"${TIMER_BINS:-$REV=$BIN}"
  TIMER_NAMES=() TIMER_PATHS=()
  for spec in "${TIMER_SPECS[@]}"; do
    # A private copy of each, as of the built binary above.
    cp "${spec#*=}" "$OUT/inrush-${spec%%=*}"
    TIMER_NAMES+=("${spec%%=*}") TIMER_PATHS+=("$OUT/inrush-${spec%%=*}")
  done
  py meta "$RESULTS" "timer_bins=${TIMER_BINS:-$REV=$BIN}" "timer_s=$TIMER_S" "timer_runs=$TIMER_RUNS"
  log "timer: ${TIMER_NAMES[*]}, $TIMER_RUNS rounds of ${TIMER_S}s steps at $TIMER_LAG_RATES signups/s (lag) and $TIMER_CPU_RATES signups/s (CPU)"
  n=${#TIMER_NAMES[@]}
  for ((round = 0; round < TIMER_RUNS; round++)); do
    for ((k = 0; k < n; k++)); do
      i=$(((round + k) % n))
      for rate in $TIMER_LAG_RATES; do
        timer_step "${TIMER_NAMES[i]}" "${TIMER_PATHS[i]}" lag "$rate"
      done
      for rate in $TIMER_CPU_RATES; do
        timer_step "${TIMER_NAMES[i]}" "${TIMER_PATHS[i]}" cpu "$rate"
      done
    done
  done
fi

# ---------------------------------------------------------------------------------------------
# keepalive_step SCHEME: KA_USERS users send GET /healthz back to back on one keep-alive
# connection each for KA_S seconds, against a fresh target served over SCHEME (http or https).
keepalive_step() {
  local scheme=$1 f="$SCEN/keepalive-$1.toml" rc=0 measured
  STEP=$((STEP + 1))
  local dir="$OUT/steps/$STEP-keepalive-$scheme"
  # The TLS run trusts the throwaway certificate as its CA (a path relative to the scenario).
  py keepalive-scenario "$KA_USERS" "$KA_S" "$([[ $scheme == https ]] && echo tls-cert.pem)" >"$f"
  py wait-quiet "$QUIET_WAIT" "$GEN_CORE" "$TARGET_CORE"
  start_target "$STEP" "$scheme"
  measure_begin
  timeout --signal=INT --kill-after=10 $((KA_S + 60)) \
    taskset -c "$GEN_CORE" "$BIN" run "$f" --target "$scheme://127.0.0.1:$PORT" \
    --out "$dir" --workers 1 --quiet --seed $((1000 + STEP)) "${ACCEPT_OVERLOAD[@]}" >"$OUT/logs/run-$STEP.log" 2>&1 || rc=$?
  measured=$(measure_end)
  stop_target
  # shellcheck disable=SC2086
  py keepalive-eval "$scheme" "$dir/summary.json" "$RESULTS" "users=$KA_USERS" "rc=$rc" $measured || true
}

if [[ " $PARTS " == *" tls "* ]]; then
  log "tls: $KA_USERS keep-alive users for ${KA_S}s, plain HTTP then HTTPS, same target build"
  # A throwaway P-256 certificate for localhost (not a CA: rustls trusts it as its own anchor).
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
    -addext basicConstraints=critical,CA:FALSE \
    -keyout "$SCEN/tls-key.pem" -out "$SCEN/tls-cert.pem" >"$OUT/logs/openssl.log" 2>&1
  for ((round = 0; round < KA_ROUNDS; round++)); do
    keepalive_step http
    keepalive_step https
  done
fi

# ---------------------------------------------------------------------------------------------
py meta "$RESULTS" "wall_s=$(($(date +%s) - T_START))"
py report "$RESULTS" >"$REPORT"
python3 "$ROOT/bench/timer.py" report "$RESULTS" >>"$REPORT"
echo
cat "$REPORT"
echo
log "table: $REPORT   raw data: $OUT"
