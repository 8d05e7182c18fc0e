//! Files a subcommand writes: gathered in memory while it runs, written only when it has
//! succeeded (bad input leaves nothing behind), each atomically.

use std::path::Path;

/// `json` (an object) with the provenance every result carries, where it does not already
/// say: the drsae version and git commit of the build, the SIMD level, the CPU model and
/// the thread count.
pub fn with_provenance(mut json: serde_json::Value) -> serde_json::Value {
    if let serde_json::Value::Object(map) = &mut json {
        for (k, v) in [
            (
                "crate_version",
                serde_json::json!(env!("CARGO_PKG_VERSION")),
            ),
            ("git_commit", serde_json::json!(drsae::BUILD_COMMIT)),
            ("simd", serde_json::json!(drsae::simd_width())),
            ("cpu", serde_json::json!(drsae::simd::cpu_model())),
            ("threads", serde_json::json!(drsae::linalg::gemm_threads())),
        ] {
            map.entry(k).or_insert(v);
        }
    }
    json
}

/// Named files to write into the `--out` directory.
#[derive(Default)]
pub struct Outputs {
    files: Vec<(String, Vec<u8>)>,
}

impl Outputs {
    /// Adds file `name` with `bytes`.
    pub fn add(&mut self, name: impl Into<String>, bytes: impl Into<Vec<u8>>) {
        self.files.push((name.into(), bytes.into()));
    }

    /// Adds the JSON result, with its provenance, as `result.json`.
    pub fn json(&mut self, json: &serde_json::Value) {
        self.add(
            "result.json",
            format!("{}\n", with_provenance(json.clone())),
        );
    }

    /// Creates `dir` and writes every file into it.
    pub fn write(self, dir: Option<&Path>) -> Result<(), String> {
        let Some(dir) = dir else { return Ok(()) };
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for (name, bytes) in self.files {
            drsae::io::write_atomic(dir.join(&name), &bytes).map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// Any error as a message.
pub fn msg(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// PNG bytes of an 8-bit grey (`channels` = 1) or RGB (3) image.
pub fn png(width: usize, height: usize, channels: usize, pixels: &[u8]) -> Result<Vec<u8>, String> {
    let color = if channels == 3 {
        image::ExtendedColorType::Rgb8
    } else {
        image::ExtendedColorType::L8
    };
    let mut out = Vec::new();
    image::ImageEncoder::write_image(
        image::codecs::png::PngEncoder::new(&mut out),
        pixels,
        width as u32,
        height as u32,
        color,
    )
    .map_err(msg)?;
    Ok(out)
}

/// A mosaic of `tiles` (each `th × tw` values, row-major) on `cols` columns, each tile scaled
/// to its own [min, max] and every value drawn as a `zoom × zoom` block, 1-pixel borders:
/// grey PNG bytes.
pub fn tiles_png(
    tiles: &[Vec<f32>],
    th: usize,
    tw: usize,
    cols: usize,
    zoom: usize,
) -> Result<Vec<u8>, String> {
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
    png(w, h, 1, &px)
}

/// The tiles of a complete tree (`branching` children per node, `depth` levels,
/// breadth-first numbering: root at the top, each node centred over its children); `None`
/// tiles (pruned nodes) are left blank. Each tile is `side × side` values scaled to its own
/// [min, max], zoomed so the picture stays ≤ ~2,400 px wide: grey PNG bytes.
pub fn tree_png(
    tiles: &[Option<&[f32]>],
    side: usize,
    branching: usize,
    depth: usize,
) -> Result<Vec<u8>, String> {
    let leaves = branching.pow(depth.saturating_sub(1) as u32);
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
            let centre = (k * span) as f64 * cell as f64 + span as f64 * cell as f64 / 2.0;
            let x0 = (centre - side as f64 / 2.0) as usize * zoom;
            let y0 = (level * (cell + side) + 1) * zoom;
            for y in 0..side * zoom {
                for x in 0..side * zoom {
                    let v = (t[(y / zoom) * side + x / zoom] - lo) / (hi - lo).max(1e-12);
                    px[(y0 + y) * w + x0 + x] = (v * 255.0).clamp(0.0, 255.0) as u8;
                }
            }
        }
    }
    png(w, h, 1, &px)
}

/// A zoom that keeps a mosaic of `cols` tiles of side `side` near 600 pixels wide.
pub fn zoom_for(cols: usize, side: usize) -> usize {
    (600 / (cols * (side + 1)).max(1)).clamp(1, 8)
}

/// `Σ‖x − r‖² / Σ‖x‖²`.
pub fn relative_error(x: &drsae::linalg::Mat, r: &drsae::linalg::Mat) -> f64 {
    let num: f64 = x
        .as_slice()
        .iter()
        .zip(r.as_slice())
        .map(|(a, b)| ((a - b) as f64).powi(2))
        .sum();
    let den: f64 = x.as_slice().iter().map(|v| (*v as f64).powi(2)).sum();
    num / den.max(1e-30)
}

/// Share of a run done after `epoch` of `epochs` epochs and `secs` of an optional budget.
pub fn fraction(epoch: usize, epochs: usize, secs: f64, budget: Option<f64>) -> f64 {
    let e = epoch as f64 / epochs.max(1) as f64;
    match budget {
        Some(b) => e.max(secs / b),
        None => e,
    }
}

/// `loss` per epoch as CSV.
pub fn loss_csv(losses: &[f64]) -> String {
    let mut s = String::from("epoch,loss\n");
    for (i, l) in losses.iter().enumerate() {
        s.push_str(&format!("{},{l}\n", i + 1));
    }
    s
}
