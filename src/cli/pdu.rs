//! `smsgate pdu encode|decode`: the codec as a tool for admins, scripts and tests.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::EXIT_BAD_INPUT;
use crate::sms::{
    self, Address, Concat, Deliver, NationalLanguage, Pdu, StatusReport, Submit, SubmitOptions,
    TypeOfNumber, UserData, Validity,
};

/// `smsgate pdu …`
#[derive(Debug, Subcommand)]
pub enum PduCommand {
    /// Encode a text into SMS-SUBMIT PDUs; prints JSON {"encoding", "parts":[{"pdu","tpdu_length"}]}.
    Encode(EncodeArgs),
    /// Decode one PDU (SMS-DELIVER, SMS-SUBMIT or SMS-STATUS-REPORT) into JSON.
    Decode(DecodeArgs),
}

/// Arguments of `smsgate pdu encode`.
#[derive(Debug, Args)]
pub struct EncodeArgs {
    /// Destination: +E.164 (international) or national digits.
    #[arg(long)]
    pub to: String,
    /// The text; `-` reads it from standard input (one trailing newline is dropped).
    #[arg(long)]
    pub text: String,
    /// SMSC number to write into the PDU (default: the zero-length field, "use the SIM's SMSC").
    #[arg(long)]
    pub smsc: Option<String>,
    /// Ask the network for a delivery report (TP-SRR).
    #[arg(long)]
    pub status_report: bool,
    /// Relative validity period, e.g. `30m`, `12h`, `3d`, `2w` (rounded up to what TP-VP holds).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub validity: Option<Duration>,
    /// Most parts the text may take.
    #[arg(long, default_value_t = sms::DEFAULT_MAX_PARTS)]
    pub max_parts: usize,
    /// 8-bit concatenation reference for multi-part texts (default: derived from the clock).
    #[arg(long)]
    pub reference: Option<u8>,
    /// TP-MR to write (modems usually replace it).
    #[arg(long, default_value_t = 0)]
    pub message_reference: u8,
    /// National language shift tables the encoder may use to stay in GSM 7-bit
    /// (comma-separated: turkish, spanish, portuguese).
    #[arg(long, value_delimiter = ',', value_parser = parse_language)]
    pub national_language: Vec<NationalLanguage>,
}

/// Arguments of `smsgate pdu decode`.
#[derive(Debug, Args)]
pub struct DecodeArgs {
    /// The PDU in hex, as printed by AT+CMGR, +CMT or +CDS (SMSC octets first); or a modem's
    /// whole answer to AT+CMGR / AT+CMGL (`+CMGR: 0,,23` and the PDU line, with real line breaks
    /// or `\r\n` written out), as kept in an inbound message's `raw_answer`; `-` reads it from
    /// standard input.
    pub hex: String,
    /// The hex has no SMSC octets in front (it starts with the TPDU's first octet).
    #[arg(long)]
    pub no_smsc: bool,
}

fn parse_language(s: &str) -> Result<NationalLanguage, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "turkish" | "tr" => Ok(NationalLanguage::Turkish),
        "spanish" | "es" => Ok(NationalLanguage::Spanish),
        "portuguese" | "pt" => Ok(NationalLanguage::Portuguese),
        other => Err(format!(
            "unknown national language {other:?} (turkish, spanish or portuguese)"
        )),
    }
}

/// Why `pdu encode` or `pdu decode` has no answer.
#[derive(Debug, thiserror::Error)]
pub enum PduError {
    /// `-` and standard input cannot be read.
    #[error(transparent)]
    Input(#[from] super::StdinError),
    /// The text cannot be encoded.
    #[error(transparent)]
    Encode(#[from] sms::EncodeError),
    /// The hex or the PDU cannot be read.
    #[error(transparent)]
    Decode(#[from] sms::DecodeError),
    /// A `+CMGL:` answer without an entry.
    #[error("no +CMGL entry")]
    NoEntry,
    /// The modem's answer holds no readable PDU.
    #[error("unreadable: {0}")]
    Unreadable(String),
}

/// Runs a `pdu` subcommand: JSON on stdout, or a one-line error on stderr and exit code 2.
pub fn run(cmd: PduCommand) -> ExitCode {
    let result = match cmd {
        PduCommand::Encode(args) => encode(args),
        PduCommand::Decode(args) => decode(&args),
    };
    match result {
        Ok(v) => {
            let mut out = std::io::stdout().lock();
            // A closed stdout (e.g. `| head`) is not worth a panic.
            let _ = writeln!(out, "{v}");
            ExitCode::SUCCESS
        }
        Err(msg) => {
            eprintln!("error: {msg}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

/// `pdu encode` as a function: the JSON it prints, or the error line.
pub fn encode(args: EncodeArgs) -> Result<Value, PduError> {
    let text = super::read_text(&args.text)?;
    let reference = args.reference.unwrap_or_else(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        (nanos >> 10) as u8
    });
    let opts = SubmitOptions {
        smsc: args.smsc,
        status_report: args.status_report,
        validity: args.validity,
        message_reference: args.message_reference,
        concat_reference: reference,
        max_parts: args.max_parts,
        national_languages: args.national_language,
    };
    let msg = sms::encode_submit(&args.to, &text, &opts)?;
    let parts: Vec<Value> = msg
        .parts
        .iter()
        .map(|p| json!({"pdu": p.hex(), "tpdu_length": p.tpdu_length}))
        .collect();
    let (locking, single) = msg.national_language;
    Ok(json!({
        "encoding": msg.encoding.as_str(),
        "parts": parts,
        "national_language": language_json(locking, single),
    }))
}

/// `pdu decode` as a function: the JSON it prints, or the error line. A user data shorter than
/// TP-UDL says is read as far as it goes (`"truncated": true`).
pub fn decode(args: &DecodeArgs) -> Result<Value, PduError> {
    let input = super::read_text(&args.hex)?;
    let input = input.trim();
    if input.len() >= 6
        && (input[..6].eq_ignore_ascii_case("+CMGR:") || input[..6].eq_ignore_ascii_case("+CMGL:"))
    {
        return decode_answer(input);
    }
    let octets = sms::parse_hex(input)?;
    let (pdu, _) = sms::decode_lenient(&octets, !args.no_smsc)?;
    Ok(pdu_json(&pdu))
}

/// A modem's answer to `AT+CMGR`/`AT+CMGL`, read as the driver reads it: what the slot holds,
/// what the header declares against what the PDU spans, and the PDU decoded.
fn decode_answer(input: &str) -> Result<Value, PduError> {
    use crate::modem::stored::{self, Content};
    // `\r\n` written out (as JSON shows `raw_answer`), or real line breaks.
    let text = input.replace("\\r", "\r").replace("\\n", "\n");
    let lines: Vec<String> = text
        .split(['\r', '\n'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    let answer = if lines[0][..6].eq_ignore_ascii_case("+CMGL:") {
        stored::parse_cmgl(&lines)
            .into_iter()
            .next()
            .ok_or(PduError::NoEntry)?
    } else {
        stored::parse_cmgr(&lines)
    };
    let (holds, pdu) = match &answer.content {
        Content::Empty => ("empty", None),
        Content::Message(p) => ("message", Some(p)),
        Content::Report(p) => ("report", Some(p)),
        Content::Foreign { what } => {
            return Ok(
                json!({"holds": "foreign", "what": what, "stat": answer.stat,
                             "declared_length": answer.declared}),
            );
        }
        Content::Unreadable { reason, .. } => {
            return Err(PduError::Unreadable(reason.to_string()));
        }
    };
    let mut v = match pdu {
        Some(p) => {
            let (decoded, _) = sms::decode_lenient(p, true)?;
            let mut v = pdu_json(&decoded);
            v["pdu"] = json!(sms::to_hex(p));
            v["pdu_length"] = json!(p.len().saturating_sub(1 + usize::from(p[0])));
            v
        }
        None => json!({}),
    };
    v["holds"] = json!(holds);
    v["stat"] = json!(answer.stat);
    v["declared_length"] = json!(answer.declared);
    Ok(v)
}

/// The JSON view of a decoded PDU (keys documented in docs/pdu.md).
pub fn pdu_json(pdu: &Pdu) -> Value {
    match pdu {
        Pdu::Deliver(d) => deliver_json(d),
        Pdu::Submit(s) => submit_json(s),
        Pdu::StatusReport(r) => status_report_json(r),
    }
}

fn address_type(a: &Address) -> &'static str {
    match a.ton {
        TypeOfNumber::International => "international",
        TypeOfNumber::National => "national",
        TypeOfNumber::Alphanumeric => "alphanumeric",
        TypeOfNumber::NetworkSpecific => "network_specific",
        TypeOfNumber::Subscriber => "subscriber",
        TypeOfNumber::Abbreviated => "abbreviated",
        TypeOfNumber::Unknown | TypeOfNumber::Reserved => "unknown",
    }
}

fn concat_json(c: Option<Concat>) -> Value {
    match c {
        Some(c) => json!({"reference": c.reference, "part": c.part, "total": c.total,
                          "reference_bits": if c.sixteen_bit { 16 } else { 8 }}),
        None => Value::Null,
    }
}

fn language_json(locking: Option<NationalLanguage>, single: Option<NationalLanguage>) -> Value {
    let name = |l: Option<NationalLanguage>| l.map(|l| format!("{l:?}").to_ascii_lowercase());
    if locking.is_none() && single.is_none() {
        Value::Null
    } else {
        json!({"locking": name(locking), "single": name(single)})
    }
}

fn user_data_fields(obj: &mut serde_json::Map<String, Value>, ud: &UserData) {
    obj.insert("text".into(), json!(ud.text()));
    if ud.truncated {
        obj.insert("truncated".into(), json!(true));
    }
    obj.insert("encoding".into(), json!(ud.body.encoding().as_str()));
    obj.insert("concat".into(), concat_json(ud.concat()));
    if let sms::Body::Binary(bytes) = &ud.body {
        obj.insert("data".into(), json!(sms::to_hex(bytes)));
    }
    if let Some(h) = &ud.header {
        let (locking, single) = h.national_languages();
        obj.insert("national_language".into(), language_json(locking, single));
    }
}

fn deliver_json(d: &Deliver) -> Value {
    let mut obj = serde_json::Map::new();
    obj.insert("type".into(), json!("deliver"));
    obj.insert(
        "smsc".into(),
        json!(d.smsc.as_ref().map(Address::to_string)),
    );
    obj.insert("from".into(), json!(d.from.to_string()));
    obj.insert("from_type".into(), json!(address_type(&d.from)));
    obj.insert("timestamp".into(), json!(d.timestamp.to_rfc3339()));
    user_data_fields(&mut obj, &d.user_data);
    obj.insert("class".into(), json!(d.data_coding.class));
    obj.insert("dcs".into(), json!(d.data_coding.raw));
    obj.insert("protocol_id".into(), json!(d.protocol_id));
    Value::Object(obj)
}

fn submit_json(s: &Submit) -> Value {
    let mut obj = serde_json::Map::new();
    obj.insert("type".into(), json!("submit"));
    obj.insert(
        "smsc".into(),
        json!(s.smsc.as_ref().map(Address::to_string)),
    );
    obj.insert("to".into(), json!(s.to.to_string()));
    obj.insert("to_type".into(), json!(address_type(&s.to)));
    obj.insert("message_reference".into(), json!(s.message_reference));
    user_data_fields(&mut obj, &s.user_data);
    let (validity, until) = match s.validity {
        Some(Validity::Relative(secs)) => (json!(secs), Value::Null),
        Some(Validity::Absolute(t)) => (Value::Null, json!(t.to_rfc3339())),
        Some(Validity::Unspecified) | None => (Value::Null, Value::Null),
    };
    obj.insert("validity".into(), validity);
    obj.insert("validity_until".into(), until);
    obj.insert(
        "status_report_requested".into(),
        json!(s.status_report_requested),
    );
    obj.insert("dcs".into(), json!(s.data_coding.raw));
    Value::Object(obj)
}

fn status_report_json(r: &StatusReport) -> Value {
    json!({
        "type": "status_report",
        "smsc": r.smsc.as_ref().map(Address::to_string),
        "message_reference": r.message_reference,
        "recipient": r.recipient.to_string(),
        "timestamp": r.timestamp.to_rfc3339(),
        "discharge_time": r.discharge_time.to_rfc3339(),
        "status": {
            "code": r.status.code,
            "category": r.status.category(),
            "description": r.status.description(),
        },
    })
}
