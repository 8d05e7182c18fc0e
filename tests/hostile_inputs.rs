//! Issue #22, "nothing a user feeds it crashes it": every input path turns malformed or
//! hostile input into a typed `drsae::Error`, without a panic, a hang, or an allocation
//! that a forged header asks for. Each case is built in a temporary directory.
//!
//! Where a reader could be made to read far (a gzip bomb, a sparse file, a FIFO), the test
//! also checks that the error comes back quickly.

mod common;

use common::write_edited;
use drsae::data::idx::encode_idx;
use drsae::data::{read_idx_images, read_idx_labels, read_pgm, read_pgm_dir, Mnist};
use drsae::io::{drsae_from_bytes, drsae_to_bytes, tensors_from_bytes, tensors_to_bytes};
use drsae::linalg::Mat;
use drsae::models::{DrsaeNetwork, LossWeights};
use drsae::train::{train_drsae_with, Checkpointing, DrsaeConfig, Split, CHECKPOINT_FILE};
use drsae::Error;
use rand::SeedableRng;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------
// Helpers

/// A fresh temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("drsae-hostile-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// Runs `f` on another thread and fails the test if it takes longer than `secs` (a hang
/// would otherwise hang the test run).
fn within<T: Send + 'static>(secs: u64, what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(secs))
        .unwrap_or_else(|_| panic!("{what}: no answer within {secs} s (hangs?)"))
}

#[track_caller]
fn expect_format<T: std::fmt::Debug>(r: drsae::Result<T>, format: &str, needle: &str) -> String {
    match r {
        Err(Error::Format { format: f, what }) if f == format && what.contains(needle) => what,
        other => panic!("expected a {format} format error containing {needle:?}, got {other:?}"),
    }
}

#[track_caller]
fn expect_io<T: std::fmt::Debug>(r: drsae::Result<T>, needle: &str) -> String {
    match r {
        Err(e @ Error::Io { .. }) if e.to_string().contains(needle) => e.to_string(),
        other => panic!("expected an I/O error containing {needle:?}, got {other:?}"),
    }
}

#[track_caller]
fn expect_resume<T: std::fmt::Debug>(r: drsae::Result<T>, needle: &str) -> String {
    match r {
        Err(Error::InvalidParameter {
            name: "resume",
            reason,
        }) if reason.contains(needle) => reason,
        other => panic!("expected a resume error containing {needle:?}, got {other:?}"),
    }
}

/// `mkfifo path`; false when the command is not available.
#[cfg(unix)]
fn mkfifo(path: &Path) -> bool {
    std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .is_ok_and(|s| s.success())
}

/// A valid little MNIST directory: `n_train` and `n_test` images of `rows × cols`.
fn write_mnist(
    dir: &Path,
    n_train: usize,
    n_test: usize,
    train_rc: (usize, usize),
    test_rc: (usize, usize),
) {
    for (prefix, n, (r, c)) in [("train", n_train, train_rc), ("t10k", n_test, test_rc)] {
        let pixels: Vec<u8> = (0..n * r * c).map(|i| (i % 256) as u8).collect();
        let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
        std::fs::write(
            dir.join(format!("{prefix}-images-idx3-ubyte.gz")),
            gzip(&encode_idx(&[n, r, c], &pixels)),
        )
        .unwrap();
        std::fs::write(
            dir.join(format!("{prefix}-labels-idx1-ubyte")),
            encode_idx(&[n], &labels),
        )
        .unwrap();
    }
}

// ---------------------------------------------------------------------------------------
// IDX

#[test]
fn forged_idx_headers_are_format_errors() {
    let dir = TempDir::new("idx-forged");
    let good = encode_idx(&[2, 2, 2], &[0; 8]);
    let mut cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", vec![], "truncated header"),
        (
            "wrong magic",
            [&[1u8, 0, 8, 3][..], &good[4..]].concat(),
            "bad magic",
        ),
        (
            "not u8",
            [&[0u8, 0, 0x0d, 3][..], &good[4..]].concat(),
            "not u8",
        ),
        ("zero dims", vec![0, 0, 8, 0], "dimensions"),
        ("nine dims", vec![0, 0, 8, 9], "dimensions"),
        ("truncated header", good[..9].to_vec(), "truncated header"),
        (
            "truncated payload",
            good[..good.len() - 1].to_vec(),
            "file has 7",
        ),
        ("trailing bytes", [&good[..], &[0]].concat(), "file has 9"),
        (
            "4294967295 images",
            encode_idx(&[u32::MAX as usize, 28, 28], &[0; 10]),
            "more than",
        ),
        (
            "overflowing product",
            encode_idx(&[u32::MAX as usize; 3], &[]),
            "more than",
        ),
        (
            "gzip: huge count",
            gzip(&encode_idx(&[u32::MAX as usize, 28, 28], &[0; 100])),
            "more than",
        ),
        (
            "gzip: truncated",
            {
                let g = gzip(&good);
                g[..g.len() / 2].to_vec()
            },
            "",
        ),
        (
            "gzip: corrupt CRC",
            {
                let mut g = gzip(&good);
                let n = g.len();
                g[n - 8] ^= 0xff;
                g
            },
            "corrupt",
        ),
    ];
    cases.push(("gzip magic only", vec![0x1f, 0x8b], "gzip"));
    for (i, (name, bytes, needle)) in cases.into_iter().enumerate() {
        let p = dir.join(&format!("case{i}"));
        std::fs::write(&p, &bytes).unwrap();
        let what = expect_format(read_idx_images(&p), "IDX", needle);
        assert!(
            what.contains(&p.display().to_string()),
            "{name}: {what} does not name the file"
        );
        // The bytes parser agrees.
        assert!(
            drsae::data::parse_idx(&bytes)
                .and_then(drsae::data::idx::idx_images)
                .is_err(),
            "{name}"
        );
    }
}

/// A gzip file of ~1 MB holding 1 GiB of zeros behind a header that claims 2^32 bytes: the
/// header alone is refused (1 MB of deflate inflate to at most ~1 GB), before any payload
/// is inflated. (Before: 512 MiB of zeros were inflated, 560 MB of memory, before the
/// error.)
#[test]
fn a_gzip_bomb_claiming_more_than_it_can_hold_fails_at_the_header() {
    let dir = TempDir::new("idx-bomb");
    let zeros = gzip(&vec![0u8; 16 << 20]); // one member: 16 MiB of zeros in ~16 KiB
    let mut bomb = gzip(&encode_idx(&[1 << 16, 1 << 8, 1 << 8], &[0; 1024])[..16 + 1024]);
    for _ in 0..64 {
        bomb.extend_from_slice(&zeros);
    }
    assert!(bomb.len() < 4 << 20, "the bomb is {} bytes", bomb.len());
    let p = dir.join("train-images-idx3-ubyte.gz");
    std::fs::write(&p, &bomb).unwrap();
    let t = Instant::now();
    let what = expect_format(read_idx_images(&p), "IDX", "inflate to at most");
    let secs = t.elapsed().as_secs_f64();
    assert!(
        secs < 0.5,
        "took {secs} s: the payload was inflated ({what})"
    );
}

/// A gzip stream whose header claims more than it holds, but not more than it could hold:
/// read to its end (in chunks) and found short.
#[test]
fn a_gzip_stream_shorter_than_its_header_is_found_short() {
    let dir = TempDir::new("idx-short");
    // 256 KiB of incompressible bytes claim 64 MiB: within deflate's ratio of the file.
    let mut state = 0x9e37_79b9_u32;
    let noise: Vec<u8> = (0..256 << 10)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        })
        .collect();
    let mut raw = encode_idx(&[1 << 10, 1 << 8, 1 << 8], &[]);
    raw.extend_from_slice(&noise);
    let p = dir.join("short.gz");
    std::fs::write(&p, gzip(&raw)).unwrap();
    expect_format(read_idx_images(&p), "IDX", &format!("{} found", 256 << 10));
}

#[test]
fn multi_member_gzip_is_read_and_trailing_garbage_is_refused() {
    let dir = TempDir::new("idx-members");
    let pixels: Vec<u8> = (0..3 * 4 * 5).map(|i| i as u8).collect();
    let raw = encode_idx(&[3, 4, 5], &pixels);
    // Cut inside the header and inside the payload: three members.
    let mut multi = gzip(&raw[..6]);
    multi.extend(gzip(&raw[6..30]));
    multi.extend(gzip(&raw[30..]));
    let p = dir.join("multi.gz");
    std::fs::write(&p, &multi).unwrap();
    let img = read_idx_images(&p).unwrap();
    assert_eq!((img.count, img.rows, img.cols), (3, 4, 5));
    assert_eq!(img.pixels, pixels);
    for (i, tail) in [&b"garbage"[..], &[0u8; 512][..], &[0x1f, 0x8b, 8][..]]
        .into_iter()
        .enumerate()
    {
        let p = dir.join(&format!("tail{i}.gz"));
        std::fs::write(&p, [&multi[..], tail].concat()).unwrap();
        expect_format(read_idx_images(&p), "IDX", "garbage after its last member");
    }
    // Extra data inside the gzip stream is refused too.
    let p = dir.join("long.gz");
    std::fs::write(&p, gzip(&[&raw[..], &[1]].concat())).unwrap();
    expect_format(read_idx_images(&p), "IDX", "more than that found");
}

/// A 1 GiB sparse file: its 4-byte magic (zeros) is refused before the rest is read.
#[test]
fn a_sparse_gigabyte_is_refused_by_its_magic() {
    let dir = TempDir::new("idx-sparse");
    let p = dir.join("train-images-idx3-ubyte");
    std::fs::File::create(&p).unwrap().set_len(1 << 30).unwrap();
    let t = Instant::now();
    expect_format(read_idx_images(&p), "IDX", "is not u8");
    // And one whose header is right but whose size is not: refused from the metadata.
    std::fs::write(&p, encode_idx(&[10, 28, 28], &[])).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    expect_format(
        read_idx_images(&p),
        "IDX",
        "need 7840 payload bytes, file has",
    );
    let secs = t.elapsed().as_secs_f64();
    assert!(secs < 0.5, "took {secs} s: the file was read");
}

#[test]
fn non_regular_idx_files_are_io_errors() {
    let dir = TempDir::new("idx-nonregular");
    let d = dir.join("train-images-idx3-ubyte.gz");
    std::fs::create_dir(&d).unwrap();
    expect_io(read_idx_images(&d), "a directory");
    #[cfg(unix)]
    {
        let link = dir.join("zero");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        let what = within(10, "IDX from /dev/zero", move || {
            format!("{:?}", read_idx_labels(&link))
        });
        assert!(what.contains("character device"), "{what}");
        let fifo = dir.join("fifo");
        if mkfifo(&fifo) {
            let what = within(10, "IDX from a FIFO", move || {
                format!("{:?}", read_idx_labels(&fifo))
            });
            assert!(what.contains("a FIFO"), "{what}");
        } else {
            eprintln!("mkfifo unavailable: FIFO case skipped");
        }
    }
}

// ---------------------------------------------------------------------------------------
// MNIST directories

#[test]
fn a_valid_mnist_directory_loads() {
    let dir = TempDir::new("mnist-ok");
    write_mnist(&dir.0, 12, 5, (3, 4), (3, 4));
    let m = Mnist::load(&dir.0).unwrap();
    assert_eq!(
        (m.train.len(), m.test.len(), m.test.rows, m.test.cols),
        (12, 5, 3, 4)
    );
}

#[test]
fn train_and_test_images_of_different_shapes_are_an_error() {
    let dir = TempDir::new("mnist-shapes");
    write_mnist(&dir.0, 12, 5, (3, 4), (4, 3));
    expect_format(
        Mnist::load(&dir.0),
        "IDX",
        "training images are 3×4, test images 4×3",
    );
}

#[test]
fn empty_sets_and_zero_pixel_images_are_errors() {
    let dir = TempDir::new("mnist-empty");
    write_mnist(&dir.0, 12, 0, (3, 4), (3, 4));
    expect_format(
        Mnist::load(&dir.0),
        "IDX",
        "t10k-images-idx3-ubyte.gz: 0 images",
    );
    write_mnist(&dir.0, 12, 3, (3, 4), (0, 4));
    expect_format(Mnist::load(&dir.0), "IDX", "0×4 pixels");
    write_mnist(&dir.0, 0, 3, (3, 4), (3, 4));
    expect_format(
        Mnist::load(&dir.0),
        "IDX",
        "train-images-idx3-ubyte.gz: 0 images",
    );
}

#[test]
fn mnist_names_that_are_not_regular_files_are_errors() {
    let dir = TempDir::new("mnist-nonregular");
    write_mnist(&dir.0, 12, 5, (3, 4), (3, 4));
    // A directory where a file should be (raw name: the .gz one is removed).
    let gz = dir.join("t10k-images-idx3-ubyte.gz");
    std::fs::remove_file(&gz).unwrap();
    std::fs::create_dir(&gz).unwrap();
    expect_io(Mnist::load(&dir.0), "a directory");
    std::fs::remove_dir(&gz).unwrap();
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink("/dev/zero", &gz).unwrap();
        let d = dir.0.clone();
        let what = within(10, "MNIST from /dev/zero", move || {
            format!("{:?}", Mnist::load(&d))
        });
        assert!(what.contains("character device"), "{what}");
        std::fs::remove_file(&gz).unwrap();
        if mkfifo(&gz) {
            let d = dir.0.clone();
            let what = within(10, "MNIST from a FIFO", move || {
                format!("{:?}", Mnist::load(&d))
            });
            assert!(what.contains("a FIFO"), "{what}");
        } else {
            eprintln!("mkfifo unavailable: FIFO case skipped");
        }
    }
}

// ---------------------------------------------------------------------------------------
// PGM

fn small_pgm() -> Vec<u8> {
    let mut b = b"P5 2 2 255\n".to_vec();
    b.extend_from_slice(&[0, 64, 128, 255]);
    b
}

#[test]
fn pgm_directories_refuse_non_regular_entries() {
    let dir = TempDir::new("pgm-dir");
    std::fs::write(dir.join("a.pgm"), small_pgm()).unwrap();
    std::fs::write(dir.join("b.pgm"), small_pgm()).unwrap();
    assert_eq!(read_pgm_dir(&dir.0).unwrap().len(), 2);
    // A directory named *.pgm.
    let sub = dir.join("c.pgm");
    std::fs::create_dir(&sub).unwrap();
    expect_io(read_pgm_dir(&dir.0), "not a regular file");
    std::fs::remove_dir(&sub).unwrap();
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink("/dev/zero", &sub).unwrap();
        let d = dir.0.clone();
        let what = within(10, "PGM dir with /dev/zero", move || {
            format!("{:?}", read_pgm_dir(&d))
        });
        assert!(what.contains("not a regular file"), "{what}");
        let what = within(10, "PGM from /dev/zero", move || {
            format!("{:?}", read_pgm(&sub))
        });
        assert!(what.contains("character device"), "{what}");
        std::fs::remove_file(dir.join("c.pgm")).unwrap();
        let fifo = dir.join("d.pgm");
        if mkfifo(&fifo) {
            let d = dir.0.clone();
            let what = within(10, "PGM dir with a FIFO", move || {
                format!("{:?}", read_pgm_dir(&d))
            });
            assert!(what.contains("not a regular file"), "{what}");
            let what = within(10, "PGM from a FIFO", move || {
                format!("{:?}", read_pgm(&fifo))
            });
            assert!(what.contains("a FIFO"), "{what}");
        } else {
            eprintln!("mkfifo unavailable: FIFO case skipped");
        }
    }
}

#[test]
fn pgm_files_are_checked_before_they_are_read() {
    let dir = TempDir::new("pgm-files");
    let p = dir.join("x.pgm");
    let t = Instant::now();
    // A sparse gigabyte: no magic.
    std::fs::File::create(&p).unwrap().set_len(1 << 30).unwrap();
    expect_format(read_pgm(&p), "PGM", "missing P5/P2 magic");
    // A header claiming 16384×16384 pixels in a file of a few bytes.
    std::fs::write(&p, b"P5 16384 16384 255\n\0\0\0").unwrap();
    expect_format(read_pgm(&p), "PGM", "needs 268435475 bytes, file has 22");
    // A valid header followed by a sparse gigabyte: only the image's bytes are read.
    std::fs::write(&p, small_pgm()).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    assert_eq!(read_pgm(&p).unwrap().pixels.len(), 4);
    // More than the file limit.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(drsae::data::pgm::MAX_PGM_FILE_BYTES + 1)
        .unwrap();
    expect_format(read_pgm(&p), "PGM", "more than the");
    // A header that never ends (a comment running past the first 64 KiB).
    let mut long = b"P5 2 2 #".to_vec();
    long.resize(100_000, b'c');
    std::fs::write(&p, &long).unwrap();
    expect_format(read_pgm(&p), "PGM", "within the first 65536 bytes");
    let secs = t.elapsed().as_secs_f64();
    assert!(secs < 1.0, "took {secs} s: a file was read whole");
}

// ---------------------------------------------------------------------------------------
// Model files

fn tiny_network(hidden: usize) -> DrsaeNetwork {
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let data = Mat::random(6, 5, rand_distr::Uniform::new(0.0f32, 1.0), &mut rng);
    DrsaeNetwork::init(&data, hidden, 3, 2, &mut rng)
}

fn model_bytes() -> Vec<u8> {
    drsae_to_bytes(&tiny_network(4), &LossWeights::paper(), &[]).unwrap()
}

/// A safetensors file from a header string and data bytes (no checks: to forge files).
fn raw_safetensors(header: &str, data: &[u8]) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

/// The header and data of a safetensors file.
fn split_safetensors(bytes: &[u8]) -> (String, Vec<u8>) {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    (
        String::from_utf8(bytes[8..8 + n].to_vec()).unwrap(),
        bytes[8 + n..].to_vec(),
    )
}

#[test]
fn the_untouched_model_file_loads() {
    let (model, meta) = drsae_from_bytes(&model_bytes()).unwrap();
    assert_eq!(model, tiny_network(4));
    assert_eq!(meta["steps"], "2");
}

#[test]
fn duplicate_tensor_names_and_metadata_keys_are_errors() {
    let (header, data) = split_safetensors(&model_bytes());
    let header = header.trim_end();
    // The last tensor (C) again under its own name, at the same offsets.
    let c_at = header.find(",\"C\":").unwrap();
    let c_entry = &header[c_at..header.len() - 1];
    let dup = format!("{}{c_entry}}}", &header[..header.len() - 1]);
    expect_format(
        drsae_from_bytes(&raw_safetensors(&dup, &data)),
        "safetensors",
        "`C` appears twice",
    );
    // The same name spelled with an escape.
    let escaped = format!(
        "{}{}}}",
        &header[..header.len() - 1],
        c_entry.replace("\"C\"", "\"\\u0043\"")
    );
    expect_format(
        drsae_from_bytes(&raw_safetensors(&escaped, &data)),
        "safetensors",
        "appears twice",
    );
    // A metadata key twice, the second overriding `steps`.
    let meta_dup = header.replacen("\"steps\":\"2\"", "\"steps\":\"2\",\"steps\":\"9\"", 1);
    assert_ne!(meta_dup, header);
    expect_format(
        drsae_from_bytes(&raw_safetensors(&meta_dup, &data)),
        "safetensors",
        "metadata key `steps` appears twice",
    );
    // __metadata__ twice.
    let two_meta = header.replacen(
        "{\"__metadata__\"",
        "{\"__metadata__\":{},\"__metadata__\"",
        1,
    );
    expect_format(
        drsae_from_bytes(&raw_safetensors(&two_meta, &data)),
        "safetensors",
        "`__metadata__` appears twice",
    );
}

#[test]
fn headers_mostly_padding_are_refused_before_parsing() {
    let (header, data) = split_safetensors(&model_bytes());
    // 8 MiB of spaces after the JSON, for ~1 KiB of data.
    let padded = format!("{header}{}", " ".repeat(8 << 20));
    let t = Instant::now();
    expect_format(
        drsae_from_bytes(&raw_safetensors(&padded, &data)),
        "safetensors",
        "bytes of tensor data",
    );
    // Past the absolute limit, with data to match.
    let huge = format!("{header}{}", " ".repeat(17 << 20));
    let mut bytes = raw_safetensors(&huge, &data);
    bytes.resize(bytes.len() + (17 << 20), 0);
    expect_format(
        drsae_from_bytes(&bytes),
        "safetensors",
        "more than the 16777216 accepted",
    );
    // A length prefix beyond the file.
    let mut forged = model_bytes();
    forged[..8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    expect_format(drsae_from_bytes(&forged), "safetensors", "more than the");
    forged[..8].copy_from_slice(&(1u64 << 20).to_le_bytes());
    expect_format(drsae_from_bytes(&forged), "safetensors", "in a file of");
    assert!(t.elapsed() < Duration::from_secs(1));
    // Moderate padding (within 1 MiB) is still accepted.
    let ok = format!("{header}{}", " ".repeat(100_000));
    assert!(drsae_from_bytes(&raw_safetensors(&ok, &data)).is_ok());
}

#[test]
fn unknown_tensors_are_errors() {
    let model = tiny_network(4);
    let (mut t, meta) = tensors_from_bytes(&model_bytes()).unwrap();
    let extra = [1.0f32, 2.0];
    t.insert("X".into(), (vec![2], extra.to_vec()));
    let named: Vec<_> = t
        .iter()
        .map(|(k, (s, v))| (k.clone(), s.clone(), &v[..]))
        .collect();
    let bytes = tensors_to_bytes(&named, meta.clone()).unwrap();
    expect_format(
        drsae_from_bytes(&bytes),
        "safetensors",
        "1 unknown tensor (`X`)",
    );
    // Many empty unknown tensors: more than MAX_TENSORS in a small header ...
    let (header, data) = split_safetensors(&model_bytes());
    let many = |count: usize| {
        let mut h = header.trim_end()[..header.trim_end().len() - 1].to_string();
        let end = 4
            * (model.e().as_slice().len()
                + model.s().as_slice().len()
                + model.b().len()
                + model.d().as_slice().len()
                + model.c().as_slice().len());
        for i in 0..count {
            h.push_str(&format!(
                ",\"u{i}\":{{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[{end},{end}]}}"
            ));
        }
        h.push('}');
        raw_safetensors(&h, &data)
    };
    expect_format(
        drsae_from_bytes(&many(5000)),
        "safetensors",
        "more than 4096 tensors",
    );
    // ... and a header of 100,000 of them is refused by its length alone (1.4 million
    // would be 84 MB).
    let t0 = Instant::now();
    expect_format(
        drsae_from_bytes(&many(100_000)),
        "safetensors",
        "bytes of tensor data",
    );
    assert!(t0.elapsed() < Duration::from_secs(2));
    // A few are refused by name.
    expect_format(
        drsae_from_bytes(&many(7)),
        "safetensors",
        "7 unknown tensors (`u0`, `u1`",
    );
}

#[test]
fn shapes_are_checked_against_each_other_and_the_metadata() {
    let (mut t, meta) = tensors_from_bytes(&model_bytes()).unwrap();
    let edit = |t: &HashMap<String, (Vec<usize>, Vec<f32>)>, meta: &HashMap<String, String>| {
        let named: Vec<_> = t
            .iter()
            .map(|(k, (s, v))| (k.clone(), s.clone(), &v[..]))
            .collect();
        drsae_from_bytes(&tensors_to_bytes(&named, meta.clone()).unwrap())
    };
    let mut m = meta.clone();
    m.insert("config.hidden".into(), "5".into());
    expect_format(
        edit(&t, &m),
        "safetensors",
        "`config.hidden` = \"5\", but the tensors describe 4",
    );
    let mut m = meta.clone();
    m.insert("config.steps".into(), "3".into());
    expect_format(edit(&t, &m), "safetensors", "`config.steps`");
    let mut m = meta.clone();
    m.insert("lambda".into(), "NaN".into());
    expect_format(edit(&t, &m), "safetensors", "`lambda`");
    let mut m = meta.clone();
    m.insert("steps".into(), "0".into());
    expect_format(edit(&t, &m), "safetensors", "`steps`");
    // b with one value too many.
    t.get_mut("b").unwrap().0 = vec![5];
    t.get_mut("b").unwrap().1.push(0.0);
    expect_format(edit(&t, &meta), "safetensors", "inconsistent shapes");
}

#[test]
fn model_files_that_are_not_regular_are_io_errors() {
    let dir = TempDir::new("model-nonregular");
    expect_io(drsae::io::load_drsae(&dir.0), "a directory");
    #[cfg(unix)]
    {
        let link = dir.join("zero.safetensors");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        let what = within(10, "model from /dev/zero", move || {
            format!("{:?}", drsae::io::load_drsae(&link))
        });
        assert!(what.contains("character device"), "{what}");
    }
}

// ---------------------------------------------------------------------------------------
// Checkpoints

struct Run {
    x: Mat,
    y: Vec<u8>,
    vx: Mat,
    vy: Vec<u8>,
    cfg: DrsaeConfig,
}

impl Run {
    fn new() -> Run {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let mut x = Mat::random(40, 6, rand_distr::Uniform::new(0.0f32, 1.0), &mut rng);
        let mut vx = Mat::random(10, 6, rand_distr::Uniform::new(0.0f32, 1.0), &mut rng);
        drsae::data::normalize_rows_l2(&mut x);
        drsae::data::normalize_rows_l2(&mut vx);
        Run {
            x,
            y: (0..40).map(|i| (i % 3) as u8).collect(),
            vx,
            vy: (0..10).map(|i| (i % 3) as u8).collect(),
            cfg: DrsaeConfig {
                hidden: 4,
                steps: 2,
                batch: 10,
                epochs_unsup: 1,
                epochs_sup: 2,
                average: Some(0.9),
                ..Default::default()
            },
        }
    }
    fn split(&self) -> Split<'_> {
        Split {
            train_x: &self.x,
            train_y: &self.y,
            val_x: &self.vx,
            val_y: &self.vy,
        }
    }
    fn train(
        &self,
        dir: &Path,
        stop: Option<u64>,
        resume: bool,
    ) -> drsae::Result<drsae::train::TrainOutcome> {
        let ck = Checkpointing {
            dir: Some(dir.to_path_buf()),
            resume,
            stop_after_steps: stop,
            ..Default::default()
        };
        train_drsae_with(&self.cfg, self.split(), &ck, |_| {})
    }
    /// A real checkpoint: phase 2, epoch 1, minibatch 2 of 4 (steps 5 and 6), with Adam's
    /// moments and the average.
    fn checkpoint(&self, dir: &Path) -> Vec<u8> {
        let _ = std::fs::remove_file(dir.join(CHECKPOINT_FILE));
        assert!(matches!(
            self.train(dir, Some(6), false),
            Err(Error::Interrupted { step: 6 })
        ));
        std::fs::read(dir.join(CHECKPOINT_FILE)).unwrap()
    }
}

type Tensors = HashMap<String, (Vec<usize>, Vec<f32>)>;

/// An edit of a checkpoint's tensors and metadata.
type Edit = Box<dyn Fn(&mut Tensors, &mut HashMap<String, String>)>;

#[test]
fn an_untouched_or_re_encoded_checkpoint_resumes() {
    let dir = TempDir::new("ckpt-ok");
    let run = Run::new();
    let reference = run.train(&dir.join("ref"), None, false).unwrap();
    let bytes = run.checkpoint(&dir.0);
    let meta = tensors_from_bytes(&bytes).unwrap().1;
    assert_eq!(
        (
            meta["phase"].as_str(),
            meta["epoch"].as_str(),
            meta["batch_index"].as_str()
        ),
        ("2", "1", "2")
    );
    write_edited(&dir.0, &bytes, |_, _| {});
    let resumed = run.train(&dir.0, None, true).unwrap();
    assert!(
        resumed.model == reference.model,
        "re-encoded checkpoint changed the run"
    );
}

#[test]
fn checkpoint_fields_are_validated_one_by_one() {
    let dir = TempDir::new("ckpt-fields");
    let run = Run::new();
    let bytes = run.checkpoint(&dir.0);
    let set = |k: &'static str, v: &'static str| {
        move |_: &mut Tensors, m: &mut HashMap<String, String>| {
            m.insert(k.into(), v.into());
        }
    };
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "phase 7",
            Box::new(set("phase", "7")),
            "`phase` = 7 is neither 1 nor 2",
        ),
        ("phase 0", Box::new(set("phase", "0")), "neither 1 nor 2"),
        (
            "phase 300",
            Box::new(set("phase", "300")),
            "`phase` = `300` is malformed",
        ),
        ("epoch 0", Box::new(set("epoch", "0")), "`epoch` = 0"),
        (
            "epoch huge",
            Box::new(set("epoch", "18446744073709551615")),
            "`epoch`",
        ),
        (
            "elapsed NaN",
            Box::new(set("elapsed", "NaN")),
            "`elapsed` = NaN",
        ),
        (
            "elapsed negative",
            Box::new(set("elapsed", "-1.0")),
            "`elapsed` = -1.0",
        ),
        (
            "elapsed 1e19",
            Box::new(set("elapsed", "1e19")),
            "`elapsed` = 1e19",
        ),
        (
            "elapsed inf",
            Box::new(set("elapsed", "inf")),
            "`elapsed` = inf",
        ),
        (
            "train_seconds NaN",
            Box::new(set("train_seconds", "NaN")),
            "`train_seconds`",
        ),
        (
            "batch index huge",
            Box::new(set("batch_index", "18446744073709551615")),
            "`batch_index`",
        ),
        (
            "batch index > steps",
            Box::new(set("batch_index", "1000000")),
            "`batch_index` = 1000000 exceeds 6",
        ),
        (
            "global step huge",
            Box::new(set("global_step", "18446744073709551615")),
            "`global_step`",
        ),
        (
            "opt step > global",
            Box::new(set("opt_step", "7")),
            "`opt_step` = 7 exceeds 6",
        ),
        (
            "opt step wraps an i32",
            Box::new(|_: &mut Tensors, m: &mut HashMap<String, String>| {
                m.insert("global_step".into(), (1u64 << 31).to_string());
                m.insert("opt_step".into(), (1u64 << 31).to_string());
            }),
            "`opt_step` = 2147483648 exceeds 2147483647",
        ),
        (
            "opt step u64::MAX",
            Box::new(set("opt_step", "18446744073709551615")),
            "`opt_step`",
        ),
        ("sums NaN", Box::new(set("sums", "NaN 1.0 0 10")), "`sums`"),
        (
            "sums correct > seen",
            Box::new(set("sums", "1.0 1.0 11 10")),
            "`sums`",
        ),
        (
            "sums seen overflowing",
            Box::new(set("sums", "1.0 1.0 0 18446744073709551615")),
            "`sums`",
        ),
        (
            "samples seen overflowing",
            Box::new(set("samples_seen", "18446744073709551615")),
            "`samples_seen`",
        ),
        (
            "history phase 3",
            Box::new(set("history", "3 1 1 1 NaN 1 1 1 1")),
            "history line for phase 3",
        ),
        (
            "history seconds NaN",
            Box::new(set("history", "1 1 1 1 NaN 1 1 NaN 1")),
            "history seconds",
        ),
        (
            "average in phase 1",
            Box::new(set("phase", "1")),
            "phase-1 checkpoint with a best or averaged model",
        ),
        (
            "missing optimiser buffer",
            Box::new(|t: &mut Tensors, _: &mut HashMap<String, String>| {
                t.remove("opt/second/3");
            }),
            "optimiser buffer second/3 missing",
        ),
        (
            "short optimiser buffer",
            Box::new(|t: &mut Tensors, _: &mut HashMap<String, String>| {
                let b = t.get_mut("opt/first/0").unwrap();
                b.1.pop();
                b.0 = vec![b.1.len()];
            }),
            "optimiser first moments of lengths [23, 16, 4, 24, 12]",
        ),
        (
            "long optimiser buffer",
            Box::new(|t: &mut Tensors, _: &mut HashMap<String, String>| {
                let b = t.get_mut("opt/second/4").unwrap();
                b.1.push(0.0);
                b.0 = vec![b.1.len()];
            }),
            "optimiser second moments",
        ),
        (
            "too many optimiser buffers",
            Box::new(set("opt_first", "1000")),
            "too many optimiser buffers",
        ),
        (
            "unknown tensor",
            Box::new(|t: &mut Tensors, _: &mut HashMap<String, String>| {
                t.insert("opt/first/5".into(), (vec![1], vec![0.0]));
            }),
            "1 unknown tensor (`opt/first/5`)",
        ),
        (
            "non-finite average",
            Box::new(|t: &mut Tensors, _: &mut HashMap<String, String>| {
                t.get_mut("average/b").unwrap().1[0] = f32::NAN;
            }),
            "non-finite",
        ),
    ];
    for (name, edit, needle) in cases {
        write_edited(&dir.0, &bytes, |t, m| edit(t, m));
        // Most errors are the checkpoint's; a non-finite value is found by the tensor layer.
        match run.train(&dir.0, None, true) {
            Err(Error::Format {
                format: "checkpoint" | "safetensors",
                what,
            }) if what.contains(needle) && what.contains(CHECKPOINT_FILE) => {}
            other => panic!("{name}: expected a format error containing {needle:?}, got {other:?}"),
        }
    }
}

#[test]
fn checkpoints_inconsistent_with_the_run_are_refused_at_resume() {
    let dir = TempDir::new("ckpt-run");
    let run = Run::new();
    let bytes = run.checkpoint(&dir.0);
    // A batch index within the steps taken but beyond the epoch's 4 minibatches.
    write_edited(&dir.0, &bytes, |_, m| {
        m.insert("batch_index".into(), "5".into());
    });
    expect_resume(
        run.train(&dir.0, None, true),
        "minibatch 5 of an epoch of 4",
    );
    // An epoch beyond the phase's two.
    write_edited(&dir.0, &bytes, |_, m| {
        m.insert("epoch".into(), "4".into());
    });
    expect_resume(
        run.train(&dir.0, None, true),
        "phase 2 epoch 4, the run has 2 epochs",
    );
    // More steps than the run plans (3 epochs of 4 minibatches).
    write_edited(&dir.0, &bytes, |_, m| {
        m.insert("global_step".into(), "13".into());
    });
    expect_resume(run.train(&dir.0, None, true), "the run plans at most 12");
    // Adam without its second moments (restored, they panicked at the first update).
    write_edited(&dir.0, &bytes, |t, m| {
        m.insert("opt_second".into(), "0".into());
        for k in 0..5 {
            t.remove(&format!("opt/second/{k}"));
        }
    });
    expect_resume(
        run.train(&dir.0, None, true),
        "holds 5 first and 0 second optimiser moments",
    );
    // A model of another hidden size, every tensor consistent, the fingerprint unchanged.
    write_edited(&dir.0, &bytes, |t, _| {
        let (n, m, k) = (5, 6, 3);
        for prefix in ["", "average/"] {
            for (name, shape) in [
                ("E", vec![n, m]),
                ("S", vec![n, n]),
                ("b", vec![n]),
                ("D", vec![m, n]),
                ("C", vec![k, n]),
            ] {
                let len = shape.iter().product();
                t.insert(format!("{prefix}{name}"), (shape, vec![0.01; len]));
            }
        }
        for (i, len) in [n * m, n * n, n, m * n, k * n].into_iter().enumerate() {
            for kind in ["first", "second"] {
                t.insert(format!("opt/{kind}/{i}"), (vec![len], vec![0.0; len]));
            }
        }
    });
    expect_resume(
        run.train(&dir.0, None, true),
        "has 5 code units on 6 inputs",
    );
    // Another configuration: the fingerprint refuses it.
    let other = Run {
        cfg: DrsaeConfig {
            hidden: 5,
            ..Run::new().cfg
        },
        ..Run::new()
    };
    std::fs::write(dir.join(CHECKPOINT_FILE), &bytes).unwrap();
    expect_resume(other.train(&dir.0, None, true), "different configuration");
}

/// A real checkpoint of `run` after `stop` steps.
fn checkpoint_after(run: &Run, dir: &Path, stop: u64) -> Vec<u8> {
    let _ = std::fs::remove_file(dir.join(CHECKPOINT_FILE));
    assert!(matches!(
        run.train(dir, Some(stop), false),
        Err(Error::Interrupted { .. })
    ));
    std::fs::read(dir.join(CHECKPOINT_FILE)).unwrap()
}

#[test]
fn checkpoints_in_impossible_positions_are_refused_field_by_field() {
    let dir = TempDir::new("ckpt-position");
    let run = Run::new();
    // Phase 2 epoch 1 after 2 of its 4 minibatches (steps 5 and 6), and phase 2 epoch 2
    // after 2 minibatches (steps 9 and 10, the best model from epoch 1).
    let early = run.checkpoint(&dir.0);
    let late = checkpoint_after(&run, &dir.0, 10);
    let meta = tensors_from_bytes(&late).unwrap().1;
    assert_eq!(
        (
            meta["phase"].as_str(),
            meta["epoch"].as_str(),
            meta["best_epoch"].as_str()
        ),
        ("2", "2", "1")
    );
    for bytes in [&early, &late] {
        write_edited(&dir.0, bytes, |_, _| {});
        run.train(&dir.0, None, true).unwrap();
    }
    type MetaEdit = Box<dyn Fn(&mut HashMap<String, String>)>;
    let set = |k: &'static str, v: &'static str| -> MetaEdit {
        Box::new(move |m: &mut HashMap<String, String>| {
            m.insert(k.into(), v.into());
        })
    };
    let history_lines = |m: &HashMap<String, String>| -> Vec<String> {
        m["history"].lines().map(String::from).collect()
    };
    let cases: Vec<(&str, &Vec<u8>, MetaEdit, &str)> = vec![
        (
            "start of a phase",
            &early,
            Box::new(|m: &mut HashMap<String, String>| {
                m.insert("batch_index".into(), "0".into());
                m.insert("sums".into(), "0.0 0.0 0 0".into());
            }),
            "`batch_index` = 0 at epoch 1",
        ),
        (
            "opt step short",
            &early,
            set("opt_step", "1"),
            "`opt_step` = 1",
        ),
        (
            "opt step of another epoch",
            &late,
            set("opt_step", "2"),
            "`opt_step` = 2: phase 2 epoch 2 after 2 of 4 minibatches has taken 6 steps",
        ),
        (
            "phase-1 steps missing",
            &early,
            set("global_step", "5"),
            "`global_step` = 5 with `opt_step` = 2: the 3 steps before phase 2 are not 4",
        ),
        (
            "sums of another minibatch count",
            &early,
            set("sums", "1.0 1.0 5 10"),
            "`sums` = 1.0 1.0 5 10 after 2 minibatches",
        ),
        (
            "samples seen short",
            &early,
            set("samples_seen", "39"),
            "`samples_seen` = 39 after 1 epochs of 40 rows",
        ),
        (
            "train seconds beyond elapsed",
            &early,
            set("train_seconds", "1000.0"),
            "`train_seconds` = 1000.0 exceeds `elapsed`",
        ),
        (
            "history line missing",
            &early,
            set("history", ""),
            "`history` has 0 phase-1 and 0 phase-2 epochs",
        ),
        (
            "history line repeated",
            &late,
            Box::new(move |m: &mut HashMap<String, String>| {
                let l = history_lines(m);
                m.insert("history".into(), format!("{}\n{}\n{}", l[0], l[1], l[1]));
            }),
            "`history`: phase 2 epoch 1 follows 1 phase-1 and 1 phase-2 epochs",
        ),
        (
            "history phases out of order",
            &late,
            Box::new(move |m: &mut HashMap<String, String>| {
                let l = history_lines(m);
                m.insert("history".into(), format!("{}\n{}", l[1], l[0]));
            }),
            "`history`: phase 1 epoch 1 follows 0 phase-1 and 1 phase-2 epochs",
        ),
        (
            "history after the checkpoint",
            &early,
            Box::new(|m: &mut HashMap<String, String>| {
                let l = m["history"].clone();
                let mut f: Vec<&str> = l.split(' ').collect();
                f[7] = "1000.0";
                m.insert("history".into(), f.join(" "));
            }),
            "ends at 1000.0 s",
        ),
        (
            "best epoch not the history's",
            &late,
            set("best_val_error", "0.0"),
            "`best_epoch`/`best_val_error`: the checkpoint's best model is epoch 1 at 0.0 %",
        ),
        (
            "since best not the history's",
            &late,
            set("since_best", "1"),
            "`since_best` = 1, its history has 0",
        ),
        (
            "average missing in phase 2",
            &early,
            set("average", "false"),
            "lacks an averaged model",
        ),
    ];
    for (name, bytes, edit, needle) in cases {
        write_edited(&dir.0, bytes, |t, m| {
            edit(m);
            if m["average"] == "false" {
                t.retain(|k, _| !k.starts_with("average/"));
            }
        });
        match run.train(&dir.0, None, true) {
            Err(Error::InvalidParameter {
                name: "resume",
                reason,
            }) if reason.contains(needle) => {}
            other => panic!("{name}: expected a resume error containing {needle:?}, got {other:?}"),
        }
    }
    // History lines an epoch cannot report.
    for (name, line, needle) in [
        (
            "val error above 100",
            "1 1 1 1 NaN 101 1 1 1",
            "val_error 101.0",
        ),
        ("negative loss", "1 1 -1 1 NaN 1 1 1 1", "loss -1.0"),
        (
            "phase-1 train error",
            "1 1 1 1 5 1 1 1 1",
            "train_error 5.0",
        ),
        ("progress above 1", "1 1 1 1 NaN 1 1 1 2", "progress 2.0"),
    ] {
        write_edited(&dir.0, &early, |_, m| {
            m.insert("history".into(), line.into());
        });
        match run.train(&dir.0, None, true) {
            Err(Error::Format { what, .. }) if what.contains(needle) => {}
            other => panic!("{name}: expected a format error containing {needle:?}, got {other:?}"),
        }
    }
    // A best model from "epoch 0" is refused when the checkpoint is read.
    write_edited(&dir.0, &late, |_, m| {
        m.insert("best_epoch".into(), "0".into());
    });
    match run.train(&dir.0, None, true) {
        Err(Error::Format { what, .. }) if what.contains("best model of epoch 0") => {}
        other => panic!("best epoch 0: got {other:?}"),
    }
}

#[test]
fn a_run_resumed_from_its_early_stopping_checkpoint_stays_stopped() {
    let dir = TempDir::new("ckpt-patience");
    let run = Run {
        cfg: DrsaeConfig {
            epochs_sup: 12,
            patience: Some(1),
            ..Run::new().cfg
        },
        ..Run::new()
    };
    let reference = run.train(&dir.0, None, false).unwrap();
    let phase2 = reference.history.iter().filter(|r| r.phase == 2).count();
    assert!(phase2 < 12, "early stopping did not stop the run");
    // The directory holds the checkpoint written as early stopping ended phase 2.
    let resumed = run.train(&dir.0, None, true).unwrap();
    assert!(resumed.model == reference.model);
    assert_eq!(resumed.best_epoch, reference.best_epoch);
    assert_eq!(resumed.history.len(), reference.history.len());
    // A checkpoint that trains on after the patience ran out is impossible.
    let bytes = std::fs::read(dir.join(CHECKPOINT_FILE)).unwrap();
    write_edited(&dir.0, &bytes, |_, m| {
        let since: usize = m["since_best"].parse().unwrap();
        m.insert("since_best".into(), (since + 1).to_string());
    });
    expect_resume(run.train(&dir.0, None, true), "`since_best`");
}

#[test]
fn a_checkpoint_that_is_not_a_regular_file_is_an_error() {
    let dir = TempDir::new("ckpt-nonregular");
    let run = Run::new();
    std::fs::create_dir(dir.join(CHECKPOINT_FILE)).unwrap();
    expect_io(run.train(&dir.0, None, true), "a directory");
    #[cfg(unix)]
    {
        std::fs::remove_dir(dir.join(CHECKPOINT_FILE)).unwrap();
        if mkfifo(&dir.join(CHECKPOINT_FILE)) {
            let d = dir.0.clone();
            let what = within(30, "checkpoint from a FIFO", move || {
                format!("{:?}", Run::new().train(&d, None, true))
            });
            assert!(what.contains("a FIFO"), "{what}");
        }
    }
}

#[test]
fn loop_checkpoints_are_bounded_by_their_run() {
    use drsae::models::Lista;
    use drsae::solvers::{exact, Dictionary, LassoOptions};
    use drsae::train::{train_lista_with, ListaConfig};
    let dir = TempDir::new("ckpt-loop");
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let x = Mat::random(40, 6, rand_distr::StandardNormal, &mut rng);
    let d = Dictionary::from_unit_rows(&Mat::random(8, 6, rand_distr::StandardNormal, &mut rng))
        .unwrap();
    let mut z = Mat::zeros(40, 8);
    exact(&d, &x, &mut z, &LassoOptions::new(0.4)).unwrap();
    let cfg = ListaConfig {
        epochs: 2,
        batch: 10,
        ..Default::default()
    };
    let ck = |stop: Option<u64>, resume: bool| Checkpointing {
        dir: Some(dir.0.clone()),
        resume,
        stop_after_steps: stop,
        ..Default::default()
    };
    let mut a = Lista::from_ista(&d, 0.4, 2);
    assert!(matches!(
        train_lista_with(&mut a, &x, &z, &cfg, &ck(Some(6), false)),
        Err(Error::Interrupted { step: 6 })
    ));
    let bytes = std::fs::read(dir.join(CHECKPOINT_FILE)).unwrap();
    let resume = || {
        train_lista_with(
            &mut Lista::from_ista(&d, 0.4, 2),
            &x,
            &z,
            &cfg,
            &ck(None, true),
        )
    };
    write_edited(&dir.0, &bytes, |_, m| {
        m.insert("batch_index".into(), "5".into());
    });
    expect_resume(resume(), "minibatch 5");
    write_edited(&dir.0, &bytes, |_, m| {
        m.insert("epoch".into(), "3".into());
    });
    expect_resume(resume(), "epochs of 4 minibatches");
    write_edited(&dir.0, &bytes, |_, m| {
        m.insert("opt_step".into(), "4294967296".into());
    });
    expect_format(
        resume(),
        "checkpoint",
        "`opt_step` = 4294967296 exceeds 2147483647",
    );
    write_edited(&dir.0, &bytes, |_, m| {
        m.insert("sums".into(), "NaN".into());
    });
    expect_format(resume(), "checkpoint", "non-finite number `NaN`");
    write_edited(&dir.0, &bytes, |_, m| {
        m.insert("sums".into(), "1e300".into());
    });
    expect_format(resume(), "checkpoint", "beyond ±2^53");
    write_edited(&dir.0, &bytes, |t, _| {
        t.insert("extra".into(), (vec![1], vec![1.0]));
    });
    expect_format(resume(), "checkpoint", "1 unknown tensor (`extra`)");
    write_edited(&dir.0, &bytes, |t, _| {
        t.remove("opt/first/1");
    });
    expect_format(resume(), "checkpoint", "`opt/first/1` missing");
    // Untouched, it resumes.
    std::fs::write(dir.join(CHECKPOINT_FILE), &bytes).unwrap();
    assert!(resume().is_ok());
}

/// Regenerates fuzz/seeds/checkpoint/drsae_with_average (a real phase-2 checkpoint with an
/// averaged model, from the bundled MNIST sample): `cargo test --test hostile_inputs
/// regenerate_checkpoint_seed -- --ignored`.
#[test]
#[ignore]
fn regenerate_checkpoint_seed() {
    let m = Mnist::load("data/mnist-sample").unwrap();
    let (mut tr, mut va) = m.train.split_last(1666);
    drsae::data::normalize_rows_l2(&mut tr.images);
    drsae::data::normalize_rows_l2(&mut va.images);
    let cfg = DrsaeConfig {
        hidden: 2,
        steps: 2,
        batch: 100,
        epochs_unsup: 1,
        epochs_sup: 2,
        average: Some(0.9),
        ..Default::default()
    };
    let dir = TempDir::new("seed");
    let ck = Checkpointing {
        dir: Some(dir.0.clone()),
        stop_after_steps: Some(120),
        ..Default::default()
    };
    let split = Split {
        train_x: &tr.images,
        train_y: &tr.labels,
        val_x: &va.images,
        val_y: &va.labels,
    };
    assert!(matches!(
        train_drsae_with(&cfg, split, &ck, |_| {}),
        Err(Error::Interrupted { step: 120 })
    ));
    std::fs::copy(
        dir.join(CHECKPOINT_FILE),
        "fuzz/seeds/checkpoint/drsae_with_average",
    )
    .unwrap();
    let ck = Checkpointing {
        dir: Some(dir.0.clone()),
        resume: true,
        ..Default::default()
    };
    train_drsae_with(&cfg, split, &ck, |_| {}).expect("the seed resumes");
}

/// The fuzz seeds added for this issue behave as their names say (and a model file written
/// by Python's json module, with spaces after separators, still loads).
#[test]
fn the_hostile_fuzz_seeds_behave() {
    let seed = |p: &str| std::fs::read(Path::new("fuzz/seeds").join(p)).unwrap();
    assert!(drsae_from_bytes(&seed("model_file/good")).is_ok());
    expect_format(
        drsae_from_bytes(&seed("model_file/duplicate_names")),
        "safetensors",
        "`C` appears twice",
    );
    let img = drsae::data::parse_idx(&seed("idx/multi_member_gz")).unwrap();
    assert_eq!(img.dims, vec![3, 4, 5]);
    expect_format(
        drsae::data::parse_idx(&seed("idx/trailing_garbage_gz")),
        "IDX",
        "garbage after its last member",
    );
}

// ---------------------------------------------------------------------------------------
// Data checked against itself (library level)

/// Constant or all-zero images are flat after contrast normalisation: the inhibition coder
/// refuses them at once (the atoms are drawn from non-flat rows), instead of drawing rows
/// forever.
#[test]
fn flat_images_do_not_spin_the_inhibition_coder() {
    use drsae::estimators::InhibitionStructure;
    for (what, value) in [("constant", 0.5f32), ("zero", 0.0)] {
        let what = within(10, what, move || {
            let x = Mat::from_fn(40, 16, |_, _| value);
            let r = drsae::Inhibition::params()
                .structure(InhibitionStructure::Tree {
                    branching: 2,
                    depth: 2,
                })
                .epochs(1)
                .fit(&x);
            match r {
                Err(Error::InvalidParameter {
                    name: "data",
                    reason,
                }) => reason,
                other => panic!("expected a data error, got {:?}", other.map(|_| ())),
            }
        });
        assert!(what.contains("0 not flat"), "{what}");
    }
}

/// Rows that are not the image a locally connected sheet or a convolution needs are an
/// `input` error; a topographic map trained on non-square rows has no orientation map
/// (`None`), instead of a panic.
#[test]
fn rows_of_the_wrong_shape_for_a_map_are_errors() {
    use drsae::estimators::GroupLayout;
    let x = Mat::from_fn(30, 12, |i, j| ((i * 7 + j * 3) % 11) as f32 / 11.0);
    let input_error = |r: drsae::Result<()>| match r {
        Err(Error::InvalidParameter { name: "input", .. }) => {}
        other => panic!("expected an input error, got {other:?}"),
    };
    input_error(
        drsae::LocallyConnected::params()
            .epochs(1)
            .fit(&x)
            .map(|_| ()),
    );
    input_error(drsae::Convolutional::params().epochs(1).fit(&x).map(|_| ()));
    let map = drsae::GroupSparse::params()
        .layout(GroupLayout::Grid {
            side: 3,
            pool: 2,
            sigma: None,
        })
        .epochs(1)
        .fit(&x)
        .unwrap();
    assert!(map.orientation_map().is_none(), "12 inputs are not square");
}

// ---------------------------------------------------------------------------------------
// Crash-safe outputs (library level)

/// `write_atomic` replaces a symlink planted at the target instead of writing through it,
/// and a write that fails (the target is a directory, or its directory does not exist)
/// is an `Io` error that leaves no temporary behind.
#[test]
fn atomic_writes_do_not_follow_symlinks_and_fail_cleanly() {
    use drsae::io::write_atomic;
    let dir = TempDir::new("atomic");
    let leftovers = |d: &Path| -> Vec<String> {
        std::fs::read_dir(d)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect()
    };
    #[cfg(unix)]
    {
        let victim = dir.join("victim.txt");
        std::fs::write(&victim, b"keep me").unwrap();
        let out = dir.join("out.csv");
        std::os::unix::fs::symlink(&victim, &out).unwrap();
        write_atomic(&out, b"a,b\n").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep me");
        assert!(std::fs::symlink_metadata(&out)
            .unwrap()
            .file_type()
            .is_file());
        assert_eq!(std::fs::read(&out).unwrap(), b"a,b\n");
    }
    let sub = dir.join("a_directory");
    std::fs::create_dir(&sub).unwrap();
    assert!(matches!(write_atomic(&sub, b"x"), Err(Error::Io { .. })));
    assert!(sub.is_dir());
    assert!(leftovers(&dir.0).is_empty(), "{:?}", leftovers(&dir.0));
    assert!(matches!(
        write_atomic(dir.join("missing/out.png"), b"x"),
        Err(Error::Io { .. })
    ));
    assert!(!dir.join("missing").exists());
}

/// A tensor whose shape does not match its values (or whose shape overflows) is an error of
/// the writer, not a panic.
#[test]
fn writing_a_tensor_of_the_wrong_shape_is_an_error() {
    let v = [1.0f32, 2.0, 3.0];
    for shape in [vec![2, 2], vec![usize::MAX, 2], vec![]] {
        let named = vec![("t".to_string(), shape.clone(), &v[..])];
        let e = tensors_to_bytes(&named, HashMap::new()).unwrap_err();
        assert!(
            matches!(e, Error::InvalidParameter { .. }) && e.to_string().contains("shape"),
            "{shape:?}: {e}"
        );
    }
    let named = vec![("t".to_string(), vec![3], &v[..])];
    assert!(tensors_to_bytes(&named, HashMap::new()).is_ok());
}
