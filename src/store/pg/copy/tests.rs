//! The copy held to its promise: both ways, nothing lost.

mod names {
    use super::super::load::TABLES;
    use super::super::read::READS;
    use super::super::{DATA_TABLES, tree};
    use crate::store::backup::TREES;

    #[test]
    fn every_name_is_a_tree_and_every_table_is_written_and_read() {
        for name in [
            "messages",
            "due",
            "status",
            "to",
            "events",
            "idempotency",
            "outbox",
            "inbound",
            "inbound_from",
            "inbound_pending",
            "inbound_seen",
            "fragments",
            "optouts",
            "reports",
            "reports_unmatched",
            "plans",
            "plan_invoices",
            "templates",
            "hourly",
            "tombstones",
            "audit",
            "optouts_erased",
            "meta",
        ] {
            assert!(tree(name) < TREES.len(), "{name}");
        }
        let written: Vec<&str> = TABLES.iter().map(|t| t.name).collect();
        assert_eq!(written, DATA_TABLES);
        for t in DATA_TABLES.iter().filter(|t| **t != "meta") {
            assert!(READS.iter().any(|(r, _)| r == t), "{t} is not read");
        }
        let migration = include_str!("../migrations/0001_schema.sql");
        for t in DATA_TABLES {
            assert!(
                migration.contains(&format!("CREATE TABLE {t} (")),
                "{t} is not in the schema"
            );
        }
    }
}

mod both_ways {
    use std::path::Path;

    use crate::store::backup::testing::{dump, open, populated};
    use crate::store::backup::{CopyError, TREES};
    use crate::store::pg::testdb;
    use crate::store::{PgStore, SledStore, Store};

    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            let target = to.join(e.file_name());
            if e.file_type().unwrap().is_dir() {
                copy_dir(&e.path(), &target);
            } else {
                std::fs::copy(e.path(), &target).unwrap();
            }
        }
    }

    /// Copies `s` into a new database and back into a new directory: the database checks
    /// clean, every history verifies there, and the store that comes back is `s` byte for byte.
    fn round_trip(s: &SledStore, url: &str, back: &Path) -> PgStore {
        let pg = PgStore::connect(url, Vec::new()).unwrap();
        let summary = s.copy_to_postgres(&pg).unwrap();
        let report = pg.check().unwrap();
        assert!(report.is_clean(), "{report:#?}");
        let mine = s.check().unwrap();
        assert_eq!(report.messages, mine.messages);
        assert_eq!(report.history_entries, mine.history_entries);
        let count = |tree: &str| {
            summary
                .trees
                .iter()
                .find(|t| t.tree == tree)
                .map_or(0, |t| t.records)
        };
        let rows = |table: &str| {
            report
                .trees
                .iter()
                .find(|t| t.tree == table)
                .map_or(0, |t| t.records)
        };
        assert_eq!(rows("messages"), count("messages"));
        assert_eq!(rows("message_events"), count("events"));
        assert_eq!(rows("outbox"), count("outbox"));
        assert_eq!(rows("inbound"), count("inbound"));
        assert_eq!(rows("audit"), count("audit").saturating_sub(1));
        assert_eq!(rows("tombstones"), count("tombstones"));
        assert_eq!(rows("reports_awaited"), count("reports"));
        let v = pg.verify_all_histories().unwrap();
        assert!(v.broken.is_empty(), "{v:?}");
        assert_eq!(v.messages, count("messages"));
        assert!(pg.verify_audit().unwrap().verified);

        let imported = SledStore::import_postgres(back, &pg).unwrap();
        assert!(imported.records > 0);
        let t = SledStore::open(back, 16).unwrap();
        let (a, b) = (dump(s), dump(&t));
        for ((name, ra), (_, rb)) in a.iter().zip(&b) {
            assert_eq!(ra.len(), rb.len(), "tree {name}");
            for (x, y) in ra.iter().zip(rb) {
                assert_eq!(
                    (hex::encode(&x.0), String::from_utf8_lossy(&x.1)),
                    (hex::encode(&y.0), String::from_utf8_lossy(&y.1)),
                    "tree {name}"
                );
            }
        }
        assert_eq!(s.first_difference(&t).unwrap(), None);
        assert!(t.check().unwrap().is_clean());
        pg
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_populated_store_goes_to_postgres_and_back_unchanged() {
        let Some(url) = testdb::database() else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let (s, ms) = populated(&dir.path().join("a"));
        let pg = round_trip(&s, &url, &dir.path().join("b"));
        // The store reads the same on both sides.
        let store = Store::connect(&url, vec![]).unwrap();
        for m in &ms {
            assert_eq!(
                store.get_with_events(&m.id).unwrap(),
                s.get_with_events(&m.id).unwrap()
            );
        }
        assert_eq!(store.counts().unwrap(), s.counts().unwrap());
        // New deliveries and tombstones are numbered after the copied ones.
        let top = s.inner.outbox.iter().count() as u64;
        let e = store
            .enqueue_webhooks(&[crate::store::backup::testing::webhook(9)])
            .unwrap();
        assert!(e[0].seq > top, "{} after {top}", e[0].seq);
        // Into a database that holds data: refused, nothing written.
        let before = pg.check().unwrap().trees;
        match s.copy_to_postgres(&pg) {
            Err(CopyError::NotEmpty(tables)) => assert!(tables.contains(&"messages")),
            other => panic!("{other:?}"),
        }
        assert_eq!(pg.check().unwrap().trees, before);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_release_fixture_goes_to_postgres_and_back_unchanged() {
        let Some(url) = testdb::database() else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        copy_dir(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-0.1.0"),
            &a,
        );
        let s = open(&a);
        assert!(!s.inner.messages.is_empty());
        round_trip(&s, &url, &dir.path().join("b"));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_copy_that_fails_leaves_the_database_empty() {
        let Some(url) = testdb::database() else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = populated(&dir.path().join("a"));
        // A template that is no JSON: it cannot be carried; it comes after most trees.
        s.inner
            .templates
            .insert(b"broken", &b"\x00\xff"[..])
            .unwrap();
        let pg = PgStore::connect(&url, Vec::new()).unwrap();
        let e = s.copy_to_postgres(&pg).unwrap_err();
        assert!(e.to_string().contains("templates"), "{e}");
        assert!(pg.tables_with_data().unwrap().is_empty());
        // Nothing was left behind: a good copy goes in afterwards.
        s.inner.templates.remove(b"broken").unwrap();
        // A tree this version does not use: a copy would lose it, so none is made.
        let future = s.inner.db.open_tree("future").unwrap();
        future.insert(b"k", &b"v"[..]).unwrap();
        match s.copy_to_postgres(&pg) {
            Err(CopyError::UnknownTrees(t)) => assert_eq!(t[0].tree, "future"),
            other => panic!("{other:?}"),
        }
        assert!(pg.tables_with_data().unwrap().is_empty());
        future.clear().unwrap();
        s.copy_to_postgres(&pg).unwrap();
        assert!(pg.check().unwrap().is_clean());
        assert_eq!(TREES.len(), 24);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_store_larger_than_a_batch_goes_both_ways_in_batches() {
        let Some(url) = testdb::database() else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let s = open(&dir.path().join("a"));
        // More rows than one statement writes and one read fetches, in several tables.
        let n = 2 * super::super::BATCH + 345;
        let ms: Vec<_> = (0..n)
            .map(|i| crate::store::test_message(&format!("+1202555{:04}", i % 10_000)))
            .collect();
        for chunk in ms.chunks(500) {
            s.insert(chunk, None).unwrap();
        }
        let from = crate::sms::Address::parse_number("from", "+12025550100").unwrap();
        let now = chrono::Utc::now();
        for i in 0..super::super::BATCH + 10 {
            let pdu = crate::sms::encode_deliver(
                None,
                &from,
                &format!("text {i}"),
                &now.fixed_offset(),
                false,
                1,
            )
            .unwrap();
            s.receive("sim0", &pdu[0], None, now).unwrap();
        }
        assert_eq!(s.inner.inbound_pending.len(), super::super::BATCH + 10);
        let pg = round_trip(&s, &url, &dir.path().join("b"));
        let rows = pg.check().unwrap().trees;
        assert!(
            rows.iter()
                .any(|t| t.tree == "messages" && t.records == n as u64)
        );
        assert!(
            rows.iter()
                .any(|t| t.tree == "inbound" && t.records == (super::super::BATCH + 10) as u64)
        );
    }
}
