//! The task table: functions registered by name, the same table in every process of a pool.
//!
//! A spawned worker is a fresh run of the program, so a task cannot travel as a closure or a
//! function pointer: the parent sends the task's *name* and the worker looks it up in its own
//! table, which the program filled before calling
//! [`worker_main_if_requested`](super::worker_main_if_requested) (as Python's spawned workers
//! find a function by its module and qualified name).

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, LazyLock};

use parking_lot::RwLock;

use crate::error::{Error, Result};
use crate::value::Value;

type TaskFn = Arc<dyn Fn(Vec<Value>) -> Result<Value> + Send + Sync>;

static TASKS: LazyLock<RwLock<HashMap<String, TaskFn>>> = LazyLock::new(Default::default);

/// Registers `f` as the one-argument task `name`, callable by [`Pool::map`](super::Pool::map),
/// [`Pool::imap`](super::Pool::imap) and [`Pool::apply`](super::Pool::apply) with one argument.
/// A name registered again is replaced.
///
/// Register every task in every process of the pool — the simplest way is the same calls at
/// the top of `main`, before [`worker_main_if_requested`](super::worker_main_if_requested).
///
/// # Examples
/// ```
/// use shmstore::{pool, Error, Value};
/// pool::register("square", |v: Value| {
///     let n = i64::try_from(&v)?;
///     n.checked_mul(n)
///         .map(Value::Int)
///         .ok_or_else(|| Error::OverflowError("int too large".into()))
/// });
/// assert!(pool::is_registered("square"));
/// ```
pub fn register<F>(name: &str, f: F)
where
    F: Fn(Value) -> Result<Value> + Send + Sync + 'static,
{
    let task = name.to_owned();
    let one = move |args: Vec<Value>| match <[Value; 1]>::try_from(args) {
        Ok([v]) => f(v),
        Err(args) if args.is_empty() => Err(Error::TypeError(format!(
            "{task}() missing 1 required positional argument"
        ))),
        Err(args) => Err(Error::TypeError(format!(
            "{task}() takes 1 positional argument but {} were given",
            args.len()
        ))),
    };
    TASKS.write().insert(name.to_owned(), Arc::new(one));
}

/// Registers `f` as the task `name` taking any number of positional arguments, as
/// [`Pool::starmap`](super::Pool::starmap) and [`Pool::apply`](super::Pool::apply) pass them
/// (`map` passes one). `f` checks the count itself. A name registered again is replaced.
///
/// # Examples
/// ```
/// use shmstore::{pool, Error, Value};
/// pool::register_args("add", |args: &[Value]| match args {
///     [a, b] => Ok(Value::Int(i64::try_from(a)? + i64::try_from(b)?)),
///     _ => Err(Error::TypeError("add() takes 2 arguments".into())),
/// });
/// ```
pub fn register_args<F>(name: &str, f: F)
where
    F: Fn(&[Value]) -> Result<Value> + Send + Sync + 'static,
{
    TASKS
        .write()
        .insert(name.to_owned(), Arc::new(move |args: Vec<Value>| f(&args)));
}

/// True when a task of that name is registered in this process.
///
/// # Examples
/// ```
/// use shmstore::{pool, Value};
/// # fn main() -> shmstore::Result<()> {
/// pool::register("square", |v: Value| Ok(Value::Int(i64::try_from(&v)?.pow(2))));
/// # pool::worker_main_if_requested();
/// assert!(pool::is_registered("square"));
/// assert!(!pool::is_registered("cube"));
/// # Ok(())
/// # }
/// ```
pub fn is_registered(name: &str) -> bool {
    TASKS.read().contains_key(name)
}

/// Runs the task `name` on `args`, turning a panic into `RuntimeError`.
///
/// # Errors
/// `NotFound` for a name not registered here, `RuntimeError` for a panic, and the task's own.
pub(crate) fn run(name: &str, args: Vec<Value>) -> Result<Value> {
    // Clone the function out so the table is not locked while it runs (a task may register).
    let f = TASKS
        .read()
        .get(name)
        .cloned()
        .ok_or_else(|| not_registered(name))?;
    catch_unwind(AssertUnwindSafe(|| f(args))).unwrap_or_else(|payload| {
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_owned());
        Err(Error::RuntimeError(format!(
            "task '{name}' panicked: {msg}"
        )))
    })
}

/// The error for a task name missing from the table.
#[cold]
pub(crate) fn not_registered(name: &str) -> Error {
    Error::NotFound(format!(
        "pool task '{name}' (register it with shmstore::pool::register)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_run_by_name_and_panics_become_errors() {
        register("tasks-test-double", |v| {
            Ok(Value::Int(i64::try_from(&v)? * 2))
        });
        register_args("tasks-test-boom", |_| panic!("boom {}", 7));
        assert_eq!(
            run("tasks-test-double", vec![Value::Int(21)]),
            Ok(Value::Int(42))
        );
        assert_eq!(
            run("tasks-test-double", vec![Value::Int(1), Value::Int(2)]),
            Err(Error::TypeError(
                "tasks-test-double() takes 1 positional argument but 2 were given".into()
            ))
        );
        assert_eq!(
            run("tasks-test-boom", vec![]),
            Err(Error::RuntimeError(
                "task 'tasks-test-boom' panicked: boom 7".into()
            ))
        );
        assert!(matches!(
            run("tasks-test-none", vec![]),
            Err(Error::NotFound(_))
        ));
    }
}
