//! The IDX format of MNIST: big-endian u32 magic `0x0000_08NN` (type 0x08 = u8, NN = number
//! of dimensions), NN big-endian u32 dimensions, then the u8 payload. Gzip or raw.
//!
//! Every header is validated before anything is allocated from it: the dimension product
//! must not overflow and must equal the payload length. A gzip stream is decompressed
//! incrementally and never beyond the declared length plus one byte, so a forged header
//! cannot cause an allocation larger than the data actually present.

use crate::{Error, Result};
use std::io::Read;
use std::path::Path;

/// Hard limit on any IDX payload (4 GiB): larger claims are rejected outright.
pub const MAX_IDX_BYTES: u64 = 1 << 32;

/// A parsed IDX file: its dimensions and u8 payload.
#[derive(Clone, Debug, PartialEq)]
pub struct Idx {
    /// Dimensions, outermost first (count, rows, cols for images).
    pub dims: Vec<usize>,
    /// Row-major payload, `dims.product()` bytes.
    pub data: Vec<u8>,
}

/// Images from an IDX3 file.
#[derive(Clone, Debug, PartialEq)]
pub struct IdxImages {
    /// Number of images.
    pub count: usize,
    /// Rows per image.
    pub rows: usize,
    /// Columns per image.
    pub cols: usize,
    /// `count·rows·cols` pixels, image after image.
    pub pixels: Vec<u8>,
}

fn fmt_err(what: impl Into<String>) -> Error {
    Error::format("IDX", what)
}

/// Parses the header at the start of `head` (at least 4 bytes): returns dims and header size.
fn parse_header(first4: &[u8; 4], rest: &mut impl Read) -> Result<(Vec<usize>, u64)> {
    if first4[0] != 0 || first4[1] != 0 {
        return Err(fmt_err(format!(
            "bad magic {:02x}{:02x}{:02x}{:02x}",
            first4[0], first4[1], first4[2], first4[3]
        )));
    }
    if first4[2] != 0x08 {
        return Err(fmt_err(format!(
            "element type 0x{:02x} is not u8 (0x08)",
            first4[2]
        )));
    }
    let ndims = first4[3] as usize;
    if ndims == 0 || ndims > 4 {
        return Err(fmt_err(format!("{ndims} dimensions (expected 1 to 4)")));
    }
    let mut dims = Vec::with_capacity(ndims);
    let mut total: u64 = 1;
    for d in 0..ndims {
        let mut b = [0u8; 4];
        rest.read_exact(&mut b)
            .map_err(|_| fmt_err(format!("truncated header (dimension {d})")))?;
        let v = u32::from_be_bytes(b) as u64;
        total = total
            .checked_mul(v)
            .filter(|&t| t <= MAX_IDX_BYTES)
            .ok_or_else(|| {
                fmt_err(format!(
                    "dimensions {dims:?}×{v}… describe more than {MAX_IDX_BYTES} bytes"
                ))
            })?;
        dims.push(v as usize);
    }
    Ok((dims, total))
}

/// Parses an IDX file from bytes (gzip-compressed if it starts with the gzip magic).
pub fn parse_idx(bytes: &[u8]) -> Result<Idx> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        parse_stream(flate2::read::GzDecoder::new(bytes), None)
    } else {
        parse_stream(bytes, Some(bytes.len() as u64))
    }
}

fn parse_stream(mut r: impl Read, known_len: Option<u64>) -> Result<Idx> {
    let mut first4 = [0u8; 4];
    r.read_exact(&mut first4)
        .map_err(|e| fmt_err(format!("truncated header or bad gzip stream ({e})")))?;
    let (dims, total) = parse_header(&first4, &mut r)?;
    let header = 4 + 4 * dims.len() as u64;
    if let Some(len) = known_len {
        if len - header != total {
            return Err(fmt_err(format!(
                "dimensions {dims:?} need {total} payload bytes, file has {}",
                len - header
            )));
        }
    }
    // Grow the buffer only as data arrives: a forged header cannot force a big allocation.
    let mut data = Vec::new();
    r.take(total + 1)
        .read_to_end(&mut data)
        .map_err(|e| fmt_err(format!("corrupt data stream: {e}")))?;
    if data.len() as u64 != total {
        return Err(fmt_err(format!(
            "dimensions {dims:?} need {total} payload bytes, {} found",
            if data.len() as u64 > total {
                "more than that".to_string()
            } else {
                data.len().to_string()
            }
        )));
    }
    Ok(Idx { dims, data })
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io(path, e))
}

/// Reads an IDX3 image file (gzip or raw).
pub fn read_idx_images(path: impl AsRef<Path>) -> Result<IdxImages> {
    let path = path.as_ref();
    let idx = parse_idx(&read_file(path)?).map_err(|e| e.in_file(path))?;
    idx_images(idx).map_err(|e| e.in_file(path))
}

/// Reads an IDX1 label file (gzip or raw).
pub fn read_idx_labels(path: impl AsRef<Path>) -> Result<Vec<u8>> {
    let path = path.as_ref();
    let idx = parse_idx(&read_file(path)?).map_err(|e| e.in_file(path))?;
    idx_labels(idx).map_err(|e| e.in_file(path))
}

/// Interprets a parsed IDX as images (exactly 3 dimensions).
pub fn idx_images(idx: Idx) -> Result<IdxImages> {
    match idx.dims[..] {
        [count, rows, cols] => Ok(IdxImages {
            count,
            rows,
            cols,
            pixels: idx.data,
        }),
        _ => Err(fmt_err(format!(
            "images need 3 dimensions, found {:?}",
            idx.dims
        ))),
    }
}

/// Interprets a parsed IDX as labels (exactly 1 dimension).
pub fn idx_labels(idx: Idx) -> Result<Vec<u8>> {
    match idx.dims[..] {
        [_] => Ok(idx.data),
        _ => Err(fmt_err(format!(
            "labels need 1 dimension, found {:?}",
            idx.dims
        ))),
    }
}

/// Encodes `dims` and `data` as a raw IDX u8 file (used to write the bundled sample).
pub fn encode_idx(dims: &[usize], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for &d in dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(b: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn roundtrip_raw_and_gzip() {
        let raw = encode_idx(&[2, 2, 3], &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        for bytes in [raw.clone(), gzip(&raw)] {
            let img = idx_images(parse_idx(&bytes).unwrap()).unwrap();
            assert_eq!((img.count, img.rows, img.cols), (2, 2, 3));
            assert_eq!(img.pixels[11], 12);
        }
        let lab = idx_labels(parse_idx(&encode_idx(&[3], &[7, 8, 9])).unwrap()).unwrap();
        assert_eq!(lab, vec![7, 8, 9]);
    }

    #[test]
    fn malformed_files_are_errors() {
        let good = encode_idx(&[2, 2, 2], &[0; 8]);
        let mut cases: Vec<(&str, Vec<u8>)> = vec![
            ("empty", vec![]),
            ("bad magic", {
                let mut b = good.clone();
                b[0] = 1;
                b
            }),
            ("not u8", {
                let mut b = good.clone();
                b[2] = 0x0d;
                b
            }),
            ("zero dims", vec![0, 0, 8, 0]),
            ("truncated header", good[..9].to_vec()),
            ("truncated payload", good[..good.len() - 1].to_vec()),
            ("trailing bytes", {
                let mut b = good.clone();
                b.push(0);
                b
            }),
            (
                "4294967295 images",
                encode_idx(&[u32::MAX as usize, 28, 28], &[0; 10]),
            ),
            (
                "overflowing product",
                encode_idx(
                    &[u32::MAX as usize, u32::MAX as usize, u32::MAX as usize],
                    &[],
                ),
            ),
        ];
        cases.push((
            "gzip forged",
            gzip(&encode_idx(&[u32::MAX as usize, 28, 28], &[0; 100])),
        ));
        cases.push(("gzip truncated", {
            let g = gzip(&good);
            g[..g.len() / 2].to_vec()
        }));
        for (name, bytes) in cases {
            match parse_idx(&bytes).and_then(idx_images) {
                Err(Error::Format { format: "IDX", .. }) => {}
                other => panic!("{name}: expected a format error, got {other:?}"),
            }
        }
        assert!(idx_images(parse_idx(&encode_idx(&[3], &[0; 3])).unwrap()).is_err());
    }
}
