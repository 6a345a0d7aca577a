//! `shmstore`: the demo (no arguments, or `shmstore demo`), and list, inspect, check, reclaim and
//! remove shmstore segments.
//!
//! A thin client of the library's public API. Inspection (`ls`, `stat`, `check`) maps a store
//! with [`Store::open_unattached`], so looking at a store never changes who is attached to it.
//!
//! Exit status: 0 on success; 1 when `check` finds something wrong (or another operation
//! fails); 2 for a usage error, a bad name or a store that does not exist. Errors are one line
//! on stderr (and, with `--json`, an `{"error", "kind"}` object on stdout).

use std::io::Read;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde::Serialize;
use shmstore::procs::{FORKING, LIVE, RECLAIM};
use shmstore::{Error, LockHolder, Store};

mod demo;

/// Where Linux keeps POSIX shared-memory segments.
const SHM_DIR: &str = "/dev/shm";

#[derive(Parser)]
#[command(
    name = "shmstore",
    version,
    about = "Inspect and manage shmstore shared-memory stores"
)]
struct Cli {
    /// Machine-readable output (JSON on stdout).
    #[arg(long, global = true)]
    json: bool,
    /// What to do; without one, run the demo.
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// The demo (also what `shmstore` with no arguments runs): worker processes count the words
    /// of a generated corpus into one shared dict, then the same job runs in one process with no
    /// store, and both are compared.
    Demo(demo::DemoArgs),
    /// Internal: one worker of the demo.
    #[command(hide = true)]
    DemoWorker {
        /// The demo's store.
        store: String,
    },
    /// List the shmstore segments in /dev/shm: name, size, use, processes, objects.
    Ls,
    /// Show a store's header, allocator use, object table, processes and bound names.
    Stat {
        /// Segment name.
        name: String,
    },
    /// Give back what dead processes held; print what was freed.
    Reclaim {
        /// Segment name.
        name: String,
    },
    /// Remove a segment (processes attached keep their mapping).
    Rm {
        /// Segment name.
        name: String,
        /// Remove it even if its first bytes are not a shmstore header.
        #[arg(long)]
        force: bool,
    },
    /// Walk and validate everything; exit status 1 if anything is wrong.
    Check {
        /// Segment name.
        name: String,
        /// First give back what dead processes held and free what nothing reaches (mark and
        /// sweep; takes every object's lock in turn), then check.
        #[arg(long)]
        repair: bool,
    },
}

/// How a command ended, beyond its output.
enum Failure {
    /// A library error: exit 2 for not-found and bad names, 1 otherwise.
    Lib(Error),
    /// Something wrong that is not a library error (a refused `rm`, a failed check).
    Other {
        code: u8,
        kind: &'static str,
        msg: String,
    },
    /// The output already tells what is wrong (a check's report): only a line on stderr and the
    /// exit status.
    Reported { code: u8, msg: String },
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure::Lib(e)
    }
}

type CmdResult = Result<(), Failure>;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    let r = match cli.cmd.unwrap_or(Cmd::Demo(demo::DemoArgs::default())) {
        Cmd::Demo(args) => demo::run(&args).map_err(Failure::from),
        Cmd::DemoWorker { store } => demo::worker(&store).map_err(Failure::from),
        Cmd::Ls => ls(json),
        Cmd::Stat { name } => stat(&name, json),
        Cmd::Reclaim { name } => reclaim(&name, json),
        Cmd::Rm { name, force } => rm(&name, force, json),
        Cmd::Check { name, repair } => check(&name, repair, json),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            let (code, kind, msg) = match f {
                Failure::Lib(e) => {
                    let code = match e {
                        Error::NotFound(_) | Error::InvalidName { .. } => 2,
                        _ => 1,
                    };
                    (code, error_kind(&e), e.to_string())
                }
                Failure::Other { code, kind, msg } => (code, kind, msg),
                Failure::Reported { code, msg } => {
                    eprintln!("shmstore: {msg}");
                    return ExitCode::from(code);
                }
            };
            if json {
                #[derive(Serialize)]
                struct ErrorOut<'a> {
                    error: &'a str,
                    kind: &'a str,
                }
                print_json(&ErrorOut { error: &msg, kind });
            }
            eprintln!("shmstore: error: {msg}");
            ExitCode::from(code)
        }
    }
}

/// The variant name of an error (`NotFound`, `Corrupt`, …), for `--json`.
fn error_kind(e: &Error) -> &'static str {
    match e {
        Error::NotFound(_) => "NotFound",
        Error::AlreadyExists(_) => "AlreadyExists",
        Error::InvalidName { .. } => "InvalidName",
        Error::PermissionDenied(_) => "PermissionDenied",
        Error::Corrupt { .. } => "Corrupt",
        Error::Incompatible { .. } => "Incompatible",
        Error::Os { .. } => "Os",
        Error::Timeout => "Timeout",
        _ => "Error",
    }
}

fn print_json<T: Serialize>(v: &T) {
    match serde_json::to_string_pretty(v) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("shmstore: error: cannot encode JSON: {e}"),
    }
}

/// `1536` → `1.5 KiB`.
fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Nanoseconds since the Unix epoch as `YYYY-MM-DD HH:MM:SS UTC` (the civil-from-days
/// algorithm of Howard Hinnant's date library).
fn utc(ns: u64) -> String {
    let secs = ns / 1_000_000_000;
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

// ---------------------------------------------------------------------------------------------
// ls

#[derive(Serialize)]
struct LsEntry {
    name: String,
    size: u64,
    bytes_in_use: u64,
    processes: u32,
    objects: u64,
    /// Why a segment that carries our magic could not be read (another format, damage).
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// True when the file starts with shmstore's magic.
fn has_magic(path: &std::path::Path) -> bool {
    let mut word = [0u8; 8];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut word))
        .is_ok_and(|()| u64::from_le_bytes(word) == shmstore::header::MAGIC)
}

fn ls(json: bool) -> CmdResult {
    let dir = std::fs::read_dir(SHM_DIR).map_err(|e| Failure::Other {
        code: 1,
        kind: "Os",
        msg: format!("cannot read {SHM_DIR}: {e}"),
    })?;
    let mut names: Vec<String> = dir
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter(|e| has_magic(&e.path()))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    let entries: Vec<LsEntry> = names
        .into_iter()
        .map(
            |name| match Store::open_unattached(&name).and_then(|s| s.stats()) {
                Ok(st) => LsEntry {
                    name,
                    size: st.size,
                    bytes_in_use: st.bytes_in_use,
                    processes: st.processes_attached,
                    objects: st.objects_live,
                    error: None,
                },
                Err(e) => LsEntry {
                    name,
                    size: 0,
                    bytes_in_use: 0,
                    processes: 0,
                    objects: 0,
                    error: Some(e.to_string()),
                },
            },
        )
        .collect();
    if json {
        print_json(&entries);
        return Ok(());
    }
    println!(
        "{:<30}  {:>10}  {:>10}  {:>5}  {:>7}",
        "NAME", "SIZE", "IN USE", "PROCS", "OBJECTS"
    );
    for e in &entries {
        match &e.error {
            None => println!(
                "{:<30}  {:>10}  {:>10}  {:>5}  {:>7}",
                e.name,
                human(e.size),
                human(e.bytes_in_use),
                e.processes,
                e.objects
            ),
            Some(err) => println!("{:<30}  ({err})", e.name),
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// stat

#[derive(Serialize)]
struct StatOut {
    name: String,
    header: HeaderOut,
    allocator: AllocOut,
    objects: Vec<ObjectOut>,
    processes: Vec<ProcOut>,
    names: Vec<String>,
    repairs: u64,
}

#[derive(Serialize)]
struct HeaderOut {
    size: u64,
    format: String,
    store_id: String,
    creator_pid: u32,
    created_ns: u64,
    created: String,
    object_slots: u64,
    name_entries: u64,
    process_entries: u64,
    keep: bool,
}

#[derive(Serialize)]
struct AllocOut {
    heap_bytes: u64,
    bytes_in_use: u64,
    bytes_free: u64,
    blocks_in_use: u64,
    free_blocks: u64,
    largest_free: u64,
    size_classes: Vec<ClassOut>,
}

#[derive(Serialize)]
struct ClassOut {
    max_block: u64,
    blocks_in_use: u64,
    bytes_in_use: u64,
    free_blocks: u64,
    bytes_free: u64,
}

#[derive(Serialize)]
struct ObjectOut {
    slot: u32,
    generation: u32,
    #[serde(rename = "type")]
    typeid: &'static str,
    type_id: u16,
    refcount: u32,
    body: u64,
    body_size: Option<u64>,
    /// `"free"`, `"tid N"`, `"owner died"`, or `"unknown"`.
    lock: String,
    /// The holder's thread id, when one holds the lock.
    lock_owner: Option<u32>,
}

#[derive(Serialize)]
struct ProcOut {
    index: u32,
    pid: u32,
    state: &'static str,
    alive: bool,
    references: u64,
}

fn proc_state(s: u32) -> &'static str {
    match s {
        LIVE => "live",
        FORKING => "forking",
        RECLAIM => "reclaiming",
        _ => "unknown",
    }
}

fn lock_text(l: LockHolder) -> (String, Option<u32>) {
    match l {
        LockHolder::Free => ("free".into(), None),
        LockHolder::Thread(tid) => (format!("tid {tid}"), Some(tid)),
        LockHolder::OwnerDied => ("owner died".into(), None),
        LockHolder::Unknown => ("unknown".into(), None),
    }
}

fn stat(name: &str, json: bool) -> CmdResult {
    let store = Store::open_unattached(name)?;
    let h = store.header();
    let a = store.alloc_stats()?;
    let stats = store.stats()?;
    let out = StatOut {
        name: name.to_owned(),
        header: HeaderOut {
            size: h.size,
            format: format!("{:#018x}", h.format),
            store_id: format!("{:016x}", h.store_id),
            creator_pid: h.creator_pid,
            created_ns: h.created_ns,
            created: utc(h.created_ns),
            object_slots: h.table_slots,
            name_entries: h.names_cap,
            process_entries: h.procs_cap,
            keep: h.flags & shmstore::header::FLAG_KEEP != 0,
        },
        allocator: AllocOut {
            heap_bytes: a.heap_bytes,
            bytes_in_use: a.bytes_in_use,
            bytes_free: a.bytes_free,
            blocks_in_use: a.blocks_in_use,
            free_blocks: a.free_blocks,
            largest_free: a.largest_free,
            size_classes: store
                .size_classes()?
                .into_iter()
                .map(|c| ClassOut {
                    max_block: c.max_block,
                    blocks_in_use: c.blocks_in_use,
                    bytes_in_use: c.bytes_in_use,
                    free_blocks: c.free_blocks,
                    bytes_free: c.bytes_free,
                })
                .collect(),
        },
        objects: store
            .objects()?
            .into_iter()
            .map(|o| {
                let (lock, lock_owner) = lock_text(o.lock);
                ObjectOut {
                    slot: o.slot,
                    generation: o.generation,
                    typeid: o.typeid,
                    type_id: o.type_id,
                    refcount: o.refcount,
                    body: o.body,
                    body_size: o.body_size,
                    lock,
                    lock_owner,
                }
            })
            .collect(),
        processes: store
            .processes()?
            .into_iter()
            .map(|p| ProcOut {
                index: p.index,
                pid: p.pid,
                state: proc_state(p.state),
                alive: p.alive,
                references: p.references,
            })
            .collect(),
        names: store.names()?,
        repairs: stats.repairs,
    };
    if json {
        print_json(&out);
    } else {
        print_stat(&out);
    }
    Ok(())
}

fn print_stat(s: &StatOut) {
    let h = &s.header;
    println!("store {}", s.name);
    println!("  size          {} ({})", h.size, human(h.size));
    println!("  format        {}", h.format);
    println!("  store id      {}", h.store_id);
    println!("  creator pid   {}", h.creator_pid);
    println!("  created       {}", h.created);
    println!(
        "  tables        {} object slots, {} name entries, {} process entries{}",
        h.object_slots,
        h.name_entries,
        h.process_entries,
        if h.keep { ", kept when unused" } else { "" }
    );
    println!("  repairs       {}", s.repairs);
    let a = &s.allocator;
    println!("allocator");
    println!("  heap          {}", human(a.heap_bytes));
    println!(
        "  in use        {} in {} blocks",
        human(a.bytes_in_use),
        a.blocks_in_use
    );
    println!(
        "  free          {} in {} blocks, largest {}",
        human(a.bytes_free),
        a.free_blocks,
        human(a.largest_free)
    );
    println!(
        "  {:>10}  {:>8}  {:>10}  {:>8}  {:>10}",
        "BLOCK ≤", "USED", "USED BYTES", "FREE", "FREE BYTES"
    );
    for c in &a.size_classes {
        println!(
            "  {:>10}  {:>8}  {:>10}  {:>8}  {:>10}",
            human(c.max_block),
            c.blocks_in_use,
            human(c.bytes_in_use),
            c.free_blocks,
            human(c.bytes_free)
        );
    }
    println!("objects ({})", s.objects.len());
    if !s.objects.is_empty() {
        println!(
            "  {:>6}  {:<16}  {:>6}  {:>10}  {:>10}  LOCK",
            "SLOT", "TYPE", "REFS", "BODY", "BODY SIZE"
        );
    }
    for o in &s.objects {
        println!(
            "  {:>6}  {:<16}  {:>6}  {:>#10x}  {:>10}  {}",
            o.slot,
            o.typeid,
            o.refcount,
            o.body,
            o.body_size.map_or_else(|| "?".to_owned(), human),
            o.lock
        );
    }
    println!("processes ({})", s.processes.len());
    for p in &s.processes {
        println!(
            "  pid {:<8} {:<10} {:<5} {} references",
            p.pid,
            p.state,
            if p.alive { "alive" } else { "DEAD" },
            p.references
        );
    }
    println!("names ({})", s.names.len());
    for n in &s.names {
        println!("  {n}");
    }
}

// ---------------------------------------------------------------------------------------------
// reclaim

#[derive(Serialize)]
struct ReclaimOut {
    processes: u64,
    references: u64,
    bytes_freed: u64,
    objects_freed: u64,
    processes_attached: u32,
}

fn reclaim(name: &str, json: bool) -> CmdResult {
    // Unattached: `Store::open` would reclaim on its own and keep the figures to itself, and a
    // tool that attached and then detached as the last process would remove the store.
    let store = Store::open_unattached(name)?;
    let before = store.stats()?;
    let r = store.reclaim()?;
    let after = store.stats()?;
    let out = ReclaimOut {
        processes: r.processes,
        references: r.references,
        bytes_freed: before.bytes_in_use.saturating_sub(after.bytes_in_use),
        objects_freed: before.objects_live.saturating_sub(after.objects_live),
        processes_attached: after.processes_attached,
    };
    if json {
        print_json(&out);
        return Ok(());
    }
    println!(
        "reclaimed {} dead processes and {} references; freed {} objects, {} ({} bytes)",
        out.processes,
        out.references,
        out.objects_freed,
        human(out.bytes_freed),
        out.bytes_freed
    );
    if out.processes_attached == 0 {
        println!("no process is attached now; remove the store with `shmstore rm {name}`");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// rm

fn rm(name: &str, force: bool, json: bool) -> CmdResult {
    if !force {
        // Refuse a segment that holds something other than a shmstore header. An all-zero start
        // is a store whose creator died before writing its header: ours to remove.
        if let Ok(arena) = shmstore::segment::open(name) {
            if let Ok(word) = arena.load_u64(0) {
                if word != 0 && word != shmstore::header::MAGIC {
                    return Err(Failure::Other {
                        code: 2,
                        kind: "NotOurs",
                        msg: format!(
                            "{name} is not a shmstore segment (use --force to remove it anyway)"
                        ),
                    });
                }
            }
        }
    }
    Store::remove(name)?;
    if json {
        #[derive(Serialize)]
        struct RmOut<'a> {
            removed: &'a str,
        }
        print_json(&RmOut { removed: name });
    } else {
        println!("removed {name}");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// check

#[derive(Serialize)]
struct CheckOut {
    ok: bool,
    problems: Vec<String>,
    objects: u64,
    blocks: u64,
    busy: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    repaired: Option<RepairOut>,
}

#[derive(Serialize)]
struct RepairOut {
    processes_reclaimed: u64,
    references_reclaimed: u64,
    blocks_freed: u64,
    bytes_freed: u64,
    slots_relinked: u64,
    objects_freed: u64,
}

fn repair(store: &Store) -> Result<RepairOut, Error> {
    let r = store.reclaim()?;
    let m = store.repair()?;
    Ok(RepairOut {
        processes_reclaimed: r.processes,
        references_reclaimed: r.references,
        blocks_freed: m.freed_blocks,
        bytes_freed: m.freed_bytes,
        slots_relinked: m.slots_relinked,
        objects_freed: m.objects_freed,
    })
}

fn check(name: &str, do_repair: bool, json: bool) -> CmdResult {
    let mut repaired = None;
    let report = match Store::open_unattached(name) {
        Err(e @ (Error::NotFound(_) | Error::InvalidName { .. })) => return Err(e.into()),
        // A store that does not open is a store with something wrong: a report, exit 1.
        Err(e) => CheckOut {
            ok: false,
            problems: vec![format!("open: {e}")],
            objects: 0,
            blocks: 0,
            busy: 0,
            repaired: None,
        },
        Ok(store) => match (do_repair.then(|| repair(&store)).transpose(), store.check()) {
            (Err(e), _) => CheckOut {
                ok: false,
                problems: vec![format!("repair: {e}")],
                objects: 0,
                blocks: 0,
                busy: 0,
                repaired: None,
            },
            (Ok(rep), Ok(r)) => {
                repaired = rep;
                CheckOut {
                    ok: r.is_ok(),
                    problems: r.problems,
                    objects: r.objects,
                    blocks: r.blocks,
                    busy: r.busy,
                    repaired: None,
                }
            }
            (Ok(_), Err(e)) => CheckOut {
                ok: false,
                problems: vec![format!("allocator: {e}")],
                objects: 0,
                blocks: 0,
                busy: 0,
                repaired: None,
            },
        },
    };
    let report = CheckOut { repaired, ..report };
    if json {
        print_json(&report);
    } else {
        if let Some(r) = &report.repaired {
            println!(
                "repaired: {} dead processes ({} references) reclaimed, {} unreferenced objects \
                 freed, {} blocks ({} bytes) freed, {} slots relinked",
                r.processes_reclaimed,
                r.references_reclaimed,
                r.objects_freed,
                r.blocks_freed,
                r.bytes_freed,
                r.slots_relinked
            );
        }
        for p in &report.problems {
            println!("problem: {p}");
        }
        println!(
            "{}: {} objects, {} blocks checked{}",
            if report.ok { "ok" } else { "DAMAGED" },
            report.objects,
            report.blocks,
            if report.busy > 0 {
                format!(", {} objects busy (lock held; not read)", report.busy)
            } else {
                String::new()
            }
        );
    }
    if report.ok {
        Ok(())
    } else {
        // The report is the output; the exit status says it found damage.
        Err(Failure::Reported {
            code: 1,
            msg: match report.problems.len() {
                1 => format!("{name}: 1 problem found"),
                n => format!("{name}: {n} problems found"),
            },
        })
    }
}
