//! Named failpoints for crash tests (the `failpoints` cargo feature, off by default).
//!
//! `failpoint!("list.append.before_publish")` marks a step inside a critical section. Without the
//! feature it compiles to nothing. With it, a process whose environment variable
//! `SHMSTORE_FAILPOINT` equals the name prints the line `FAILPOINT <name>` to stdout (flushed)
//! and then blocks forever, so that a test parent that reads the line can SIGKILL it exactly
//! there, with whatever locks the step holds still held.
//!
//! The variable is read at every hit, so a child can keep it unset while it does its completed
//! operations and set it just before the operation it is to die in.
//!
//! The points: `list.append.before_publish`, `list.grow.after_alloc`,
//! `list.rebuild.before_publish`, `list.set.before_journal_clear`, `value.set.before_publish`,
//! `htable.grow.before_publish`, `htable.replace.before_journal_clear`, `alloc.mid`,
//! `table.take.mid`, `handle.drop.after_intent`, `handle.drop.after_decrement`,
//! `handle.drop.after_row`, `handle.take.after_increment`, `handle.take.after_row`,
//! `table.take.after_record`, `handle.create.before_row`,
//! `pool.worker.after_take` (`handle.take.after_increment` is also where the fork handler stops
//! taking the child's references).
//!
//! # Examples
//! ```
//! // A crash test runs a child with the variable naming the step to stop at; built with the
//! // `failpoints` feature, the child prints `FAILPOINT <name>` there and blocks until killed.
//! let mut child = std::process::Command::new("true");
//! child.env(shmstore::failpoint::ENV, "list.append.before_publish");
//! assert_eq!(shmstore::failpoint::ENV, "SHMSTORE_FAILPOINT");
//! assert!(child.status()?.success());
//! # Ok::<(), std::io::Error>(())
//! ```

/// The environment variable naming the failpoint to stop at.
pub const ENV: &str = "SHMSTORE_FAILPOINT";

/// Stops this process forever if `SHMSTORE_FAILPOINT` names `name` (after telling stdout).
#[cfg(feature = "failpoints")]
#[cold]
pub fn hit(name: &'static str) {
    if std::env::var_os(ENV).is_some_and(|v| v == name) {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        // A newline first: the test harness may have left a line unfinished.
        let _ = writeln!(out, "\nFAILPOINT {name}");
        let _ = out.flush();
        drop(out);
        loop {
            std::thread::park();
        }
    }
}

/// Marks a named failpoint; nothing without the `failpoints` feature.
macro_rules! failpoint {
    ($name:literal) => {
        #[cfg(feature = "failpoints")]
        $crate::failpoint::hit($name);
    };
}
