//! A recorded curve: (seconds from the phase start, users per second) points, the rate linear
//! between them, replayed from a CSV of a real day (compressed and scaled).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use toml::Spanned;

use super::ramp::{Ramp, Shape};
use super::{Load, Phase, Piece};
use crate::scenario::{self, Problems};

#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    /// (seconds from the phase start, users per second), times increasing, at least two points.
    pub points: Arc<[(f64, f64)]>,
}

impl Curve {
    /// The curve as linear pieces, one per pair of neighbouring points, so that the schedule's
    /// inversion stays closed-form.
    pub fn pieces(&self, start: Duration) -> Vec<Piece> {
        self.points
            .windows(2)
            .map(|w| Piece {
                start: start + Duration::from_secs_f64(w[0].0),
                duration: Duration::from_secs_f64(w[1].0 - w[0].0),
                ramp: Ramp {
                    from: w[0].1,
                    to: w[1].1,
                    shape: Shape::Linear,
                },
            })
            .collect()
    }

    /// Expected arrivals: the sum of its pieces' (the same sum, in the same order, as the
    /// schedule walks them).
    pub fn mass(&self, start: Duration) -> f64 {
        self.pieces(start).iter().map(Piece::mass).sum()
    }

    /// The validate description's rate column.
    pub fn describe(&self) -> String {
        format!("recorded curve, {} points", self.points.len())
    }
}

impl super::LoadShape for Curve {
    fn arrival_pieces(&self, start: Duration, _duration: Duration) -> Vec<Piece> {
        self.pieces(start)
    }
    fn expected_arrivals(&self, start: Duration, _duration: Duration) -> f64 {
        self.mass(start)
    }
    fn describe_columns(&self, expected: f64) -> (String, String) {
        (self.describe(), super::arrivals_column(expected))
    }
    fn scaled(&self, factor: f64) -> Load {
        Load::Curve(Curve {
            points: self.points.iter().map(|&(t, r)| (t, r * factor)).collect(),
        })
    }

    fn stretched(&self, factor: f64) -> Load {
        Load::Curve(Curve {
            points: self.points.iter().map(|&(t, r)| (t * factor, r)).collect(),
        })
    }

    fn over_limit(&self) -> Option<String> {
        let peak = self.points.iter().map(|p| p.1).fold(0.0, f64::max);
        super::rate_over_limit(peak)
    }
}

/// A recorded day as one phase: the CSV's `time,rate` rows, time divided by `time_scale`, rate
/// multiplied by `rate_scale × time_scale` so that the replay brings `rate_scale` of the
/// recorded users in `1/time_scale` of the time.
pub(crate) fn compile(
    scenario_path: &Path,
    spec: &Spanned<scenario::CurveSpec>,
    problems: &mut Problems,
) -> Vec<Phase> {
    let c = spec.get_ref();
    let time_scale = c.time_scale.unwrap_or(1.0);
    let rate_scale = c.rate_scale.unwrap_or(1.0);
    if !(time_scale.is_finite() && time_scale > 0.0 && rate_scale.is_finite() && rate_scale > 0.0) {
        problems.add(
            spec.span(),
            "time_scale and rate_scale must be positive numbers",
        );
        return Vec::new();
    }
    let file = scenario_path
        .parent()
        .unwrap_or(Path::new("."))
        .join(&c.file);
    let points = match read(&file) {
        Ok(p) => p,
        Err(e) => {
            problems.add(spec.span(), e);
            return Vec::new();
        }
    };
    let t0 = points[0].0;
    let points: Vec<(f64, f64)> = points
        .iter()
        .map(|&(t, r)| ((t - t0) / time_scale, r * rate_scale * time_scale))
        .collect();
    let duration = points.last().map_or(0.0, |p| p.0);
    if duration > super::MAX_PROFILE_S {
        problems.add(
            spec.span(),
            "the replayed curve is longer than 10 million seconds (~115 days)",
        );
        return Vec::new();
    }
    let curve = Curve {
        points: points.into(),
    };
    // The file's rates times rate_scale × time_scale: the limit a phase's rate has.
    if let Some(why) = super::LoadShape::over_limit(&curve) {
        problems.add(spec.span(), format!("the replayed curve {why}"));
        return Vec::new();
    }
    vec![Phase {
        name: c.name.clone().unwrap_or_else(|| "curve".to_string()),
        start: Duration::ZERO,
        duration: Duration::from_secs_f64(duration),
        load: Load::Curve(curve),
    }]
}

/// Reads `time,rate` rows (a header naming both columns; times strictly increasing).
fn read(file: &Path) -> Result<Vec<(f64, f64)>, String> {
    let bytes = crate::input_file::read(file)
        .map_err(|e| format!("cannot read curve {}: {e}", file.display()))?;
    let mut reader = csv::Reader::from_reader(bytes.as_slice());
    let headers = reader
        .headers()
        .map_err(|e| format!("{}: {e}", file.display()))?
        .clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim() == name)
            .ok_or_else(|| {
                format!(
                    "{}: no `{name}` column (expected a header `time,rate`)",
                    file.display()
                )
            })
    };
    let (t_col, r_col) = (column("time")?, column("rate")?);
    let mut points: Vec<(f64, f64)> = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| format!("{}: {e}", file.display()))?;
        let line = i + 2;
        let num = |col: usize, what: &str| -> Result<f64, String> {
            record
                .get(col)
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| {
                    format!(
                        "{}:{line}: {what} must be a non-negative number",
                        file.display()
                    )
                })
        };
        let (t, r) = (num(t_col, "time")?, num(r_col, "rate")?);
        if points.last().is_some_and(|p| t <= p.0) {
            return Err(format!("{}:{line}: times must increase", file.display()));
        }
        points.push((t, r));
    }
    if points.len() < 2 {
        return Err(format!(
            "{}: a curve needs at least two rows",
            file.display()
        ));
    }
    Ok(points)
}
