//! The `Value` model: the Python objects shmstore stores, compares, hashes and prints.
//!
//! A [`Value`] is what a proxy call takes and returns: `None`, `bool`, `int` (64-bit), `float`,
//! `str`, `bytes`, `list`, `tuple`, `dict` (insertion-ordered), `slice`, or a [`Token`] naming
//! another shared object. Its operations follow Python's:
//!
//! - [`Value::repr`] and [`Display`](fmt::Display) are Python's `repr()` and `str()`, float digits
//!   and string quoting included;
//! - `==` ([`PartialEq`]) is Python's `==` (`True == 1 == 1.0`, `nan != nan`, dicts as maps);
//! - [`Value::py_lt`] and [`Value::py_cmp`] are Python's `<` and the order `sorted()` uses, with
//!   Python's `TypeError` for values that do not order;
//! - [`Value::py_hash`] agrees with `==` and is the same in every process and every run.
//!
//! [`Value::encode`] and [`Value::decode`] turn a value into a compact, self-describing byte string
//! for shared memory and back. Decoding trusts nothing: any malformed input is an
//! [`Error::Corrupt`] naming the bad byte, never a panic, and nesting is bounded by [`MAX_DEPTH`].
//!
//! # Caveats
//! Values built in Rust may nest arbitrarily deep, and comparing, hashing or printing them recurses
//! (as `Clone` and `Drop` do); only values at most [`MAX_DEPTH`] containers deep can be stored.
//!
//! # Examples
//! ```
//! use shmstore::{Slice, Value};
//!
//! let v = Value::from(vec![Value::from(1), Value::from("a"), Value::from(2.5)]);
//! assert_eq!(v.repr(), "[1, 'a', 2.5]");
//! assert_eq!(Value::from(1), Value::from(1.0));
//!
//! let mut bytes = Vec::new();
//! v.encode(&mut bytes)?;
//! assert_eq!(Value::decode(&bytes)?, v);
//!
//! let picked: Vec<usize> = Slice::with_step(-1, 0, -2).indices(6)?.iter().collect();
//! assert_eq!(picked, [5, 3, 1]);
//! # Ok::<(), shmstore::Error>(())
//! ```

use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt;
use std::ops::{Range, RangeFrom, RangeFull, RangeInclusive, RangeTo};

use crate::error::Error;
use crate::token::Token;

/// The deepest nesting of containers (lists, tuples, dicts) that can be encoded or decoded.
pub const MAX_DEPTH: usize = 200;

/// A Python value.
///
/// Equality is Python's `==` (see [`PartialEq`](#impl-PartialEq-for-Value)); ordering and hashing
/// are fallible, as in Python, and live in [`Value::py_lt`], [`Value::py_cmp`] and
/// [`Value::py_hash`].
///
/// # Examples
/// ```
/// use shmstore::Value;
/// let v = Value::from(vec![Value::None, Value::from(true), Value::from(1), Value::from("a")]);
/// assert_eq!(v.repr(), "[None, True, 1, 'a']");
/// assert_eq!(Value::from(1), Value::from(1.0)); // Python's ==
/// assert_eq!(Value::from((1, "x")), Value::Tuple(vec![Value::Int(1), Value::from("x")]));
/// assert_eq!(i64::try_from(Value::from(7))?, 7);
/// assert!(String::try_from(Value::from(7)).is_err());
/// # Ok::<(), shmstore::Error>(())
/// ```
#[derive(Clone, Debug)]
pub enum Value {
    /// `None`.
    None,
    /// `True` or `False`.
    Bool(bool),
    /// An `int` that fits in 64 bits.
    Int(i64),
    /// A `float`.
    Float(f64),
    /// A `str`.
    Str(String),
    /// A `bytes` object; make one with [`Value::bytes`].
    Bytes(Vec<u8>),
    /// A `list`.
    List(Vec<Value>),
    /// A `tuple`.
    Tuple(Vec<Value>),
    /// A `dict`: key/value pairs in insertion order, keys hashable and unique. Build one with
    /// [`Value::dict_from_pairs`], which keeps that invariant.
    Dict(Vec<(Value, Value)>),
    /// A `slice`.
    Slice(Slice),
    /// A proxy: the token of another shared object.
    Proxy(Token),
}

/// Python's `slice(start, stop, step)`; a missing part is `None`.
///
/// # Examples
/// ```
/// use shmstore::Slice;
/// let s = Slice::from(1..);
/// assert_eq!((s.start, s.stop, s.step), (Some(1), None, None));
/// assert_eq!(Slice::from(..), Slice::from_options(None, None, None));
/// assert_eq!(Slice::from(2..=4), Slice::new(2, 5));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Slice {
    /// First index, or `None` for the start of the sequence (its end when stepping backwards).
    pub start: Option<i64>,
    /// Index to stop before, or `None` for past the end (before the start when stepping
    /// backwards).
    pub stop: Option<i64>,
    /// Step between indices, or `None` for 1.
    pub step: Option<i64>,
}

/// The concrete indices a [`Slice`] selects in a sequence of a given length, as CPython's
/// `PySlice_AdjustIndices` computes them.
///
/// # Examples
/// ```
/// use shmstore::{Slice, SliceIndices};
/// let ix: SliceIndices = Slice::with_step(-1, 0, -2).indices(5)?;
/// assert_eq!((ix.start, ix.stop, ix.step, ix.len), (4, 0, -2, 2));
/// # Ok::<(), shmstore::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SliceIndices {
    /// First index selected (meaningful only when `len > 0`).
    pub start: i64,
    /// Bound the indices stop before; `-1` when a backwards slice runs to the front.
    pub stop: i64,
    /// Step between indices; never 0.
    pub step: i64,
    /// Number of indices selected.
    pub len: usize,
}

/// The positions selected by a [`SliceIndices`], in slice order.
///
/// # Examples
/// ```
/// use shmstore::Slice;
/// let mut it = Slice::new(1, 10).indices(4)?.iter(); // clamped to the length
/// assert_eq!(it.len(), 3);
/// assert_eq!((it.next(), it.next(), it.next(), it.next()), (Some(1), Some(2), Some(3), None));
/// # Ok::<(), shmstore::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct SliceIter {
    next: i64,
    step: i64,
    remaining: usize,
}

impl Slice {
    /// `slice(start, stop)`.
    ///
    /// # Examples
    /// ```
    /// use shmstore::{Slice, Value};
    /// assert_eq!(Value::from(Slice::new(1, 3)).repr(), "slice(1, 3, None)");
    /// assert_eq!(Slice::new(-2, 10).indices(4)?.iter().collect::<Vec<_>>(), [2, 3]);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn new(start: i64, stop: i64) -> Slice {
        Slice::from_options(Some(start), Some(stop), None)
    }

    /// `slice(start, stop, step)`.
    ///
    /// # Examples
    /// ```
    /// use shmstore::Slice;
    /// let evens: Vec<usize> = Slice::with_step(0, 10, 2).indices(7)?.iter().collect();
    /// assert_eq!(evens, [0, 2, 4, 6]);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn with_step(start: i64, stop: i64, step: i64) -> Slice {
        Slice::from_options(Some(start), Some(stop), Some(step))
    }

    /// A slice with any of its parts `None`.
    ///
    /// # Examples
    /// ```
    /// use shmstore::Slice;
    /// let reversed = Slice::from_options(None, None, Some(-1)); // [::-1]
    /// assert_eq!(reversed.indices(3)?.iter().collect::<Vec<_>>(), [2, 1, 0]);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn from_options(start: Option<i64>, stop: Option<i64>, step: Option<i64>) -> Slice {
        Slice { start, stop, step }
    }

    /// The indices this slice selects in a sequence of `len` items: Python's `seq[slice]`,
    /// computed exactly as CPython's `PySlice_Unpack` and `PySlice_AdjustIndices` do (negative
    /// indices count from the end, out-of-range bounds are clamped, a `None` step is 1).
    ///
    /// # Errors
    /// `ValueError("slice step cannot be zero")` when the step is 0.
    ///
    /// # Examples
    /// ```
    /// use shmstore::Slice;
    ///
    /// let ix = Slice::from(-3..).indices(5)?;
    /// assert_eq!((ix.start, ix.stop, ix.step, ix.len), (2, 5, 1, 3));
    /// assert_eq!(ix.iter().collect::<Vec<_>>(), [2, 3, 4]);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn indices(&self, len: usize) -> Result<SliceIndices, Error> {
        // PySlice_Unpack. A step of i64::MIN becomes -i64::MAX, as in CPython: the same indices,
        // and negating it cannot overflow.
        let step = match self.step {
            None => 1,
            Some(0) => return Err(Error::ValueError("slice step cannot be zero".into())),
            Some(step) => step.max(-i64::MAX),
        };
        let backwards = step < 0;
        let start = self.start.unwrap_or(if backwards { i64::MAX } else { 0 });
        let stop = self
            .stop
            .unwrap_or(if backwards { i64::MIN } else { i64::MAX });

        // PySlice_AdjustIndices. No sequence in memory holds more than i64::MAX items.
        let length = i64::try_from(len).unwrap_or(i64::MAX);
        let adjust = |index: i64| {
            if index < 0 {
                // index < 0 <= length: the sum cannot overflow.
                let index = index + length;
                if index >= 0 {
                    index
                } else if backwards {
                    -1
                } else {
                    0
                }
            } else if index >= length {
                if backwards {
                    length - 1
                } else {
                    length
                }
            } else {
                index
            }
        };
        let (start, stop) = (adjust(start), adjust(stop));
        // Both bounds lie in -1..=length, so the differences cannot overflow.
        let count = if backwards && stop < start {
            (start - stop - 1) / -step + 1
        } else if !backwards && start < stop {
            (stop - start - 1) / step + 1
        } else {
            0
        };
        Ok(SliceIndices {
            start,
            stop,
            step,
            // 0 <= count <= length <= len.
            len: usize::try_from(count).unwrap_or(0),
        })
    }
}

impl From<Range<i64>> for Slice {
    /// `a..b` is `slice(a, b)`.
    fn from(r: Range<i64>) -> Slice {
        Slice::new(r.start, r.end)
    }
}

impl From<RangeFrom<i64>> for Slice {
    /// `a..` is `slice(a, None)`.
    fn from(r: RangeFrom<i64>) -> Slice {
        Slice::from_options(Some(r.start), None, None)
    }
}

impl From<RangeTo<i64>> for Slice {
    /// `..b` is `slice(None, b)`.
    fn from(r: RangeTo<i64>) -> Slice {
        Slice::from_options(None, Some(r.end), None)
    }
}

impl From<RangeFull> for Slice {
    /// `..` is `slice(None, None)`.
    fn from(_: RangeFull) -> Slice {
        Slice::from_options(None, None, None)
    }
}

impl From<RangeInclusive<i64>> for Slice {
    /// `a..=b` is `slice(a, b + 1)`; `b + 1` saturates at `i64::MAX`.
    fn from(r: RangeInclusive<i64>) -> Slice {
        let (start, end) = r.into_inner();
        Slice::new(start, end.saturating_add(1))
    }
}

impl SliceIndices {
    /// The selected positions, in slice order (descending for a negative step).
    ///
    /// # Examples
    /// ```
    /// use shmstore::Slice;
    /// let ix = Slice::with_step(5, 0, -2).indices(6)?;
    /// assert_eq!(ix.iter().collect::<Vec<_>>(), [5, 3, 1]);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn iter(&self) -> SliceIter {
        SliceIter {
            next: self.start,
            step: self.step,
            remaining: self.len,
        }
    }
}

impl Iterator for SliceIter {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        self.remaining = self.remaining.checked_sub(1)?;
        let at = self.next;
        // Past the last position the cursor is never read, so wrapping there is harmless.
        self.next = at.wrapping_add(self.step);
        usize::try_from(at).ok()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for SliceIter {}

// ---------------------------------------------------------------------------------------------
// Construction and conversion

impl Value {
    /// Whether the value owns no heap memory (None, bool, int, float, a slice, a proxy's
    /// token): dropping it frees nothing.
    ///
    /// # Examples
    /// ```
    /// use shmstore::Value;
    /// assert!(Value::Int(5).owns_nothing());
    /// assert!(!Value::from("text").owns_nothing());
    /// ```
    #[inline]
    pub fn owns_nothing(&self) -> bool {
        matches!(
            self,
            Value::None
                | Value::Bool(_)
                | Value::Int(_)
                | Value::Float(_)
                | Value::Slice(_)
                | Value::Proxy(_)
        )
    }

    /// Drops the value, checking inline for the kinds that own nothing (and freeing a string
    /// directly): the compiler's drop of a `Value` is an out-of-line call that saves registers
    /// first, which a fast path would otherwise pay on every call for a scalar argument or key.
    ///
    /// # Examples
    /// ```
    /// use shmstore::Value;
    /// Value::Int(5).discard(); // nothing to free: no call
    /// Value::from("a string").discard(); // frees the string
    /// ```
    #[inline]
    pub fn discard(self) {
        // (The four scalar kinds only: a test on more kinds costs the scalar paths more.)
        if matches!(
            self,
            Value::None | Value::Bool(_) | Value::Int(_) | Value::Float(_)
        ) {
            // Frees nothing: forgetting it skips the drop call.
            std::mem::forget(self);
        } else {
            drop(self);
        }
    }

    /// A `bytes` value.
    ///
    /// # Examples
    /// ```
    /// use shmstore::Value;
    /// let b = Value::bytes(*b"ab\x00");
    /// assert_eq!(b.repr(), r"b'ab\x00'");
    /// assert_eq!(b.type_name(), "bytes");
    /// ```
    pub fn bytes(bytes: impl Into<Vec<u8>>) -> Value {
        Value::Bytes(bytes.into())
    }

    /// A `dict` built as Python's `dict(pairs)` builds it: a repeated key keeps its first
    /// position (and its first key object) and takes the last value.
    ///
    /// # Errors
    /// `TypeError("unhashable type: 'list'")` (or `'dict'`, `'slice'`) for an unhashable key.
    ///
    /// # Examples
    /// ```
    /// use shmstore::Value;
    ///
    /// let d = Value::dict_from_pairs([("a", 1), ("b", 2), ("a", 3)])?;
    /// assert_eq!(d.repr(), "{'a': 3, 'b': 2}");
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn dict_from_pairs<K, V, I>(pairs: I) -> Result<Value, Error>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<Value>,
        V: Into<Value>,
    {
        let mut entries: Vec<(Value, Value)> = Vec::new();
        let mut index = KeyIndex::default();
        for (key, value) in pairs {
            let key = key.into();
            let value = value.into();
            let hash = key.py_hash()?;
            match index
                .position(&entries, hash, &key)
                .and_then(|i| entries.get_mut(i))
            {
                Some(entry) => entry.1 = value,
                None => {
                    index.push(hash);
                    entries.push((key, value));
                }
            }
        }
        Ok(Value::Dict(entries))
    }

    /// Python's `type(v).__name__`: `'NoneType'`, `'bool'`, `'int'`, `'float'`, `'str'`,
    /// `'bytes'`, `'list'`, `'tuple'`, `'dict'`, `'slice'`, or a proxy's typeid (`'list'`,
    /// `'Queue'`, …).
    ///
    /// # Examples
    /// ```
    /// use shmstore::Value;
    /// assert_eq!(Value::None.type_name(), "NoneType");
    /// assert_eq!(Value::from(1.5).type_name(), "float");
    /// assert_eq!(Value::from(vec![1]).type_name(), "list");
    /// ```
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::None => "NoneType",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::List(_) => "list",
            Value::Tuple(_) => "tuple",
            Value::Dict(_) => "dict",
            Value::Slice(_) => "slice",
            Value::Proxy(token) => token.typeid(),
        }
    }

    /// Whether this is `None`.
    ///
    /// # Examples
    /// ```
    /// use shmstore::Value;
    /// assert!(Value::None.is_none());
    /// assert!(Value::from(None::<i64>).is_none());
    /// assert!(!Value::from(0).is_none());
    /// ```
    pub fn is_none(&self) -> bool {
        matches!(self, Value::None)
    }

    /// The integer, for an `int` or a `bool` (which Python counts as an int).
    ///
    /// # Examples
    /// ```
    /// use shmstore::Value;
    /// assert_eq!(Value::from(7).as_int(), Some(7));
    /// assert_eq!(Value::from(true).as_int(), Some(1));
    /// assert_eq!(Value::from(7.0).as_int(), None);
    /// ```
    pub fn as_int(&self) -> Option<i64> {
        match *self {
            Value::Int(i) => Some(i),
            Value::Bool(b) => Some(i64::from(b)),
            _ => None,
        }
    }

    /// The number as a float, for a `float`, `int` or `bool` (an int rounds to the nearest
    /// float, as Python's `float(i)` does).
    ///
    /// # Examples
    /// ```
    /// use shmstore::Value;
    /// assert_eq!(Value::from(2.5).as_float(), Some(2.5));
    /// assert_eq!(Value::from(2).as_float(), Some(2.0));
    /// assert_eq!(Value::from("2").as_float(), None);
    /// ```
    pub fn as_float(&self) -> Option<f64> {
        match *self {
            Value::Float(f) => Some(f),
            Value::Int(i) => Some(i as f64),
            Value::Bool(b) => Some(f64::from(u8::from(b))),
            _ => None,
        }
    }

    /// The text of a `str`.
    ///
    /// # Examples
    /// ```
    /// use shmstore::Value;
    /// assert_eq!(Value::from("hi").as_str(), Some("hi"));
    /// assert_eq!(Value::bytes(*b"hi").as_str(), None);
    /// ```
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

macro_rules! from_lossless_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(i: $t) -> Value {
                Value::Int(i64::from(i))
            }
        }
    )*};
}
from_lossless_int!(i8, i16, i32, i64, u8, u16, u32);

impl From<u64> for Value {
    /// Saturates at `i64::MAX`: a `Value` holds a 64-bit signed int.
    fn from(i: u64) -> Value {
        Value::Int(i64::try_from(i).unwrap_or(i64::MAX))
    }
}

impl From<usize> for Value {
    /// Saturates at `i64::MAX`: a `Value` holds a 64-bit signed int.
    fn from(i: usize) -> Value {
        Value::Int(i64::try_from(i).unwrap_or(i64::MAX))
    }
}

impl From<f32> for Value {
    fn from(f: f32) -> Value {
        Value::Float(f64::from(f))
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Value {
        Value::Float(f)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Str(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Str(s)
    }
}

impl From<&String> for Value {
    fn from(s: &String) -> Value {
        Value::Str(s.clone())
    }
}

impl<T: Into<Value>> From<Vec<T>> for Value {
    /// A `list` of the items.
    fn from(items: Vec<T>) -> Value {
        Value::List(items.into_iter().map(Into::into).collect())
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    /// `None`, or the value.
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::None, Into::into)
    }
}

impl From<Slice> for Value {
    fn from(s: Slice) -> Value {
        Value::Slice(s)
    }
}

impl From<Token> for Value {
    /// A proxy for the object the token names.
    fn from(t: Token) -> Value {
        Value::Proxy(t)
    }
}

impl From<()> for Value {
    /// `None`.
    fn from(_: ()) -> Value {
        Value::None
    }
}

impl<A: Into<Value>, B: Into<Value>> From<(A, B)> for Value {
    /// A 2-tuple.
    fn from((a, b): (A, B)) -> Value {
        Value::Tuple(vec![a.into(), b.into()])
    }
}

impl<A: Into<Value>, B: Into<Value>, C: Into<Value>> From<(A, B, C)> for Value {
    /// A 3-tuple.
    fn from((a, b, c): (A, B, C)) -> Value {
        Value::Tuple(vec![a.into(), b.into(), c.into()])
    }
}

impl TryFrom<&Value> for i64 {
    type Error = Error;

    /// The int of an `int` or `bool`.
    ///
    /// # Errors
    /// `TypeError("'str' object cannot be interpreted as an integer")` for any other type.
    fn try_from(v: &Value) -> Result<i64, Error> {
        v.as_int().ok_or_else(|| {
            Error::type_error(format!(
                "'{}' object cannot be interpreted as an integer",
                v.type_name()
            ))
        })
    }
}

impl TryFrom<Value> for i64 {
    type Error = Error;

    /// The int of an `int` or `bool`.
    ///
    /// # Errors
    /// `TypeError("'str' object cannot be interpreted as an integer")` for any other type.
    fn try_from(v: Value) -> Result<i64, Error> {
        i64::try_from(&v)
    }
}

impl TryFrom<&Value> for f64 {
    type Error = Error;

    /// The number of a `float`, `int` or `bool`, as a float.
    ///
    /// # Errors
    /// `TypeError("must be real number, not str")` for any other type.
    fn try_from(v: &Value) -> Result<f64, Error> {
        v.as_float()
            .ok_or_else(|| Error::type_error(format!("must be real number, not {}", v.type_name())))
    }
}

impl TryFrom<Value> for f64 {
    type Error = Error;

    /// The number of a `float`, `int` or `bool`, as a float.
    ///
    /// # Errors
    /// `TypeError("must be real number, not str")` for any other type.
    fn try_from(v: Value) -> Result<f64, Error> {
        f64::try_from(&v)
    }
}

impl TryFrom<&Value> for bool {
    type Error = Error;

    /// The truth of a `bool` (only a `bool`: no truthiness).
    ///
    /// # Errors
    /// `TypeError("must be bool, not int")` for any other type.
    fn try_from(v: &Value) -> Result<bool, Error> {
        match *v {
            Value::Bool(b) => Ok(b),
            _ => Err(Error::type_error(format!(
                "must be bool, not {}",
                v.type_name()
            ))),
        }
    }
}

impl TryFrom<Value> for bool {
    type Error = Error;

    /// The truth of a `bool` (only a `bool`: no truthiness).
    ///
    /// # Errors
    /// `TypeError("must be bool, not int")` for any other type.
    fn try_from(v: Value) -> Result<bool, Error> {
        bool::try_from(&v)
    }
}

impl TryFrom<&Value> for String {
    type Error = Error;

    /// A copy of the text of a `str`.
    ///
    /// # Errors
    /// `TypeError("must be str, not int")` for any other type.
    fn try_from(v: &Value) -> Result<String, Error> {
        v.as_str().map(str::to_owned).ok_or_else(|| not_str(v))
    }
}

impl TryFrom<Value> for String {
    type Error = Error;

    /// The text of a `str`.
    ///
    /// # Errors
    /// `TypeError("must be str, not int")` for any other type.
    fn try_from(v: Value) -> Result<String, Error> {
        match v {
            Value::Str(s) => Ok(s),
            other => Err(not_str(&other)),
        }
    }
}

#[cold]
fn not_str(v: &Value) -> Error {
    Error::type_error(format!("must be str, not {}", v.type_name()))
}

// ---------------------------------------------------------------------------------------------
// repr and str

impl Value {
    /// Python's `repr(v)`.
    ///
    /// # Examples
    /// ```
    /// use shmstore::{Slice, Value};
    ///
    /// assert_eq!(Value::from(1e16).repr(), "1e+16");
    /// assert_eq!(Value::from("it's").repr(), r#""it's""#);
    /// assert_eq!(Value::from((1, Slice::from(1..))).repr(), "(1, slice(1, None, None))");
    /// ```
    pub fn repr(&self) -> String {
        let mut out = String::new();
        self.write_repr(&mut out);
        out
    }

    /// Appends Python's `repr(v)` to `out`.
    ///
    /// # Examples
    /// ```
    /// use shmstore::Value;
    /// let mut out = String::from("got ");
    /// Value::from(vec!["a", "b"]).write_repr(&mut out);
    /// assert_eq!(out, "got ['a', 'b']");
    /// ```
    pub fn write_repr(&self, out: &mut String) {
        match self {
            Value::None => out.push_str("None"),
            Value::Bool(true) => out.push_str("True"),
            Value::Bool(false) => out.push_str("False"),
            Value::Int(i) => push_fmt(out, format_args!("{i}")),
            Value::Float(f) => write_float_repr(*f, out),
            Value::Str(s) => write_str_repr(s, out),
            Value::Bytes(b) => write_bytes_repr(b, out),
            Value::List(items) => {
                out.push('[');
                write_items(items, out);
                out.push(']');
            }
            Value::Tuple(items) => {
                out.push('(');
                write_items(items, out);
                if items.len() == 1 {
                    out.push(',');
                }
                out.push(')');
            }
            Value::Dict(pairs) => {
                out.push('{');
                for (i, (key, value)) in pairs.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    key.write_repr(out);
                    out.push_str(": ");
                    value.write_repr(out);
                }
                out.push('}');
            }
            Value::Slice(s) => {
                out.push_str("slice(");
                for (i, part) in [s.start, s.stop, s.step].into_iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    match part {
                        Some(n) => push_fmt(out, format_args!("{n}")),
                        None => out.push_str("None"),
                    }
                }
                out.push(')');
            }
            Value::Proxy(token) => out.push_str(&token.proxy_repr()),
        }
    }
}

/// Python's `str(v)`: the text itself for a `str`, `repr(v)` for everything else.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(s) => f.write_str(s),
            other => f.write_str(&other.repr()),
        }
    }
}

fn push_fmt(out: &mut String, args: fmt::Arguments<'_>) {
    use fmt::Write as _;
    // Writing to a String cannot fail.
    let _ = out.write_fmt(args);
}

fn write_items(items: &[Value], out: &mut String) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        item.write_repr(out);
    }
}

/// CPython's float repr: the shortest digits that round-trip, in fixed notation when the decimal
/// exponent is in -4..16 (with `.0` when integral), else in exponent notation (`1e+16`, `1e-05`).
fn write_float_repr(f: f64, out: &mut String) {
    if f.is_nan() {
        out.push_str("nan");
        return;
    }
    if f.is_sign_negative() {
        out.push('-');
    }
    if f.is_infinite() {
        out.push_str("inf");
        return;
    }
    // Rust's `{:e}` gives the shortest digits that round-trip ("1.2345e-7", "0e0"), but when two
    // such strings are equally near the exact value it rounds the tie up, where CPython takes
    // the even digit. Rust's `{:.N$e}` rounds exactly, ties to even: prefer that rounding to the
    // same number of digits whenever it round-trips too.
    let shortest = format!("{:e}", f.abs());
    let precision = shortest.split('e').next().map_or(0, |m| {
        m.bytes()
            .filter(u8::is_ascii_digit)
            .count()
            .saturating_sub(1)
    });
    let nearest = format!("{:.precision$e}", f.abs());
    let sci = if nearest.parse() == Ok(f.abs()) {
        nearest
    } else {
        shortest
    };
    // `{:e}` always writes a mantissa, an `e` and a decimal exponent: the fallbacks are unused.
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if (-4..0).contains(&exponent) {
        out.push_str("0.");
        for _ in 0..-exponent - 1 {
            out.push('0');
        }
        out.push_str(&digits);
    } else if (0..16).contains(&exponent) {
        // 1 <= exponent + 1 <= 16: the conversion cannot fail.
        let point = usize::try_from(exponent + 1).unwrap_or(1);
        if digits.len() <= point {
            out.push_str(&digits);
            for _ in digits.len()..point {
                out.push('0');
            }
            out.push_str(".0");
        } else {
            let (int, frac) = digits.split_at(point);
            out.push_str(int);
            out.push('.');
            out.push_str(frac);
        }
    } else {
        // The digits are ASCII, so any split is on a char boundary.
        let (first, rest) = digits.split_at(1.min(digits.len()));
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        let sign = if exponent < 0 { '-' } else { '+' };
        push_fmt(out, format_args!("e{sign}{:02}", exponent.unsigned_abs()));
    }
}

/// The quote CPython puts around a str or bytes: `'` unless the text holds `'` and no `"`.
fn quote_for(has_single: bool, has_double: bool) -> char {
    if has_single && !has_double {
        '"'
    } else {
        '\''
    }
}

fn write_str_repr(s: &str, out: &mut String) {
    let quote = quote_for(s.contains('\''), s.contains('"'));
    out.reserve(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            c if c.is_ascii() || !is_printable(c) => {
                let n = u32::from(c);
                if n <= 0xff {
                    push_fmt(out, format_args!("\\x{n:02x}"));
                } else if n <= 0xffff {
                    push_fmt(out, format_args!("\\u{n:04x}"));
                } else {
                    push_fmt(out, format_args!("\\U{n:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push(quote);
}

/// An approximation of Python's `str.isprintable` for non-ASCII characters: false for the
/// categories Cc, Zs, Zl, Zp, Cf and Co and for noncharacters; true otherwise (so unassigned
/// code points count as printable, where Python escapes them).
fn is_printable(c: char) -> bool {
    let n = u32::from(c);
    let format = matches!(
        n,
        0xAD | 0x600..=0x605
            | 0x61C
            | 0x6DD
            | 0x70F
            | 0x890..=0x891
            | 0x8E2
            | 0x180E
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x2064
            | 0x2066..=0x206F
            | 0xFEFF
            | 0xFFF9..=0xFFFB
            | 0x110BD
            | 0x110CD
            | 0x13430..=0x13438
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0001
            | 0xE0020..=0xE007F
    );
    let private_use = matches!(n, 0xE000..=0xF8FF | 0xF0000..=0xFFFFD | 0x100000..=0x10FFFD);
    let noncharacter = matches!(n, 0xFDD0..=0xFDEF) || n & 0xFFFE == 0xFFFE;
    !(c.is_control() || c.is_whitespace() || format || private_use || noncharacter)
}

fn write_bytes_repr(b: &[u8], out: &mut String) {
    let quote = quote_for(b.contains(&b'\''), b.contains(&b'"'));
    out.reserve(b.len() + 3);
    out.push('b');
    out.push(quote);
    for &byte in b {
        match byte {
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            _ if char::from(byte) == quote => {
                out.push('\\');
                out.push(quote);
            }
            b' '..=b'~' => out.push(char::from(byte)),
            _ => push_fmt(out, format_args!("\\x{byte:02x}")),
        }
    }
    out.push(quote);
}

// ---------------------------------------------------------------------------------------------
// Equality and ordering

/// A number of any of Python's three numeric types, for comparisons across them.
#[derive(Clone, Copy)]
enum Num {
    Int(i64),
    Float(f64),
}

impl Value {
    fn as_num(&self) -> Option<Num> {
        match *self {
            Value::Bool(b) => Some(Num::Int(i64::from(b))),
            Value::Int(i) => Some(Num::Int(i)),
            Value::Float(f) => Some(Num::Float(f)),
            _ => None,
        }
    }
}

/// 2**63 as a float: the first float above every i64.
const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;

/// The exact order of two numbers, or `None` when one is NaN.
fn num_cmp(a: Num, b: Num) -> Option<Ordering> {
    match (a, b) {
        (Num::Int(a), Num::Int(b)) => Some(a.cmp(&b)),
        (Num::Float(a), Num::Float(b)) => a.partial_cmp(&b),
        (Num::Int(a), Num::Float(b)) => int_float_cmp(a, b),
        (Num::Float(a), Num::Int(b)) => int_float_cmp(b, a).map(Ordering::reverse),
    }
}

/// The exact order of an int and a float (no rounding of the int), or `None` for NaN.
fn int_float_cmp(i: i64, f: f64) -> Option<Ordering> {
    if f.is_nan() {
        None
    } else if f >= TWO_POW_63 {
        Some(Ordering::Less)
    } else if f < -TWO_POW_63 {
        Some(Ordering::Greater)
    } else {
        let whole = f.trunc();
        // -2**63 <= whole < 2**63 and integral: the cast is exact.
        let order = i.cmp(&(whole as i64));
        Some(order.then(if f > whole {
            Ordering::Less
        } else if f < whole {
            Ordering::Greater
        } else {
            Ordering::Equal
        }))
    }
}

/// Python's `==`: numbers compare by value across `bool`, `int` and `float` (exactly, and NaN
/// equals nothing), lists and tuples item by item (a list never equals a tuple), dicts as maps
/// whatever their order, slices part by part, proxies by token.
impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::None, Value::None) => true,
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::Bytes(a), Value::Bytes(b)) => a == b,
            (Value::List(a), Value::List(b)) | (Value::Tuple(a), Value::Tuple(b)) => a == b,
            (Value::Dict(a), Value::Dict(b)) => dict_eq(a, b),
            (Value::Slice(a), Value::Slice(b)) => a == b,
            (Value::Proxy(a), Value::Proxy(b)) => a == b,
            _ => match (self.as_num(), other.as_num()) {
                (Some(a), Some(b)) => num_cmp(a, b) == Some(Ordering::Equal),
                _ => false,
            },
        }
    }
}

/// Dicts are equal when they hold the same keys with equal values, in any order.
fn dict_eq(a: &[(Value, Value)], b: &[(Value, Value)]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    // Keys are unique in a well-formed dict, so finding each of a's pairs in b suffices. Look
    // them up by hash unless a key is unhashable (a malformed dict), then by scanning.
    let mut index = KeyIndex::default();
    for (key, _) in b {
        match key.py_hash() {
            Ok(hash) => index.push(hash),
            Err(_) => return a.iter().all(|pair| b.contains(pair)),
        }
    }
    a.iter().all(|(key, value)| {
        key.py_hash()
            .ok()
            .and_then(|hash| index.position(b, hash, key))
            .and_then(|i| b.get(i))
            .is_some_and(|(_, found)| found == value)
    })
}

impl Value {
    /// Python's `a < b`.
    ///
    /// Numbers compare exactly across `bool`, `int` and `float` (anything against NaN is
    /// false); `str` by code point; `bytes` byte by byte; lists with lists and tuples with
    /// tuples lexicographically (the first unequal items decide, else the shorter is less);
    /// slices as tuples of their parts.
    ///
    /// # Errors
    /// `TypeError("'<' not supported between instances of 'str' and 'int'")` for values that do
    /// not order, with the two type names in that order (also from items inside sequences).
    ///
    /// # Examples
    /// ```
    /// use shmstore::{Error, Value};
    /// assert!(Value::from(1).py_lt(&Value::from(1.5))?);
    /// assert!(Value::from("abc").py_lt(&Value::from("abd"))?);
    /// assert!(Value::from(vec![1, 2]).py_lt(&Value::from(vec![1, 2, 0]))?);
    /// assert_eq!(
    ///     Value::from("a").py_lt(&Value::from(1)),
    ///     Err(Error::TypeError("'<' not supported between instances of 'str' and 'int'".into()))
    /// );
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn py_lt(&self, other: &Value) -> Result<bool, Error> {
        if let (Some(a), Some(b)) = (self.as_num(), other.as_num()) {
            return Ok(num_cmp(a, b) == Some(Ordering::Less));
        }
        match (self, other) {
            (Value::Str(a), Value::Str(b)) => Ok(a < b),
            (Value::Bytes(a), Value::Bytes(b)) => Ok(a < b),
            (Value::List(a), Value::List(b)) | (Value::Tuple(a), Value::Tuple(b)) => seq_lt(a, b),
            (Value::Slice(a), Value::Slice(b)) => {
                let parts = |s: &Slice| [s.start, s.stop, s.step].map(Value::from);
                seq_lt(&parts(a), &parts(b))
            }
            _ => Err(Error::type_error(format!(
                "'<' not supported between instances of '{}' and '{}'",
                self.type_name(),
                other.type_name()
            ))),
        }
    }

    /// The order `sorted()` puts two values in: `Less` if `self < other`, `Greater` if
    /// `other < self`, else `Equal` (so NaN sorts as equal to everything, as CPython's sort
    /// treats it, instead of failing).
    ///
    /// # Errors
    /// The `TypeError` of [`Value::py_lt`] for values that do not order.
    ///
    /// # Examples
    /// ```
    /// use std::cmp::Ordering;
    /// use shmstore::Value;
    /// let mut xs = vec![Value::from(3), Value::from(1.5), Value::from(true)];
    /// let mut err = None;
    /// xs.sort_by(|a, b| a.py_cmp(b).unwrap_or_else(|e| {
    ///     err = Some(e);
    ///     Ordering::Equal
    /// }));
    /// assert!(err.is_none());
    /// assert_eq!(xs, [Value::from(true), Value::from(1.5), Value::from(3)]);
    /// ```
    pub fn py_cmp(&self, other: &Value) -> Result<Ordering, Error> {
        if self.py_lt(other)? {
            Ok(Ordering::Less)
        } else if other.py_lt(self)? {
            Ok(Ordering::Greater)
        } else {
            Ok(Ordering::Equal)
        }
    }
}

/// Python's lexicographic `<` for sequences of the same type.
fn seq_lt(a: &[Value], b: &[Value]) -> Result<bool, Error> {
    match a.iter().zip(b).find(|(x, y)| x != y) {
        Some((x, y)) => x.py_lt(y),
        None => Ok(a.len() < b.len()),
    }
}

// ---------------------------------------------------------------------------------------------
// Hashing

/// Streaming hasher over 64-bit words: a folded 128-bit multiply per word, as foldhash (hashbrown's
/// default) and wyhash do, from a state seeded through splitmix64, and the last fold's high half
/// folded onto its low half (see [`Mixer::finish`]). A dict's slot is the hash's low bits:
/// `hashes_spread_structured_keys_over_a_tables_slots` checks structured keys probe as random
/// ones do. No random seed, so every process and run agrees.
struct Mixer(u64);

const MIX_A: u64 = 0x9E37_79B9_7F4A_7C15;
const MIX_B: u64 = 0xD6E8_FEB8_6659_FD93;

impl Mixer {
    #[inline]
    fn new(key: u64) -> Mixer {
        Mixer(splitmix64(key ^ MIX_B))
    }

    #[inline]
    fn word(&mut self, w: u64) {
        let product = u128::from(self.0 ^ w) * u128::from(MIX_A);
        // Fold the high half onto the low half: the truncation is the point.
        self.0 = (product as u64) ^ ((product >> 64) as u64);
    }

    /// The length, then the bytes as little-endian words, the last one zero-padded.
    #[inline]
    fn bytes(&mut self, bytes: &[u8]) {
        let n = bytes.len();
        self.word(n as u64);
        if n <= 16 {
            self.short_bytes(bytes);
            return;
        }
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0; 8];
            word.copy_from_slice(chunk);
            self.word(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.word(u64::from_le_bytes(word));
        }
    }

    /// The words of [`Mixer::bytes`] for at most 16 bytes, read with a few fixed-size loads
    /// (overlapping ones, shifted so the padding stays zero) instead of a byte loop.
    #[inline]
    fn short_bytes(&mut self, bytes: &[u8]) {
        let n = bytes.len();
        if let (Some(first), Some(last)) = (bytes.first_chunk::<8>(), bytes.last_chunk::<8>()) {
            // 8 to 16 bytes: the first word, then the `n - 8` bytes after it, which are the
            // high bytes of the last eight.
            self.word(u64::from_le_bytes(*first));
            if n > 8 {
                self.word(u64::from_le_bytes(*last) >> (8 * (16 - n)));
            }
        } else if let (Some(first), Some(last)) =
            (bytes.first_chunk::<4>(), bytes.last_chunk::<4>())
        {
            // 4 to 7 bytes: two overlapping halves; the overlap holds the same bytes.
            let lo = u64::from(u32::from_le_bytes(*first));
            let hi = u64::from(u32::from_le_bytes(*last));
            self.word(lo | (hi << (8 * (n - 4))));
        } else if n > 0 {
            let w = bytes
                .iter()
                .rev()
                .fold(0u64, |w, b| (w << 8) | u64::from(*b));
            self.word(w);
        }
    }

    #[inline]
    fn finish(&self) -> u64 {
        // The high half folded onto the low one: keys that differ only in a run of middle or
        // high bits (`i << 36`, packed ids) otherwise land on a lattice of slots that no seed
        // moves, up to 1.45 times the probes of random hashes. Three instructions, where
        // splitmix64's finalizer took a dozen for the same spread.
        self.0 ^ (self.0 >> 32)
    }
}

/// The hash mixer's state seeded with `key`, for [`Value::hash_with_seed`]: computing it once
/// per key saves a mixing round per hash.
pub fn hash_seed(key: u64) -> u64 {
    Mixer::new(key).0
}

#[inline]
fn splitmix64(x: u64) -> u64 {
    let x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    let x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Kinds that start a value's word stream in the hash.
mod hash_kind {
    pub const NONE: u64 = 1;
    pub const INT: u64 = 2;
    pub const FLOAT: u64 = 3;
    pub const STR: u64 = 4;
    pub const BYTES: u64 = 5;
    pub const TUPLE: u64 = 6;
    pub const PROXY: u64 = 7;
}

impl Value {
    /// Python's `hash(v)`, deterministic across processes and runs, and consistent with `==`:
    /// `hash(1) == hash(1.0) == hash(True)`, `hash(-0.0) == hash(0)`. Tuples hash their items,
    /// proxies their token.
    ///
    /// # Errors
    /// `TypeError("unhashable type: 'list'")` for a list, dict or slice, or a tuple holding one.
    ///
    /// # Examples
    /// ```
    /// use shmstore::Value;
    /// assert_eq!(Value::from(1).py_hash()?, Value::from(1.0).py_hash()?);
    /// assert_eq!(Value::from(1).py_hash()?, Value::from(true).py_hash()?);
    /// assert!(Value::from(vec![1]).py_hash().is_err()); // unhashable type: 'list'
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn py_hash(&self) -> Result<u64, Error> {
        self.hash_with_key(0)
    }

    /// [`Value::py_hash`] with the mixer seeded by `key` (a per-segment key, say).
    ///
    /// # Errors
    /// `TypeError("unhashable type: 'list'")` for a list, dict or slice, or a tuple holding one.
    ///
    /// # Examples
    /// ```
    /// use shmstore::Value;
    /// let v = Value::from(("a", 1));
    /// assert_eq!(v.hash_with_key(0)?, v.py_hash()?);
    /// assert_ne!(v.hash_with_key(42)?, v.hash_with_key(43)?);
    /// assert_eq!(Value::from(2).hash_with_key(42)?, Value::from(2.0).hash_with_key(42)?);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn hash_with_key(&self, key: u64) -> Result<u64, Error> {
        self.hash_with_seed(hash_seed(key))
    }

    /// [`Value::hash_with_key`] from the mixer state made of the key (a segment's is
    /// [`Core::hash_seed`](crate::core::Core::hash_seed)): the same result, one mixing round
    /// cheaper (an int's hash is then a few multiplications, inline).
    ///
    /// # Errors
    /// As [`Value::hash_with_key`].
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-hashwithseed-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::Value;
    /// let seed = store.core().hash_seed(); // this segment's key, mixed once
    /// for v in [Value::Int(7), Value::from("seven"), Value::Tuple(vec![Value::Int(7)])] {
    ///     assert_eq!(v.hash_with_seed(seed)?, shmstore::types::htable::hash(store.core(), &v)?);
    /// }
    /// assert_eq!(Value::Int(1).hash_with_seed(seed)?, Value::Float(1.0).hash_with_seed(seed)?);
    /// assert!(Value::List(vec![]).hash_with_seed(seed).is_err()); // unhashable
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    #[inline]
    pub fn hash_with_seed(&self, seed: u64) -> Result<u64, Error> {
        let mut mixer = Mixer(seed);
        match self {
            // The keys of the hot paths, hashed inline (as `hash_into` does).
            Value::Int(i) => hash_int(*i, &mut mixer),
            Value::Str(s) => return Ok(hash_str(seed, s)),
            _ => self.hash_into(&mut mixer)?,
        }
        Ok(mixer.finish())
    }

    /// [`Value::hash_with_seed`] with the int and str kinds' states precomputed too
    /// (`kind_seeds` = [`kind_seeds`]`(seed)`): the same hash, an int's or a str's one multiply
    /// sooner.
    #[inline]
    pub(crate) fn hash_with_seeds(&self, seed: u64, kind_seeds: (u64, u64)) -> Result<u64, Error> {
        match self {
            Value::Int(i) => Ok(hash_int_after_kind(kind_seeds.0, *i)),
            Value::Str(s) => Ok(hash_str_after_kind_outline(kind_seeds.1, s)),
            _ => {
                let mut mixer = Mixer(seed);
                self.hash_into(&mut mixer)?;
                Ok(mixer.finish())
            }
        }
    }

    fn hash_into(&self, mixer: &mut Mixer) -> Result<(), Error> {
        match self {
            Value::None => mixer.word(hash_kind::NONE),
            Value::Bool(b) => hash_int(i64::from(*b), mixer),
            Value::Int(i) => hash_int(*i, mixer),
            Value::Float(f) => hash_float(*f, mixer),
            Value::Str(s) => {
                mixer.word(hash_kind::STR);
                mixer.bytes(s.as_bytes());
            }
            Value::Bytes(b) => {
                mixer.word(hash_kind::BYTES);
                mixer.bytes(b);
            }
            Value::Tuple(items) => {
                mixer.word(hash_kind::TUPLE);
                mixer.word(items.len() as u64);
                for item in items {
                    item.hash_into(mixer)?;
                }
            }
            Value::Proxy(token) => {
                mixer.word(hash_kind::PROXY);
                mixer.word(token.store);
                mixer.word(u64::from(token.type_id));
                mixer.word((u64::from(token.slot) << 32) | u64::from(token.generation));
            }
            Value::List(_) | Value::Dict(_) | Value::Slice(_) => {
                return Err(Error::type_error(format!(
                    "unhashable type: '{}'",
                    self.type_name()
                )));
            }
        }
        Ok(())
    }
}

/// [`Value::hash_with_seed`] of a `str` (as `hash_into` hashes it), out of line and without
/// `hash_into`'s dispatch (inlined there, it would keep `hash_with_seed` out of its callers).
#[inline(never)]
pub(crate) fn hash_str(seed: u64, s: &str) -> u64 {
    let mut mixer = Mixer(seed);
    mixer.word(hash_kind::STR);
    mixer.bytes(s.as_bytes());
    mixer.finish()
}

/// The mixer's states after the first word of an int's and of a str's hash (their kind), from
/// `seed`: each depends on the seed alone, so an attachment works them out once
/// ([`Core`](crate::core::Core) keeps them) and a key's hash starts one multiply later in the
/// chain — the hash of an int key is then one multiply and the finalizer, not two multiplies.
#[inline]
pub(crate) fn kind_seeds(seed: u64) -> (u64, u64) {
    let (mut int, mut str) = (Mixer(seed), Mixer(seed));
    int.word(hash_kind::INT);
    str.word(hash_kind::STR);
    (int.0, str.0)
}

/// The hash of the int `i` from the int kind's state ([`kind_seeds`]): `hash_with_seed`'s.
#[inline]
pub(crate) fn hash_int_after_kind(int_seed: u64, i: i64) -> u64 {
    let mut mixer = Mixer(int_seed);
    mixer.word(i as u64);
    mixer.finish()
}

/// [`hash_str_after_kind`], out of line (as [`hash_str`], for [`Value::hash_with_seeds`]).
#[inline(never)]
fn hash_str_after_kind_outline(str_seed: u64, s: &str) -> u64 {
    hash_str_after_kind(str_seed, s)
}

/// The hash of the str `s` from the str kind's state ([`kind_seeds`]): `hash_with_seed`'s.
/// Inline: a borrowed `&str` dict key's bytes and length are already in registers (its cell
/// is built from them).
#[inline]
pub(crate) fn hash_str_after_kind(str_seed: u64, s: &str) -> u64 {
    let mut mixer = Mixer(str_seed);
    mixer.bytes(s.as_bytes());
    mixer.finish()
}

#[inline]
fn hash_int(i: i64, mixer: &mut Mixer) {
    mixer.word(hash_kind::INT);
    mixer.word(i as u64);
}

/// A float hashes as the int it equals when there is one (so `-0.0`, `0.0` and `0` agree), else
/// by its bits.
fn hash_float(f: f64, mixer: &mut Mixer) {
    if f.fract() == 0.0 && (-TWO_POW_63..TWO_POW_63).contains(&f) {
        // Integral and in range: the cast is exact.
        hash_int(f as i64, mixer);
    } else {
        mixer.word(hash_kind::FLOAT);
        mixer.word(f.to_bits());
    }
}

/// The keys of a dict's pairs indexed by hash: the latest entry of each hash and, per entry, the
/// entry before it with the same hash.
#[derive(Default)]
struct KeyIndex {
    latest: HashMap<u64, usize>,
    previous: Vec<Option<usize>>,
}

impl KeyIndex {
    /// Where `key` (of hash `hash`) sits in `pairs`, which must be the pairs indexed so far.
    fn position(&self, pairs: &[(Value, Value)], hash: u64, key: &Value) -> Option<usize> {
        let mut at = self.latest.get(&hash).copied();
        while let Some(i) = at {
            if pairs.get(i).is_some_and(|(k, _)| k == key) {
                return Some(i);
            }
            at = self.previous.get(i).copied().flatten();
        }
        None
    }

    /// Records that the next pair's key has hash `hash`.
    fn push(&mut self, hash: u64) {
        let i = self.previous.len();
        self.previous.push(self.latest.insert(hash, i));
    }
}

// ---------------------------------------------------------------------------------------------
// Encoding

/// Tag bytes of the encoding.
mod tag {
    pub const NONE: u8 = 0;
    pub const BOOL: u8 = 1;
    pub const INT: u8 = 2;
    pub const FLOAT: u8 = 3;
    pub const STR: u8 = 4;
    pub const BYTES: u8 = 5;
    pub const LIST: u8 = 6;
    pub const TUPLE: u8 = 7;
    pub const DICT: u8 = 8;
    pub const SLICE: u8 = 9;
    pub const PROXY: u8 = 10;
}

/// Bytes of an encoded proxy after its tag: store u64, type id u16, slot u32, generation u32.
const PROXY_LEN: usize = 8 + 2 + 4 + 4;

impl Value {
    /// Appends the value's encoding to `out`: a tag byte and a little-endian payload — `Bool` one
    /// byte 0/1, `Int` an i64, `Float` its f64 bits, `Str`/`Bytes` a u32 length and the bytes,
    /// `List`/`Tuple` a u32 count and the items, `Dict` a u32 count and the keys and values
    /// alternately, `Slice` a byte of presence flags (bit 0 start, 1 stop, 2 step) and the present
    /// parts as i64, `Proxy` the token's store (u64), type id (u16), slot (u32) and generation
    /// (u32).
    ///
    /// # Errors
    /// `ValueError` when containers nest more than [`MAX_DEPTH`] deep or a str, bytes or
    /// container is longer than `u32::MAX`; for a `Value::Dict` not built by
    /// [`Value::dict_from_pairs`], `TypeError("unhashable type: 'list'")` for an unhashable key
    /// and `ValueError` for a key that appears twice. `out` is then left as it was.
    ///
    /// # Examples
    /// ```
    /// use shmstore::Value;
    /// let v = Value::dict_from_pairs([("k", vec![1, 2])])?;
    /// let mut buf = Vec::new();
    /// v.encode(&mut buf)?;
    /// assert_eq!(buf.len(), v.encoded_len());
    /// assert_eq!(Value::decode(&buf)?, v);
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        let start = out.len();
        out.reserve(self.encoded_len());
        let result = self.encode_at(out, 0);
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    /// The number of bytes [`Value::encode`] appends.
    ///
    /// # Examples
    /// ```
    /// use shmstore::Value;
    /// assert_eq!(Value::None.encoded_len(), 1); // the tag alone
    /// assert_eq!(Value::from(5).encoded_len(), 9); // tag and 8 bytes
    /// assert_eq!(Value::from("abc").encoded_len(), 8); // tag, u32 length, 3 bytes
    /// ```
    pub fn encoded_len(&self) -> usize {
        1 + match self {
            Value::None => 0,
            Value::Bool(_) => 1,
            Value::Int(_) | Value::Float(_) => 8,
            Value::Str(s) => 4 + s.len(),
            Value::Bytes(b) => 4 + b.len(),
            Value::List(items) | Value::Tuple(items) => {
                4 + items.iter().map(Value::encoded_len).sum::<usize>()
            }
            Value::Dict(pairs) => {
                4 + pairs
                    .iter()
                    .map(|(k, v)| k.encoded_len() + v.encoded_len())
                    .sum::<usize>()
            }
            Value::Slice(s) => 1 + 8 * [s.start, s.stop, s.step].iter().flatten().count(),
            Value::Proxy(_) => PROXY_LEN,
        }
    }

    /// Encodes `self`, which sits inside `level` containers.
    fn encode_at(&self, out: &mut Vec<u8>, level: usize) -> Result<(), Error> {
        match self {
            Value::None => out.push(tag::NONE),
            Value::Bool(b) => out.extend([tag::BOOL, u8::from(*b)]),
            Value::Int(i) => {
                out.push(tag::INT);
                out.extend(i.to_le_bytes());
            }
            Value::Float(f) => {
                out.push(tag::FLOAT);
                out.extend(f.to_bits().to_le_bytes());
            }
            Value::Str(s) => {
                out.push(tag::STR);
                push_len(out, s.len(), "str")?;
                out.extend_from_slice(s.as_bytes());
            }
            Value::Bytes(b) => {
                out.push(tag::BYTES);
                push_len(out, b.len(), "bytes")?;
                out.extend_from_slice(b);
            }
            Value::List(items) | Value::Tuple(items) => {
                check_level(level)?;
                let is_list = matches!(self, Value::List(_));
                out.push(if is_list { tag::LIST } else { tag::TUPLE });
                push_len(out, items.len(), self.type_name())?;
                for item in items {
                    item.encode_at(out, level + 1)?;
                }
            }
            Value::Dict(pairs) => {
                check_level(level)?;
                out.push(tag::DICT);
                push_len(out, pairs.len(), "dict")?;
                // A `Value::Dict` built by hand may break the invariant `decode` checks; it is
                // refused here rather than stored and later read back as corrupt.
                let mut index = KeyIndex::default();
                for (key, value) in pairs {
                    let hash = key.py_hash()?;
                    if index.position(pairs, hash, key).is_some() {
                        return Err(Error::ValueError(format!(
                            "dict has the key {} twice",
                            key.repr()
                        )));
                    }
                    index.push(hash);
                    key.encode_at(out, level + 1)?;
                    value.encode_at(out, level + 1)?;
                }
            }
            Value::Slice(s) => {
                out.push(tag::SLICE);
                let parts = [s.start, s.stop, s.step];
                let flags = parts
                    .iter()
                    .enumerate()
                    .filter(|(_, part)| part.is_some())
                    .fold(0u8, |flags, (bit, _)| flags | 1 << bit);
                out.push(flags);
                for n in parts.into_iter().flatten() {
                    out.extend(n.to_le_bytes());
                }
            }
            Value::Proxy(token) => {
                out.push(tag::PROXY);
                out.extend(token.store.to_le_bytes());
                out.extend(token.type_id.to_le_bytes());
                out.extend(token.slot.to_le_bytes());
                out.extend(token.generation.to_le_bytes());
            }
        }
        Ok(())
    }

    /// Decodes a value that [`Value::encode`] wrote, checking everything: the whole of `bytes`
    /// must be exactly one value.
    ///
    /// # Errors
    /// `Corrupt { what, offset }`, with `offset` the position in `bytes` of the first bad byte (or
    /// of the field that announced too much), for an unknown tag, a truncated value, a length or
    /// count running past the end, invalid UTF-8, a bool byte other than 0 or 1, bad slice flags,
    /// containers nested more than [`MAX_DEPTH`] deep, an unhashable or repeated dict key, or
    /// bytes left over after the value.
    ///
    /// # Examples
    /// ```
    /// use shmstore::{Error, Value};
    /// let mut buf = Vec::new();
    /// Value::from("hi").encode(&mut buf)?;
    /// assert_eq!(Value::decode(&buf)?, Value::from("hi"));
    /// buf.push(0); // one byte too many
    /// assert!(matches!(Value::decode(&buf), Err(Error::Corrupt { .. })));
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn decode(bytes: &[u8]) -> Result<Value, Error> {
        let mut reader = Reader { bytes, pos: 0 };
        let value = reader.value(0)?;
        if reader.pos != bytes.len() {
            return Err(corrupt("trailing bytes after value", reader.pos));
        }
        Ok(value)
    }
}

fn check_level(level: usize) -> Result<(), Error> {
    if level >= MAX_DEPTH {
        Err(Error::ValueError("value nested too deeply".into()))
    } else {
        Ok(())
    }
}

/// Appends a length as a u32.
fn push_len(out: &mut Vec<u8>, len: usize, what: &str) -> Result<(), Error> {
    let len = u32::try_from(len).map_err(|_| {
        Error::ValueError(format!("{what} too long to store: {len} > {}", u32::MAX))
    })?;
    out.extend(len.to_le_bytes());
    Ok(())
}

/// A corrupt-input error at byte `at` of the input.
#[cold]
fn corrupt(what: &'static str, at: usize) -> Error {
    Error::corrupt(what, at as u64)
}

/// A cursor over untrusted bytes.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let start = self.pos;
        let chunk = start
            .checked_add(n)
            .and_then(|end| self.bytes.get(start..end))
            .ok_or_else(|| corrupt("truncated value", start))?;
        self.pos = start + n;
        Ok(chunk)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let start = self.pos;
        let chunk = self
            .bytes
            .get(start..)
            .and_then(<[u8]>::first_chunk::<N>)
            .ok_or_else(|| corrupt("truncated value", start))?;
        self.pos = start + N;
        Ok(*chunk)
    }

    fn u8(&mut self) -> Result<u8, Error> {
        self.array::<1>().map(|[b]| b)
    }

    fn i64(&mut self) -> Result<i64, Error> {
        self.array().map(i64::from_le_bytes)
    }

    /// A u32 count of items, each taking at least `min_item_len` bytes, which must fit in what is
    /// left: so nothing is allocated for more than the input could hold.
    fn count(&mut self, min_item_len: usize) -> Result<usize, Error> {
        let at = self.pos;
        let count = u32::from_le_bytes(self.array()?);
        usize::try_from(count)
            .ok()
            .filter(|&n| n.saturating_mul(min_item_len) <= self.remaining())
            .ok_or_else(|| corrupt("length runs past the end", at))
    }

    /// Reads the value at the cursor, which sits inside `level` containers.
    fn value(&mut self, level: usize) -> Result<Value, Error> {
        let at = self.pos;
        let value = match self.u8()? {
            tag::NONE => Value::None,
            tag::BOOL => match self.u8()? {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                _ => return Err(corrupt("bool byte not 0 or 1", at + 1)),
            },
            tag::INT => Value::Int(self.i64()?),
            tag::FLOAT => Value::Float(f64::from_bits(u64::from_le_bytes(self.array()?))),
            tag::STR => {
                let len = self.count(1)?;
                let start = self.pos;
                let text = std::str::from_utf8(self.take(len)?)
                    .map_err(|e| corrupt("invalid UTF-8 in str", start + e.valid_up_to()))?;
                Value::Str(text.to_owned())
            }
            tag::BYTES => {
                let len = self.count(1)?;
                Value::Bytes(self.take(len)?.to_vec())
            }
            tag::LIST | tag::TUPLE => {
                self.check_level(level, at)?;
                let count = self.count(1)?;
                let mut items = Vec::with_capacity(count);
                for _ in 0..count {
                    items.push(self.value(level + 1)?);
                }
                if self.bytes.get(at) == Some(&tag::LIST) {
                    Value::List(items)
                } else {
                    Value::Tuple(items)
                }
            }
            tag::DICT => {
                self.check_level(level, at)?;
                self.dict(level)?
            }
            tag::SLICE => {
                let flags = self.u8()?;
                if flags > 0b111 {
                    return Err(corrupt("bad slice flags", at + 1));
                }
                let mut part = |bit: u8| {
                    if flags & (1 << bit) == 0 {
                        Ok(None)
                    } else {
                        self.i64().map(Some)
                    }
                };
                Value::Slice(Slice::from_options(part(0)?, part(1)?, part(2)?))
            }
            tag::PROXY => Value::Proxy(Token {
                store: u64::from_le_bytes(self.array()?),
                type_id: u16::from_le_bytes(self.array()?),
                slot: u32::from_le_bytes(self.array()?),
                generation: u32::from_le_bytes(self.array()?),
            }),
            _ => return Err(corrupt("unknown value tag", at)),
        };
        Ok(value)
    }

    fn check_level(&self, level: usize, at: usize) -> Result<(), Error> {
        if level >= MAX_DEPTH {
            Err(corrupt("value nested too deeply", at))
        } else {
            Ok(())
        }
    }

    /// Reads a dict's count and pairs, checking that the keys are hashable and unique.
    fn dict(&mut self, level: usize) -> Result<Value, Error> {
        let count = self.count(2)?;
        let mut pairs: Vec<(Value, Value)> = Vec::with_capacity(count);
        let mut index = KeyIndex::default();
        for _ in 0..count {
            let at = self.pos;
            let key = self.value(level + 1)?;
            let hash = key
                .py_hash()
                .map_err(|_| corrupt("unhashable dict key", at))?;
            if index.position(&pairs, hash, &key).is_some() {
                return Err(corrupt("duplicate dict key", at));
            }
            let value = self.value(level + 1)?;
            index.push(hash);
            pairs.push((key, value));
        }
        Ok(Value::Dict(pairs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Mean probes to insert each of `hashes` into a table of `2**log2` slots probed as
    /// `htable` probes (CPython's recurrence).
    fn mean_probes(hashes: &[u64], log2: u32) -> f64 {
        let mask = (1u64 << log2) - 1;
        let mut taken = vec![false; 1 << log2];
        let mut total = 0;
        for &h in hashes {
            let (mut i, mut perturb) = (h & mask, h);
            total += 1;
            while taken[i as usize] {
                perturb >>= 5;
                i = (i.wrapping_mul(5).wrapping_add(perturb).wrapping_add(1)) & mask;
                total += 1;
            }
            taken[i as usize] = true;
        }
        total as f64 / hashes.len() as f64
    }

    /// A dict's slot is its hash's low bits, and a probe's later steps take its high bits. Keys
    /// with structure must probe as random hashes do: 1,024 of them in 2,048 slots take 1.39
    /// probes on average. The families: ints differing only in a run of 10 bits at every
    /// position (`i << a`: packed ids, strides of a power of two), a few strides, negative
    /// ints, floats, numbered strs and tuples. The hash's last fold alone (no `finish` step)
    /// takes up to 2.0 probes on `i << 36`; low bits copied from the key would take hundreds.
    #[test]
    fn hashes_spread_structured_keys_over_a_tables_slots() {
        let mut families: Vec<(String, Vec<Value>)> = (0..=54)
            .map(|a| {
                (
                    format!("i << {a}"),
                    (0..1024).map(|i| Value::Int(i << a)).collect(),
                )
            })
            .collect();
        type Family = (&'static str, fn(i64) -> Value);
        let more: [Family; 7] = [
            ("i << 36 | 7", |i| Value::Int(i << 36 | 7)),
            ("i * 1000003", |i| Value::Int(i * 1_000_003)),
            ("(i << 32) + i", |i| Value::Int((i << 32) + i)),
            ("-i", |i| Value::Int(-i)),
            ("i + 0.5", |i| Value::Float(i as f64 + 0.5)),
            ("'k%07d' % i", |i| Value::from(format!("k{i:07}"))),
            ("(i, 1)", |i| {
                Value::Tuple(vec![Value::Int(i), Value::Int(1)])
            }),
        ];
        families.extend(more.map(|(name, f)| (name.to_string(), (0..1024).map(f).collect())));
        for key in [0, 1, 0x5eed, u64::MAX, 0x0123_4567_89ab_cdef] {
            for (name, keys) in &families {
                let hashes: Vec<u64> = keys.iter().map(|k| k.hash_with_key(key).unwrap()).collect();
                let probes = mean_probes(&hashes, 11);
                assert!(probes <= 1.7, "{name}, key {key:#x}: {probes:.2} probes");
            }
        }
    }

    /// `Mixer::bytes` as it was first written (a zero-padded byte copy per 8-byte chunk): the
    /// hash of a str or bytes is part of the table format, so the faster reads must agree.
    #[test]
    fn mixer_bytes_match_the_byte_loop_at_every_length() {
        let data: Vec<u8> = (0..40u8).map(|i| i.wrapping_mul(37) ^ 0xa5).collect();
        for n in 0..=data.len() {
            for start in [0, 1, 3] {
                let Some(bytes) = data.get(start..start + n) else {
                    continue;
                };
                let mut reference = Mixer(0x1234_5678_9abc_def0);
                reference.word(bytes.len() as u64);
                for chunk in bytes.chunks(8) {
                    let mut word = [0; 8];
                    word.iter_mut().zip(chunk).for_each(|(w, b)| *w = *b);
                    reference.word(u64::from_le_bytes(word));
                }
                let mut fast = Mixer(0x1234_5678_9abc_def0);
                fast.bytes(bytes);
                assert_eq!(fast.0, reference.0, "{n} bytes from {start}");
            }
        }
    }

    /// FNV-1a over UTF-8, the digest the Python-generated tables below were reduced to.
    fn fnv1a(text: &str) -> u64 {
        text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
    }

    /// The splitmix64 generator, as the Python generator of the tables runs it.
    fn next_random(state: &mut u64) -> u64 {
        *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        splitmix64(*state)
    }

    fn opt(n: Option<i64>) -> String {
        n.map_or_else(|| "None".to_owned(), |n| n.to_string())
    }

    fn positions(slice: Slice, len: usize) -> Vec<usize> {
        slice.indices(len).unwrap().iter().collect()
    }

    fn encoded(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        v.encode(&mut out).unwrap();
        out
    }

    fn nested_lists(depth: usize) -> Value {
        (0..depth).fold(Value::None, |inner, _| Value::List(vec![inner]))
    }

    fn decode_error(bytes: &[u8]) -> (&'static str, u64) {
        match Value::decode(bytes) {
            Err(Error::Corrupt { what, offset }) => (what, offset),
            other => panic!("{bytes:?} decoded to {other:?}"),
        }
    }

    fn token() -> Token {
        Token {
            store: 0xdead_beef_0123_4567,
            type_id: crate::token::type_ids::LIST,
            slot: 42,
            generation: 7,
        }
    }

    // Python: for n in range(6), start and stop in [*range(-8, 8), None], step in
    // [-3, -2, -1, 1, 2, 3, None]: "{n} {start} {stop} {step} {s.indices(n)} {list(range(n))[s]}".
    #[test]
    fn slice_indices_match_cpython_table() {
        let bounds: Vec<Option<i64>> = (-8..8).map(Some).chain([None]).collect();
        let steps = [-3, -2, -1, 1, 2, 3].map(Some);
        let mut table = String::new();
        let mut rows = 0;
        for len in 0..6 {
            for &start in &bounds {
                for &stop in &bounds {
                    for &step in steps.iter().chain([&None]) {
                        let ix = Slice::from_options(start, stop, step).indices(len).unwrap();
                        let picked: Vec<usize> = ix.iter().collect();
                        assert_eq!(picked.len(), ix.len);
                        table.push_str(&format!(
                            "{len} {} {} {} {},{},{},{} {picked:?}\n",
                            opt(start),
                            opt(stop),
                            opt(step),
                            ix.start,
                            ix.stop,
                            ix.step,
                            ix.len,
                        ));
                        rows += 1;
                    }
                }
            }
        }
        assert_eq!(rows, 12138);
        assert_eq!(fnv1a(&table), 0xa4b7_13c1_72a4_491d, "{table}");
    }

    #[test]
    fn slice_indices_at_the_limits_match_cpython() {
        const MAX: i64 = i64::MAX;
        const MIN: i64 = i64::MIN;
        // (len, start, stop, step, list(range(len))[start:stop:step])
        type Case = (usize, Option<i64>, Option<i64>, i64, &'static [usize]);
        let cases: [Case; 18] = [
            (0, None, None, MIN, &[]),
            (0, Some(MAX), Some(MIN), -1, &[]),
            (0, Some(-1), Some(MIN), -3, &[]),
            (1, None, None, MIN, &[0]),
            (1, Some(MAX), None, MIN, &[0]),
            (1, Some(3), Some(MIN), MIN, &[0]),
            (1, None, Some(MAX), -1, &[]),
            (5, None, None, MIN, &[4]),
            (5, None, None, MAX, &[0]),
            (5, Some(MAX), Some(MIN), -1, &[4, 3, 2, 1, 0]),
            (5, Some(MIN), Some(MAX), 1, &[0, 1, 2, 3, 4]),
            (5, Some(MIN), Some(MAX), MAX, &[0]),
            (5, Some(MAX), None, MIN, &[4]),
            (5, Some(3), Some(MIN), MIN, &[3]),
            (5, Some(-1), Some(MIN), -3, &[4, 1]),
            (5, None, Some(MAX), -1, &[]),
            (5, Some(-2), None, 1, &[3, 4]),
            (5, Some(1), Some(4), 2, &[1, 3]),
        ];
        for (len, start, stop, step, expected) in cases {
            let slice = Slice::from_options(start, stop, Some(step));
            assert_eq!(positions(slice, len), expected, "{slice:?} of {len}");
        }
        assert_eq!(
            Slice::with_step(0, 5, MIN).indices(5).unwrap().step,
            -MAX,
            "CPython replaces a step of -2**63 with -(2**63 - 1)"
        );
        assert_eq!(
            Slice::with_step(1, 2, 0).indices(5),
            Err(Error::ValueError("slice step cannot be zero".into()))
        );
        let iter = Slice::from(..).indices(7).unwrap().iter();
        assert_eq!(iter.len(), 7);
    }

    #[test]
    fn slices_from_ranges() {
        assert_eq!(Slice::from(1..4), Slice::new(1, 4));
        assert_eq!(Slice::from(2..), Slice::from_options(Some(2), None, None));
        assert_eq!(Slice::from(..3), Slice::from_options(None, Some(3), None));
        assert_eq!(Slice::from(..), Slice::from_options(None, None, None));
        assert_eq!(Slice::from(1..=3), Slice::new(1, 4));
        assert_eq!(Slice::from(0..=i64::MAX), Slice::new(0, i64::MAX));
        assert_eq!(Slice::with_step(5, 1, -2).step, Some(-2));
    }

    #[test]
    fn float_repr_matches_cpython() {
        // repr() of each float, from python3.
        let reprs = [
            "0.0",
            "1.0",
            "0.1",
            "0.30000000000000004",
            "0.3333333333333333",
            "0.6666666666666666",
            "1e+16",
            "1000000000000000.0",
            "9999999999999998.0",
            "0.0001",
            "1e-05",
            "1.5e-07",
            "1.5e+300",
            "5e-324",
            "1.7976931348623157e+308",
            "9007199254740992.0",
            "9.223372036854776e+18",
            "123456789.125",
            "100.0",
            "1e+22",
            "1e+23",
            "12345.678",
            "0.5",
            "2.5e-05",
            "1234567890123456.8",
            "1.2345678901234568e+16",
        ];
        for expected in reprs {
            let f: f64 = expected.parse().unwrap();
            assert_eq!(Value::Float(f).repr(), expected);
            assert_eq!(Value::Float(-f).repr(), format!("-{expected}"));
        }
        assert_eq!(Value::Float(f64::INFINITY).repr(), "inf");
        assert_eq!(Value::Float(f64::NEG_INFINITY).repr(), "-inf");
        assert_eq!(Value::Float(f64::NAN).repr(), "nan");
        assert_eq!(Value::Float(-f64::NAN).repr(), "nan");
    }

    // Python: 20000 floats from random bits, and 20000 from "{m}e{e}" with random m of up to 17
    // digits and e in -30..=30, both drawn from splitmix64; the digest of their reprs.
    #[test]
    fn float_repr_matches_cpython_on_random_floats() {
        let mut state = 12345;
        let mut text = String::new();
        for _ in 0..20000 {
            let f = f64::from_bits(next_random(&mut state));
            text.push_str(&Value::Float(f).repr());
            text.push('\n');
        }
        assert_eq!(fnv1a(&text), 0x6234_6186_519b_1c08);

        let mut state = 999;
        let mut text = String::new();
        for _ in 0..20000 {
            let z = next_random(&mut state);
            let digits = 1 + (z % 17) as u32;
            let mantissa = (z >> 8) % 10u64.pow(digits);
            let exponent = ((z >> 40) % 61) as i64 - 30;
            let f: f64 = format!("{mantissa}e{exponent}").parse().unwrap();
            text.push_str(&Value::Float(f).repr());
            text.push('\n');
        }
        assert_eq!(fnv1a(&text), 0x9bb1_c6f4_5017_ece4);
    }

    #[test]
    fn str_and_bytes_repr_match_cpython() {
        let strs = [
            ("", "''"),
            ("a", "'a'"),
            ("it's", r#""it's""#),
            (r#"say "hi""#, r#"'say "hi"'"#),
            (r#"both ' and ""#, r#"'both \' and "'"#),
            (r"back\slash", r"'back\\slash'"),
            ("\n\r\t\x00\x1f\x7f", r"'\n\r\t\x00\x1f\x7f'"),
            ("é ü ß", "'é ü ß'"),
            (
                "\u{a0}\u{2028}\u{200b}\u{feff}",
                r"'\xa0\u2028\u200b\ufeff'",
            ),
            ("日本語", "'日本語'"),
            ("😀", "'😀'"),
            ("\u{e0001}", r"'\U000e0001'"),
            ("\u{80}\u{9f}\u{ad}", r"'\x80\x9f\xad'"),
            ("\u{e000}", r"'\ue000'"),
            ("\u{fffe}", r"'\ufffe'"),
        ];
        for (s, expected) in strs {
            assert_eq!(Value::from(s).repr(), expected);
        }
        let bytes: [(&[u8], &str); 7] = [
            (b"", "b''"),
            (b"a", "b'a'"),
            (b"it's", r#"b"it's""#),
            (br#"say "hi""#, r#"b'say "hi"'"#),
            (br#"both ' and ""#, r#"b'both \' and "'"#),
            (b"\\", r"b'\\'"),
            (b"\n\r\t\x00\x7f\x80\xff", r"b'\n\r\t\x00\x7f\x80\xff'"),
        ];
        for (b, expected) in bytes {
            assert_eq!(Value::bytes(b).repr(), expected);
        }
    }

    // Python: the digest of repr(chr(c)) for every c in ranges without unassigned code points,
    // and of repr(bytes([b])) for every byte.
    #[test]
    fn char_and_byte_repr_match_cpython_tables() {
        let ranges = [
            0..0x378,
            0x2000..0x2065,
            0x3000..0x3040,
            0xE000..0xF900,
            0xFE00..0xFE10,
            0x1F600..0x1F650,
            0xE0001..0xE0002,
            0xE0020..0xE0080,
        ];
        let mut text = String::new();
        for c in ranges.into_iter().flatten().filter_map(char::from_u32) {
            text.push_str(&Value::Str(c.to_string()).repr());
            text.push('\n');
        }
        assert_eq!(fnv1a(&text), 0xb31b_5684_8e79_2f5b);

        let mut text = String::new();
        for b in 0..=255u8 {
            text.push_str(&Value::bytes([b]).repr());
            text.push('\n');
        }
        assert_eq!(fnv1a(&text), 0x00a7_33a5_3572_92c3);
    }

    #[test]
    fn container_repr_and_str_match_cpython() {
        let v = Value::List(vec![
            1.into(),
            "a".into(),
            Value::None,
            true.into(),
            2.5.into(),
            Value::bytes(*b"x"),
            Value::Tuple(vec![]),
            Value::Tuple(vec![1.into()]),
            (1, 2).into(),
            Value::dict_from_pairs([("a", vec![1])]).unwrap(),
            Value::Dict(vec![]),
            Value::List(vec![]),
            Slice::from(1..).into(),
            Slice::from_options(None, None, Some(-1)).into(),
        ]);
        let expected = "[1, 'a', None, True, 2.5, b'x', (), (1,), (1, 2), {'a': [1]}, {}, [], \
                        slice(1, None, None), slice(None, None, -1)]";
        assert_eq!(v.repr(), expected);
        assert_eq!(v.to_string(), expected);
        assert_eq!(Value::from("a\nb").to_string(), "a\nb");
        assert_eq!(Value::from(vec!["a"]).to_string(), "['a']");
        assert_eq!(Value::None.to_string(), "None");
        assert_eq!(Value::from(false).repr(), "False");
        assert_eq!(Value::from(i64::MIN).repr(), "-9223372036854775808");
        assert_eq!(
            Value::Proxy(token()).repr(),
            "<ListProxy object, typeid 'list' at 0x2a00000007>"
        );
    }

    #[test]
    fn type_names_are_pythons() {
        let names = [
            (Value::None, "NoneType"),
            (true.into(), "bool"),
            (1.into(), "int"),
            (1.0.into(), "float"),
            ("".into(), "str"),
            (Value::bytes(vec![]), "bytes"),
            (Value::List(vec![]), "list"),
            (Value::Tuple(vec![]), "tuple"),
            (Value::Dict(vec![]), "dict"),
            (Slice::from(..).into(), "slice"),
            (token().into(), "list"),
        ];
        for (v, name) in names {
            assert_eq!(v.type_name(), name);
        }
    }

    #[test]
    fn conversions() {
        assert_eq!(Value::from(u64::MAX).as_int(), Some(i64::MAX));
        assert_eq!(Value::from(usize::MAX).as_int(), Some(i64::MAX));
        assert_eq!(Value::from(u32::MAX).as_int(), Some(i64::from(u32::MAX)));
        assert_eq!(Value::from(-3i8).as_int(), Some(-3));
        assert_eq!(Value::from(true).as_int(), Some(1));
        assert_eq!(Value::from(1.5f32).as_float(), Some(1.5));
        assert_eq!(Value::from(3).as_float(), Some(3.0));
        assert_eq!(Value::from(1.5).as_int(), None);
        assert_eq!(Value::from(String::from("s")).as_str(), Some("s"));
        assert_eq!(Value::from(&String::from("s")).as_str(), Some("s"));
        assert!(Value::from(None::<i64>).is_none());
        assert!(Value::from(()).is_none());
        assert_eq!(Value::from(Some(2)).as_int(), Some(2));
        assert_eq!(Value::from(vec![1u8, 2]).repr(), "[1, 2]");
        assert_eq!(Value::from((1, "a", None::<i64>)).repr(), "(1, 'a', None)");
        assert!(matches!(Value::from(token()), Value::Proxy(t) if t == token()));

        assert_eq!(i64::try_from(Value::from(true)), Ok(1));
        assert_eq!(f64::try_from(&Value::from(2)), Ok(2.0));
        assert_eq!(bool::try_from(Value::from(false)), Ok(false));
        assert_eq!(String::try_from(Value::from("x")), Ok("x".to_owned()));
        assert_eq!(String::try_from(&Value::from("x")), Ok("x".to_owned()));
        let errors = [
            (
                i64::try_from(Value::from("1")).unwrap_err(),
                "'str' object cannot be interpreted as an integer",
            ),
            (
                f64::try_from(Value::None).unwrap_err(),
                "must be real number, not NoneType",
            ),
            (
                bool::try_from(&Value::from(1)).unwrap_err(),
                "must be bool, not int",
            ),
            (
                String::try_from(Value::from(1)).unwrap_err(),
                "must be str, not int",
            ),
            (
                String::try_from(&Value::List(vec![])).unwrap_err(),
                "must be str, not list",
            ),
        ];
        for (err, msg) in errors {
            assert_eq!(err, Error::TypeError(msg.into()));
        }
    }

    #[test]
    fn dict_from_pairs_is_pythons_dict() {
        let d = Value::dict_from_pairs([
            (Value::from(1), "a"),
            (1.0.into(), "b"),
            (true.into(), "c"),
            ("x".into(), "d"),
        ])
        .unwrap();
        assert_eq!(d.repr(), "{1: 'c', 'x': 'd'}");
        for key in [
            Value::List(vec![]),
            Value::Dict(vec![]),
            Slice::new(1, 2).into(),
        ] {
            let name = key.type_name();
            assert_eq!(
                Value::dict_from_pairs([(key, 1)]),
                Err(Error::TypeError(format!("unhashable type: '{name}'")))
            );
        }
    }

    #[test]
    fn equality_is_pythons() {
        let two53 = 1i64 << 53;
        assert_eq!(Value::from(true), Value::from(1));
        assert_eq!(Value::from(1), Value::from(1.0));
        assert_eq!(Value::from(true), Value::from(1.0));
        assert_eq!(Value::from(two53), Value::from(two53 as f64));
        assert_ne!(Value::from(two53 + 1), Value::from(two53 as f64));
        assert_ne!(Value::from(i64::MAX), Value::from(TWO_POW_63));
        assert_eq!(Value::from(i64::MIN), Value::from(-TWO_POW_63));
        assert_eq!(Value::from(0.0), Value::from(-0.0));
        assert_ne!(Value::from(f64::NAN), Value::from(f64::NAN));
        assert_ne!(Value::from("1"), Value::from(1));
        assert_ne!(Value::from("a"), Value::bytes(*b"a"));
        assert_ne!(Value::from(vec![1]), Value::Tuple(vec![1.into()]));
        assert_eq!(Value::from(vec![1]), Value::from(vec![1.0]));
        assert_ne!(Value::from(vec![1]), Value::from(vec![1, 2]));
        let ab = Value::dict_from_pairs([("a", 1), ("b", 2)]).unwrap();
        let ba = Value::dict_from_pairs([("b", 2.0), ("a", 1.0)]).unwrap();
        let bc = Value::dict_from_pairs([("b", 2), ("c", 1)]).unwrap();
        assert_eq!(ab, ba);
        assert_ne!(ab, bc);
        assert_ne!(ab, Value::dict_from_pairs([("a", 1)]).unwrap());
        // A malformed dict with an unhashable key still compares, by scanning.
        let odd = Value::Dict(vec![(Value::List(vec![]), 1.into())]);
        assert_eq!(odd, odd.clone());
        assert_eq!(Value::from(Slice::new(1, 2)), Value::from(Slice::new(1, 2)));
        assert_ne!(Value::from(Slice::new(1, 2)), Value::from(Slice::from(1..)));
        assert_eq!(Value::from(token()), Value::from(token()));
        assert_ne!(Value::None, Value::from(0));
    }

    /// Found by the `dispatch` fuzz target: a hand-built dict with an unhashable or repeated
    /// key was stored, then read back as `Corrupt`. `encode` now refuses it.
    #[test]
    fn encode_refuses_a_dict_decode_would_call_corrupt() {
        let mut out = vec![7];
        let odd = Value::Dict(vec![(Value::List(vec![]), 1.into())]);
        assert_eq!(
            odd.encode(&mut out),
            Err(Error::TypeError("unhashable type: 'list'".into()))
        );
        let twice = Value::List(vec![Value::Dict(vec![
            (1.into(), 1.into()),
            (Value::Float(1.0), 2.into()),
        ])]);
        assert!(matches!(twice.encode(&mut out), Err(Error::ValueError(_))));
        assert_eq!(out, [7], "out left as it was");
        let fine = Value::dict_from_pairs([(1, 1), (2, 2)]).unwrap();
        fine.encode(&mut out).unwrap();
        assert_eq!(Value::decode(&out[1..]).unwrap(), fine);
    }

    #[test]
    fn ordering_is_pythons() {
        let two53 = 1i64 << 53;
        let lt = |a: Value, b: Value| a.py_lt(&b).unwrap();
        assert!(!lt(Value::from(two53 + 1), Value::from(two53 as f64)));
        assert!(lt(Value::from(two53 as f64), Value::from(two53 + 1)));
        assert!(lt(Value::from(i64::MAX), Value::from(TWO_POW_63)));
        assert!(lt(Value::from(-TWO_POW_63 * 2.0), Value::from(i64::MIN)));
        assert!(!lt(Value::from(-1), Value::from(-1.5)));
        assert!(lt(Value::from(-2), Value::from(-1.5)));
        assert!(lt(Value::from(1), Value::from(1.5)));
        assert!(lt(Value::from(false), Value::from(true)));
        assert!(!lt(Value::from(f64::NAN), Value::from(1)));
        assert!(!lt(Value::from(1), Value::from(f64::NAN)));
        assert!(lt(Value::from(1), Value::from(f64::INFINITY)));
        assert!(lt(Value::from((1, "a")), Value::from((1, "b"))));
        assert!(lt(Value::from(vec![1, 2]), Value::from(vec![1, 2, 0])));
        assert!(!lt(Value::from(vec![1, 2]), Value::from(vec![1, 2])));
        assert!(lt(Value::bytes(*b"a"), Value::bytes(*b"b")));
        assert!(lt(Value::from("Z"), Value::from("a")));
        assert!(lt(Value::from("\u{e9}"), Value::from("\u{1F600}")));
        assert!(lt(Slice::new(1, 2).into(), Slice::new(1, 3).into()));
        assert!(!lt(
            Value::from(vec![Value::None]),
            Value::from(vec![Value::None])
        ));

        let unorderable = [
            (
                Value::from(vec![Value::from(1), "a".into()]),
                Value::from(vec![1, 2]),
                "str",
                "int",
            ),
            ("a".into(), 1.into(), "str", "int"),
            (1.into(), Value::None, "int", "NoneType"),
            (Value::None, Value::None, "NoneType", "NoneType"),
            (
                Value::from(vec![1]),
                Value::Tuple(vec![1.into()]),
                "list",
                "tuple",
            ),
            (Value::Dict(vec![]), Value::Dict(vec![]), "dict", "dict"),
            (
                Slice::from(..1).into(),
                Slice::new(0, 1).into(),
                "NoneType",
                "int",
            ),
        ];
        for (a, b, ta, tb) in unorderable {
            assert_eq!(
                a.py_lt(&b),
                Err(Error::TypeError(format!(
                    "'<' not supported between instances of '{ta}' and '{tb}'"
                )))
            );
        }

        // sorted([3, 1.5, True, -2, 2.0]) == [-2, True, 1.5, 2.0, 3]
        let mut items: Vec<Value> =
            vec![3.into(), 1.5.into(), true.into(), (-2).into(), 2.0.into()];
        items.sort_by(|a, b| a.py_cmp(b).unwrap());
        assert_eq!(Value::List(items).repr(), "[-2, True, 1.5, 2.0, 3]");
        assert_eq!(Value::from(f64::NAN).py_cmp(&1.into()), Ok(Ordering::Equal));
    }

    #[test]
    fn hashes_are_pythons_and_pinned() {
        let h = |v: Value| v.py_hash().unwrap();
        assert_eq!(h(1.into()), h(1.0.into()));
        assert_eq!(h(1.into()), h(true.into()));
        assert_eq!(h(0.into()), h((-0.0).into()));
        assert_eq!(h(i64::MIN.into()), h((-TWO_POW_63).into()));
        assert_ne!(h(1.into()), h(1.5.into()));
        assert_ne!(h("a".into()), h(Value::bytes(*b"a")));
        assert_eq!(h((1, "a").into()), h((1.0, "a").into()));
        assert_ne!(h((1, 2).into()), h((2, 1).into()));
        assert_ne!(h(Value::Tuple(vec![])), h(Value::None));
        assert_eq!(
            Value::from((1, vec![2])).py_hash(),
            Err(Error::TypeError("unhashable type: 'list'".into()))
        );
        assert_eq!(
            Value::Dict(vec![]).py_hash(),
            Err(Error::TypeError("unhashable type: 'dict'".into()))
        );
        assert_eq!(
            Value::from(Slice::new(1, 2)).py_hash(),
            Err(Error::TypeError("unhashable type: 'slice'".into()))
        );
        assert_ne!(
            Value::from(1).hash_with_key(1).unwrap(),
            Value::from(1).hash_with_key(2).unwrap()
        );
        // The same in every process and run: these figures must never change, since hashes
        // are stored in the arena (they did once, with the layout version: 7 dropped the
        // splitmix64 finalizer for `Mixer::finish`'s fold).
        let pinned = [
            h(1.into()),
            h("abc".into()),
            h((1, Value::None).into()),
            h(token().into()),
            Value::from("abc").hash_with_key(42).unwrap(),
        ];
        assert_eq!(
            pinned,
            [
                5427870618782941314,
                2706473988404940119,
                11841475393768609709,
                14231570634694179247,
                16181681786677723532
            ]
        );
    }

    #[test]
    fn encoding_layout() {
        assert_eq!(encoded(&Value::None), [tag::NONE]);
        assert_eq!(encoded(&true.into()), [tag::BOOL, 1]);
        assert_eq!(
            encoded(&(-2).into()),
            [tag::INT, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
        );
        assert_eq!(
            encoded(&"hé".into()),
            [tag::STR, 3, 0, 0, 0, b'h', 0xc3, 0xa9]
        );
        assert_eq!(
            encoded(&Slice::from(..-1).into()),
            [
                tag::SLICE,
                0b010,
                0xff,
                0xff,
                0xff,
                0xff,
                0xff,
                0xff,
                0xff,
                0xff
            ]
        );
        let proxy = encoded(&token().into());
        assert_eq!(proxy.len(), 1 + PROXY_LEN);
        assert_eq!(proxy.get(9..11), Some(&[1, 0][..]));
        assert_eq!(
            encoded(&Value::dict_from_pairs([(1u8, Value::None)]).unwrap()),
            [
                tag::DICT,
                1,
                0,
                0,
                0,
                tag::INT,
                1,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                tag::NONE
            ]
        );
    }

    #[test]
    fn nesting_is_bounded_both_ways() {
        assert!(Value::decode(&encoded(&nested_lists(MAX_DEPTH))).is_ok());
        let mut out = vec![7, 7];
        assert_eq!(
            nested_lists(MAX_DEPTH + 1).encode(&mut out),
            Err(Error::ValueError("value nested too deeply".into()))
        );
        assert_eq!(out, [7, 7], "a failed encode leaves the buffer as it was");

        let header = [tag::LIST, 1, 0, 0, 0];
        let deep: Vec<u8> = header
            .repeat(100_000)
            .into_iter()
            .chain([tag::NONE])
            .collect();
        assert_eq!(
            decode_error(&deep),
            ("value nested too deeply", (5 * MAX_DEPTH) as u64)
        );
    }

    #[cfg(target_pointer_width = "64")]
    #[test]
    fn lengths_beyond_u32_are_refused() {
        let mut out = Vec::new();
        assert_eq!(
            push_len(&mut out, 1 << 32, "str"),
            Err(Error::ValueError(
                "str too long to store: 4294967296 > 4294967295".into()
            ))
        );
        assert!(out.is_empty());
    }

    #[test]
    fn corrupt_input_names_what_and_where() {
        let int_one = [tag::INT, 1, 0, 0, 0, 0, 0, 0, 0];
        let float_one = 1.0f64.to_bits().to_le_bytes();
        let cases: Vec<(Vec<u8>, &str, u64)> = vec![
            (vec![], "truncated value", 0),
            (vec![99], "unknown value tag", 0),
            (vec![tag::BOOL], "truncated value", 1),
            (vec![tag::BOOL, 2], "bool byte not 0 or 1", 1),
            (vec![tag::INT, 1, 2, 3], "truncated value", 1),
            (
                vec![tag::STR, 5, 0, 0, 0, b'a'],
                "length runs past the end",
                1,
            ),
            (vec![tag::STR, 2, 0], "truncated value", 1),
            (
                vec![tag::STR, 2, 0, 0, 0, b'a', 0xff],
                "invalid UTF-8 in str",
                6,
            ),
            (vec![tag::NONE, tag::NONE], "trailing bytes after value", 1),
            (
                vec![tag::LIST, 0xff, 0xff, 0xff, 0xff],
                "length runs past the end",
                1,
            ),
            (vec![tag::TUPLE, 1, 0, 0, 0], "length runs past the end", 1),
            (
                vec![tag::TUPLE, 1, 0, 0, 0, tag::INT, 1, 2, 3],
                "truncated value",
                6,
            ),
            (
                vec![tag::DICT, 1, 0, 0, 0, tag::NONE],
                "length runs past the end",
                1,
            ),
            (
                vec![tag::DICT, 1, 0, 0, 0, tag::LIST, 0, 0, 0, 0, tag::NONE],
                "unhashable dict key",
                5,
            ),
            (
                [
                    &[tag::DICT, 2, 0, 0, 0][..],
                    &int_one,
                    &[tag::NONE, tag::FLOAT],
                    &float_one,
                    &[tag::NONE],
                ]
                .concat(),
                "duplicate dict key",
                15,
            ),
            (vec![tag::SLICE, 8], "bad slice flags", 1),
            (vec![tag::SLICE, 1, 0, 0, 0], "truncated value", 2),
            (vec![tag::PROXY, 0, 0, 0], "truncated value", 1),
        ];
        for (bytes, what, offset) in cases {
            assert_eq!(decode_error(&bytes), (what, offset), "{bytes:?}");
        }
    }

    fn arb_scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::None),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::Int),
            any::<f64>().prop_map(Value::Float),
            ".{0,8}".prop_map(Value::Str),
            prop::collection::vec(any::<u8>(), 0..8).prop_map(Value::Bytes),
            any::<(Option<i64>, Option<i64>, Option<i64>)>()
                .prop_map(|(a, b, c)| Value::Slice(Slice::from_options(a, b, c))),
            any::<(u64, u16, u32, u32)>().prop_map(|(store, type_id, slot, generation)| {
                Value::Proxy(Token {
                    store,
                    type_id,
                    slot,
                    generation,
                })
            }),
        ]
    }

    fn arb_key() -> impl Strategy<Value = Value> {
        let scalar = arb_scalar()
            .prop_filter("hashable", |v| v.py_hash().is_ok())
            .boxed();
        prop_oneof![
            scalar.clone(),
            prop::collection::vec(scalar, 0..3).prop_map(Value::Tuple),
        ]
    }

    fn arb_value() -> impl Strategy<Value = Value> {
        arb_scalar().prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::List),
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Tuple),
                prop::collection::vec((arb_key(), inner), 0..8)
                    .prop_map(|pairs| Value::dict_from_pairs(pairs).unwrap()),
            ]
        })
    }

    /// Numbers that are often equal across types, and tuples of them.
    fn arb_number() -> impl Strategy<Value = Value> {
        let two53 = 1i64 << 53;
        let scalar = prop_oneof![
            (-3i64..3).prop_map(Value::Int),
            any::<bool>().prop_map(Value::Bool),
            (-6i32..6).prop_map(|n| Value::Float(f64::from(n) / 2.0)),
            prop::sample::select(vec![
                Value::Int(i64::MAX),
                Value::Int(i64::MIN),
                Value::Int(two53),
                Value::Int(two53 + 1),
                Value::Float(two53 as f64),
                Value::Float(TWO_POW_63),
                Value::Float(-TWO_POW_63),
                Value::Float(-0.0),
                Value::Float(f64::NAN),
                Value::Float(f64::INFINITY),
            ]),
        ];
        prop_oneof![
            scalar.clone(),
            prop::collection::vec(scalar, 0..3).prop_map(Value::Tuple),
        ]
    }

    /// Bytes mostly made of tags, small counts and 0xff, to reach deep into the decoder.
    fn arb_tag_soup() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(
            prop_oneof![0u8..=11, Just(0xff), Just(0x80), any::<u8>()],
            0..128,
        )
    }

    proptest! {
        #[test]
        fn encode_decode_round_trips(v in arb_value()) {
            let bytes = encoded(&v);
            prop_assert_eq!(bytes.len(), v.encoded_len());
            let back = Value::decode(&bytes).unwrap();
            // The encoding is canonical, so equal bytes mean identical values (NaN bits too).
            prop_assert_eq!(encoded(&back), bytes);
            prop_assert_eq!(back.repr(), v.repr());
        }

        #[test]
        fn decode_of_random_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            if let Ok(v) = Value::decode(&bytes) {
                prop_assert_eq!(encoded(&v), bytes);
            }
        }

        #[test]
        fn decode_of_tag_soup_never_panics(bytes in arb_tag_soup()) {
            if let Ok(v) = Value::decode(&bytes) {
                prop_assert_eq!(encoded(&v), bytes);
            }
        }

        #[test]
        fn decode_of_mutated_encodings_never_panics(
            v in arb_value(),
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0..4u8), 1..4),
        ) {
            let mut bytes = encoded(&v);
            for (at, byte, kind) in edits {
                let i = at.index(bytes.len() + 1);
                match kind {
                    0 => { if let Some(b) = bytes.get_mut(i) { *b = byte } }
                    1 => bytes.insert(i, byte),
                    2 => { if i < bytes.len() { bytes.remove(i); } }
                    _ => bytes.truncate(i),
                }
            }
            if let Ok(v) = Value::decode(&bytes) {
                prop_assert_eq!(encoded(&v), bytes);
            }
        }

        #[test]
        fn equal_numbers_hash_equal_and_order_consistently(a in arb_number(), b in arb_number()) {
            prop_assert_eq!(a == b, b == a);
            if a == b {
                prop_assert_eq!(a.py_hash().unwrap(), b.py_hash().unwrap());
                prop_assert_eq!(a.py_cmp(&b).unwrap(), Ordering::Equal);
            }
            if let (Ok(true), Ok(true)) = (a.py_lt(&b), b.py_lt(&a)) {
                prop_assert!(false, "{:?} and {:?} are each less than the other", a, b);
            }
        }

        #[test]
        fn int_float_comparison_is_exact(i in any::<i64>(), f in prop_oneof![
            any::<f64>(),
            (any::<i64>(), -2.0..2.0f64).prop_map(|(i, d)| i as f64 + d),
        ]) {
            let expected = if f.is_nan() {
                None
            } else if f.abs() >= 1e38 {
                Some(if f > 0.0 { Ordering::Less } else { Ordering::Greater })
            } else {
                // Exact in 128 bits.
                let whole = f.trunc();
                Some(i128::from(i).cmp(&(whole as i128)).then(
                    (0.0).partial_cmp(&(f - whole)).unwrap_or(Ordering::Equal),
                ))
            };
            let (vi, vf) = (Value::Int(i), Value::Float(f));
            prop_assert_eq!(vi == vf, expected == Some(Ordering::Equal));
            prop_assert_eq!(vi.py_lt(&vf).unwrap(), expected == Some(Ordering::Less));
            prop_assert_eq!(vf.py_lt(&vi).unwrap(), expected == Some(Ordering::Greater));
        }
    }
}
