//! Colours, fonts and number formatting shared by every chart.

use plotters::style::{FontDesc, FontFamily, FontStyle, RGBColor};

pub(super) const WIDTH: u32 = 1280;
pub(super) const MIN_HEIGHT: u32 = 720;

pub(super) const TITLE_SIZE: f64 = 26.0;
pub(super) const PANEL_TITLE_SIZE: f64 = 19.0;
pub(super) const AXIS_DESC_SIZE: f64 = 16.0;
pub(super) const TICK_SIZE: f64 = 14.0;
pub(super) const LEGEND_SIZE: f64 = 15.0;
pub(super) const PHASE_SIZE: f64 = 14.0;
pub(super) const NOTE_SIZE: f64 = 22.0;

pub(super) const TEXT: RGBColor = RGBColor(33, 33, 33);
pub(super) const MUTED: RGBColor = RGBColor(97, 97, 97);
/// Phase bands alternate between these two tints.
pub(super) const BAND: [RGBColor; 2] = [RGBColor(232, 236, 243), RGBColor(246, 247, 250)];

/// Tableau 10: distinct, colour-blind-friendlier than the primaries. Metric `i` of the run's
/// sorted metric names gets `METRIC_PALETTE[i % 10]` in every chart.
const METRIC_PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

pub(super) fn metric_color(index: usize) -> RGBColor {
    METRIC_PALETTE[index % METRIC_PALETTE.len()]
}

/// Series that are not metrics (users chart), outside the metric palette so that no colour
/// suggests a metric it is not.
pub(super) const ACTIVE_USERS: RGBColor = RGBColor(40, 53, 147);
pub(super) const CONNECTIONS: RGBColor = RGBColor(0, 137, 123);
pub(super) const HTTP_CONNECTIONS: RGBColor = RGBColor(173, 20, 87);
pub(super) const PLANNED: RGBColor = RGBColor(97, 97, 97);
pub(super) const ACHIEVED: RGBColor = RGBColor(44, 160, 44);
pub(super) const DROPPED: RGBColor = RGBColor(214, 39, 40);
/// A threshold's line that held (one that failed is drawn in [`DROPPED`]'s red).
pub(super) const THRESHOLD: RGBColor = RGBColor(55, 71, 79);
/// The knee of a capacity chart: the band between the last passing and the first failing rate.
pub(super) const KNEE: RGBColor = RGBColor(255, 224, 178);
/// A step that could not be judged (pass is [`ACHIEVED`]'s green, fail [`DROPPED`]'s red).
pub(super) const INCONCLUSIVE: RGBColor = RGBColor(158, 158, 158);
pub(super) const GENERATOR_CPU: RGBColor = RGBColor(230, 81, 0);

/// Moves `c` towards black (`t < 0`) or white (`t > 0`) by `|t|`.
pub(super) fn shade(c: RGBColor, t: f64) -> RGBColor {
    let mix = |v: u8| -> u8 {
        let v = f64::from(v);
        let out = if t < 0.0 {
            v * (1.0 + t)
        } else {
            v + (255.0 - v) * t
        };
        out.round().clamp(0.0, 255.0) as u8
    };
    RGBColor(mix(c.0), mix(c.1), mix(c.2))
}

pub(super) fn font(size: f64) -> FontDesc<'static> {
    FontDesc::new(FontFamily::SansSerif, size, FontStyle::Normal)
}

pub(super) fn bold(size: f64) -> FontDesc<'static> {
    FontDesc::new(FontFamily::SansSerif, size, FontStyle::Bold)
}

/// Compact tick label: `0`, `0.25`, `3.5`, `120`, `2500`, `12k`, `3.5M`, `1.2G`, `1.8e19`.
pub fn format_number(v: f64) -> String {
    if !v.is_finite() {
        return String::new();
    }
    let a = v.abs();
    let trim = |s: String| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    };
    if a == 0.0 {
        "0".to_string()
    } else if a >= 1e12 {
        format!("{v:.1e}").replace(".0e", "e")
    } else if a >= 1e9 {
        format!("{}G", trim(format!("{:.1}", v / 1e9)))
    } else if a >= 1e6 {
        format!("{}M", trim(format!("{:.1}", v / 1e6)))
    } else if a >= 1e4 {
        format!("{}k", trim(format!("{:.1}", v / 1e3)))
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        trim(format!("{v:.1}"))
    } else if a >= 0.01 {
        trim(format!("{v:.2}"))
    } else {
        format!("{v:.0e}")
    }
}

#[cfg(test)]
mod tests {
    use super::format_number;

    #[test]
    fn numbers_stay_short() {
        let cases = [
            (0.0, "0"),
            (0.25, "0.25"),
            (0.001, "1e-3"),
            (3.5, "3.5"),
            (12.0, "12"),
            (120.0, "120"),
            (2500.0, "2500"),
            (12_000.0, "12k"),
            (3_500_000.0, "3.5M"),
            (1.2e9, "1.2G"),
            (1.8e19, "1.8e19"),
            (1e30, "1e30"),
            (f64::NAN, ""),
        ];
        for (v, want) in cases {
            assert_eq!(format_number(v), want, "{v}");
        }
    }
}
