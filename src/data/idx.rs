//! The IDX format of MNIST: big-endian u32 magic `0x0000_08NN` (type 0x08 = u8, NN = number
//! of dimensions), NN big-endian u32 dimensions, then the u8 payload. Gzip or raw.
//!
//! Every header is validated before anything is allocated from it or read after it:
//!
//! - the dimension product must not overflow and must not exceed the limit
//!   ([`MAX_IDX_BYTES`], or the one given to [`read_idx`]);
//! - a raw file's length must be exactly the header plus that product (checked from the
//!   file's metadata, before the payload is read);
//! - a gzip stream cannot inflate to more than [`MAX_GZIP_RATIO`] times its compressed
//!   size (deflate's limit), so a header claiming more than its file can hold is rejected
//!   at once.
//!
//! Files are read as streams: only the 4-byte magic is read before it is checked, a gzip
//! stream is inflated in chunks (multi-member gzip is accepted, garbage after the last
//! member is not), and the payload buffer grows with the data that actually arrives,
//! never beyond the declared size. Only regular files are read (a FIFO would hang, a
//! device would read without end).

use crate::{Error, Result};
use std::io::Read;
use std::path::Path;

/// Hard limit on any IDX payload (4 GiB): larger claims are rejected outright.
pub const MAX_IDX_BYTES: u64 = 1 << 32;

/// The most a deflate stream can expand: 258 bytes from two bits (zlib's documented
/// maximum compression factor, 1032:1). A gzip file of `c` bytes inflates to at most
/// `1032·c` bytes, which bounds what an IDX header inside it may declare.
pub const MAX_GZIP_RATIO: u64 = 1032;

/// Bytes read (or inflated) at a time.
const CHUNK: usize = 1 << 16;

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

/// Where the bytes come from: a raw IDX of this many bytes, or a gzip stream of this many
/// compressed bytes.
#[derive(Clone, Copy)]
enum Source {
    Raw(u64),
    Gzip(u64),
}

/// Parses the header after its first 4 bytes: returns the dims and the payload size.
fn parse_header(first4: &[u8; 4], rest: &mut impl Read, max: u64) -> Result<(Vec<usize>, u64)> {
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
        total = total.checked_mul(v).filter(|&t| t <= max).ok_or_else(|| {
            fmt_err(format!(
                "dimensions {dims:?}×{v}… describe more than the {max} bytes accepted"
            ))
        })?;
        dims.push(v as usize);
    }
    Ok((dims, total))
}

/// Parses an IDX file from bytes (gzip-compressed if it starts with the gzip magic).
pub fn parse_idx(bytes: &[u8]) -> Result<Idx> {
    parse_idx_limited(bytes, MAX_IDX_BYTES)
}

/// [`parse_idx`] with a limit on the payload size.
pub fn parse_idx_limited(bytes: &[u8], max_bytes: u64) -> Result<Idx> {
    let len = bytes.len() as u64;
    if bytes.starts_with(&[0x1f, 0x8b]) {
        parse_stream(
            flate2::read::MultiGzDecoder::new(bytes),
            Source::Gzip(len),
            max_bytes,
            None,
        )
    } else {
        parse_stream(bytes, Source::Raw(len), max_bytes, None)
    }
}

/// A read error: the file's own I/O error when there is a file and the error is not about
/// the data (corrupt or truncated gzip), else a format error.
fn read_err(e: std::io::Error, path: Option<&Path>, what: &str) -> Error {
    use std::io::ErrorKind::{InvalidData, InvalidInput, UnexpectedEof};
    match (path, e.kind()) {
        (Some(p), k) if !matches!(k, InvalidData | InvalidInput | UnexpectedEof) => Error::io(p, e),
        _ => fmt_err(format!("{what}: {e}")),
    }
}

fn parse_stream(mut r: impl Read, src: Source, max: u64, path: Option<&Path>) -> Result<Idx> {
    let gz = matches!(src, Source::Gzip(_));
    let mut first4 = [0u8; 4];
    r.read_exact(&mut first4).map_err(|e| {
        if gz {
            read_err(e, path, "truncated header or bad gzip stream")
        } else {
            read_err(e, path, "truncated header")
        }
    })?;
    let (dims, total) = parse_header(&first4, &mut r, max)?;
    let header = 4 + 4 * dims.len() as u64;
    match src {
        Source::Raw(len) => {
            let payload = len.saturating_sub(header);
            if payload != total {
                return Err(fmt_err(format!(
                    "dimensions {dims:?} need {total} payload bytes, file has {payload}"
                )));
            }
        }
        Source::Gzip(compressed) => {
            let most = compressed.saturating_mul(MAX_GZIP_RATIO);
            if header.saturating_add(total) > most {
                return Err(fmt_err(format!(
                    "dimensions {dims:?} need {total} payload bytes, but {compressed} bytes \
                     of gzip inflate to at most {most}"
                )));
            }
        }
    }
    // A raw file's size was checked against the header: the exact buffer is allocated. A
    // gzip stream's buffer grows with the data that arrives, never past the declared size.
    let total = usize::try_from(total)
        .map_err(|_| fmt_err(format!("{total} payload bytes do not fit in memory")))?;
    let mut data = Vec::new();
    if !gz {
        data.reserve_exact(total);
    }
    let mut buf = vec![0u8; CHUNK.min(total.max(1))];
    while data.len() < total {
        let want = (total - data.len()).min(buf.len());
        let n = match r.read(&mut buf[..want]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_err(e, path, "corrupt data stream")),
        };
        if data.capacity() - data.len() < n {
            // Double, but never past the declared size.
            data.reserve_exact((total - data.len()).min(data.len().max(CHUNK)));
        }
        data.extend_from_slice(&buf[..n]);
    }
    if data.len() < total {
        return Err(fmt_err(format!(
            "dimensions {dims:?} need {total} payload bytes, {} found",
            data.len()
        )));
    }
    // The stream must end here: reading on checks the gzip trailer (CRC and size) and that
    // nothing but further complete gzip members follows.
    loop {
        match r.read(&mut buf[..1]) {
            Ok(0) => break,
            Ok(_) => {
                return Err(fmt_err(format!(
                    "dimensions {dims:?} need {total} payload bytes, more than that found"
                )))
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(read_err(
                    e,
                    path,
                    if gz {
                        "corrupt gzip stream or garbage after its last member"
                    } else {
                        "read error"
                    },
                ))
            }
        }
    }
    Ok(Idx { dims, data })
}

/// Reads an IDX file (gzip or raw) whose payload is at most `max_bytes`, as a stream: see
/// the module documentation for what is checked before what is read.
///
/// # Errors
/// [`Error::Io`] when the file cannot be read or is not a regular file; [`Error::Format`]
/// (naming the file) for a malformed header, a payload larger than `max_bytes` or than
/// the file can hold, a truncated or corrupt stream, or trailing bytes.
pub fn read_idx(path: impl AsRef<Path>, max_bytes: u64) -> Result<Idx> {
    let path = path.as_ref();
    let (file, len) = crate::io::open_regular_file(path)?;
    // `take` bounds the read to the length the checks used, even if the file grows.
    let mut file = std::io::BufReader::with_capacity(CHUNK, file.take(len));
    let mut magic = [0u8; 2];
    let got = read_up_to(&mut file, &mut magic).map_err(|e| Error::io(path, e))?;
    let head = std::io::Cursor::new(magic).take(got as u64);
    let r = head.chain(file);
    if got == 2 && magic == [0x1f, 0x8b] {
        parse_stream(
            flate2::read::MultiGzDecoder::new(r),
            Source::Gzip(len),
            max_bytes,
            Some(path),
        )
    } else {
        parse_stream(r, Source::Raw(len), max_bytes, Some(path))
    }
    .map_err(|e| e.in_file(path))
}

/// Reads into `buf` until it is full or the input ends; returns the bytes read.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Reads an IDX3 image file (gzip or raw) of at most [`MAX_IDX_BYTES`] pixels.
pub fn read_idx_images(path: impl AsRef<Path>) -> Result<IdxImages> {
    let path = path.as_ref();
    idx_images(read_idx(path, MAX_IDX_BYTES)?).map_err(|e| e.in_file(path))
}

/// Reads an IDX1 label file (gzip or raw) of at most [`MAX_IDX_BYTES`] labels.
pub fn read_idx_labels(path: impl AsRef<Path>) -> Result<Vec<u8>> {
    let path = path.as_ref();
    idx_labels(read_idx(path, MAX_IDX_BYTES)?).map_err(|e| e.in_file(path))
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

    #[test]
    fn multi_member_gzip_is_read_and_trailing_garbage_is_not() {
        let raw = encode_idx(&[4, 1, 2], &[1, 2, 3, 4, 5, 6, 7, 8]);
        let mut multi = gzip(&raw[..9]);
        multi.extend(gzip(&raw[9..14]));
        multi.extend(gzip(&raw[14..]));
        assert_eq!(parse_idx(&multi).unwrap().data, raw[16..]);
        for tail in [&b"x"[..], &[0u8; 16][..], &[0x1f, 0x8b][..]] {
            let mut bad = multi.clone();
            bad.extend_from_slice(tail);
            match parse_idx(&bad) {
                Err(Error::Format { what, .. }) => assert!(what.contains("gzip"), "{what}"),
                other => panic!("trailing {tail:?} accepted: {other:?}"),
            }
        }
    }

    #[test]
    fn a_gzip_header_claiming_more_than_its_stream_can_inflate_to_is_refused() {
        // 4 KiB of gzip inflate to at most ~4 MiB: a claim of 64 MiB is refused from the
        // header alone.
        let mut b = gzip(&encode_idx(&[1 << 10, 1 << 8, 1 << 8], &[0; 1000]));
        b.resize(4096.max(b.len()), 0);
        match parse_idx(&b) {
            Err(Error::Format { what, .. }) => assert!(what.contains("inflate"), "{what}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_idx_limited(&encode_idx(&[10], &[0; 10]), 9),
            Err(Error::Format { .. })
        ));
    }
}
