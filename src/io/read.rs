//! Reading input files safely: regular files only, with a size limit checked before the
//! first byte is read (a FIFO would block forever, a device or a symlink to one would read
//! without end).

use crate::{Error, Result};
use std::io::Read;
use std::path::Path;

/// The largest model or checkpoint file accepted (16 GiB).
pub const MAX_MODEL_FILE_BYTES: u64 = 16 << 30;

/// Reads the whole of `path`, which must be a regular file (symlinks followed) of at most
/// `max_bytes` bytes.
///
/// # Errors
/// [`Error::Io`] when it cannot be opened or read, or is not a regular file;
/// [`Error::Format`] when it is larger than `max_bytes`.
pub fn read_regular_file(path: impl AsRef<Path>, max_bytes: u64) -> Result<Vec<u8>> {
    let path = path.as_ref();
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(Error::io(
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"),
        ));
    }
    if meta.len() > max_bytes {
        return Err(Error::format(
            "file",
            format!(
                "{}: {} bytes, more than the {max_bytes} accepted",
                path.display(),
                meta.len()
            ),
        ));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
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
