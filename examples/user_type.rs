//! A user-registered type shared by three processes — the analog of CPython's
//!
//! ```python
//! class Counter:
//!     def record(self, x): ...
//! BaseManager.register("Counter", Counter)
//! ```
//!
//! `Counter` is a `#[repr(C)]` plain-data struct with methods by name. The parent registers it,
//! creates one in a store, binds it as "counter", and starts two copies of this program as
//! children (`user_type child <store> <id>`). Each child registers the same type — the store
//! checks that its registration matches — looks the counter up, records 1,000 values through
//! `call_method` and typed `with_lock` calls, and exits. The parent prints the result.
//!
//! ```sh
//! cargo run --example user_type
//! ```

use std::process::{Command, ExitCode};

use bytemuck::{Pod, Zeroable};
use shmstore::{Store, UserProxy, UserType, Value};

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct Counter {
    hits: u64,
    total: f64,
}

/// `record(x)`: counts one value and adds it to the total; returns the new count.
fn record(c: &mut Counter, args: &[Value]) -> shmstore::Result<Value> {
    let [x] = shmstore::types::bind_args("record", args, &[], ["x"], 1)?;
    let x = x.map_or(Ok(0.0), f64::try_from)?;
    c.hits += 1;
    c.total += x;
    Ok(Value::from(c.hits))
}

/// `mean()`: the mean of the recorded values (0.0 when none).
fn mean(c: &mut Counter, _: &[Value]) -> shmstore::Result<Value> {
    Ok(Value::from(if c.hits == 0 {
        0.0
    } else {
        c.total / c.hits as f64
    }))
}

/// The registration: the same in every process (the store refuses one that differs).
fn register() -> shmstore::Result<()> {
    shmstore::register(
        UserType::<Counter>::new("Counter")
            .method("record", record)
            .method("mean", mean)
            .method("hits", |c, _| Ok(Value::from(c.hits)))
            .display(|c| format!("Counter(hits={}, total={:?})", c.hits, c.total)),
    )
}

const PER_CHILD: u64 = 1000;

fn child(store_name: &str, id: &str) -> shmstore::Result<()> {
    let store = Store::open(store_name)?;
    let counter: UserProxy<Counter> = store.lookup("counter")?.try_into()?;
    for i in 0..PER_CHILD {
        if i % 2 == 0 {
            // By name, as CPython's proxy._callmethod("record", (1.0,)).
            counter.call_method("record", (1.0,))?;
        } else {
            // Typed and in place: two fields updated under one lock acquisition.
            counter.with_lock(|c| {
                c.hits += 1;
                c.total += 1.0;
            })?;
        }
    }
    println!("child {id}: done, hits now {}", counter.get()?.hits);
    Ok(())
}

fn parent() -> shmstore::Result<()> {
    let name = format!("user-type-example-{}", std::process::id());
    let store = Store::create(&name, 1 << 20)?;
    let counter = store.user("Counter", Counter::zeroed())?;
    store.bind("counter", &counter)?;
    println!("created {counter:?}: {counter}");
    let exe = std::env::current_exe().map_err(|e| shmstore::Error::Os {
        op: "current_exe",
        errno: e.raw_os_error().unwrap_or(0),
    })?;
    let children: Vec<_> = (0..2)
        .map(|id| {
            Command::new(&exe)
                .args(["child", &name, &id.to_string()])
                .spawn()
        })
        .collect();
    let mut ok = true;
    for c in children {
        ok &= c.and_then(|mut c| c.wait()).is_ok_and(|s| s.success());
    }
    if !ok {
        return Err(shmstore::Error::RuntimeError("a child failed".into()));
    }
    println!("final: {counter}");
    println!("mean: {}", counter.call_method("mean", ())?);
    let c = counter.get()?;
    if c.hits != 2 * PER_CHILD {
        return Err(shmstore::Error::RuntimeError(format!(
            "expected {} hits, got {}",
            2 * PER_CHILD,
            c.hits
        )));
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let run = register().and_then(|()| match args.get(1).map(String::as_str) {
        Some("child") if args.len() == 4 => child(&args[2], &args[3]),
        _ => parent(),
    });
    match run {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("user_type: {e}");
            ExitCode::FAILURE
        }
    }
}
