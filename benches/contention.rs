//! Two real processes hammering one list and one dict: aggregate throughput of shmstore against
//! the raw floor (`benches/floor/mod.rs`: a robust, and for context a plain, process-shared
//! pthread mutex around a fixed array and an open-addressing table) under the same load.
//!
//! The bench re-executes itself (`std::env::current_exe()`) as the second process, its role in
//! `SHMSTORE_CONTENTION_ROLE`; the parent drives it over stdin/stdout, one line per run. Both
//! processes meet at a start barrier (an atomic counter in a shared mapping), then each runs the
//! phase's operation mix for the same fixed duration and counts what it did. Aggregate ops/s is
//! the sum of both counts over the duration. Each process also runs the mix alone for the
//! one-process figure. Figures are medians of several repetitions, interleaved across the
//! implementations.
//!
//! Phases (one "op" is one call):
//! - list: `append(i)`, `get(i & 1023)`, `pop()` — 3 ops per round, the list stays ≥ 1024 long;
//! - dict: `d[(7 i) & 1023] = i`, `d.get(i & 1023)` — 2 ops per round, int keys, all present.
//!
//! `cargo bench --bench contention`; `cargo bench --bench contention -- --test` (or
//! `SHMSTORE_BENCH_QUICK=1`) for a smoke run of well under a second.

#[path = "floor/mod.rs"]
mod floor;

use std::fmt::Write as _;
use std::hint::black_box;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use floor::{median, Floor, Kind};
use shmstore::{DictProxy, ListProxy, Store};

const ROLE: &str = "SHMSTORE_CONTENTION_ROLE";
const ARGS: &str = "SHMSTORE_CONTENTION_ARGS";
const N: i64 = 1024;
const MASK: u64 = N as u64 - 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Imp {
    Plain,
    Robust,
    Shm,
}

impl Imp {
    const ALL: [Imp; 3] = [Imp::Robust, Imp::Plain, Imp::Shm];
    fn name(self) -> &'static str {
        match self {
            Imp::Plain => "floor-plain",
            Imp::Robust => "floor-robust",
            Imp::Shm => "shmstore",
        }
    }
    fn parse(s: &str) -> Option<Imp> {
        Imp::ALL.into_iter().find(|i| i.name() == s)
    }
    fn label(self) -> &'static str {
        match self {
            Imp::Plain => "floor, plain pthread mutex",
            Imp::Robust => "floor, robust pthread mutex",
            Imp::Shm => "shmstore (typed calls)",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    List,
    Dict,
}

impl Phase {
    const ALL: [Phase; 2] = [Phase::List, Phase::Dict];
    fn name(self) -> &'static str {
        match self {
            Phase::List => "list",
            Phase::Dict => "dict",
        }
    }
    fn parse(s: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| p.name() == s)
    }
    fn label(self) -> &'static str {
        match self {
            Phase::List => "list append/get/pop",
            Phase::Dict => "dict set/get (int keys)",
        }
    }
}

/// Everything one process hammers: both floors and shmstore's list and dict.
struct Targets {
    plain: Floor,
    robust: Floor,
    list: ListProxy,
    dict: DictProxy,
    _store: Store,
}

impl Targets {
    /// The start barrier: each process adds one and waits for two.
    fn barrier(&self) -> &AtomicU32 {
        self.robust.ctl_word(0)
    }
    /// Set by the parent when its window ends; the child stops when it sees it.
    fn stop(&self) -> &AtomicU32 {
        self.robust.ctl_word(1)
    }
}

/// One round of `phase` on `imp`; returns the number of calls made.
#[inline]
fn round(t: &Targets, imp: Imp, phase: Phase, i: u64) -> u64 {
    let j = (i & MASK) as usize;
    let k = (i.wrapping_mul(7) & MASK) as i64;
    let fl = match imp {
        Imp::Plain => Some(&t.plain),
        Imp::Robust => Some(&t.robust),
        Imp::Shm => None,
    };
    match (phase, fl) {
        (Phase::List, Some(f)) => {
            black_box(f.append(i as i64));
            black_box(f.get(j));
            black_box(f.pop());
            3
        }
        (Phase::List, None) => {
            t.list.append(i as i64).expect("append");
            black_box(t.list.get(j as i64).expect("get"));
            black_box(t.list.pop(-1).expect("pop"));
            3
        }
        (Phase::Dict, Some(f)) => {
            black_box(f.dict_set(k, i as i64));
            black_box(f.dict_get(j as i64));
            2
        }
        (Phase::Dict, None) => {
            t.dict.insert(k, i as i64).expect("set");
            black_box(t.dict.get(j as i64).expect("get"));
            2
        }
    }
}

/// Runs rounds of `phase` on `imp` until `done()` (asked every 64 rounds); returns the calls
/// made.
fn hammer(t: &Targets, imp: Imp, phase: Phase, seed: u64, mut done: impl FnMut() -> bool) -> u64 {
    let mut ops = 0;
    let mut i = seed;
    loop {
        for _ in 0..64 {
            ops += round(t, imp, phase, i);
            i = i.wrapping_add(1);
        }
        if done() {
            return ops;
        }
    }
}

/// Runs `phase` on `imp` for `dur` from now; returns the calls made.
fn hammer_for(t: &Targets, imp: Imp, phase: Phase, seed: u64, dur: Duration) -> u64 {
    let deadline = Instant::now() + dur;
    hammer(t, imp, phase, seed, || Instant::now() >= deadline)
}

/// Arrives at the two-process start barrier and waits for the other process.
fn arrive(b: &AtomicU32) {
    // AcqRel/Acquire: each side's setup before the barrier is visible to the other after it.
    b.fetch_add(1, Ordering::AcqRel);
    let mut spins = 0u32;
    while b.load(Ordering::Acquire) < 2 {
        spins += 1;
        if spins < 1000 {
            std::hint::spin_loop();
        } else {
            // Two shared cores: let the other process run.
            std::thread::yield_now();
        }
    }
}

fn child_main(args: &str) {
    let parts: Vec<&str> = args.split('\t').collect();
    let [name, list_tok, dict_tok, plain_path, robust_path] = parts[..] else {
        panic!("child: bad arguments {args:?}");
    };
    let store = Store::open(name).expect("child: open store");
    let list = ListProxy::try_from(
        store
            .attach(&list_tok.parse().expect("list token"))
            .expect("attach list"),
    )
    .expect("list proxy");
    let dict = DictProxy::try_from(
        store
            .attach(&dict_tok.parse().expect("dict token"))
            .expect("attach dict"),
    )
    .expect("dict proxy");
    let t = Targets {
        plain: Floor::open(Path::new(plain_path), Kind::Plain),
        robust: Floor::open(Path::new(robust_path), Kind::Robust),
        list,
        dict,
        _store: store,
    };
    let stdin = std::io::stdin();
    let mut out = std::io::stdout().lock();
    writeln!(out, "READY").expect("write");
    out.flush().expect("flush");
    for line in stdin.lock().lines() {
        let line = line.expect("read command");
        let w: Vec<&str> = line.split_whitespace().collect();
        match w[..] {
            ["RUN", imp, phase] => {
                let imp = Imp::parse(imp).expect("imp");
                let phase = Phase::parse(phase).expect("phase");
                arrive(t.barrier());
                let s0 = floor::sched_ns();
                // Relaxed: the flag only ends the loop; the count is sent over the pipe.
                let ops = hammer(&t, imp, phase, 1 << 40, || {
                    t.stop().load(Ordering::Relaxed) != 0
                });
                let s1 = floor::sched_ns();
                let (run, wait) = (s1.0.saturating_sub(s0.0), s1.1.saturating_sub(s0.1));
                writeln!(out, "{ops} {run} {wait}").expect("write");
                out.flush().expect("flush");
            }
            ["EXIT"] => return,
            _ => panic!("child: bad command {line:?}"),
        }
    }
}

/// The child process, killed if the parent lets go of it early.
struct Peer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Peer {
    fn line(&mut self) -> String {
        let mut s = String::new();
        let n = self.stdout.read_line(&mut s).expect("read child");
        assert!(n > 0, "child exited early");
        s.trim().to_owned()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

struct Figure {
    phase: Phase,
    imp: Imp,
    solo: f64,
    duo: f64,
    /// The second process's share of the two-process calls (0.5 is fair).
    share: f64,
    /// CPU time each process got during the two-process window, as a fraction of the window
    /// (the lower of the two). The rest is sleeping on the lock or waiting for a CPU.
    on_cpu: f64,
    /// Time a process was runnable but waiting for a CPU (other load on the machine), as a
    /// fraction of the window (the higher of the two).
    runq: f64,
}

fn main() {
    if let Ok(args) = std::env::var(ROLE) {
        if args == "child" {
            child_main(&std::env::var(ARGS).unwrap_or_default());
            return;
        }
    }
    let quick = floor::quick_mode();
    let (dur, reps) = if quick {
        (Duration::from_millis(20), 1)
    } else {
        (Duration::from_millis(1000), 3)
    };

    let name = format!("bench-contention-{}", std::process::id());
    let store = Store::create(&name, 64 << 20).expect("create store");
    let list = store.list(0..N).expect("list");
    let dict = store.dict((0..N).map(|i| (i, i))).expect("dict");
    let plain_path: PathBuf = floor::floor_path("cont-plain");
    let robust_path: PathBuf = floor::floor_path("cont-robust");
    let plain = Floor::create(&plain_path, Kind::Plain);
    let robust = Floor::create(&robust_path, Kind::Robust);
    for fl in [&plain, &robust] {
        for i in 0..N {
            assert!(fl.append(i));
            assert!(fl.dict_set(i, i));
        }
    }
    let args = [
        name.clone(),
        list.token().to_string(),
        dict.token().to_string(),
        plain_path.display().to_string(),
        robust_path.display().to_string(),
    ]
    .join("\t");
    let t = Targets {
        plain,
        robust,
        list,
        dict,
        _store: store,
    };

    let mut child = Command::new(std::env::current_exe().expect("current_exe"))
        .env(ROLE, "child")
        .env(ARGS, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn child");
    let stdin = child.stdin.take().expect("stdin");
    let stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut peer = Peer {
        child,
        stdin,
        stdout,
    };
    assert_eq!(peer.line(), "READY");

    let started = Instant::now();
    let mut results = Vec::new();
    for phase in Phase::ALL {
        let mut solo: Vec<Vec<f64>> = vec![Vec::new(); Imp::ALL.len()];
        let mut duo: Vec<Vec<f64>> = vec![Vec::new(); Imp::ALL.len()];
        let mut share: Vec<Vec<f64>> = vec![Vec::new(); Imp::ALL.len()];
        let mut on_cpu: Vec<Vec<f64>> = vec![Vec::new(); Imp::ALL.len()];
        let mut runq: Vec<Vec<f64>> = vec![Vec::new(); Imp::ALL.len()];
        // Warm-up: both processes, every implementation, briefly.
        for imp in Imp::ALL {
            run_duo(&t, &mut peer, imp, phase, dur / 10);
        }
        for _ in 0..reps {
            for (k, imp) in Imp::ALL.into_iter().enumerate() {
                let t0 = Instant::now();
                let n = hammer_for(&t, imp, phase, 0, dur);
                solo[k].push(n as f64 / t0.elapsed().as_secs_f64());
                let d = run_duo(&t, &mut peer, imp, phase, dur);
                let total = d.mine + d.theirs;
                duo[k].push(total as f64 / d.window);
                share[k].push(d.theirs as f64 / total.max(1) as f64);
                on_cpu[k].push(d.cpu_min / d.window);
                runq[k].push(d.runq_max / d.window);
            }
        }
        for (k, imp) in Imp::ALL.into_iter().enumerate() {
            let r = Figure {
                phase,
                imp,
                solo: median(&mut solo[k]),
                duo: median(&mut duo[k]),
                share: median(&mut share[k]),
                on_cpu: median(&mut on_cpu[k]),
                runq: median(&mut runq[k]),
            };
            eprintln!(
                "{:<24} {:<28} 1 process {:>12} ops/s   2 processes {:>12} ops/s",
                phase.label(),
                imp.label(),
                fmt_rate(r.solo),
                fmt_rate(r.duo)
            );
            results.push(r);
        }
    }
    writeln!(peer.stdin, "EXIT").expect("exit child");
    let status = peer.child.wait().expect("wait child");
    assert!(status.success(), "child failed: {status}");
    let elapsed = started.elapsed().as_secs_f64();
    drop(t);
    let _ = Store::remove(&name);

    let md = markdown(&results, quick, dur, reps);
    println!("\n{md}");
    let dir = floor::target_dir();
    let _ = std::fs::write(dir.join("contention.md"), &md);
    let _ = std::fs::write(
        dir.join("contention.json"),
        json(&results, quick, dur, reps),
    );
    eprintln!(
        "wrote {} and {} ({elapsed:.1} s)",
        dir.join("contention.md").display(),
        dir.join("contention.json").display()
    );
}

/// What one two-process run did.
struct Duo {
    mine: u64,
    theirs: u64,
    /// The parent's window, seconds (barrier to stop flag).
    window: f64,
    /// The lower of the two processes' CPU time in the window, seconds.
    cpu_min: f64,
    /// The higher of the two processes' time waiting for a CPU in the window, seconds.
    runq_max: f64,
}

/// One two-process run: tells the child to start, meets it at the barrier, hammers for `dur`,
/// then raises the stop flag and collects the child's count.
fn run_duo(t: &Targets, peer: &mut Peer, imp: Imp, phase: Phase, dur: Duration) -> Duo {
    // The child is idle (it answered the last run), so nobody touches the words now.
    t.barrier().store(0, Ordering::Release);
    t.stop().store(0, Ordering::Release);
    writeln!(peer.stdin, "RUN {} {}", imp.name(), phase.name()).expect("command child");
    peer.stdin.flush().expect("flush");
    arrive(t.barrier());
    let t0 = Instant::now();
    let s0 = floor::sched_ns();
    let mine = hammer_for(t, imp, phase, 0, dur);
    t.stop().store(1, Ordering::Relaxed);
    let window = t0.elapsed().as_secs_f64();
    let s1 = floor::sched_ns();
    let (run, wait) = (s1.0.saturating_sub(s0.0), s1.1.saturating_sub(s0.1));
    let line = peer.line();
    let w: Vec<u64> = line
        .split_whitespace()
        .map(|x| x.parse().expect("child answer"))
        .collect();
    let [theirs, their_run, their_wait] = w[..] else {
        panic!("child answer {line:?}");
    };
    Duo {
        mine,
        theirs,
        window,
        cpu_min: run.min(their_run) as f64 / 1e9,
        runq_max: wait.max(their_wait) as f64 / 1e9,
    }
}

fn fmt_rate(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2} M", x / 1e6)
    } else {
        format!("{:.0} k", x / 1e3)
    }
}

fn find(rs: &[Figure], phase: Phase, imp: Imp) -> Option<&Figure> {
    rs.iter().find(|r| r.phase == phase && r.imp == imp)
}

fn markdown(rs: &[Figure], quick: bool, dur: Duration, reps: usize) -> String {
    let mut s = String::new();
    s.push_str(
        "| workload | implementation | 1 process (ops/s) | 2 processes, aggregate (ops/s) \
         | 2 procs / 1 proc | second process's share | on CPU | waiting for a CPU | aggregate / robust floor's |\n\
         |---|---|--:|--:|--:|--:|--:|--:|--:|\n",
    );
    for r in rs {
        let base = find(rs, r.phase, Imp::Robust).map_or(f64::NAN, |b| b.duo);
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {:.2}× | {:.0}% | {:.0}% | {:.0}% | {:.2}× |",
            r.phase.label(),
            r.imp.label(),
            fmt_rate(r.solo),
            fmt_rate(r.duo),
            r.duo / r.solo,
            r.share * 100.0,
            r.on_cpu * 100.0,
            r.runq * 100.0,
            r.duo / base
        );
    }
    let _ = writeln!(
        s,
        "\n- {} ms per run, median of {reps} run(s) per cell, repetitions interleaved across \
         implementations{}; one op = one call (list: append, get, pop; dict: set, get). \
         In the two-process window: on CPU = the lower of the two processes' CPU time, \
         waiting for a CPU = the higher of their run-queue waits (other load on the machine), \
         both over the window (from /proc/thread-self/schedstat); the rest is sleeping on the \
         lock.",
        dur.as_millis(),
        if quick { " (quick mode)" } else { "" }
    );
    s
}

fn json(rs: &[Figure], quick: bool, dur: Duration, reps: usize) -> String {
    let mut s = String::from("{\n");
    let _ = writeln!(s, "  \"quick\": {quick},");
    let _ = writeln!(s, "  \"run_ms\": {},", dur.as_millis());
    let _ = writeln!(s, "  \"repetitions\": {reps},");
    s.push_str("  \"unit\": \"ops/s, median\",\n  \"rows\": [\n");
    for (k, r) in rs.iter().enumerate() {
        let base = find(rs, r.phase, Imp::Robust).map_or(f64::NAN, |b| b.duo);
        let _ = write!(
            s,
            "    {{\"workload\": \"{}\", \"implementation\": \"{}\", \"one_process\": {:.0}, \
             \"two_processes\": {:.0}, \"second_process_share\": {:.3}, \
             \"on_cpu\": {:.3}, \"waiting_for_cpu\": {:.3}, \"over_robust_floor\": {:.3}}}",
            r.phase.name(),
            r.imp.name(),
            r.solo,
            r.duo,
            r.share,
            r.on_cpu,
            r.runq,
            r.duo / base
        );
        s.push_str(if k + 1 < rs.len() { ",\n" } else { "\n" });
    }
    s.push_str("  ]\n}\n");
    s
}
