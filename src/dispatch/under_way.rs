//! Sends under way, per modem: from the moment a message is handed to the modem until its
//! outcome (with the parts' TP-MRs) is on disk.
//!
//! A status report can overtake the record of the send it reports on: the modem answers
//! `+CMGS`, the network's report follows at once on the same line, and the report reaches the
//! store before the dispatcher has written the TP-MR it would be matched by. The report's
//! handler asks [`SendsUnderWay::recorded`] to wait for the sends begun before it to be
//! recorded, so such a report is matched, not kept as unmatched.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

/// Sends begun and sends recorded, per modem (a modem sends one message at a time, so a send
/// is recorded before the next one begins).
#[derive(Default)]
pub struct SendsUnderWay {
    counts: Mutex<HashMap<String, Counts>>,
    recorded: Notify,
}

#[derive(Default, Clone, Copy)]
struct Counts {
    begun: u64,
    recorded: u64,
}

/// A send under way: recorded (or given up) when dropped.
pub struct UnderWay {
    sends: Arc<SendsUnderWay>,
    modem: String,
}

impl Drop for UnderWay {
    fn drop(&mut self) {
        if let Ok(mut c) = self.sends.counts.lock()
            && let Some(n) = c.get_mut(&self.modem)
        {
            n.recorded += 1;
        }
        self.sends.recorded.notify_waiters();
    }
}

impl SendsUnderWay {
    /// A send through `modem` begins; it counts as recorded when the guard is dropped.
    pub fn begin(self: &Arc<Self>, modem: &str) -> UnderWay {
        if let Ok(mut c) = self.counts.lock() {
            c.entry(modem.to_string()).or_default().begun += 1;
        }
        UnderWay {
            sends: self.clone(),
            modem: modem.to_string(),
        }
    }

    /// Whether a send through `modem` is under way now.
    pub fn busy(&self, modem: &str) -> bool {
        self.counts
            .lock()
            .ok()
            .and_then(|c| c.get(modem).map(|n| n.recorded < n.begun))
            .unwrap_or(false)
    }

    /// Waits until every send through `modem` begun before this call is recorded, for `limit`
    /// at most. `false` when the limit passed first.
    pub async fn recorded(&self, modem: &str, limit: Duration) -> bool {
        let target = match self.counts.lock() {
            Ok(c) => c.get(modem).map_or(0, |n| n.begun),
            Err(_) => return true,
        };
        let done = || {
            self.counts
                .lock()
                .map(|c| c.get(modem).is_none_or(|n| n.recorded >= target))
                .unwrap_or(true)
        };
        tokio::time::timeout(limit, async {
            loop {
                let woken = self.recorded.notified();
                tokio::pin!(woken);
                woken.as_mut().enable();
                if done() {
                    return;
                }
                woken.await;
            }
        })
        .await
        .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waits_for_the_sends_begun_before_and_not_for_later_ones() {
        let sends = Arc::new(SendsUnderWay::default());
        assert!(!sends.busy("a"));
        assert!(sends.recorded("a", Duration::from_millis(1)).await);
        let first = sends.begin("a");
        assert!(sends.busy("a") && !sends.busy("b"));
        // Another modem's send holds nothing back.
        assert!(sends.recorded("b", Duration::from_millis(1)).await);
        // The send under way is waited for, up to the limit.
        assert!(!sends.recorded("a", Duration::from_millis(20)).await);
        let waiter = {
            let sends = sends.clone();
            tokio::spawn(async move { sends.recorded("a", Duration::from_secs(10)).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        drop(first);
        assert!(waiter.await.unwrap());
        assert!(!sends.busy("a"));
        // A send begun after the wait began is not waited for.
        let second = sends.begin("a");
        let waiter = {
            let sends = sends.clone();
            tokio::spawn(async move { sends.recorded("a", Duration::from_secs(10)).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let _third = sends.begin("a");
        drop(second);
        assert!(waiter.await.unwrap());
        assert!(sends.busy("a"), "the third is still under way");
    }
}
