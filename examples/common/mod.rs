//! Shared command-line plumbing for the examples: flag parsing, progress with ETA, JSON
//! output, PNG writing. Not part of the library.
#![allow(dead_code)]

use std::collections::HashMap;
use std::time::Instant;

/// Parsed `--flag value` / `--switch` arguments plus positionals.
pub struct Args {
    map: HashMap<String, String>,
    pub positional: Vec<String>,
    used: std::cell::RefCell<Vec<String>>,
}

/// Prints one human line on stderr and exits with status 2.
pub fn die(msg: impl std::fmt::Display) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(2)
}

impl Args {
    pub fn parse(switches: &[&str]) -> Args {
        let mut map = HashMap::new();
        let mut positional = Vec::new();
        let mut it = std::env::args().skip(1);
        while let Some(a) = it.next() {
            if let Some(name) = a.strip_prefix("--") {
                if let Some((k, v)) = name.split_once('=') {
                    map.insert(k.to_string(), v.to_string());
                } else if switches.contains(&name) {
                    map.insert(name.to_string(), "true".to_string());
                } else {
                    match it.next() {
                        Some(v) => {
                            map.insert(name.to_string(), v);
                        }
                        None => die(format!("--{name} needs a value")),
                    }
                }
            } else {
                positional.push(a);
            }
        }
        Args {
            map,
            positional,
            used: Default::default(),
        }
    }

    pub fn get<T: std::str::FromStr>(&self, name: &str, default: T) -> T {
        self.opt(name).unwrap_or(default)
    }

    /// The value of `--name` parsed as `T`; exits (status 2, one line) on a value that does
    /// not parse and on a value out of the range every example shares:
    /// - a real (`f32`, `f64`) must be finite (`1e39` is infinite as an `f32`) and ≥ 0 (no
    ///   example has a negative real setting), and `> 0` for `--lr`, `--lr-unsup` and
    ///   `--time-budget`;
    /// - a size or count (`usize`) must be at most [`MAX_SIZE`] (a larger one is no real
    ///   setting, and products of such sizes overflow or ask for the impossible).
    ///
    /// Each example checks its own tighter bounds against its data.
    pub fn opt<T: std::str::FromStr>(&self, name: &str) -> Option<T> {
        self.used.borrow_mut().push(name.to_string());
        self.map.get(name).map(|v| {
            let t = std::any::type_name::<T>();
            if t == "f32" || t == "f64" {
                let x = if t == "f32" {
                    v.parse::<f32>().ok().map(f64::from)
                } else {
                    v.parse::<f64>().ok()
                };
                let Some(x) = x else {
                    die(format!("--{name}: cannot parse `{v}`"));
                };
                if !x.is_finite() {
                    die(format!("--{name}: `{v}` is not a finite number"));
                }
                let positive = matches!(name, "lr" | "lr-unsup" | "time-budget");
                if positive && x <= 0.0 {
                    die(format!("--{name}: `{v}` must be > 0"));
                }
                if x < 0.0 {
                    die(format!("--{name}: `{v}` must be ≥ 0"));
                }
            }
            if t == "usize" {
                match v.parse::<usize>() {
                    Ok(n) if n > MAX_SIZE => die(format!(
                        "--{name}: {n} is out of range (at most {MAX_SIZE})"
                    )),
                    _ => {}
                }
            }
            v.parse()
                .unwrap_or_else(|_| die(format!("--{name}: cannot parse `{v}`")))
        })
    }

    pub fn str(&self, name: &str) -> Option<String> {
        self.opt::<String>(name)
    }

    pub fn flag(&self, name: &str) -> bool {
        self.used.borrow_mut().push(name.to_string());
        self.map.contains_key(name)
    }

    /// Rejects flags nobody asked for and any positional argument (call after reading
    /// every option).
    pub fn finish(&self) {
        self.finish_positional(0)
    }

    /// [`Args::finish`] for a command that takes up to `max` positional arguments.
    pub fn finish_positional(&self, max: usize) {
        if let Some(extra) = self.positional.get(max) {
            die(format!("unexpected argument `{extra}`"));
        }
        let used = self.used.borrow();
        for k in self.map.keys() {
            if !used.contains(k) {
                die(format!("unknown option --{k}"));
            }
        }
    }
}

/// The largest value of any size or count flag (`usize`): 10⁸.
pub const MAX_SIZE: usize = 100_000_000;

/// The most f32 values one buffer the flags ask for may hold: 2²⁹ (2 GiB).
pub const MAX_FLOATS: usize = 1 << 29;

/// Exits (status 2, one line) when a buffer of `dims` (multiplied) f32 values, described
/// by `what`, would exceed [`MAX_FLOATS`] or overflow.
pub fn check_floats(what: &str, dims: &[usize]) {
    let total = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if total.map_or(true, |t| t > MAX_FLOATS) {
        die(format!(
            "{what}: {} values are more than the {MAX_FLOATS} one buffer may hold",
            dims.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("×")
        ));
    }
}

/// The largest `--threads` accepted (each GEMM may start that many threads).
pub const MAX_THREADS: usize = 256;

/// Sets the GEMM thread count from `--threads` (default: all cores) and returns it.
pub fn threads(args: &Args) -> usize {
    let default = std::thread::available_parallelism().map_or(1, |n| n.get());
    let t: usize = args.get("threads", default);
    if !(1..=MAX_THREADS).contains(&t) {
        die(format!("--threads must be in 1..={MAX_THREADS}"));
    }
    drsae::linalg::set_gemm_threads(t)
}

/// Progress reporting on stderr with an ETA.
pub struct Progress {
    start: Instant,
    label: String,
}

impl Progress {
    pub fn new(label: &str) -> Progress {
        Progress {
            start: Instant::now(),
            label: label.to_string(),
        }
    }
    pub fn elapsed(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }
    /// `done` of `total` units finished; prints elapsed and ETA plus `msg`.
    pub fn report(&self, done: f64, total: f64, msg: &str) {
        let el = self.elapsed();
        let eta = if done > 0.0 {
            el * (total - done).max(0.0) / done
        } else {
            f64::NAN
        };
        eprintln!(
            "[{}] {:5.1}% {} elapsed {:.0}s, ETA {:.0}s",
            self.label,
            100.0 * done / total.max(1e-12),
            msg,
            el,
            eta
        );
    }
}

/// Minimal JSON object writer for the last stdout line.
pub struct Json(Vec<String>);

impl Json {
    pub fn new() -> Json {
        Json(Vec::new())
    }
    pub fn num(mut self, k: &str, v: f64) -> Json {
        let s = if v.is_finite() {
            format!("{v}")
        } else {
            "null".to_string()
        };
        self.0.push(format!("\"{k}\":{s}"));
        self
    }
    pub fn str(mut self, k: &str, v: &str) -> Json {
        self.0.push(format!(
            "\"{k}\":\"{}\"",
            v.replace('\\', "\\\\").replace('"', "\\\"")
        ));
        self
    }
    /// Every `(key, value)` pair as a string field.
    pub fn strs(mut self, fields: &[(&str, String)]) -> Json {
        for (k, v) in fields {
            self = self.str(k, v);
        }
        self
    }
    /// A nested object of string fields.
    pub fn object(mut self, k: &str, fields: &[(String, String)]) -> Json {
        let inner = fields.iter().fold(Json::new(), |j, (k, v)| j.str(k, v));
        self.0.push(format!("\"{k}\":{{{}}}", inner.0.join(", ")));
        self
    }
    pub fn print(self) {
        println!("{{{}}}", self.0.join(", "));
    }
}

/// Where a result came from: crate version, git commit (when run from a checkout, `+dirty`
/// with uncommitted changes), the SIMD level the kernels use, the CPU model and the GEMM
/// thread count.
pub fn provenance() -> Vec<(&'static str, String)> {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).map(|c| {
        let dirty =
            git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
        if dirty {
            format!("{c}+dirty")
        } else {
            c
        }
    });
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    vec![
        ("crate_version", env!("CARGO_PKG_VERSION").to_string()),
        ("git_commit", commit.unwrap_or_else(|| "unknown".into())),
        ("simd", drsae::simd_width().to_string()),
        ("cpu", cpu),
        ("threads", drsae::linalg::gemm_threads().to_string()),
    ]
}

/// Writes an 8-bit grayscale PNG.
pub fn write_png_gray(
    path: &std::path::Path,
    width: usize,
    height: usize,
    pixels: &[u8],
) -> std::io::Result<()> {
    write_png(path, width, height, png::ColorType::Grayscale, pixels)
}

/// Writes an 8-bit RGB PNG.
pub fn write_png_rgb(
    path: &std::path::Path,
    width: usize,
    height: usize,
    pixels: &[u8],
) -> std::io::Result<()> {
    write_png(path, width, height, png::ColorType::Rgb, pixels)
}

fn write_png(
    path: &std::path::Path,
    width: usize,
    height: usize,
    color: png::ColorType,
    pixels: &[u8],
) -> std::io::Result<()> {
    let f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut enc = png::Encoder::new(f, width as u32, height as u32);
    enc.set_color(color);
    enc.set_depth(png::BitDepth::Eight);
    let mut w = enc.write_header().map_err(std::io::Error::other)?;
    w.write_image_data(pixels).map_err(std::io::Error::other)
}

/// Lays out `tiles` (each `th × tw` values, row-major) on a grid, each tile scaled to its own
/// [min, max], with a 1-pixel border; writes a grayscale PNG.
pub fn write_tiles_png(
    path: &std::path::Path,
    tiles: &[&[f32]],
    th: usize,
    tw: usize,
    cols: usize,
) -> std::io::Result<()> {
    write_tiles_png_zoom(path, tiles, th, tw, cols, 1)
}

/// [`write_tiles_png`] with every value drawn as a `zoom × zoom` block (for small kernels).
pub fn write_tiles_png_zoom(
    path: &std::path::Path,
    tiles: &[&[f32]],
    th: usize,
    tw: usize,
    cols: usize,
    zoom: usize,
) -> std::io::Result<()> {
    let (zoom, cols) = (zoom.max(1), cols.max(1));
    let rows = tiles.len().div_ceil(cols);
    let (zh, zw) = (th * zoom, tw * zoom);
    let (w, h) = (cols * (zw + 1) + 1, rows * (zh + 1) + 1);
    let mut px = vec![64u8; w * h];
    for (k, t) in tiles.iter().enumerate() {
        let (lo, hi) = t
            .iter()
            .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        let span = if hi > lo { hi - lo } else { 1.0 };
        let (r, c) = (k / cols, k % cols);
        for y in 0..zh {
            for x in 0..zw {
                let v =
                    ((t[(y / zoom) * tw + x / zoom] - lo) / span * 255.0).clamp(0.0, 255.0) as u8;
                px[(r * (zh + 1) + 1 + y) * w + c * (zw + 1) + 1 + x] = v;
            }
        }
    }
    write_png_gray(path, w, h, &px)
}

/// Lays out the tiles of a complete tree (`branching` children per node, `depth` levels,
/// breadth-first numbering: root at the top, each node centred over its children) and
/// writes a grayscale PNG; `None` tiles (pruned nodes) are left blank. Each tile is `side`
/// × `side` values scaled to its own [min, max], zoomed so the picture stays ≤ ~2,400 px
/// wide.
pub fn write_tree_png(
    path: &std::path::Path,
    tiles: &[Option<&[f32]>],
    side: usize,
    branching: usize,
    depth: usize,
) -> std::io::Result<()> {
    let leaves = branching.pow(depth as u32 - 1);
    let cell = side + 2;
    let zoom = (2400 / (leaves * cell).max(1)).clamp(1, 4);
    let (w, h) = (leaves * cell * zoom, depth * (cell + side) * zoom);
    let mut px = vec![96u8; w * h];
    let mut node = 0;
    for level in 0..depth {
        let count = branching.pow(level as u32);
        let span = leaves / count;
        for k in 0..count {
            let tile = tiles.get(node).copied().flatten();
            node += 1;
            let Some(t) = tile else { continue };
            let (lo, hi) = t
                .iter()
                .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
            let cx = ((k * span) as f64 * cell as f64 + span as f64 * cell as f64 / 2.0
                - side as f64 / 2.0) as usize
                * zoom;
            let y0 = (level * (cell + side) + 1) * zoom;
            for y in 0..side * zoom {
                for x in 0..side * zoom {
                    let v = ((t[(y / zoom) * side + x / zoom] - lo) / (hi - lo).max(1e-12) * 255.0)
                        as u8;
                    px[(y0 + y) * w + cx + x] = v;
                }
            }
        }
    }
    write_png_gray(path, w, h, &px)
}

/// `--out DIR` if given: the path only (an existing file that is not a directory is
/// refused at once). The directory is created by [`make_out_dir`] when the first output is
/// written, after every input has been read and checked, so a run that fails on its input
/// leaves nothing behind, not even the directory.
pub fn out_dir(args: &Args) -> Option<std::path::PathBuf> {
    args.str("out").map(|d| {
        let p = std::path::PathBuf::from(d);
        if p.exists() && !p.is_dir() {
            die(format!("--out {}: not a directory", p.display()));
        }
        p
    })
}

/// Creates the `--out` directory (and its parents) before the first output goes into it.
pub fn make_out_dir(dir: &std::path::Path) {
    std::fs::create_dir_all(dir)
        .unwrap_or_else(|e| die(format!("cannot create {}: {e}", dir.display())));
}

/// A tiny RGB canvas for line plots.
pub struct Canvas {
    pub w: usize,
    pub h: usize,
    pub px: Vec<u8>,
}

impl Canvas {
    pub fn new(w: usize, h: usize) -> Canvas {
        Canvas {
            w,
            h,
            px: vec![255; w * h * 3],
        }
    }
    pub fn dot(&mut self, x: i64, y: i64, c: [u8; 3]) {
        if x >= 0 && y >= 0 && (x as usize) < self.w && (y as usize) < self.h {
            let i = (y as usize * self.w + x as usize) * 3;
            self.px[i..i + 3].copy_from_slice(&c);
        }
    }
    pub fn line(&mut self, (x0, y0): (f64, f64), (x1, y1): (f64, f64), c: [u8; 3]) {
        let steps = ((x1 - x0).abs().max((y1 - y0).abs()) as usize).max(1);
        for s in 0..=steps {
            let t = s as f64 / steps as f64;
            let (x, y) = (x0 + t * (x1 - x0), y0 + t * (y1 - y0));
            for d in [(0, 0), (1, 0), (0, 1)] {
                self.dot(x as i64 + d.0, y as i64 + d.1, c);
            }
        }
    }
    pub fn save(&self, path: &std::path::Path) -> std::io::Result<()> {
        write_png_rgb(path, self.w, self.h, &self.px)
    }
}

/// One curve of a plot: its (x, y) points and its RGB colour.
pub type Series<'a> = (&'a [(f64, f64)], [u8; 3]);

/// Plots several series (x, y) with a log-scale y axis; returns the canvas.
pub fn log_plot(series: &[Series<'_>]) -> Canvas {
    let (w, h, m) = (640usize, 400usize, 40.0);
    let mut c = Canvas::new(w, h);
    let pts = series
        .iter()
        .flat_map(|(s, _)| s.iter())
        .filter(|p| p.1 > 0.0);
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in pts {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y.log10());
        y1 = y1.max(y.log10());
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    if y1 <= y0 {
        y1 = y0 + 1.0;
    }
    let (y0, y1) = (y0.floor(), y1.ceil());
    let map = |x: f64, y: f64| {
        (
            m + (x - x0) / (x1 - x0) * (w as f64 - 2.0 * m),
            h as f64 - m - (y.log10() - y0) / (y1 - y0) * (h as f64 - 2.0 * m),
        )
    };
    // Axes and decade grid lines.
    c.line((m, m), (m, h as f64 - m), [0, 0, 0]);
    c.line((m, h as f64 - m), (w as f64 - m, h as f64 - m), [0, 0, 0]);
    let mut d = y0;
    while d <= y1 {
        let y = h as f64 - m - (d - y0) / (y1 - y0) * (h as f64 - 2.0 * m);
        c.line((m, y), (w as f64 - m, y), [220, 220, 220]);
        d += 1.0;
    }
    for (s, col) in series {
        let v: Vec<(f64, f64)> = s
            .iter()
            .filter(|p| p.1 > 0.0)
            .map(|&(x, y)| map(x, y))
            .collect();
        for p in v.windows(2) {
            c.line(p[0], p[1], *col);
        }
    }
    c
}

/// A colour-wheel colour for `h` in [0, 1) at brightness `v` in [0, 1].
pub fn hue_to_rgb(h: f64, v: f64) -> [u8; 3] {
    let h6 = (h.rem_euclid(1.0)) * 6.0;
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
    [c(r), c(g), c(b)]
}

/// Each unit as a 12 × 12 block coloured by orientation (hue = 2θ) and selectivity.
pub fn write_orientation_png(
    path: &std::path::Path,
    orient: &[(f64, f64)],
    grid: usize,
) -> std::io::Result<()> {
    let cell = 12;
    let side = grid * cell;
    let maxsel = orient.iter().map(|o| o.1).fold(1e-12, f64::max);
    let mut px = vec![0u8; side * side * 3];
    for (k, &(theta, sel)) in orient.iter().enumerate() {
        let rgb = hue_to_rgb(theta / std::f64::consts::PI, (sel / maxsel).sqrt());
        let (gy, gx) = (k / grid, k % grid);
        for y in 0..cell {
            for x in 0..cell {
                let i = ((gy * cell + y) * side + gx * cell + x) * 3;
                px[i..i + 3].copy_from_slice(&rgb);
            }
        }
    }
    write_png_rgb(path, side, side, &px)
}

/// `reconstruction R, group term G, active groups A` per example of a group-sparse epoch,
/// with `digits` decimals for the two loss terms.
pub fn group_loss_summary(l: &drsae::models::GroupAeLoss, digits: usize) -> String {
    let n = l.count.max(1) as f64;
    format!(
        "reconstruction {:.digits$}, group term {:.digits$}, active groups {:.1}",
        l.reconstruction / n,
        l.group / n,
        l.active_groups
    )
}
