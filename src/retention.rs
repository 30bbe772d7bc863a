//! The retention sweep: what the gateway keeps is removed once its period is over
//! (`[retention]`, docs/compliance.md). A pass runs once a minute (and when a test's clock is
//! moved); each kind of record is looked at in bounded steps of `max_per_pass` records, and a
//! step goes on where the last one stopped, so a large backlog is worked off over several
//! passes without holding up anything else.
//!
//! Finished messages only (`delivered`, `failed`, `expired`, `cancelled`), counted from their
//! last change: a waiting, sending, sent or `unknown` message is never touched.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::store::{Store, StoreError, SweepStep};

/// How long each kind of record is kept; `None` keeps it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Policy {
    /// Finished messages' texts are replaced by their SHA-256.
    pub message_text_after: Option<Duration>,
    /// Finished messages are removed whole, with a tombstone.
    pub messages_after: Option<Duration>,
    /// Inbound messages acted on are removed.
    pub inbound_after: Option<Duration>,
    /// `Idempotency-Key` answers are removed.
    pub idempotency_after: Option<Duration>,
    /// Dead webhook deliveries are removed.
    pub dead_webhooks_after: Option<Duration>,
    /// Unmatched delivery reports are removed.
    pub unmatched_after: Option<Duration>,
    /// Records looked at, at most, per kind and per pass.
    pub max_per_pass: usize,
}

/// What one pass did, by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pass {
    /// Message texts replaced by their hash.
    pub texts_redacted: usize,
    /// Messages removed (each with a tombstone).
    pub messages_removed: usize,
    /// Inbound messages removed.
    pub inbound_removed: usize,
    /// Idempotency records removed.
    pub idempotency_removed: usize,
    /// Dead webhook deliveries removed.
    pub dead_webhooks_removed: usize,
    /// Unmatched reports removed.
    pub unmatched_removed: usize,
}

impl Pass {
    /// Whether nothing was done.
    pub fn is_empty(&self) -> bool {
        *self == Pass::default()
    }
}

/// The sweep: the policy and where each kind's last step stopped.
#[derive(Debug, Clone, Default)]
pub struct Sweeper {
    policy: Policy,
    texts: Option<Vec<u8>>,
    messages: Option<Vec<u8>>,
    idempotency: Option<Vec<u8>>,
    webhooks: Option<Vec<u8>>,
}

/// `now` minus `d` (far in the past when `d` does not fit).
fn before(now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| now.checked_sub_signed(d))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

impl Sweeper {
    /// A sweep by `policy`, starting at the beginning of every tree.
    pub fn new(policy: Policy) -> Sweeper {
        Sweeper {
            policy,
            ..Sweeper::default()
        }
    }

    /// Whether the policy removes anything at all.
    pub fn is_idle(&self) -> bool {
        let p = &self.policy;
        p.message_text_after.is_none()
            && p.messages_after.is_none()
            && p.inbound_after.is_none()
            && p.idempotency_after.is_none()
            && p.dead_webhooks_after.is_none()
            && p.unmatched_after.is_none()
    }

    /// One pass at `now`: one bounded step per kind. Counted in
    /// [`crate::metrics::RETENTION`] by kind.
    pub fn pass(&mut self, store: &Store, now: DateTime<Utc>) -> Result<Pass, StoreError> {
        let limit = self.policy.max_per_pass.max(1);
        let p = self.policy.clone();
        let mut out = Pass::default();
        let go_on = |cursor: &mut Option<Vec<u8>>, step: SweepStep| {
            *cursor = step.next;
            step.done
        };
        if let Some(d) = p.message_text_after {
            let step =
                store.redact_finished_texts(before(now, d), now, self.texts.as_deref(), limit)?;
            out.texts_redacted = go_on(&mut self.texts, step);
        }
        if let Some(d) = p.messages_after {
            let step = store.remove_finished_messages(
                before(now, d),
                now,
                self.messages.as_deref(),
                limit,
            )?;
            out.messages_removed = go_on(&mut self.messages, step);
        }
        if let Some(d) = p.inbound_after {
            out.inbound_removed = store.purge_inbound(before(now, d), limit)?.done;
        }
        if let Some(d) = p.idempotency_after {
            let step =
                store.purge_idempotency(before(now, d), self.idempotency.as_deref(), limit)?;
            out.idempotency_removed = go_on(&mut self.idempotency, step);
        }
        if let Some(d) = p.dead_webhooks_after {
            let step =
                store.purge_dead_webhooks(before(now, d), self.webhooks.as_deref(), limit)?;
            out.dead_webhooks_removed = go_on(&mut self.webhooks, step);
        }
        if let Some(d) = p.unmatched_after {
            out.unmatched_removed = store.purge_unmatched_reports(before(now, d), limit)?.done;
        }
        for (kind, n) in [
            ("message_text", out.texts_redacted),
            ("message", out.messages_removed),
            ("inbound", out.inbound_removed),
            ("idempotency", out.idempotency_removed),
            ("dead_webhook", out.dead_webhooks_removed),
            ("unmatched_report", out.unmatched_removed),
        ] {
            if n > 0 {
                metrics::counter!(crate::metrics::RETENTION, "kind" => kind).increment(n as u64);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Status, test_message};

    fn finished(to: &str, status: Status, at: DateTime<Utc>) -> crate::store::Message {
        let mut m = test_message(to);
        m.status = status;
        m.created_at = at;
        m.updated_at = at;
        // Created at `at`: the id says so too (the sweep reads creation from it).
        m.id = ulid::Ulid::from_parts(at.timestamp_millis() as u64, rand_bits()).to_string();
        m
    }

    fn rand_bits() -> u128 {
        u128::from_be_bytes(crate::util::secret_bytes(16).unwrap().try_into().unwrap())
    }

    #[tokio::test]
    async fn texts_go_then_messages_with_tombstones_and_passes_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 16).unwrap();
        let long_ago = Utc::now() - chrono::Duration::days(400);
        let old: Vec<_> = (0..5)
            .map(|i| finished(&format!("+1202555010{i}"), Status::Delivered, long_ago))
            .collect();
        store.insert(&old, None).unwrap();
        // Unfinished and old: never touched.
        let mut waiting = test_message("+12025550199");
        waiting.created_at = long_ago;
        waiting.id = ulid::Ulid::from_parts(long_ago.timestamp_millis() as u64, 1).to_string();
        let mut unknown = finished("+12025550198", Status::Unknown, long_ago);
        unknown.text = "maybe sent".into();
        store
            .insert(&[waiting.clone(), unknown.clone()], None)
            .unwrap();
        // Finished, but recently.
        let recent = finished("+12025550197", Status::Failed, Utc::now());
        store.insert(std::slice::from_ref(&recent), None).unwrap();

        let mut s = Sweeper::new(Policy {
            message_text_after: Some(Duration::from_secs(90 * 86_400)),
            max_per_pass: 2,
            ..Policy::default()
        });
        let now = Utc::now();
        let mut redacted = 0;
        let mut passes = 0;
        while redacted < 5 {
            let p = s.pass(&store, now).unwrap();
            assert!(p.texts_redacted <= 2, "a pass is bounded: {p:?}");
            redacted += p.texts_redacted;
            passes += 1;
            assert!(passes < 10, "the sweep goes on where it stopped");
        }
        assert!(passes >= 3);
        for m in &old {
            let got = store.get(&m.id).unwrap().unwrap();
            assert_eq!(got.text, "");
            let r = got.redacted.unwrap();
            assert_eq!(r.text_sha256, crate::store::sha256_hex(b"hello"));
            let h = store.history(&m.id).unwrap().unwrap();
            assert!(h.verified, "{:?}", h.problem);
            assert_eq!(h.events.last().unwrap().event.kind, "text_redacted");
        }
        assert_eq!(store.verify_all_histories().unwrap().broken, vec![]);
        assert_eq!(store.get(&waiting.id).unwrap().unwrap().text, "hello");
        assert_eq!(store.get(&unknown.id).unwrap().unwrap().text, "maybe sent");
        assert_eq!(store.get(&recent.id).unwrap().unwrap().text, "hello");

        // Then removed whole, each with a tombstone in today's chain.
        let mut s = Sweeper::new(Policy {
            messages_after: Some(Duration::from_secs(365 * 86_400)),
            max_per_pass: 1000,
            ..Policy::default()
        });
        let p = s.pass(&store, now).unwrap();
        assert_eq!(p.messages_removed, 5);
        for m in &old {
            assert!(store.get(&m.id).unwrap().is_none());
            assert!(store.events(&m.id).unwrap().is_empty());
        }
        assert!(store.messages_to("+12025550100", 10).unwrap().is_empty());
        let day = store.tombstones_on(now.date_naive()).unwrap();
        assert!(day.verified, "{:?}", day.problem);
        assert_eq!(day.tombstones.len(), 5);
        assert!(day.tombstones.iter().all(|t| t.reason == "retention"));
        assert!(day.tombstones[0].prev.is_none());
        assert!(day.tombstones[1..].iter().all(|t| t.prev.is_some()));
        assert_eq!(store.len(), 3, "the waiting, unknown and recent ones stay");
        let v = store.verify_all_histories().unwrap();
        assert_eq!(v.broken, vec![]);
        assert_eq!(v.tombstones, 5);
        // Nothing left half removed: every index agrees with the records.
        let c = store.sled().unwrap().check().unwrap();
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        // A tombstone taken away afterwards shows.
        store.sled().unwrap().remove_tombstone_for_test(1);
        let v = store.verify_all_histories().unwrap();
        assert_eq!(v.broken.len(), 1, "{v:?}");
        assert!(v.broken[0].0.starts_with("tombstones of "), "{v:?}");
        assert!(!store.tombstones_on(now.date_naive()).unwrap().verified);
    }

    #[tokio::test]
    async fn inbound_idempotency_dead_webhooks_and_unmatched_reports_go_after_their_periods() {
        use crate::store::IdempotencyRecord;
        use crate::store::inbound::Received;
        use crate::store::outbox::NewWebhook;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 16).unwrap();
        let now = Utc::now();
        let old = now - chrono::Duration::days(40);
        let from = crate::sms::Address::parse_number("from", "+12025550100").unwrap();
        let mut inbound = Vec::new();
        for (i, at) in [old, old, now].into_iter().enumerate() {
            let pdu = crate::sms::encode_deliver(
                None,
                &from,
                &format!("text {i}"),
                &at.fixed_offset(),
                false,
                1,
            )
            .unwrap();
            let Received::Stored(m) = store.receive("sim0", &pdu[0], None, at).unwrap() else {
                panic!("not stored");
            };
            inbound.push(m.id.clone());
        }
        // The first old one acted on, the second still pending: only the first may go.
        store
            .inbound_handled(&inbound[0], "unmatched", None)
            .unwrap();
        store
            .inbound_handled(&inbound[2], "unmatched", None)
            .unwrap();
        for (k, at) in [("old", old), ("new", now)] {
            let r = IdempotencyRecord {
                fingerprint: "f".into(),
                status: 201,
                body: serde_json::json!({"to": "+12025550100"}),
                at,
            };
            store.put_idempotency(&format!("test\0{k}"), &r).unwrap();
        }
        let hook = |id: &str, at| NewWebhook {
            id: id.into(),
            url: "http://127.0.0.1:9/hook".into(),
            event_type: "message.sent".into(),
            body: "{}".into(),
            ordering_key: String::new(),
            created_at: at,
        };
        let hooks = store
            .enqueue_webhooks(&[
                hook("evt_old", old),
                hook("evt_new", now),
                hook("evt_live", old),
            ])
            .unwrap();
        for h in &hooks[..2] {
            store
                .webhook_failed(h.seq, Some(500), "refused", None)
                .unwrap();
        }
        store
            .keep_unreadable_report("sim0", &[0x00, 0x06], "too short", old)
            .unwrap();
        store
            .keep_unreadable_report("sim0", &[0x00, 0x07], "too short", now)
            .unwrap();

        let mut s = Sweeper::new(Policy {
            inbound_after: Some(Duration::from_secs(30 * 86_400)),
            idempotency_after: Some(Duration::from_secs(86_400)),
            dead_webhooks_after: Some(Duration::from_secs(30 * 86_400)),
            unmatched_after: Some(Duration::from_secs(30 * 86_400)),
            max_per_pass: 100,
            ..Policy::default()
        });
        let p = s.pass(&store, now).unwrap();
        assert_eq!(
            p,
            Pass {
                inbound_removed: 1,
                idempotency_removed: 1,
                dead_webhooks_removed: 1,
                unmatched_removed: 1,
                ..Pass::default()
            }
        );
        assert!(store.inbound(&inbound[0]).unwrap().is_none());
        assert!(
            store.inbound(&inbound[1]).unwrap().is_some(),
            "pending: kept"
        );
        assert!(
            store.inbound(&inbound[2]).unwrap().is_some(),
            "recent: kept"
        );
        assert!(store.idempotency("test\0old").unwrap().is_none());
        assert!(store.idempotency("test\0new").unwrap().is_some());
        let dead = store.dead_webhooks(10, None).unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].id, "evt_new");
        assert!(
            store.webhook("evt_live").unwrap().is_some(),
            "pending: kept"
        );
        assert_eq!(store.unmatched_report_count(), 1);
        // Nothing more to do.
        assert!(s.pass(&store, now).unwrap().is_empty());
    }
}
