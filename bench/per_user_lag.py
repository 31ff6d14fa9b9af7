#!/usr/bin/env python3
"""Helpers of bench/per_user_lag.sh.

  per_user_lag.py record RESULTS.jsonl LABEL RUN MEASURED.json RUN_DIR TIME_WAIT
                                      one run's line: lag, CPU, worker busy, other load
  per_user_lag.py table RESULTS.jsonl medians per build (all runs, undisturbed runs)
"""

import json
import statistics
import sys


def record(results, label, run, measured, run_dir, time_wait):
    m = json.load(open(measured))
    s = json.load(open(f"{run_dir}/summary.json"))
    points = json.load(open(f"{run_dir}/timeline.json"))["points"]
    # The last point is the partial interval after the schedule: left out of the mean.
    busy = [p["worker_cpu_max"] for p in points[:-1]] or [0.0]
    lag = s["arrivals"]["schedule_lag_ms"]
    get = s["metrics"].get("get", {})
    rec = dict(label=label, run=int(run), lag_p50=lag["p50"], lag_p99=lag["p99"],
               lag_max=lag["max"], cpu_s=m["gen_cpu_s"], user_s=m["gen_user_s"],
               sys_s=m["gen_sys_s"], worker_busy=round(sum(busy) / len(busy), 3),
               other=m["other_load"], disturbed=m["disturbed"],
               started=s["arrivals"]["started"], dropped=s["arrivals"]["dropped"],
               errors=get.get("errors"), time_wait_before=int(time_wait or 0))
    with open(results, "a") as f:
        f.write(json.dumps(rec) + "\n")
    print(f"{label}-{run}: lag p50 {rec['lag_p50']:.3f} p99 {rec['lag_p99']:.3f} "
          f"max {rec['lag_max']:.2f} ms | CPU {rec['cpu_s']:.2f} s (user {rec['user_s']:.2f}, "
          f"sys {rec['sys_s']:.2f}) | worker busy {rec['worker_busy']:.3f} | other load "
          f"{rec['other']:.2f}{' DISTURBED' if rec['disturbed'] else ''} | started "
          f"{rec['started']} dropped {rec['dropped']} errors {rec['errors']}", flush=True)


def table(results):
    rows = [json.loads(line) for line in open(results) if line.strip()]
    labels = list(dict.fromkeys(r["label"] for r in rows))
    print("| build | runs (undisturbed) | lag p50 ms | lag p99 ms | lag p99, undisturbed | "
          "CPU-s per run | worker busy | other load |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label in labels:
        rs = [r for r in rows if r["label"] == label]
        quiet = [r for r in rs if not r["disturbed"]]

        def med(key, xs=rs):
            return statistics.median(r[key] for r in xs) if xs else float("nan")

        print(f"| {label} | {len(rs)} ({len(quiet)}) | {med('lag_p50'):.3f} | "
              f"{med('lag_p99'):.2f} | {med('lag_p99', quiet):.2f} | {med('cpu_s'):.2f} | "
              f"{med('worker_busy'):.3f} | {med('other'):.2f} |")
    print(f"\nmedians; each run's p99s: " + "; ".join(
        f"{label}: " + ", ".join(f"{r['lag_p99']:.2f}" for r in rows if r["label"] == label)
        for label in labels))


def main(argv):
    if argv[1] == "record":
        record(*argv[2:8])
    elif argv[1] == "table":
        table(argv[2])
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
