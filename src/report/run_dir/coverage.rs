//! `timeline.json` must cover the run: its points are the run's intervals in time order, the
//! first from 0, none overlapping the next, the last ending when the run ended (`duration_s`).
//! A timeline cut short — even one that is still valid JSON, down to `points: []` — would
//! otherwise redraw the charts and recompute the peaks from part of the run.

use std::path::Path;

use super::numbers;
use crate::error::Error;
use crate::metrics::timeline::Timeline;
use crate::report::summary::Summary;

/// How far the last point's end may be from `duration_s`: a merged run's summary states its
/// duration to the millisecond (`merge`), a run's to the nanosecond, as its last point.
pub const END_SLACK_S: f64 = 0.001;

/// Refuses a timeline that does not cover the run `s` describes, naming the point at fault.
pub fn check(path: &Path, s: &Summary, t: &Timeline) -> Result<(), Error> {
    let refuse = |what: String| {
        Err(Error::Usage(format!(
            "{}: {what}: the timeline is cut short, edited or another run's",
            path.display()
        )))
    };
    let mut end = 0.0;
    for (i, p) in t.points.iter().enumerate() {
        for (field, v) in [("start_s", p.start_s), ("end_s", p.end_s)] {
            if !numbers::plausible(v) {
                return refuse(format!("point {i} `{field}` {}", numbers::why(v)));
            }
        }
        if i == 0 && p.start_s != 0.0 {
            return refuse(format!("the first point starts at {} s, not 0", p.start_s));
        }
        // Merged runs may have gaps (a shard that started late); never an overlap.
        if p.start_s < end || p.end_s < p.start_s {
            return refuse(format!(
                "point {i} ({} s to {} s) is out of order",
                p.start_s, p.end_s
            ));
        }
        end = p.end_s;
    }
    if (end - s.duration_s).abs() > END_SLACK_S {
        return refuse(format!(
            "its {} points end at {end} s, where {} says the run lasted {} s",
            t.points.len(),
            crate::report::files::SUMMARY,
            s.duration_s
        ));
    }
    for span in &t.phases {
        for v in [span.start_s, span.end_s] {
            if !numbers::plausible(v) {
                return refuse(format!("phase `{}`: {}", span.name, numbers::why(v)));
            }
        }
    }
    Ok(())
}
