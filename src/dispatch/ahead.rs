//! Prechecks asked ahead of the send. A modem's worker that finds a reminder step whose
//! billing system must be asked starts the question in a task of its own and moves on to the
//! next message; the step is taken only once the answer is in. So a billing system that
//! answers slowly, or never, holds back its own step and nothing else.
//!
//! What is remembered here lives in memory only: after a restart a step is simply asked again.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::store::{Message, StepKind};

/// Most prechecks asked at once: each holds a connection and a task; a billing system that
/// hangs every question must not gather an unbounded number of them.
pub(super) const MAX_ASKING: usize = 16;

/// How long a "send it" stays good for the step it was given for: a step that could not go
/// out within this time (its modem went down) is asked again.
const CLEARED_FOR: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Copy)]
enum State {
    /// The question is out.
    Asking,
    /// The billing system said to send it, at this instant.
    Cleared(Instant),
}

/// The prechecks under way and the answers waiting for their step to be taken.
#[derive(Debug, Default)]
pub(super) struct Ahead {
    steps: Mutex<HashMap<String, State>>,
    cancel: CancellationToken,
    tasks: TaskTracker,
}

/// Whether a message is a reminder step (the only kind a precheck is asked for).
fn is_step(m: &Message) -> bool {
    m.reminder
        .as_ref()
        .is_some_and(|r| r.kind == StepKind::Reminder)
}

impl Ahead {
    fn steps(&self) -> MutexGuard<'_, HashMap<String, State>> {
        self.steps.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn asking(steps: &HashMap<String, State>) -> usize {
        steps
            .values()
            .filter(|s| matches!(s, State::Asking))
            .count()
    }

    /// Whether a worker passes over `m` for now: its precheck is being asked, or it is a
    /// reminder step and as many prechecks as allowed are out (it would only be started once
    /// one of them ends, which wakes the workers).
    pub(super) fn passes_over(&self, m: &Message) -> bool {
        let steps = self.steps();
        match steps.get(&m.id) {
            Some(State::Asking) => true,
            Some(State::Cleared(_)) => false,
            None => is_step(m) && Ahead::asking(&steps) >= MAX_ASKING,
        }
    }

    /// Takes the "send it" given for `id`, if it is still good.
    pub(super) fn take_cleared(&self, id: &str) -> bool {
        let mut steps = self.steps();
        match steps.get(id) {
            Some(State::Cleared(at)) => {
                let fresh = at.elapsed() < CLEARED_FOR;
                steps.remove(id);
                fresh
            }
            _ => false,
        }
    }

    /// Marks `id` as being asked; `false` when it already is, when as many prechecks as
    /// allowed are out, or when the dispatcher is stopping.
    fn begin(&self, id: &str) -> bool {
        if self.cancel.is_cancelled() {
            return false;
        }
        let mut steps = self.steps();
        steps.retain(|_, s| match s {
            State::Asking => true,
            State::Cleared(at) => at.elapsed() < CLEARED_FOR,
        });
        if steps.contains_key(id) || Ahead::asking(&steps) >= MAX_ASKING {
            return false;
        }
        steps.insert(id.to_string(), State::Asking);
        true
    }

    /// Starts `ask` for step `id`, unless [`begin`](Self::begin) says no. `ask` returns
    /// whether the step may go; the mark is removed however it ends (a panic included), and
    /// it is dropped unfinished when the dispatcher stops.
    pub(super) fn start<F>(
        self: &Arc<Self>,
        id: &str,
        ask: F,
        done: impl FnOnce() + Send + 'static,
    ) -> bool
    where
        F: Future<Output = bool> + Send + 'static,
    {
        if !self.begin(id) {
            return false;
        }
        let guard = Asking {
            ahead: self.clone(),
            id: id.to_string(),
        };
        let cancel = self.cancel.clone();
        self.tasks.spawn(async move {
            let go = tokio::select! {
                go = ask => go,
                () = cancel.cancelled() => return,
            };
            if go {
                guard.clear();
            }
            drop(guard);
            done();
        });
        true
    }

    /// Stops the prechecks under way and waits for their tasks to end.
    pub(super) async fn stop(&self) {
        self.cancel.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}

/// The mark of a precheck under way: removed when the task ends, whichever way.
struct Asking {
    ahead: Arc<Ahead>,
    id: String,
}

impl Asking {
    /// The answer was "send it": the step may be taken.
    fn clear(&self) {
        self.ahead
            .steps()
            .insert(self.id.clone(), State::Cleared(Instant::now()));
    }
}

impl Drop for Asking {
    fn drop(&mut self) {
        let mut steps = self.ahead.steps();
        if matches!(steps.get(&self.id), Some(State::Asking)) {
            steps.remove(&self.id);
        }
    }
}
