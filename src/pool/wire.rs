//! The pool's messages, as plain [`Value`]s that travel through the store's own queues.
//!
//! ```text
//! task queue    (job, start)                           a chunk's key: a hint to claim it
//!               None                                   stop (one per worker, after close)
//! chunks dict   (job, start) -> (job, start, name, [args tuple, …])   a chunk not claimed yet
//!               (job, start) -> ("claimed", wid)       the chunk a worker has claimed
//! result queue  ("ready", wid, pid)                    a worker attached and initialized
//!               ("done", job, start, [outcome, …])     a chunk's outcomes, in its order
//!               ("init-error", wid, error)             the initializer failed; worker exits
//! outcome       (True, value) | (False, error)
//! error         (kind, payload)                        kind as `Error::kind`
//! ```
//!
//! The messages are ours, but they are read from shared memory: a malformed one gives a
//! `RuntimeError`, never a panic.

use crate::error::{Error, Result};
use crate::value::Value;

/// A chunk of calls of one task, as the chunks dict holds it until a worker claims it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Task {
    pub job: u64,
    pub start: u64,
    pub name: String,
    pub calls: Vec<Vec<Value>>,
}

/// What a worker reports on the result queue.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Report {
    Ready {
        wid: u64,
        pid: u32,
    },
    Done {
        job: u64,
        start: u64,
        outcomes: Vec<Result<Value>>,
    },
    InitError {
        wid: u64,
        error: Error,
    },
}

#[cold]
fn malformed(what: &str) -> Error {
    Error::RuntimeError(format!("malformed pool message: {what}"))
}

fn int(v: &Value) -> Option<u64> {
    v.as_int().and_then(|i| u64::try_from(i).ok())
}

/// The key of chunk (`job`, `start`) in the chunks dict.
pub(crate) fn chunk_key(job: u64, start: u64) -> Value {
    Value::Tuple(vec![ival(job), ival(start)])
}

/// A chunks-dict key: (job, start).
pub(crate) fn parse_key(v: &Value) -> Option<(u64, u64)> {
    match v {
        Value::Tuple(f) => match f.as_slice() {
            [job, start] => Some((int(job)?, int(start)?)),
            _ => None,
        },
        _ => None,
    }
}

/// The chunks-dict value of a chunk claimed by worker `wid`.
pub(crate) fn claimed(wid: u64) -> Value {
    Value::Tuple(vec![Value::from("claimed"), ival(wid)])
}

/// The worker that claimed a chunk, if the chunks-dict value `v` is a claim.
pub(crate) fn claimed_by(v: &Value) -> Option<u64> {
    match v {
        Value::Tuple(f) => match f.as_slice() {
            [Value::Str(tag), wid] if tag == "claimed" => int(wid),
            _ => None,
        },
        _ => None,
    }
}

fn ival(n: u64) -> Value {
    // Job ids, chunk starts and worker ids count up from 0 and never reach i64::MAX.
    Value::Int(i64::try_from(n).unwrap_or(i64::MAX))
}

impl Task {
    pub fn to_value(&self) -> Value {
        Value::Tuple(vec![
            ival(self.job),
            ival(self.start),
            Value::Str(self.name.clone()),
            Value::List(self.calls.iter().map(|c| Value::Tuple(c.clone())).collect()),
        ])
    }

    /// The chunk's key in the chunks dict, which the task queue carries.
    pub fn key(&self) -> Value {
        chunk_key(self.job, self.start)
    }

    /// `None` for the stop message.
    pub fn from_value(v: Value) -> Result<Option<Task>> {
        let fields = match v {
            Value::None => return Ok(None),
            Value::Tuple(f) => f,
            _ => return Err(malformed("task")),
        };
        let [job, start, name, calls] =
            <[Value; 4]>::try_from(fields).map_err(|_| malformed("task"))?;
        let (Some(job), Some(start), Value::Str(name), Value::List(calls)) =
            (int(&job), int(&start), name, calls)
        else {
            return Err(malformed("task"));
        };
        let calls = calls
            .into_iter()
            .map(|c| match c {
                Value::Tuple(args) => Ok(args),
                _ => Err(malformed("task arguments")),
            })
            .collect::<Result<_>>()?;
        Ok(Some(Task {
            job,
            start,
            name,
            calls,
        }))
    }
}

impl Report {
    pub fn to_value(&self) -> Value {
        match self {
            Report::Ready { wid, pid } => Value::Tuple(vec![
                Value::from("ready"),
                ival(*wid),
                ival(u64::from(*pid)),
            ]),
            Report::Done {
                job,
                start,
                outcomes,
            } => Value::Tuple(vec![
                Value::from("done"),
                ival(*job),
                ival(*start),
                Value::List(outcomes.iter().map(outcome_to_value).collect()),
            ]),
            Report::InitError { wid, error } => Value::Tuple(vec![
                Value::from("init-error"),
                ival(*wid),
                error_to_value(error),
            ]),
        }
    }

    pub fn from_value(v: Value) -> Result<Report> {
        let Value::Tuple(fields) = v else {
            return Err(malformed("report"));
        };
        let mut it = fields.into_iter();
        let tag = it.next().ok_or_else(|| malformed("report"))?;
        let rest: Vec<Value> = it.collect();
        match (tag.as_str(), rest.as_slice()) {
            (Some("ready"), [wid, pid]) => Ok(Report::Ready {
                wid: int(wid).ok_or_else(|| malformed("ready"))?,
                pid: int(pid)
                    .and_then(|p| u32::try_from(p).ok())
                    .ok_or_else(|| malformed("ready"))?,
            }),
            (Some("done"), [job, start, Value::List(outcomes)]) => Ok(Report::Done {
                job: int(job).ok_or_else(|| malformed("done"))?,
                start: int(start).ok_or_else(|| malformed("done"))?,
                outcomes: outcomes.iter().map(outcome_from_value).collect(),
            }),
            (Some("init-error"), [wid, error]) => Ok(Report::InitError {
                wid: int(wid).ok_or_else(|| malformed("init-error"))?,
                error: error_from_value(error),
            }),
            _ => Err(malformed("report")),
        }
    }
}

fn outcome_to_value(o: &Result<Value>) -> Value {
    match o {
        Ok(v) => Value::Tuple(vec![Value::Bool(true), v.clone()]),
        Err(e) => Value::Tuple(vec![Value::Bool(false), error_to_value(e)]),
    }
}

fn outcome_from_value(v: &Value) -> Result<Value> {
    match v {
        Value::Tuple(f) => match f.as_slice() {
            [Value::Bool(true), v] => Ok(v.clone()),
            [Value::Bool(false), e] => Err(error_from_value(e)),
            _ => Err(malformed("outcome")),
        },
        _ => Err(malformed("outcome")),
    }
}

/// An error as `(kind, payload)`: Python-style errors keep their message (a `KeyError` its
/// key), so they come back equal; shmstore's structured errors come back as a `RuntimeError`
/// naming their kind.
pub(crate) fn error_to_value(e: &Error) -> Value {
    let payload = match e {
        Error::KeyError(k) => k.clone(),
        Error::IndexError(m)
        | Error::ValueError(m)
        | Error::TypeError(m)
        | Error::AttributeError(m)
        | Error::RuntimeError(m)
        | Error::OverflowError(m)
        | Error::NotFound(m)
        | Error::AlreadyExists(m)
        | Error::PermissionDenied(m) => Value::Str(m.clone()),
        other => Value::Str(other.to_string()),
    };
    Value::Tuple(vec![Value::from(e.kind()), payload])
}

/// The inverse of [`error_to_value`].
pub(crate) fn error_from_value(v: &Value) -> Error {
    let Value::Tuple(f) = v else {
        return malformed("error");
    };
    let [Value::Str(kind), payload] = f.as_slice() else {
        return malformed("error");
    };
    let msg = payload
        .as_str()
        .map_or_else(|| payload.repr(), str::to_owned);
    match kind.as_str() {
        "KeyError" => Error::KeyError(payload.clone()),
        "IndexError" => Error::IndexError(msg),
        "ValueError" => Error::ValueError(msg),
        "TypeError" => Error::TypeError(msg),
        "AttributeError" => Error::AttributeError(msg),
        "RuntimeError" => Error::RuntimeError(msg),
        "OverflowError" => Error::OverflowError(msg),
        "NotFound" => Error::NotFound(msg),
        "AlreadyExists" => Error::AlreadyExists(msg),
        "PermissionDenied" => Error::PermissionDenied(msg),
        "Empty" => Error::Empty,
        "Full" => Error::Full,
        "Timeout" => Error::Timeout,
        "BrokenBarrierError" => Error::BrokenBarrier,
        "OwnerDied" => Error::OwnerDied,
        _ => Error::RuntimeError(format!("{kind}: {msg}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let t = Task {
            job: 3,
            start: 8,
            name: "square".into(),
            calls: vec![vec![Value::Int(1)], vec![Value::from("a"), Value::None]],
        };
        assert_eq!(Task::from_value(t.to_value()), Ok(Some(t)));
        assert_eq!(Task::from_value(Value::None), Ok(None));
        assert!(Task::from_value(Value::Int(1)).is_err());

        let reports = [
            Report::Ready { wid: 2, pid: 77 },
            Report::Done {
                job: 1,
                start: 0,
                outcomes: vec![
                    Ok(Value::Int(4)),
                    Err(Error::KeyError(Value::from("k"))),
                    Err(Error::IndexError("list index out of range".into())),
                    Err(Error::Empty),
                ],
            },
            Report::InitError {
                wid: 5,
                error: Error::ValueError("bad".into()),
            },
        ];
        for r in reports {
            assert_eq!(Report::from_value(r.to_value()), Ok(r));
        }
        assert!(Report::from_value(Value::from(("done", 1))).is_err());
    }

    #[test]
    fn structured_errors_come_back_as_runtime_errors() {
        let e = Error::OutOfMemory {
            requested: 10,
            available: 2,
        };
        assert_eq!(
            error_from_value(&error_to_value(&e)),
            Error::RuntimeError(format!("OutOfMemory: {e}"))
        );
    }
}
