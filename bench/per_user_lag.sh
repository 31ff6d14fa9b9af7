#!/usr/bin/env bash
# Schedule lag with a new connection per arrival (issue 16): builds A/B, runs alternating.
#
#   bench/per_user_lag.sh LABEL=BINARY [LABEL=BINARY...]
#   RATE=10000 RUNS=5 SECONDS_EACH=10 CONNECTIONS='"per_user"' bench/per_user_lag.sh \
#       main=/tmp/inrush-main branch=target/release/inrush
#
# bench/peers-rate.toml (one GET of a 13-byte file per arrival, uniform arrivals) at RATE
# arrivals/s with `connections = CONNECTIONS` ("per_user": each arrival opens its own TCP
# connection and closes it), against one nginx worker pinned to TARGET_CORE (0), each build
# pinned to GEN_CORE (1) with one worker, the builds alternating run by run. Before each run it
# waits up to QUIET_WAIT s for both cores to be idle (bench/bench.py wait-quiet); every run
# records the other load on the pinned cores (bench/peers.py measure: busy time minus the
# generator's and nginx's own), and a run above 0.10 CPU-s/s of it is marked disturbed.
# Per run: schedule lag p50/p99/max (summary.json), the generator's CPU-s (user + system of the
# process, getrusage), the worker thread's mean busy share (timeline.json), the host's TIME_WAIT
# count before the run. Then medians per build, over all runs and over the undisturbed ones.
# All traffic goes to 127.0.0.1. Output: reports/per-user-lag-<stamp>/ (runs and results.jsonl).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
source "$ROOT/bench/nginx_site.sh"
RATE=${RATE:-10000}
RUNS=${RUNS:-5}
SECONDS_EACH=${SECONDS_EACH:-10}
CONNECTIONS=${CONNECTIONS:-'"per_user"'}
QUIET_WAIT=${QUIET_WAIT:-30}
TARGET_CORE=${TARGET_CORE:-0}
GEN_CORE=${GEN_CORE:-1}
export TARGET_CORE GEN_CORE
[[ $# -ge 1 ]] || { sed -n 2,5p "$0"; exit 2; }
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[[ -x $NGINX ]] || { echo "needs nginx (apt-get install nginx)" >&2; exit 2; }

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=${OUT:-$ROOT/reports/per-user-lag-$STAMP}
mkdir -p "$OUT"
RESULTS=$OUT/results.jsonl
: >"$RESULTS"

NG=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
nginx_site "$NG" "$PORT" "access_log off;"
taskset -c "$TARGET_CORE" "$NGINX" -p "$NG" -c "$NG/nginx.conf" >"$OUT/nginx.out" 2>&1 &
NGINX_PID=$!
trap 'kill -QUIT $NGINX_PID 2>/dev/null; wait $NGINX_PID 2>/dev/null; rm -rf "$NG"' EXIT
for _ in $(seq 100); do
  curl -s -o /dev/null "http://127.0.0.1:$PORT/ready" && break
  sleep 0.05
done
sed "s/^connections = .*/connections = $CONNECTIONS/" "$ROOT/bench/peers-rate.toml" >"$NG/scenario.toml"
SCALE=$(python3 -c "print($RATE / 5000)")

for run in $(seq "$RUNS"); do
  for spec in "$@"; do
    label=${spec%%=*}
    bin=${spec#*=}
    name=$label-$run
    python3 "$ROOT/bench/bench.py" wait-quiet "$QUIET_WAIT" "$GEN_CORE" "$TARGET_CORE"
    tw=$(awk '/^TCP:/ { for (i = 1; i < NF; i++) if ($i == "tw") print $(i + 1) }' /proc/net/sockstat)
    TARGET_PID=$NGINX_PID python3 "$ROOT/bench/peers.py" measure "$OUT/$name.json" \
      taskset -c "$GEN_CORE" "$bin" run "$NG/scenario.toml" --target "http://127.0.0.1:$PORT" \
      --duration "${SECONDS_EACH}s" --workers 1 --quiet --accept-overload --rate-scale "$SCALE" \
      --out "$OUT/$name" >"$OUT/$name.out" 2>&1 || true
    python3 "$ROOT/bench/per_user_lag.py" record "$RESULTS" "$label" "$run" "$OUT/$name.json" \
      "$OUT/$name" "$tw"
  done
done
python3 "$ROOT/bench/per_user_lag.py" table "$RESULTS" | tee "$OUT/table.md"
