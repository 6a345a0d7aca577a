//! What a `Lock` costs after a process waiting on it is SIGKILLed:
//!
//! ```text
//! cargo run --release --example killed_waiter
//! ```
//!
//! The parent holds the lock; a child process (this program again) attaches to it and waits;
//! the parent kills the child while it sleeps, releases, and then times acquire+release every
//! 100 ms for a second. The dead waiter is still counted on the lock, so each release makes a
//! `FUTEX_WAKE` system call that wakes nobody, until the releasing process has seen that for
//! `shmstore::sync::barrier::PHANTOM_AGE` and clears the count.
use shmstore::{LockProxy, Store, Token};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn ns_per_call(lk: &LockProxy) -> f64 {
    let n = 20_000;
    let t = Instant::now();
    for _ in 0..n {
        lk.acquire(true, None).unwrap();
        lk.release().unwrap();
    }
    t.elapsed().as_nanos() as f64 / f64::from(n)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if let [_, name, token] = &args[..] {
        // The child: attach, say so, and wait on the held lock until killed.
        let store = Store::open(name)?;
        let lk = LockProxy::try_from(store.attach(&token.parse::<Token>()?)?)?;
        println!("waiting");
        lk.acquire(true, None)?;
        return Ok(());
    }
    let name = format!("killed-waiter-{}", std::process::id());
    let store = Store::create(&name, 1 << 20)?;
    // Removes the segment however this ends (a panic too, e.g. on a closed stdout).
    struct Remove<'a>(&'a str);
    impl Drop for Remove<'_> {
        fn drop(&mut self) {
            let _ = Store::remove(self.0);
        }
    }
    let _remove = Remove(&name);
    let lk = store.lock()?;
    let before = ns_per_call(&lk);
    lk.acquire(true, None)?;
    let mut child = Command::new(&args[0])
        .args([name.clone(), lk.token().to_string()])
        .stdout(Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line)?;
    // Asleep on the futex: the child's main thread in state `S` (`/proc/<pid>/stat`).
    let stat = format!("/proc/{}/stat", child.id());
    let asleep = || {
        std::fs::read_to_string(&stat).is_ok_and(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|r| r.trim_start().starts_with('S'))
        })
    };
    let start = Instant::now();
    while !asleep() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the child never slept"
        );
        std::thread::yield_now();
    }
    child.kill()?; // SIGKILL
    child.wait()?;
    lk.release()?;
    println!("acquire+release before the kill: {before:.1} ns");
    println!("after the kill (ms since the release: ns per acquire+release):");
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(1) {
        let at = start.elapsed().as_millis();
        println!("  {at:4} ms: {:.1} ns", ns_per_call(&lk));
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(lk);
    drop(store);
    Ok(())
}
