#!/usr/bin/env bash
# Generator instructions per tracked WebSocket message, counted by valgrind (cachegrind, no
# cache simulation): a count that other load on a shared machine does not move, unlike CPU time.
# See bench/README.md, "WebSocket messages against peers".
#
#   bench/ws_instructions.sh [GENERATOR_BINARY [ECHO_BINARY]]
#
# For each of bench/peers-ws-send.toml (fire-and-forget, each echo acking its message by id) and
# bench/peers-ws-await.toml (each echo awaited, and acking), one run of RUN_S seconds under
# callgrind against the bench's echo server (examples/ws_echo.rs, outside valgrind), and per
# tracked message sent: the instructions of the worker thread (tokio's LocalSet: the users'
# flows, the I/O driver, the timers) and of the users' flows alone (`run_user`), which grow with
# the messages, unlike the run's fixed costs (start-up, the report) that the whole program's
# count also holds. Under valgrind the generator is slower than the schedule, which only matters
# to fire-and-forget: its users send as fast as valgrind lets them (the work per message is the
# same). `callgrind_annotate` the files it names for the functions.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
GEN=${1:-$ROOT/target/release/inrush}
ECHO=${2:-$ROOT/target/release/examples/ws_echo}
RUN_S=${RUN_S:-4}
OUT=${OUT:-$(mktemp -d /tmp/inrush-ws-instructions.XXXXXX)}
mkdir -p "$OUT"
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 2; }
[[ -x $GEN && -x $ECHO ]] || cargo build --release --locked --quiet --bins --example ws_echo

ECHO_PID=""
trap '[[ -n $ECHO_PID ]] && kill "$ECHO_PID" 2>/dev/null || true' EXIT
"$ECHO" 127.0.0.1:0 "$OUT/echo-counts.json" >"$OUT/echo.out" 2>&1 &
ECHO_PID=$!
PORT=""
for _ in $(seq 100); do
  PORT=$(sed -n 's/^listening 127.0.0.1:\([0-9]*\)$/\1/p' "$OUT/echo.out")
  [[ -n $PORT ]] && break
  sleep 0.05
done
[[ -n $PORT ]] || { echo "the echo server did not start" >&2; exit 1; }

# count WORKLOAD → one table row
count() {
  local w=$1 file=$OUT/callgrind-$1.out
  valgrind --tool=callgrind --callgrind-out-file="$file" \
    "$GEN" run "$ROOT/bench/peers-$w.toml" --target "http://127.0.0.1:$PORT" \
    --duration "${RUN_S}s" --workers 1 --quiet --accept-overload --out "$OUT/run-$w" \
    >"$OUT/valgrind-$w.log" 2>&1
  callgrind_annotate --inclusive=yes "$file" >"$OUT/inclusive-$w.txt" 2>/dev/null
  python3 - "$w" "$OUT/inclusive-$w.txt" "$OUT/run-$w/summary.json" "$file" <<'PY'
import json, re, sys
w, incl, summary, profile = sys.argv[1:]
def cost(pattern):
    """The largest inclusive cost of the lines matching: a function's code shows under each
    function it was inlined into, named by its source file."""
    found = [int(line.split()[0].replace(",", "")) for line in open(incl)
             if re.search(pattern, line) and re.match(r"\s*[\d,]+ ", line)]
    return max(found, default=0)
total = cost(r"PROGRAM TOTALS")
worker = cost(r"tokio::task::local::LocalSet::tick \[")
# `run_user`'s body, wherever the compiler put it (its own function, or inlined into the task
# that awaits it: `closed_slot`, or the boxed future of an open arrival).
flows = cost(r"[ /]src/runtime/mod\.rs:|inrush::runtime::run_user::\{\{closure\}\} \[")
s = json.load(open(summary))
m = s["messages"]
errors = sum(x["errors"] for x in s["metrics"].values())
n = max(m["sent"], 1)
f = lambda x: f"{x / n:,.0f}".replace(",", " ")
print(f"| {w} | {f(worker)} | {f(flows)} | {f(total)} | {m['sent']} | {m['acked']} | {errors} | {profile} |")
PY
}

echo "| workload | worker thread / message | users' flows / message | whole program / message | messages sent | acked | errors | profile |"
echo "|---|---|---|---|---|---|---|---|"
for w in ws-send ws-await; do
  count "$w"
done
