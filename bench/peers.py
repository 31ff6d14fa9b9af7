#!/usr/bin/env python3
"""Helpers of bench/peers.sh: run a generator and measure it, count what nginx answered, and
write the comparison table (medians of the sittings' runs, ratios inrush/peer per generator
CPU-second).

  peers.py measure OUT.json CMD...    run CMD; write its CPU (user + system, of it and its
                                      children: getrusage(RUSAGE_CHILDREN)), wall time and exit
                                      code, the pinned cores' busy time and the target's CPU
  peers.py table RESULTS.jsonl OUT.md print and write the Markdown table
"""

import json
import os
import resource
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (the bench's own helpers: one reading of /proc/stat, one meta line)

# Other load on the pinned cores above this (CPU-seconds per second of wall time, beyond the
# generator's and the target's own) marks a measurement as disturbed (as bench/bench.py does).
DISTURBED = 0.10


def core_busy():
    """Per core: busy seconds so far (bench.py's count of busy ticks, in seconds)."""
    tick = os.sysconf("SC_CLK_TCK")
    return {core: busy / tick for core, busy in bench.core_busy_jiffies().items()}


def proc_cpu(pid):
    """utime + stime of a running process, seconds (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def measure(out_path, cmd):
    gen_core = int(os.environ.get("GEN_CORE", "1"))
    target_core = int(os.environ.get("TARGET_CORE", "0"))
    target_pid = os.environ.get("TARGET_PID", "")
    b0, t0c = core_busy(), proc_cpu(target_pid) if target_pid else 0.0
    t0 = time.monotonic()
    rc = subprocess.call(cmd)
    wall = time.monotonic() - t0
    b1, t1c = core_busy(), proc_cpu(target_pid) if target_pid else 0.0
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    gen_cpu = r.ru_utime + r.ru_stime
    target_cpu = t1c - t0c
    pinned = (b1[gen_core] - b0[gen_core]) + (b1[target_core] - b0[target_core])
    other = max(0.0, pinned - gen_cpu - target_cpu) / max(wall, 1e-9)
    rec = dict(rc=rc, wall_s=round(wall, 3), gen_cpu_s=round(gen_cpu, 3),
               gen_user_s=round(r.ru_utime, 3), gen_sys_s=round(r.ru_stime, 3),
               target_cpu_s=round(target_cpu, 3), other_load=round(other, 3),
               disturbed=other > DISTURBED, gen_max_rss_kb=r.ru_maxrss)
    with open(out_path, "w") as f:
        json.dump(rec, f)
    return 0


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def fmt(x, nd=0):
    if x != x:  # NaN
        return "—"
    return f"{x:,.{nd}f}".replace(",", " ")


def table(results_path, out_path):
    rows = [json.loads(line) for line in open(results_path) if line.strip()]
    meta = {}
    for r in rows:
        if r.get("kind") == "meta":
            meta.update(r)
    runs = [r for r in rows if r.get("kind") == "run"]
    workloads = []
    for r in runs:
        if r["workload"] not in workloads:
            workloads.append(r["workload"])
    lines = [
        f"# bench/peers.sh — {meta.get('date', '?')}, commit {meta.get('commit', '?')}",
        "",
        f"Machine: {meta.get('cpus', '?')} CPUs ({meta.get('cpu_model', '?')}); nginx "
        f"{meta.get('nginx', '?')} on core {meta.get('target_core', '?')}, generators on core "
        f"{meta.get('gen_core', '?')}; medians of {meta.get('runs', '?')} runs per tool. "
        "Generator CPU = user + system of the generator process (getrusage of the child, the "
        "same for every tool, start-up and report writing included). Requests = lines in "
        "nginx's access log for that run; WebSocket messages = frames the bench's echo server "
        "read (examples/ws_echo.rs, on the target core; its echoes in the per-run lines).",
        "",
        "| workload | tool | served (nginx log; ws: frames the echo server read) | tool's own count "
        "| errors | wall s | generator CPU-s | served / generator CPU-s | inrush / peer "
        "| disturbed runs |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for w in workloads:
        tools = []
        for r in runs:
            if r["workload"] == w and r["tool"] not in tools:
                tools.append(r["tool"])
        per_tool = {}
        for t in tools:
            # A run nginx logged nothing for (it did not come up in time on a loaded machine,
            # or the tool failed) measures nothing: left out of the medians, listed below.
            rs = [r for r in runs if r["workload"] == w and r["tool"] == t and r["served"] > 0]
            if not rs:
                continue
            per_tool[t] = dict(
                served=median([r["served"] for r in rs]),
                own=median([r.get("own_count", float("nan")) for r in rs]),
                errors=median([r.get("errors", 0) for r in rs]),
                wall=median([r["wall_s"] for r in rs]),
                cpu=median([r["gen_cpu_s"] for r in rs]),
                per_cpu=median([r["served"] / r["gen_cpu_s"] for r in rs if r["gen_cpu_s"] > 0]),
                disturbed=sum(1 for r in rs if r.get("disturbed")),
                n=len(rs),
            )
        peer = next((t for t in tools if not t.startswith("inrush")), None)
        for t in [t for t in tools if t in per_tool]:
            p = per_tool[t]
            ratio = "—"
            if t.startswith("inrush") and peer and per_tool[peer]["per_cpu"] > 0:
                ratio = f"{p['per_cpu'] / per_tool[peer]['per_cpu']:.2f}× {peer}"
            lines.append(
                f"| {w} | {t} | {fmt(p['served'])} | {fmt(p['own'])} | {fmt(p['errors'])} "
                f"| {fmt(p['wall'], 1)} | {fmt(p['cpu'], 2)} | {fmt(p['per_cpu'])} | {ratio} "
                f"| {p['disturbed']} of {p['n']} |"
            )
    lines.append("")
    lines.append("Per run (in the order run):")
    lines.append("")
    for r in runs:
        lines.append(
            f"- {r['workload']} {r['tool']} run {r['run']}: {r['served']} served, "
            f"{r['gen_cpu_s']:.2f} CPU-s (user {r['gen_user_s']:.2f}, sys {r['gen_sys_s']:.2f}), "
            f"{r['served'] / max(r['gen_cpu_s'], 1e-9):,.0f}/CPU-s, wall {r['wall_s']:.1f} s"
            + (f", {r['echoed']} echoed" if "echoed" in r else "")
            + (f", schedule lag p99 {r['lag_p99_ms']} ms" if "lag_p99_ms" in r else "")
            + f", target {r['target_cpu_s']:.2f} CPU-s, other load {r['other_load']:.2f} CPU-s/s"
            + (" (disturbed)" if r.get("disturbed") else "")
        )
    text = "\n".join(lines) + "\n"
    with open(out_path, "w") as f:
        f.write(text)
    print(text)
    return 0


def record(results_path, measured_path, *kv):
    """Appends one run: the measurement plus key=value pairs (numbers where they parse)."""
    rec = json.load(open(measured_path))
    for item in kv:
        k, v = item.split("=", 1)
        try:
            rec[k] = int(v)
        except ValueError:
            try:
                rec[k] = float(v)
            except ValueError:
                rec[k] = v
    rec["kind"] = "run"
    with open(results_path, "a") as f:
        f.write(json.dumps(rec) + "\n")
    return 0


def summary_counts(summary_path, metric):
    """An inrush run's count and errors of one metric, and its schedule lag p99 (ms): how late
    the generator started arrivals (a rate run's own health: lag past a few ms means it could
    not keep the schedule)."""
    s = json.load(open(summary_path))
    m = s["metrics"][metric]
    lag = (s.get("arrivals", {}).get("schedule_lag_ms") or {}).get("p99")
    print(m["count"] - m["errors"], m["errors"], "" if lag is None else lag)
    return 0


def wrk_count(path):
    """wrk's own count ("N requests in …") and its socket errors, if any."""
    n, errors = "nan", 0
    for line in open(path):
        words = line.split()
        if len(words) > 2 and words[1] == "requests" and words[2] == "in":
            n = words[0]
        if line.strip().startswith("Socket errors:") or line.strip().startswith("Non-2xx"):
            errors += sum(int(w.strip(",")) for w in words if w.strip(",").isdigit())
    print(n, errors)
    return 0


def oha_count(path):
    """oha's own count of successful responses and of errors (its JSON output)."""
    try:
        j = json.load(open(path))
    except (OSError, ValueError):
        print("nan 0")
        return 0
    codes = j.get("statusCodeDistribution", {})
    ok = sum(v for k, v in codes.items() if k.startswith("2"))
    errors = sum(j.get("errorDistribution", {}).values())
    print(ok, errors)
    return 0


def echo_counts(path):
    """The echo server's own counts (examples/ws_echo.rs): frames received, frames echoed."""
    try:
        c = json.load(open(path))
    except (OSError, ValueError):
        print("nan nan")
        return 0
    print(c["frames_received"], c["frames_sent"])
    return 0


def ws_summary_counts(summary_path):
    """An inrush WebSocket run's own count (messages acked: each an echo matched to its
    message by id) and its errors (every metric's, unacked messages included)."""
    try:
        s = json.load(open(summary_path))
    except (OSError, ValueError):
        print("nan 0")
        return 0
    errors = sum(m.get("errors", 0) for m in s["metrics"].values())
    print(s["messages"]["acked"], errors)
    return 0


def floor_count(path):
    """examples/ws_floor.rs's own count: frames it wrote, and writes the socket refused (full)."""
    sent, blocked = "nan", 0
    try:
        for line in open(path):
            if line.startswith('{"sent"'):
                j = json.loads(line)
                sent, blocked = j["sent"], j["blocked_writes"]
    except (OSError, ValueError, KeyError):
        pass
    print(sent, blocked)
    return 0


def tsung_count(log_dir):
    """Tsung's own count, as far as its stats dumps in tsung.log go (they lag its end): frames
    sent without an ack (the last cumulative `request_noack`) plus awaited requests (the
    per-dump counts of `request`) less the users' connects (`connected`), and its errors (the
    last cumulative `error_*`)."""
    noack, requests, connects, errors = 0, 0, 0, {}
    found = False
    for root, _, files in os.walk(log_dir):
        if "tsung.log" not in files:
            continue
        found = True
        for line in open(os.path.join(root, "tsung.log")):
            w = line.split()
            if len(w) < 3 or w[0] != "stats:":
                continue
            if w[1] == "request_noack":
                noack = int(w[3]) if len(w) > 3 else int(w[2])
            elif w[1] == "request":
                requests += int(w[2])
            elif w[1] == "connected":
                connects = max(connects, int(w[3]) if len(w) > 3 else int(w[2]))
            elif w[1].startswith("error_"):
                errors[w[1]] = int(w[3]) if len(w) > 3 else int(w[2])
    if not found:
        print("nan 0")
        return 0
    print(noack + requests - connects, sum(errors.values()))
    return 0


def main(argv):
    cmd, args = argv[1], argv[2:]
    if cmd == "measure":
        return measure(args[0], args[1:])
    if cmd == "record":
        return record(*args)
    if cmd == "table":
        return table(*args)
    if cmd == "summary-counts":
        return summary_counts(*args)
    if cmd == "wrk-count":
        return wrk_count(*args)
    if cmd == "oha-count":
        return oha_count(*args)
    if cmd == "echo-counts":
        return echo_counts(*args)
    if cmd == "ws-summary-counts":
        return ws_summary_counts(*args)
    if cmd == "floor-count":
        return floor_count(*args)
    if cmd == "tsung-count":
        return tsung_count(*args)
    if cmd == "meta":
        return bench.main([argv[0], "meta", *args])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
