use super::*;
use crate::sms::{Address, encode_deliver};
use crate::store::Store;
use crate::store::live::LiveEvent;
use crate::store::pg::testdb;

/// Where a store under test lives: a directory (sled) or a database (PostgreSQL).
pub(in crate::store::pg) enum Place {
    Dir(tempfile::TempDir),
    Db(String),
}

impl Place {
    /// Opens the store there (again, after a restart).
    pub(in crate::store::pg) fn open(&self) -> Store {
        match self {
            Place::Dir(d) => Store::open(d.path(), 16).unwrap(),
            Place::Db(url) => Store::connect(url, Vec::new()).unwrap(),
        }
    }

    pub(in crate::store::pg) fn name(&self) -> &'static str {
        match self {
            Place::Dir(_) => "sled",
            Place::Db(_) => "postgres",
        }
    }
}

/// A fresh embedded store and a fresh database (when a server can be made).
pub(in crate::store::pg) fn places() -> Vec<Place> {
    let mut v = vec![Place::Dir(tempfile::tempdir().unwrap())];
    if let Some(url) = testdb::database() {
        v.push(Place::Db(url));
    }
    v
}

fn pdus(from: &str, text: &str, ucs2: bool, reference: u8) -> Vec<Vec<u8>> {
    let from = Address::parse_number("from", from).unwrap();
    let ts = Utc::now().fixed_offset();
    encode_deliver(None, &from, text, &ts, ucs2, reference).unwrap()
}

fn all(store: &Store) -> Vec<InboundMessage> {
    store
        .list_inbound(&InboundFilter {
            limit: 1000,
            ..InboundFilter::default()
        })
        .unwrap()
}

#[tokio::test]
async fn single_and_duplicate() {
    for place in places() {
        let store = place.open();
        let now = Utc::now();
        let p = pdus("+12025550123", "1", false, 1).remove(0);
        let Received::Stored(m) = store.receive("sim0", &p, None, now).unwrap() else {
            panic!("{}: not stored", place.name())
        };
        assert_eq!(
            (m.from.as_str(), m.text.as_str(), m.partial),
            ("+12025550123", "1", false)
        );
        assert_eq!(
            store.receive("sim0", &p, None, now).unwrap(),
            Received::Duplicate,
            "{}",
            place.name()
        );
        // The same PDU on another modem is another message.
        assert!(matches!(
            store.receive("sim1", &p, None, now).unwrap(),
            Received::Stored(_)
        ));
        assert_eq!(store.inbound(&m.id).unwrap(), Some((*m).clone()));
        // Ids are read as ULIDs, in either case; anything else is no message.
        assert_eq!(
            store.inbound(&m.id.to_lowercase()).unwrap(),
            Some((*m).clone())
        );
        assert_eq!(store.inbound("not-an-id").unwrap(), None);
        // Garbage is kept as it came, marked.
        let Received::Stored(g) = store.receive("sim0", &[0, 0x03, 0xFF], None, now).unwrap()
        else {
            panic!("{}: garbage not stored", place.name())
        };
        assert_eq!(g.encoding, "undecodable");
        assert!(g.decode_error.is_some());
        assert_eq!(g.pdus, vec!["0003FF".to_string()]);
        assert_eq!(all(&store).len(), 3, "{}", place.name());
    }
}

#[test]
fn short_user_data_is_kept_partial_and_an_unreadable_answer_raw() {
    for place in places() {
        let store = place.open();
        let now = Utc::now();
        let mut p = pdus("+12025550123", "STOP sending me these", false, 1).remove(0);
        p.truncate(p.len() - 8);
        let Received::Stored(m) = store.receive("sim0", &p, None, now).unwrap() else {
            panic!("{}: a short PDU not stored", place.name())
        };
        assert!(m.partial, "{m:?}");
        assert!(m.decode_error.is_none());
        assert_eq!(m.from, "+12025550123");
        assert!(
            m.text.starts_with("STOP sending") && m.text.ends_with("[…]"),
            "{}",
            m.text
        );
        // An answer that is not a message at all: kept raw, once.
        let answer = "+CMGR: \"REC UNREAD\",\"+1202\",,\"26/12/07,10:00:00+00\"\r\nSTOP";
        let Received::Stored(u) = store
            .receive_unreadable("sim0", answer, &[], "text mode", now)
            .unwrap()
        else {
            panic!("{}: not stored", place.name())
        };
        assert_eq!(u.raw_answer.as_deref(), Some(answer));
        assert_eq!(u.decode_error.as_deref(), Some("text mode"));
        assert!(u.pdus.is_empty());
        assert_eq!(
            store
                .receive_unreadable("sim0", answer, &[], "text mode", now)
                .unwrap(),
            Received::Duplicate
        );
        let listed = store
            .list_inbound(&InboundFilter {
                unreadable: true,
                limit: 10,
                ..InboundFilter::default()
            })
            .unwrap();
        assert_eq!(listed.len(), 1, "{}", place.name());
        assert_eq!(listed[0].id, u.id);
    }
}

#[tokio::test]
async fn parts_out_of_order_interleaved_and_across_a_restart() {
    for place in places() {
        let now = Utc::now();
        let long = "Ça va? Je paierai la facture demain, merci 🙂 ".repeat(4);
        let a = pdus("+12025550123", &long, true, 7);
        let b = pdus(
            "+12025550124",
            &"second sender, also long. ".repeat(12),
            false,
            7,
        );
        assert!(a.len() >= 3 && b.len() >= 2);
        {
            let store = place.open();
            // Last part first, interleaved with the other sender's parts.
            let last = a.len() - 1;
            assert!(matches!(
                store.receive("sim0", &a[last], None, now).unwrap(),
                Received::Held { .. }
            ));
            assert!(matches!(
                store.receive("sim0", &b[0], None, now).unwrap(),
                Received::Held { part: 1, .. }
            ));
            assert!(matches!(
                store.receive("sim0", &a[0], None, now).unwrap(),
                Received::Held { part: 1, .. }
            ));
            // The same part again (the SIM offered it twice) changes nothing.
            assert_eq!(
                store.receive("sim0", &a[0], None, now).unwrap(),
                Received::Duplicate
            );
            assert_eq!(store.fragments_held(), 3, "{}", place.name());
            store.durable().await.unwrap();
        }
        let store = place.open();
        let mut whole = None;
        for p in &a[1..a.len() - 1] {
            if let Received::Stored(m) = store.receive("sim0", p, None, now).unwrap() {
                whole = Some(m);
            }
        }
        let m = whole.expect("reassembled after the restart");
        assert_eq!(m.text, long);
        assert_eq!((m.encoding.as_str(), m.partial), ("ucs2", false));
        assert_eq!(usize::from(m.parts_received), a.len());
        // The other sender's message is still waiting, and is released as partial.
        assert_eq!(store.fragments_held(), 1, "{}", place.name());
        assert!(
            store
                .release_stale_fragments(now - chrono::Duration::hours(1), now)
                .unwrap()
                .is_empty(),
            "not stale yet"
        );
        let released = store
            .release_stale_fragments(now + chrono::Duration::seconds(1), now)
            .unwrap();
        assert_eq!(released.len(), 1, "{}", place.name());
        let p = &released[0];
        assert!(p.partial);
        assert_eq!((p.parts_received, usize::from(p.total_parts)), (1, b.len()));
        assert!(p.text.starts_with("second sender") && p.text.ends_with("[…]"));
        assert_eq!(store.fragments_held(), 0);
        let listed = store
            .list_inbound(&InboundFilter {
                from: Some("+12025550124".into()),
                limit: 10,
                ..InboundFilter::default()
            })
            .unwrap();
        assert_eq!(listed, vec![p.clone()]);
        assert_eq!(all(&store).len(), 2, "{}", place.name());
    }
}

/// Pages, filters, what is pending, and the retention step that keeps what is.
#[test]
fn listing_pending_and_purge_agree_on_both_backends() {
    for place in places() {
        let store = place.open();
        let t0 = Utc::now();
        let at = |mins: i64| t0 - chrono::Duration::minutes(mins);
        let text = |from: &str, t: &str| pdus(from, t, false, 1).remove(0);
        let stored = |r: Received| match r {
            Received::Stored(m) => *m,
            r => panic!("{}: {r:?}", place.name()),
        };
        let a = stored(
            store
                .receive("sim0", &text("+12025550101", "A"), None, at(120))
                .unwrap(),
        );
        let b = stored(
            store
                .receive("sim0", &text("+12025550102", "B"), None, at(60))
                .unwrap(),
        );
        let c = stored(
            store
                .receive("sim0", &text("+12025550101", "C"), None, at(0))
                .unwrap(),
        );
        let ids = |v: Vec<InboundMessage>| v.into_iter().map(|m| m.id).collect::<Vec<_>>();
        assert_eq!(
            ids(store.pending_inbound().unwrap()),
            [a.id.as_str(), b.id.as_str(), c.id.as_str()],
            "{}: oldest first",
            place.name()
        );
        let page = |f: InboundFilter| ids(store.list_inbound(&f).unwrap());
        assert_eq!(
            page(InboundFilter {
                limit: 2,
                ..InboundFilter::default()
            }),
            [c.id.as_str(), b.id.as_str()]
        );
        assert_eq!(
            page(InboundFilter {
                limit: 2,
                after: Some(b.id.clone()),
                ..InboundFilter::default()
            }),
            [a.id.as_str()]
        );
        assert_eq!(
            page(InboundFilter {
                limit: 10,
                since: Some(at(90)),
                ..InboundFilter::default()
            }),
            [c.id.as_str(), b.id.as_str()]
        );
        assert_eq!(
            page(InboundFilter {
                limit: 10,
                from: Some("+12025550101".into()),
                ..InboundFilter::default()
            }),
            [c.id.as_str(), a.id.as_str()]
        );
        assert!(
            page(InboundFilter {
                limit: 10,
                unreadable: true,
                ..InboundFilter::default()
            })
            .is_empty()
        );
        // Acted on: no longer pending, with what was done.
        let h = store
            .inbound_handled(a.id.as_str(), "reply", Some("01JABCDEFGHJKMNPQRSTVWXYZ0"))
            .unwrap()
            .unwrap();
        assert_eq!(
            (h.handling.as_deref(), h.in_reply_to.as_deref()),
            (Some("reply"), Some("01JABCDEFGHJKMNPQRSTVWXYZ0"))
        );
        assert_eq!(store.inbound(a.id.as_str()).unwrap(), Some(h));
        store
            .inbound_handled(c.id.as_str(), "unmatched", None)
            .unwrap();
        assert_eq!(ids(store.pending_inbound().unwrap()), [b.id.as_str()]);
        assert_eq!(
            store
                .inbound_handled("01JABCDEFGHJKMNPQRSTVWXYZ0", "x", None)
                .unwrap(),
            None
        );
        // Retention: A is old and acted on; B is old but pending; C is recent.
        let step = store.purge_inbound(at(30), 10).unwrap();
        assert_eq!(step.done, 1, "{}", place.name());
        assert_eq!(store.inbound(a.id.as_str()).unwrap(), None);
        assert_eq!(store.purge_inbound(at(30), 10).unwrap().done, 0);
        store
            .inbound_handled(b.id.as_str(), "unmatched", None)
            .unwrap();
        // One looked at: the oldest, B. At the cutoff's millisecond still goes.
        assert_eq!(store.purge_inbound(t0, 1).unwrap().done, 1);
        assert_eq!(ids(all(&store)), [c.id.as_str()]);
        assert_eq!(store.purge_inbound(t0, 0).unwrap().done, 0);
        assert_eq!(store.purge_inbound(at(1), 10).unwrap().done, 0);
        assert_eq!(store.purge_inbound(t0, 10).unwrap().done, 1);
        assert!(all(&store).is_empty(), "{}", place.name());
    }
}

#[tokio::test]
async fn a_stored_text_is_published_live() {
    for place in places() {
        let store = place.open();
        let mut rx = store.subscribe();
        let p = pdus("+12025550123", "hello", false, 1).remove(0);
        let Received::Stored(m) = store.receive("sim0", &p, None, Utc::now()).unwrap() else {
            panic!("not stored")
        };
        store.publish_inbound(&m);
        let e = tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv())
            .await
            .expect("an event in time")
            .unwrap();
        assert_eq!(
            e,
            LiveEvent::Inbound {
                inbound_id: m.id.clone(),
                from: "+12025550123".into(),
                text: "hello".into(),
                at: m.received_at,
            },
            "{}",
            place.name()
        );
    }
}

/// Two gateways on one database given the same PDU at once: one stores it, the other
/// finds it stored; two parts of one message at once: one of them completes it.
#[test]
fn concurrent_gateways_store_once_and_complete_once() {
    let Some(url) = testdb::database() else {
        return;
    };
    let (g1, g2) = (
        Store::connect(&url, Vec::new()).unwrap(),
        Store::connect(&url, Vec::new()).unwrap(),
    );
    let both = |f1: &(dyn Fn() -> Received + Sync), f2: &(dyn Fn() -> Received + Sync)| {
        let go = std::sync::Barrier::new(2);
        std::thread::scope(|s| {
            let a = s.spawn(|| {
                go.wait();
                f1()
            });
            let b = s.spawn(|| {
                go.wait();
                f2()
            });
            (a.join().unwrap(), b.join().unwrap())
        })
    };
    let now = Utc::now();
    for round in 0..10u8 {
        let p = pdus("+12025550123", &format!("round {round}"), false, 1).remove(0);
        let (r1, r2) = both(&|| g1.receive("sim0", &p, None, now).unwrap(), &|| {
            g2.receive("sim0", &p, None, now).unwrap()
        });
        let stored = [&r1, &r2]
            .iter()
            .filter(|r| matches!(r, Received::Stored(_)))
            .count();
        assert_eq!(stored, 1, "round {round}: {r1:?} / {r2:?}");
        assert!(r1 == Received::Duplicate || r2 == Received::Duplicate);

        let text = format!("round {round}: ").repeat(20);
        let parts = pdus("+12025550124", &text, false, round);
        assert_eq!(parts.len(), 2);
        let (r1, r2) = both(
            &|| g1.receive("sim0", &parts[0], None, now).unwrap(),
            &|| g2.receive("sim0", &parts[1], None, now).unwrap(),
        );
        let whole: Vec<_> = [r1, r2]
            .into_iter()
            .filter_map(|r| match r {
                Received::Stored(m) => Some(m),
                _ => None,
            })
            .collect();
        assert_eq!(whole.len(), 1, "round {round}: completed once");
        assert_eq!(whole[0].text, text);
        assert_eq!(g1.fragments_held(), 0);
    }
    assert_eq!(all(&g2).len(), 20);
}
