//! The write gate: every change to the store passes it, and a hot backup closes it for the
//! moment it reads the store, so that what it reads is one point in time across every tree.
//!
//! sled 0.34 has no snapshot that spans trees: an export made while writes go on could hold a
//! message's history entries without the message, or an index entry that disagrees with its
//! record. Each write method of the store holds a [`Writing`] pass while it changes sled (one
//! method's writes are one transaction or a few writes that belong together); [`WriteGate::pause`]
//! waits for the passes given out to come back, holds new ones until it is dropped, and gives
//! the reader a store that nothing changes.
//!
//! A pass is re-entrant on its thread (a write method may call another one): a thread that
//! already holds a pass of this gate is never held at it, so a pause cannot wait for a thread
//! that waits for the pause. Store methods are synchronous and hold no pass across an `.await`.

use std::cell::RefCell;
use std::sync::{Condvar, Mutex, MutexGuard};

/// See the module documentation.
#[derive(Debug, Default)]
pub(crate) struct WriteGate {
    state: Mutex<GateState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct GateState {
    /// Passes given out (outermost ones: a thread counts once).
    writers: usize,
    /// A pause holds the gate.
    paused: bool,
}

thread_local! {
    /// The gates (by address) this thread holds a pass of, outermost first.
    static HELD: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

/// A pass through the gate: writes may be made while it lives.
#[must_use]
pub(crate) struct Writing<'a> {
    gate: &'a WriteGate,
    /// This pass is the thread's outermost one for this gate (it counts among `writers`).
    outer: bool,
}

/// The gate held closed: nothing changes the store while it lives.
#[must_use]
pub(crate) struct Paused<'a> {
    gate: &'a WriteGate,
}

impl WriteGate {
    fn lock(&self) -> MutexGuard<'_, GateState> {
        // The state is two counters left consistent at every step: a panic elsewhere does not
        // spoil it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn key(&self) -> usize {
        std::ptr::from_ref(self) as usize
    }

    /// A pass for writes; waits while a pause holds the gate, unless this thread holds a pass
    /// already.
    pub(crate) fn writing(&self) -> Writing<'_> {
        let key = self.key();
        let nested = HELD.with(|h| {
            let mut h = h.borrow_mut();
            let nested = h.contains(&key);
            h.push(key);
            nested
        });
        if nested {
            return Writing {
                gate: self,
                outer: false,
            };
        }
        let mut s = self.lock();
        while s.paused {
            s = self.changed.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        s.writers += 1;
        Writing {
            gate: self,
            outer: true,
        }
    }

    /// Closes the gate: waits for another pause to end, then for every pass given out to come
    /// back. Must not be called by a thread that holds a pass (it would wait for itself).
    pub(crate) fn pause(&self) -> Paused<'_> {
        let mut s = self.lock();
        while s.paused {
            s = self.changed.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        // Set first: no new pass is given out while the ones out come back.
        s.paused = true;
        while s.writers > 0 {
            s = self.changed.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        Paused { gate: self }
    }
}

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        let key = self.gate.key();
        HELD.with(|h| {
            let mut h = h.borrow_mut();
            if let Some(i) = h.iter().rposition(|k| *k == key) {
                h.remove(i);
            }
        });
        if self.outer {
            let mut s = self.gate.lock();
            s.writers -= 1;
            if s.writers == 0 && s.paused {
                self.gate.changed.notify_all();
            }
        }
    }
}

impl Drop for Paused<'_> {
    fn drop(&mut self) {
        let mut s = self.gate.lock();
        s.paused = false;
        self.gate.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    use std::time::Duration;

    use super::*;

    /// Helpers that write only inside a transaction or a method that holds a pass already; and
    /// `health`, whose probe key is in sled's default tree, which no backup copies (a readiness
    /// check does not wait for a pause).
    const INSIDE_A_PASS: [&str; 11] = [
        "apply_plan_change",
        "count_in",
        "first_of_key",
        "health",
        "index_status",
        "insert_in",
        "remove_containing",
        "sweep_step",
        "transaction",
        "update_in",
        "write_in",
    ];

    /// Every function of the store's files that writes to sled holds a pass (or is one of
    /// the helpers above): a write method without one would slip past a backup's pause.
    /// (`seam.rs` only chooses the backend: the sled methods it calls hold their passes;
    /// `lease.rs` keeps nothing in sled.)
    #[test]
    fn every_write_method_holds_a_pass() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store");
        let mut missing = Vec::new();
        let mut gated = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "rs")
                || path.file_name().is_some_and(|n| {
                    ["format_tests.rs", "seam.rs", "lease.rs"].contains(&n.to_str().unwrap_or(""))
                })
            {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
            // Each function's text runs to the next `fn `.
            let mut parts = code.split(" fn ").skip(1);
            for part in parts.by_ref() {
                let name: String = part
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                let writes = [
                    ".insert(",
                    ".remove(",
                    ".transaction(",
                    ".apply_batch(",
                    ".compare_and_swap(",
                    ".fetch_and_update(",
                    ".update_and_fetch(",
                    ".clear()",
                ]
                .iter()
                .any(|w| part.contains(w));
                if !writes || INSIDE_A_PASS.contains(&name.as_str()) {
                    continue;
                }
                // A HashMap or HashSet of the function's own is no write to sled.
                if !part.contains("self.") && !part.contains("inner") {
                    continue;
                }
                if part.contains("self.writing()") {
                    gated += 1;
                } else {
                    missing.push(format!("{}: {name}", path.display()));
                }
            }
        }
        assert!(
            missing.is_empty(),
            "these write to the store without `let _w = self.writing();`: {missing:#?}"
        );
        assert!(gated >= 20, "{gated}");
    }

    #[test]
    fn a_pause_waits_for_writers_and_holds_new_ones() {
        let gate = Arc::new(WriteGate::default());
        let inside = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU32::new(0));
        // A writer holds its pass (nested once) for a while.
        let w = {
            let (gate, inside) = (gate.clone(), inside.clone());
            std::thread::spawn(move || {
                let _a = gate.writing();
                let _b = gate.writing();
                inside.store(true, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(150));
                inside.store(false, Ordering::SeqCst);
            })
        };
        while !inside.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        let p = gate.pause();
        assert!(
            !inside.load(Ordering::SeqCst),
            "the pause came before the writer's pass was back"
        );
        // A new writer waits for the pause to end.
        let w2 = {
            let (gate, done) = (gate.clone(), done.clone());
            std::thread::spawn(move || {
                let _a = gate.writing();
                done.fetch_add(1, Ordering::SeqCst);
            })
        };
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(
            done.load(Ordering::SeqCst),
            0,
            "a write passed a closed gate"
        );
        drop(p);
        w2.join().unwrap();
        w.join().unwrap();
        assert_eq!(done.load(Ordering::SeqCst), 1);
        // Everything came back: another pause does not wait.
        drop(gate.pause());
    }
}
