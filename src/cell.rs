//! Cells: how one `Value` is stored in a container in the arena.
//!
//! A cell is 16 bytes. Scalars live in it inline — None, bools, ints, floats, and strings or
//! bytes of up to 14 bytes — so reading or writing them allocates nothing. Longer strings and
//! bytes live in an allocated block the cell owns; lists, tuples, dicts and slices are stored in
//! the value encoding (`Value::encode`) in a block the cell owns; a proxy is stored as its slot,
//! generation and type id and owns one reference to its referent.
//!
//! ```text
//! byte 0      tag
//! NONE/BOOL/INT/FLOAT   word 1 = payload (bool 0/1, i64, f64 bits)
//! SSTR/SBYTES           byte 1 = length (<= 14), bytes 2..16 = data
//! STR/BYTES/ENC/ENCP    bytes 4..8 = length (u32), word 1 = block offset
//! PROXY                 bytes 2..4 = type id, bytes 4..8 = slot, word 1 = generation
//! ```
//!
//! A cell is written whole before the container publishes it (a length or an index store), so a
//! crash leaves at worst a block the cell would have owned: a leak that a rebuild reclaims.
//!
//! # Examples
//! ```
//! use shmstore::cell::{Cell, CELL_SIZE};
//! use shmstore::Value;
//! assert_eq!(CELL_SIZE, 16);
//! // Scalars and short strings fit in the cell itself: storing them allocates nothing.
//! for v in [Value::None, Value::Int(-1), Value::Float(0.5), Value::from("fourteen bytes")] {
//!     assert!(Cell::scalar(&v).is_some_and(|c| !c.owns_resources()));
//! }
//! // A longer string or a container needs a block the cell owns.
//! assert!(Cell::scalar(&Value::from("fifteen bytes..")).is_none());
//! ```

use std::sync::atomic::{AtomicU64, Ordering};

use bytemuck::{Pod, Zeroable};

use crate::core::Core;
use crate::error::{Error, Result};
use crate::token::Token;
use crate::value::Value;

/// One stored value.
///
/// # Examples
/// ```
/// use shmstore::cell::{Cell, CELL_SIZE};
/// use shmstore::Value;
/// assert_eq!(CELL_SIZE, 16);
/// let c = Cell::scalar(&Value::from("short")).expect("14 bytes or less: inline");
/// assert!(!c.owns_resources());
/// assert!(Cell::scalar(&Value::from("a string longer than 14 bytes")).is_none());
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable, PartialEq, Eq)]
pub struct Cell {
    w: [u64; 2],
}
const _: () = assert!(size_of::<Cell>() == 16);

/// Bytes per cell.
pub const CELL_SIZE: usize = size_of::<Cell>();

const NONE: u8 = 0;
const BOOL: u8 = 1;
const INT: u8 = 2;
const FLOAT: u8 = 3;
const SSTR: u8 = 4;
const SBYTES: u8 = 5;
const STR: u8 = 6;
const BYTES: u8 = 7;
/// An encoded value holding no proxy.
const ENC: u8 = 8;
/// An encoded value holding proxies (each owns a reference).
const ENCP: u8 = 9;
const PROXY: u8 = 10;

const INLINE_MAX: usize = 14;

impl Cell {
    #[inline]
    fn tag(&self) -> u8 {
        (self.w[0] & 0xff) as u8
    }
    #[inline]
    fn len32(&self) -> u32 {
        (self.w[0] >> 32) as u32
    }
    #[inline]
    fn with(tag: u8, w1: u64) -> Cell {
        Cell {
            w: [u64::from(tag), w1],
        }
    }

    /// The cell of a short string or bytes (the callers check `data.len() <= INLINE_MAX`; the
    /// clamp below makes it plain to the compiler too, so every range lies inside the 16
    /// bytes and nothing can panic). The bytes are copied in at most two fixed-size moves that
    /// may overlap (no `memcpy` call for a length known only at run time).
    #[inline]
    fn inline(tag: u8, data: &[u8]) -> Cell {
        let data = &data[..data.len().min(INLINE_MAX)];
        let mut b = [0u8; 16];
        b[0] = tag;
        let n = data.len();
        b[1] = n as u8;
        if let (Some(head), Some(tail)) = (data.first_chunk::<8>(), data.last_chunk::<8>()) {
            // 8 to 14 bytes: the first eight and the last eight.
            b[2..10].copy_from_slice(head);
            b[n - 6..n + 2].copy_from_slice(tail);
        } else if let (Some(head), Some(tail)) = (data.first_chunk::<4>(), data.last_chunk::<4>()) {
            b[2..6].copy_from_slice(head);
            b[n - 2..n + 2].copy_from_slice(tail);
        } else {
            for (d, s) in b[2..].iter_mut().zip(data) {
                *d = *s;
            }
        }
        bytemuck::cast(b)
    }
    fn blob(tag: u8, len: u32, off: u64) -> Cell {
        Cell {
            w: [u64::from(tag) | (u64::from(len) << 32), off],
        }
    }

    /// The cell for a scalar that needs no block, or None.
    ///
    /// # Examples
    /// ```
    /// use shmstore::cell::Cell;
    /// use shmstore::Value;
    /// assert!(Cell::scalar(&Value::Int(5)).is_some());
    /// assert!(Cell::scalar(&Value::None).is_some());
    /// assert!(Cell::scalar(&Value::from(vec![1])).is_none()); // a list needs a block
    /// ```
    #[inline]
    pub fn scalar(v: &Value) -> Option<Cell> {
        Some(match v {
            Value::None => Cell::with(NONE, 0),
            Value::Bool(b) => Cell::with(BOOL, u64::from(*b)),
            Value::Int(i) => Cell::with(INT, *i as u64),
            Value::Float(f) => Cell::with(FLOAT, f.to_bits()),
            Value::Str(s) if s.len() <= INLINE_MAX => Cell::inline(SSTR, s.as_bytes()),
            Value::Bytes(b) if b.len() <= INLINE_MAX => Cell::inline(SBYTES, b),
            _ => return None,
        })
    }

    /// [`Cell::scalar`] of `Value::Str(s)` without the `Value` (a borrowed dict key): the
    /// inline cell of a str of at most 14 bytes, or None. The two words are built in
    /// registers from at most two 8-byte loads (the byte layout of [`Cell::inline`]: tag,
    /// length, then the bytes, zero-padded), not stored byte by byte and read back.
    #[inline(always)]
    pub(crate) fn short_str(s: &str) -> Option<Cell> {
        let b = s.as_bytes();
        let n = b.len();
        if n > INLINE_MAX {
            return None;
        }
        if cfg!(target_endian = "big") {
            return Some(Cell::inline(SSTR, b));
        }
        let head = u64::from(SSTR) | ((n as u64) << 8);
        let w = if let (Some(first), Some(last)) = (b.first_chunk::<8>(), b.last_chunk::<8>()) {
            // 8 to 14 bytes: bytes 0..6 fill the first word after tag and length; bytes
            // 6..n, the high `n - 6` bytes of the last eight, the second.
            [
                head | (u64::from_le_bytes(*first) << 16),
                u64::from_le_bytes(*last) >> (8 * (INLINE_MAX - n)),
            ]
        } else {
            // Up to 7 bytes: the bytes as one little-endian word (two overlapping halves for
            // 4 to 7, as `Mixer::short_bytes` reads them), split after its sixth byte.
            let v = if let (Some(first), Some(last)) = (b.first_chunk::<4>(), b.last_chunk::<4>()) {
                u64::from(u32::from_le_bytes(*first))
                    | (u64::from(u32::from_le_bytes(*last)) << (8 * (n - 4)))
            } else {
                b.iter().rev().fold(0u64, |w, x| (w << 8) | u64::from(*x))
            };
            [head | (v << 16), v >> 48]
        };
        Some(Cell { w })
    }

    /// The int of an int cell whose first word is its tag alone (as every int cell is
    /// stored), without the tag's match: [`Cell::inline_value`] tries this first. `None` for any
    /// other cell.
    #[inline(always)]
    pub(crate) fn exact_int(&self) -> Option<i64> {
        (self.w[0] == u64::from(INT)).then_some(self.w[1] as i64)
    }

    /// The int this cell holds, if it is an int or a bool.
    ///
    /// # Examples
    /// ```
    /// use shmstore::cell::Cell;
    /// use shmstore::Value;
    /// assert_eq!(Cell::scalar(&Value::Int(-3)).and_then(|c| c.as_int()), Some(-3));
    /// assert_eq!(Cell::scalar(&Value::Bool(true)).and_then(|c| c.as_int()), Some(1));
    /// assert_eq!(Cell::scalar(&Value::Float(1.0)).and_then(|c| c.as_int()), None);
    /// ```
    #[inline]
    pub fn as_int(&self) -> Option<i64> {
        match self.tag() {
            INT => Some(self.w[1] as i64),
            BOOL => Some((self.w[1] != 0) as i64),
            _ => None,
        }
    }

    /// The cell made of two words read from the arena (a copy; decode it once validated).
    #[inline]
    pub(crate) fn from_words(w: [u64; 2]) -> Cell {
        Cell { w }
    }

    /// The cell's two words, as stored.
    #[inline]
    pub(crate) fn to_words(self) -> [u64; 2] {
        self.w
    }

    /// Whether the cell is None, a bool, an int or a float: its first word is its tag alone
    /// and its second the payload, so one 8-byte store replaces it with another of its kind.
    ///
    /// # Examples
    /// ```
    /// use shmstore::cell::Cell;
    /// use shmstore::Value;
    /// assert!(Cell::scalar(&Value::Int(7)).unwrap().is_word_scalar());
    /// assert!(!Cell::scalar(&Value::from("short")).unwrap().is_word_scalar());
    /// ```
    #[inline]
    pub fn is_word_scalar(&self) -> bool {
        self.w[0] <= u64::from(FLOAT)
    }

    /// Replaces the stored cell whose words are `w` by `self` in place, under the container's
    /// lock, when both are None, a bool, an int or a float of one kind: the payload word is the
    /// only word that changes, so one 8-byte store does it and a crash leaves the old value or
    /// the new one. `None`, having written nothing, otherwise.
    #[inline]
    pub(crate) fn replace_word_scalar(self, w: &[AtomicU64; 2]) -> Option<()> {
        if !self.is_word_scalar() || w[0].load(Ordering::Relaxed) != self.w[0] {
            return None;
        }
        w[1].store(self.w[1], Ordering::Relaxed);
        Some(())
    }

    /// The value of a cell that is stored whole inline (None, bool, int, float, short string or
    /// bytes): decoding it reads nothing more from the arena. `None` for any other cell, or an
    /// inline cell that fails a check (the caller's locked path reports it).
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-cellinline-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::cell::{self, Cell};
    /// use shmstore::Value;
    /// let c = Cell::scalar(&Value::from("hi")).expect("short: inline");
    /// assert_eq!(c.inline_value(), Some(Value::from("hi")));
    /// assert_eq!(Cell::default().inline_value(), Some(Value::None)); // zeroed: None
    /// // A long string lives in a block the cell owns: not readable from the cell alone.
    /// let core = store.core();
    /// let long = cell::store(core, &Value::from("x".repeat(40)))?;
    /// assert_eq!(long.inline_value(), None);
    /// cell::release(core, &long, &mut Vec::new())?;
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn inline_value(&self) -> Option<Value> {
        // An int first, the common case: one comparison of the whole first word instead of the
        // tag's match (9 instructions fewer on a list `get`, 20 on a value's).
        if let Some(i) = self.exact_int() {
            return Some(Value::Int(i));
        }
        match self.scalar_value() {
            Some(v) => Some(v),
            None => self.inline_bytes_value(),
        }
    }

    /// [`Cell::inline_value`] of a short string or bytes cell.
    #[inline(never)]
    fn inline_bytes_value(&self) -> Option<Value> {
        Some(match self.tag() {
            tag @ (SSTR | SBYTES) => {
                let b: [u8; 16] = bytemuck::cast(*self);
                let data = b.get(2..2 + b[1] as usize)?;
                if tag == SSTR {
                    Value::Str(std::str::from_utf8(data).ok()?.to_owned())
                } else {
                    Value::Bytes(data.to_vec())
                }
            }
            _ => return None,
        })
    }

    /// True when [`Cell::inline_value`] answers for this cell, found without building the value
    /// (no allocation): a writer that takes a cell out of a container checks this under the
    /// lock and decodes the copy once it is released.
    ///
    /// # Examples
    /// ```
    /// use shmstore::cell::Cell;
    /// use shmstore::Value;
    /// for v in [Value::None, Value::Bool(true), Value::Int(7), Value::Float(0.5), Value::from("short")] {
    ///     let c = Cell::scalar(&v).unwrap();
    ///     assert!(c.decodes_inline());
    ///     assert_eq!(c.inline_value(), Some(v));
    /// }
    /// let mut bad: [u8; 16] = bytemuck::cast(Cell::scalar(&Value::from("ab")).unwrap());
    /// bad[2] = 0xff; // not UTF-8
    /// let bad: Cell = bytemuck::cast(bad);
    /// assert!(!bad.decodes_inline());
    /// assert_eq!(bad.inline_value(), None);
    /// ```
    #[inline(always)]
    pub fn decodes_inline(&self) -> bool {
        if self.exact_int().is_some() {
            return true;
        }
        match self.tag() {
            NONE | INT | FLOAT => true,
            BOOL => self.w[1] <= 1,
            tag @ (SSTR | SBYTES) => {
                let b: [u8; 16] = bytemuck::cast(*self);
                b.get(2..2 + b[1] as usize)
                    .is_some_and(|data| tag == SBYTES || std::str::from_utf8(data).is_ok())
            }
            _ => false,
        }
    }

    /// The value of a cell that [`Cell::decodes_inline`], an int first (one comparison): for a
    /// writer that took the cell out of its container and must answer with its value. Any other
    /// cell gives `Value::None`; a caller that checked never passes one
    /// (`decodes_inline_is_exactly_when_inline_value_answers`).
    #[inline(always)]
    pub(crate) fn decoded_inline(&self) -> Value {
        match self.exact_int() {
            Some(i) => Value::Int(i),
            None => self.inline_value().unwrap_or(Value::None),
        }
    }

    /// The value of a None, bool, int or float cell (no allocation); `None` for any other cell
    /// and for a bad bool.
    #[inline]
    fn scalar_value(&self) -> Option<Value> {
        Some(match self.tag() {
            NONE => Value::None,
            BOOL => match self.w[1] {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                _ => return None,
            },
            INT => Value::Int(self.w[1] as i64),
            FLOAT => Value::Float(f64::from_bits(self.w[1])),
            _ => return None,
        })
    }

    /// True if the cell owns a block or a reference (so releasing it does work).
    ///
    /// # Examples
    /// ```
    /// use shmstore::cell::Cell;
    /// use shmstore::Value;
    /// let inline = Cell::scalar(&Value::bytes(*b"abc")).unwrap();
    /// assert!(!inline.owns_resources()); // nothing to free when it is overwritten
    /// assert!(!Cell::default().owns_resources()); // zeroed: None
    /// ```
    #[inline]
    pub fn owns_resources(&self) -> bool {
        matches!(self.tag(), STR | BYTES | ENC | ENCP | PROXY)
    }
}

fn blob_len(len: usize) -> Result<u32> {
    u32::try_from(len).map_err(|_| Error::ValueError("value too large for a cell".into()))
}

fn collect_proxies(v: &Value, out: &mut Vec<Token>) {
    match v {
        Value::Proxy(t) => out.push(*t),
        Value::List(xs) | Value::Tuple(xs) => xs.iter().for_each(|x| collect_proxies(x, out)),
        Value::Dict(kv) => kv.iter().for_each(|(k, x)| {
            collect_proxies(k, out);
            collect_proxies(x, out);
        }),
        _ => {}
    }
}

/// Stores `v` as a cell: inline when it fits, otherwise in a block it owns. Proxies inside `v`
/// gain a reference each (the cell owns them).
///
/// # Errors
/// `OutOfMemory`; `NotFound`/`StaleHandle` for a proxy of another store or a dead object;
/// `ValueError` for a value too large or too deeply nested.
///
/// # Examples
/// ```
/// # let name = format!("doc-cellstore-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::cell;
/// use shmstore::Value;
/// let core = store.core();
/// let before = core.alloc_stats()?.blocks_in_use;
/// let v = Value::List(vec![Value::Int(1), Value::from("two")]);
/// let c = cell::store(core, &v)?; // encoded into a block the cell owns
/// assert!(c.owns_resources());
/// assert_eq!(core.alloc_stats()?.blocks_in_use, before + 1);
/// assert_eq!(cell::load(core, &c, 0)?, v);
/// cell::release(core, &c, &mut Vec::new())?;
/// assert_eq!(core.alloc_stats()?.blocks_in_use, before);
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn store(core: &Core, v: &Value) -> Result<Cell> {
    if let Some(c) = Cell::scalar(v) {
        return Ok(c);
    }
    store_block(core, v)
}

/// [`store`] of a value that needs a block (or a reference).
#[inline(never)]
fn store_block(core: &Core, v: &Value) -> Result<Cell> {
    match v {
        Value::Str(s) => store_blob(core, STR, s.as_bytes()),
        Value::Bytes(b) => store_blob(core, BYTES, b),
        Value::Proxy(t) => {
            core.incref_token(t)?;
            Ok(Cell {
                w: [
                    u64::from(PROXY) | (u64::from(t.type_id) << 16) | (u64::from(t.slot) << 32),
                    u64::from(t.generation),
                ],
            })
        }
        _ => {
            let mut proxies = Vec::new();
            collect_proxies(v, &mut proxies);
            let mut bytes = Vec::with_capacity(v.encoded_len());
            v.encode(&mut bytes)?;
            for (taken, t) in proxies.iter().enumerate() {
                if let Err(e) = core.incref_token(t) {
                    for t in proxies.iter().take(taken) {
                        let _ = core.decref(t.slot);
                    }
                    return Err(e);
                }
            }
            let tag = if proxies.is_empty() { ENC } else { ENCP };
            store_blob(core, tag, &bytes).inspect_err(|_| {
                for t in &proxies {
                    let _ = core.decref(t.slot);
                }
            })
        }
    }
}

fn store_blob(core: &Core, tag: u8, bytes: &[u8]) -> Result<Cell> {
    let len = blob_len(bytes.len())?;
    let off = core.alloc(bytes.len() as u64)?;
    core.arena().copy_in(off, bytes)?;
    Ok(Cell::blob(tag, len, off))
}

fn read_blob(core: &Core, c: &Cell) -> Result<Vec<u8>> {
    let len = c.len32() as usize;
    let off = c.w[1];
    core.arena().check(off, len as u64, 1)?;
    let mut buf = vec![0u8; len];
    core.arena().copy_out(off, &mut buf)?;
    Ok(buf)
}

fn token_of(core: &Core, c: &Cell) -> Token {
    Token {
        store: core.store_id(),
        type_id: ((c.w[0] >> 16) & 0xffff) as u16,
        slot: c.len32(),
        generation: c.w[1] as u32,
    }
}

/// Reads the value of a cell (a copy). `at` is the cell's offset, for error reports.
///
/// # Errors
/// `Corrupt` for a bad tag, length, offset or encoding.
///
/// # Examples
/// ```
/// # let name = format!("doc-cellload-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::cell::{self, Cell};
/// use shmstore::Value;
/// let core = store.core();
/// let c = cell::store(core, &Value::from("longer than fourteen bytes"))?;
/// assert_eq!(cell::load(core, &c, 0)?, Value::from("longer than fourteen bytes"));
/// assert_eq!(cell::load(core, &Cell::default(), 0)?, Value::None);
/// // A cell with an unknown tag is reported as corrupt, at the offset given.
/// let bad: Cell = bytemuck::cast([0xffu64, 0]);
/// assert!(matches!(cell::load(core, &bad, 4096), Err(shmstore::Error::Corrupt { .. })));
/// # cell::release(core, &c, &mut Vec::new())?;
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn load(core: &Core, c: &Cell, at: u64) -> Result<Value> {
    if let Some(v) = c.scalar_value() {
        return Ok(v);
    }
    load_other(core, c, at)
}

/// [`load`] of a cell that is not a plain scalar (and of a bad cell, to report it).
#[inline(never)]
fn load_other(core: &Core, c: &Cell, at: u64) -> Result<Value> {
    Ok(match c.tag() {
        NONE => Value::None,
        BOOL => match c.w[1] {
            0 => Value::Bool(false),
            1 => Value::Bool(true),
            _ => return Err(Error::corrupt("bad bool cell", at)),
        },
        INT => Value::Int(c.w[1] as i64),
        FLOAT => Value::Float(f64::from_bits(c.w[1])),
        SSTR | SBYTES => {
            let b: [u8; 16] = bytemuck::cast(*c);
            let n = b[1] as usize;
            let data = b
                .get(2..2 + n)
                .ok_or_else(|| Error::corrupt("bad inline length", at))?;
            if c.tag() == SSTR {
                let s = std::str::from_utf8(data).map_err(|_| Error::corrupt("bad utf-8", at))?;
                Value::Str(s.to_owned())
            } else {
                Value::Bytes(data.to_vec())
            }
        }
        STR => {
            let b = read_blob(core, c)?;
            Value::Str(String::from_utf8(b).map_err(|_| Error::corrupt("bad utf-8", c.w[1]))?)
        }
        BYTES => Value::Bytes(read_blob(core, c)?),
        ENC | ENCP => Value::decode(&read_blob(core, c)?).map_err(|e| match e {
            Error::Corrupt { what, .. } => Error::corrupt(what, c.w[1]),
            e => e,
        })?,
        PROXY => Value::Proxy(token_of(core, c)),
        _ => return Err(Error::corrupt("bad cell tag", at)),
    })
}

/// Releases what a cell owns: frees its block; the references it held are pushed on
/// `released`, for the caller to drop once it has let go of the container's lock.
///
/// # Examples
/// ```
/// # let name = format!("doc-cellrelease-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::cell;
/// use shmstore::Value;
/// let core = store.core();
/// let l = store.list([1])?;
/// let c = cell::store(core, &Value::Proxy(l.token()))?; // the cell holds a reference
/// let mut released = Vec::new();
/// cell::release(core, &c, &mut released)?;
/// assert_eq!(released, vec![l.token()]); // for the caller to drop after unlocking
/// shmstore::dispatch::release_all(core, released);
/// assert_eq!(store.objects()?[0].refcount, 1); // the proxy's own
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn release(core: &Core, c: &Cell, released: &mut Vec<Token>) -> Result<()> {
    match c.tag() {
        STR | BYTES | ENC => core.free(c.w[1]),
        ENCP => {
            let v = Value::decode(&read_blob(core, c)?)?;
            collect_proxies(&v, released);
            core.free(c.w[1])
        }
        PROXY => {
            released.push(token_of(core, c));
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The cell's value == `v` (Python's `==`), without a copy for scalars.
///
/// # Examples
/// ```
/// # let name = format!("doc-celleq-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::cell::{self, Cell};
/// use shmstore::Value;
/// let core = store.core();
/// let one = Cell::scalar(&Value::Int(1)).unwrap();
/// assert!(cell::eq(core, &one, 0, &Value::Float(1.0))?); // Python: 1 == 1.0
/// assert!(cell::eq(core, &one, 0, &Value::Bool(true))?);
/// assert!(!cell::eq(core, &one, 0, &Value::from("1"))?);
/// let nan = Cell::scalar(&Value::Float(f64::NAN)).unwrap();
/// assert!(!cell::eq(core, &nan, 0, &Value::Float(f64::NAN))?);
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn eq(core: &Core, c: &Cell, at: u64, v: &Value) -> Result<bool> {
    if let Some(s) = Cell::scalar(v) {
        if let Some(b) = eq_inline(c, &s, v) {
            return Ok(b);
        }
    }
    eq_loaded(core, c, at, v)
}

/// [`eq`] of a cell that must be loaded to be compared.
#[inline(never)]
fn eq_loaded(core: &Core, c: &Cell, at: u64, v: &Value) -> Result<bool> {
    Ok(load(core, c, at)? == *v)
}

/// Python's `==` between the cell `c` and `v`, a scalar stored inline whose cell is `s`
/// (`Cell::scalar(v)`), decided from the cell's two words alone: no arena read, no allocation.
/// `None` when it cannot be decided so — `c` lives in a block (a long string, an encoded value, a
/// proxy) or is a bad cell — and [`eq`] (which loads `c`, or reports it) must answer. Where it
/// answers, it answers as [`eq`] does: `1 == 1.0 == True`, a NaN is unequal even to itself,
/// and an inline cell of another kind is simply unequal.
///
/// # Examples
/// ```
/// # let name = format!("doc-celleqinline-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::cell::{self, Cell};
/// use shmstore::Value;
/// let key = Value::Float(1.0);
/// let s = Cell::scalar(&key).unwrap();
/// let one = Cell::scalar(&Value::Int(1)).unwrap();
/// assert_eq!(cell::eq_inline(&one, &s, &key), Some(true)); // 1 == 1.0
/// let word = Cell::scalar(&Value::from("1.0")).unwrap();
/// assert_eq!(cell::eq_inline(&word, &s, &key), Some(false));
/// // A long string lives in a block: only `cell::eq`, which reads it, can tell.
/// let core = store.core();
/// let long = cell::store(core, &Value::from("a string longer than a cell"))?;
/// assert_eq!(cell::eq_inline(&long, &s, &key), None);
/// assert!(!cell::eq(core, &long, 0, &key)?);
/// # cell::release(core, &long, &mut Vec::new())?;
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn eq_inline(c: &Cell, s: &Cell, v: &Value) -> Option<bool> {
    if s == c {
        // Same bits: equal, except a NaN float, which is unequal even to itself.
        return Some(!matches!(v, Value::Float(f) if f.is_nan()));
    }
    match c.tag() {
        INT | BOOL | FLOAT => match v {
            // A bad bool cell decodes to nothing: `eq` reports it.
            Value::Int(_) | Value::Bool(_) | Value::Float(_) => Some(c.scalar_value()? == *v),
            _ => Some(false),
        },
        t if t <= SBYTES => Some(false),
        _ => None,
    }
}

/// The cell holds the `str` `s` (Python's `==`), without a copy for inline strings: what a
/// lookup by name (a namespace's attributes) compares on its hot path.
///
/// # Examples
/// ```
/// # let name = format!("doc-celleqstr-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::cell::{self, Cell};
/// use shmstore::Value;
/// let core = store.core();
/// let short = Cell::scalar(&Value::from("name")).unwrap();
/// assert!(cell::eq_str(core, &short, 0, "name")?);
/// assert!(!cell::eq_str(core, &short, 0, "names")?);
/// let long = cell::store(core, &Value::from("a_long_attribute_name"))?;
/// assert!(cell::eq_str(core, &long, 0, "a_long_attribute_name")?);
/// assert!(!cell::eq_str(core, &Cell::default(), 0, "None")?); // not a str
/// # cell::release(core, &long, &mut Vec::new())?;
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn eq_str(core: &Core, c: &Cell, at: u64, s: &str) -> Result<bool> {
    match c.tag() {
        SSTR => {
            let b: [u8; 16] = bytemuck::cast(*c);
            let n = b[1] as usize;
            Ok(b.get(2..2 + n) == Some(s.as_bytes()))
        }
        STR => Ok(c.len32() as usize == s.len() && load(core, c, at)?.as_str() == Some(s)),
        _ => Ok(false),
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for i64 {}
    impl Sealed for f64 {}
    impl Sealed for bool {}
}

/// A Rust scalar that the typed proxies' `get_as` read straight from a stored cell, with no
/// `Value` in between: `i64`, `f64` and `bool`, converted exactly as their `TryFrom<Value>`
/// converts (an `i64` from an int or a bool, an `f64` from a float, an int or a bool, a `bool`
/// from a bool only).
///
/// # Examples
/// ```
/// # let name = format!("doc-scalar-{}", std::process::id());
/// # let store = shmstore::Store::create(&name, 1 << 20)?;
/// use shmstore::{Error, Value};
/// let l = store.list([Value::Int(3), Value::Bool(true), Value::from("x")])?;
/// assert_eq!(l.get_as::<i64>(0)?, 3);
/// assert_eq!(l.get_as::<f64>(0)?, 3.0);
/// assert_eq!(l.get_as::<i64>(1)?, 1); // a bool is an int, as in Python
/// assert!(matches!(l.get_as::<i64>(2), Err(Error::TypeError(_))));
/// # Ok::<(), shmstore::Error>(())
/// ```
pub trait Scalar: sealed::Sealed + TryFrom<Value, Error = Error> {
    /// The scalar in a None, bool, int or float cell, as `TryFrom<Value>` converts that cell's
    /// value; `None` for any other cell, or one that does not convert (the caller then reads
    /// the value and reports `TryFrom`'s error).
    ///
    /// # Examples
    /// ```
    /// use shmstore::cell::{Cell, Scalar};
    /// use shmstore::Value;
    /// let c = Cell::scalar(&Value::Int(7)).unwrap();
    /// assert_eq!(i64::of_cell(&c), Some(7));
    /// assert_eq!(f64::of_cell(&c), Some(7.0));
    /// assert_eq!(bool::of_cell(&c), None); // must be bool, not int
    /// ```
    fn of_cell(c: &Cell) -> Option<Self>;
}

impl Scalar for i64 {
    #[inline]
    fn of_cell(c: &Cell) -> Option<i64> {
        // As `Value::as_int` of `c.scalar_value()`, without building the `Value`.
        match (c.tag(), c.w[1]) {
            (INT, w) => Some(w as i64),
            (BOOL, w @ (0 | 1)) => Some(w as i64),
            _ => None,
        }
    }
}

impl Scalar for f64 {
    #[inline]
    fn of_cell(c: &Cell) -> Option<f64> {
        // As `Value::as_float` of `c.scalar_value()`, without building the `Value`.
        match (c.tag(), c.w[1]) {
            (FLOAT, w) => Some(f64::from_bits(w)),
            (INT, w) => Some(w as i64 as f64),
            (BOOL, w @ (0 | 1)) => Some(w as f64),
            _ => None,
        }
    }
}

impl Scalar for bool {
    #[inline]
    fn of_cell(c: &Cell) -> Option<bool> {
        match (c.tag(), c.w[1]) {
            (BOOL, 0) => Some(false),
            (BOOL, 1) => Some(true),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        /// A list's `pop` unpublishes the last item once `decodes_inline` says its cell decodes,
        /// and decodes the copy after the lock: the two must agree on every 16 bytes, or an
        /// item would be taken and not returned. Every tag, with random payloads.
        #[test]
        fn decodes_inline_is_exactly_when_inline_value_answers(
            tag in 0u8..16,
            len in 0u8..20,
            rest in proptest::array::uniform14(any::<u8>()),
            ascii in any::<bool>(),
        ) {
            let mut b = [0u8; 16];
            b[0] = tag;
            b[1] = len;
            b[2..].copy_from_slice(&rest);
            if ascii {
                b[2..].iter_mut().for_each(|x| *x &= 0x7f);
            }
            let c: Cell = bytemuck::cast(b);
            prop_assert_eq!(c.decodes_inline(), c.inline_value().is_some());
            // A bool's payload word decides: 0 and 1 decode, anything else does not.
            let bool_cell = Cell::from_words([u64::from(BOOL), u64::from(len)]);
            prop_assert_eq!(bool_cell.decodes_inline(), bool_cell.inline_value().is_some());
        }
    }
    use super::*;

    /// `Cell::inline`'s fixed-size moves lay out every length as the byte copy did.
    #[test]
    fn inline_cells_hold_their_bytes_at_every_length() {
        let data: Vec<u8> = (1..=INLINE_MAX as u8).map(|i| i * 11).collect();
        for n in 0..=INLINE_MAX {
            let c = Cell::inline(SBYTES, &data[..n]);
            let mut expected = [0u8; 16];
            expected[0] = SBYTES;
            expected[1] = n as u8;
            expected[2..2 + n].copy_from_slice(&data[..n]);
            assert_eq!(bytemuck::cast::<Cell, [u8; 16]>(c), expected, "{n} bytes");
            assert_eq!(c.inline_value(), Some(Value::Bytes(data[..n].to_vec())));
        }
    }
}
