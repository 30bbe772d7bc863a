//! The corpus of answers real phones and modems gave to `AT+CMGR` / `AT+CMGL`
//! (tests/fixtures/modem-answers.toml, each entry with its source), each read as the driver
//! reads it; tests/gateway/inbound.rs replays them to the daemon over a PTY.

use smsgate::modem::stored::{self, Content};
use smsgate::sms::{self, Pdu};

#[path = "../fixtures/corpus.rs"]
mod data;
use data::corpus;

/// The answer's lines as the driver's line codec hands them over (empty lines dropped).
fn lines(answer: &str) -> Vec<String> {
    answer
        .split(['\r', '\n'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

fn read(answer: &str) -> stored::StoredAnswer {
    let lines = lines(answer);
    if lines
        .first()
        .is_some_and(|l| l.to_ascii_uppercase().starts_with("+CMGL:"))
    {
        stored::parse_cmgl(&lines).remove(0)
    } else {
        stored::parse_cmgr(&lines)
    }
}

fn deliver(pdu: &[u8]) -> sms::Deliver {
    match sms::decode_lenient(pdu, true) {
        Ok((Pdu::Deliver(d), _)) => d,
        other => panic!("not a deliver: {other:?}"),
    }
}

#[test]
fn every_captured_answer_is_read_for_what_it_holds() {
    let corpus = corpus();
    assert!(corpus.len() >= 30, "{} entries", corpus.len());
    let mut delivers = 0;
    for a in &corpus {
        let got = read(&a.answer);
        let at = format!("{} ({:?})", a.source, a.answer);
        match a.kind.as_str() {
            "deliver" => {
                let Content::Message(pdu) = &got.content else {
                    panic!("{at}: expected a message, got {:?}", got.content)
                };
                let d = deliver(pdu);
                assert_eq!(Some(d.from.to_string()), a.from, "{at}");
                assert_eq!(Some(d.user_data.text()), a.text, "{at}");
                delivers += 1;
            }
            "report" => assert!(
                matches!(got.content, Content::Report(_)),
                "{at}: {:?}",
                got.content
            ),
            "submit" | "command" => assert!(
                matches!(got.content, Content::Foreign { .. }),
                "{at}: {:?}",
                got.content
            ),
            "empty" => assert_eq!(got.content, Content::Empty, "{at}"),
            "unreadable" | "text-mode" => assert!(
                matches!(got.content, Content::Unreadable { .. }),
                "{at}: {:?}",
                got.content
            ),
            other => panic!("{at}: unknown kind {other}"),
        }
    }
    assert!(delivers >= 14, "{delivers} ordinary texts");
}
