//! The raw floor the `compare` and `contention` benches measure shmstore against: a process-shared
//! pthread mutex (plain or robust) in a shared file mapping, guarding a fixed `i64` array with a
//! length word (a list without growth) and an open-addressing `i64 → i64` table (linear probing,
//! Fibonacci hashing, half full). No allocation, no encoding, no checks beyond bounds: the least a
//! locked shared-memory container can cost on this machine.
//!
//! The mapping lives in a file under `/dev/shm` so a second process (the `contention` bench's
//! child) can map the same floor; the creator removes the file when done.
//!
//! This file is shared by two benches through `#[path]` and is not a bench target itself.
#![allow(dead_code)]

use std::fs::OpenOptions;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU32;

/// Capacity of the floor's list array.
pub const LIST_CAP: usize = 1 << 16;
/// Slots in the floor's open-addressing table (a power of two).
pub const TABLE_SLOTS: usize = 1 << 12;
const TABLE_BITS: u32 = TABLE_SLOTS.trailing_zeros();
/// The key that marks an empty table slot (never used as a key by the benches).
const EMPTY: i64 = i64::MIN;
/// Offset of the guarded body in the mapping; the mutex (40 bytes on glibc) sits below it.
const BODY_OFF: usize = 64;
/// Offset of the control words (a start barrier for two processes), on their own cache line.
const CTL_OFF: usize = (BODY_OFF + std::mem::size_of::<Body>() + 63) & !63;

/// Which pthread mutex guards the body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `PTHREAD_PROCESS_SHARED`, default type, not robust.
    Plain,
    /// `PTHREAD_PROCESS_SHARED` and `PTHREAD_MUTEX_ROBUST` (a dead holder is reported).
    Robust,
}

/// What the mutex guards.
#[repr(C)]
struct Body {
    len: u64,
    word: i64,
    list: [i64; LIST_CAP],
    table_len: u64,
    _pad: u64,
    /// `[key, value]` pairs; `key == EMPTY` is a free slot.
    table: [[i64; 2]; TABLE_SLOTS],
}

const _: () = assert!(std::mem::size_of::<libc::pthread_mutex_t>() <= BODY_OFF);
const _: () = assert!(CTL_OFF % 64 == 0);

/// A floor: a mapping holding a mutex, the body it guards and a control line.
pub struct Floor {
    base: *mut u8,
    map_len: usize,
    path: PathBuf,
    owner: bool,
    kind: Kind,
}

impl Floor {
    const MAP_LEN: usize = CTL_OFF + 64;

    /// Creates the floor file `path` (a tmpfs path), formats its mutex and body, and maps it.
    pub fn create(path: &Path, kind: Kind) -> Floor {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .expect("create floor file");
        f.set_len(Self::MAP_LEN as u64).expect("size floor file");
        let floor = Floor::map(&f, path, kind, true);
        // SAFETY: 1. the mapping is fresh, zero-filled, page-aligned and MAP_LEN bytes long, so the
        // mutex at offset 0 is in bounds and aligned; 2. no other process maps it yet; 3. the
        // attribute object lives on this stack frame for the duration of these calls.
        unsafe {
            let mut attr: libc::pthread_mutexattr_t = std::mem::zeroed();
            assert_eq!(libc::pthread_mutexattr_init(&mut attr), 0);
            libc::pthread_mutexattr_setpshared(&mut attr, libc::PTHREAD_PROCESS_SHARED);
            if kind == Kind::Robust {
                libc::pthread_mutexattr_setrobust(&mut attr, libc::PTHREAD_MUTEX_ROBUST);
            }
            assert_eq!(libc::pthread_mutex_init(floor.mutex(), &attr), 0);
            libc::pthread_mutexattr_destroy(&mut attr);
        }
        floor.locked(|b| {
            b.len = 0;
            b.table_len = 0;
            for slot in b.table.iter_mut() {
                *slot = [EMPTY, 0];
            }
        });
        floor
    }

    /// Maps the floor another process created at `path`.
    pub fn open(path: &Path, kind: Kind) -> Floor {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .expect("open floor file");
        Floor::map(&f, path, kind, false)
    }

    fn map(f: &std::fs::File, path: &Path, kind: Kind, owner: bool) -> Floor {
        // SAFETY: a shared mapping of a file we hold open and sized to MAP_LEN; the result is
        // checked against MAP_FAILED. The mapping outlives the file descriptor by design.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                Self::MAP_LEN,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                f.as_raw_fd(),
                0,
            )
        };
        assert_ne!(base, libc::MAP_FAILED, "mmap floor");
        Floor {
            base: base.cast(),
            map_len: Self::MAP_LEN,
            path: path.to_owned(),
            owner,
            kind,
        }
    }

    /// The mutex kind.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    fn mutex(&self) -> *mut libc::pthread_mutex_t {
        self.base.cast()
    }

    /// Takes the mutex; on a robust mutex whose holder died, marks it consistent (the body is
    /// plain words, always valid).
    #[inline]
    pub fn lock(&self) {
        // SAFETY: the mutex at `base` was initialized by `create` (in this or another process)
        // and the mapping stays valid for `self`'s life.
        let rc = unsafe { libc::pthread_mutex_lock(self.mutex()) };
        if rc == libc::EOWNERDEAD {
            // SAFETY: we hold the mutex (EOWNERDEAD means acquired); it is robust.
            unsafe { libc::pthread_mutex_consistent(self.mutex()) };
        } else {
            debug_assert_eq!(rc, 0);
        }
    }

    /// Gives the mutex back.
    #[inline]
    pub fn unlock(&self) {
        // SAFETY: called only after `lock` by the same thread (see `locked` and `lock_unlock`).
        unsafe { libc::pthread_mutex_unlock(self.mutex()) };
    }

    /// Lock and unlock, nothing in between: the cost of the mutex alone.
    #[inline]
    pub fn lock_unlock(&self) {
        self.lock();
        self.unlock();
    }

    #[inline]
    fn locked<R>(&self, f: impl FnOnce(&mut Body) -> R) -> R {
        self.lock();
        // SAFETY: 1. `Body` lies at BODY_OFF inside the MAP_LEN-byte mapping, 8-aligned (the
        // mapping is page-aligned, BODY_OFF is 64); 2. every process touches it only with the
        // mutex held, so this is the only reference to it while it lives; 3. any bit pattern is
        // a valid `Body` (integers only).
        let r = f(unsafe { &mut *self.base.add(BODY_OFF).cast::<Body>() });
        self.unlock();
        r
    }

    /// The list's length.
    #[inline]
    pub fn len(&self) -> u64 {
        self.locked(|b| b.len)
    }

    /// Element `i`, or None past the end.
    #[inline]
    pub fn get(&self, i: usize) -> Option<i64> {
        self.locked(|b| {
            if (i as u64) < b.len {
                b.list.get(i).copied()
            } else {
                None
            }
        })
    }

    /// Sets element `i`; false past the end.
    #[inline]
    pub fn set(&self, i: usize, v: i64) -> bool {
        self.locked(|b| {
            if (i as u64) < b.len {
                if let Some(x) = b.list.get_mut(i) {
                    *x = v;
                    return true;
                }
            }
            false
        })
    }

    /// Appends `v`; false when full.
    #[inline]
    pub fn append(&self, v: i64) -> bool {
        self.locked(|b| match b.list.get_mut(b.len as usize) {
            Some(x) => {
                *x = v;
                b.len += 1;
                true
            }
            None => false,
        })
    }

    /// Removes and returns the last element.
    #[inline]
    pub fn pop(&self) -> Option<i64> {
        self.locked(|b| {
            let n = b.len.checked_sub(1)?;
            let v = b.list.get(n as usize).copied()?;
            b.len = n;
            Some(v)
        })
    }

    /// Runs `f` on the first `n` list elements (clamped to the capacity) with the mutex held: the
    /// floor of a zero-copy read of a block of a shared array.
    #[inline]
    pub fn list_read<R>(&self, n: usize, f: impl FnOnce(&[i64]) -> R) -> R {
        self.locked(|b| f(&b.list[..n.min(LIST_CAP)]))
    }

    /// Reads the single guarded word (the floor of a shared value).
    #[inline]
    pub fn word_get(&self) -> i64 {
        self.locked(|b| b.word)
    }

    /// Writes the single guarded word.
    #[inline]
    pub fn word_set(&self, v: i64) {
        self.locked(|b| b.word = v)
    }

    #[inline]
    fn home(key: i64) -> usize {
        ((key as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - TABLE_BITS)) as usize
    }

    /// The value under `key`.
    #[inline]
    pub fn dict_get(&self, key: i64) -> Option<i64> {
        self.locked(|b| {
            let mut i = Self::home(key);
            for _ in 0..TABLE_SLOTS {
                let [k, v] = b.table[i];
                if k == key {
                    return Some(v);
                }
                if k == EMPTY {
                    return None;
                }
                i = (i + 1) & (TABLE_SLOTS - 1);
            }
            None
        })
    }

    /// Sets `key` to `v` (inserting it); false when the table is three quarters full.
    #[inline]
    pub fn dict_set(&self, key: i64, v: i64) -> bool {
        self.locked(|b| {
            let mut i = Self::home(key);
            for _ in 0..TABLE_SLOTS {
                let slot = &mut b.table[i];
                if slot[0] == key {
                    slot[1] = v;
                    return true;
                }
                if slot[0] == EMPTY {
                    if b.table_len as usize >= TABLE_SLOTS / 4 * 3 {
                        return false;
                    }
                    *slot = [key, v];
                    b.table_len += 1;
                    return true;
                }
                i = (i + 1) & (TABLE_SLOTS - 1);
            }
            false
        })
    }

    /// Control word `k` (0..16), on a cache line of its own in the mapping, for coordinating
    /// two processes (a start barrier, a stop flag).
    pub fn ctl_word(&self, k: usize) -> &AtomicU32 {
        assert!(k < 16);
        // SAFETY: CTL_OFF + 4k (k < 16) is inside the MAP_LEN-byte mapping and 4-aligned; the
        // word is only ever accessed atomically, by every process; the reference lives no
        // longer than `self`'s mapping.
        unsafe { &*self.base.add(CTL_OFF + 4 * k).cast::<AtomicU32>() }
    }
}

impl Drop for Floor {
    fn drop(&mut self) {
        // SAFETY: `base`/`map_len` are this floor's mapping, unmapped once; no reference into
        // it outlives `self` (`barrier_word` borrows `self`).
        unsafe { libc::munmap(self.base.cast(), self.map_len) };
        if self.owner {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A fresh path for a floor file under `/dev/shm` (falling back to the temp dir).
pub fn floor_path(tag: &str) -> PathBuf {
    let dir = Path::new("/dev/shm");
    let dir = if dir.is_dir() {
        dir.to_owned()
    } else {
        std::env::temp_dir()
    };
    dir.join(format!("shmstore-bench-{}-{tag}", std::process::id()))
}

/// True when the bench should only smoke-test itself: `SHMSTORE_BENCH_QUICK=1`, or `--test`
/// among the arguments (as `cargo bench -- --test` passes it).
pub fn quick_mode() -> bool {
    std::env::var("SHMSTORE_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0")
        || std::env::args().any(|a| a == "--test")
}

/// The cargo target directory this bench binary runs from (`…/target/release/deps/x` → `…/target`).
pub fn target_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.to_owned()))
        .filter(|d| d.is_dir())
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/target")))
}

/// This thread's scheduler figures from `/proc/thread-self/schedstat`: (ns on a CPU, ns
/// runnable but waiting for a CPU); zeros where unavailable.
pub fn sched_ns() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let mut w = s.split_whitespace().map(|x| x.parse::<u64>().unwrap_or(0));
    (w.next().unwrap_or(0), w.next().unwrap_or(0))
}

/// The median of `xs` (sorted in place); 0 for none.
pub fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    match xs.len() {
        0 => 0.0,
        n if n % 2 == 1 => xs[n / 2],
        n => (xs[n / 2 - 1] + xs[n / 2]) / 2.0,
    }
}
