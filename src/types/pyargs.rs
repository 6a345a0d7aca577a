//! Argument checks with the wording of the two other kinds of Python callables the manager
//! types expose: slot wrappers (`ns.__getattribute__`, `a.__getitem__`) and methods written in
//! Python (`Value.get`, `Namespace.__repr__`). [`super::bind_args`] covers builtin methods.
//!
//! # Examples
//! ```
//! use shmstore::types::pyargs::{function, wrapper};
//! use shmstore::Value;
//! // ns.__getattribute__('x'): a slot wrapper of one argument.
//! let args = [Value::from("x")];
//! let [name] = wrapper::<1>("__getattribute__", &args, &[])?;
//! assert_eq!(name, &Value::from("x"));
//! // def set(self, value): a method written in Python.
//! let kwargs = [("value", Value::Int(1))];
//! let [value] = function("Value.set", &[], &kwargs, ["value"])?;
//! assert_eq!(value, &Value::Int(1));
//! # Ok::<(), shmstore::Error>(())
//! ```

use crate::error::{Error, Result};
use crate::value::Value;

/// Checks the arguments of slot wrapper `name` taking exactly `N` positional arguments.
///
/// # Errors
/// `TypeError("wrapper __getitem__() takes no keyword arguments")`,
/// `TypeError("expected 1 argument, got 0")` (CPython words the two-argument wrappers
/// `" expected 2 arguments, got 1"`, with a leading space, and so do we).
///
/// # Examples
/// ```
/// use shmstore::types::pyargs::wrapper;
/// use shmstore::{Error, Value};
/// let args = [Value::Int(0)];
/// assert_eq!(wrapper::<1>("__getitem__", &args, &[])?, &[Value::Int(0)]);
/// assert_eq!(
///     wrapper::<1>("__getitem__", &args, &[("i", Value::Int(0))]).map(|_| ()),
///     Err(Error::TypeError("wrapper __getitem__() takes no keyword arguments".into()))
/// );
/// assert_eq!(
///     wrapper::<1>("__getitem__", &[], &[]).map(|_| ()),
///     Err(Error::TypeError("expected 1 argument, got 0".into()))
/// );
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn wrapper<'v, const N: usize>(
    name: &str,
    args: &'v [Value],
    kwargs: &[(&str, Value)],
) -> Result<&'v [Value; N]> {
    if !kwargs.is_empty() {
        return Err(Error::TypeError(format!(
            "wrapper {name}() takes no keyword arguments"
        )));
    }
    <&[Value; N]>::try_from(args).map_err(|_| {
        let n = args.len();
        Error::TypeError(if N >= 2 {
            format!(" expected {N} arguments, got {n}")
        } else {
            format!(
                "expected {N} argument{}, got {n}",
                if N == 1 { "" } else { "s" }
            )
        })
    })
}

/// Binds the arguments of a method written in Python, `def qualname(self, names...)`, every
/// parameter required.
///
/// # Errors
/// `TypeError` with Python's wording: "Value.get() takes 1 positional argument but 2 were
/// given", "Value.set() missing 1 required positional argument: 'value'", "… got an
/// unexpected keyword argument 'x'", "… got multiple values for argument 'value'".
///
/// # Examples
/// ```
/// use shmstore::types::pyargs::function;
/// use shmstore::{Error, Value};
/// assert_eq!(
///     function("Value.set", &[], &[], ["value"]).map(|_| ()),
///     Err(Error::TypeError("Value.set() missing 1 required positional argument: 'value'".into()))
/// );
/// assert_eq!(
///     function("Value.get", &[Value::Int(1)], &[], []).map(|_| ()),
///     Err(Error::TypeError("Value.get() takes 1 positional argument but 2 were given".into()))
/// );
/// ```
pub fn function<'v, const N: usize>(
    qualname: &str,
    args: &'v [Value],
    kwargs: &'v [(&str, Value)],
    names: [&str; N],
) -> Result<[&'v Value; N]> {
    if args.len() > N {
        return Err(Error::TypeError(format!(
            "{qualname}() takes {} positional argument{} but {} were given",
            N + 1,
            if N == 0 { "" } else { "s" },
            args.len() + 1
        )));
    }
    let mut out: [Option<&Value>; N] = [None; N];
    for (slot, a) in out.iter_mut().zip(args) {
        *slot = Some(a);
    }
    for (k, v) in kwargs {
        match names
            .iter()
            .position(|n| n == k)
            .and_then(|i| out.get_mut(i))
        {
            Some(slot @ None) => *slot = Some(v),
            Some(Some(_)) => {
                return Err(Error::TypeError(format!(
                    "{qualname}() got multiple values for argument '{k}'"
                )))
            }
            None => {
                return Err(Error::TypeError(format!(
                    "{qualname}() got an unexpected keyword argument '{k}'"
                )))
            }
        }
    }
    let missing: Vec<&str> = names
        .iter()
        .zip(&out)
        .filter(|(_, v)| v.is_none())
        .map(|(n, _)| *n)
        .collect();
    if !missing.is_empty() {
        let quoted: Vec<String> = missing.iter().map(|n| format!("'{n}'")).collect();
        let list = match quoted.as_slice() {
            [one] => one.clone(),
            [init @ .., last] => format!("{} and {last}", init.join(", ")),
            [] => String::new(),
        };
        return Err(Error::TypeError(format!(
            "{qualname}() missing {} required positional argument{}: {list}",
            missing.len(),
            if missing.len() == 1 { "" } else { "s" }
        )));
    }
    Ok(out.map(|v| v.unwrap_or(&Value::None)))
}

/// The attribute-name argument of `__getattribute__`/`__setattr__`/`__delattr__`.
///
/// # Errors
/// `TypeError("attribute name must be string, not 'int'")`.
///
/// # Examples
/// ```
/// use shmstore::types::pyargs::attr_name;
/// use shmstore::{Error, Value};
/// assert_eq!(attr_name(&Value::from("x"))?, "x");
/// assert_eq!(
///     attr_name(&Value::Int(1)),
///     Err(Error::TypeError("attribute name must be string, not 'int'".into()))
/// );
/// # Ok::<(), shmstore::Error>(())
/// ```
pub fn attr_name(v: &Value) -> Result<&str> {
    match v {
        Value::Str(s) => Ok(s),
        other => Err(Error::TypeError(format!(
            "attribute name must be string, not '{}'",
            other.type_name()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wordings_match_cpython() {
        let one = [Value::Int(1)];
        assert_eq!(
            wrapper::<0>("__len__", &one, &[]).err(),
            Some(Error::TypeError("expected 0 arguments, got 1".into()))
        );
        assert_eq!(
            wrapper::<2>("__setattr__", &one, &[]).err(),
            Some(Error::TypeError(" expected 2 arguments, got 1".into()))
        );
        assert_eq!(
            function::<0>("Value.get", &one, &[], []).err(),
            Some(Error::TypeError(
                "Value.get() takes 1 positional argument but 2 were given".into()
            ))
        );
        assert_eq!(
            function::<1>("Value.set", &[], &[], ["value"]).err(),
            Some(Error::TypeError(
                "Value.set() missing 1 required positional argument: 'value'".into()
            ))
        );
    }
}
