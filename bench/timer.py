#!/usr/bin/env python3
"""The timer part of bench/run.sh (PARTS=timer): schedule lag at low rates and CPU per signup at
1 600 signups/s, for one or more generator binaries measured in the same sitting.

Standard library only.

    timer.py eval SUMMARY_JSON RESULTS_JSONL key=value...   (one step: bin, role, rate, ...)
    timer.py report RESULTS_JSONL...                        -> Markdown on stdout

A step is the signup scenario of bench.py (register, SMS code, verify, contact sync, WebSocket,
3 messages after exponential 100 ms pauses, a 500 ms stay). Each user starts five operations on a
timer — its arrival, the three pauses and the stay — and each one's lateness is a schedule-lag
sample, so timer-started operations/s = 5 × signups/s (`ops_per_s`).
"""

import json
import sys

# Operations a user of the signup scenario starts on a timer (arrival, 3 think pauses, the stay).
TIMED_OPS_PER_SIGNUP = 5
# Other load on a pinned core above this (CPU-s/s) marks a step as disturbed (as in bench.py).
DISTURBED = 0.10


def kv(args):
    out = {}
    for a in args:
        k, v = a.split("=", 1)
        try:
            out[k] = float(v) if "." in v else int(v)
        except ValueError:
            out[k] = v
    return out


def evaluate(summary_path, results_path, extra):
    rec = dict(kind="timer", **kv(extra))
    rec["ops_per_s"] = rec["rate"] * TIMED_OPS_PER_SIGNUP
    try:
        with open(summary_path) as f:
            s = json.load(f)
    except (OSError, ValueError) as e:
        s = None
        rec["reasons"] = [f"no summary ({e.__class__.__name__}), inrush exit {rec.get('rc')}"]
    if s is not None:
        a, g = s["arrivals"], s["generator"]
        lag = a.get("schedule_lag_ms") or {}
        loop = g.get("loop_lag_ms") or {}
        errors = sum(m["errors"] for m in s["metrics"].values())
        rec.update(
            planned=a["planned"], started=a["started"], errors=errors,
            lag_p50_ms=lag.get("p50"), lag_p90_ms=lag.get("p90"), lag_p99_ms=lag.get("p99"),
            lag_max_ms=lag.get("max"), loop_p99_ms=loop.get("p99"),
            cpu_s=g["cpu_seconds"], duration_s=s["duration_s"],
        )
        rec["cpu_per_1k"] = rec["cpu_s"] / max(rec["started"], 1) * 1000
        if "sleeps" in rec:
            rec["sleeps_per_1k"] = rec["sleeps"] / max(rec["started"], 1) * 1000
        rec["reasons"] = []
        if a["started"] != a["planned"]:
            rec["reasons"].append(f"started {a['started']} != planned {a['planned']}")
        if errors:
            rec["reasons"].append(f"{errors} errors")
    wall = max(float(rec.get("wall_s", 0)), 1e-9)
    if "gen_core_busy_s" in rec and "cpu_s" in rec:
        rec["foreign_gen_core"] = max(0.0, (rec["gen_core_busy_s"] - rec["cpu_s"]) / wall)
        rec["foreign_target_core"] = max(0.0, (rec["target_core_busy_s"] - rec["target_cpu_s"]) / wall)
    foreign = max(rec.get("foreign_gen_core", 0.0), rec.get("foreign_target_core", 0.0))
    rec["disturbed"] = foreign > DISTURBED
    with open(results_path, "a") as f:
        f.write(json.dumps(rec) + "\n")
    line = f"  timer   {rec['bin']:>8} {rec['rate']:>5}/s ({rec['ops_per_s']:>5} ops/s)  "
    if s is not None:
        line += (f"lag p50 {rec['lag_p50_ms']:.3f} p99 {rec['lag_p99_ms']:.3f} ms  "
                 f"CPU {rec['cpu_per_1k']:.3f} s/1k signups  "
                 f"sleeps {rec.get('sleeps_per_1k', 0):.0f}/1k  other load {foreign:.2f}")
    if rec["reasons"]:
        line += "  (" + "; ".join(rec["reasons"]) + ")"
    print(line, flush=True)
    return 0


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    if not n:
        return None
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def report(*results_paths):
    recs = [json.loads(l) for path in results_paths for l in open(path) if l.strip()]
    # A lag step that dropped arrivals or failed requests did not hold its rate: left out. A CPU
    # step is kept when only arrivals went unstarted (CPU is per started user), marked `†`.
    rs = [r for r in recs if r["kind"] == "timer" and "cpu_s" in r and not r.get("errors")
          and (r["role"] == "cpu" or not r.get("reasons"))]
    if not rs:
        return 0
    bins = list(dict.fromkeys(r["bin"] for r in rs))
    meta = {}
    for r in recs:
        if r["kind"] == "meta":
            meta.update(r)
    out = []
    p = out.append
    p("## Timer precision")
    p("")
    p(f"Signup steps of {meta.get('timer_s', '?')} s (5 timer-started operations per user) against a "
      f"fresh target per step, the binaries alternating (`{meta.get('timer_bins', '?')}`); "
      f"{len(results_paths)} result file(s). Steps with errors are left out, and lag steps with "
      "unstarted arrivals (a CPU step's are marked `†`: CPU is per started user). "
      "Lag cells: the quietest run — the minimum over the undisturbed runs (other load on a pinned "
      "core ≤ 0.10 CPU-s/s) of the step's percentile, or over all runs in italics when every run was "
      "disturbed. CPU cells: the median of the undisturbed runs (other load lowers CPU per signup: "
      "a starved worker handles more per wake-up, so the minimum would favour disturbed runs). Then "
      "every run's value in brackets, in run order, `*` marking a disturbed one.")
    p("")

    def values(sel, key, nd):
        return ", ".join(f"{r[key]:.{nd}f}{'*' if r['disturbed'] else ''}{'†' if r.get('reasons') else ''}"
                         for r in sel)

    def quietest(sel, key):
        calm = [r[key] for r in sel if not r["disturbed"]]
        return (min(calm), True) if calm else (min(r[key] for r in sel), False)

    def lag_cell(sel, key):
        if not sel:
            return "–"
        v, calm = quietest(sel, key)
        return (f"**{v:.3f}**" if calm else f"*{v:.3f}*") + f" ({values(sel, key, 3)})"

    def cpu_of(sel):
        calm = [r["cpu_per_1k"] for r in sel if not r["disturbed"]]
        return median(calm)

    lag_rates = sorted({r["rate"] for r in rs if r["role"] == "lag"})
    if lag_rates:
        p("| binary | " + " | ".join(
            f"{rate * 5:g} ops/s ({rate:g} signups/s): lag p50 ms | p99 ms" for rate in lag_rates) + " |")
        p("|---|" + "---:|---:|" * len(lag_rates))
        for b in bins:
            cells = []
            for rate in lag_rates:
                sel = [r for r in rs if r["bin"] == b and r["role"] == "lag" and r["rate"] == rate]
                cells += [lag_cell(sel, "lag_p50_ms"), lag_cell(sel, "lag_p99_ms")]
            p(f"| {b} | " + " | ".join(cells) + " |")
        p("")
    for rate in sorted({r["rate"] for r in rs if r["role"] == "cpu"}, reverse=True):
        cpu = [r for r in rs if r["role"] == "cpu" and r["rate"] == rate]
        # CPU is compared with tokio's timer wheel when it was measured (a binary named "wheel").
        ref = "wheel" if any(r["bin"] == "wheel" for r in cpu) else cpu[0]["bin"]
        base = cpu_of([r for r in cpu if r["bin"] == ref])
        p(f"| binary | {rate:g} signups/s: gen CPU-s per 1 000 signups, median of undisturbed runs | "
          f"CPU ÷ {ref}'s | generator sleeps per 1 000 signups (voluntary context switches) | "
          "lag p50 ms | lag p99 ms |")
        p("|---|---:|---:|---:|---:|---:|")
        for b in bins:
            sel = [r for r in cpu if r["bin"] == b]
            if not sel:
                continue
            mine = cpu_of(sel)
            slept = [r for r in sel if "sleeps_per_1k" in r]
            calm = [r["sleeps_per_1k"] for r in slept if not r["disturbed"]]
            p(f"| {b} | " + (f"**{mine:.3f}**" if mine is not None else "–")
              + f" ({values(sel, 'cpu_per_1k', 3)}) | "
              + (f"{mine / base:.3f}" if mine is not None and base else "–") + " | "
              + (f"{median(calm):.0f} ({values(slept, 'sleeps_per_1k', 0)})" if calm else
                 (f"({values(slept, 'sleeps_per_1k', 0)})" if slept else "–"))
              + f" | {lag_cell(sel, 'lag_p50_ms')} | {lag_cell(sel, 'lag_p99_ms')} |")
        p("")
    print("\n".join(out))
    return 0


def main(argv):
    cmd, args = argv[1], argv[2:]
    if cmd == "eval":
        return evaluate(args[0], args[1], args[2:])
    if cmd == "report":
        return report(*args)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv) or 0)
