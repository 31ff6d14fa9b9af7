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
exec "${INRUSH_BIN:-inrush}" run "$scenario" \
  --shard "${JOB_COMPLETION_INDEX}/${INRUSH_SHARDS}" \
  --out "$out" --force "$@"
