#!/usr/bin/env bash
# Generator instructions per keep-alive request, plain HTTP and TLS, counted by valgrind
# (cachegrind, no cache simulation): a count that other load on a shared machine does not move,
# unlike CPU time. See bench/README.md, "Instructions per request".
#
#   bench/instructions.sh [GENERATOR_BINARY [TARGET_BINARY]]
#
# Each scheme is run twice under cachegrind, SHORT_S and LONG_S seconds of KA_USERS keep-alive
# users sending GET /healthz back to back; the difference between the two runs (instructions ÷
# requests) is the marginal cost of a request, free of the fixed costs of a run (start-up, the
# handshakes, writing the report). A GENERATOR_BINARY without TLS (an older build) is measured
# plain only. The verdict is not the point (valgrind slows the generator far below its schedule:
# --accept-overload). The targets (TARGET_BINARY, default the working tree's release build) run outside
# valgrind on 127.0.0.1. Prints one Markdown table.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
GEN=${1:-$ROOT/target/release/inrush}
TGT=${2:-$ROOT/target/release/inrush}
KA_USERS=${KA_USERS:-8}
SHORT_S=${SHORT_S:-2}
LONG_S=${LONG_S:-6}
OUT=${OUT:-$(mktemp -d /tmp/inrush-instructions.XXXXXX)}
mkdir -p "$OUT"
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 2; }
[[ -x $TGT ]] || cargo build --release --locked --quiet
py() { python3 "$ROOT/bench/bench.py" "$@"; }

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
  -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
  -addext basicConstraints=critical,CA:FALSE \
  -keyout "$OUT/tls-key.pem" -out "$OUT/tls-cert.pem" >"$OUT/openssl.log" 2>&1

PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
PLAIN=$(py freeport)
"$TGT" serve --listen "127.0.0.1:$PLAIN" >"$OUT/serve-http.log" 2>&1 &
PIDS+=($!)
py wait-healthy "$PLAIN" 10
SCHEMES=(http)
if "$GEN" serve --help 2>/dev/null | grep -q -- --tls-cert; then
  TLS=$(py freeport)
  "$TGT" serve --listen "127.0.0.1:$TLS" --tls-cert "$OUT/tls-cert.pem" --tls-key "$OUT/tls-key.pem" \
    >"$OUT/serve-https.log" 2>&1 &
  PIDS+=($!)
  py wait-healthy "$TLS" 10 https
  SCHEMES+=(https)
fi

# count SCHEME SECONDS → "instructions requests"
count() {
  local scheme=$1 s=$2 port ca=""
  port=$([[ $scheme == https ]] && echo "$TLS" || echo "$PLAIN")
  [[ $scheme == https ]] && ca=tls-cert.pem
  py keepalive-scenario "$KA_USERS" "$s" $ca >"$OUT/ka-$scheme-$s.toml"
  valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file="$OUT/cg-$scheme-$s.out" \
    "$GEN" run "$OUT/ka-$scheme-$s.toml" --target "$scheme://127.0.0.1:$port" --workers 1 --quiet --accept-overload \
    --seed 1 --out "$OUT/run-$scheme-$s" >"$OUT/valgrind-$scheme-$s.log" 2>&1
  python3 - "$OUT/cg-$scheme-$s.out" "$OUT/run-$scheme-$s/summary.json" <<'PY'
import json, sys
ir = next(int(l.split()[1]) for l in open(sys.argv[1]) if l.startswith("summary:"))
s = json.load(open(sys.argv[2]))
h = s["metrics"]["health"]
assert h["errors"] == 0, h
print(ir, h["count"])
PY
}

echo "| generator | scheme | requests (${SHORT_S} s / ${LONG_S} s) | instructions per request (marginal) |"
echo "|---|---|---:|---:|"
for scheme in "${SCHEMES[@]}"; do
  read -r i1 r1 < <(count "$scheme" "$SHORT_S")
  read -r i2 r2 < <(count "$scheme" "$LONG_S")
  python3 -c 'import sys; i1,r1,i2,r2=map(int,sys.argv[3:]); print(f"| {sys.argv[1]} | {sys.argv[2]} | {r1:,} / {r2:,} | {(i2-i1)/max(r2-r1,1):,.0f} |")' \
    "${LABEL:-$GEN}" "$scheme" "$i1" "$r1" "$i2" "$r2"
done
