#!/usr/bin/env bash
# Source ports in TIME_WAIT (bench/README.md, "Source ports"): what connections the generator
# closes cost a source address, checked against `inrush plan`'s verdict. A signup flow drops its
# HTTP connection once its WebSocket is up, so every signup leaves one port in TIME_WAIT for 60 s.
# Against a remote target Linux does not reuse such ports (net.ipv4.tcp_tw_reuse = 2 reuses them
# only towards loopback); this script makes loopback behave like a remote target by setting
# tcp_tw_reuse = 0 for the runs (root needed; the old value is restored on exit, however the
# script ends), then runs the same churn — RATE signups/s, each online for 1 s — from 1, 2 and 3
# source addresses (127.0.0.2…) against `inrush serve` on 127.0.0.1, and prints per run what the
# plan said and what happened. Nothing leaves loopback.
#
#   bench/time_wait.sh [GENERATOR_BINARY]     # ~7 minutes: 3 runs of 75 s, each after the
#                                             # previous run's TIME_WAIT has cleared
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
BIN=${1:-$ROOT/target/release/inrush}
RATE=${RATE:-600}
SECONDS_EACH=${SECONDS_EACH:-75}
ADDRESSES=${ADDRESSES:-1 2 3}
OUT=${OUT:-$(mktemp -d /tmp/inrush-time-wait.XXXXXX)}
mkdir -p "$OUT"
SYSCTL=/proc/sys/net/ipv4/tcp_tw_reuse
[[ -x $BIN ]] || cargo build --release --locked --quiet
[[ -w $SYSCTL ]] || { echo "root is needed to set $SYSCTL for the runs" >&2; exit 2; }
py() { python3 "$ROOT/bench/bench.py" "$@"; }

OLD=$(cat "$SYSCTL")
SP=""
cleanup() {
  echo "$OLD" >"$SYSCTL"
  [[ -z $SP ]] || kill "$SP" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

time_wait_count() { ss -tan state time-wait | tail -n +2 | wc -l; }

echo "| source addresses | plan: ports per address (open + TIME_WAIT) | plan: source addresses needed | started / planned | dropped | schedule lag p99 ms | errors | generator CPU-s |"
echo "|---:|---|---:|---:|---:|---:|---:|---:|"
for n in $ADDRESSES; do
  port=$(py freeport)
  last=$((n + 1))
  f="$OUT/churn-$n.toml"
  cat >"$f" <<TOML
name = "churn"
seed = 3
[target]
url = "http://127.0.0.1:$port"
[run]
drain = "1s"
source_addresses = ["127.0.0.2-127.0.0.$last"]
[load]
arrivals = "uniform"
phases = [ { name = "steady", duration = "${SECONDS_EACH}s", rate = $RATE } ]
[user]
messages = 0
contacts_known = 0
contacts_unknown = 0
stay_online = { constant = "1s" }
TOML
  # The previous run's ports must be free again, or they would count against this one.
  while (($(time_wait_count) > 200)); do sleep 2; done
  echo 0 >"$SYSCTL"
  "$BIN" plan "$f" --out "$OUT/plan-$n" >"$OUT/plan-$n.txt"
  "$BIN" serve --listen "127.0.0.1:$port" >"$OUT/serve-$n.log" 2>&1 &
  SP=$!
  py wait-healthy "$port" 10
  rc=0
  timeout $((SECONDS_EACH + 60)) "$BIN" run "$f" --out "$OUT/run-$n" --quiet --accept-overload \
    >"$OUT/run-$n.log" 2>&1 || rc=$?
  echo "$OLD" >"$SYSCTL"
  kill "$SP" 2>/dev/null || true
  wait "$SP" 2>/dev/null || true
  SP=""
  python3 - "$OUT/plan-$n/plan.json" "$OUT/run-$n/summary.json" "$n" "$rc" <<'PY'
import json, sys
plan, s = (json.load(open(p)) for p in sys.argv[1:3])
n, rc = sys.argv[3], sys.argv[4]
r, a = plan["resources"], s["arrivals"]
errors = sum(m.get("errors", 0) for m in s["metrics"].values())
# The verdict's count: all addresses' ports over what one address connects quickly from (half
# its range, os_limits::connect_ports).
fast = max(plan["machine"]["ports_per_address"] // 2, 1)
needed = -(-r["ports_per_source_address"] * int(n) // fast)
print(f"| {n} | {r['ports_per_source_address']:,} ({r['ports_per_source_address'] - r['time_wait_per_source_address']:,} + "
      f"{r['time_wait_per_source_address']:,}) | {needed} | "
      f"{a['started']:,} / {a['planned']:,} | {a['dropped']:,} | {a['schedule_lag_ms']['p99']:.1f} | {errors:,} | "
      f"{s['generator']['cpu_seconds']:.1f} |" + ("" if rc == "0" else f" (exit {rc})"))
PY
done
echo "runs and plans: $OUT"
