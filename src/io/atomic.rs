//! Crash-safe file writes: write a temporary file beside the target, flush it to disk,
//! then rename it over the target (atomic on POSIX file systems), so a crash never leaves
//! a half-written file under the final name.

use crate::{Error, Result};
use std::io::Write;
use std::path::Path;

/// A value no other process can guess: the standard library's randomly keyed hasher over
/// the process id, the time and a counter.
fn unpredictable() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u64(COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(t.as_nanos());
    }
    h.finish()
}

/// Writes `bytes` to `path` atomically, through a temporary file of an unpredictable name
/// created exclusively beside it.
pub fn write_atomic(path: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    let path = path.as_ref();
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| Error::param("path", format!("{} has no file name", path.display())))?;
    let mut tmp;
    let mut attempts = 0;
    // An unpredictable name, created exclusively (`create_new` never follows a symlink
    // planted under that name): nothing else can be written through it.
    let mut f = loop {
        tmp = dir.join(format!(
            ".{}.{:016x}.tmp",
            name.to_string_lossy(),
            unpredictable()
        ));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
        {
            Ok(f) => break f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempts < 16 => {
                attempts += 1
            }
            Err(e) => return Err(Error::io(path, e)),
        }
    };
    let result = (|| {
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        // Persist the rename itself.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    result.map_err(|e: std::io::Error| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, e)
    })
}
