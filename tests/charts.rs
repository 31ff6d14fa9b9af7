//! Chart rendering: files, formats, embedded-font text, degenerate timelines.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use inrush::report::chart::ChartError;

use inrush::metrics::timeline::{IntervalMetric, IntervalPoint, PhaseSpan, Timeline};
use inrush::report::chart::{choose_y_scale, Annotations, YScale};

/// Draws the run's charts over time without a summary: panels in name order, no threshold lines.
fn render_all(dir: &Path, timeline: &Timeline) -> Result<Vec<PathBuf>, ChartError> {
    inrush::report::chart::render_all(dir, timeline, &Annotations::default())
}

/// A fresh directory under the system temp dir, unique per test (and per process).
fn out_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("inrush-charts-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn metric(count: u64, errors: u64, p50: f64) -> IntervalMetric {
    IntervalMetric {
        count,
        errors,
        p50_ms: p50,
        p90_ms: p50 * 2.0,
        p99_ms: p50 * 4.0,
        max_ms: p50 * 8.0,
        ..IntervalMetric::default()
    }
}

const PHASES: [&str; 3] = ["warmup", "surge", "cooldown"];

/// 60 one-second intervals, three phases of 20 s, three metrics: `register` (steady),
/// `verify` (latency grows by orders of magnitude during the surge) and `message_delivery`
/// (present only from t = 10 s).
fn synthetic(names: [&str; 3]) -> Timeline {
    let points = (0..60u32)
        .map(|i| {
            let t = f64::from(i);
            let surge = (20..40).contains(&i);
            let mut metrics = BTreeMap::new();
            metrics.insert(names[0].to_string(), metric(100 + u64::from(i), 0, 5.0));
            let verify_p50 = if surge {
                2.0 * f64::from(i - 19).powi(2)
            } else {
                1.0
            };
            let verify_errors = if surge { 7 } else { 0 };
            metrics.insert(names[1].to_string(), metric(50, verify_errors, verify_p50));
            if i >= 10 {
                metrics.insert(names[2].to_string(), metric(400, 1, 12.0));
            }
            IntervalPoint {
                start_s: t,
                end_s: t + 1.0,
                metrics,
                active_users: u64::from(i) * 10,
                open_connections: u64::from(i) * 9,
                open_http: u64::from(i),
                worker_cpu_max: 0.25,
                planned_arrivals: if surge { 100 } else { 10 },
                started_arrivals: if surge { 80 } else { 10 },
                dropped_arrivals: if surge { 20 } else { 0 },
                planned_due: if surge { 100 } else { 10 },
                dropped_due: if surge { 20 } else { 0 },
                errors_by_class: if surge {
                    BTreeMap::from([("timeout".to_string(), 5), ("http_status".to_string(), 3)])
                } else {
                    BTreeMap::new()
                },
                ..IntervalPoint::default()
            }
        })
        .collect();
    let phases = PHASES
        .iter()
        .enumerate()
        .map(|(k, name)| PhaseSpan {
            name: name.to_string(),
            start_s: 20.0 * k as f64,
            end_s: 20.0 * (k + 1) as f64,
        })
        .collect();
    Timeline { points, phases }
}

const NAMES: [&str; 3] = ["register", "verify", "message_delivery"];
const STEMS: [&str; 4] = ["latency", "throughput", "users", "lag"];

fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).expect("read png");
    assert!(bytes.len() > 33, "{} is too short", path.display());
    assert_eq!(
        &bytes[..8],
        b"\x89PNG\r\n\x1a\n",
        "{} signature",
        path.display()
    );
    assert_eq!(&bytes[12..16], b"IHDR", "{} first chunk", path.display());
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&bytes[16..20]), be(&bytes[20..24]))
}

/// `width="…" height="…"` of the root `<svg>` element.
fn svg_size(svg: &str) -> (u32, u32) {
    let attr = |name: &str| -> u32 {
        let start = svg.find(&format!("{name}=\"")).expect("svg size attribute") + name.len() + 2;
        let end = start + svg[start..].find('"').expect("closing quote");
        svg[start..end].parse().expect("numeric size")
    };
    (attr("width"), attr("height"))
}

fn assert_chart_files(dir: &Path, written: &[PathBuf]) {
    assert_eq!(written.len(), 2 * STEMS.len(), "{written:?}");
    for stem in STEMS {
        for ext in ["png", "svg"] {
            let path = dir.join(format!("{stem}.{ext}"));
            assert!(written.contains(&path), "{} not reported", path.display());
            assert!(path.is_file(), "{} not written", path.display());
        }
    }
}

#[test]
fn renders_valid_files_with_phase_and_metric_text() {
    let dir = out_dir("full");
    let written = render_all(&dir, &synthetic(NAMES)).expect("render");
    assert_chart_files(&dir, &written);
    for stem in STEMS {
        let svg = std::fs::read_to_string(dir.join(format!("{stem}.svg"))).expect("read svg");
        assert!(svg.contains("<svg"), "{stem}.svg is not SVG");
        let (w, h) = png_size(&dir.join(format!("{stem}.png")));
        assert_eq!((w, h), svg_size(&svg), "{stem}: png and svg sizes differ");
        assert_eq!(w, 1280, "{stem} width");
        assert!(h >= 720, "{stem} height {h}");
        for phase in PHASES {
            assert!(svg.contains(phase), "{stem}.svg lacks phase {phase}");
        }
        if stem == "latency" || stem == "throughput" {
            for name in NAMES {
                assert!(svg.contains(name), "{stem}.svg lacks metric {name}");
            }
        }
    }
    let latency = std::fs::read_to_string(dir.join("latency.svg")).expect("read svg");
    for label in [
        "p50",
        "p90",
        "p99",
        "max",
        "latency, ms",
        "time since start (s)",
    ] {
        assert!(latency.contains(label), "latency.svg lacks {label}");
    }
    let throughput = std::fs::read_to_string(dir.join("throughput.svg")).expect("read svg");
    for class in ["timeout", "http_status", "by class"] {
        assert!(
            throughput.contains(class),
            "throughput.svg lacks errors of {class}"
        );
    }
    let users = std::fs::read_to_string(dir.join("users.svg")).expect("read svg");
    for label in [
        "active users",
        "open connections",
        "WebSockets",
        "HTTP connections",
        "planned",
        "achieved",
        "dropped",
        "busiest worker",
    ] {
        assert!(users.contains(label), "users.svg lacks {label}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn rgb(path: &Path) -> image::RgbImage {
    image::open(path).expect("decode png").to_rgb8()
}

/// Dark pixels in the top `rows` rows: only the figure title lives there.
fn dark_pixels_in_title(img: &image::RgbImage, rows: u32) -> usize {
    img.enumerate_pixels()
        .filter(|(_, y, p)| *y < rows && p.0.iter().all(|&c| c < 128))
        .count()
}

#[test]
fn glyphs_are_rasterized_into_png() {
    let a_dir = out_dir("glyphs-a");
    let b_dir = out_dir("glyphs-b");
    render_all(&a_dir, &synthetic(NAMES)).expect("render a");
    // Same sort order (same colours), different text.
    render_all(&b_dir, &synthetic(["alpha", "bravo", "charlie"])).expect("render b");
    for stem in ["latency", "throughput"] {
        let a = rgb(&a_dir.join(format!("{stem}.png")));
        let b = rgb(&b_dir.join(format!("{stem}.png")));
        assert_eq!(a.dimensions(), b.dimensions());
        assert_ne!(
            a.as_raw(),
            b.as_raw(),
            "{stem}: text change did not change pixels"
        );
        assert!(
            dark_pixels_in_title(&a, 44) > 200,
            "{stem}: the title was not drawn"
        );
    }
    let _ = std::fs::remove_dir_all(&a_dir);
    let _ = std::fs::remove_dir_all(&b_dir);
}

#[test]
fn empty_timeline_renders_no_data_charts() {
    let dir = out_dir("empty");
    let written = render_all(&dir, &Timeline::default()).expect("render empty");
    assert_chart_files(&dir, &written);
    let svg = std::fs::read_to_string(dir.join("latency.svg")).expect("read svg");
    assert!(svg.contains("no data"));
    for stem in STEMS {
        assert_eq!(png_size(&dir.join(format!("{stem}.png"))).0, 1280);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn single_point_renders() {
    let dir = out_dir("single");
    let mut timeline = synthetic(NAMES);
    timeline.points.truncate(1);
    let written = render_all(&dir, &timeline).expect("render single point");
    assert_chart_files(&dir, &written);
    let _ = std::fs::remove_dir_all(&dir);
}

fn point(start_s: f64, end_s: f64, metrics: &BTreeMap<String, IntervalMetric>) -> IntervalPoint {
    IntervalPoint {
        start_s,
        end_s,
        metrics: metrics.clone(),
        active_users: u64::MAX,
        ..IntervalPoint::default()
    }
}

/// Unequal intervals, one of zero length, a gap, a NaN interval, a metric in one interval,
/// latencies of 1e7 ms, a metric that only failed, phases too narrow, outside or backwards.
fn awkward() -> Timeline {
    let mut metrics = BTreeMap::new();
    metrics.insert("huge".to_string(), metric(10, 0, 1e7));
    metrics.insert("zero".to_string(), IntervalMetric::default());
    metrics.insert("failing".to_string(), metric(5, 5, 0.0));
    let mut only_some = metrics.clone();
    only_some.insert("rare".to_string(), metric(1, 0, 0.001));
    Timeline {
        points: vec![
            point(0.0, 0.25, &metrics),
            point(0.25, 3.0, &only_some),
            point(3.0, 3.0, &metrics),
            point(10.0, 11.0, &metrics),
            point(f64::NAN, 12.0, &metrics),
        ],
        phases: vec![
            PhaseSpan {
                name: "a phase with a very long name that cannot fit".to_string(),
                start_s: 0.0,
                end_s: 0.5,
            },
            PhaseSpan {
                name: "outside".to_string(),
                start_s: 100.0,
                end_s: 200.0,
            },
            PhaseSpan {
                name: "backwards".to_string(),
                start_s: 9.0,
                end_s: 2.0,
            },
        ],
    }
}

#[test]
fn awkward_data_renders() {
    let dir = out_dir("awkward");
    let timeline = awkward();
    let written = render_all(&dir, &timeline).expect("render awkward data");
    assert_chart_files(&dir, &written);

    let all_zero = Timeline {
        points: (0..5)
            .map(|i| point(f64::from(i), f64::from(i + 1), &BTreeMap::new()))
            .map(|p| IntervalPoint {
                active_users: 0,
                ..p
            })
            .collect(),
        phases: Vec::new(),
    };
    render_all(&dir, &all_zero).expect("render all-zero data");

    let mut extreme = BTreeMap::new();
    extreme.insert("inf".to_string(), metric(1, 0, f64::INFINITY));
    extreme.insert("max".to_string(), metric(u64::MAX, u64::MAX - 1, f64::MAX));
    extreme.insert("nan".to_string(), metric(3, 0, f64::NAN));
    extreme.insert("tiny".to_string(), metric(3, 0, f64::MIN_POSITIVE));
    let extreme = Timeline {
        points: vec![point(0.0, 1e-12, &extreme), point(1e-12, 1e300, &extreme)],
        phases: Vec::new(),
    };
    render_all(&dir, &extreme).expect("render extreme values");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unwritable_directory_is_an_error_naming_the_path() {
    let file = std::env::temp_dir().join(format!("inrush-charts-{}-file", std::process::id()));
    std::fs::write(&file, b"not a directory").expect("write");
    let err = render_all(&file.join("charts"), &Timeline::default()).expect_err("must fail");
    assert!(err.to_string().contains("inrush-charts-"), "{err}");
    let _ = std::fs::remove_file(&file);
}

#[test]
fn log_scale_only_when_values_span_orders_of_magnitude() {
    assert_eq!(choose_y_scale([5.0, 6.0, 20.0, 40.0]), YScale::Linear);
    assert_eq!(choose_y_scale([1.0, 800.0, 5000.0]), YScale::Log10);
    assert_eq!(
        choose_y_scale([0.0, 0.0, 3.0]),
        YScale::Linear,
        "zeros ignored"
    );
    assert_eq!(choose_y_scale([0.0, 0.1, 1e7]), YScale::Log10);
    assert_eq!(choose_y_scale([]), YScale::Linear);
    assert_eq!(
        choose_y_scale([f64::NAN, f64::INFINITY, 2.0]),
        YScale::Linear
    );
}

/// `cargo test --test charts -- --ignored` leaves sample charts for a human to look at, in
/// `$INRUSH_CHART_SAMPLES` or `/tmp/chart-samples`.
#[test]
#[ignore]
fn write_samples() {
    let root = std::env::var_os("INRUSH_CHART_SAMPLES")
        .map_or_else(|| PathBuf::from("/tmp/chart-samples"), PathBuf::from);
    render_all(&root.join("synthetic"), &synthetic(NAMES)).expect("synthetic");
    render_all(&root.join("empty"), &Timeline::default()).expect("empty");
    let mut single = synthetic(NAMES);
    single.points.truncate(1);
    render_all(&root.join("single"), &single).expect("single");
    render_all(&root.join("awkward"), &awkward()).expect("awkward");
    render_all(&root.join("many"), &many_metrics()).expect("many");
}

/// The synthetic run plus 100 more metrics.
fn many_metrics() -> Timeline {
    let mut timeline = synthetic(NAMES);
    for p in &mut timeline.points {
        for k in 0..100 {
            p.metrics.insert(format!("op_{k:03}"), metric(10, 1, 3.0));
        }
    }
    timeline
}

#[test]
fn many_metrics_are_capped_to_a_readable_chart() {
    let dir = out_dir("many");
    render_all(&dir, &many_metrics()).expect("render many metrics");
    let (w, h) = png_size(&dir.join("latency.png"));
    assert_eq!(w, 1280);
    assert!(h <= 6000, "latency chart is {h} px tall");
    let svg = std::fs::read_to_string(dir.join("throughput.svg")).expect("read svg");
    assert!(svg.contains("of 103 metrics"), "truncation is not stated");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The text of every `<text>` element of an SVG, in document (drawing) order, unescaped.
fn svg_texts(svg: &str) -> Vec<String> {
    let mut texts = Vec::new();
    let mut rest = svg;
    while let Some(at) = rest.find("<text") {
        rest = &rest[at..];
        let Some(open_end) = rest.find('>') else {
            break;
        };
        let Some(close) = rest.find("</text>") else {
            break;
        };
        let raw = rest[open_end + 1..close].trim();
        texts.push(
            raw.replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&#39;", "'")
                .replace("&amp;", "&"),
        );
        rest = &rest[close..];
    }
    texts
}

fn read_texts(dir: &Path, stem: &str) -> Vec<String> {
    svg_texts(&std::fs::read_to_string(dir.join(format!("{stem}.svg"))).expect("read svg"))
}

/// Where the text element equal to `text` first comes (panel titles are drawn in panel order).
fn position(texts: &[String], text: &str) -> usize {
    texts
        .iter()
        .position(|t| t == text)
        .unwrap_or_else(|| panic!("no text {text:?} in {texts:?}"))
}

/// The synthetic run with the generator's lags recorded, as a real run's timeline has them.
fn with_lags(mut timeline: Timeline) -> Timeline {
    for p in &mut timeline.points {
        p.metrics
            .insert("schedule_lag".to_string(), metric(90, 0, 0.05));
        p.metrics
            .insert("loop_lag".to_string(), metric(400, 0, 0.2));
    }
    timeline
}

/// A summary whose metrics are declared `register`, `verify` (the fixture's flow order, not
/// the alphabet's when `verify` comes first) with latency and other thresholds.
fn annotated(order: &[&str], thresholds: &[(&str, bool)]) -> Annotations {
    let mut s: inrush::report::summary::Summary =
        serde_json::from_str(include_str!("fixtures/summary.json")).expect("fixture");
    let template = s.metrics["register"].clone();
    s.metrics.clear();
    for name in order {
        s.metrics.insert(name.to_string(), template.clone());
    }
    s.thresholds = thresholds
        .iter()
        .map(|&(expr, passed)| inrush::report::summary::ThresholdResult {
            expr: expr.to_string(),
            observed: Some(1.0),
            unit: Default::default(),
            passed,
        })
        .collect();
    Annotations::of(&s)
}

#[test]
fn panels_follow_the_flow_and_lags_have_a_chart_of_their_own() {
    let dir = out_dir("flow-order");
    // Declared verify, message_delivery, register: neither sorted nor reverse sorted.
    let notes = annotated(&["verify", "message_delivery", "register"], &[]);
    render_all_with(&dir, &with_lags(synthetic(NAMES)), &notes);
    for stem in ["latency", "throughput"] {
        let texts = read_texts(&dir, stem);
        let at = |name: &str| {
            texts
                .iter()
                .position(|t| t == name || t.starts_with(&format!("{name} — ")))
                .unwrap_or_else(|| panic!("{stem}: no panel {name} in {texts:?}"))
        };
        assert!(
            at("verify") < at("message_delivery") && at("message_delivery") < at("register"),
            "{stem}: panels not in flow order: {texts:?}"
        );
        for lag in ["schedule_lag", "loop_lag"] {
            assert!(
                !texts.iter().any(|t| t.contains(lag)),
                "{stem} draws {lag} among the operations"
            );
        }
    }
    let lag = read_texts(&dir, "lag");
    assert!(
        lag.iter().any(|t| t.starts_with("Generator health")),
        "{lag:?}"
    );
    let schedule = lag.iter().position(|t| t.starts_with("schedule_lag: "));
    let looped = lag.iter().position(|t| t.starts_with("loop_lag: "));
    assert!(
        schedule.is_some() && looped.is_some() && schedule < looped,
        "{lag:?}"
    );
    for name in NAMES {
        assert!(
            !lag.iter().any(|t| t.contains(name)),
            "lag.svg shows {name}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn render_all_with(dir: &Path, timeline: &Timeline, notes: &Annotations) {
    let written =
        inrush::report::chart::render_all(dir, timeline, notes).expect("render with notes");
    assert_chart_files(dir, &written);
}

/// The y axis descriptions of a latency-like chart: every text naming `latency, ms`.
fn scale_labels(texts: &[String]) -> Vec<&String> {
    texts
        .iter()
        .filter(|t| t.starts_with("latency, ms"))
        .collect()
}

#[test]
fn every_panel_of_a_chart_says_the_same_scale() {
    let dir = out_dir("scales");
    // verify's p50 grows from 1 ms to 800 ms in the surge: the whole chart goes log, the steady
    // panels included.
    render_all(&dir, &with_lags(synthetic(NAMES))).expect("render");
    for stem in ["latency", "lag"] {
        let texts = read_texts(&dir, stem);
        let labels = scale_labels(&texts);
        let panels = if stem == "latency" { 3 } else { 2 };
        assert_eq!(labels.len(), panels, "{stem}: {texts:?}");
        let want = if stem == "latency" {
            "latency, ms (log scale)"
        } else {
            // Each lag within 8× of itself (p50 to max): linear, though the two panels are
            // 32× apart, since each panel has its own range.
            "latency, ms (linear scale)"
        };
        assert!(labels.iter().all(|l| *l == want), "{stem}: {labels:?}");
    }

    // Every metric steady within a factor of 8: every panel linear, and says so.
    let mut steady = synthetic(NAMES);
    for p in &mut steady.points {
        for m in p.metrics.values_mut() {
            *m = metric(m.count, m.errors, 5.0);
        }
    }
    render_all(&dir, &steady).expect("render steady");
    let labels: Vec<String> = scale_labels(&read_texts(&dir, "latency"))
        .into_iter()
        .cloned()
        .collect();
    assert_eq!(labels, ["latency, ms (linear scale)"; 3]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn latency_thresholds_are_drawn_on_the_metric_they_gate() {
    let dir = out_dir("thresholds");
    let notes = annotated(
        &["register", "verify", "message_delivery"],
        &[
            ("verify.p99 < 100ms", false),
            ("surge:register.p(95) <= 2s", true),
            ("arrivals.lag.p99 < 5ms", true),
            ("errors.rate < 1%", true),
            ("verify.count > 10", true),
        ],
    );
    let labels: Vec<(&str, &str, f64)> = notes
        .lines
        .iter()
        .map(|l| (l.metric.as_str(), l.label.as_str(), l.limit_ms))
        .collect();
    assert_eq!(
        labels,
        [
            ("verify", "p99 < 100 ms", 100.0),
            ("register", "surge: p95 ≤ 2000 ms", 2000.0),
            ("schedule_lag", "p99 < 5 ms", 5.0),
        ],
        "only latency statistics get a line"
    );
    render_all_with(&dir, &with_lags(synthetic(NAMES)), &notes);
    let latency = read_texts(&dir, "latency");
    // Each label inside its own metric's panel: after that panel's title, before the next's.
    let (register, verify, delivery) = (
        position(&latency, "register"),
        position(&latency, "verify"),
        position(&latency, "message_delivery"),
    );
    let line = position(&latency, "p99 < 100 ms");
    assert!(verify < line && line < delivery, "{latency:?}");
    let scoped = position(&latency, "surge: p95 ≤ 2000 ms");
    assert!(register < scoped && scoped < verify, "{latency:?}");
    assert!(!latency.iter().any(|t| t == "p99 < 5 ms"));
    let lag = read_texts(&dir, "lag");
    assert!(lag.iter().any(|t| t == "p99 < 5 ms"), "{lag:?}");
    for stem in ["throughput", "users"] {
        let texts = read_texts(&dir, stem);
        assert!(
            !texts.iter().any(|t| t.contains(" ms")),
            "{stem}: {texts:?}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn throughput_has_a_panel_per_operation_and_no_empty_error_panels() {
    let dir = out_dir("throughput");
    // Seven operations at the same rate: seven panels, each with its own line.
    let names: Vec<String> = (0..7).map(|k| format!("step_{k}")).collect();
    let clean = Timeline {
        points: (0..20u32)
            .map(|i| IntervalPoint {
                start_s: f64::from(i),
                end_s: f64::from(i + 1),
                metrics: names
                    .iter()
                    .map(|n| (n.clone(), metric(100, 0, 4.0)))
                    .collect(),
                ..IntervalPoint::default()
            })
            .collect(),
        phases: Vec::new(),
    };
    render_all(&dir, &clean).expect("render clean run");
    let texts = read_texts(&dir, "throughput");
    for name in &names {
        let title = format!("{name} — 2000 operations");
        assert!(texts.contains(&title), "no panel {title:?} in {texts:?}");
    }
    assert_eq!(
        texts.iter().filter(|t| *t == "operations/s").count(),
        7,
        "one y axis per panel: {texts:?}"
    );
    for word in ["errors/s", "by class", "failed", "retries"] {
        assert!(
            !texts.iter().any(|t| t.contains(word)),
            "a run without errors draws {word:?}: {texts:?}"
        );
    }
    assert!(texts.iter().any(|t| t.ends_with("no errors")), "{texts:?}");

    // The synthetic run: verify and message_delivery failed, register never did.
    render_all(&dir, &synthetic(NAMES)).expect("render");
    let texts = read_texts(&dir, "throughput");
    assert!(texts
        .iter()
        .any(|t| t.starts_with("register — ") && !t.contains("failed")));
    assert!(texts
        .iter()
        .any(|t| t.starts_with("verify — ") && t.ends_with("140 failed")));
    assert_eq!(texts.iter().filter(|t| *t == "errors/s").count(), 2 + 1);
    assert!(texts.iter().any(|t| t == "Errors per second by class"));
    let _ = std::fs::remove_dir_all(&dir);
}
