#!/bin/sh
# The container's entrypoint for one shard of an Indexed Job: the pod's completion index
# (JOB_COMPLETION_INDEX, set by Kubernetes for `completionMode: Indexed`) is its shard, of
# INRUSH_SHARDS (the Job's `completions`). Its run directory goes to the shared results volume:
#   $INRUSH_RESULTS/$INRUSH_RUN_ID/shard-<index>
# where the merge Job (merge-job.yaml) finds every shard's. Other `inrush run` flags come from
# the environment (INRUSH_START_AT, INRUSH_TARGET, INRUSH_SEED, INRUSH_WORKERS, … see
# `inrush run --help`) or as arguments to this script.
set -eu

if [ -z "${JOB_COMPLETION_INDEX:-}" ]; then
  echo "error: JOB_COMPLETION_INDEX is not set: run this as a pod of an Indexed Job (completionMode: Indexed)" >&2
  exit 2
fi
if [ -z "${INRUSH_SHARDS:-}" ]; then
  echo "error: INRUSH_SHARDS is not set: give it the Job's completions (the number of shards)" >&2
  exit 2
fi

scenario="${INRUSH_SCENARIO:-/etc/inrush/scenario.toml}"
out="${INRUSH_RESULTS:-/results}/${INRUSH_RUN_ID:-run}/shard-${JOB_COMPLETION_INDEX}"
# --force: a pod that Kubernetes retries (backoffLimitPerIndex) rewrites its own shard's directory.
"${INRUSH_BIN:-inrush}" run "$scenario" \
  --shard "${JOB_COMPLETION_INDEX}/${INRUSH_SHARDS}" \
  --out "$out" --force "$@" &
child=$!
# The pod's TERM (its deletion, the Job's deadline) and an INT reach inrush, which writes its
# report and exits 3, as it would as the container's first process.
trap 'kill -TERM "$child" 2>/dev/null' TERM
trap 'kill -INT "$child" 2>/dev/null' INT
code=0
wait "$child" || code=$?
# A trapped signal ends `wait` early (128 + the signal): wait on until inrush itself exits.
while kill -0 "$child" 2>/dev/null; do
  code=0
  wait "$child" || code=$?
done
case $code in
  1 | 4)
    # The shard ran to its end: a threshold failed (1) or its generator fell behind (4) on its
    # own share. Not a failed pod (which Kubernetes would retry, sending the load again): the
    # merged run gates every shard's thresholds on the merged data, and a shard that fell
    # behind makes it inconclusive (docs/distributed.md).
    echo "shard ${JOB_COMPLETION_INDEX}/${INRUSH_SHARDS}: inrush exited $code on its own share; the merge decides the run's verdict" >&2
    exit 0
    ;;
esac
exit "$code"
