//! Plots a person can read: plotters' bitmap backend drawing into a buffer, text in the
//! embedded DejaVu Sans font (no system fonts), encoded as PNG. Every plot has a title,
//! labelled axes with ticks and a legend or a colour key.

use crate::output::png;
use plotters::coord::Shift;
use plotters::prelude::*;

const WIDTH: u32 = 800;
const HEIGHT: u32 = 500;
const FONT: &str = "sans-serif";

/// Colours of successive series.
pub const PALETTE: [RGBColor; 6] = [
    RGBColor(214, 39, 40),
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

fn register_fonts() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // The font is embedded and valid; a failure would only lose the text.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
        let _ = plotters::style::register_font(FONT, FontStyle::Bold, dejavu::sans::bold());
    });
}

fn e(err: impl std::fmt::Display) -> String {
    format!("plot: {err}")
}

/// Draws with `draw` on a white `w × h` canvas and returns PNG bytes.
fn render(
    w: u32,
    h: u32,
    draw: impl FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> Result<(), String>,
) -> Result<Vec<u8>, String> {
    register_fonts();
    let mut buf = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(e)?;
        draw(&root)?;
        root.present().map_err(e)?;
    }
    png(w as usize, h as usize, 3, &buf)
}

/// One line of a plot.
pub struct Series {
    /// Legend text.
    pub label: String,
    /// `(x, y)` points.
    pub points: Vec<(f64, f64)>,
}

impl Series {
    /// A series named `label`.
    pub fn new(label: impl Into<String>, points: Vec<(f64, f64)>) -> Series {
        Series {
            label: label.into(),
            points,
        }
    }
}

fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
    if lo > hi {
        (0.0, 1.0)
    } else if hi - lo < 1e-12 * hi.abs().max(1.0) {
        (lo - 0.5 * lo.abs().max(1e-3), hi + 0.5 * hi.abs().max(1e-3))
    } else {
        (lo, hi)
    }
}

/// Lines with markers; with `log_y` the y axis is logarithmic (non-positive values are
/// left out).
pub fn line_plot(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    log_y: bool,
) -> Result<Vec<u8>, String> {
    render(WIDTH, HEIGHT, |root| {
        draw_lines(root, title, x_label, y_label, series, log_y)
    })
}

/// [`line_plot`] on the drawing area `root`.
fn draw_lines(
    root: &DrawingArea<BitMapBackend<'_>, Shift>,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    log_y: bool,
) -> Result<(), String> {
    let tr = |y: f64| if log_y { y.log10() } else { y };
    let (x0, x1) = bounds(series.iter().flat_map(|s| s.points.iter().map(|p| p.0)));
    let (y0, y1) = bounds(series.iter().flat_map(|s| s.points.iter().map(|p| tr(p.1))));
    // Room above the lines for the legend.
    let (y0, y1) = (y0 - 0.05 * (y1 - y0), y1 + 0.3 * (y1 - y0));
    let integer_x = series
        .iter()
        .all(|s| s.points.iter().all(|p| p.0.fract() == 0.0));
    let xpad = if x1 > x0 { 0.02 * (x1 - x0) } else { 0.5 };
    {
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 22))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d(x0 - xpad..x1 + xpad, y0..y1)
            .map_err(e)?;
        let y_fmt = |v: &f64| {
            if log_y {
                format!("{:.0e}", 10f64.powf(*v))
            } else {
                // Enough decimals to tell the ticks apart, no more.
                let decimals = (2.0 - (y1 - y0).log10().floor()).clamp(0.0, 6.0) as usize;
                format!("{v:.decimals$}")
            }
        };
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 16))
            .y_label_formatter(&y_fmt)
            .x_labels(if integer_x {
                ((x1 - x0) as usize + 1).min(12)
            } else {
                10
            })
            .x_label_formatter(&|v: &f64| {
                if v.fract().abs() < 1e-9 {
                    format!("{v:.0}")
                } else if integer_x {
                    String::new()
                } else {
                    format!("{v:.2}")
                }
            })
            .draw()
            .map_err(e)?;
        for (k, s) in series.iter().enumerate() {
            let color = PALETTE[k % PALETTE.len()];
            let pts: Vec<(f64, f64)> = s
                .points
                .iter()
                .filter(|p| !log_y || p.1 > 0.0)
                .map(|&(x, y)| (x, tr(y)))
                .filter(|p| p.1.is_finite())
                .collect();
            chart
                .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
                .map_err(e)?
                .label(s.label.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            chart
                .draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))
                .map_err(e)?;
        }
        chart
            .configure_series_labels()
            .label_font((FONT, 14))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(e)?;
        Ok(())
    }
}

/// One epoch of a DrSAE run: (epoch over both phases, loss, training error %, validation
/// error %, phase).
pub type DrsaeEpoch = (f64, f64, f64, f64, u8);

/// DrSAE's training curves: the loss per epoch of each phase above, the training and
/// validation errors of phase 2 below.
pub fn training_curves(history: &[DrsaeEpoch], title: &str) -> Result<Vec<u8>, String> {
    let phase = |p: u8| -> Vec<(f64, f64)> {
        history
            .iter()
            .filter(|h| h.4 == p)
            .map(|h| (h.0, h.1))
            .collect()
    };
    let mut losses = Vec::new();
    for (p, name) in [(1, "phase 1 (unsupervised)"), (2, "phase 2 (supervised)")] {
        let pts = phase(p);
        if !pts.is_empty() {
            losses.push(Series::new(name, pts));
        }
    }
    let errors = |k: usize| -> Vec<(f64, f64)> {
        history
            .iter()
            .map(|h| (h.0, if k == 2 { h.2 } else { h.3 }))
            .filter(|p| p.1.is_finite())
            .collect()
    };
    let errs = vec![
        Series::new("training error", errors(2)),
        Series::new("validation error", errors(3)),
    ];
    render(WIDTH, 2 * HEIGHT, |root| {
        let (top, bottom) = root.split_vertically(HEIGHT);
        draw_lines(
            &top,
            &format!("{title}: loss"),
            "epoch",
            "loss per example",
            &losses,
            false,
        )?;
        draw_lines(
            &bottom,
            &format!("{title}: classification error"),
            "epoch",
            "error (%)",
            &errs,
            false,
        )
    })
}

/// The training loss per epoch.
pub fn loss_curve(losses: &[f64], title: &str) -> Result<Vec<u8>, String> {
    let pts = losses
        .iter()
        .enumerate()
        .map(|(i, &l)| ((i + 1) as f64, l))
        .collect();
    line_plot(
        title,
        "epoch",
        "loss per example",
        &[Series::new("training loss", pts)],
        false,
    )
}

/// A histogram of `values` in `bins` equal bins over `[lo, hi]`, with vertical lines at
/// `markers` (value, legend text).
#[allow(clippy::too_many_arguments)]
pub fn histogram(
    title: &str,
    x_label: &str,
    y_label: &str,
    values: &[f64],
    bins: usize,
    (lo, hi): (f64, f64),
    bar_label: &str,
    markers: &[(f64, String)],
) -> Result<Vec<u8>, String> {
    let bins = bins.max(1);
    let width = (hi - lo) / bins as f64;
    let mut counts = vec![0usize; bins];
    for &v in values.iter().filter(|v| v.is_finite()) {
        let b = (((v - lo) / width).floor().max(0.0) as usize).min(bins - 1);
        counts[b] += 1;
    }
    let top = counts.iter().copied().max().unwrap_or(0).max(1) as f64 * 1.1;
    render(WIDTH, HEIGHT, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 22))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d(lo..hi, 0.0..top)
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 16))
            .y_label_formatter(&|v: &f64| format!("{v:.0}"))
            .x_label_formatter(&|v: &f64| format!("{v:.2}"))
            .draw()
            .map_err(e)?;
        let bar = RGBColor(90, 120, 200);
        chart
            .draw_series(counts.iter().enumerate().map(|(i, &c)| {
                let x = lo + i as f64 * width;
                Rectangle::new([(x, 0.0), (x + width, c as f64)], bar.filled())
            }))
            .map_err(e)?
            .label(bar_label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], bar.filled()));
        for (k, (at, text)) in markers.iter().enumerate() {
            let color = PALETTE[k % PALETTE.len()];
            let at = *at;
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(at, 0.0), (at, top)],
                    8,
                    5,
                    color.stroke_width(2),
                ))
                .map_err(e)?
                .label(text.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .label_font((FONT, 14))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperLeft)
            .draw()
            .map_err(e)?;
        Ok(())
    })
}

/// A colour-wheel colour for `h` in [0, 1) at brightness `v` in [0, 1].
fn hue(h: f64, v: f64) -> RGBColor {
    let h6 = h.rem_euclid(1.0) * 6.0;
    let x = 1.0 - (h6 % 2.0 - 1.0).abs();
    let (r, g, b) = match h6 as u32 {
        0 => (1.0, x, 0.0),
        1 => (x, 1.0, 0.0),
        2 => (0.0, 1.0, x),
        3 => (0.0, x, 1.0),
        4 => (x, 0.0, 1.0),
        _ => (1.0, 0.0, x),
    };
    let c = |u: f64| (255.0 * u * v.clamp(0.0, 1.0)) as u8;
    RGBColor(c(r), c(g), c(b))
}

/// Each unit of a `cols × rows` sheet as a square coloured by its preferred orientation θ
/// (hue) and selectivity (brightness), with a colour key of θ in degrees.
pub fn orientation_map(
    orientations: &[(f64, f64)],
    cols: usize,
    rows: usize,
    title: &str,
) -> Result<Vec<u8>, String> {
    let cols = cols.max(1);
    let rows = rows.max(1);
    let cell = (560 / cols.max(rows)).clamp(2, 48) as u32;
    let map_w = cell * cols as u32;
    let map_h = cell * rows as u32;
    let w = (map_w + 80).max(480);
    let h = map_h + 60 + 110;
    let maxsel = orientations.iter().map(|o| o.1).fold(1e-12, f64::max);
    render(w, h, |root| {
        let (top, key) = root.split_vertically(map_h + 60);
        let top = top.titled(title, (FONT, 20)).map_err(e)?;
        let x0 = (w - map_w) as i32 / 2;
        for (k, &(theta, sel)) in orientations.iter().enumerate() {
            let (gy, gx) = ((k / cols) as i32, (k % cols) as i32);
            let c = hue(theta / std::f64::consts::PI, (sel / maxsel).sqrt());
            let (px, py) = (x0 + gx * cell as i32, 10 + gy * cell as i32);
            top.draw(&Rectangle::new(
                [(px, py), (px + cell as i32, py + cell as i32)],
                c.filled(),
            ))
            .map_err(e)?;
        }
        let mut chart = ChartBuilder::on(&key)
            .margin_left(40)
            .margin_right(40)
            .margin_top(10)
            .x_label_area_size(55)
            .build_cartesian_2d(0.0..180.0, 0.0..1.0)
            .map_err(e)?;
        chart
            .configure_mesh()
            .disable_y_axis()
            .disable_mesh()
            .x_labels(7)
            .x_desc("preferred orientation (degrees); darker = less selective")
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 14))
            .x_label_formatter(&|v: &f64| format!("{v:.0}°"))
            .draw()
            .map_err(e)?;
        chart
            .draw_series((0..180).map(|d| {
                let d = d as f64;
                Rectangle::new([(d, 0.0), (d + 1.0, 1.0)], hue(d / 180.0, 1.0).filled())
            }))
            .map_err(e)?;
        Ok(())
    })
}
