//! Reading input files safely: regular files only, with a size limit checked before the
//! first byte is read (a FIFO would block forever, a device or a symlink to one would read
//! without end).
//!
//! The file's type is checked before it is opened (opening a FIFO for reading blocks until
//! a writer appears; opening some devices has side effects), and again on the opened handle
//! (the path could have been replaced in between). On Linux the file is opened
//! non-blocking, so even a FIFO swapped in after the first check cannot hang the open.

use crate::{Error, Result};
use std::fs::File;
use std::io::Read;
use std::path::Path;

/// The largest model or checkpoint file accepted (16 GiB).
pub const MAX_MODEL_FILE_BYTES: u64 = 16 << 30;

fn not_regular(path: &Path, what: &str) -> Error {
    Error::io(
        path,
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("not a regular file ({what})"),
        ),
    )
}

fn kind_of(t: std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if t.is_dir() {
        "a directory"
    } else {
        "not a plain file"
    }
}

/// Opens `path` for reading if it is a regular file (symlinks followed) and returns the
/// handle with the file's length.
///
/// # Errors
/// [`Error::Io`] when it cannot be opened, or is a directory, FIFO, device or socket.
pub fn open_regular_file(path: impl AsRef<Path>) -> Result<(File, u64)> {
    let path = path.as_ref();
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(not_regular(path, kind_of(meta.file_type())));
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(all(
        target_os = "linux",
        any(
            target_arch = "x86_64",
            target_arch = "x86",
            target_arch = "aarch64",
            target_arch = "arm",
            target_arch = "riscv64"
        )
    ))]
    {
        // O_NONBLOCK on these architectures; it changes nothing for a regular file.
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(0o4000);
    }
    let file = options.open(path).map_err(|e| Error::io(path, e))?;
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(not_regular(path, kind_of(meta.file_type())));
    }
    Ok((file, meta.len()))
}

/// Reads the whole of `path`, which must be a regular file (symlinks followed) of at most
/// `max_bytes` bytes.
///
/// # Errors
/// [`Error::Io`] when it cannot be opened or read, or is not a regular file;
/// [`Error::Format`] when it is larger than `max_bytes`.
pub fn read_regular_file(path: impl AsRef<Path>, max_bytes: u64) -> Result<Vec<u8>> {
    let path = path.as_ref();
    let (file, len) = open_regular_file(path)?;
    if len > max_bytes {
        return Err(Error::format(
            "file",
            format!(
                "{}: {len} bytes, more than the {max_bytes} accepted",
                path.display(),
            ),
        ));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    // `take` bounds the read even if the file grows while it is read.
    file.take(max_bytes + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    if bytes.len() as u64 > max_bytes {
        return Err(Error::format(
            "file",
            format!(
                "{}: grew past the {max_bytes} bytes accepted while read",
                path.display()
            ),
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_oversized_and_missing_files_are_errors() {
        let dir = std::env::temp_dir().join(format!("drsae-read-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(matches!(
            read_regular_file(&dir, 100),
            Err(Error::Io { .. })
        ));
        let f = dir.join("ten");
        std::fs::write(&f, [0u8; 10]).unwrap();
        assert_eq!(read_regular_file(&f, 10).unwrap().len(), 10);
        assert!(matches!(
            read_regular_file(&f, 9),
            Err(Error::Format { .. })
        ));
        assert!(matches!(
            read_regular_file(dir.join("absent"), 9),
            Err(Error::Io { .. })
        ));
        #[cfg(unix)]
        assert!(matches!(
            read_regular_file("/dev/zero", 1 << 20),
            Err(Error::Io { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
