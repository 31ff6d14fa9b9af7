//! Chart rendering: files, formats, embedded-font text, degenerate timelines.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use inrush::metrics::timeline::{IntervalMetric, IntervalPoint, PhaseSpan, Timeline};
use inrush::report::chart::{choose_y_scale, render_all, YScale};

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
const STEMS: [&str; 3] = ["latency", "throughput", "users"];

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

fn assert_six_files(dir: &Path, written: &[PathBuf]) {
    assert_eq!(written.len(), 6, "{written:?}");
    for stem in STEMS {
        for ext in ["png", "svg"] {
            let path = dir.join(format!("{stem}.{ext}"));
            assert!(written.contains(&path), "{} not reported", path.display());
            assert!(path.is_file(), "{} not written", path.display());
        }
    }
}

#[test]
fn renders_six_valid_files_with_phase_and_metric_text() {
    let dir = out_dir("full");
    let written = render_all(&dir, &synthetic(NAMES)).expect("render");
    assert_six_files(&dir, &written);
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
        if stem != "users" {
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
        "latency (ms)",
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
    assert_six_files(&dir, &written);
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
    assert_six_files(&dir, &written);
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
    assert_six_files(&dir, &written);

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
