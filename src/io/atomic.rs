//! Crash-safe file writes: write a temporary file beside the target, flush it to disk,
//! then rename it over the target (atomic on POSIX file systems), so a crash never leaves
//! a half-written file under the final name.
//!
//! A crash can leave the temporary itself behind (`.NAME.XXXXXXXXXXXXXXXX.tmp`, 16 hex
//! digits). Each write removes such leftovers from its directory: regular files whose
//! name has exactly that form and that nobody has written to for [`STALE_TEMPORARY_AGE`]
//! (a writer in progress keeps touching its temporary, and renames it right after its
//! last write, so it is never taken for a leftover).

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

/// How long a temporary of ours must have been left untouched before a write to its
/// directory removes it as a crash's leftover.
pub const STALE_TEMPORARY_AGE: std::time::Duration = std::time::Duration::from_secs(10 * 60);

/// Whether `name` has the form of our temporaries: `.NAME.XXXXXXXXXXXXXXXX.tmp` with a
/// non-empty NAME and 16 lowercase hex digits.
fn is_temporary_name(name: &str) -> bool {
    let Some(inner) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) else {
        return false;
    };
    let Some((target, hex)) = inner.rsplit_once('.') else {
        return false;
    };
    !target.is_empty()
        && hex.len() == 16
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Removes our temporaries in `dir` untouched for [`STALE_TEMPORARY_AGE`] or more (see the
/// module docs); returns how many. Errors are ignored: cleaning never fails a write.
pub(crate) fn remove_stale_temporaries(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let now = std::time::SystemTime::now();
    let mut removed = 0;
    for e in entries.flatten() {
        if !e.file_name().to_str().is_some_and(is_temporary_name) {
            continue;
        }
        // The entry's own metadata (a symlink is not followed, and is not ours).
        let Ok(meta) = e.metadata() else { continue };
        if !meta.file_type().is_file() {
            continue;
        }
        let stale = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .is_some_and(|age| age >= STALE_TEMPORARY_AGE);
        if stale && std::fs::remove_file(e.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// Writes `bytes` to `path` atomically, through a temporary file of an unpredictable name
/// created exclusively beside it; removes stale temporaries a crash left in the same
/// directory (see the module docs).
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
        remove_stale_temporaries(dir);
        Ok(())
    })();
    result.map_err(|e: std::io::Error| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    fn scratch(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("drsae-atomic-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn touch(path: &Path, age: Duration) {
        let f = std::fs::File::create(path).unwrap();
        f.set_modified(SystemTime::now() - age).unwrap();
    }

    #[test]
    fn temporary_names() {
        assert!(is_temporary_name(".model.safetensors.0123456789abcdef.tmp"));
        assert!(is_temporary_name(".a.b.c.ffffffffffffffff.tmp"));
        for name in [
            "model.safetensors.0123456789abcdef.tmp", // no leading dot
            "..0123456789abcdef.tmp",                 // no target name
            ".model.0123456789abcde.tmp",             // 15 digits
            ".model.0123456789abcdef0.tmp",           // 17 digits
            ".model.0123456789ABCDEF.tmp",            // upper case: not ours
            ".model.0123456789abcdeg.tmp",
            ".model.0123456789abcdef.tmp~",
            ".model.tmp",
            ".0123456789abcdef.tmp",
        ] {
            assert!(!is_temporary_name(name), "{name}");
        }
    }

    #[test]
    fn a_write_removes_stale_temporaries_only() {
        let d = scratch("stale");
        let old = STALE_TEMPORARY_AGE + Duration::from_secs(60);
        let young = STALE_TEMPORARY_AGE / 2;
        let stale = [
            ".out.csv.0123456789abcdef.tmp",
            ".model.safetensors.fedcba9876543210.tmp",
        ];
        for n in stale {
            touch(&d.join(n), old);
        }
        // A concurrent writer's temporary (recently written), files of other forms, a
        // directory and a symlink of our form: all kept.
        let kept = [
            ".out.csv.1111111111111111.tmp",
            ".out.csv.tmp",
            "out.csv.2222222222222222.tmp",
            ".out.csv.333333333333333G.tmp",
            "notes.txt",
        ];
        touch(&d.join(kept[0]), young);
        for n in &kept[1..] {
            touch(&d.join(n), old);
        }
        std::fs::create_dir(d.join(".dir.4444444444444444.tmp")).unwrap();
        let target = d.join("notes.txt");
        #[cfg(unix)]
        std::os::unix::fs::symlink(&target, d.join(".link.5555555555555555.tmp")).unwrap();
        write_atomic(d.join("out.csv"), b"a,b\n").unwrap();
        for n in stale {
            assert!(!d.join(n).exists(), "{n} was not removed");
        }
        for n in kept {
            assert!(d.join(n).exists(), "{n} was removed");
        }
        assert!(d.join(".dir.4444444444444444.tmp").is_dir());
        #[cfg(unix)]
        assert!(d
            .join(".link.5555555555555555.tmp")
            .symlink_metadata()
            .is_ok());
        assert!(target.exists());
        assert_eq!(std::fs::read(d.join("out.csv")).unwrap(), b"a,b\n");
        // Only ours remain besides the kept files: the write left no temporary of its own.
        let names: Vec<String> = std::fs::read_dir(&d)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), kept.len() + 3, "{names:?}");
        // Nothing stale left: a second clean removes nothing.
        assert_eq!(remove_stale_temporaries(&d), 0);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
