#!/usr/bin/env bash
# What the live outputs cost the generator, in instructions per signup counted by valgrind
# (cachegrind, no cache simulation): a count other load on a shared machine does not move,
# unlike CPU time (issue 14: "generator CPU per signup within +5 % with all three on").
# See bench/README.md, "Live outputs: overhead".
#
#   bench/live_overhead.sh [GENERATOR_BINARY [TARGET_BINARY]]
#
# Two modes, the same signup scenario (RATE signups/s, Poisson, the bench's signup flow):
#   plain  no live output;
#   live   --stream FILE --metrics ADDR --dashboard ADDR, with a scraper reading /metrics every
#          second and a browser-like client holding the dashboard's event stream open.
# Each mode runs SHORT_S and LONG_S seconds under cachegrind; the difference between the two is
# the marginal cost of a second of the run (RATE signups plus one interval of every output), free
# of start-up and of writing the report. The target (TARGET_BINARY, default the working tree's
# release build; a fresh one per run) runs outside valgrind on 127.0.0.1. Prints one Markdown table; the overhead at
# other rates follows from the two figures it prints (the outputs cost per interval, the users
# per signup).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
GEN=${1:-$ROOT/target/release/inrush}
TGT=${2:-$ROOT/target/release/inrush}
RATE=${RATE:-40}
SHORT_S=${SHORT_S:-4}
LONG_S=${LONG_S:-12}
OUT=${OUT:-$(mktemp -d /tmp/inrush-live-overhead.XXXXXX)}
mkdir -p "$OUT"
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 2; }
command -v curl >/dev/null || { echo "curl is needed (apt-get install curl)" >&2; exit 2; }
[[ -x $GEN && -x $TGT ]] || cargo build --release --locked --quiet
py() { python3 "$ROOT/bench/bench.py" "$@"; }

# count MODE SECONDS → "instructions started_users". Every run has a fresh target: the same
# seed signs up the same phones, which a target that kept them would refuse (409).
count() {
  local mode=$1 s=$2 live=() metrics dashboard watchers=() port target
  port=$(py freeport)
  "$TGT" serve --listen "127.0.0.1:$port" >"$OUT/serve-$mode-$s.log" 2>&1 &
  target=$!
  watchers+=("$target")
  py wait-healthy "$port" 10 >/dev/null
  py signup-scenario "$RATE" "$s" >"$OUT/signup-$s.toml"
  if [[ $mode == live ]]; then
    metrics=$(py freeport)
    dashboard=$(py freeport)
    live=(--stream "$OUT/stream-$s.jsonl" --metrics "127.0.0.1:$metrics" --dashboard "127.0.0.1:$dashboard")
    # A Prometheus scraping every second (a tight scrape interval) and an open dashboard page.
    # (Their output goes nowhere: they must not hold the pipe `count` answers through.)
    (while :; do curl -s "http://127.0.0.1:$metrics/metrics" || true; sleep 1; done) >/dev/null 2>&1 &
    watchers+=($!)
    (while :; do curl -sN "http://127.0.0.1:$dashboard/events" || true; sleep 0.2; done) >/dev/null 2>&1 &
    watchers+=($!)
  fi
  # The verdict does not matter here (exit 1 is fine); a run that did not finish does.
  valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file="$OUT/cg-$mode-$s.out" \
    "$GEN" run "$OUT/signup-$s.toml" --target "http://127.0.0.1:$port" --workers 1 --quiet \
    --accept-overload --seed 1 --out "$OUT/run-$mode-$s" "${live[@]}" \
    >"$OUT/valgrind-$mode-$s.log" 2>&1 || true
  for w in "${watchers[@]}"; do kill "$w" 2>/dev/null || true; done
  python3 - "$OUT/cg-$mode-$s.out" "$OUT/run-$mode-$s/summary.json" <<'PY'
import json, sys
ir = next(int(l.split()[1]) for l in open(sys.argv[1]) if l.startswith("summary:"))
s = json.load(open(sys.argv[2]))
errors = sum(m["errors"] for m in s["metrics"].values())
assert errors == 0, f"{sys.argv[2]}: {errors} errors: not the workload this measures"
print(ir, s["arrivals"]["started"])
PY
}

read -r p1 u1 < <(count plain "$SHORT_S")
read -r p2 u2 < <(count plain "$LONG_S")
read -r l1 v1 < <(count live "$SHORT_S")
read -r l2 v2 < <(count live "$LONG_S")
python3 - "$RATE" "$SHORT_S" "$LONG_S" "$p1" "$u1" "$p2" "$u2" "$l1" "$v1" "$l2" "$v2" <<'PY'
import sys
rate, short, long_ = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
p1, u1, p2, u2, l1, v1, l2, v2 = map(int, sys.argv[4:])
span = long_ - short
plain_per_s = (p2 - p1) / span
live_per_s = (l2 - l1) / span
per_signup = (p2 - p1) / max(u2 - u1, 1)
per_signup_live = (l2 - l1) / max(v2 - v1, 1)
outputs_per_s = live_per_s - plain_per_s
print(f"| mode | users ({short:.0f} s / {long_:.0f} s) | instructions per second of run (marginal) | per signup |")
print("|---|---:|---:|---:|")
print(f"| plain | {u1:,} / {u2:,} | {plain_per_s:,.0f} | {per_signup:,.0f} |")
print(f"| live (stream, metrics + scraper, dashboard + client) | {v1:,} / {v2:,} | {live_per_s:,.0f} | {per_signup_live:,.0f} |")
print()
print(f"live outputs: {outputs_per_s:,.0f} instructions per second (one interval), "
      f"{100 * (per_signup_live / per_signup - 1):+.1f} % per signup at {rate:.0f} signups/s")
for r in (100, 800):
    print(f"  at {r} signups/s: {100 * outputs_per_s / (r * per_signup):+.2f} % per signup")
PY
