//! Framing of the byte stream a modem sends into lines and the `> ` prompt (a `tokio_util`
//! codec), and the classification of a line: final result, unsolicited result code, or data.
//!
//! Modems end lines with `\r\n`, some with `\r\r\n`, echo ends with a bare `\r`; the SMS prompt
//! `> ` (or `>`) comes with no line ending at all. Empty lines carry no meaning and are skipped.

use bytes::{Buf, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

/// The longest line kept: anything longer (a modem spewing garbage) is cut here, so a broken
/// modem cannot make the driver buffer without bound.
pub const MAX_LINE: usize = 4096;

/// One unit of modem output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A non-empty line without its line ending.
    Line(String),
    /// The `> ` prompt after `AT+CMGS=<len>`.
    Prompt,
}

/// The codec: bytes → [`Frame`]s; commands are written as they are (the caller adds `\r`).
#[derive(Debug, Default)]
pub struct AtCodec {
    /// A prompt was just emitted: a single space right after it belongs to it.
    after_prompt: bool,
}

impl AtCodec {
    /// A new codec.
    pub fn new() -> Self {
        AtCodec::default()
    }
}

impl Decoder for AtCodec {
    type Item = Frame;
    type Error = std::io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, Self::Error> {
        loop {
            // Skip line endings, NULs (some modems send them on wake) and the prompt's space.
            while let Some(&b) = buf.first() {
                if b == b'\r' || b == b'\n' || b == 0 || (b == b' ' && self.after_prompt) {
                    buf.advance(1);
                    self.after_prompt = false;
                } else {
                    break;
                }
            }
            let Some(&first) = buf.first() else {
                return Ok(None);
            };
            self.after_prompt = false;
            if first == b'>' {
                // The prompt has no line ending: `>` alone, or `> `. A line that merely starts
                // with '>' does not happen in AT output.
                buf.advance(1);
                self.after_prompt = true;
                return Ok(Some(Frame::Prompt));
            }
            match buf.iter().position(|&b| b == b'\r' || b == b'\n') {
                Some(end) => {
                    let line = buf.split_to(end);
                    let text = clean(&line);
                    if text.is_empty() {
                        continue;
                    }
                    return Ok(Some(Frame::Line(text)));
                }
                None if buf.len() >= MAX_LINE => {
                    let line = buf.split_to(MAX_LINE);
                    return Ok(Some(Frame::Line(clean(&line))));
                }
                None => return Ok(None),
            }
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, Self::Error> {
        match self.decode(buf)? {
            Some(f) => Ok(Some(f)),
            None if buf.is_empty() => Ok(None),
            None => {
                let line = buf.split_to(buf.len());
                let text = clean(&line);
                Ok((!text.is_empty()).then_some(Frame::Line(text)))
            }
        }
    }
}

/// Lossy UTF-8, without surrounding white space and control characters (a Ctrl-Z that echoes
/// back after a PDU, stray NULs).
fn clean(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .trim_matches(|c: char| c.is_whitespace() || c.is_control())
        .to_string()
}

impl Encoder<&[u8]> for AtCodec {
    type Error = std::io::Error;

    fn encode(&mut self, item: &[u8], dst: &mut BytesMut) -> Result<(), Self::Error> {
        dst.extend_from_slice(item);
        Ok(())
    }
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinalResult {
    /// `OK`.
    Ok,
    /// `ERROR` with no code.
    Error,
    /// `+CME ERROR: <n>` (equipment / SIM errors, TS 27.007 §9.2). Text forms map to a code when
    /// known, else 0 with the text kept.
    Cme(u16, String),
    /// `+CMS ERROR: <n>` (SMS errors, TS 27.005 §3.2.5), and Fibocom's `+CMGS ERROR: <n>`.
    Cms(u16, String),
    /// `COMMAND NOT SUPPORT` (Huawei).
    NotSupported,
    /// `NO CARRIER`, `BUSY`, `NO ANSWER`, `NO DIALTONE`: call results, final for a command.
    NoCarrier(String),
}

/// What a line is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineKind {
    /// It ends the running command.
    Final(FinalResult),
    /// It is an unsolicited result code (when the running command does not expect it).
    Urc,
    /// Anything else: part of a response, or noise.
    Data,
}

/// Classifies a line. `expect` is the response prefix of the running command (e.g. `+CREG:` for
/// `AT+CREG?`): a line that starts with it is data, even when the same prefix is also a URC.
pub fn classify(line: &str, expect: Option<&str>) -> LineKind {
    if let Some(f) = final_result(line) {
        return LineKind::Final(f);
    }
    if let Some(p) = expect
        && !p.is_empty()
        && starts_with_ignore_case(line, p)
    {
        return LineKind::Data;
    }
    if is_urc(line) {
        LineKind::Urc
    } else {
        LineKind::Data
    }
}

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len() && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

fn final_result(line: &str) -> Option<FinalResult> {
    let upper = line.to_ascii_uppercase();
    match upper.as_str() {
        "OK" => return Some(FinalResult::Ok),
        "ERROR" => return Some(FinalResult::Error),
        "COMMAND NOT SUPPORT" | "COMMAND NOT SUPPORTED" => return Some(FinalResult::NotSupported),
        "NO CARRIER" | "BUSY" | "NO ANSWER" | "NO DIALTONE" => {
            return Some(FinalResult::NoCarrier(line.to_string()));
        }
        _ => {}
    }
    for (prefix, cms) in [
        ("+CME ERROR:", false),
        ("+CMS ERROR:", true),
        ("+CMGS ERROR:", true),
    ] {
        if let Some(rest) = upper.strip_prefix(prefix) {
            let text = line[prefix.len()..].trim().to_string();
            let code = rest.trim().parse::<u16>().ok().unwrap_or_else(|| {
                if cms {
                    cms_code_from_text(&text)
                } else {
                    cme_code_from_text(&text)
                }
            });
            return Some(if cms {
                FinalResult::Cms(code, text)
            } else {
                FinalResult::Cme(code, text)
            });
        }
    }
    None
}

/// `+CMEE=2` text forms of the CME errors a driver acts on.
fn cme_code_from_text(text: &str) -> u16 {
    let t = text.to_ascii_lowercase();
    match t.as_str() {
        "sim not inserted" => 10,
        "sim pin required" => 11,
        "sim puk required" => 12,
        "sim failure" => 13,
        "sim busy" => 14,
        "sim wrong" => 15,
        "incorrect password" => 16,
        "sim pin2 required" => 17,
        "not found" => 22,
        "no network service" => 30,
        "network timeout" => 31,
        _ => 0,
    }
}

/// `+CMEE=2` text forms of the CMS errors.
fn cms_code_from_text(text: &str) -> u16 {
    let t = text.to_ascii_lowercase();
    match t.as_str() {
        "me failure" => 300,
        "operation not allowed" => 302,
        "operation not supported" => 303,
        "invalid pdu mode parameter" => 304,
        "sim not inserted" => 310,
        "sim pin required" => 311,
        "sim failure" => 313,
        "sim busy" => 314,
        "memory failure" => 320,
        "invalid memory index" => 321,
        "memory full" => 322,
        "smsc address unknown" => 330,
        "no network service" => 331,
        "network timeout" => 332,
        "unknown error" => 500,
        _ => 0,
    }
}

/// Unsolicited result codes seen on real modems (TS 27.005/27.007 and vendor extensions).
fn is_urc(line: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "+CMTI:", "+CMT:", "+CDS:", "+CDSI:", "+CBM:", "+CREG:", "+CGREG:", "+CEREG:", "+C5GREG:",
        "+CRING:", "+CLIP:", "+CCWA:", "+CUSD:", "+CIEV:", "+CPIN:", "+CFUN:", "+QIND:", "+QUSIM:",
        "+CGEV:", "+PACSP", "#STN:", "+STIN:", "+CSQN:", "+CTZV:", "+CTZE:", "*PSUTTZ:", "+NITZ:",
        "+SIM:", "+CMGRMI:",
    ];
    const WORDS: &[&str] = &[
        "RING",
        "RDY",
        "SMS READY",
        "CALL READY",
        "SMS DONE",
        "PB DONE",
        "NORMAL POWER DOWN",
        "UNDER-VOLTAGE POWER DOWN",
        "UNDER-VOLTAGE WARNNING",
        "OVER-VOLTAGE WARNNING",
        "+PBREADY",
        "PBREADY",
    ];
    // Huawei's ^RSSI, ^HCSQ, ^BOOT, ^MODE, ^SRVST, ^SIMST, ^DSFLOWRPT, ^SMMEMFULL, …
    if line.starts_with('^') {
        return true;
    }
    let upper = line.to_ascii_uppercase();
    WORDS.contains(&upper.as_str()) || PREFIXES.iter().any(|p| upper.starts_with(p))
}

/// The response prefix a command's information lines carry: `AT+CSQ` → `+CSQ:`,
/// `AT+CPMS?` → `+CPMS:`, `AT^SYSINFO` → `^SYSINFO:`. `None` for basic commands (`ATI`, `ATE0`).
pub fn response_prefix(command: &str) -> Option<String> {
    let c = command.trim();
    let body = c
        .get(2..)
        .filter(|_| c.len() >= 2 && c[..2].eq_ignore_ascii_case("AT"))?;
    let first = body.chars().next()?;
    if first != '+' && first != '^' && first != '$' && first != '#' && first != '*' {
        return None;
    }
    let end = body.find(['=', '?', ';']).unwrap_or(body.len());
    Some(format!("{}:", body[..end].to_ascii_uppercase()))
}

/// The URC forms the driver acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Urc {
    /// `+CMTI: "SM",7`: a message was stored at index 7 of that memory.
    NewMessage {
        /// The memory (`SM`, `ME`, `MT`, `SR`).
        memory: String,
        /// Its index.
        index: u32,
    },
    /// `+CDSI: "SR",3`: a status report was stored.
    NewStatusReport {
        /// The memory.
        memory: String,
        /// Its index.
        index: u32,
    },
    /// `+CMT: [<alpha>],<length>`: a message delivered directly; the PDU is the next line.
    DirectMessage,
    /// `+CDS: <length>`: a status report delivered directly; the PDU is the next line.
    DirectStatusReport,
    /// `+CREG: [<n>,]<stat>[,…]` (or CGREG/CEREG): registration changed.
    Registration(Option<u8>),
    /// The modem (re)booted or lost its SIM state: `RDY`, `+CFUN: 1`, `+CPIN: SIM PIN`,
    /// `+CPIN: NOT READY`. The driver initialises it again. (Huawei's `^BOOT` is periodic noise,
    /// not a reboot.)
    Boot(String),
    /// `SMS Ready`, `SMS DONE`, `+CPIN: READY`, `Call Ready`, `PB DONE`: the modem says a part of
    /// it is ready. Nothing to do: initialisation already waits for SMS readiness itself.
    Ready(String),
    /// Huawei `^SMMEMFULL` or similar: the SIM message store is full.
    StorageFull,
    /// `+CUSD: <m>[,"<text>",<dcs>]`: the operator's answer to a USSD code (its arguments).
    Ussd(String),
    /// Anything else (signal spam, `RING`, …): logged, not acted on.
    Other(String),
}

/// Parses a URC line.
pub fn parse_urc(line: &str) -> Urc {
    let upper = line.to_ascii_uppercase();
    let args = |prefix: &str| line[prefix.len()..].trim().to_string();
    let mem_index = |rest: &str| -> Option<(String, u32)> {
        let mut it = rest.split(',');
        let mem = it.next()?.trim().trim_matches('"').to_string();
        let index = it.next()?.trim().parse().ok()?;
        Some((mem, index))
    };
    if upper.starts_with("+CMTI:") {
        if let Some((memory, index)) = mem_index(&args("+CMTI:")) {
            return Urc::NewMessage { memory, index };
        }
    } else if upper.starts_with("+CDSI:") {
        if let Some((memory, index)) = mem_index(&args("+CDSI:")) {
            return Urc::NewStatusReport { memory, index };
        }
    } else if upper.starts_with("+CMT:") {
        return Urc::DirectMessage;
    } else if upper.starts_with("+CDS:") {
        return Urc::DirectStatusReport;
    } else if let Some(p) = ["+CREG:", "+CGREG:", "+CEREG:"]
        .iter()
        .find(|p| upper.starts_with(**p))
    {
        return Urc::Registration(parse_registration(&args(p), true));
    } else if upper.starts_with("^SMMEMFULL") {
        return Urc::StorageFull;
    } else if upper.starts_with("+CUSD:") {
        return Urc::Ussd(args("+CUSD:"));
    } else if matches!(
        upper.as_str(),
        "SMS READY" | "SMS DONE" | "CALL READY" | "PB DONE" | "+CPIN: READY"
    ) {
        return Urc::Ready(line.to_string());
    } else if upper == "RDY" || upper == "+CFUN: 1" || upper.starts_with("+CPIN:") {
        return Urc::Boot(line.to_string());
    }
    Urc::Other(line.to_string())
}

/// Registration status from `+CREG: <n>,<stat>[,…]` (a response) or `+CREG: <stat>[,…]` (a URC).
/// Malformed variants (empty fields, unterminated quotes) give `None` rather than a wrong value.
pub fn parse_registration(args: &str, urc: bool) -> Option<u8> {
    let fields: Vec<&str> = args.split(',').map(str::trim).collect();
    // A response always starts with <n>; a URC starts with <stat>, followed by quoted LAC/CI.
    let stat = if urc {
        if fields.len() >= 2 && !fields[1].starts_with('"') && !fields[1].is_empty() {
            // `+CREG: 2,1,"ABCD","1234"` as a URC would be unusual, but some modems print the
            // response form unsolicited.
            fields[1]
        } else {
            fields[0]
        }
    } else if fields.len() >= 2 {
        fields[1]
    } else {
        fields[0]
    };
    stat.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames_of(chunks: &[&[u8]]) -> Vec<Frame> {
        let mut codec = AtCodec::new();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for c in chunks {
            buf.extend_from_slice(c);
            while let Some(f) = codec.decode(&mut buf).unwrap() {
                out.push(f);
            }
        }
        while let Some(f) = codec.decode_eof(&mut buf).unwrap() {
            out.push(f);
        }
        out
    }

    fn line(s: &str) -> Frame {
        Frame::Line(s.to_string())
    }

    const DIALOGUE: &[u8] =
        b"AT+CMGS=23\r\r\n> 0011000B916407281553F80000AA0AE8329BFD4697D9EC37\x1a\r\n+CMTI: \"SM\",3\r\n\r\n+CMGS: 42\r\r\n\r\nOK\r\n";

    fn expected() -> Vec<Frame> {
        vec![
            line("AT+CMGS=23"),
            Frame::Prompt,
            line("0011000B916407281553F80000AA0AE8329BFD4697D9EC37"),
            line("+CMTI: \"SM\",3"),
            line("+CMGS: 42"),
            line("OK"),
        ]
    }

    #[test]
    fn frames_a_whole_dialogue() {
        assert_eq!(frames_of(&[DIALOGUE]), expected());
    }

    #[test]
    fn frames_the_same_dialogue_byte_by_byte_and_at_every_split() {
        let bytes: Vec<&[u8]> = DIALOGUE.chunks(1).collect();
        assert_eq!(frames_of(&bytes), expected());
        for cut in 0..DIALOGUE.len() {
            let (a, b) = DIALOGUE.split_at(cut);
            assert_eq!(frames_of(&[a, b]), expected(), "split at {cut}");
        }
    }

    #[test]
    fn prompt_without_space_and_split_space() {
        assert_eq!(frames_of(&[b"\r\n>"]), vec![Frame::Prompt]);
        assert_eq!(
            frames_of(&[b"\r\n>", b" ", b"\r\nOK\r\n"]),
            vec![Frame::Prompt, line("OK")]
        );
    }

    #[test]
    fn long_garbage_is_cut_not_buffered() {
        let garbage = vec![b'x'; MAX_LINE * 2 + 10];
        let frames = frames_of(&[&garbage]);
        assert_eq!(frames.len(), 3);
        assert!(
            frames
                .iter()
                .all(|f| matches!(f, Frame::Line(l) if l.len() <= MAX_LINE))
        );
    }

    #[test]
    fn invalid_utf8_is_lossy() {
        let frames = frames_of(&[b"\xff\xfe+CSQ: 20,99\r\n"]);
        assert_eq!(frames.len(), 1);
        assert!(matches!(&frames[0], Frame::Line(l) if l.ends_with("+CSQ: 20,99")));
    }

    #[test]
    fn classifies_finals() {
        assert_eq!(classify("OK", None), LineKind::Final(FinalResult::Ok));
        assert_eq!(classify("ERROR", None), LineKind::Final(FinalResult::Error));
        assert_eq!(
            classify("+CMS ERROR: 331", None),
            LineKind::Final(FinalResult::Cms(331, "331".into()))
        );
        assert_eq!(
            classify("+CMGS ERROR: 500", None),
            LineKind::Final(FinalResult::Cms(500, "500".into()))
        );
        assert_eq!(
            classify("+CME ERROR: SIM PIN required", None),
            LineKind::Final(FinalResult::Cme(11, "SIM PIN required".into()))
        );
        assert_eq!(
            classify("COMMAND NOT SUPPORT", None),
            LineKind::Final(FinalResult::NotSupported)
        );
        assert!(matches!(
            classify("NO CARRIER", None),
            LineKind::Final(FinalResult::NoCarrier(_))
        ));
    }

    #[test]
    fn urc_unless_expected() {
        assert_eq!(classify("+CREG: 1", None), LineKind::Urc);
        assert_eq!(classify("+CREG: 0,1", Some("+CREG:")), LineKind::Data);
        assert_eq!(classify("^RSSI: 17", Some("+CSQ:")), LineKind::Urc);
        assert_eq!(classify("RING", None), LineKind::Urc);
        assert_eq!(classify("SMS Ready", None), LineKind::Urc);
        assert_eq!(classify("+CSQ: 20,99", Some("+CSQ:")), LineKind::Data);
        assert_eq!(classify("huawei", None), LineKind::Data);
        assert_eq!(classify("+CPIN: READY", Some("+CPIN:")), LineKind::Data);
        assert_eq!(classify("+CPIN: READY", None), LineKind::Urc);
    }

    #[test]
    fn response_prefixes() {
        assert_eq!(response_prefix("AT+CSQ").as_deref(), Some("+CSQ:"));
        assert_eq!(response_prefix("AT+CPMS?").as_deref(), Some("+CPMS:"));
        assert_eq!(response_prefix("at+cmgr=3").as_deref(), Some("+CMGR:"));
        assert_eq!(response_prefix("AT^SYSINFO").as_deref(), Some("^SYSINFO:"));
        assert_eq!(response_prefix("ATI"), None);
        assert_eq!(response_prefix("ATE0"), None);
        assert_eq!(response_prefix("A"), None);
    }

    #[test]
    fn parses_urcs() {
        assert_eq!(
            parse_urc("+CMTI: \"ME\",67"),
            Urc::NewMessage {
                memory: "ME".into(),
                index: 67
            }
        );
        assert_eq!(
            parse_urc("+CMTI: \"SM\",0"),
            Urc::NewMessage {
                memory: "SM".into(),
                index: 0
            }
        );
        assert_eq!(
            parse_urc("+CDSI: \"SR\",2"),
            Urc::NewStatusReport {
                memory: "SR".into(),
                index: 2
            }
        );
        assert_eq!(parse_urc("+CMT: ,24"), Urc::DirectMessage);
        assert_eq!(parse_urc("+CDS: 25"), Urc::DirectStatusReport);
        assert_eq!(parse_urc("+CREG: 5"), Urc::Registration(Some(5)));
        assert_eq!(
            parse_urc("+CREG: 1,\"00C3\",\"0010\""),
            Urc::Registration(Some(1))
        );
        assert_eq!(parse_urc("+CREG: \""), Urc::Registration(None));
        assert_eq!(parse_urc("+CREG: "), Urc::Registration(None));
        assert_eq!(parse_urc("SMS Ready"), Urc::Ready("SMS Ready".into()));
        assert_eq!(parse_urc("RDY"), Urc::Boot("RDY".into()));
        assert_eq!(
            parse_urc("+CPIN: SIM PIN"),
            Urc::Boot("+CPIN: SIM PIN".into())
        );
        assert_eq!(
            parse_urc("^BOOT:20952,0,0,0,72"),
            Urc::Other("^BOOT:20952,0,0,0,72".into())
        );
        assert_eq!(parse_urc("^SMMEMFULL: \"SM\""), Urc::StorageFull);
        assert_eq!(
            parse_urc("+CMTI: garbage"),
            Urc::Other("+CMTI: garbage".into())
        );
        assert_eq!(parse_registration("0,1", false), Some(1));
        assert_eq!(
            parse_registration("2,5,\"ABCD\",\"1234\",7", false),
            Some(5)
        );
    }
}
