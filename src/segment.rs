//! Named POSIX shared-memory segments: create (exclusive), open, unlink.
//!
//! Knows nothing about what the segment holds. Segments are created with `O_EXCL` and mode 0600
//! unless the caller asks for more (the mode is set with `fchmod`, so the umask cannot widen or
//! narrow it), and mapped with `memmap2::MmapRaw`, which never hands out `&mut [u8]` — a slice
//! another process writes to would be undefined behaviour.
//!
//! Names are checked to fit every POSIX system: 1 to 30 bytes of `[A-Za-z0-9._-]`, not starting
//! with a dot (macOS allows 31 bytes including the leading `/`).
//!
//! # Examples
//! ```
//! # let name = format!("doc-segment-{}", std::process::id());
//! use shmstore::segment;
//! let a = segment::create(&name, 4096, 0o600)?; // zero-filled, mapped
//! a.store_u64(0, 7)?;
//! let b = segment::open(&name)?; // another mapping of the same memory
//! assert_eq!(b.load_u64(0)?, 7);
//! segment::unlink(&name)?;
//! # Ok::<(), shmstore::Error>(())
//! ```

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{FromRawFd, OwnedFd};

use crate::arena::Arena;
use crate::error::{Error, Result};

/// Longest accepted segment name, without the leading `/`.
pub const MAX_NAME_LEN: usize = 30;

/// Checks a segment name and returns the `/name` C string `shm_open` takes.
///
/// # Errors
/// `InvalidName` for an empty or too-long name, a `/`, or any byte outside `[A-Za-z0-9._-]`.
///
/// # Examples
/// ```
/// use shmstore::segment::shm_path;
/// assert_eq!(shm_path("jobs-1")?.to_str(), Ok("/jobs-1"));
/// assert!(shm_path("a/b").is_err());
/// assert!(shm_path(".hidden").is_err());
/// assert!(shm_path(&"x".repeat(31)).is_err());
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn shm_path(name: &str) -> Result<CString> {
    let reason = if name.is_empty() {
        Some("empty")
    } else if name.len() > MAX_NAME_LEN {
        Some("longer than 30 bytes")
    } else if name.contains('/') {
        Some("contains '/'")
    } else if name.starts_with('.') {
        Some("starts with '.'")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        Some("only ASCII letters, digits, '.', '_' and '-' are allowed")
    } else {
        None
    };
    if let Some(reason) = reason {
        return Err(Error::InvalidName {
            name: name.to_owned(),
            reason,
        });
    }
    CString::new(format!("/{name}")).map_err(|_| Error::InvalidName {
        name: name.to_owned(),
        reason: "contains NUL",
    })
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn map_open_error(name: &str, op: &'static str, e: i32) -> Error {
    match e {
        libc::ENOENT => Error::NotFound(name.to_owned()),
        libc::EEXIST => Error::AlreadyExists(name.to_owned()),
        libc::EACCES | libc::EPERM => Error::PermissionDenied(name.to_owned()),
        libc::ENAMETOOLONG | libc::EINVAL => Error::InvalidName {
            name: name.to_owned(),
            reason: "refused by the system",
        },
        errno => Error::Os { op, errno },
    }
}

fn shm_open(path: &CString, flags: i32, mode: u32) -> std::result::Result<OwnedFd, i32> {
    // SAFETY: `path` is a valid NUL-terminated string; shm_open has no other preconditions.
    let fd =
        unsafe { libc::shm_open(path.as_ptr(), flags | libc::O_CLOEXEC, mode as libc::mode_t) };
    if fd < 0 {
        return Err(errno());
    }
    // SAFETY: `fd` was just returned by shm_open, is open, and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn map(fd: OwnedFd) -> Result<Arena> {
    let file = File::from(fd);
    let map = memmap2::MmapOptions::new()
        .map_raw(&file)
        .map_err(|e| Error::Os {
            op: "mmap",
            errno: e.raw_os_error().unwrap_or(0),
        })?;
    Arena::from_map(map)
}

/// Creates the segment `name` of `size` bytes with permission bits `mode`, exclusively, and
/// maps it. The new segment is zero-filled.
///
/// # Errors
/// `InvalidName`, `AlreadyExists` if the name is taken, `PermissionDenied`, or `Os` (for
/// instance `ENOSPC` when /dev/shm is full).
///
/// # Examples
/// ```
/// # let name = format!("doc-segcreate-{}", std::process::id());
/// use shmstore::{segment, Error};
/// let a = segment::create(&name, 8192, 0o600)?;
/// assert_eq!(a.len(), 8192);
/// assert!(matches!(segment::create(&name, 8192, 0o600), Err(Error::AlreadyExists(_))));
/// segment::unlink(&name)?;
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn create(name: &str, size: usize, mode: u32) -> Result<Arena> {
    let path = shm_path(name)?;
    let fd = shm_open(&path, libc::O_CREAT | libc::O_EXCL | libc::O_RDWR, mode)
        .map_err(|e| map_open_error(name, "shm_open", e))?;
    let cleanup = |err: Error| {
        let _ = unlink(name);
        err
    };
    let fd_raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
    // SAFETY: `fd_raw` is an open descriptor owned by `fd`, which outlives these calls.
    if unsafe { libc::fchmod(fd_raw, mode as libc::mode_t) } != 0 {
        return Err(cleanup(Error::last_os("fchmod")));
    }
    let len = libc::off_t::try_from(size).map_err(|_| {
        cleanup(Error::OutOfMemory {
            requested: size,
            available: 0,
        })
    })?;
    // SAFETY: as above; ftruncate on a fresh shm object sets its size, zero-filled.
    if unsafe { libc::ftruncate(fd_raw, len) } != 0 {
        return Err(cleanup(Error::last_os("ftruncate")));
    }
    map(fd).map_err(cleanup)
}

/// Opens and maps the existing segment `name`, at the size it has.
///
/// # Errors
/// `InvalidName`, `NotFound`, `PermissionDenied`, or `Os`.
///
/// # Examples
/// ```
/// # let name = format!("doc-open-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::{segment, Error};
/// let raw = segment::open(&name)?; // the store's segment, mapped again
/// assert_eq!(raw.len(), store.stats()?.size);
/// assert!(matches!(segment::open("doc-no-such-segment"), Err(Error::NotFound(_))));
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn open(name: &str) -> Result<Arena> {
    let path = shm_path(name)?;
    let fd = shm_open(&path, libc::O_RDWR, 0).map_err(|e| map_open_error(name, "shm_open", e))?;
    map(fd)
}

/// Removes the name `name`; mappings that exist stay valid until unmapped.
///
/// # Errors
/// `InvalidName`, `NotFound`, `PermissionDenied`, or `Os`.
///
/// # Examples
/// ```
/// # let name = format!("doc-segunlink-{}", std::process::id());
/// use shmstore::{segment, Error};
/// let a = segment::create(&name, 4096, 0o600)?;
/// segment::unlink(&name)?;
/// a.store_u64(0, 1)?; // the mapping stays valid
/// assert!(matches!(segment::unlink(&name), Err(Error::NotFound(_))));
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn unlink(name: &str) -> Result<()> {
    let path = shm_path(name)?;
    // SAFETY: `path` is a valid NUL-terminated string.
    if unsafe { libc::shm_unlink(path.as_ptr()) } != 0 {
        return Err(map_open_error(name, "shm_unlink", errno()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for bad in ["", "a/b", "/x", ".hidden", "sp ace", "é", &"x".repeat(31)] {
            assert!(
                matches!(shm_path(bad), Err(Error::InvalidName { .. })),
                "{bad:?}"
            );
        }
        assert!(shm_path(&"x".repeat(30)).is_ok());
        assert!(shm_path("a-b_c.9").is_ok());
    }

    #[test]
    fn create_is_exclusive_and_open_sees_the_bytes() {
        let name = format!("segtest-{}", std::process::id());
        let a = create(&name, 8192, 0o600).unwrap();
        assert!(matches!(
            create(&name, 8192, 0o600),
            Err(Error::AlreadyExists(_))
        ));
        a.store_u64(64, 99).unwrap();
        let b = open(&name).unwrap();
        assert_eq!(b.len(), 8192);
        assert_eq!(b.load_u64(64), Ok(99));
        unlink(&name).unwrap();
        assert!(matches!(open(&name), Err(Error::NotFound(_))));
        assert!(matches!(unlink(&name), Err(Error::NotFound(_))));
    }
}
