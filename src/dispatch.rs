//! The static dispatch table: (type id, method id) → handler, the same in every process that
//! links this crate. A method name resolves to a [`MethodId`] once; calls by id do no string
//! work. Also the two paths every call shares: locking an object (with recovery when its last
//! holder died) and releasing references (freeing objects whose last reference went).

use crate::core::Core;
use crate::error::{Error, Result};
use crate::sync::Acquired;
use crate::token::Token;
use crate::types::{self, Ctx, Kwargs, TypeDesc};
use crate::value::Value;

static TYPES: &[&TypeDesc] = &[
    &types::list::DESC,
    &types::semaphore::LOCK_DESC,
    &types::rlock::DESC,
    &types::semaphore::SEMAPHORE_DESC,
    &types::semaphore::BOUNDED_DESC,
    &types::condition::DESC,
    &types::event::DESC,
    &types::barrier::DESC,
];

/// The descriptor of type `id`.
///
/// # Errors
/// `Corrupt` for a type id this build does not know.
#[inline]
pub fn type_desc(id: u16) -> Result<&'static TypeDesc> {
    TYPES
        .iter()
        .find(|t| t.id == id)
        .copied()
        .ok_or(Error::corrupt("unknown type id", u64::from(id)))
}

/// A resolved method: calls through it skip the name lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MethodId {
    type_id: u16,
    index: u16,
}

impl MethodId {
    /// Resolves `name` on type `type_id`.
    ///
    /// # Errors
    /// `AttributeError("'list' object has no attribute 'x'")` for an unknown name.
    pub fn resolve(type_id: u16, name: &str) -> Result<MethodId> {
        let desc = type_desc(type_id)?;
        match desc.method_index(name) {
            Some(i) => Ok(MethodId {
                type_id,
                index: i as u16,
            }),
            None => Err(Error::AttributeError(format!(
                "'{}' object has no attribute '{name}'",
                desc.typeid
            ))),
        }
    }

    /// The method's name.
    pub fn name(&self) -> &'static str {
        type_desc(self.type_id)
            .ok()
            .and_then(|d| d.methods.get(usize::from(self.index)))
            .map_or("?", |m| m.name)
    }
}

/// Runs `f` on the object `token` names, with its lock held. A dead holder's state is repaired
/// first (and counted). References `f` released are dropped after the lock is let go.
#[inline]
pub fn with_object<R>(
    core: &Core,
    token: &Token,
    f: impl FnOnce(&mut Ctx<'_>) -> Result<R>,
) -> Result<R> {
    let table = core.table();
    let (guard, got) = table.lock(token.slot, None)?;
    let ty = table.check_live(token.slot, token.generation)?;
    if ty != token.type_id {
        return Err(Error::corrupt("object type changed", u64::from(token.slot)));
    }
    let body = table
        .body(token.slot)?
        .load(std::sync::atomic::Ordering::Relaxed);
    let desc = type_desc(ty)?;
    let mut ctx = Ctx {
        core,
        slot: token.slot,
        body,
        lock_off: table.lock_off(token.slot)?,
        repair: desc.repair,
        released: Vec::new(),
    };
    if got == Acquired::OwnerDied {
        recover(&mut ctx, desc, &guard)?;
    }
    let out = f(&mut ctx);
    drop(guard);
    if !ctx.released.is_empty() {
        release_all(core, std::mem::take(&mut ctx.released));
    }
    out
}

#[cold]
fn recover(ctx: &mut Ctx<'_>, desc: &TypeDesc, guard: &crate::table::LockGuard<'_>) -> Result<()> {
    (desc.repair)(ctx)?;
    ctx.core.note_repair();
    guard.make_consistent()
}

/// Calls method `mid` on the object with Python's positional and keyword arguments.
pub fn call(
    core: &Core,
    token: &Token,
    mid: MethodId,
    args: &[Value],
    kwargs: Kwargs<'_>,
) -> Result<Value> {
    if mid.type_id != token.type_id {
        return Err(Error::type_error(format!(
            "method {} is not a method of '{}'",
            mid.name(),
            token.typeid()
        )));
    }
    let m = type_desc(token.type_id)?
        .methods
        .get(usize::from(mid.index))
        .ok_or(Error::corrupt("method index out of range", 0))?;
    with_object(core, token, |ctx| (m.call)(ctx, args, kwargs))
}

/// Python's `str()` of the referent.
pub fn str_of(core: &Core, token: &Token) -> Result<String> {
    let desc = type_desc(token.type_id)?;
    with_object(core, token, |ctx| {
        let mut s = String::new();
        (desc.str)(ctx, &mut s)?;
        Ok(s)
    })
}

/// A deep copy of the referent.
pub fn value_of(core: &Core, token: &Token) -> Result<Value> {
    let desc = type_desc(token.type_id)?;
    with_object(core, token, |ctx| (desc.get_value)(ctx))
}

/// Drops one reference to each object in `tokens`, freeing every object whose last reference
/// this was — and, in turn, what those held (iteratively, so deep nesting cannot overflow the
/// stack). Errors are ignored: a reference that cannot be dropped is at worst a leak that
/// `reclaim` recovers.
pub fn release_all(core: &Core, mut tokens: Vec<Token>) {
    while let Some(t) = tokens.pop() {
        if let Ok(true) = core.decref(t.slot) {
            let _ = destroy(core, &t, &mut tokens);
        }
    }
}

/// Drops one reference (a proxy's); frees the object if it was the last.
pub fn release(core: &Core, token: &Token) {
    if let Ok(true) = core.decref(token.slot) {
        let mut more = Vec::new();
        let _ = destroy(core, token, &mut more);
        release_all(core, more);
    }
}

/// Frees an object no one references any more: its body, then its slot.
fn destroy(core: &Core, token: &Token, released: &mut Vec<Token>) -> Result<()> {
    let table = core.table();
    let (ty, _) = table.type_and_state(token.slot)?;
    let desc = type_desc(ty)?;
    let body = table
        .body(token.slot)?
        .load(std::sync::atomic::Ordering::Acquire);
    let mut ctx = Ctx {
        core,
        slot: token.slot,
        body,
        lock_off: table.lock_off(token.slot)?,
        repair: desc.repair,
        released: std::mem::take(released),
    };
    let freed = (desc.drop_body)(&mut ctx);
    *released = ctx.released;
    core.destroy_slot(token.slot)?;
    freed
}
