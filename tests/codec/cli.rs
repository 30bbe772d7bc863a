//! `smsgate pdu encode|decode` as a user runs it: the real binary, JSON on stdout, exit codes.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn smsgate(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_smsgate"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run smsgate");
    {
        let mut pipe = child.stdin.take().expect("stdin");
        if let Some(s) = stdin {
            // A child that rejects its arguments exits without reading: a broken pipe here is
            // expected then, and the assertions look at its output and exit code.
            let _ = pipe.write_all(s.as_bytes());
        }
    }
    child.wait_with_output().expect("wait")
}

fn json_of(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

#[test]
fn encode_prints_parts_and_lengths() {
    let out = smsgate(
        &[
            "pdu",
            "encode",
            "--to",
            "+46708251358",
            "--text",
            "hellohello",
            "--validity",
            "4d",
        ],
        None,
    );
    let v = json_of(&out);
    assert_eq!(v["encoding"], "gsm7");
    assert_eq!(
        v["parts"][0]["pdu"],
        "0011000B916407281553F80000AA0AE8329BFD4697D9EC37"
    );
    assert_eq!(v["parts"][0]["tpdu_length"], 23);
}

#[test]
fn encode_reads_text_from_stdin_and_decode_reads_it_back() {
    let text =
        "Rappel : facture INV-1042, 120,50 € dûe le 1er déc. Répondez 1 pour être rappelé 😀";
    let out = smsgate(
        &[
            "pdu",
            "encode",
            "--to",
            "+33612345678",
            "--text",
            "-",
            "--status-report",
            "--smsc",
            "+33609001390",
            "--reference",
            "17",
        ],
        Some(&format!("{text}\n")),
    );
    let v = json_of(&out);
    assert_eq!(v["encoding"], "ucs2");
    let parts = v["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 2);
    let mut joined = String::new();
    for (i, p) in parts.iter().enumerate() {
        let d = json_of(&smsgate(
            &["pdu", "decode", p["pdu"].as_str().unwrap()],
            None,
        ));
        assert_eq!(d["type"], "submit");
        assert_eq!(d["to"], "+33612345678");
        assert_eq!(d["smsc"], "+33609001390");
        assert_eq!(d["status_report_requested"], true);
        assert_eq!(d["encoding"], "ucs2");
        assert_eq!(d["validity"], Value::Null);
        assert_eq!(d["concat"]["reference"], 17);
        assert_eq!(d["concat"]["part"], i + 1);
        assert_eq!(d["concat"]["total"], 2);
        joined.push_str(d["text"].as_str().unwrap());
    }
    assert_eq!(joined, text);
}

#[test]
fn decode_deliver_keys() {
    let d = json_of(&smsgate(
        &[
            "pdu",
            "decode",
            "07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07",
        ],
        None,
    ));
    assert_eq!(d["type"], "deliver");
    assert_eq!(d["smsc"], "+31624000000");
    assert_eq!(d["from"], "+31641600986");
    assert_eq!(d["text"], "How are you?");
    assert_eq!(d["timestamp"], "2002-08-26T19:37:41+00:00");
    assert_eq!(d["encoding"], "gsm7");
    assert_eq!(d["concat"], Value::Null);
}

#[test]
fn decode_status_report_keys() {
    let d = json_of(&smsgate(
        &[
            "pdu",
            "decode",
            "--no-smsc",
            "06000B910221815716F2709021510121807090215101718000",
        ],
        None,
    ));
    assert_eq!(d["type"], "status_report");
    assert_eq!(d["smsc"], Value::Null);
    assert_eq!(d["message_reference"], 0);
    assert_eq!(d["recipient"], "+20121875612");
    assert_eq!(d["timestamp"], "2007-09-12T15:10:12+02:00");
    assert_eq!(d["discharge_time"], "2007-09-12T15:10:17+02:00");
    assert_eq!(d["status"]["code"], 0);
    assert_eq!(d["status"]["category"], "delivered");
}

#[test]
fn bad_input_exits_2_with_one_line() {
    for args in [
        vec!["pdu", "decode", "0011zz"],
        vec!["pdu", "decode", "00040B9151"],
        vec!["pdu", "encode", "--to", "+1-not-a-number", "--text", "hi"],
        vec!["pdu", "encode", "--to", "+15551234567", "--text", ""],
        vec![
            "pdu",
            "encode",
            "--to",
            "+15551234567",
            "--text",
            "-",
            "--max-parts",
            "1",
        ],
    ] {
        let out = smsgate(&args, Some(&"x".repeat(200)));
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("error: "), "{args:?}: {err}");
    }
    let out = smsgate(&["pdu", "decode", "0011zz"], None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("character 4"), "{err}");
}
