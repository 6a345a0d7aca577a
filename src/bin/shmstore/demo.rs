//! The demo: a word count across worker processes through one store.
//!
//! The parent makes a store holding a bounded queue of text chunks, a dict of word counts, a
//! barrier and two counters, and starts N copies of this program as workers. It generates a
//! corpus (deterministic, Zipf-like word frequencies) and puts it on the queue chunk by chunk;
//! each worker takes chunks, counts their words locally, and adds each count into the shared dict
//! (`DictProxy::add`, one atomic call per distinct word per chunk). Workers meet at the barrier
//! when the queue is drained. The parent shows progress, then prints the top words, how many
//! operations went through the store and at what rate, runs the same count in this one process
//! with no store, checks that both agree, and compares the two.

use std::collections::HashMap;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use shmstore::{BarrierProxy, DictProxy, Error, QueueProxy, Store, Value, ValueProxy};

/// Options of `shmstore demo`.
#[derive(Args, Clone, Debug)]
pub struct DemoArgs {
    /// Worker processes (default: the number of cores).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Lines of generated text.
    #[arg(long, default_value_t = 500_000)]
    pub lines: usize,
    /// Lines per chunk put on the queue.
    #[arg(long, default_value_t = 2_000)]
    pub chunk: usize,
}

impl Default for DemoArgs {
    fn default() -> Self {
        DemoArgs {
            workers: None,
            lines: 500_000,
            chunk: 2_000,
        }
    }
}

/// Vocabulary: short syllable words, enough for a long tail.
fn word(i: u64) -> String {
    const SYL: [&str; 16] = [
        "ka", "lo", "mi", "ne", "su", "ta", "ri", "po", "an", "el", "or", "us", "de", "vi", "ho",
        "ba",
    ];
    let mut n = i;
    let mut w = String::new();
    loop {
        w.push_str(SYL[(n % 16) as usize]);
        n /= 16;
        if n == 0 {
            return w;
        }
    }
}

/// Line `i` of the corpus: 8–15 words, ranks drawn with a Zipf-like skew (splitmix64).
fn line(i: u64, vocab: &[String], out: &mut String) {
    let mut x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0xdead_beef;
    let mut next = || {
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let n = 8 + next() % 8;
    for k in 0..n {
        // Squaring a uniform draw skews toward low ranks (frequent words).
        let u = (next() >> 11) as f64 / (1u64 << 53) as f64;
        let rank = ((u * u * u) * vocab.len() as f64) as usize;
        if k > 0 {
            out.push(' ');
        }
        out.push_str(&vocab[rank.min(vocab.len() - 1)]);
    }
    out.push('\n');
}

fn count_into(text: &str, counts: &mut HashMap<String, i64>) {
    for w in text.split_ascii_whitespace() {
        *counts.entry(w.to_owned()).or_insert(0) += 1;
    }
}

struct Objects {
    queue: QueueProxy,
    counts: DictProxy,
    barrier: BarrierProxy,
    ops: ValueProxy,
    done: ValueProxy,
}

fn objects(store: &Store) -> shmstore::Result<Objects> {
    Ok(Objects {
        queue: store.lookup("chunks")?.try_into()?,
        counts: store.lookup("counts")?.try_into()?,
        barrier: store.lookup("barrier")?.try_into()?,
        ops: store.lookup("ops")?.try_into()?,
        done: store.lookup("done")?.try_into()?,
    })
}

/// One worker: take chunks until the end marker, add counts, meet at the barrier.
pub fn worker(store_name: &str) -> shmstore::Result<()> {
    let store = Store::open(store_name)?;
    let o = objects(&store)?;
    let mut ops = 0i64;
    loop {
        let item = o.queue.get()?;
        ops += 1;
        let Value::Str(text) = item else { break };
        let mut local = HashMap::new();
        count_into(&text, &mut local);
        for (w, n) in local {
            o.counts.add(w, n)?;
            ops += 1;
        }
        o.done.add(1)?;
        ops += 1;
    }
    o.ops.add(ops + 1)?;
    o.barrier.wait(Some(Duration::from_secs(600)))?;
    Ok(())
}

/// Kills the workers if the demo stops early.
struct Workers(Vec<Child>);
impl Drop for Workers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            if let Ok(None) = c.try_wait() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

/// The whole demo.
pub fn run(args: &DemoArgs) -> shmstore::Result<()> {
    let workers = args
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1);
    let chunk = args.chunk.max(1);
    let vocab: Vec<String> = (0..5_000).map(word).collect();
    let name = format!("demo-{}", std::process::id());
    let store = Store::create(&name, 256 << 20)?;
    let queue = store.queue(4 * workers)?;
    let counts = store.dict(Vec::<(Value, Value)>::new())?;
    let barrier = store.barrier(workers + 1)?;
    let ops = store.value(0)?;
    let done = store.value(0)?;
    store.bind("chunks", &queue)?;
    store.bind("counts", &counts)?;
    store.bind("barrier", &barrier)?;
    store.bind("ops", &ops)?;
    store.bind("done", &done)?;
    let chunks = args.lines.div_ceil(chunk);
    println!(
        "shmstore demo: {workers} worker processes count the words of {} generated lines \
         ({chunks} chunks of {chunk}) into one shared dict",
        args.lines
    );

    let exe = std::env::current_exe().map_err(|e| Error::RuntimeError(e.to_string()))?;
    let mut procs = Workers(Vec::new());
    let start = Instant::now();
    for _ in 0..workers {
        let child = Command::new(&exe)
            .args(["demo-worker", &name])
            .spawn()
            .map_err(|e| Error::RuntimeError(format!("starting a worker: {e}")))?;
        procs.0.push(child);
    }

    let bar = ProgressBar::new(chunks as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} chunks  {elapsed_precise}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut text = String::new();
    let mut puts = 0i64;
    for c in 0..chunks {
        text.clear();
        let first = c * chunk;
        for i in first..(first + chunk).min(args.lines) {
            line(i as u64, &vocab, &mut text);
        }
        queue.put(text.as_str())?;
        puts += 1;
        bar.set_position(i64::try_from(done.get()?).unwrap_or(0) as u64);
    }
    for _ in 0..workers {
        queue.put(Value::None)?;
        puts += 1;
    }
    // Progress while the workers drain the queue (display only: completion is the barrier).
    loop {
        let d = i64::try_from(done.get()?).unwrap_or(0) as u64;
        bar.set_position(d);
        if d >= chunks as u64 {
            break;
        }
        if procs
            .0
            .iter_mut()
            .any(|c| matches!(c.try_wait(), Ok(Some(s)) if !s.success()))
        {
            return Err(Error::RuntimeError("a worker failed".into()));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    barrier.wait(Some(Duration::from_secs(600)))?;
    let elapsed = start.elapsed();
    bar.finish_and_clear();
    for c in &mut procs.0 {
        let status = c
            .wait()
            .map_err(|e| Error::RuntimeError(format!("waiting for a worker: {e}")))?;
        if !status.success() {
            return Err(Error::RuntimeError(format!(
                "a worker exited with {status}"
            )));
        }
    }

    let shared: Vec<(String, i64)> = counts
        .items()?
        .into_iter()
        .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), i64::try_from(v).ok()?)))
        .collect();
    let total_ops = i64::try_from(ops.get()?).unwrap_or(0) + puts;

    // The same job in this process, with no store.
    let t = Instant::now();
    let mut local = HashMap::new();
    for c in 0..chunks {
        text.clear();
        let first = c * chunk;
        for i in first..(first + chunk).min(args.lines) {
            line(i as u64, &vocab, &mut text);
        }
        count_into(&text, &mut local);
    }
    let single = t.elapsed();
    let agree = shared.len() == local.len() && shared.iter().all(|(w, n)| local.get(w) == Some(n));
    if !agree {
        return Err(Error::RuntimeError(
            "the shared counts differ from the single-process count".into(),
        ));
    }

    let mut top = shared.clone();
    top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let words: i64 = shared.iter().map(|(_, n)| n).sum();
    println!("top words of {words} ({} distinct):", shared.len());
    for (w, n) in top.iter().take(10) {
        println!("  {w:>12} {n:>9}");
    }
    println!(
        "{workers} processes: {:.3} s, {total_ops} store operations ({:.2} M ops/s), \
         counts identical to the single-process run",
        elapsed.as_secs_f64(),
        total_ops as f64 / elapsed.as_secs_f64() / 1e6
    );
    println!(
        "1 process, no store (a HashMap): {:.3} s; the store run took {:.2}× that, \
         worker start-up included",
        single.as_secs_f64(),
        elapsed.as_secs_f64() / single.as_secs_f64().max(1e-9)
    );
    let stats = store.stats()?;
    println!(
        "arena: {} KiB in use of {} MiB, {} objects live; attached now: {}",
        stats.bytes_in_use >> 10,
        stats.size >> 20,
        stats.objects_live,
        stats.processes_attached
    );
    Ok(())
}
