#!/usr/bin/env bash
# Generator instructions per tracked WebSocket message, counted by valgrind (cachegrind, no
# cache simulation): a count that other load on a shared machine does not move, unlike CPU time.
# See bench/README.md, "WebSocket messages against peers".
#
#   bench/ws_instructions.sh [GENERATOR_BINARY [ECHO_BINARY]]
#
# For each of bench/peers-ws-send.toml (fire-and-forget, each echo acking its message by id) and
# bench/peers-ws-await.toml (each echo awaited, and acking), two runs under cachegrind of SHORT_S
# and LONG_S seconds against the bench's echo server (examples/ws_echo.rs, outside valgrind);
# the difference (instructions ÷ messages acked) is the marginal cost of a message, free of the
# run's fixed costs (start-up, handshakes, the report). Under valgrind the generator is slower
# than the schedule, which only matters to fire-and-forget: its users send as fast as valgrind
# lets them (the per-message work is the same). With CALLGRIND=1 the LONG_S runs are also
# profiled by function (callgrind; `callgrind_annotate` the files it names).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
GEN=${1:-$ROOT/target/release/inrush}
ECHO=${2:-$ROOT/target/release/examples/ws_echo}
SHORT_S=${SHORT_S:-2}
LONG_S=${LONG_S:-5}
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

# count WORKLOAD SECONDS TOOL → "instructions messages_acked"
count() {
  local w=$1 s=$2 tool=$3 file
  file=$OUT/$tool-$w-$s.out
  local opts=(--tool=cachegrind --cache-sim=no --cachegrind-out-file="$file")
  [[ $tool == callgrind ]] && opts=(--tool=callgrind --callgrind-out-file="$file")
  valgrind "${opts[@]}" "$GEN" run "$ROOT/bench/peers-$w.toml" --target "http://127.0.0.1:$PORT" \
    --duration "${s}s" --workers 1 --quiet --accept-overload --out "$OUT/run-$tool-$w-$s" \
    >"$OUT/valgrind-$tool-$w-$s.log" 2>&1
  python3 - "$file" "$OUT/run-$tool-$w-$s/summary.json" <<'PY'
import json, sys
total = 0
for line in open(sys.argv[1]):
    if line.startswith("summary:") or line.startswith("totals:"):
        total = int(line.split()[1])
s = json.load(open(sys.argv[2]))
print(total, s["messages"]["acked"])
PY
}

echo "| workload | instructions per message (marginal) | messages (long run) | errors |"
echo "|---|---|---|---|"
for w in ws-send ws-await; do
  read -r i1 n1 < <(count "$w" "$SHORT_S" cachegrind)
  read -r i2 n2 < <(count "$w" "$LONG_S" cachegrind)
  errors=$(python3 -c "import json,sys; s=json.load(open(sys.argv[1])); print(sum(m['errors'] for m in s['metrics'].values()))" "$OUT/run-cachegrind-$w-$LONG_S/summary.json")
  per=$(python3 -c "print(f'{($i2 - $i1) / max($n2 - $n1, 1):,.0f}'.replace(',', ' '))")
  echo "| $w | $per | $n2 | $errors |"
  if [[ ${CALLGRIND:-0} == 1 ]]; then
    count "$w" "$LONG_S" callgrind >/dev/null
    echo "(profile: $OUT/callgrind-$w-$LONG_S.out)"
  fi
done
echo
echo "(files in $OUT)"
