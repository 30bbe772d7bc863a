use std::collections::HashMap;

use chrono::Duration;

use tokio::sync::broadcast;

use crate::store::pg::testdb;
use crate::store::{ListFilter, NextDue, Priority, Status, Store, test_message, test_record};

use super::*;

fn msg(to: &str, status: Status, due: DateTime<Utc>, prio: Priority) -> Message {
    let mut m = test_message(to);
    m.status = status;
    m.accepted_as = status;
    m.due_at = due;
    m.priority = prio;
    m
}

/// Runs `scenario` on an embedded store and on a PostgreSQL one (when there is a server).
fn on_both(scenario: impl Fn(&Store)) {
    let dir = tempfile::tempdir().unwrap();
    scenario(&Store::open(dir.path(), 16).unwrap());
    if let Some(url) = testdb::database() {
        scenario(&Store::connect(&url, Vec::new()).unwrap());
    }
}

#[test]
fn insert_update_history_and_dispatch_order() {
    on_both(|store| {
        let now = Utc::now();
        let later = now + Duration::hours(1);
        let low = msg(
            "+15550000001",
            Status::Queued,
            now - Duration::seconds(10),
            Priority::Low,
        );
        let mut normal = msg(
            "+15550000002",
            Status::Queued,
            now - Duration::seconds(5),
            Priority::Normal,
        );
        normal.metadata = Some(serde_json::json!({"invoice": "INV-7"}));
        let high_later = msg("+15550000003", Status::Scheduled, later, Priority::High);
        store
            .insert(&[low.clone(), normal.clone(), high_later.clone()], None)
            .unwrap();
        assert_eq!(store.get(&normal.id).unwrap().unwrap(), normal);
        assert_eq!(store.get("01ARZ3NDEKTSV4RRFFQ69G5FAV").unwrap(), None);
        // A high-priority message not yet due does not block a due normal one.
        assert_eq!(
            store.next_due(now).unwrap(),
            NextDue::Ready(normal.id.clone())
        );
        let (m, changed) = store
            .update(&normal.id, |m| {
                m.status = Status::Sending;
                Some("dispatched")
            })
            .unwrap()
            .unwrap();
        assert!(changed);
        assert_eq!(m.status, Status::Sending);
        assert_eq!(store.get(&normal.id).unwrap().unwrap(), m);
        assert_eq!(store.next_due(now).unwrap(), NextDue::Ready(low.id.clone()));
        store
            .update(&low.id, |m| {
                m.status = Status::Cancelled;
                Some("cancelled")
            })
            .unwrap();
        match store.next_due(now).unwrap() {
            // Milliseconds (sled) or microseconds (PostgreSQL): the same moment.
            NextDue::At(t) => assert!((t - later).num_milliseconds().abs() <= 1, "{t}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            store.next_due(later).unwrap(),
            NextDue::Ready(high_later.id.clone())
        );
        // A refusing `accept` passes over what is due.
        assert_eq!(
            store.next_due_matching(later, 10, &mut |_| false).unwrap(),
            NextDue::Empty
        );
        let events = store.events(&normal.id).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].status, Status::Sending);
        let h = store.history(&normal.id).unwrap().unwrap();
        assert!(h.verified, "{:?}", h.problem);
        assert_eq!(h.events.len(), 2);
        let counts: HashMap<_, _> = store.counts().unwrap().into_iter().collect();
        assert_eq!(counts[&Status::Sending], 1);
        assert_eq!(counts[&Status::Cancelled], 1);
        assert_eq!(counts[&Status::Scheduled], 1);
        assert_eq!(store.queue_depth(), 1);
        assert_eq!(store.len(), 3);
        assert_eq!(
            store.oldest_due().unwrap().map(|t| t.timestamp()),
            Some(later.timestamp())
        );
        assert_eq!(
            store.ids_with_status(Status::Sending).unwrap(),
            vec![normal.id.clone()]
        );
        // Unchanged update writes nothing.
        let (_, changed) = store.update(&normal.id, |_| None::<Note>).unwrap().unwrap();
        assert!(!changed);
        assert_eq!(store.events(&normal.id).unwrap().len(), 2);
        // Listings: newest first, by status, by recipient, by page.
        let all = store
            .list(&ListFilter {
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        let ids: Vec<&str> = all.iter().map(|m| m.id.as_str()).collect();
        let mut newest_first = [&high_later.id, &normal.id, &low.id];
        newest_first.sort_by(|a, b| b.cmp(a));
        assert_eq!(ids, newest_first);
        let page = store
            .list(&ListFilter {
                limit: 10,
                after: Some(ids[1].to_string()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(page.len(), 1);
        assert_eq!(page[0].id, ids[2]);
        let to = store
            .list(&ListFilter {
                limit: 10,
                to: Some("+15550000003".into()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(to.len(), 1);
        let cancelled = store
            .list(&ListFilter {
                limit: 10,
                status: Some(Status::Cancelled),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(cancelled.len(), 1);
        assert_eq!(cancelled[0].id, low.id);
        assert_eq!(store.messages_about("INV-7", 10).unwrap().len(), 1);
        assert_eq!(store.histories_for(None, Some("INV-7")).unwrap().len(), 1);
        assert_eq!(
            store
                .histories_for(Some("+15550000001"), None)
                .unwrap()
                .len(),
            1
        );
        // An Idempotency-Key is used once: the second insert with it stores nothing.
        let rec = test_record(serde_json::json!({"id": "x"}));
        let a = test_message("+15550000009");
        let b = test_message("+15550000009");
        store.insert(&[a], Some(("billing\0k1", &rec))).unwrap();
        let e = store
            .insert(std::slice::from_ref(&b), Some(("billing\0k1", &rec)))
            .unwrap_err();
        assert!(matches!(e, StoreError::Conflict(_)), "{e}");
        assert_eq!(store.get(&b.id).unwrap(), None);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_to_an_opted_out_number_is_refused_and_nothing_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut stores = vec![Store::open(dir.path(), 16).unwrap()];
    if let Some(url) = testdb::database() {
        stores.push(Store::connect(&url, Vec::new()).unwrap());
    }
    for store in stores {
        eprintln!("backend: {}", store.backend_name());
        let tag = ulid::Ulid::generate().to_string();
        let (a, b) = (format!("+1555{}", &tag[20..]), "+15550001111".to_string());
        let first = test_message(&a);
        assert_eq!(
            store.insert_unless_opted_out(&first, None).await.unwrap(),
            None
        );
        assert_eq!(store.get(&first.id).unwrap().unwrap(), first);
        store
            .opt_out(&OptOut {
                number: a.clone(),
                opted_out_at: Utc::now(),
                source: "api".into(),
                keyword: None,
                inbound_id: None,
                note: None,
            })
            .unwrap();
        // Refused with the opt-out, and neither the message nor its key is written.
        let refused = test_message(&a);
        let key = format!("k\0{tag}-1");
        let rec = test_record(serde_json::json!({"id": refused.id}));
        let o = store
            .insert_unless_opted_out(&refused, Some((&key, &rec)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((o.number.as_str(), o.source.as_str()), (a.as_str(), "api"));
        assert_eq!(store.get(&refused.id).unwrap(), None);
        assert_eq!(store.idempotency(&key).unwrap(), None);
        // Another number with that key goes in; the key used again is a conflict.
        let other = test_message(&b);
        assert_eq!(
            store
                .insert_unless_opted_out(&other, Some((&key, &rec)))
                .await
                .unwrap(),
            None
        );
        assert!(store.idempotency(&key).unwrap().is_some());
        let again = test_message(&b);
        assert!(matches!(
            store
                .insert_unless_opted_out(&again, Some((&key, &rec)))
                .await,
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(store.get(&again.id).unwrap(), None);
        // An erased number stays refused.
        assert!(store.erase_optout(&a, Utc::now()).unwrap());
        let after = test_message(&a);
        assert!(
            store
                .insert_unless_opted_out(&after, None)
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(store.get(&after.id).unwrap(), None);
    }
}

#[test]
fn replies_find_the_question_they_answer() {
    on_both(|store| {
        let now = Utc::now();
        let mut asked = msg("+447700900123", Status::Sent, now, Priority::Normal);
        asked.reply_options = Some([("1".to_string(), "call_me".to_string())].into());
        asked.sent_at = Some(now - Duration::minutes(5));
        let plain = msg("+447700900123", Status::Sent, now, Priority::Normal);
        store.insert(&[asked.clone(), plain], None).unwrap();
        assert_eq!(store.messages_to("+447700900123", 10).unwrap().len(), 2);
        let hit = store
            .reply_target("+447700900123", now, Duration::hours(1), true, None)
            .unwrap();
        assert_eq!(hit.map(|m| m.id), Some(asked.id.clone()));
        // Outside the window, or left out: none.
        assert_eq!(
            store
                .reply_target("+447700900123", now, Duration::minutes(1), true, None)
                .unwrap(),
            None
        );
        assert_eq!(
            store
                .reply_target(
                    "+447700900123",
                    now,
                    Duration::hours(1),
                    true,
                    Some(&asked.id)
                )
                .unwrap(),
            None
        );
        assert_eq!(
            store.numbers_ending_like("07700900123", 9, 5).unwrap(),
            vec!["+447700900123".to_string()]
        );
    });
}

/// What one gateway does shows live on another, and wakes its dispatcher.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_gateways_changes_show_live_and_wake_the_dispatcher() {
    let Some(url) = testdb::database() else {
        return;
    };
    let a = Store::connect(&url, Vec::new()).unwrap();
    let b = Store::connect(&url, Vec::new()).unwrap();
    let mut live = a.subscribe();
    let due = a.due_elsewhere().unwrap();
    let m = test_message("+15550001234");
    // The listener connects in the background: insert until the wake-up arrives.
    let woken = async {
        loop {
            let notified = due.notified();
            b.insert(&[test_message("+15550001234")], None).unwrap();
            if tokio::time::timeout(std::time::Duration::from_millis(500), notified)
                .await
                .is_ok()
            {
                return;
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(20), woken)
        .await
        .expect("a's dispatcher is woken by b's new message");
    b.insert(std::slice::from_ref(&m), None).unwrap();
    let seen = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            match live.recv().await {
                Ok(LiveEvent::Message {
                    message_id, kind, ..
                }) if message_id == m.id => {
                    return kind;
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("{e}"),
            }
        }
    })
    .await
    .expect("b's new message shows on a's live events");
    assert_eq!(seen, "accepted");
    // A's own change reaches its subscribers once, not again through the database.
    a.update(&m.id, |m| {
        m.status = Status::Cancelled;
        Some("cancelled")
    })
    .unwrap();
    let mut own = 0;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
        while let Ok(e) = live.recv().await {
            if matches!(&e, LiveEvent::Message { message_id, seq: 1, .. } if *message_id == m.id) {
                own += 1;
            }
        }
    })
    .await;
    assert_eq!(own, 1);
}

/// Two gateways on one database try to claim the same messages at once: each message is
/// taken by exactly one of them.
#[test]
fn two_gateways_never_claim_the_same_message() {
    let Some(url) = testdb::database() else {
        return;
    };
    let a = Store::connect(&url, Vec::new()).unwrap();
    let b = Store::connect(&url, Vec::new()).unwrap();
    let now = Utc::now();
    let ms: Vec<Message> = (0..40)
        .map(|i| {
            msg(
                &format!("+1555000{i:04}"),
                Status::Queued,
                now,
                Priority::Normal,
            )
        })
        .collect();
    a.insert(&ms, None).unwrap();
    let claim = |store: Store, who: &'static str| {
        std::thread::spawn(move || {
            let mut mine = Vec::new();
            loop {
                let NextDue::Ready(id) = store.next_due(Utc::now()).unwrap() else {
                    return mine;
                };
                let r = store
                    .update(&id, |m| {
                        (m.status == Status::Queued).then(|| {
                            m.status = Status::Sending;
                            m.modem = Some(who.into());
                            "claimed"
                        })
                    })
                    .unwrap();
                if let Some((_, true)) = r {
                    mine.push(id);
                }
            }
        })
    };
    let ta = claim(a.clone(), "a");
    let tb = claim(b, "b");
    let (ma, mb) = (ta.join().unwrap(), tb.join().unwrap());
    assert_eq!(ma.len() + mb.len(), 40, "{} + {}", ma.len(), mb.len());
    let mut all: Vec<&String> = ma.iter().chain(&mb).collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 40, "a message was claimed twice");
    for m in &ms {
        let h = a.history(&m.id).unwrap().unwrap();
        assert!(h.verified);
        assert_eq!(h.events.len(), 2, "one claim each");
    }
}
