//! Whole PDUs: SMS-SUBMIT encoding, SMS-DELIVER / SMS-STATUS-REPORT / SMS-SUBMIT decoding
//! (TS 23.040 §9.2.2), with the SMSC address field of PDU mode in front (TS 27.005 §3.1).

use std::time::Duration;

use chrono::{DateTime, FixedOffset};

use super::address::Address;
use super::error::{DecodeError, EncodeError};
use super::nls::NationalLanguage;
use super::reader::{Reader, parse_hex, to_hex};
use super::status::Status;
use super::time::{
    decode_relative_validity, decode_timestamp, encode_relative_validity, encode_timestamp,
};
use super::udh::{DataCoding, Encoding};
use super::user_data::{TextPlan, UserData};

/// The default cap on parts per message.
pub const DEFAULT_MAX_PARTS: usize = 6;

/// How to build SMS-SUBMIT PDUs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitOptions {
    /// SMSC number to put in front of the TPDU; `None` writes the zero-length field that tells the
    /// modem to use the SIM's SMSC (`AT+CSCA`).
    pub smsc: Option<String>,
    /// TP-SRR: ask the network for a status report.
    pub status_report: bool,
    /// TP-VP in relative format; `None` leaves TP-VP out (the SMSC's default applies).
    pub validity: Option<Duration>,
    /// TP-MR written into the PDU (most modems replace it with their own; trust `+CMGS: <mr>`).
    pub message_reference: u8,
    /// The 8-bit concatenation reference shared by the parts.
    pub concat_reference: u8,
    /// The most parts one text may take.
    pub max_parts: usize,
    /// National language tables the encoder may use to keep a text in GSM 7-bit.
    pub national_languages: Vec<NationalLanguage>,
}

impl Default for SubmitOptions {
    fn default() -> Self {
        SubmitOptions {
            smsc: None,
            status_report: false,
            validity: None,
            message_reference: 0,
            concat_reference: 0,
            max_parts: DEFAULT_MAX_PARTS,
            national_languages: Vec::new(),
        }
    }
}

/// One PDU ready for `AT+CMGS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedPart {
    /// The PDU, SMSC field included.
    pub pdu: Vec<u8>,
    /// The `<length>` of `AT+CMGS=<length>`: TPDU octets, without the SMSC field.
    pub tpdu_length: usize,
}

impl EncodedPart {
    /// The PDU in upper-case hex, as typed after the `> ` prompt.
    pub fn hex(&self) -> String {
        to_hex(&self.pdu)
    }
}

/// A text encoded as one or more SMS-SUBMIT PDUs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedMessage {
    /// The encoding of every part.
    pub encoding: Encoding,
    /// The parts in order.
    pub parts: Vec<EncodedPart>,
    /// The national language tables used, if any: (locking, single).
    pub national_language: (Option<NationalLanguage>, Option<NationalLanguage>),
}

/// Encodes `text` to `to` as SMS-SUBMIT PDUs (TS 23.040 §9.2.2.2).
pub fn encode_submit(
    to: &str,
    text: &str,
    opts: &SubmitOptions,
) -> Result<EncodedMessage, EncodeError> {
    let to = Address::parse_number("to", to)?;
    let smsc = opts
        .smsc
        .as_deref()
        .map(|s| Address::parse_number("smsc", s))
        .transpose()?;
    let vp = opts.validity.map(encode_relative_validity).transpose()?;
    let plan = TextPlan::new(text, &opts.national_languages, opts.max_parts)?;
    let dcs = DataCoding::for_encoding(plan.encoding);
    let parts = plan
        .user_data(opts.concat_reference)
        .into_iter()
        .map(|(udhi, udl, ud)| {
            let mut pdu = Vec::with_capacity(180);
            match &smsc {
                Some(a) => a.write_smsc(&mut pdu),
                None => pdu.push(0),
            }
            let tpdu_start = pdu.len();
            // First octet: TP-MTI = 01 (SUBMIT), TP-VPF, TP-SRR, TP-UDHI.
            let mut first = 0x01;
            if vp.is_some() {
                first |= 0x10; // TP-VPF = 10: relative
            }
            if opts.status_report {
                first |= 0x20;
            }
            if udhi {
                first |= 0x40;
            }
            pdu.push(first);
            pdu.push(opts.message_reference);
            to.write_tp(&mut pdu);
            pdu.push(0x00); // TP-PID: plain short message
            pdu.push(dcs);
            if let Some(v) = vp {
                pdu.push(v);
            }
            pdu.push(udl);
            pdu.extend_from_slice(&ud);
            let tpdu_length = pdu.len() - tpdu_start;
            EncodedPart { pdu, tpdu_length }
        })
        .collect();
    Ok(EncodedMessage {
        encoding: plan.encoding,
        parts,
        national_language: (plan.charset.locking, plan.charset.single),
    })
}

/// An SMS-DELIVER: a message the modem received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deliver {
    /// The SMSC that delivered it, when the PDU carried one.
    pub smsc: Option<Address>,
    /// TP-OA: who sent it.
    pub from: Address,
    /// TP-PID.
    pub protocol_id: u8,
    /// TP-DCS.
    pub data_coding: DataCoding,
    /// TP-SCTS: when the SMSC received it, with the SMSC's time zone.
    pub timestamp: DateTime<FixedOffset>,
    /// TP-UDH and TP-UD.
    pub user_data: UserData,
    /// TP-MMS inverted: the SMSC has more messages waiting for this phone.
    pub more_messages: bool,
    /// TP-SRI: the sender asked for a status report.
    pub status_report_indication: bool,
    /// TP-RP: a reply path is set.
    pub reply_path: bool,
}

/// An SMS-SUBMIT read back (from a modem's "sent" storage, or from this crate's own encoder).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submit {
    /// The SMSC field.
    pub smsc: Option<Address>,
    /// TP-MR.
    pub message_reference: u8,
    /// TP-DA.
    pub to: Address,
    /// TP-PID.
    pub protocol_id: u8,
    /// TP-DCS.
    pub data_coding: DataCoding,
    /// TP-VP.
    pub validity: Option<Validity>,
    /// TP-SRR.
    pub status_report_requested: bool,
    /// TP-RD.
    pub reject_duplicates: bool,
    /// TP-UDH and TP-UD.
    pub user_data: UserData,
}

/// A decoded TP-VP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// A period in seconds (relative or enhanced format).
    Relative(u64),
    /// An absolute time (TP-VPF = 11).
    Absolute(DateTime<FixedOffset>),
    /// Enhanced format with no validity period given.
    Unspecified,
}

/// An SMS-STATUS-REPORT: the network's word on a message sent earlier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReport {
    /// The SMSC field.
    pub smsc: Option<Address>,
    /// TP-MR of the SMS-SUBMIT this reports on (as given in `+CMGS: <mr>`).
    pub message_reference: u8,
    /// TP-RA: the recipient of that message.
    pub recipient: Address,
    /// TP-SCTS: when the SMSC received the message.
    pub timestamp: DateTime<FixedOffset>,
    /// TP-DT: when the status was reached (delivered, or the last try).
    pub discharge_time: DateTime<FixedOffset>,
    /// TP-ST.
    pub status: Status,
    /// TP-SRQ: this reports on an SMS-COMMAND rather than an SMS-SUBMIT.
    pub status_report_qualifier: bool,
}

/// Any PDU this crate decodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pdu {
    /// SMS-DELIVER.
    Deliver(Deliver),
    /// SMS-SUBMIT.
    Submit(Submit),
    /// SMS-STATUS-REPORT.
    StatusReport(StatusReport),
}

/// Decodes a PDU given as hex (see [`decode`]).
pub fn decode_hex(hex: &str, has_smsc: bool) -> Result<Pdu, DecodeError> {
    decode(&parse_hex(hex)?, has_smsc)
}

/// Decodes a PDU as a modem prints it. `has_smsc`: the octets start with the SMSC field, as in
/// `AT+CMGR`, `+CMT` and `+CDS` output on most modems. TP-MTI 00 is read as SMS-DELIVER, 01 as
/// SMS-SUBMIT and 10 as SMS-STATUS-REPORT; octets after the declared user data are ignored.
pub fn decode(octets: &[u8], has_smsc: bool) -> Result<Pdu, DecodeError> {
    decode_with(octets, has_smsc, false).map(|(pdu, _)| pdu)
}

/// Decodes a PDU as [`decode`] does, but keeps a message whose user data is shorter than its
/// TP-UDL says (what is there is read, [`UserData::truncated`] is set), and also returns how
/// many octets the PDU spans by its own structure (SMSC field included when `has_smsc`): what
/// follows is padding or junk a modem appended (`FF` fill of a SIM record, a stray quote).
/// A status report spans its mandatory fields, and its optional ones unless they are all `FF`.
pub fn decode_lenient(octets: &[u8], has_smsc: bool) -> Result<(Pdu, usize), DecodeError> {
    decode_with(octets, has_smsc, true)
}

fn decode_with(octets: &[u8], has_smsc: bool, lenient: bool) -> Result<(Pdu, usize), DecodeError> {
    let mut r = Reader::new(octets, 0);
    let smsc = if has_smsc {
        Address::read_smsc(&mut r)?
    } else {
        None
    };
    let first_at = r.offset();
    let first = r.u8("first octet")?;
    let pdu = match first & 0x03 {
        0b00 => decode_deliver(&mut r, first, smsc, lenient).map(Pdu::Deliver),
        0b01 => decode_submit(&mut r, first, smsc, lenient).map(Pdu::Submit),
        0b10 => decode_status_report(&mut r, first, smsc).map(Pdu::StatusReport),
        _ => Err(DecodeError::Invalid {
            field: "TP-MTI",
            offset: first_at,
            detail: "message type 11 is reserved".into(),
        }),
    }?;
    Ok((pdu, r.offset()))
}

fn read_timestamp(
    r: &mut Reader<'_>,
    field: &'static str,
) -> Result<DateTime<FixedOffset>, DecodeError> {
    let at = r.offset();
    let octets = r.take(7, field)?;
    decode_timestamp(octets, field, at)
}

fn decode_deliver(
    r: &mut Reader<'_>,
    first: u8,
    smsc: Option<Address>,
    lenient: bool,
) -> Result<Deliver, DecodeError> {
    let from = Address::read_tp(r, "TP-OA")?;
    let protocol_id = r.u8("TP-PID")?;
    let data_coding = DataCoding::decode(r.u8("TP-DCS")?);
    let timestamp = read_timestamp(r, "TP-SCTS")?;
    let user_data = UserData::read(r, &data_coding, first & 0x40 != 0, lenient)?;
    Ok(Deliver {
        smsc,
        from,
        protocol_id,
        data_coding,
        timestamp,
        user_data,
        more_messages: first & 0x04 == 0,
        status_report_indication: first & 0x20 != 0,
        reply_path: first & 0x80 != 0,
    })
}

fn decode_submit(
    r: &mut Reader<'_>,
    first: u8,
    smsc: Option<Address>,
    lenient: bool,
) -> Result<Submit, DecodeError> {
    let message_reference = r.u8("TP-MR")?;
    let to = Address::read_tp(r, "TP-DA")?;
    let protocol_id = r.u8("TP-PID")?;
    let data_coding = DataCoding::decode(r.u8("TP-DCS")?);
    let vp_at = r.offset();
    let validity = match (first >> 3) & 0x03 {
        0b00 => None,
        0b10 => Some(Validity::Relative(decode_relative_validity(r.u8("TP-VP")?))),
        0b11 => Some(Validity::Absolute(read_timestamp(r, "TP-VP")?)),
        _ => Some(decode_enhanced_validity(r.take(7, "TP-VP")?, vp_at)?),
    };
    let user_data = UserData::read(r, &data_coding, first & 0x40 != 0, lenient)?;
    Ok(Submit {
        smsc,
        message_reference,
        to,
        protocol_id,
        data_coding,
        validity,
        status_report_requested: first & 0x20 != 0,
        reject_duplicates: first & 0x04 != 0,
        user_data,
    })
}

/// TS 23.040 §9.2.3.12.3: the enhanced format's functionality indicator and its three forms.
fn decode_enhanced_validity(v: &[u8], offset: usize) -> Result<Validity, DecodeError> {
    let invalid = |detail: &str| DecodeError::Invalid {
        field: "TP-VP",
        offset,
        detail: detail.into(),
    };
    // The extension bit (7) says another indicator octet follows; the format stays in bits 2..0.
    let fi = v[0];
    let start = if fi & 0x80 != 0 { 2 } else { 1 };
    match fi & 0x07 {
        0 => Ok(Validity::Unspecified),
        1 => Ok(Validity::Relative(decode_relative_validity(v[start]))),
        2 => match v[start] {
            0 => Err(invalid("relative validity of 0 seconds")),
            s => Ok(Validity::Relative(u64::from(s))),
        },
        3 => {
            let mut secs = 0u64;
            for (i, mult) in [3600u64, 60, 1].into_iter().enumerate() {
                let b = v[start + i];
                let (tens, units) = (b & 0x0F, b >> 4);
                if tens > 9 || units > 9 {
                    return Err(invalid("hh:mm:ss is not BCD"));
                }
                secs += u64::from(tens * 10 + units) * mult;
            }
            Ok(Validity::Relative(secs))
        }
        _ => Err(invalid("reserved validity period format")),
    }
}

fn decode_status_report(
    r: &mut Reader<'_>,
    first: u8,
    smsc: Option<Address>,
) -> Result<StatusReport, DecodeError> {
    let message_reference = r.u8("TP-MR")?;
    let recipient = Address::read_tp(r, "TP-RA")?;
    let timestamp = read_timestamp(r, "TP-SCTS")?;
    let discharge_time = read_timestamp(r, "TP-DT")?;
    let status = Status::from_code(r.u8("TP-ST")?);
    // TP-PI and what it announces (PID, DCS, UD) may follow; nothing there changes the report's
    // meaning, and SMSCs fill it inconsistently, so it is not read. All `FF` is a SIM record's
    // fill, not parameters: left outside the report's span.
    if r.peek_rest().iter().any(|&b| b != 0xFF) {
        let _ = r.rest();
    }
    Ok(StatusReport {
        smsc,
        message_reference,
        recipient,
        timestamp,
        discharge_time,
        status,
        status_report_qualifier: first & 0x20 != 0,
    })
}

/// Encodes an SMS-DELIVER for each part of `text` (used by the modem simulator to hand the
/// gateway messages "from the network"). Returns PDUs with an SMSC field in front.
pub fn encode_deliver(
    smsc: Option<&Address>,
    from: &Address,
    text: &str,
    timestamp: &DateTime<FixedOffset>,
    force_ucs2: bool,
    concat_reference: u8,
) -> Result<Vec<Vec<u8>>, EncodeError> {
    let plan = if force_ucs2 {
        // Encode as UCS-2 even when GSM 7-bit would do (phones do this for emoji-free texts too).
        let mut p = TextPlan::new(text, &[], 255)?;
        if p.encoding != Encoding::Ucs2 {
            p = TextPlan::new(&format!("{text}\u{FFFF}"), &[], 255)?;
            // The sentinel forced UCS-2; drop its unit again from the last part.
            if let Some(super::user_data::Body::Ucs2(units)) = p.parts.last_mut() {
                units.pop();
            }
            p.parts
                .retain(|b| !matches!(b, super::user_data::Body::Ucs2(u) if u.is_empty()));
        }
        p
    } else {
        TextPlan::new(text, &[], 255)?
    };
    let dcs = DataCoding::for_encoding(plan.encoding);
    let ts = encode_timestamp(timestamp);
    Ok(plan
        .user_data(concat_reference)
        .into_iter()
        .map(|(udhi, udl, ud)| {
            let mut pdu = Vec::with_capacity(180);
            match smsc {
                Some(a) => a.write_smsc(&mut pdu),
                None => pdu.push(0),
            }
            // TP-MTI 00, TP-MMS set (no more messages), TP-UDHI.
            pdu.push(0x04 | if udhi { 0x40 } else { 0 });
            from.write_tp(&mut pdu);
            pdu.push(0x00);
            pdu.push(dcs);
            pdu.extend_from_slice(&ts);
            pdu.push(udl);
            pdu.extend_from_slice(&ud);
            pdu
        })
        .collect())
}

/// Encodes an SMS-STATUS-REPORT (used by the modem simulator).
pub fn encode_status_report(
    smsc: Option<&Address>,
    message_reference: u8,
    recipient: &Address,
    timestamp: &DateTime<FixedOffset>,
    discharge_time: &DateTime<FixedOffset>,
    status: u8,
) -> Vec<u8> {
    let mut pdu = Vec::with_capacity(40);
    match smsc {
        Some(a) => a.write_smsc(&mut pdu),
        None => pdu.push(0),
    }
    pdu.push(0x06); // TP-MTI 10, TP-MMS set
    pdu.push(message_reference);
    recipient.write_tp(&mut pdu);
    pdu.extend_from_slice(&encode_timestamp(timestamp));
    pdu.extend_from_slice(&encode_timestamp(discharge_time));
    pdu.push(status);
    pdu
}
