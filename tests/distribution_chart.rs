//! The HDR percentile distribution chart: files, degenerate histograms, two runs overlaid.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use hdrhistogram::Histogram;
use inrush::report::chart::{percentile_x, render_distribution, DistributionRun};

fn out_dir(test: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("inrush-distribution-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn histogram(values: impl IntoIterator<Item = u64>) -> Histogram<u64> {
    let mut h = Histogram::new(3).expect("histogram");
    for v in values {
        h.record(v).expect("record");
    }
    h
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).expect("read png");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}", path.display());
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&bytes[16..20]), be(&bytes[20..24]))
}

fn render(test: &str, runs: &[DistributionRun]) -> String {
    let dir = out_dir(test);
    let written = render_distribution(&dir, "distribution", "Latency distribution", runs, &[])
        .expect("render distribution");
    assert_eq!(
        written,
        vec![dir.join("distribution.png"), dir.join("distribution.svg")]
    );
    let (w, h) = png_size(&written[0]);
    assert_eq!(w, 1280);
    assert!(h >= 720, "{h}");
    let svg = std::fs::read_to_string(&written[1]).expect("read svg");
    assert!(svg.contains("<svg"));
    let _ = std::fs::remove_dir_all(&dir);
    svg
}

#[test]
fn percentile_axis_is_log_of_one_over_one_minus_p() {
    assert!((percentile_x(0.99) - 2.0).abs() < 1e-9);
    assert!((percentile_x(0.9) - 1.0).abs() < 1e-9);
    assert!((percentile_x(0.999_99) - 5.0).abs() < 1e-9);
    assert_eq!(percentile_x(0.0), 0.0);
    assert!(percentile_x(1.0).is_infinite());
}

#[test]
fn a_run_draws_a_panel_per_metric_without_service_times() {
    let mut map = HashMap::new();
    map.insert("register".to_string(), histogram((1..=5000).map(|v| v * 7)));
    map.insert("verify".to_string(), histogram((1..=300).map(|v| v * v)));
    map.insert("verify.service".to_string(), histogram([1, 2, 3]));
    // The generator's lags are not operations: they have the lag chart over time.
    map.insert("schedule_lag".to_string(), histogram([1, 2, 3]));
    map.insert("loop_lag".to_string(), histogram([1, 2, 3]));
    let svg = render(
        "one-run",
        &[DistributionRun {
            label: "quickstart",
            histograms: &map,
        }],
    );
    for text in [
        "register",
        "verify",
        "quickstart — 5000 samples",
        "0%",
        "90%",
        "99%",
        "99.9%",
        "percentile",
        "latency, ms",
    ] {
        assert!(svg.contains(text), "svg lacks {text:?}");
    }
    assert!(!svg.contains("verify.service"));
    assert!(!svg.contains("schedule_lag") && !svg.contains("loop_lag"));
}

#[test]
fn empty_and_single_value_histograms_render() {
    let mut map = HashMap::new();
    map.insert("empty".to_string(), histogram([]));
    map.insert("one_sample".to_string(), histogram([1234]));
    map.insert("constant".to_string(), histogram([500; 1000]));
    let svg = render(
        "degenerate",
        &[DistributionRun {
            label: "run",
            histograms: &map,
        }],
    );
    assert!(svg.contains("run — no samples"));
    assert!(svg.contains("run — 1 sample"));
    assert!(svg.contains("no data"));

    // No metrics at all, and no runs at all.
    let none = HashMap::new();
    let svg = render(
        "no-metrics",
        &[DistributionRun {
            label: "run",
            histograms: &none,
        }],
    );
    assert!(svg.contains("no operations recorded"));
    render("no-runs", &[]);
}

#[test]
fn two_runs_overlay_and_a_metric_of_one_run_only() {
    let mut base = HashMap::new();
    let mut new = HashMap::new();
    base.insert(
        "register".to_string(),
        histogram((1..=2000).map(|v| v * 10)),
    );
    new.insert(
        "register".to_string(),
        histogram((1..=2000).map(|v| v * 25)),
    );
    new.insert("message_delivery".to_string(), histogram(1..=100_000));
    let svg = render(
        "overlay",
        &[
            DistributionRun {
                label: "base",
                histograms: &base,
            },
            DistributionRun {
                label: "new",
                histograms: &new,
            },
        ],
    );
    for text in [
        "base — 2000 samples",
        "new — 2000 samples",
        "base — no samples",
        "new — 100000 samples",
        "99.999%",
    ] {
        assert!(svg.contains(text), "svg lacks {text:?}");
    }
}
