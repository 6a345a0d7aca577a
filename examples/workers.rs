//! The demo: several worker processes share one list through a store.
//!
//! The parent creates a store and a list bound as "results", then starts N copies of this
//! program in worker mode. Each worker opens the store, looks the list up by name, and appends
//! its items (one typed call each), reading back the length every 100 items. The parent waits
//! for them, checks that every item arrived exactly once, and prints what happened and how fast.
//!
//! ```sh
//! cargo run --release --example workers -- --workers 4 --items 100000
//! ```

use std::process::{Command, ExitCode};
use std::time::Instant;

use clap::Parser;
use shmstore::{ListProxy, Store, Value};

#[derive(Parser, Debug)]
#[command(about = "Worker processes sharing a list through a shmstore arena")]
struct Args {
    /// Number of worker processes (default: the number of cores).
    #[arg(long)]
    workers: Option<usize>,
    /// Items each worker appends.
    #[arg(long, default_value_t = 50_000)]
    items: usize,
    /// Internal: run as worker number N of the store named by --store.
    #[arg(long, hide = true)]
    worker: Option<usize>,
    /// Internal: the store's name.
    #[arg(long, hide = true)]
    store: Option<String>,
}

fn worker(store_name: &str, id: usize, items: usize) -> shmstore::Result<()> {
    let store = Store::open(store_name)?;
    let list: ListProxy = store.lookup("results")?.try_into()?;
    for i in 0..items {
        list.append((id * items + i) as i64)?;
        if i % 100 == 0 {
            list.len()?;
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let (Some(id), Some(name)) = (args.worker, args.store.as_deref()) {
        return match worker(name, id, args.items) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("worker {id}: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let workers = args
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let total = workers * args.items;
    let name = format!("demo-{}", std::process::id());
    // 16 cells of 16 bytes per item leave ample room for the list's doubling growth.
    let size = (total * 64).max(4 << 20);
    let store = Store::create(&name, size)?;
    let list = store.list(Vec::<Value>::new())?;
    store.bind("results", &list)?;
    println!(
        "store '{name}': {} MiB, {workers} worker processes × {} appends",
        size >> 20,
        args.items
    );

    let exe = std::env::current_exe()?;
    let start = Instant::now();
    let mut children = Vec::new();
    for id in 0..workers {
        children.push(
            Command::new(&exe)
                .args(["--worker", &id.to_string(), "--store", &name])
                .args(["--items", &args.items.to_string()])
                .spawn()?,
        );
    }
    let mut failed = 0;
    for mut c in children {
        if !c.wait()?.success() {
            failed += 1;
        }
    }
    let elapsed = start.elapsed();
    if failed > 0 {
        return Err(format!("{failed} worker(s) failed").into());
    }

    let items = list.iter()?;
    let mut seen = vec![false; total];
    for v in items {
        let i = i64::try_from(v)? as usize;
        if i >= total || std::mem::replace(&mut seen[i], true) {
            return Err(format!("item {i} is out of range or appears twice").into());
        }
    }
    let missing = seen.iter().filter(|s| !**s).count();
    if missing > 0 {
        return Err(format!("{missing} items are missing").into());
    }
    let ops = total + total / 100;
    let stats = store.stats()?;
    println!(
        "all {total} items arrived exactly once; {ops} store operations in {:.3} s \
         ({:.2} M ops/s across processes, process start-up included)",
        elapsed.as_secs_f64(),
        ops as f64 / elapsed.as_secs_f64() / 1e6
    );
    println!(
        "arena: {} KiB in use of {} KiB, {} objects live",
        stats.bytes_in_use >> 10,
        stats.heap_bytes >> 10,
        stats.objects_live
    );
    store.unbind("results")?;
    Ok(())
}
