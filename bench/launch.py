#!/usr/bin/env python3
"""Launch to first request: how long after `exec` a generator's first request reaches the target.

    python3 bench/launch.py [--runs N] NAME=COMMAND... 

Each COMMAND is a shell command line with `{url}` where the target's base URL goes (and, for
inrush, `{scenario}` for a generated one-request-per-millisecond scenario and `{out}` for a fresh
run directory). A small HTTP server on 127.0.0.1 (an OS-assigned port; loopback only) answers
every request with 200 and notes the monotonic time of the first one; the figure is that time
minus the time just before the process was spawned. The commands run alternately, N times each;
the median and the range are printed.

    python3 bench/launch.py --runs 15 \\
      old=/tmp/inrush-old\\ run\\ {scenario}\\ --target\\ {url}\\ --out\\ {out}\\ --quiet\\ --accept-overload \\
      new="target/release/inrush run {scenario} --target {url} --out {out} --quiet --accept-overload" \\
      wrk="wrk -t1 -c1 -d1s {url}/healthz"
"""
import http.server
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time

SCENARIO = """name = "launch"
seed = 1
[target]
url = "http://127.0.0.1:1"
[load]
arrivals = "uniform"
phases = [ { name = "only", duration = "1s", rate = 1000 } ]
[run]
drain = "0s"
[[flows.main.steps]]
name = "hit"
http = "GET /healthz"
"""


class First(http.server.BaseHTTPRequestHandler):
    first = None

    def do_GET(self):
        if First.first is None:
            First.first = time.monotonic()
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def main(argv):
    runs = 10
    if argv[:1] == ["--runs"]:
        runs, argv = int(argv[1]), argv[2:]
    commands = [a.split("=", 1) for a in argv]
    if not commands or any(len(c) != 2 for c in commands):
        print(__doc__, file=sys.stderr)
        return 2
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), First)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    results = {name: [] for name, _ in commands}
    with tempfile.TemporaryDirectory() as tmp:
        scenario = f"{tmp}/launch.toml"
        with open(scenario, "w") as f:
            f.write(SCENARIO)
        for i in range(runs):
            for name, command in commands:
                line = command.format(url=url, scenario=scenario, out=f"{tmp}/{name}-{i}")
                First.first = None
                start = time.monotonic()
                subprocess.run(shlex.split(line), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, timeout=60)
                if First.first is not None:
                    results[name].append((First.first - start) * 1000)
    server.shutdown()
    print("| generator | launch → first request, ms: median | min – max | runs |")
    print("|---|---:|---:|---:|")
    for name, ms in results.items():
        if ms:
            print(f"| {name} | {statistics.median(ms):.1f} | {min(ms):.1f} – {max(ms):.1f} | {len(ms)} |")
        else:
            print(f"| {name} | – | – | 0 |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
