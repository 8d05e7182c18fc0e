//! The user's own data: `.npy` matrices, PNG/JPEG images and MNIST IDX directories in,
//! `.npy` codes out.

use drsae::linalg::Mat;
use npyz::WriterBuilder;
use std::path::{Path, PathBuf};

/// The largest input file read (4 GiB).
const MAX_INPUT_BYTES: u64 = 4 << 30;

/// Rows of `width` values from every input, in order.
pub fn read_rows(inputs: &[PathBuf], width: usize) -> Result<Mat, String> {
    let mut data = Vec::new();
    for path in inputs {
        let rows = read_one(path, width)?;
        data.extend_from_slice(rows.as_slice());
    }
    Ok(Mat::from_vec(data.len() / width.max(1), width, data))
}

fn read_one(path: &Path, width: usize) -> Result<Mat, String> {
    if path.is_dir() {
        let mnist = drsae::data::Mnist::load(path).map_err(|e| e.to_string())?;
        return check_width(path, mnist.test.images, width);
    }
    let bytes = drsae::io::read_regular_file(path, MAX_INPUT_BYTES).map_err(|e| e.to_string())?;
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let m = match ext.as_str() {
        "npy" => read_npy(path, &bytes)?,
        "png" | "jpg" | "jpeg" => read_image(path, &bytes)?,
        _ => {
            return Err(format!(
                "{}: unknown input type (expected .npy, .png, .jpg or an MNIST directory)",
                path.display()
            ))
        }
    };
    check_width(path, m, width)
}

fn check_width(path: &Path, m: Mat, width: usize) -> Result<Mat, String> {
    if m.ncols() != width {
        return Err(format!(
            "{}: rows of {} values, the model takes {width}",
            path.display(),
            m.ncols()
        ));
    }
    Ok(m)
}

/// A 1-D (one row) or 2-D `.npy` array of f32, f64 or u8 (u8 divided by 255), C order.
fn read_npy(path: &Path, bytes: &[u8]) -> Result<Mat, String> {
    let err = |e: std::io::Error| format!("{}: {e}", path.display());
    let npy = npyz::NpyFile::new(bytes).map_err(err)?;
    let shape = npy.shape().to_vec();
    if npy.order() != npyz::Order::C {
        return Err(format!(
            "{}: Fortran-order arrays are not supported",
            path.display()
        ));
    }
    let (rows, cols) = match shape[..] {
        [c] => (1, c as usize),
        [r, c] => (r as usize, c as usize),
        _ => {
            return Err(format!(
                "{}: a {}-D array; expected 1-D or 2-D",
                path.display(),
                shape.len()
            ))
        }
    };
    let total = rows
        .checked_mul(cols)
        .filter(|&t| t <= bytes.len())
        .ok_or_else(|| {
            format!(
                "{}: shape {shape:?} is larger than the file",
                path.display()
            )
        })?;
    let dtype = npy.dtype();
    let descr = dtype.descr();
    let values: Vec<f32> = match descr.trim_matches(|c| c == '\'' || c == '"') {
        "<f4" => npy.into_vec::<f32>().map_err(err)?,
        "<f8" => npy
            .into_vec::<f64>()
            .map_err(err)?
            .into_iter()
            .map(|v| v as f32)
            .collect(),
        "|u1" => npy
            .into_vec::<u8>()
            .map_err(err)?
            .into_iter()
            .map(|v| v as f32 / 255.0)
            .collect(),
        d => {
            return Err(format!(
                "{}: dtype {d}; expected f32, f64 or u8",
                path.display()
            ))
        }
    };
    if values.len() != total {
        return Err(format!(
            "{}: {} values for shape {shape:?}",
            path.display(),
            values.len()
        ));
    }
    Ok(Mat::from_vec(rows, cols, values))
}

/// An image as one row of grey levels in [0, 1] (colour images are converted to luma).
fn read_image(path: &Path, bytes: &[u8]) -> Result<Mat, String> {
    let (w, h, values) = decode_image(path, bytes)?;
    Ok(Mat::from_vec(1, w * h, values))
}

/// Width, height and grey levels in [0, 1] of a PNG or JPEG image.
fn decode_image(path: &Path, bytes: &[u8]) -> Result<(usize, usize, Vec<f32>), String> {
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(1 << 14);
    limits.max_image_height = Some(1 << 14);
    limits.max_alloc = Some(1 << 30);
    reader.limits(limits);
    let img = reader
        .decode()
        .map_err(|e| format!("{}: {e}", path.display()))?
        .to_luma8();
    let values = img.as_raw().iter().map(|&v| v as f32 / 255.0).collect();
    Ok((img.width() as usize, img.height() as usize, values))
}

/// Writes `m` as a 2-D f32 `.npy` file, atomically.
pub fn write_npy(path: &Path, m: &Mat) -> Result<(), String> {
    drsae::io::write_atomic(path, &npy_bytes(m)?).map_err(|e| e.to_string())
}

/// `m` as the bytes of a 2-D f32 `.npy` file.
pub fn npy_bytes(m: &Mat) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    {
        let mut w = npyz::WriteOptions::<f32>::new()
            .default_dtype()
            .shape(&[m.nrows() as u64, m.ncols() as u64])
            .writer(&mut out)
            .begin_nd()
            .map_err(|e| e.to_string())?;
        w.extend(m.as_slice().iter().copied())
            .map_err(|e| e.to_string())?;
        w.finish().map_err(|e| e.to_string())?;
    }
    Ok(out)
}

/// Grey images to cut patches from: the training images of an MNIST IDX directory, every
/// PGM/PNG/JPEG file of a directory (sorted by name), or one such file.
pub fn read_images(path: &Path) -> Result<Vec<drsae::data::GrayImage>, String> {
    use drsae::data::GrayImage;
    let is_idx = |dir: &Path| {
        ["train-images-idx3-ubyte", "train-images-idx3-ubyte.gz"]
            .iter()
            .any(|f| dir.join(f).is_file())
    };
    if path.is_dir() && is_idx(path) {
        let images = drsae::data::Mnist::load(path)
            .map_err(|e| e.to_string())?
            .train;
        let (h, w) = (images.rows, images.cols);
        return Ok(images
            .images
            .rows()
            .map(|r| GrayImage {
                width: w,
                height: h,
                pixels: r.to_vec(),
            })
            .collect());
    }
    let files: Vec<PathBuf> = if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| image_kind(p).is_some())
            .collect();
        files.sort();
        files
    } else {
        vec![path.to_path_buf()]
    };
    if files.is_empty() {
        return Err(format!(
            "{}: no MNIST IDX files and no .pgm, .png or .jpg images",
            path.display()
        ));
    }
    let mut out = Vec::with_capacity(files.len());
    for f in &files {
        match image_kind(f) {
            Some("pgm") => out.push(drsae::data::read_pgm(f).map_err(|e| e.to_string())?),
            Some(_) => {
                let bytes =
                    drsae::io::read_regular_file(f, MAX_INPUT_BYTES).map_err(|e| e.to_string())?;
                let (w, h, pixels) = decode_image(f, &bytes)?;
                out.push(GrayImage {
                    width: w,
                    height: h,
                    pixels,
                });
            }
            None => {
                return Err(format!(
                    "{}: unknown image type (expected .pgm, .png or .jpg)",
                    f.display()
                ))
            }
        }
    }
    Ok(out)
}

fn image_kind(p: &Path) -> Option<&'static str> {
    let ext = p.extension()?.to_string_lossy().to_ascii_lowercase();
    match ext.as_str() {
        "pgm" => Some("pgm"),
        "png" => Some("png"),
        "jpg" | "jpeg" => Some("jpeg"),
        _ => None,
    }
}

/// Training rows of `size × size` pixels: `count` random patches of the images at `path`
/// (see [`read_images`]), or the first `count` rows of a `.npy` matrix of `size²` columns.
pub fn patches(path: &Path, size: usize, count: usize, seed: u64) -> Result<Mat, String> {
    use rand::SeedableRng;
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"))
    {
        let bytes =
            drsae::io::read_regular_file(path, MAX_INPUT_BYTES).map_err(|e| e.to_string())?;
        let m = check_width(path, read_npy(path, &bytes)?, size * size)?;
        if m.nrows() < count {
            return Err(format!(
                "{}: {} rows, {count} needed",
                path.display(),
                m.nrows()
            ));
        }
        return Ok(m.row_range(0, count).to_owned());
    }
    let images = read_images(path)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    drsae::data::sample_patches(&images, size, count, &mut rng)
        .map_err(|e| format!("{}: {e}", path.display()))
}
