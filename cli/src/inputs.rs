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
        "png" | "jpg" | "jpeg" => read_image(path, &bytes, width)?,
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
    check_npy_shape(path, bytes)?;
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

/// Refuses an `.npy` header whose shape's product overflows 64 bits, before npyz parses it
/// (npyz multiplies the dimensions unchecked and panics on such a shape). Whatever this
/// cannot read (no header, no shape, a negative dimension) is left to npyz's own errors.
fn check_npy_shape(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let (len, start) = match bytes.get(6) {
        Some(1) if bytes.len() >= 10 => {
            (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10usize)
        }
        Some(2 | 3) if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        _ => return Ok(()),
    };
    let header = &bytes[start..bytes.len().min(start.saturating_add(len))];
    let Some(at) = header.windows(7).position(|w| w == b"'shape'") else {
        return Ok(());
    };
    let rest = &header[at + 7..];
    let (Some(open), Some(close)) = (
        rest.iter().position(|&c| c == b'('),
        rest.iter().position(|&c| c == b')'),
    ) else {
        return Ok(());
    };
    if open > close {
        return Ok(());
    }
    let inner = String::from_utf8_lossy(&rest[open + 1..close]);
    let mut product: Option<u64> = Some(1);
    let mut dims = Vec::new();
    for d in inner.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let Ok(d) = d.trim_end_matches('L').parse::<u64>() else {
            return Ok(());
        };
        dims.push(d);
        product = product.and_then(|p| p.checked_mul(d));
    }
    // 8 bytes per value at most (f64): the byte count must fit too.
    if product.and_then(|p| p.checked_mul(8)).is_none() {
        return Err(format!(
            "{}: shape {dims:?} overflows (more than 2⁶⁴ bytes)",
            path.display()
        ));
    }
    Ok(())
}

/// An image of `width` pixels as one row of grey levels in [0, 1] (colour images are
/// converted to luma); an image of another size is refused from its header, before decoding.
fn read_image(path: &Path, bytes: &[u8], width: usize) -> Result<Mat, String> {
    let (w, h, values) = decode_image(path, bytes, Some(width))?;
    Ok(Mat::from_vec(1, w * h, values))
}

/// The most pixels of an image decoded: 2²⁴ (4096 × 4096), 64 MiB as f32 grey levels.
const MAX_IMAGE_PIXELS: u64 = 1 << 24;
/// The most bytes a decoder may allocate (its output image included).
const MAX_DECODE_BYTES: u64 = 1 << 28;

/// Width, height and grey levels in [0, 1] of a PNG or JPEG image. Its dimensions are read
/// from the header first: an image of more than [`MAX_IMAGE_PIXELS`] pixels, or of other
/// than `pixels` pixels when that is given, is refused before anything is decoded, and
/// the decoder's allocations are bounded by [`MAX_DECODE_BYTES`].
fn decode_image(
    path: &Path,
    bytes: &[u8],
    pixels: Option<usize>,
) -> Result<(usize, usize, Vec<f32>), String> {
    let err = |e: image::ImageError| format!("{}: {e}", path.display());
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(1 << 14);
    limits.max_image_height = Some(1 << 14);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let decoder = reader.into_decoder().map_err(err)?;
    let (w, h) = image::ImageDecoder::dimensions(&decoder);
    let n = u64::from(w) * u64::from(h);
    if let Some(want) = pixels {
        if n != want as u64 {
            return Err(format!(
                "{}: a {w}×{h} image ({n} pixels), the model takes {want} values per row",
                path.display()
            ));
        }
    }
    if n > MAX_IMAGE_PIXELS {
        return Err(format!(
            "{}: a {w}×{h} image ({n} pixels), more than the {MAX_IMAGE_PIXELS} read",
            path.display()
        ));
    }
    let total = image::ImageDecoder::total_bytes(&decoder);
    if total > MAX_DECODE_BYTES {
        return Err(format!(
            "{}: a {w}×{h} image of {total} bytes decoded, more than the {MAX_DECODE_BYTES} allowed",
            path.display()
        ));
    }
    let img = image::DynamicImage::from_decoder(decoder)
        .map_err(err)?
        .into_luma8();
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
                let (w, h, pixels) = decode_image(f, &bytes, None)?;
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
