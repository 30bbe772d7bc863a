use super::*;
use crate::store::backup::testing::*;

#[tokio::test]
async fn export_then_import_gives_the_same_store() {
    let dir = tempfile::tempdir().unwrap();
    let (s, ms) = populated(&dir.path().join("a"));
    // Odd values: JSON that must not be reformatted, and bytes that are no JSON.
    s.inner
        .templates
        .insert(
            b"spaced",
            &br#"{"text": "x",  "updated_at":"2030-01-01T00:00:00Z","updated_by":"\u0041"}"#[..],
        )
        .unwrap();
    s.inner
        .templates
        .insert(b"hexlike", &br#"{"hex":"00"}"#[..])
        .unwrap();
    s.inner
        .templates
        .insert(b"\xff\x00", &b"\x00\xff"[..])
        .unwrap();
    // Deeply nested JSON (the import reads a value without a depth limit).
    for depth in [126, 127, 128, 200] {
        let deep = "[".repeat(depth) + &"]".repeat(depth);
        s.inner
            .templates
            .insert(format!("deep{depth}").as_bytes(), deep.as_bytes())
            .unwrap();
    }
    s.durable().await.unwrap();
    let report = s.check().unwrap();
    // The odd templates do not decode as templates: exactly those problems.
    assert_eq!(report.problems.len(), 6, "{report:#?}");
    assert!(
        report
            .problems
            .iter()
            .all(|p| p.tree == "templates" && p.key != hex(b"spaced"))
    );

    let mut out = Vec::new();
    let summary = s.export_jsonl(&mut out, Utc::now()).unwrap();
    let text = String::from_utf8(out.clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len() as u64, summary.records + 2);
    let header: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(header["smsgate_export"], 1);
    assert_eq!(header["version"], env!("CARGO_PKG_VERSION"));
    assert!(lines[0].starts_with("{\"smsgate_export\":1,"));
    assert_eq!(
        lines.last().unwrap(),
        &format!("{{\"end\":true,\"records\":{}}}", summary.records)
    );
    let n = lines.len();
    for l in &lines[1..n - 1] {
        assert!(serde_json::from_str::<RecordLine<'_>>(l).is_ok(), "{l}");
    }
    assert!(
        text.contains(r#""value":{"text": "x",  "updated_at""#),
        "verbatim"
    );
    assert!(text.contains(&format!(r#""key":"{}","value":[[["#, hex(b"deep126"))));
    assert!(text.contains(&format!(r#""key":"{}","value":[[["#, hex(b"deep200"))));
    assert!(text.contains(&format!(
        r#""key":"{}","value":{{"hex":"{}"}}"#,
        hex(b"hexlike"),
        hex(br#"{"hex":"00"}"#)
    )));

    let b = dir.path().join("b");
    let imported = SledStore::import_jsonl(&b, &mut out.as_slice()).unwrap();
    assert_eq!(imported.records, summary.records);
    assert_eq!(imported.trees, summary.trees);
    let t = open(&b);
    assert_eq!(dump(&s), dump(&t), "every tree equal byte for byte");
    assert_eq!(s.first_difference(&t).unwrap(), None);
    let v = t.verify_all_histories().unwrap();
    assert!(v.broken.is_empty(), "{v:?}");
    assert_eq!(v.messages, ms.len() as u64);
    let r = t.check().unwrap();
    assert_eq!(r.problems, report.problems);
    assert_eq!(r.trees, report.trees);
    // Every tree had something to carry.
    for name in TREES {
        assert!(
            r.trees.iter().any(|c| c.tree == name && c.records > 0),
            "{name}: {:?}",
            r.trees
        );
    }
    // What the store says is the same.
    for m in &ms {
        assert_eq!(
            s.get_with_events(&m.id).unwrap(),
            t.get_with_events(&m.id).unwrap()
        );
    }
    assert_eq!(t.counts().unwrap(), s.counts().unwrap());
    assert_eq!(t.queue_depth(), 3);
}

#[tokio::test]
async fn a_clean_store_checks_clean_and_a_copy_is_identical() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = populated(&dir.path().join("a"));
    let r = s.check().unwrap();
    assert!(r.is_clean(), "{r:#?}");
    assert!(r.warnings.is_empty(), "{r:#?}");
    assert_eq!(r.messages, 6);
    // 6 implied first entries, 2 + 3 + 1 stored ones.
    assert_eq!(r.history_entries, 12);
    let c = dir.path().join("c");
    let copied = s.copy_into(&c).unwrap();
    assert_eq!(
        copied.records,
        r.trees.iter().map(|t| t.records).sum::<u64>()
    );
    let t = open(&c);
    assert_eq!(dump(&s), dump(&t));
    assert!(t.check().unwrap().is_clean());
    // Into a directory that is not empty: refused.
    drop(t);
    assert!(s.copy_into(&c).is_err());
    let e = SledStore::import_jsonl(&c, &mut &b""[..]).unwrap_err();
    assert!(matches!(e, ImportError::NotEmpty(_)), "{e}");
}

#[tokio::test]
async fn new_deliveries_are_numbered_after_the_imported_ones() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    // Each reopen moves sled's generator on by two million: high sequence numbers.
    for _ in 0..3 {
        let s = open(&a);
        s.enqueue_webhooks(&[webhook(1)]).unwrap();
        s.durable().await.unwrap();
    }
    let s = open(&a);
    let max = s
        .inner
        .outbox
        .last()
        .unwrap()
        .map(|(k, _)| u64::from_be_bytes(<[u8; 8]>::try_from(&k[..]).unwrap()))
        .unwrap();
    assert!(max >= 4_000_000, "{max}");
    let mut out = Vec::new();
    s.export_jsonl(&mut out, Utc::now()).unwrap();
    drop(s);
    let b = dir.path().join("b");
    SledStore::import_jsonl(&b, &mut out.as_slice()).unwrap();
    for _ in 0..2 {
        let t = open(&b);
        let e = t.enqueue_webhooks(&[webhook(2)]).unwrap();
        assert!(e[0].seq > max, "{} after {max}", e[0].seq);
        t.durable().await.unwrap();
    }
    // And through a copy.
    let t = open(&b);
    let c = dir.path().join("c");
    t.copy_into(&c).unwrap();
    let top = t
        .inner
        .outbox
        .last()
        .unwrap()
        .map(|(k, _)| u64::from_be_bytes(<[u8; 8]>::try_from(&k[..]).unwrap()))
        .unwrap();
    drop(t);
    let u = open(&c);
    assert!(u.enqueue_webhooks(&[webhook(3)]).unwrap()[0].seq > top);
}

#[tokio::test]
async fn bad_input_is_refused_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = populated(&dir.path().join("a"));
    let mut out = Vec::new();
    s.export_jsonl(&mut out, Utc::now()).unwrap();
    let good = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = good.lines().collect();
    let n = lines.len();
    let cut = |k: usize| lines[..k].join("\n") + "\n";
    let record = |tree: &str, key: &str, value: &str| {
        format!("{{\"tree\":\"{tree}\",\"key\":\"{key}\",\"value\":{value}}}")
    };
    let with = |i: usize, l: String| {
        let mut v: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
        v[i] = l;
        v.join("\n") + "\n"
    };
    let cases: Vec<(String, u64, &str)> = vec![
        (String::new(), 1, "empty"),
        (
            "{\"message_id\":\"x\"}\n".into(),
            1,
            "not an smsgate store export",
        ),
        (
            with(0, "{\"smsgate_export\":2,\"version\":\"9.0.0\"}".into()),
            1,
            "format 2",
        ),
        (cut(n - 1), n as u64 - 1, "cut short"),
        (cut(3) + &lines[3][..lines[3].len() / 2], 4, "not a record"),
        (
            with(2, record("messages", "0g", "{}")),
            3,
            "not a hex digit",
        ),
        (
            with(2, record("messages", "00", "{\"hex\":\"abc\"}")),
            3,
            "odd number",
        ),
        (with(2, record("nope", "00", "{}")), 3, "unknown tree"),
        (with(2, lines[1].to_string()), 3, "repeated or out of order"),
        (
            with(n - 1, "{\"end\":true,\"records\":1}".into()),
            n as u64,
            "counts 1 records",
        ),
        (good.clone() + "{}\n", n as u64 + 1, "after the end line"),
    ];
    for (i, (input, line, what)) in cases.into_iter().enumerate() {
        let target = dir.path().join(format!("t{i}"));
        match SledStore::import_jsonl(&target, &mut input.as_bytes()) {
            Err(ImportError::BadInput { line: l, detail }) => {
                assert_eq!(l, line, "case {i}: {detail}");
                assert!(detail.contains(what), "case {i}: {detail}");
            }
            other => panic!("case {i}: {other:?}"),
        }
    }
}
