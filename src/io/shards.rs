//! Activation shards: 2-D float32 arrays in `.npy` files or single-tensor `.safetensors`
//! files, opened by header only and read by row ranges (positioned reads), so a shard of any
//! size costs only the rows asked for. Also the `.npy` writer used for codes and benchmark
//! data.
//!
//! Headers are checked against the file before anything is read: the data must fill the
//! file exactly (a header claiming more rows than the file holds is an error, not an
//! allocation), header lengths are bounded, and only little-endian float32 C-order arrays
//! are accepted.

use super::open_regular_file;
use crate::{Error, Result};
use std::fs::File;
use std::path::{Path, PathBuf};

/// The largest `.npy` or safetensors header read (1 MiB; real ones are under 1 KiB).
const MAX_SHARD_HEADER: u64 = 1 << 20;

/// An opened shard: `nrows × ncols` float32 values at `offset` in `file`.
#[derive(Debug)]
pub struct ShardReader {
    path: PathBuf,
    file: File,
    nrows: u64,
    ncols: usize,
    offset: u64,
}

fn bad(path: &Path, format: &'static str, what: impl Into<String>) -> Error {
    Error::Format {
        format,
        what: format!("{}: {}", path.display(), what.into()),
    }
}

fn read_at(file: &File, path: &Path, buf: &mut [u8], at: u64) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileExt;
        file.read_exact_at(buf, at).map_err(|e| Error::io(path, e))
    }
    #[cfg(not(unix))]
    {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = file;
        f.seek(SeekFrom::Start(at))
            .map_err(|e| Error::io(path, e))?;
        f.read_exact(buf).map_err(|e| Error::io(path, e))
    }
}

impl ShardReader {
    /// Opens a `.npy` or `.safetensors` shard (by extension) and checks its header.
    ///
    /// # Errors
    /// [`Error::Io`] if it cannot be read or is not a regular file; [`Error::Format`] for a
    /// malformed header, another dtype than little-endian float32, Fortran order, not 2-D,
    /// zero columns, or a size that does not match the header.
    pub fn open(path: impl AsRef<Path>) -> Result<ShardReader> {
        let path = path.as_ref();
        let (file, len) = open_regular_file(path)?;
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        let (nrows, ncols, offset) = match ext {
            "npy" => npy_header(&file, path, len)?,
            "safetensors" => safetensors_header(&file, path, len)?,
            _ => {
                return Err(Error::param(
                    "shards",
                    format!(
                        "{}: activation files must end in .npy or .safetensors",
                        path.display()
                    ),
                ))
            }
        };
        Ok(ShardReader {
            path: path.to_path_buf(),
            file,
            nrows,
            ncols,
            offset,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// Rows.
    pub fn nrows(&self) -> u64 {
        self.nrows
    }
    /// Columns.
    pub fn ncols(&self) -> usize {
        self.ncols
    }

    /// Appends rows `first .. first + rows` to `out`.
    ///
    /// # Errors
    /// [`Error::Io`] if the read fails (the file shrank), [`Error::NonFiniteInput`] for a
    /// NaN or infinity.
    ///
    /// # Panics
    /// If the range is outside the shard.
    pub fn read_rows(&mut self, first: u64, rows: usize, out: &mut Vec<f32>) -> Result<()> {
        assert!(first + rows as u64 <= self.nrows, "rows outside the shard");
        let n = rows * self.ncols;
        let mut bytes = vec![0u8; n * 4];
        let at = self.offset + first * self.ncols as u64 * 4;
        read_at(&self.file, &self.path, &mut bytes, at)?;
        let start = out.len();
        out.extend(
            bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        );
        if let Some(i) = out[start..].iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFiniteInput {
                what: format!(
                    "{} row {}",
                    self.path.display(),
                    first + (i / self.ncols) as u64
                ),
                index: i % self.ncols,
            });
        }
        Ok(())
    }
}

/// Checks that `rows × cols` float32 values at `offset` fill a file of `len` bytes.
fn check_size(
    path: &Path,
    format: &'static str,
    rows: u64,
    cols: u64,
    offset: u64,
    len: u64,
) -> Result<()> {
    let data = rows
        .checked_mul(cols)
        .and_then(|n| n.checked_mul(4))
        .ok_or_else(|| bad(path, format, format!("shape {rows} × {cols} overflows")))?;
    if offset.checked_add(data) != Some(len) {
        return Err(bad(
            path,
            format,
            format!("header says {rows} × {cols} float32 ({data} bytes after {offset}), the file has {len} bytes"),
        ));
    }
    if cols == 0 {
        return Err(bad(path, format, "rows of zero values"));
    }
    Ok(())
}

/// Parses an `.npy` header: (rows, cols, data offset).
fn npy_header(file: &File, path: &Path, len: u64) -> Result<(u64, usize, u64)> {
    const F: &str = "npy";
    if len < 10 {
        return Err(bad(path, F, "too short for an .npy header"));
    }
    let mut pre = [0u8; 12];
    let n = (len.min(12)) as usize;
    read_at(file, path, &mut pre[..n], 0)?;
    if &pre[..6] != b"\x93NUMPY" {
        return Err(bad(path, F, "not an .npy file (bad magic)"));
    }
    let (hlen, start) = match pre[6] {
        1 => (u16::from_le_bytes([pre[8], pre[9]]) as u64, 10u64),
        2 | 3 if n == 12 => (
            u32::from_le_bytes([pre[8], pre[9], pre[10], pre[11]]) as u64,
            12u64,
        ),
        v => return Err(bad(path, F, format!("unsupported .npy version {v}"))),
    };
    if hlen > MAX_SHARD_HEADER || start + hlen > len {
        return Err(bad(path, F, format!("header of {hlen} bytes")));
    }
    let mut h = vec![0u8; hlen as usize];
    read_at(file, path, &mut h, start)?;
    let h = std::str::from_utf8(&h).map_err(|_| bad(path, F, "header is not text"))?;
    let field = |key: &str| -> Option<&str> {
        let at = h.find(&format!("'{key}'"))? + key.len() + 2;
        let rest = h[at..].trim_start().strip_prefix(':')?.trim_start();
        Some(rest)
    };
    let descr = field("descr").ok_or_else(|| bad(path, F, "no 'descr'"))?;
    if !(descr.starts_with("'<f4'") || descr.starts_with("'float32'")) {
        return Err(bad(
            path,
            F,
            format!(
                "dtype {} (only little-endian float32 '<f4' is read)",
                descr.split(',').next().unwrap_or("")
            ),
        ));
    }
    let fortran = field("fortran_order").ok_or_else(|| bad(path, F, "no 'fortran_order'"))?;
    if !fortran.starts_with("False") {
        return Err(bad(
            path,
            F,
            "Fortran-order arrays are not read; save C order",
        ));
    }
    let shape = field("shape").ok_or_else(|| bad(path, F, "no 'shape'"))?;
    let inner = shape
        .strip_prefix('(')
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| bad(path, F, "malformed 'shape'"))?;
    let dims: Vec<&str> = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if dims.len() != 2 {
        return Err(bad(path, F, format!("shape ({inner}) is not 2-D")));
    }
    let parse = |s: &str| {
        s.parse::<u64>()
            .map_err(|_| bad(path, F, format!("shape entry `{s}`")))
    };
    let (rows, cols) = (parse(dims[0])?, parse(dims[1])?);
    let offset = start + hlen;
    check_size(path, F, rows, cols, offset, len)?;
    let cols = usize::try_from(cols).map_err(|_| bad(path, F, "too many columns"))?;
    Ok((rows, cols, offset))
}

/// Parses a single-tensor safetensors header: (rows, cols, data offset).
#[cfg(feature = "safetensors")]
fn safetensors_header(file: &File, path: &Path, len: u64) -> Result<(u64, usize, u64)> {
    const F: &str = "safetensors";
    if len < 8 {
        return Err(bad(path, F, "too short"));
    }
    let mut n8 = [0u8; 8];
    read_at(file, path, &mut n8, 0)?;
    let hlen = u64::from_le_bytes(n8);
    if hlen > MAX_SHARD_HEADER || 8 + hlen > len {
        return Err(bad(path, F, format!("header of {hlen} bytes")));
    }
    let mut h = vec![0u8; hlen as usize];
    read_at(file, path, &mut h, 8)?;
    let v = super::json::parse(&h).map_err(|e| bad(path, F, format!("header: {e}")))?;
    let obj = v
        .as_object()
        .ok_or_else(|| bad(path, F, "header is not an object"))?;
    let tensors: Vec<&(String, super::json::Value)> =
        obj.iter().filter(|(k, _)| k != "__metadata__").collect();
    if tensors.len() != 1 {
        return Err(bad(
            path,
            F,
            format!(
                "{} tensors (an activation shard holds exactly one)",
                tensors.len()
            ),
        ));
    }
    let (name, t) = tensors[0];
    if t.get("dtype").and_then(|d| d.as_str()) != Some("F32") {
        return Err(bad(path, F, format!("tensor `{name}` is not F32")));
    }
    let shape: Vec<u64> = t
        .get("shape")
        .and_then(|s| s.as_array())
        .map(|a| a.iter().filter_map(|x| x.as_u64()).collect())
        .unwrap_or_default();
    if shape.len() != 2 {
        return Err(bad(path, F, format!("tensor `{name}` is not 2-D")));
    }
    let offs: Vec<u64> = t
        .get("data_offsets")
        .and_then(|s| s.as_array())
        .map(|a| a.iter().filter_map(|x| x.as_u64()).collect())
        .unwrap_or_default();
    if offs.len() != 2 || offs[0] != 0 {
        return Err(bad(path, F, "data_offsets must be [0, end]"));
    }
    let offset = 8 + hlen;
    check_size(path, F, shape[0], shape[1], offset, len)?;
    if offs[1] != len - offset {
        return Err(bad(path, F, "data_offsets do not match the shape"));
    }
    Ok((shape[0], shape[1] as usize, offset))
}

#[cfg(not(feature = "safetensors"))]
fn safetensors_header(_: &File, path: &Path, _: u64) -> Result<(u64, usize, u64)> {
    Err(Error::param(
        "shards",
        format!(
            "{}: reading .safetensors needs the `safetensors` feature",
            path.display()
        ),
    ))
}

/// The bytes of a 2-D little-endian float32 `.npy` file (version 1.0) holding `data` as
/// `rows × cols`.
///
/// # Panics
/// If `data.len() != rows * cols`.
pub fn npy_bytes(data: &[f32], rows: usize, cols: usize) -> Vec<u8> {
    assert_eq!(data.len(), rows * cols, "npy shape");
    let mut header =
        format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    // Pad so that the data starts on a multiple of 64 bytes, ending in a newline.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + data.len() * 4);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Writes `data` (`rows × cols`) to `path` as `.npy`, atomically.
///
/// # Errors
/// [`Error::Io`] if writing fails.
pub fn write_npy(path: impl AsRef<Path>, data: &[f32], rows: usize, cols: usize) -> Result<()> {
    super::write_atomic(path.as_ref(), &npy_bytes(data, rows, cols))
}

/// Reads a whole 2-D float32 `.npy` (or single-tensor `.safetensors`) file as
/// `(rows, cols, data)`.
///
/// # Errors
/// As [`ShardReader::open`] and [`ShardReader::read_rows`]; [`Error::InvalidParameter`]
/// above `max_values` values.
pub fn read_matrix(path: impl AsRef<Path>, max_values: u64) -> Result<(usize, usize, Vec<f32>)> {
    let mut r = ShardReader::open(path)?;
    let n = r.nrows().saturating_mul(r.ncols() as u64);
    if n > max_values {
        return Err(Error::param(
            "input",
            format!(
                "{}: {n} values, more than the {max_values} allowed",
                r.path().display()
            ),
        ));
    }
    let mut out = Vec::with_capacity(n as usize);
    let rows = r.nrows() as usize;
    r.read_rows(0, rows, &mut out)?;
    Ok((rows, r.ncols(), out))
}
