//! Chart geometry: time series in, SVG coordinates, axis ticks and hover labels out. The
//! templates draw what this computes; nothing here writes markup.

use serde::Serialize;
use std::fmt::Write as _;

/// How a series' values read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A rate in [0, 1], shown as a percentage.
    Rate,
    /// A score in [0, 1].
    Score,
    Ms,
    Usd,
    Count,
}

impl Unit {
    /// A value as the reports show it.
    #[must_use]
    pub fn format(self, v: f64) -> String {
        match self {
            Self::Rate => format!("{:.1}%", v * 100.0),
            Self::Score => format!("{v:.3}"),
            Self::Ms => {
                if v >= 10_000.0 {
                    format!("{:.1} s", v / 1000.0)
                } else if v.abs() < 10.0 && v != 0.0 {
                    format!("{v:.1} ms")
                } else {
                    format!("{v:.0} ms")
                }
            }
            Self::Usd => {
                if v != 0.0 && v.abs() < 0.01 {
                    format!("${v:.5}")
                } else {
                    format!("${v:.2}")
                }
            }
            Self::Count => {
                if v.abs() >= 1_000_000.0 {
                    format!("{:.1}M", v / 1_000_000.0)
                } else if v.abs() >= 10_000.0 {
                    format!("{:.1}k", v / 1000.0)
                } else {
                    format!("{v:.0}")
                }
            }
        }
    }

    /// An axis tick at `v` on an axis of ticks `step` apart: as few decimals as tell the ticks
    /// apart (`0%`, `25%`; `$0.02`, `$0.0004`; never `$0.00000`).
    #[must_use]
    pub fn tick(self, v: f64, step: f64) -> String {
        let v = if v.abs() < step.abs() * 1e-9 { 0.0 } else { v };
        // Decimals that show a step of this size.
        let decimals = |step: f64| -> usize {
            if step <= 0.0 || !step.is_finite() {
                return 0;
            }
            let d = -step.log10().floor();
            // Clamped to 0..=12, so the cast cannot lose anything.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let d = d.clamp(0.0, 12.0) as usize;
            // 0.25 needs two decimals, 0.2 one: add one while the step is not a whole
            // number of units at that many decimals.
            let scaled = step * 10f64.powi(i32::try_from(d).unwrap_or(0));
            if (scaled - scaled.round()).abs() > 1e-6 {
                d + 1
            } else {
                d
            }
        };
        match self {
            Self::Rate => format!("{:.*}%", decimals(step * 100.0), v * 100.0),
            Self::Score => format!("{:.*}", decimals(step).max(1), v),
            Self::Usd => {
                if v == 0.0 {
                    "$0".to_string()
                } else {
                    format!("${:.*}", decimals(step).max(2), v)
                }
            }
            Self::Ms if step >= 1000.0 && v.abs() >= 10_000.0 => {
                format!("{:.*} s", decimals(step / 1000.0), v / 1000.0)
            }
            Self::Ms => format!("{:.*} ms", decimals(step), v),
            Self::Count if v.abs() >= 1_000_000.0 => {
                format!("{:.*}M", decimals(step / 1_000_000.0), v / 1_000_000.0)
            }
            Self::Count if v.abs() >= 10_000.0 => {
                format!("{:.*}k", decimals(step / 1000.0), v / 1000.0)
            }
            Self::Count => format!("{:.*}", decimals(step), v),
        }
    }

    /// Shown or `n/a`.
    #[must_use]
    pub fn show(self, v: Option<f64>) -> String {
        v.filter(|x| x.is_finite())
            .map_or_else(|| "n/a".into(), |x| self.format(x))
    }
}

/// One point of a series: when (Unix seconds), the value (None: no value that run), and
/// what the run was (for the hover label).
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub t: f64,
    pub value: Option<f64>,
    pub label: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SeriesIn {
    pub name: String,
    pub samples: Vec<Sample>,
}

/// A vertical marker: the suite or a case changed, an alert opened or resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct MarkerIn {
    pub t: f64,
    pub label: String,
    /// CSS class: `change`, `alert` (opened), `resolved`, or `mark` (a change marker).
    pub class: &'static str,
}

/// A horizontal threshold line: a gate's limit.
#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdIn {
    pub value: f64,
    pub label: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Tick {
    pub pos: f64,
    pub label: String,
    /// `text-anchor` of the label: `middle`, or `start`/`end` near the plot's edges.
    pub anchor: &'static str,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Threshold {
    pub y: f64,
    pub label: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Point {
    pub x: f64,
    pub y: f64,
    pub title: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Series {
    pub name: String,
    pub color: &'static str,
    /// SVG path data (numbers and M/L only).
    pub path: String,
    pub points: Vec<Point>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Marker {
    pub x: f64,
    pub label: String,
    pub class: &'static str,
}

/// A line chart ready to draw.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Chart {
    pub title: String,
    pub y_label: String,
    pub width: f64,
    pub height: f64,
    /// Plot area.
    pub left: f64,
    pub right: f64,
    pub top: f64,
    pub bottom: f64,
    pub x_ticks: Vec<Tick>,
    pub y_ticks: Vec<Tick>,
    pub series: Vec<Series>,
    pub markers: Vec<Marker>,
    pub thresholds: Vec<Threshold>,
    /// No value at all: the template says so instead of drawing empty axes.
    pub empty: bool,
}

/// Series colours (colour-blind safe, Okabe-Ito).
pub const PALETTE: [&str; 6] = [
    "#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9",
];

/// At most this many points per series: longer series are averaged into buckets, so that a
/// chart of any window stays the same size.
pub const MAX_POINTS: usize = 60;

/// Average consecutive samples into at most `max` buckets (each at its last sample's time).
#[must_use]
pub fn downsample(samples: &[Sample], max: usize, unit: Unit) -> Vec<Sample> {
    if samples.len() <= max || max == 0 {
        return samples.to_vec();
    }
    let per = samples.len().div_ceil(max);
    samples
        .chunks(per)
        .filter_map(|chunk| {
            let last = chunk.last()?;
            let first = chunk.first()?;
            let values: Vec<f64> = chunk.iter().filter_map(|s| s.value).collect();
            let value = if values.is_empty() {
                None
            } else {
                Some(values.iter().sum::<f64>() / values.len() as f64)
            };
            Some(Sample {
                t: last.t,
                value,
                label: format!(
                    "mean of {} runs, {} .. {}: {}",
                    chunk.len(),
                    first.label,
                    last.label,
                    unit.show(value)
                ),
            })
        })
        .collect()
}

/// Round a span up to 1, 2 or 5 times a power of ten.
fn nice_step(span: f64, ticks: usize) -> f64 {
    let raw = span / ticks.max(1) as f64;
    if raw <= 0.0 || !raw.is_finite() {
        return 1.0;
    }
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let nice = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// Steps between time ticks, seconds: a minute to a year.
const TIME_STEPS: [f64; 16] = [
    60.0,
    300.0,
    900.0,
    1800.0,
    3600.0,
    3.0 * 3600.0,
    6.0 * 3600.0,
    12.0 * 3600.0,
    86_400.0,
    2.0 * 86_400.0,
    7.0 * 86_400.0,
    14.0 * 86_400.0,
    30.0 * 86_400.0,
    91.0 * 86_400.0,
    182.0 * 86_400.0,
    365.0 * 86_400.0,
];

/// At most this many time ticks on an axis.
const TIME_TICKS: f64 = 5.0;

/// Time ticks over `t0..=t1`: at round times (whole minutes, hours, days) a step apart that
/// gives at most [`TIME_TICKS`], labelled to the step (`06:15`, `05-01 06:00`, `2024-05-01`,
/// `2024-05`), never two alike.
fn time_ticks(t0: f64, t1: f64) -> (f64, Vec<(f64, String)>) {
    let span = (t1 - t0).max(1.0);
    let step = TIME_STEPS
        .iter()
        .copied()
        .find(|s| span / s <= TIME_TICKS)
        .unwrap_or_else(|| (span / TIME_TICKS / 31_536_000.0).ceil() * 31_536_000.0);
    let same_day = chrono::DateTime::from_timestamp(t0 as i64, 0)
        .zip(chrono::DateTime::from_timestamp(t1 as i64, 0))
        .is_some_and(|(a, b)| a.date_naive() == b.date_naive());
    let format = if step < 86_400.0 {
        if same_day { "%H:%M" } else { "%m-%d %H:%M" }
    } else if step < 30.0 * 86_400.0 {
        "%Y-%m-%d"
    } else {
        "%Y-%m"
    };
    let mut out: Vec<(f64, String)> = Vec::new();
    let mut t = (t0 / step).ceil() * step;
    while t <= t1 + 1e-6 {
        if let Some(dt) = chrono::DateTime::from_timestamp(t as i64, 0) {
            let label = dt.format(format).to_string();
            if out.last().is_none_or(|(_, l)| *l != label) {
                out.push((t, label));
            }
        }
        t += step;
    }
    (step, out)
}

/// Lay a chart out. `unit` formats the y axis and hover labels; rates and scores span 0..1.
#[must_use]
pub fn line_chart(
    title: &str,
    unit: Unit,
    series: &[SeriesIn],
    markers: &[MarkerIn],
    thresholds: &[ThresholdIn],
    (width, height): (f64, f64),
) -> Chart {
    // The unit's title stands above the plot, clear of the top tick's label.
    let (left, right, top, bottom) = (56.0, width - 12.0, 22.0, height - 30.0);
    let mut chart = Chart {
        title: title.to_string(),
        y_label: match unit {
            Unit::Rate => "%",
            Unit::Score => "score",
            Unit::Ms => "ms",
            Unit::Usd => "USD",
            Unit::Count => "count",
        }
        .to_string(),
        width,
        height,
        left,
        right,
        top,
        bottom,
        x_ticks: Vec::new(),
        y_ticks: Vec::new(),
        series: Vec::new(),
        markers: Vec::new(),
        thresholds: Vec::new(),
        empty: true,
    };
    let series: Vec<SeriesIn> = series
        .iter()
        .map(|s| SeriesIn {
            name: s.name.clone(),
            samples: downsample(&s.samples, MAX_POINTS, unit),
        })
        .collect();
    let values = series
        .iter()
        .flat_map(|s| s.samples.iter().filter_map(|p| p.value))
        .filter(|v| v.is_finite());
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    let mut any = false;
    for v in values {
        any = true;
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !any {
        return chart;
    }
    chart.empty = false;
    // Threshold lines are on the scale too.
    for th in thresholds.iter().filter(|th| th.value.is_finite()) {
        lo = lo.min(th.value);
        hi = hi.max(th.value);
    }
    let times = series.iter().flat_map(|s| s.samples.iter().map(|p| p.t));
    let (mut t0, mut t1) = (f64::INFINITY, f64::NEG_INFINITY);
    for t in times {
        t0 = t0.min(t);
        t1 = t1.max(t);
    }
    // At least ten minutes on the axis, so that runs a few seconds apart get round ticks.
    if t1 - t0 < 600.0 {
        let pad = (600.0 - (t1 - t0)) / 2.0;
        t0 -= pad;
        t1 += pad;
    }
    // Rates and scores keep their natural 0..1 scale; others start at 0 and round up.
    let (y0, y1, step) = if matches!(unit, Unit::Rate | Unit::Score) {
        (0.0, 1.0, 0.25)
    } else {
        let top_v = if hi <= 0.0 { 1.0 } else { hi };
        let step = nice_step(top_v.max(lo.abs()), 4);
        let y0 = if lo < 0.0 {
            (lo / step).floor() * step
        } else {
            0.0
        };
        (y0, (top_v / step - 1e-9).ceil() * step, step)
    };
    let sx = |t: f64| left + (t - t0) / (t1 - t0) * (right - left);
    let sy = |v: f64| bottom - (v - y0) / (y1 - y0) * (bottom - top);
    let mut v = y0;
    while v <= y1 + step / 2.0 {
        chart.y_ticks.push(Tick {
            pos: round1(sy(v)),
            label: unit.tick(v, step),
            anchor: "end",
        });
        v += step;
    }
    for (t, label) in time_ticks(t0, t1).1 {
        let x = round1(sx(t));
        // A label of up to 11 characters of 10px text is about 60px wide.
        let anchor = if x - left < 30.0 {
            "start"
        } else if right - x < 30.0 {
            "end"
        } else {
            "middle"
        };
        chart.x_ticks.push(Tick {
            pos: x,
            label,
            anchor,
        });
    }
    for th in thresholds.iter().filter(|th| th.value.is_finite()) {
        chart.thresholds.push(Threshold {
            y: round1(sy(th.value)),
            label: th.label.clone(),
        });
    }
    for (i, s) in series.iter().enumerate() {
        let mut path = String::new();
        let mut pen_up = true;
        let mut points = Vec::new();
        for p in &s.samples {
            match p.value.filter(|v| v.is_finite()) {
                Some(v) => {
                    let (x, y) = (round1(sx(p.t)), round1(sy(v)));
                    path.push_str(if pen_up { "M" } else { " L" });
                    let _ = write!(path, "{x},{y}");
                    pen_up = false;
                    points.push(Point {
                        x,
                        y,
                        title: format!("{} · {}: {}", s.name, p.label, unit.format(v)),
                    });
                }
                None => pen_up = true,
            }
        }
        chart.series.push(Series {
            name: s.name.clone(),
            color: PALETTE[i % PALETTE.len()],
            path,
            points,
        });
    }
    for m in markers {
        if m.t >= t0 && m.t <= t1 {
            chart.markers.push(Marker {
                x: round1(sx(m.t)),
                label: m.label.clone(),
                class: m.class,
            });
        }
    }
    chart
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// A sparkline: one series, no axes, the last value marked.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Spark {
    pub path: String,
    pub points: Vec<Point>,
    pub last: String,
    pub empty: bool,
}

/// At most this many points in a sparkline.
pub const SPARK_POINTS: usize = 30;

#[must_use]
pub fn sparkline(name: &str, unit: Unit, samples: &[Sample]) -> Spark {
    let chart = line_chart(
        name,
        unit,
        &[SeriesIn {
            name: name.to_string(),
            samples: downsample(samples, SPARK_POINTS, unit),
        }],
        &[],
        &[],
        (120.0 + 68.0, 28.0 + 52.0),
    );
    let last = unit.show(samples.iter().rev().find_map(|s| s.value));
    let Some(series) = chart.series.into_iter().next() else {
        return Spark {
            path: String::new(),
            points: Vec::new(),
            last,
            empty: true,
        };
    };
    // Shift the plot area of the laid-out chart (56..176 x 22..50) to a bare 120 x 28 box.
    let shift = |p: &Point| Point {
        x: round1(p.x - 56.0),
        y: round1(p.y - 22.0),
        title: p.title.clone(),
    };
    let points: Vec<Point> = series.points.iter().map(shift).collect();
    let mut path = String::new();
    for (i, p) in points.iter().enumerate() {
        path.push_str(if i == 0 { "M" } else { " L" });
        let _ = write!(path, "{},{}", p.x, p.y);
    }
    Spark {
        empty: points.is_empty(),
        path,
        points,
        last,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(values: &[Option<f64>]) -> Vec<Sample> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| Sample {
                t: 1_700_000_000.0 + i as f64 * 86_400.0,
                value: *v,
                label: format!("run {i}"),
            })
            .collect()
    }

    #[test]
    fn formats_units() {
        assert_eq!(Unit::Rate.format(0.925), "92.5%");
        assert_eq!(Unit::Ms.format(1234.4), "1234 ms");
        assert_eq!(Unit::Ms.format(12_500.0), "12.5 s");
        assert_eq!(Unit::Usd.format(0.001), "$0.00100");
        assert_eq!(Unit::Usd.format(3.0), "$3.00");
        assert_eq!(Unit::Count.format(12_345.0), "12.3k");
        assert_eq!(Unit::Rate.show(None), "n/a");
        assert_eq!(Unit::Rate.show(Some(f64::NAN)), "n/a");
    }

    #[test]
    fn lays_out_points_inside_the_plot_with_exact_hover_values() {
        let s = SeriesIn {
            name: "prod".into(),
            samples: samples(&[Some(1.0), Some(0.5), None, Some(0.0)]),
        };
        let c = line_chart("pass rate", Unit::Rate, &[s], &[], &[], (600.0, 200.0));
        assert!(!c.empty);
        let pts = &c.series[0].points;
        assert_eq!(pts.len(), 3);
        assert!((pts[0].y - c.top).abs() < 0.01, "1.0 at the top");
        assert!((pts[2].y - c.bottom).abs() < 0.01, "0.0 at the bottom");
        assert!((pts[0].x - c.left).abs() < 0.01 && (pts[2].x - c.right).abs() < 0.01);
        assert_eq!(pts[1].title, "prod · run 1: 50.0%");
        // The missing value breaks the line.
        assert_eq!(c.series[0].path.matches('M').count(), 2);
        assert_eq!(c.y_ticks.first().map(|t| t.label.as_str()), Some("0%"));
        assert_eq!(c.y_ticks.last().map(|t| t.label.as_str()), Some("100%"));
        let days: Vec<&str> = c.x_ticks.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(days, ["2023-11-15", "2023-11-16", "2023-11-17"], "{days:?}");
    }

    #[test]
    fn no_values_is_an_empty_chart() {
        let s = SeriesIn {
            name: "p".into(),
            samples: samples(&[None, None]),
        };
        let c = line_chart("x", Unit::Ms, &[s], &[], &[], (600.0, 200.0));
        assert!(c.empty);
        assert!(c.series.is_empty());
    }

    #[test]
    fn long_series_are_bucketed_to_a_bounded_size() {
        let v: Vec<Option<f64>> = (0..365).map(|i| Some(f64::from(i))).collect();
        let d = downsample(&samples(&v), MAX_POINTS, Unit::Count);
        assert!(
            d.len() <= MAX_POINTS && d.len() > MAX_POINTS / 2,
            "{}",
            d.len()
        );
        // Buckets hold the mean of their runs: the first one holds runs 0..7.
        assert_eq!(d[0].value, Some(3.0));
        assert!(d[0].label.starts_with("mean of 7 runs"), "{}", d[0].label);
        let short = downsample(&samples(&v[..10]), MAX_POINTS, Unit::Count);
        assert_eq!(short.len(), 10);
    }

    #[test]
    fn axis_of_unbounded_units_rounds_up() {
        let s = SeriesIn {
            name: "p".into(),
            samples: samples(&[Some(130.0), Some(870.0)]),
        };
        let c = line_chart("latency", Unit::Ms, &[s], &[], &[], (600.0, 200.0));
        assert_eq!(
            c.y_ticks.last().map(|t| t.label.as_str()),
            Some("1000 ms"),
            "{:?}",
            c.y_ticks
        );
    }

    #[test]
    fn sparkline_fits_its_box_and_shows_the_last_value() {
        let sp = sparkline("p", Unit::Rate, &samples(&[Some(0.5), Some(1.0), None]));
        assert_eq!(sp.last, "100.0%");
        assert_eq!(sp.points.len(), 2);
        for p in &sp.points {
            assert!(
                (0.0..=120.0).contains(&p.x) && (0.0..=28.0).contains(&p.y),
                "{p:?}"
            );
        }
        assert!(sparkline("p", Unit::Rate, &[]).empty);
    }

    fn labels(ticks: &[Tick]) -> Vec<&str> {
        ticks.iter().map(|t| t.label.as_str()).collect()
    }

    fn at(times: &[f64], values: &[f64]) -> SeriesIn {
        SeriesIn {
            name: "p".into(),
            samples: times
                .iter()
                .zip(values)
                .map(|(t, v)| Sample {
                    t: *t,
                    value: Some(*v),
                    label: String::new(),
                })
                .collect(),
        }
    }

    /// Runs seconds apart, hours apart, months apart: round ticks, never two alike, inside
    /// the plot.
    #[test]
    fn time_ticks_are_round_and_distinct() {
        let base = 1_764_990_000.0; // 2025-12-06 03:00 UTC
        for times in [
            vec![base, base + 20.0, base + 40.0],
            vec![base],
            vec![base, base + 5.0 * 3600.0],
            vec![base, base + 3.5 * 86_400.0],
            vec![base, base + 200.0 * 86_400.0],
            vec![base, base + 9.0 * 365.0 * 86_400.0],
        ] {
            let values = vec![0.5; times.len()];
            let c = line_chart(
                "x",
                Unit::Rate,
                &[at(&times, &values)],
                &[],
                &[],
                (600.0, 200.0),
            );
            let l = labels(&c.x_ticks);
            assert!(l.len() >= 2 && l.len() <= 6, "{times:?}: {l:?}");
            let mut unique = l.clone();
            unique.sort_unstable();
            unique.dedup();
            assert_eq!(unique.len(), l.len(), "duplicate ticks {l:?}");
            for t in &c.x_ticks {
                assert!(t.pos >= c.left - 0.1 && t.pos <= c.right + 0.1, "{t:?}");
            }
        }
        let c = line_chart(
            "x",
            Unit::Rate,
            &[at(&[base, base + 40.0], &[0.5, 0.6])],
            &[],
            &[],
            (600.0, 200.0),
        );
        assert!(
            labels(&c.x_ticks)
                .iter()
                .all(|l| l.len() == 5 && l.contains(':'))
        );
    }

    /// Tiny costs, fractional scores, rates: ticks as distinct as their values, no
    /// `$0.00000`, no `100.0%`.
    #[test]
    fn value_ticks_are_formatted_to_their_step() {
        let t = [1_700_000_000.0, 1_700_086_400.0];
        let cost = line_chart(
            "c",
            Unit::Usd,
            &[at(&t, &[0.000_01, 0.000_03])],
            &[],
            &[],
            (600.0, 200.0),
        );
        let l = labels(&cost.y_ticks);
        assert_eq!(l, ["$0", "$0.00001", "$0.00002", "$0.00003"], "{l:?}");
        let big = line_chart(
            "c",
            Unit::Usd,
            &[at(&t, &[1.0, 3.5])],
            &[],
            &[],
            (600.0, 200.0),
        );
        assert_eq!(
            labels(&big.y_ticks),
            ["$0", "$1.00", "$2.00", "$3.00", "$4.00"]
        );
        let rate = line_chart(
            "r",
            Unit::Rate,
            &[at(&t, &[0.2, 0.9])],
            &[],
            &[],
            (600.0, 200.0),
        );
        assert_eq!(labels(&rate.y_ticks), ["0%", "25%", "50%", "75%", "100%"]);
        let score = line_chart(
            "s",
            Unit::Score,
            &[at(&t, &[0.2, 0.9])],
            &[],
            &[],
            (600.0, 200.0),
        );
        assert_eq!(
            labels(&score.y_ticks),
            ["0.00", "0.25", "0.50", "0.75", "1.00"]
        );
        let ms = line_chart(
            "l",
            Unit::Ms,
            &[at(&t, &[1.0, 3.0])],
            &[],
            &[],
            (600.0, 200.0),
        );
        let l = labels(&ms.y_ticks);
        let mut unique = l.clone();
        unique.dedup();
        assert_eq!(unique, l, "{l:?}");
    }

    /// A gate's limit is a line on the chart, on its scale even when the values are far from
    /// it; alert markers keep their class.
    #[test]
    fn thresholds_and_alert_markers_are_drawn() {
        let t = [1_700_000_000.0, 1_700_086_400.0];
        let c = line_chart(
            "latency",
            Unit::Ms,
            &[at(&t, &[100.0, 200.0])],
            &[MarkerIn {
                t: t[1],
                label: "alert opened".into(),
                class: "alert",
            }],
            &[ThresholdIn {
                value: 4000.0,
                label: "gate latency_p95_ms <= 4000".into(),
            }],
            (600.0, 200.0),
        );
        assert_eq!(c.thresholds.len(), 1);
        let th = &c.thresholds[0];
        assert!(th.y >= c.top - 0.1 && th.y <= c.bottom, "{th:?}");
        assert_eq!(c.y_ticks.last().map(|t| t.label.as_str()), Some("4000 ms"));
        assert_eq!(c.markers.len(), 1);
        assert_eq!(c.markers[0].class, "alert");
        assert!((c.markers[0].x - c.right).abs() < 0.2);
    }
}
