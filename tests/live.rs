//! The run seen while it goes on: `--stream` (JSON lines) and `--metrics` (a Prometheus scrape
//! endpoint), each checked against the run's own summary.json at the end — the sums of the
//! stream's per-interval lines and the endpoint's final counters are the summary's totals.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Scenario, Scratch};
use inrush::report::summary::Summary;
use serde_json::Value;

/// 6 s of signups and chat against the built-in messenger: 20 users/s, two messages each.
fn scenario() -> Scenario {
    Scenario::new("live", 7).drain("1s").with(
        r#"
[load]
phases = [ { name = "steady", duration = "4s", rate = 20 }, { name = "ebb", duration = "2s", rate = 5 } ]
[user]
contacts_known = 2
contacts_unknown = 1
messages = 2
think = { constant = "100ms" }
stay_online = { constant = "500ms" }
"#,
    )
}

fn inrush() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_inrush"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

fn summary(dir: &Path) -> Summary {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).expect("summary"))
        .expect("schema")
}

#[test]
fn the_stream_sums_to_the_summary() {
    let scratch = Scratch::new();
    let file = scratch.scenario("live", scenario());
    let (out, stream) = (scratch.out("run"), scratch.out("stream.jsonl"));
    let status = inrush()
        .args(["run", "--quiet", "--accept-overload", "--workers", "1"])
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .arg("--stream")
        .arg(&stream)
        .status()
        .expect("runs");
    assert_eq!(status.code(), Some(0));
    let s = summary(&out);
    let text = std::fs::read_to_string(&stream).expect("stream written");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is JSON"))
        .collect();
    assert!(lines.iter().all(|l| l["schema"] == "inrush.stream/1"));

    let intervals: Vec<&Value> = lines.iter().filter(|l| l["type"] == "interval").collect();
    // About one a second over the 6 s schedule and its drain.
    assert!(intervals.len() >= 6, "{} intervals", intervals.len());
    let indexes: Vec<u64> = intervals
        .iter()
        .map(|l| l["interval"].as_u64().expect("index"))
        .collect();
    assert!(indexes.windows(2).all(|w| w[0] < w[1]), "{indexes:?}");
    let sum = |field: &str, key: &str| -> u64 {
        intervals
            .iter()
            .map(|l| l[field][key].as_u64().expect("count"))
            .sum()
    };
    let a = &s.arrivals;
    assert_eq!(sum("arrivals", "planned"), a.planned);
    assert_eq!(sum("arrivals", "started"), a.started);
    assert_eq!(sum("arrivals", "dropped"), a.dropped);
    assert_eq!(sum("users", "completed"), a.completed);
    assert_eq!(sum("messages", "sent"), s.messages.sent);
    assert_eq!(sum("checks", "passed"), s.checks.passed);
    assert_eq!(sum("checks", "failed"), s.checks.failed);
    let total = |key: &str| -> u64 {
        intervals
            .iter()
            .map(|l| l[key].as_u64().expect("bytes"))
            .sum()
    };
    assert_eq!(total("bytes_sent"), s.bytes_sent);
    assert_eq!(total("bytes_received"), s.bytes_received);
    assert!(s.bytes_sent > 0 && s.checks.passed > 0);
    assert!(s.messages.sent > 0);
    let phases: Vec<&str> = intervals
        .iter()
        .map(|l| l["phase"].as_str().expect("phase"))
        .collect();
    assert_eq!(phases.first(), Some(&"steady"));
    assert!(phases.contains(&"ebb"), "{phases:?}");

    let mut counts: BTreeMap<String, [u64; 4]> = BTreeMap::new();
    for l in lines.iter().filter(|l| l["type"] == "metric") {
        let e = counts
            .entry(l["metric"].as_str().expect("name").to_string())
            .or_default();
        for (sum, key) in e
            .iter_mut()
            .zip(["count", "errors", "bytes_sent", "bytes_received"])
        {
            *sum += l[key].as_u64().expect("a count");
        }
        if let Some(lat) = l.get("latency_ms") {
            let [p50, p99, max] = ["p50", "p99", "max"].map(|k| lat[k].as_f64().expect("ms"));
            assert!(p50 <= p99 && p99 <= max, "{l}");
        }
    }
    for name in ["register", "verify", "message_delivery"] {
        let m = &s.metrics[name];
        assert!(m.count > 0, "{name}");
        assert_eq!(
            counts[name],
            [m.count, m.errors, m.bytes_sent, m.bytes_received],
            "{name}"
        );
    }
}

/// A half-speed run of `file` into `out` that streams its lines to stdout.
fn streamed_run(file: &Path, out: &Path) -> Command {
    let mut c = inrush();
    c.args([
        "run",
        "--accept-overload",
        "--workers",
        "1",
        "--time-scale",
        "0.5",
    ])
    .arg(file)
    .arg("--out")
    .arg(out)
    .args(["--stream", "-"]);
    c
}

#[test]
fn a_stream_on_stdout_has_only_json_lines() {
    let scratch = Scratch::new();
    let file = scratch.scenario("live", scenario().drain("0s"));
    let out = streamed_run(&file, &scratch.out("run"))
        .stderr(Stdio::null())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    assert!(stdout.lines().count() >= 3);
    for line in stdout.lines() {
        serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    }
}

/// A stream whose reader went away (a closed pipe) costs the run nothing but the stream: the
/// run goes on, its report is written, its verdict is its own, and the summary says what
/// happened to the stream. Before, the broken pipe was the run's error (exit 3, no report).
#[test]
fn a_stream_whose_reader_left_still_leaves_the_report() {
    let scratch = Scratch::new();
    let file = scratch.scenario("live", scenario().drain("0s"));
    let dir = scratch.out("run");
    let mut child = streamed_run(&file, &dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("runs");
    drop(child.stdout.take());
    let status = child.wait().expect("ends");
    assert_eq!(status.code(), Some(0));
    let s = summary(&dir);
    assert!(
        s.warnings
            .iter()
            .any(|w| w.contains("--stream") && w.contains("stopped")),
        "{:?}",
        s.warnings
    );
}

/// One scrape, parsed as Prometheus parses it: (name, labels, value) per sample.
fn scrape(addr: &str) -> Vec<prometheus_parse::Sample> {
    use std::io::Write;
    let mut conn = std::net::TcpStream::connect(addr).expect("connects");
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        conn,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut response = String::new();
    conn.read_to_string(&mut response).expect("response");
    let (head, body) = response.split_once("\r\n\r\n").expect("a body");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    // Decode a chunked body, if it is one.
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut text = String::new();
        let mut rest = body;
        while let Some((size, after)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).expect("chunk size");
            if n == 0 {
                break;
            }
            text.push_str(&after[..n]);
            rest = &after[n + 2..];
        }
        text
    } else {
        body.to_string()
    };
    let lines = body.lines().map(|l| Ok(l.to_string()));
    prometheus_parse::Scrape::parse(lines)
        .expect("valid exposition")
        .samples
}

type Samples = [prometheus_parse::Sample];

/// A sample's value: a counter's or gauge's, a histogram's count.
fn number(v: &prometheus_parse::Value) -> f64 {
    match v {
        prometheus_parse::Value::Counter(v)
        | prometheus_parse::Value::Gauge(v)
        | prometheus_parse::Value::Untyped(v) => *v,
        prometheus_parse::Value::Histogram(h) => h.last().map_or(f64::NAN, |b| b.count),
        prometheus_parse::Value::Summary(q) => q.last().map_or(f64::NAN, |b| b.count),
    }
}

fn value(samples: &Samples, name: &str, label: (&str, &str)) -> f64 {
    samples
        .iter()
        .find(|s| s.metric == name && s.labels.get(label.0) == Some(label.1))
        .map(|s| number(&s.value))
        .unwrap_or_else(|| panic!("{name}{{{}={}}} missing", label.0, label.1))
}

#[test]
fn the_metrics_endpoint_ends_at_the_summary() {
    let scratch = Scratch::new();
    let file = scratch.scenario("live", scenario());
    let out = scratch.out("run");
    let mut child = inrush()
        .args(["run", "--accept-overload", "--workers", "1"])
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .args(["--metrics", "127.0.0.1:0", "--hold", "20s"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    let addr = loop {
        line.clear();
        assert!(
            stderr.read_line(&mut line).expect("reads") > 0,
            "no address"
        );
        if let Some(url) = line.trim().strip_prefix("metrics: http://") {
            break url.trim_end_matches("/metrics").to_string();
        }
    };
    // Keep draining stderr so the child never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));

    // During the run: the series are there from the first interval on, and counters only grow.
    let has = |s: &Samples| s.iter().any(|s| s.metric == "inrush_arrivals_total");
    let first = loop {
        let s = scrape(&addr);
        if has(&s) {
            break s;
        }
        assert!(!out.join("summary.json").exists(), "no interval was served");
        std::thread::sleep(Duration::from_millis(100));
    };
    std::thread::sleep(Duration::from_millis(2500));
    let second = scrape(&addr);
    let started = |s: &Samples| value(s, "inrush_arrivals_total", ("outcome", "started"));
    assert!(started(&second) >= started(&first));
    assert!(started(&second) > 0.0);

    // After the report is written the endpoint holds the final values.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !out.join("summary.json").exists() {
        assert!(Instant::now() < deadline, "the run did not end");
        std::thread::sleep(Duration::from_millis(100));
    }
    let s = summary(&out);
    // The verdict joins the page once the report is written.
    let last = loop {
        let last = scrape(&addr);
        if last.iter().any(|s| s.metric == "inrush_run_verdict") {
            break last;
        }
        assert!(Instant::now() < deadline, "no verdict served");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        value(&last, "inrush_run_verdict", ("verdict", s.verdict.word())),
        1.0
    );
    assert_eq!(started(&last), s.arrivals.started as f64);
    let planned = value(&last, "inrush_arrivals_total", ("outcome", "planned"));
    assert_eq!(planned, s.arrivals.planned as f64);
    let sent = value(&last, "inrush_messages_total", ("kind", "sent"));
    assert_eq!(sent, s.messages.sent as f64);
    let passed = value(&last, "inrush_checks_total", ("result", "passed"));
    assert_eq!(passed, s.checks.passed as f64);
    for name in ["register", "verify", "message_delivery"] {
        let m = &s.metrics[name];
        let ops = value(&last, "inrush_operations_total", ("metric", name));
        assert_eq!(ops, m.count as f64, "{name}");
        let sent = last
            .iter()
            .find(|x| {
                x.metric == "inrush_bytes_total"
                    && x.labels.get("metric") == Some(name)
                    && x.labels.get("direction") == Some("sent")
            })
            // A metric that sent nothing has no series.
            .map_or(0.0, |x| number(&x.value));
        assert_eq!(sent, m.bytes_sent as f64, "{name}");
        // The histogram's count: the successful operations, whose latency it holds.
        let timed = value(&last, "inrush_latency_seconds", ("metric", name));
        assert_eq!(timed, (m.count - m.errors) as f64, "{name}");
    }
    // The buckets are cumulative, at the documented bounds, and end at the count.
    let register = last
        .iter()
        .find(|s| {
            s.metric == "inrush_latency_seconds" && s.labels.get("metric") == Some("register")
        })
        .expect("register's histogram");
    let prometheus_parse::Value::Histogram(buckets) = &register.value else {
        panic!("not a histogram: {:?}", register.value);
    };
    assert_eq!(buckets.len(), 15, "14 bounds and +Inf");
    assert!(buckets
        .windows(2)
        .all(|w| w[0].less_than < w[1].less_than && w[0].count <= w[1].count));
    assert_eq!(buckets[0].less_than, 0.0005);
    let m = &s.metrics["register"];
    assert_eq!(buckets[14].count, (m.count - m.errors) as f64);
    // The built-in messenger answers in well under 10 s: every sample is in a finite bucket.
    assert_eq!(buckets[13].count, buckets[14].count);

    // Every series served is documented, and the Grafana dashboard asks only for documented ones.
    let documented = documented_series();
    // A histogram's `_sum` and `_count` belong to it.
    let served = |name: &str| {
        let histogram = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix));
        documented
            .iter()
            .any(|d| d == name || Some(d.as_str()) == histogram)
    };
    for sample in &last {
        assert!(served(&sample.metric), "{} undocumented", sample.metric);
    }
    let dashboard = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/grafana/inrush.json"),
    )
    .expect("dashboard");
    let _: Value = serde_json::from_str(&dashboard).expect("the dashboard is JSON");
    let asked = regex::Regex::new(r"inrush_[a-z_]+").expect("regex");
    for name in asked.find_iter(&dashboard).map(|m| m.as_str()) {
        assert!(served(name), "{name} is not served");
    }

    // Ctrl-C ends the hold at once.
    // SAFETY: a signal to our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let waited = Instant::now();
    let status = child.wait().expect("exits");
    assert!(waited.elapsed() < Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
}

/// The series named in docs/live.md's table (a cell may name two).
fn documented_series() -> Vec<String> {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/live.md"))
        .expect("docs/live.md");
    let name = regex::Regex::new(r"`(inrush_[a-z_]+)`").expect("regex");
    doc.lines()
        .filter(|l| l.starts_with("| `inrush_"))
        .flat_map(|l| {
            let cell = l.split('|').nth(1).unwrap_or("").to_string();
            name.captures_iter(&cell)
                .map(|c| c[1].to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn an_address_in_use_is_a_usage_error_before_anything_is_sent() {
    let scratch = Scratch::new();
    let file = scratch.scenario("live", scenario());
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
    let addr = taken.local_addr().expect("addr").to_string();
    // Every live endpoint: the Prometheus one and the dashboard.
    for flag in ["--metrics", "--dashboard"] {
        let out = scratch.out(flag.trim_start_matches('-'));
        let status = inrush()
            .args(["run", "--quiet", flag, &addr])
            .arg(&file)
            .arg("--out")
            .arg(&out)
            .stderr(Stdio::null())
            .status()
            .expect("runs");
        assert_eq!(status.code(), Some(2), "{flag}");
        assert!(!out.join("summary.json").exists(), "{flag}");
    }
}
