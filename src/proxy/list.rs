//! `ListProxy`: the typed proxy of a shared `list`, and the `Store::list` factory.

use std::sync::Arc;

use super::{Handle, Proxy};
use crate::dispatch;
use crate::error::{Error, Result};
use crate::store::Store;
use crate::token::type_ids;
use crate::types::{list, Ctx};
use crate::value::{Slice, Value};

/// A proxy of a shared `list`.
#[derive(Clone)]
pub struct ListProxy {
    h: Arc<Handle>,
}
proxy_common!(ListProxy {
    tag: "list",
    new: "store.list([3, 1, 2])?",
    call: ("index", "(2,)", "[Value::Int(2)]" => "Value::Int(2)"),
    kw: r#"assert_eq!(p.call_method_kw("sort", (), &[("reverse", Value::Bool(true))])?, Value::None);
assert_eq!(p.to_str()?, "[3, 2, 1]");"#,
    value: "Value::from(vec![3, 1, 2])",
    str: r#"assert_eq!(p.to_str()?, "[3, 1, 2]");"#,
    typeid: "list",
});

impl From<ListProxy> for Proxy {
    fn from(p: ListProxy) -> Proxy {
        Proxy { h: p.h }
    }
}

impl TryFrom<Proxy> for ListProxy {
    type Error = Error;
    fn try_from(p: Proxy) -> Result<ListProxy> {
        Ok(ListProxy {
            h: p.into_handle_of(type_ids::LIST)?,
        })
    }
}

impl ListProxy {
    #[inline]
    fn with<R>(&self, f: impl FnOnce(&mut Ctx<'_>) -> Result<R>) -> Result<R> {
        dispatch::with_object(&self.h.core, &self.h.token, f)
    }

    /// `len(l)`.
    ///
    /// # Errors
    /// `Corrupt` if the list's memory fails a check.
    #[inline]
    pub fn len(&self) -> Result<usize> {
        // Lock-free when no write is under way (see `dispatch::read_optimistic`).
        if let Some(n) = dispatch::read_optimistic(&self.h.core, &self.h.token, list::len_racy) {
            return Ok(n as usize);
        }
        self.with(|c| list::len(c).map(|n| n as usize))
    }

    /// `len(l) == 0`.
    ///
    /// # Errors
    /// As [`Self::len`].
    #[inline]
    pub fn is_empty(&self) -> Result<bool> {
        self.len().map(|n| n == 0)
    }

    /// `l[index]` (negative indices count from the end).
    ///
    /// # Errors
    /// `IndexError("list index out of range")`.
    #[inline]
    pub fn get(&self, index: i64) -> Result<Value> {
        // A scalar is read lock-free when no write is under way; anything else takes the lock.
        let h = &self.h;
        if let Some(c) =
            dispatch::read_optimistic(&h.core, &h.token, |a, b| list::get_racy(a, b, index))
        {
            if let Some(v) = list::scalar_of(&h.core, &c) {
                return Ok(v);
            }
        }
        self.with(|c| list::get(c, index))
    }

    /// `l[index] = v`.
    ///
    /// # Errors
    /// `IndexError("list assignment index out of range")`, `OutOfMemory`.
    #[inline]
    pub fn set(&self, index: i64, v: impl Into<Value>) -> Result<()> {
        let v = v.into();
        self.with(|c| list::set(c, index, &v))
    }

    /// `l.append(v)`.
    ///
    /// # Errors
    /// `OutOfMemory` when the arena is full (the list is unchanged).
    #[inline]
    pub fn append(&self, v: impl Into<Value>) -> Result<()> {
        let v = v.into();
        self.with(|c| list::append(c, &v))
    }

    /// `l.extend(items)`.
    ///
    /// # Errors
    /// `OutOfMemory` (the list is unchanged).
    pub fn extend<I: IntoIterator<Item = V>, V: Into<Value>>(&self, items: I) -> Result<()> {
        let items: Vec<Value> = items.into_iter().map(Into::into).collect();
        self.with(|c| list::extend(c, &items))
    }

    /// `l.insert(index, v)`.
    ///
    /// # Errors
    /// `OutOfMemory`.
    pub fn insert(&self, index: i64, v: impl Into<Value>) -> Result<()> {
        let v = v.into();
        self.with(|c| list::insert(c, index, &v))
    }

    /// `l.pop(index)`; `l.pop()` is `pop(-1)`.
    ///
    /// # Errors
    /// `IndexError("pop from empty list")`, `IndexError("pop index out of range")`.
    pub fn pop(&self, index: i64) -> Result<Value> {
        self.with(|c| list::pop(c, index))
    }

    /// `l.remove(v)`.
    ///
    /// # Errors
    /// `ValueError("list.remove(x): x not in list")`.
    pub fn remove(&self, v: impl Into<Value>) -> Result<()> {
        let v = v.into();
        self.with(|c| list::remove(c, &v))
    }

    /// `l.index(v)`.
    ///
    /// # Errors
    /// `ValueError("5 is not in list")`.
    pub fn index(&self, v: impl Into<Value>) -> Result<usize> {
        let v = v.into();
        self.with(|c| list::index(c, &v, None, None).map(|i| i as usize))
    }

    /// `l.count(v)`.
    ///
    /// # Errors
    /// `Corrupt` only.
    pub fn count(&self, v: impl Into<Value>) -> Result<usize> {
        let v = v.into();
        self.with(|c| list::count(c, &v).map(|i| i as usize))
    }

    /// `v in l`.
    ///
    /// # Errors
    /// `Corrupt` only.
    pub fn contains(&self, v: impl Into<Value>) -> Result<bool> {
        let v = v.into();
        self.with(|c| list::index(c, &v, None, None).map(|_| true))
            .or_else(|e| match e {
                Error::ValueError(_) => Ok(false),
                e => Err(e),
            })
    }

    /// `l[s]`: a copy of the selected items.
    ///
    /// # Errors
    /// `ValueError("slice step cannot be zero")`.
    pub fn slice(&self, s: impl Into<Slice>) -> Result<Vec<Value>> {
        let s = s.into();
        self.with(|c| list::slice(c, &s))
    }

    /// A snapshot of every item, taken under one lock (one call, where CPython's iterator makes
    /// one round trip per item).
    ///
    /// # Errors
    /// `Corrupt` only.
    pub fn iter(&self) -> Result<std::vec::IntoIter<Value>> {
        self.with(list::items).map(Vec::into_iter)
    }

    /// `l.clear()`.
    ///
    /// # Errors
    /// `Corrupt` only.
    pub fn clear(&self) -> Result<()> {
        self.with(list::clear)
    }

    /// `l.reverse()`.
    ///
    /// # Errors
    /// `OutOfMemory`.
    pub fn reverse(&self) -> Result<()> {
        self.with(list::reverse)
    }

    /// `l.sort(reverse=descending)`.
    ///
    /// # Errors
    /// `TypeError` for items Python cannot order (the list is unchanged).
    pub fn sort(&self, descending: bool) -> Result<()> {
        self.with(|c| list::sort(c, descending))
    }
}

/// A list seen under its lock, for several operations in one critical section
/// ([`ListProxy::with_lock`]).
pub struct ListView<'a, 'c> {
    ctx: &'a mut Ctx<'c>,
}

impl ListView<'_, '_> {
    /// `len(l)`.
    ///
    /// # Errors
    /// `Corrupt` only.
    pub fn len(&mut self) -> Result<usize> {
        list::len(self.ctx).map(|n| n as usize)
    }
    /// `len(l) == 0`.
    ///
    /// # Errors
    /// `Corrupt` only.
    pub fn is_empty(&mut self) -> Result<bool> {
        self.len().map(|n| n == 0)
    }
    /// `l[index]`.
    ///
    /// # Errors
    /// `IndexError`.
    pub fn get(&mut self, index: i64) -> Result<Value> {
        list::get(self.ctx, index)
    }
    /// `l[index] = v`.
    ///
    /// # Errors
    /// `IndexError`, `OutOfMemory`.
    pub fn set(&mut self, index: i64, v: impl Into<Value>) -> Result<()> {
        list::set(self.ctx, index, &v.into())
    }
    /// `l.append(v)`.
    ///
    /// # Errors
    /// `OutOfMemory`.
    pub fn append(&mut self, v: impl Into<Value>) -> Result<()> {
        list::append(self.ctx, &v.into())
    }
    /// `l.pop(index)`.
    ///
    /// # Errors
    /// `IndexError`.
    pub fn pop(&mut self, index: i64) -> Result<Value> {
        list::pop(self.ctx, index)
    }
    /// `l.insert(index, v)`.
    ///
    /// # Errors
    /// `OutOfMemory`.
    pub fn insert(&mut self, index: i64, v: impl Into<Value>) -> Result<()> {
        list::insert(self.ctx, index, &v.into())
    }
    /// A copy of every item.
    ///
    /// # Errors
    /// `Corrupt` only.
    pub fn items(&mut self) -> Result<Vec<Value>> {
        list::items(self.ctx)
    }
}

impl ListProxy {
    /// Runs `f` with the list's lock held, so several operations form one atomic step (what
    /// CPython's proxies cannot do: there `l[0] += 1` is a get and a set).
    ///
    /// # Errors
    /// What `f` returns.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-withlock-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// let l = store.list([10])?;
    /// l.with_lock(|v| {
    ///     let x = i64::try_from(v.get(0)?)?;
    ///     v.set(0, x + 1)
    /// })?;
    /// assert_eq!(l.get(0)?, shmstore::Value::Int(11));
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn with_lock<R>(&self, f: impl FnOnce(&mut ListView<'_, '_>) -> Result<R>) -> Result<R> {
        self.with(|ctx| f(&mut ListView { ctx }))
    }
}

impl Store {
    /// A new shared list holding `items`.
    ///
    /// # Errors
    /// `OutOfMemory`, `TableFull`; `StaleHandle`/`NotFound` for a proxy item that is dead or of
    /// another store.
    ///
    /// # Examples
    /// ```
    /// # let name = format!("doc-list-{}", std::process::id());
    /// # let store = shmstore::Store::create(&name, 1 << 20)?;
    /// use shmstore::Value;
    /// let l = store.list(vec![Value::from("a"), Value::from(2)])?;
    /// l.append(3.5)?;
    /// assert_eq!(l.get(-1)?, Value::Float(3.5));
    /// # Ok::<(), shmstore::Error>(())
    /// ```
    pub fn list<I, V>(&self, items: I) -> Result<ListProxy>
    where
        I: IntoIterator<Item = V>,
        V: Into<Value>,
    {
        let items: Vec<Value> = items.into_iter().map(Into::into).collect();
        let token = list::create(self.core(), &items)?;
        Ok(ListProxy {
            h: self.adopt(token),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;

    /// A holder that dies mid-write leaves the sequence odd: lock-free reads give up, the next
    /// locked call repairs (closing the write), and reads are lock-free again.
    #[test]
    fn a_writer_dead_mid_write_sends_readers_to_the_lock_until_repaired() {
        let name = format!("t{}-seq-dead-writer", std::process::id());
        let store = Store::create(&name, 1 << 20).unwrap();
        let l = store.list([1i64, 2, 3]).unwrap();
        let core = &l.h.core;
        let token = l.h.token;
        std::thread::scope(|s| {
            s.spawn(|| {
                let (guard, _) = core.table().lock(token.slot, None).unwrap();
                std::mem::forget(core.table().write_begin(token.slot).unwrap());
                std::mem::forget(guard); // the thread ends holding the lock, mid-write
            })
            .join()
            .unwrap();
        });
        let seq = core.table().seq(token.slot).unwrap();
        assert_eq!(seq.load(Ordering::Relaxed) & 1, 1);
        assert_eq!(
            dispatch::read_optimistic(core, &token, list::len_racy),
            None
        );
        assert_eq!(l.len().unwrap(), 3); // the locked path: OwnerDied, repaired
        assert_eq!(seq.load(Ordering::Relaxed) & 1, 0);
        assert_eq!(
            dispatch::read_optimistic(core, &token, list::len_racy),
            Some(3)
        );
        l.append(4).unwrap();
        assert_eq!(l.get(-1).unwrap(), Value::Int(4));
        drop(l);
        drop(store);
        let _ = Store::remove(&name);
    }
}
