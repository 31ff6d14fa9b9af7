#!/usr/bin/env bash
# inrush against its peers on the same HTTP workloads, per generator CPU-second (issue 16):
#
#   (a) keepalive: GET of a small static file over 64 kept-alive connections, closed loop, 10 s —
#       wrk (Debian, `wrk -t1 -c64 -d10s`) vs inrush (bench/peers-keepalive.toml: 64 closed
#       users looping GET, connections = "per_user");
#   (b) rate: a constant 5 000 requests/s for 10 s — oha (crates.io, `oha -q 5000 -z 10s -c 64`)
#       vs inrush (bench/peers-rate.toml: 5 000 arrivals/s of one GET, connections = { pool = 64 }),
#       and inrush with the same arrivals each on its own new connection ("per_user");
#   (c) ws-send, ws-burst and ws-await: tracked WebSocket messages against the bench's echo
#       server, inrush vs Tsung (Debian) — bench/peers-ws.sh, which says how.
#
# The target is Debian's nginx (installed with apt-get when missing), one worker process pinned
# to core TARGET_CORE (0), serving a 13-byte file on 127.0.0.1 from a config in a temp dir; every
# generator runs pinned to core GEN_CORE (1) with one thread. For each run: requests completed
# (lines of nginx's access log for that run, nginx being restarted per run; the tool's own count
# beside it), generator CPU-seconds (user + system from getrusage of the child, the same for every
# tool), requests per generator CPU-second. RUNS (3) runs of each, tools alternating; the table
# gives medians and the ratio inrush/peer, and is printed and written to reports/peers-<stamp>.md
# (the raw runs in reports/peers-<stamp>/). All traffic goes to 127.0.0.1.
#
#   bench/peers.sh                  # ~3 minutes
#   RUNS=5 SECONDS_EACH=20 bench/peers.sh
#   PARTS=keepalive bench/peers.sh  # one workload
#   PARTS="ws-send ws-burst ws-await" bench/peers.sh   # the WebSocket workloads (peers-ws.sh)
#   FLOOR=1 PARTS=ws-send bench/peers.sh   # with examples/ws_floor.rs, the kernel's floor for
#                                   # that load, as a third tool (peers-ws.sh says how)
#   BENCH_BIN=path/to/inrush bench/peers.sh   # that binary instead of a release build of the tree
#   BASELINE_BIN=path/to/older/inrush bench/peers.sh   # each inrush run followed by the same run
#                                   # of that binary ("inrush-baseline"): before/after, alternating
#   PER_USER=0 bench/peers.sh       # without the rate part's new-connection-per-arrival runs
#
# Quiet-machine gate (as bench/run.sh): before each run it waits up to QUIET_WAIT s for both
# pinned cores to be idle, and every run records the other load on the pinned cores during it
# (their busy time minus the generator's and nginx's own CPU); a run with more than 0.10
# CPU-s/s of it is marked disturbed in the table. Ratios are only comparable within one sitting.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
PY="$ROOT/bench/peers.py"
RUNS=${RUNS:-3}
SECONDS_EACH=${SECONDS_EACH:-10}
RATE=${RATE:-5000}
CONNS=64   # as in bench/peers-*.toml (closed users, pool)
QUIET_WAIT=${QUIET_WAIT:-10}
PARTS=${PARTS:-keepalive rate ws-send ws-burst ws-await}
TARGET_CORE=${TARGET_CORE:-0}
GEN_CORE=${GEN_CORE:-1}
export TARGET_CORE GEN_CORE
TOOLS=$ROOT/bench/.tools   # oha is installed here (git-ignored)

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=${OUT:-$ROOT/reports/peers-$STAMP}
REPORT=${REPORT:-$OUT.md}
mkdir -p "$OUT/logs" "$OUT/runs"
RESULTS=$OUT/results.jsonl
: >"$RESULTS"
log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*"; }

# --- tools -----------------------------------------------------------------------------------
apt_install() {  # apt_install PACKAGE...: Debian's packages, once
  log "installing $* from Debian"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@") \
    >>"$OUT/logs/apt.log" 2>&1
}
# The HTTP parts' tools, only when an HTTP part runs (oha's first install takes minutes).
HTTP_PARTS=false
[[ " $PARTS " == *" keepalive "* || " $PARTS " == *" rate "* ]] && HTTP_PARTS=true
$HTTP_PARTS && { command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || apt_install nginx; }
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
$HTTP_PARTS && { command -v wrk >/dev/null || apt_install wrk; }
if $HTTP_PARTS && [[ ! -x $TOOLS/bin/oha ]]; then
  log "installing oha from crates.io into $TOOLS (cargo install --locked; minutes, once)"
  CARGO_TARGET_DIR=$TOOLS/build cargo install --locked --root "$TOOLS" oha >"$OUT/logs/oha-install.log" 2>&1
  rm -rf "$TOOLS/build"
fi
OHA=$TOOLS/bin/oha

if [[ -n ${BENCH_BIN:-} ]]; then
  BIN=$BENCH_BIN
  REV="$(git rev-parse --short HEAD) tree, binary $BENCH_BIN"
else
  log "building inrush (release)"
  cargo build --release --locked --quiet
  BIN=$ROOT/target/release/inrush
  REV=$(git rev-parse --short HEAD)
  git diff --quiet HEAD -- src Cargo.toml Cargo.lock bench 2>/dev/null || REV="$REV+uncommitted"
fi

# The WebSocket parts: their tools and runs (tracked messages against the bench's echo server).
source "$ROOT/bench/peers-ws.sh"
source "$ROOT/bench/nginx_site.sh"
[[ " $PARTS " == *" ws-"* ]] && ws_tools

python3 "$PY" meta "$RESULTS" "date=$(date -u '+%Y-%m-%d %H:%M UTC')" "commit=$REV" \
  "cpus=$(nproc)" "cpu_model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" \
  "nginx=$("$NGINX" -v 2>&1 | sed 's/.*nginx\///')" "runs=$RUNS" \
  "target_core=$TARGET_CORE" "gen_core=$GEN_CORE" \
  "wrk=$(wrk -v 2>&1 | head -1 | awk '{print $2}')" "oha=$("$OHA" --version 2>/dev/null | awk '{print $2}')"

# --- nginx -----------------------------------------------------------------------------------
NG=$(mktemp -d)
NGINX_PID=""
stop_nginx() {
  if [[ -n $NGINX_PID ]]; then
    kill -QUIT "$NGINX_PID" 2>/dev/null || true   # graceful: flushes the access log
    wait "$NGINX_PID" 2>/dev/null || true
    NGINX_PID=""
  fi
}
trap 'stop_nginx; stop_echo; rm -rf "$NG" "${WS_TMP:-}"' EXIT
trap 'stop_nginx; stop_echo; rm -rf "$NG" "${WS_TMP:-}"; exit 130' INT TERM
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# One short line per request: the bench counts them.
nginx_site "$NG" "$PORT" "log_format status '\$status'; access_log $NG/access.log status buffer=256k flush=1s;"
start_nginx() {
  rm -f "$NG/access.log"
  taskset -c "$TARGET_CORE" "$NGINX" -p "$NG" -c "$NG/nginx.conf" >"$OUT/logs/nginx.out" 2>&1 &
  NGINX_PID=$!
  for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$PORT/ready" && break
    sleep 0.05
  done
}
served() {  # lines of the access log (nginx flushed it on its graceful exit)
  wc -l <"$NG/access.log" 2>/dev/null || echo 0
}
status_200() {
  grep -c '^200$' "$NG/access.log" 2>/dev/null || true
}

# --- one run of one tool ---------------------------------------------------------------------
# measure WORKLOAD TOOL RUN OWN_COUNT_CMD -- GENERATOR CMD...
one_run() {
  local workload=$1 tool=$2 run=$3
  shift 3
  local name="$workload-$tool-$run"
  python3 "$ROOT/bench/bench.py" wait-quiet "$QUIET_WAIT" "$GEN_CORE" "$TARGET_CORE"
  start_nginx
  log "$workload $tool run $run: $*"
  TARGET_PID=$NGINX_PID timeout $((SECONDS_EACH + 60)) \
    python3 "$PY" measure "$OUT/runs/$name.json" taskset -c "$GEN_CORE" "$@" \
    >"$OUT/logs/$name.out" 2>&1 || true
  stop_nginx
  local n ok200 own errors lag=""
  n=$(served)
  ok200=$(status_200)
  case $tool in
    wrk) read -r own errors < <(python3 "$PY" wrk-count "$OUT/logs/$name.out") ;;
    oha) read -r own errors < <(python3 "$PY" oha-count "$OUT/logs/$name.out") ;;
    inrush*) read -r own errors lag < <(python3 "$PY" summary-counts "$OUT/runs/$name/summary.json" get) ;;
  esac
  python3 "$PY" record "$RESULTS" "$OUT/runs/$name.json" "workload=$workload" "tool=$tool" \
    "run=$run" "served=$n" "status_200=$ok200" "own_count=$own" "errors=$errors" \
    ${lag:+"lag_p99_ms=$lag"}
  log "  served $n (200: $ok200), tool counted $own, errors $errors"
}

for run in $(seq "$RUNS"); do
  if [[ " $PARTS " == *" keepalive "* ]]; then
    one_run keepalive wrk "$run" wrk -t1 -c"$CONNS" -d"${SECONDS_EACH}s" "http://127.0.0.1:$PORT/small.txt"
    one_run keepalive inrush "$run" "$BIN" run "$ROOT/bench/peers-keepalive.toml" \
      --target "http://127.0.0.1:$PORT" --duration "${SECONDS_EACH}s" --workers 1 --quiet \
      --accept-overload --out "$OUT/runs/keepalive-inrush-$run"
    if [[ -n ${BASELINE_BIN:-} ]]; then
      one_run keepalive inrush-baseline "$run" "$BASELINE_BIN" run "$ROOT/bench/peers-keepalive.toml" \
        --target "http://127.0.0.1:$PORT" --duration "${SECONDS_EACH}s" --workers 1 --quiet \
        --accept-overload --out "$OUT/runs/keepalive-inrush-baseline-$run"
    fi
  fi
  if [[ " $PARTS " == *" rate "* ]]; then
    one_run rate oha "$run" "$OHA" -q "$RATE" -z "${SECONDS_EACH}s" -c "$CONNS" --no-tui \
      --output-format json "http://127.0.0.1:$PORT/small.txt"
    one_run rate inrush "$run" "$BIN" run "$ROOT/bench/peers-rate.toml" \
      --target "http://127.0.0.1:$PORT" --duration "${SECONDS_EACH}s" --workers 1 --quiet \
      --accept-overload --rate-scale "$(python3 -c "print($RATE / 5000)")" \
      --out "$OUT/runs/rate-inrush-$run"
    if [[ -n ${BASELINE_BIN:-} ]]; then
      one_run rate inrush-baseline "$run" "$BASELINE_BIN" run "$ROOT/bench/peers-rate.toml" \
        --target "http://127.0.0.1:$PORT" --duration "${SECONDS_EACH}s" --workers 1 --quiet \
        --accept-overload --rate-scale "$(python3 -c "print($RATE / 5000)")" \
        --out "$OUT/runs/rate-inrush-baseline-$run"
    fi
    [[ ${PER_USER:-1} == 0 ]] && continue
    # The same arrivals without the pool: each opens its own connection (connect, accept and
    # close per request), what every rate run cost before `[run] connections`.
    sed 's/^connections = .*/connections = "per_user"/' "$ROOT/bench/peers-rate.toml" >"$NG/per-user.toml"
    one_run rate inrush-per_user "$run" "$BIN" run "$NG/per-user.toml" \
      --target "http://127.0.0.1:$PORT" --duration "${SECONDS_EACH}s" --workers 1 --quiet \
      --accept-overload --rate-scale "$(python3 -c "print($RATE / 5000)")" \
      --out "$OUT/runs/rate-inrush-per_user-$run"
  fi
  ws_runs "$run"
done

python3 "$PY" table "$RESULTS" "$REPORT"
log "table: $REPORT"
