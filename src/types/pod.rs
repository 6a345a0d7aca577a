//! Plain-data elements: how a typed value or typed array records its Rust element type `T` in
//! the arena, and how elements of the primitive numeric types convert to and from [`Value`]
//! (with `array.array`'s rules and messages) so that `call_method` can reach them.
//!
//! A process that attaches a typed proxy with another `T` is refused: the arena keeps `T`'s
//! size, alignment and a fingerprint of `std::any::type_name::<T>()`. Type names are stable for
//! one build of a program; processes built by different compilers may disagree on them (and are
//! refused, never misread).
//!
//! # Examples
//! ```
//! use shmstore::types::pod::{typecode_of, ElemType, Kind};
//! assert_eq!(typecode_of::<i32>(), "i");
//! assert_eq!(ElemType::of::<f64>().kind(), Kind::F64);
//! assert_eq!(ElemType::of::<[u8; 3]>().kind(), Kind::Other); // read as bytes
//! ```

use bytemuck::{Pod, Zeroable};

use crate::error::{Error, Result};
use crate::value::Value;

/// The element type of a typed value or array, as recorded in the arena.
///
/// # Examples
/// ```
/// use shmstore::types::pod::{fingerprint, ElemType, Kind};
/// let e = ElemType::of::<u16>();
/// assert_eq!((e.size, e.align, e.kind), (2, 2, Kind::U16 as u32));
/// assert_eq!(e.fingerprint, fingerprint("u16"));
/// ```
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct ElemType {
    /// FNV-1a hash of `std::any::type_name::<T>()`.
    pub fingerprint: u64,
    /// `size_of::<T>()`.
    pub size: u32,
    /// `align_of::<T>()`.
    pub align: u32,
    /// The primitive kind ([`Kind`] as `u32`), or 0 for any other plain-data type.
    pub kind: u32,
    /// Reserved; zero.
    pub reserved: u32,
}
const _: () = assert!(size_of::<ElemType>() == 24);

/// The primitive numeric kinds that convert to and from [`Value`].
///
/// # Examples
/// ```
/// use shmstore::types::pod::Kind;
/// let k = Kind::of_name("u8");
/// assert_eq!((k, k.size(), k.typecode()), (Kind::U8, 1, Some("B")));
/// assert_eq!(Kind::from_u32(k as u32), k);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Kind {
    /// A plain-data type with no conversion (read as `bytes`).
    Other = 0,
    /// `i8` (`'b'`).
    I8 = 1,
    /// `u8` (`'B'`).
    U8 = 2,
    /// `i16` (`'h'`).
    I16 = 3,
    /// `u16` (`'H'`).
    U16 = 4,
    /// `i32` (`'i'`).
    I32 = 5,
    /// `u32` (`'I'`).
    U32 = 6,
    /// `i64` (`'q'`).
    I64 = 7,
    /// `u64` (`'Q'`).
    U64 = 8,
    /// `f32` (`'f'`).
    F32 = 9,
    /// `f64` (`'d'`).
    F64 = 10,
    /// `isize` (`'n'`).
    Isize = 11,
    /// `usize` (`'N'`).
    Usize = 12,
}

impl Kind {
    /// The kind of the type named `name` (`std::any::type_name`).
    ///
    /// # Examples
    /// ```
    /// use shmstore::types::pod::Kind;
    /// assert_eq!(Kind::of_name(std::any::type_name::<f32>()), Kind::F32);
    /// assert_eq!(Kind::of_name("my_crate::Point"), Kind::Other);
    /// ```
    pub fn of_name(name: &str) -> Kind {
        match name {
            "i8" => Kind::I8,
            "u8" => Kind::U8,
            "i16" => Kind::I16,
            "u16" => Kind::U16,
            "i32" => Kind::I32,
            "u32" => Kind::U32,
            "i64" => Kind::I64,
            "u64" => Kind::U64,
            "f32" => Kind::F32,
            "f64" => Kind::F64,
            "isize" if size_of::<isize>() == 8 => Kind::Isize,
            "usize" if size_of::<usize>() == 8 => Kind::Usize,
            _ => Kind::Other,
        }
    }

    /// The kind stored as `k`; an unknown number reads as `Other` (bytes).
    ///
    /// # Examples
    /// ```
    /// use shmstore::types::pod::Kind;
    /// assert_eq!(Kind::from_u32(5), Kind::I32);
    /// assert_eq!(Kind::from_u32(999), Kind::Other); // a scribbled number reads as bytes
    /// ```
    #[inline]
    pub fn from_u32(k: u32) -> Kind {
        use Kind::*;
        [
            Other, I8, U8, I16, U16, I32, U32, I64, U64, F32, F64, Isize, Usize,
        ]
        .get(k as usize)
        .copied()
        .unwrap_or(Other)
    }

    /// The element size this kind implies (0 for `Other`).
    ///
    /// # Examples
    /// ```
    /// use shmstore::types::pod::Kind;
    /// assert_eq!(Kind::I16.size(), 2);
    /// assert_eq!(Kind::Other.size(), 0);
    /// ```
    #[inline]
    pub fn size(self) -> u32 {
        match self {
            Kind::Other => 0,
            Kind::I8 | Kind::U8 => 1,
            Kind::I16 | Kind::U16 => 2,
            Kind::I32 | Kind::U32 | Kind::F32 => 4,
            Kind::I64 | Kind::U64 | Kind::F64 | Kind::Isize | Kind::Usize => 8,
        }
    }

    /// `array.array`'s typecode (`struct`'s for `isize`/`usize`), or None for `Other`.
    ///
    /// # Examples
    /// ```
    /// use shmstore::types::pod::Kind;
    /// assert_eq!(Kind::F64.typecode(), Some("d"));
    /// assert_eq!(Kind::Usize.typecode(), Some("N"));
    /// assert_eq!(Kind::Other.typecode(), None);
    /// ```
    pub fn typecode(self) -> Option<&'static str> {
        Some(match self {
            Kind::Other => return None,
            Kind::I8 => "b",
            Kind::U8 => "B",
            Kind::I16 => "h",
            Kind::U16 => "H",
            Kind::I32 => "i",
            Kind::U32 => "I",
            Kind::I64 => "q",
            Kind::U64 => "Q",
            Kind::F32 => "f",
            Kind::F64 => "d",
            Kind::Isize => "n",
            Kind::Usize => "N",
        })
    }
}

/// FNV-1a, 64 bits: a fingerprint of a type name (not a defence against forgery, a guard
/// against mistakes).
///
/// # Examples
/// ```
/// use shmstore::types::pod::fingerprint;
/// const F: u64 = fingerprint("u32"); // usable in constants
/// assert_eq!(F, fingerprint("u32"));
/// assert_ne!(fingerprint("u32"), fingerprint("i32"));
/// assert_eq!(fingerprint(""), 0xcbf2_9ce4_8422_2325); // FNV-1a's offset basis
/// ```
pub const fn fingerprint(s: &str) -> u64 {
    let b = s.as_bytes();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < b.len() {
        h ^= b[i] as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    h
}

/// The element record at `off` (24 bytes, 8-aligned) read without the lock, for optimistic
/// readers: `None` for words that fail a check. (Records never change after their object is
/// created; the loads are atomic only because the reader holds no lock.)
///
/// # Examples
/// ```
/// use shmstore::arena::{Arena, Offset};
/// use shmstore::types::pod::{elem_racy, ElemType};
/// let a = Arena::heap(64);
/// a.write(Offset::new(8), ElemType::of::<u32>())?;
/// assert_eq!(elem_racy(&a, 8), Some(ElemType::of::<u32>()));
/// let mut bad = ElemType::of::<u32>();
/// bad.align = 3;
/// a.write(Offset::new(32), bad)?;
/// assert_eq!(elem_racy(&a, 32), None); // fails the record's check
/// # Ok::<(), shmstore::Error>(())
/// ```
#[inline]
pub fn elem_racy(a: &crate::arena::Arena, off: u64) -> Option<ElemType> {
    let [fingerprint, sa, kr] = a.load_words_racy::<3>(off)?;
    let sa: [u32; 2] = bytemuck::cast(sa);
    let kr: [u32; 2] = bytemuck::cast(kr);
    let e = ElemType {
        fingerprint,
        size: sa[0],
        align: sa[1],
        kind: kr[0],
        reserved: kr[1],
    };
    e.validate(off).ok()?;
    Some(e)
}

impl ElemType {
    /// The record of `T`.
    ///
    /// # Examples
    /// ```
    /// use shmstore::types::pod::ElemType;
    /// #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
    /// #[repr(C)]
    /// struct Point {
    ///     x: f32,
    ///     y: f32,
    /// }
    /// let e = ElemType::of::<Point>();
    /// assert_eq!((e.size, e.align), (8, 4));
    /// assert_ne!(e, ElemType::of::<[f32; 2]>()); // same layout, another type
    /// ```
    pub fn of<T: Pod>() -> ElemType {
        let name = std::any::type_name::<T>();
        ElemType {
            fingerprint: fingerprint(name),
            size: size_of::<T>() as u32,
            align: align_of::<T>() as u32,
            kind: Kind::of_name(name) as u32,
            reserved: 0,
        }
    }

    /// The kind, checked against the size: a primitive kind whose size disagrees reads as
    /// `Other`, so a scribbled kind can never make a conversion read past an element.
    ///
    /// # Examples
    /// ```
    /// use shmstore::types::pod::{ElemType, Kind};
    /// let mut e = ElemType::of::<i64>();
    /// assert_eq!(e.kind(), Kind::I64);
    /// e.kind = Kind::I8 as u32; // a kind that disagrees with the size...
    /// assert_eq!(e.kind(), Kind::Other); // ...reads as Other, never past an element
    /// ```
    #[inline]
    pub fn kind(&self) -> Kind {
        let k = Kind::from_u32(self.kind);
        if k.size() == self.size {
            k
        } else {
            Kind::Other
        }
    }

    /// Checks the record's own invariants (size fits, alignment a power of two up to 4096).
    ///
    /// # Errors
    /// `Corrupt` when they fail.
    ///
    /// # Examples
    /// ```
    /// use shmstore::types::pod::ElemType;
    /// assert!(ElemType::of::<u64>().validate(0).is_ok());
    /// let mut bad = ElemType::of::<u64>();
    /// bad.align = 3;
    /// assert!(bad.validate(0).is_err()); // Corrupt: not a power of two
    /// ```
    pub fn validate(&self, at: u64) -> Result<()> {
        if !self.align.is_power_of_two() || self.align > 4096 || self.size & (self.align - 1) != 0 {
            return Err(Error::corrupt("bad element type record", at));
        }
        Ok(())
    }

    /// Elements of this type a stride apart (size rounded up to the alignment; at least 1 so
    /// offsets stay distinct for zero-sized types).
    ///
    /// # Examples
    /// ```
    /// use shmstore::types::pod::ElemType;
    /// assert_eq!(ElemType::of::<[u8; 3]>().stride(), 3);
    /// assert_eq!(ElemType::of::<()>().stride(), 1); // at least 1
    /// ```
    #[inline]
    pub fn stride(&self) -> u64 {
        u64::from(self.size.max(1))
    }

    /// `size` and `align` as the one word a stored record keeps them in, which lock-free
    /// readers compare with one test.
    #[inline(always)]
    pub(crate) fn size_align_word(&self) -> u64 {
        bytemuck::cast([self.size, self.align])
    }

    /// True when a stored record's words read without the lock (`fingerprint`, `size_align`)
    /// are this record's, and this record is `T`'s size and alignment: a reader may then take
    /// `T`'s constants for the stored ones.
    #[inline(always)]
    pub(crate) fn racy_words_are_of<T: Pod>(&self, fingerprint: u64, size_align: u64) -> bool {
        let t: u64 = bytemuck::cast([size_of::<T>() as u32, align_of::<T>() as u32]);
        fingerprint == self.fingerprint && size_align == t && self.size_align_word() == t
    }
}

/// Python's typecode for `T` (`"i"` for `i32`, as `array.array` names it), or for a type with
/// no typecode its Rust name (`"my_crate::Point"`).
///
/// # Examples
/// ```
/// use shmstore::types::pod::typecode_of;
/// assert_eq!(typecode_of::<u8>(), "B");
/// assert_eq!(typecode_of::<[u8; 4]>(), "[u8; 4]"); // no typecode: the Rust name
/// ```
pub fn typecode_of<T: Pod>() -> &'static str {
    let name = std::any::type_name::<T>();
    Kind::of_name(name).typecode().unwrap_or(name)
}

/// The element at `bytes` (exactly `e.size` bytes) as a [`Value`]: an int or float for the
/// primitive kinds, `bytes` for any other type.
///
/// # Errors
/// `OverflowError` for a `u64`/`usize` beyond `i64::MAX` (a [`Value::Int`] is 64-bit signed).
///
/// # Examples
/// ```
/// use shmstore::types::pod::{to_value, ElemType};
/// use shmstore::Value;
/// assert_eq!(to_value(&ElemType::of::<i16>(), &(-5i16).to_ne_bytes())?, Value::Int(-5));
/// assert_eq!(to_value(&ElemType::of::<[u8; 2]>(), b"hi")?, Value::bytes(*b"hi"));
/// assert!(to_value(&ElemType::of::<u64>(), &u64::MAX.to_ne_bytes()).is_err()); // OverflowError
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn to_value(e: &ElemType, bytes: &[u8]) -> Result<Value> {
    let kind = e.kind();
    if kind == Kind::Other {
        return Ok(Value::Bytes(bytes.to_vec()));
    }
    // A primitive: its bytes (zeros if too few were given) in the low bytes of a word.
    let mut bits = [0u8; 8];
    let n = kind.size() as usize;
    if let (Some(to), Some(from)) = (bits.get_mut(..n), bytes.get(..n)) {
        to.copy_from_slice(from);
    }
    scalar_of(kind, bits).ok_or_else(|| {
        // Only a u64 or usize beyond i64 does not convert.
        let x = u64::from_ne_bytes(bits);
        Error::OverflowError(format!("{x} does not fit a 64-bit signed int"))
    })
}

/// A primitive element's bits (its `kind.size()` first bytes, native-endian) as a `Value`,
/// converted as [`to_value`] converts it (which calls this) but without its `Result`: `None` for a `u64` or
/// `usize` beyond `i64` (the locked path reports the `OverflowError`) and for `Kind::Other`.
#[inline]
pub(crate) fn scalar_of(kind: Kind, bits: [u8; 8]) -> Option<Value> {
    macro_rules! rd {
        ($t:ty) => {
            <$t>::from_ne_bytes(bits.get(..size_of::<$t>())?.try_into().ok()?)
        };
    }
    Some(match kind {
        Kind::Other => return None,
        Kind::I8 => Value::Int(i64::from(rd!(i8))),
        Kind::U8 => Value::Int(i64::from(rd!(u8))),
        Kind::I16 => Value::Int(i64::from(rd!(i16))),
        Kind::U16 => Value::Int(i64::from(rd!(u16))),
        Kind::I32 => Value::Int(i64::from(rd!(i32))),
        Kind::U32 => Value::Int(i64::from(rd!(u32))),
        Kind::I64 | Kind::Isize => Value::Int(rd!(i64)),
        Kind::U64 | Kind::Usize => Value::Int(i64::try_from(rd!(u64)).ok()?),
        Kind::F32 => Value::Float(f64::from(rd!(f32))),
        Kind::F64 => Value::Float(rd!(f64)),
    })
}

/// Writes Python's repr of the element at `bytes` (as `array.array` prints it).
///
/// # Examples
/// ```
/// use shmstore::types::pod::{write_repr, ElemType};
/// let mut out = String::new();
/// write_repr(&ElemType::of::<f64>(), &2.0f64.to_ne_bytes(), &mut out);
/// assert_eq!(out, "2.0");
/// ```
pub fn write_repr(e: &ElemType, bytes: &[u8], out: &mut String) {
    use std::fmt::Write;
    match (e.kind(), to_value(e, bytes)) {
        (Kind::U64 | Kind::Usize, Err(_)) => {
            let mut b = [0u8; 8];
            b.copy_from_slice(bytes.get(..8).unwrap_or(&[0; 8]));
            let _ = write!(out, "{}", u64::from_ne_bytes(b));
        }
        (_, Ok(v)) => v.write_repr(out),
        (_, Err(_)) => out.push('?'),
    }
}

/// The bytes of an element of a non-primitive type: a `bytes` value of exactly its size.
///
/// # Errors
/// `TypeError("a bytes object of 12 bytes is required, not 'int'")` (or "not one of 3 bytes").
///
/// # Examples
/// ```
/// use shmstore::types::pod::{bytes_arg, ElemType};
/// use shmstore::{Error, Value};
/// let e = ElemType::of::<[u8; 3]>();
/// assert_eq!(bytes_arg(&e, &Value::bytes(*b"abc"))?, b"abc");
/// assert_eq!(
///     bytes_arg(&e, &Value::Int(1)),
///     Err(Error::TypeError("a bytes object of 3 bytes is required, not 'int'".into()))
/// );
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn bytes_arg<'v>(e: &ElemType, v: &'v Value) -> Result<&'v [u8]> {
    match v {
        Value::Bytes(b) if b.len() == e.size as usize => Ok(b),
        other => Err(Error::TypeError(format!(
            "a bytes object of {} bytes is required, not {}",
            e.size,
            match other {
                Value::Bytes(b) => format!("one of {} bytes", b.len()),
                o => format!("'{}'", o.type_name()),
            }
        ))),
    }
}

fn int_arg(v: &Value) -> Result<i64> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::Bool(b) => Ok(i64::from(*b)),
        other => Err(Error::TypeError(format!(
            "'{}' object cannot be interpreted as an integer",
            other.type_name()
        ))),
    }
}

fn float_arg(v: &Value) -> Result<f64> {
    match v {
        Value::Int(i) => Ok(*i as f64),
        Value::Bool(b) => Ok(f64::from(u8::from(*b))),
        Value::Float(f) => Ok(*f),
        other => Err(Error::TypeError(format!(
            "must be real number, not {}",
            other.type_name()
        ))),
    }
}

fn range<T: TryFrom<i64>>(x: i64, what: &str, low: &str) -> Result<T> {
    T::try_from(x).map_err(|_| {
        Error::OverflowError(if x < 0 {
            low.to_owned()
        } else {
            format!("{what} is greater than maximum")
        })
    })
}

/// Converts `v` to an element's bytes in `out` (exactly `e.size` bytes), with `array.array`'s
/// rules and messages for the primitive kinds; any other type takes `bytes` of exactly its
/// size.
///
/// # Errors
/// `TypeError("'str' object cannot be interpreted as an integer")`,
/// `TypeError("must be real number, not str")`,
/// `OverflowError("signed char is greater than maximum")` and the like; for other types
/// `TypeError("a bytes object of 12 bytes is required, not 'int'")`.
///
/// # Examples
/// ```
/// use shmstore::types::pod::{from_value, ElemType};
/// use shmstore::{Error, Value};
/// let mut out = [0u8; 1];
/// from_value(&ElemType::of::<i8>(), &Value::Int(-3), &mut out)?;
/// assert_eq!(out, (-3i8).to_ne_bytes());
/// assert_eq!(
///     from_value(&ElemType::of::<i8>(), &Value::Int(200), &mut out),
///     Err(Error::OverflowError("signed char is greater than maximum".into()))
/// );
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn from_value(e: &ElemType, v: &Value, out: &mut [u8]) -> Result<()> {
    macro_rules! put {
        ($x:expr) => {{
            let b = ($x).to_ne_bytes();
            match out.get_mut(..b.len()) {
                Some(dst) => dst.copy_from_slice(&b),
                None => return Err(Error::corrupt("element buffer too small", 0)),
            }
        }};
    }
    match e.kind() {
        Kind::Other => {
            let b = bytes_arg(e, v)?;
            match out.get_mut(..b.len()) {
                Some(dst) => dst.copy_from_slice(b),
                None => return Err(Error::corrupt("element buffer too small", 0)),
            }
        }
        Kind::I8 => put!(range::<i8>(
            int_arg(v)?,
            "signed char",
            "signed char is less than minimum"
        )?),
        Kind::U8 => put!(range::<u8>(
            int_arg(v)?,
            "unsigned byte integer",
            "unsigned byte integer is less than minimum"
        )?),
        Kind::I16 => put!(range::<i16>(
            int_arg(v)?,
            "signed short integer",
            "signed short integer is less than minimum"
        )?),
        Kind::U16 => put!(range::<u16>(
            int_arg(v)?,
            "unsigned short",
            "unsigned short is less than minimum"
        )?),
        Kind::I32 => put!(range::<i32>(
            int_arg(v)?,
            "signed integer",
            "signed integer is less than minimum"
        )?),
        Kind::U32 => put!(range::<u32>(
            int_arg(v)?,
            "unsigned int",
            "can't convert negative value to unsigned int"
        )?),
        Kind::I64 | Kind::Isize => put!(int_arg(v)?),
        Kind::U64 | Kind::Usize => put!(range::<u64>(
            int_arg(v)?,
            "unsigned long long",
            "can't convert negative int to unsigned"
        )?),
        Kind::F32 => put!(float_arg(v)? as f32),
        Kind::F64 => put!(float_arg(v)?),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitive_kinds_are_recognized_and_others_are_bytes() {
        assert_eq!(ElemType::of::<i32>().kind(), Kind::I32);
        assert_eq!(ElemType::of::<f64>().kind(), Kind::F64);
        assert_eq!(ElemType::of::<[u8; 4]>().kind(), Kind::Other);
        assert_ne!(
            ElemType::of::<i32>().fingerprint,
            ElemType::of::<u32>().fingerprint
        );
    }

    #[test]
    fn a_scribbled_kind_cannot_widen_a_read() {
        let mut e = ElemType::of::<u8>();
        e.kind = Kind::F64 as u32;
        assert_eq!(e.kind(), Kind::Other);
        e.kind = 999;
        assert_eq!(e.kind(), Kind::Other);
    }

    #[test]
    fn conversions_follow_array_array() {
        let e = ElemType::of::<i8>();
        let mut b = [0u8; 1];
        assert_eq!(
            from_value(&e, &Value::Int(200), &mut b),
            Err(Error::OverflowError(
                "signed char is greater than maximum".into()
            ))
        );
        from_value(&e, &Value::Int(-5), &mut b).unwrap();
        assert_eq!(to_value(&e, &b), Ok(Value::Int(-5)));
        let e = ElemType::of::<u64>();
        let mut b = u64::MAX.to_ne_bytes();
        assert!(matches!(to_value(&e, &b), Err(Error::OverflowError(_))));
        let mut s = String::new();
        write_repr(&e, &b, &mut s);
        assert_eq!(s, "18446744073709551615");
        assert_eq!(
            from_value(&e, &Value::Int(-1), &mut b),
            Err(Error::OverflowError(
                "can't convert negative int to unsigned".into()
            ))
        );
    }
}
