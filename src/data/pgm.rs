//! Portable graymap (PGM) reader: binary `P5` (8- or 16-bit) and ASCII `P2`, with comments.
//! Pixels are returned as f32 in [0, 1] (value / maxval).
//!
//! The header is validated before allocating: width and height must be ≥ 1, their product
//! at most [`MAX_PGM_PIXELS`], maxval in 1..=65535, and the payload must hold that many
//! pixels.
//!
//! Files are read with the same care: only regular files (a FIFO would hang, a device
//! would read without end), at most [`MAX_PGM_FILE_BYTES`]; the header is parsed from the
//! first [`MAX_PGM_HEADER_BYTES`] before the rest is read, and of a binary file only the
//! bytes its header describes are read.

use crate::{Error, Result};
use std::path::Path;

/// Largest image accepted (2^28 pixels, 1 GiB as f32).
pub const MAX_PGM_PIXELS: usize = 1 << 28;

/// Largest PGM file read (2 GiB: an ASCII image of [`MAX_PGM_PIXELS`] values of up to five
/// digits and a separator, with room to spare).
pub const MAX_PGM_FILE_BYTES: u64 = 2 << 30;

/// The header (magic, size, maxval and any comments) must end within this many bytes.
pub const MAX_PGM_HEADER_BYTES: usize = 1 << 16;

/// A grayscale image, row-major, values in [0, 1].
#[derive(Clone, Debug, PartialEq)]
pub struct GrayImage {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `width·height` values, row after row.
    pub pixels: Vec<f32>,
}

impl GrayImage {
    /// Pixel at column `x`, row `y`.
    pub fn at(&self, x: usize, y: usize) -> f32 {
        self.pixels[y * self.width + x]
    }
}

fn err(what: impl Into<String>) -> Error {
    Error::format("PGM", what)
}

struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn skip_space_and_comments(&mut self) {
        while self.pos < self.b.len() {
            match self.b[self.pos] {
                b'#' => {
                    while self.pos < self.b.len() && self.b[self.pos] != b'\n' {
                        self.pos += 1;
                    }
                }
                c if c.is_ascii_whitespace() => self.pos += 1,
                _ => break,
            }
        }
    }
    fn number(&mut self, what: &str) -> Result<u64> {
        self.skip_space_and_comments();
        let start = self.pos;
        let mut v: u64 = 0;
        while self.pos < self.b.len() && self.b[self.pos].is_ascii_digit() {
            v = v
                .checked_mul(10)
                .and_then(|v| v.checked_add((self.b[self.pos] - b'0') as u64))
                .filter(|&v| v <= u32::MAX as u64)
                .ok_or_else(|| err(format!("{what} is absurdly large")))?;
            self.pos += 1;
        }
        if self.pos == start {
            return Err(err(format!("expected {what}, found {}", self.describe())));
        }
        Ok(v)
    }
    fn describe(&self) -> String {
        match self.b.get(self.pos) {
            None => "end of file".into(),
            Some(c) => format!("byte 0x{c:02x}"),
        }
    }
}

/// A parsed PGM header.
struct Header {
    binary: bool,
    width: usize,
    height: usize,
    maxval: u64,
    /// Offset of the raster (binary: after the single whitespace byte; ASCII: after maxval).
    raster: usize,
}

impl Header {
    /// Bytes per binary pixel.
    fn bytes_per_pixel(&self) -> usize {
        if self.maxval < 256 {
            1
        } else {
            2
        }
    }
}

fn parse_header(bytes: &[u8]) -> Result<Header> {
    let binary = match bytes.get(..2) {
        Some(b"P5") => true,
        Some(b"P2") => false,
        _ => return Err(err("missing P5/P2 magic")),
    };
    let mut c = Cursor { b: bytes, pos: 2 };
    let width = c.number("width")?;
    let height = c.number("height")?;
    let maxval = c.number("maxval")?;
    if width == 0 || height == 0 {
        return Err(err(format!("size {width}×{height} is empty")));
    }
    if maxval == 0 || maxval > 65535 {
        return Err(err(format!("maxval {maxval} outside 1..=65535")));
    }
    let n = width * height; // both ≤ u32::MAX: no u64 overflow
    if n > MAX_PGM_PIXELS as u64 {
        return Err(err(format!(
            "size {width}×{height} exceeds the limit of {MAX_PGM_PIXELS} pixels"
        )));
    }
    let raster = if binary {
        // Exactly one whitespace byte separates maxval from the raster.
        if !c.b.get(c.pos).is_some_and(|b| b.is_ascii_whitespace()) {
            return Err(err("no whitespace after maxval"));
        }
        c.pos + 1
    } else {
        c.pos
    };
    Ok(Header {
        binary,
        width: width as usize,
        height: height as usize,
        maxval,
        raster,
    })
}

/// Parses a PGM file from bytes.
pub fn parse_pgm(bytes: &[u8]) -> Result<GrayImage> {
    let Header {
        binary,
        width,
        height,
        maxval,
        raster,
    } = parse_header(bytes)?;
    let n = width * height;
    let mut c = Cursor {
        b: bytes,
        pos: raster,
    };
    let scale = 1.0 / maxval as f32;
    let pixels = if binary {
        let raster = &bytes[raster..];
        let bpp = if maxval < 256 { 1 } else { 2 };
        if raster.len() < n * bpp {
            return Err(err(format!(
                "{width}×{height} image needs {} bytes, file has {}",
                n * bpp,
                raster.len()
            )));
        }
        let mut px = Vec::with_capacity(n);
        for i in 0..n {
            let v = if bpp == 1 {
                raster[i] as u64
            } else {
                u16::from_be_bytes([raster[2 * i], raster[2 * i + 1]]) as u64
            };
            if v > maxval {
                return Err(err(format!("pixel {i} value {v} exceeds maxval {maxval}")));
            }
            px.push(v as f32 * scale);
        }
        px
    } else {
        // Each ASCII value takes at least two bytes (a digit and a separator), bar the last.
        if (bytes.len() - c.pos).div_ceil(2) < n {
            return Err(err(format!(
                "{width}×{height} image cannot fit in {} bytes of text",
                bytes.len() - c.pos
            )));
        }
        let mut px = Vec::with_capacity(n);
        for i in 0..n {
            let v = c.number("pixel value")?;
            if v > maxval {
                return Err(err(format!("pixel {i} value {v} exceeds maxval {maxval}")));
            }
            px.push(v as f32 * scale);
        }
        px
    };
    Ok(GrayImage {
        width,
        height,
        pixels,
    })
}

/// Reads a PGM file: a regular file of at most [`MAX_PGM_FILE_BYTES`], its header
/// within the first [`MAX_PGM_HEADER_BYTES`]; of a binary (`P5`) file only the bytes the
/// header describes are read (anything after them is ignored, as by [`parse_pgm`]).
///
/// # Errors
/// [`Error::Io`] when the file cannot be read or is not a regular file (a directory, FIFO,
/// device, or a symlink to one); [`Error::Format`] naming the file for a malformed or
/// oversized file.
pub fn read_pgm(path: impl AsRef<Path>) -> Result<GrayImage> {
    use std::io::Read;
    let path = path.as_ref();
    let (file, len) = crate::io::open_regular_file(path)?;
    let in_file = |e: Error| e.in_file(path);
    if len > MAX_PGM_FILE_BYTES {
        return Err(in_file(err(format!(
            "{len} bytes, more than the {MAX_PGM_FILE_BYTES} accepted"
        ))));
    }
    // `take`: never more than the length checked, even if the file grows.
    let mut file = file.take(len);
    let mut bytes = Vec::new();
    (&mut file)
        .take(MAX_PGM_HEADER_BYTES as u64)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    let header = match parse_header(&bytes) {
        Ok(h) => h,
        // Perhaps cut off by the prefix rather than by the end of the file.
        Err(Error::Format { what, .. }) if len > bytes.len() as u64 => {
            return Err(in_file(err(format!(
                "{what} (the header must end within the first {MAX_PGM_HEADER_BYTES} bytes)"
            ))))
        }
        Err(e) => return Err(in_file(e)),
    };
    let wanted = if header.binary {
        let need =
            header.raster as u64 + (header.width * header.height * header.bytes_per_pixel()) as u64;
        if len < need {
            return Err(in_file(err(format!(
                "{}×{} image needs {need} bytes, file has {len}",
                header.width, header.height
            ))));
        }
        need
    } else {
        len
    };
    let rest = wanted.saturating_sub(bytes.len() as u64);
    bytes.reserve_exact(rest as usize);
    file.take(rest)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    bytes.truncate(wanted as usize);
    parse_pgm(&bytes).map_err(in_file)
}

/// Reads every `*.pgm` file of a directory, sorted by name.
///
/// Every entry named `*.pgm` must be a regular file (or a symlink to one): a directory,
/// FIFO, device or socket under such a name is an error naming it, not skipped.
///
/// # Errors
/// [`Error::Io`] when the directory cannot be listed or an entry is not a regular file;
/// [`Error::InvalidParameter`] when it holds no `.pgm` file; [`read_pgm`]'s errors.
pub fn read_pgm_dir(dir: impl AsRef<Path>) -> Result<Vec<GrayImage>> {
    let dir = dir.as_ref();
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        if path.extension().is_some_and(|e| e == "pgm") {
            paths.push(path);
        }
    }
    paths.sort();
    if paths.is_empty() {
        return Err(Error::param(
            "data",
            format!("no .pgm files in {}", dir.display()),
        ));
    }
    // Check every entry's type before reading any: a FIFO among them is reported at once,
    // not after the images before it have been decoded.
    for p in &paths {
        let meta = std::fs::metadata(p).map_err(|e| Error::io(p, e))?;
        if !meta.is_file() {
            return Err(Error::io(
                p,
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "not a regular file (in a directory of PGM images)",
                ),
            ));
        }
    }
    paths.iter().map(read_pgm).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_and_ascii() {
        let mut b = b"P5\n# comment\n3 2\n255\n".to_vec();
        b.extend_from_slice(&[0, 51, 255, 1, 2, 3]);
        let img = parse_pgm(&b).unwrap();
        assert_eq!((img.width, img.height), (3, 2));
        assert_eq!(img.at(2, 0), 1.0);
        assert!((img.at(1, 0) - 0.2).abs() < 1e-6);
        let a = parse_pgm(b"P2 2 2 # c\n 10\n0 5\n10 2").unwrap();
        assert_eq!(a.pixels, vec![0.0, 0.5, 1.0, 0.2]);
        let mut w = b"P5 1 1 65535\n".to_vec();
        w.extend_from_slice(&[0xff, 0xff]);
        assert_eq!(parse_pgm(&w).unwrap().pixels, vec![1.0]);
    }

    #[test]
    fn malformed_files_are_errors() {
        let cases: Vec<(&str, &[u8])> = vec![
            ("empty", b""),
            ("bad magic", b"P6 1 1 255\n\0"),
            ("maxval 0", b"P5 1 1 0\n\0"),
            ("maxval huge", b"P5 1 1 70000\n\0\0"),
            ("zero width", b"P5 0 1 255\n"),
            ("100000x100000", b"P5 100000 100000 255\n\0\0\0"),
            ("absurd", b"P5 99999999999999999999 1 255\n"),
            ("negative", b"P5 -3 1 255\n"),
            ("truncated raster", b"P5 2 2 255\n\0\0\0"),
            ("no raster", b"P5 2 2 255"),
            ("ascii too short", b"P2 3 3 255\n1 2 3"),
            ("ascii over maxval", b"P2 1 1 3\n9"),
            ("ascii garbage", b"P2 2 1 9\n1 x"),
        ];
        for (name, bytes) in cases {
            match parse_pgm(bytes) {
                Err(Error::Format { format: "PGM", .. }) => {}
                other => panic!("{name}: expected a PGM error, got {other:?}"),
            }
        }
    }
}
