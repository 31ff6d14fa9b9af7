#!/usr/bin/env bash
# Where a connected idle user's heap goes (bench/README.md, "Memory per connected user: where
# it goes"): USERS users sign up at RATE/s against `inrush serve` on 127.0.0.1 and stay online,
# idle, for HOLD_S; heaptrack records the generator, and its peak heap is grouped by the deepest
# inrush function on each allocation's stack, per user.
#
#   bench/heap_per_user.sh            # builds target/heap/release/inrush with glibc's malloc
#   bench/heap_per_user.sh BINARY     # a build with --features system-allocator
#
# heaptrack sees malloc, not mimalloc (the shipped allocator), hence the feature. The fixed part
# (metric histograms, buffers of the report) is divided by USERS too: read the per-user rows of
# the user's own task, socket and registry entry.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
USERS=${USERS:-4000}
RATE=${RATE:-400}
HOLD_S=${HOLD_S:-12}
TOP=${TOP:-20}
OUT=${OUT:-$(mktemp -d /tmp/inrush-heap.XXXXXX)}
mkdir -p "$OUT"
command -v heaptrack >/dev/null || { echo "heaptrack is needed (apt-get install heaptrack)" >&2; exit 2; }
command -v c++filt >/dev/null || { echo "c++filt is needed (binutils)" >&2; exit 2; }
BIN=${1:-}
if [[ -z $BIN ]]; then
  CARGO_TARGET_DIR=$ROOT/target/heap cargo build --release --locked --quiet --features system-allocator
  BIN=$ROOT/target/heap/release/inrush
fi
py() { python3 "$ROOT/bench/bench.py" "$@"; }

py hold-scenario "$USERS" "$RATE" "$HOLD_S" >"$OUT/hold.toml"
port=$(py freeport)
"$BIN" serve --listen "127.0.0.1:$port" >"$OUT/serve.log" 2>&1 &
SP=$!
trap 'kill "$SP" 2>/dev/null || true' EXIT
py wait-healthy "$port" 10 >/dev/null
heaptrack -o "$OUT/heaptrack.gen" "$BIN" run "$OUT/hold.toml" --target "http://127.0.0.1:$port" \
  --workers 1 --quiet --accept-overload --out "$OUT/run" >"$OUT/heaptrack.log" 2>&1
heaptrack_print "$OUT"/heaptrack.gen.* --flamegraph-cost-type peak -F "$OUT/peak.folded" >/dev/null 2>&1
python3 - "$OUT/peak.folded" "$OUT/run/summary.json" "$USERS" "$TOP" <<'PY'
import collections, json, re, subprocess, sys
folded, summary, users, top = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
s = json.load(open(summary))
online = s["peak_connections"]["websockets"]
assert online == users, f"{online} of {users} users were online: not the workload this measures"
stacks, frames = [], set()
for line in open(folded):
    stack, _, cost = line.rstrip("\n").rpartition(" ")
    fs = [re.sub(r" \([^)]*\)$", "", f) for f in stack.split(";")]
    stacks.append((fs, int(cost)))
    frames.update(fs)
frames = sorted(frames)
names = subprocess.run(["c++filt"], input="\n".join(frames), capture_output=True, text=True).stdout.splitlines()
# Demangled, without hashes and closure noise: `inrush::runtime::socket::<impl User>::open_socket`.
def tidy(n):
    n = re.sub(r"::h[0-9a-f]{16}$", "", n)
    n = n.replace("$LT$", "<").replace("$GT$", ">").replace("$u20$", " ").replace("..", "::")
    return re.sub(r"(::)?_?\$u7b\$\$u7b\$closure\$u7d\$\$u7d\$", "::{closure}", n)
name = {f: tidy(n) for f, n in zip(frames, names)}
per = collections.Counter()
total = 0
for fs, cost in stacks:
    total += cost
    ours = [name[f] for f in fs if name[f].lstrip("<").startswith("inrush::")]
    per[ours[-1] if ours else "(outside inrush: the runtime, the allocator's own)"] += cost
print(f"peak heap {total / 2**20:.1f} MiB with {users} users online: {total / users:,.0f} bytes per user")
print()
print("| bytes per user | deepest inrush function on the allocation's stack |")
print("|---:|---|")
for k, v in per.most_common(top):
    print(f"| {v / users:,.0f} | `{k}` |")
PY
echo "heaptrack data: $OUT"
