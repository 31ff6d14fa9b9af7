#!/bin/bash
# One process vs 4 shards of scenarios/quickstart.toml, each set against its own `inrush serve`
# (same seed, same phones: one target each), then `inrush merge`. Run from the repository root:
#   INRUSH=target/debug/inrush docs/examples/shards-vs-one.sh /tmp/shards-example
# Figures from it are in docs/distributed.md ("A measured example").
set -u
B=${INRUSH:-inrush}
S=$(pwd)/scenarios/quickstart.toml
OUT=${1:?usage: shards-vs-one.sh OUTDIR}
mkdir -p "$OUT" && cd "$OUT" || exit 2
$B serve --listen 127.0.0.1:18601 --sms-delay 100ms --sms-rate 400 >/dev/null 2>&1 & P1=$!
$B serve --listen 127.0.0.1:18602 --sms-delay 100ms --sms-rate 400 >/dev/null 2>&1 & P2=$!
trap 'kill $P1 $P2' EXIT
sleep 1
$B run "$S" --target http://127.0.0.1:18601 --workers 1 --out one --quiet --accept-overload
AT=$(date -u -d '+2 sec' +%Y-%m-%dT%H:%M:%S.%3NZ)
for i in 0 1 2 3; do
  $B run "$S" --target http://127.0.0.1:18602 --workers 1 --shard $i/4 --start-at "$AT" \
    --out shard-$i --quiet --accept-overload &
done
wait %3 %4 %5 %6
/usr/bin/time -f "merge: %e s" $B merge shard-0 shard-1 shard-2 shard-3 --out merged --quiet
