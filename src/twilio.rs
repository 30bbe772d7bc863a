//! The Twilio-compatible door: what Twilio's Messages API, its status callbacks and its
//! incoming-message webhooks look like, so that a system written for Twilio (its helper
//! libraries, or plain form posts) sends through the gateway by changing a base URL and
//! credentials. The HTTP handlers are in [`crate::api::twilio`]; this module holds the parts
//! that do not depend on HTTP: identifiers, signatures, status names and error codes, the
//! callback forms and the TwiML answers.
//!
//! Messages created here are ordinary messages of the one queue (the same API, history,
//! dashboard and metrics); what is Twilio's about them is kept in [`TwilioLink`].

use base64::Engine as _;
use chrono::{DateTime, Utc};
use hmac::{KeyInit, Mac};
use serde::Deserialize;

use crate::store::inbound::InboundMessage;
use crate::store::{Message, Status};

/// The API version in every path and resource.
pub const API_VERSION: &str = "2010-04-01";

/// The `event_type` of a status callback in the webhook outbox.
pub const STATUS_CALLBACK: &str = "twilio.status_callback";
/// The `event_type` of an incoming-message webhook in the webhook outbox.
pub const INCOMING: &str = "twilio.incoming";

/// `[twilio]`: the account Twilio clients authenticate as, and where incoming messages go.
#[derive(Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TwilioConfig {
    /// The account SID clients use as the HTTP Basic user name and in the paths
    /// (`AC` and 32 hex digits, as Twilio's own; any value of 2 to 64 letters and digits is
    /// taken).
    pub account_sid: Option<String>,
    /// The auth token: the HTTP Basic password, and the key of `X-Twilio-Signature` on
    /// callbacks (or `SMSGATE_TWILIO_AUTH_TOKEN`).
    pub auth_token: Option<String>,
    /// Where incoming messages are forwarded in Twilio's form; a TwiML answer's `<Message>`s
    /// are sent back. Absent: incoming messages are only in smsgate's own API and events.
    pub inbound_url: Option<String>,
}

impl std::fmt::Debug for TwilioConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioConfig")
            .field("account_sid", &self.account_sid)
            .field("auth_token", &self.auth_token.as_ref().map(|_| "…"))
            .field("inbound_url", &self.inbound_url.as_deref().map(log_safe))
            .finish()
    }
}

impl TwilioConfig {
    /// The account, when the door is configured (both the SID and the token).
    pub fn account(&self) -> Option<Account> {
        match (&self.account_sid, &self.auth_token) {
            (Some(sid), Some(token)) => Some(Account {
                sid: sid.clone(),
                token: token.clone(),
                inbound_url: self.inbound_url.clone(),
            }),
            _ => None,
        }
    }

    /// What is wrong with the section, if anything.
    pub fn validate(&self) -> Result<(), TwilioConfigError> {
        match (&self.account_sid, &self.auth_token) {
            (None, None) => {
                if self.inbound_url.is_some() {
                    return Err(TwilioConfigError::InboundUrlAlone);
                }
                return Ok(());
            }
            (Some(_), None) => return Err(TwilioConfigError::NoAuthToken),
            (None, Some(_)) => return Err(TwilioConfigError::NoAccountSid),
            (Some(sid), Some(token)) => {
                if !(2..=64).contains(&sid.len()) || !sid.chars().all(|c| c.is_ascii_alphanumeric())
                {
                    return Err(TwilioConfigError::AccountSid(sid.clone()));
                }
                if token.len() < 16 {
                    return Err(TwilioConfigError::ShortToken);
                }
            }
        }
        if let Some(url) = &self.inbound_url {
            crate::webhook::validate_url(url).map_err(TwilioConfigError::InboundUrl)?;
        }
        Ok(())
    }
}

/// What is wrong with `[twilio]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TwilioConfigError {
    /// `inbound_url` without an account.
    #[error("inbound_url needs account_sid and auth_token (the token signs it)")]
    InboundUrlAlone,
    /// `account_sid` without `auth_token`.
    #[error("auth_token is missing (or set SMSGATE_TWILIO_AUTH_TOKEN)")]
    NoAuthToken,
    /// `auth_token` without `account_sid`.
    #[error("account_sid is missing")]
    NoAccountSid,
    /// An account SID that is not 2–64 letters and digits.
    #[error("account_sid {0:?} must be 2 to 64 letters and digits, like Twilio's AC0123…")]
    AccountSid(String),
    /// An auth token shorter than 16 characters.
    #[error("auth_token must be at least 16 characters")]
    ShortToken,
    /// `inbound_url` is not an http(s) URL.
    #[error("inbound_url: {0}")]
    InboundUrl(#[source] crate::webhook::UrlError),
}

impl TwilioConfigError {
    /// The key in `[twilio]` that is wrong.
    pub fn key(&self) -> &'static str {
        match self {
            TwilioConfigError::InboundUrlAlone | TwilioConfigError::InboundUrl(_) => "inbound_url",
            TwilioConfigError::NoAuthToken | TwilioConfigError::ShortToken => "auth_token",
            TwilioConfigError::NoAccountSid | TwilioConfigError::AccountSid(_) => "account_sid",
        }
    }
}

/// A configured Twilio account.
#[derive(Clone, PartialEq)]
pub struct Account {
    /// The account SID.
    pub sid: String,
    /// The auth token.
    pub token: String,
    /// Where incoming messages go.
    pub inbound_url: Option<String>,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("sid", &self.sid)
            .finish_non_exhaustive()
    }
}

pub use crate::domain::TwilioLink;

/// A URL without its user, password and query (which may hold secrets), for logs.
pub fn log_safe(url: &str) -> String {
    crate::webhook::log_url(url)
}

/// `SM` and the 32 hex digits of a ULID: the message's SID. Every ULID has one, and
/// [`id_of`] turns it back.
pub fn sid_of(id: &str) -> String {
    match ulid::Ulid::from_string(id) {
        Ok(u) => format!("SM{:032x}", u.0),
        Err(_) => format!("SM{id}"),
    }
}

/// The message (or inbound message) id a SID stands for.
pub fn id_of(sid: &str) -> Option<String> {
    let hex = sid.strip_prefix("SM").or_else(|| sid.strip_prefix("MM"))?;
    if hex.len() != 32 {
        return None;
    }
    let n = u128::from_str_radix(hex, 16).ok()?;
    Some(ulid::Ulid(n).to_string())
}

/// `X-Twilio-Signature`: base64 of HMAC-SHA1, keyed with the auth token, over the full URL
/// followed by every parameter's name and value, sorted by name (then value).
pub fn signature(token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    sorted.dedup();
    let mut data = String::from(url);
    for (k, v) in sorted {
        data.push_str(k);
        data.push_str(v);
    }
    let mut mac = <hmac::Hmac<sha1::Sha1> as KeyInit>::new_from_slice(token.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Whether `presented` is the signature of this request, compared in constant time.
pub fn signature_matches(
    token: &str,
    url: &str,
    params: &[(String, String)],
    presented: &str,
) -> bool {
    let want = signature(token, url, params);
    crate::util::same(presented, &want)
}

/// A form body (`application/x-www-form-urlencoded`).
pub fn form_body(params: &[(String, String)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .finish()
}

/// The pairs of a form body.
pub fn parse_form(body: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(body.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Twilio's name for where a message is.
pub fn status_name(m: &Message) -> &'static str {
    match m.status {
        Status::Queued => "queued",
        Status::Scheduled => "scheduled",
        Status::Sending => "sending",
        Status::Sent => "sent",
        // It may be on the phone: like a message the carrier never confirmed, it stays
        // `sent`, so that nothing sends it again on its own.
        Status::Unknown => "sent",
        Status::Delivered => "delivered",
        Status::Failed if m.sent_at.is_some() => "undelivered",
        Status::Failed | Status::Expired => "failed",
        Status::Cancelled => "canceled",
    }
}

/// Twilio's error code and message for a message that failed, was not delivered or expired.
pub fn error_of(m: &Message) -> Option<(u32, String)> {
    let reason = m.status_reason.clone().unwrap_or_default();
    match m.status {
        Status::Expired => Some((
            30036,
            format!(
                "Validity period expired ({})",
                if reason.is_empty() {
                    "expired"
                } else {
                    &reason
                }
            ),
        )),
        Status::Failed if m.sent_at.is_some() => Some((
            30003,
            format!(
                "Unreachable destination handset: {}",
                if reason.is_empty() {
                    "not delivered"
                } else {
                    &reason
                }
            ),
        )),
        Status::Failed if reason == "opted_out" => Some((
            21610,
            "Attempt to send to unsubscribed recipient".to_string(),
        )),
        Status::Failed => Some((
            30008,
            if reason.is_empty() {
                "Unknown error".to_string()
            } else {
                format!("Unknown error: {reason}")
            },
        )),
        _ => None,
    }
}

/// RFC 2822 in GMT, as in Twilio's resources: `Thu, 24 Aug 2023 05:01:45 +0000`.
pub fn rfc2822(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S +0000").to_string()
}

/// The status callback form of a message: what Twilio posts to `StatusCallback`.
pub fn status_form(m: &Message, link: &TwilioLink, from: &str) -> Vec<(String, String)> {
    let sid = sid_of(&m.id);
    let status = status_name(m);
    let mut p = vec![
        ("AccountSid".to_string(), link.account_sid.clone()),
        ("ApiVersion".to_string(), API_VERSION.to_string()),
        ("From".to_string(), from.to_string()),
        ("MessageSid".to_string(), sid.clone()),
        ("MessageStatus".to_string(), status.to_string()),
        ("SmsSid".to_string(), sid),
        ("SmsStatus".to_string(), status.to_string()),
        ("To".to_string(), m.to.clone()),
    ];
    if let Some(ms) = &link.messaging_service_sid {
        p.push(("MessagingServiceSid".into(), ms.clone()));
    }
    if let Some((code, _)) = error_of(m) {
        p.push(("ErrorCode".into(), code.to_string()));
    }
    p
}

/// The incoming-message form of a received text: what Twilio posts to a number's
/// messaging URL. `to` is the number of the SIM it came in on.
pub fn incoming_form(m: &InboundMessage, account_sid: &str, to: &str) -> Vec<(String, String)> {
    let sid = sid_of(&m.id);
    vec![
        ("AccountSid".to_string(), account_sid.to_string()),
        ("ApiVersion".to_string(), API_VERSION.to_string()),
        ("Body".to_string(), m.text.clone()),
        ("From".to_string(), m.from.clone()),
        ("MessageSid".to_string(), sid.clone()),
        ("NumMedia".to_string(), "0".to_string()),
        ("NumSegments".to_string(), m.total_parts.max(1).to_string()),
        ("SmsMessageSid".to_string(), sid.clone()),
        ("SmsSid".to_string(), sid),
        ("SmsStatus".to_string(), "received".to_string()),
        ("To".to_string(), to.to_string()),
    ]
}

/// One `<Message>` of a TwiML answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TwimlMessage {
    /// The `to` attribute, when given (else the sender of the incoming message).
    pub to: Option<String>,
    /// The text: the element's own text, or its `<Body>`.
    pub body: String,
}

/// Why an answer is not TwiML.
#[derive(Debug, thiserror::Error)]
pub enum TwimlError {
    /// Not well-formed XML.
    #[error("not TwiML: {0}")]
    Xml(#[from] quick_xml::Error),
    /// A malformed attribute.
    #[error("not TwiML: {0}")]
    Attribute(#[from] quick_xml::events::attributes::AttrError),
    /// Text that does not decode.
    #[error("not TwiML: {0}")]
    Encoding(#[from] quick_xml::encoding::EncodingError),
    /// An entity XML does not predefine.
    #[error("not TwiML: unknown entity &{0};")]
    Entity(String),
    /// An element left open at the end.
    #[error("not TwiML: <{0}> is not closed")]
    NotClosed(String),
    /// No `<Response>` at all.
    #[error("not TwiML: no <Response> element")]
    NoResponse,
    /// Another root element.
    #[error("not TwiML: the root element is <{0}>, not <Response>")]
    Root(String),
}

/// The `<Message>`s of a TwiML answer (`<Response><Message>…</Message></Response>`). An
/// empty body or an empty `<Response/>` holds none; anything that is not TwiML is an error.
pub fn twiml_messages(xml: &str) -> Result<Vec<TwimlMessage>, TwimlError> {
    use quick_xml::events::Event;
    if xml.trim().is_empty() {
        return Ok(Vec::new());
    }
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut out = Vec::new();
    let mut path: Vec<String> = Vec::new();
    let mut current: Option<TwimlMessage> = None;
    let mut saw_response = false;
    loop {
        let ev = reader.read_event()?;
        match ev {
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                if path.is_empty() {
                    root_is_response(&name)?;
                    saw_response = true;
                }
                if name == "Message" && path.len() == 1 {
                    current = Some(TwimlMessage {
                        to: attribute(&e, b"to")?,
                        body: String::new(),
                    });
                }
                path.push(name);
            }
            Event::Empty(e) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                if path.is_empty() {
                    root_is_response(&name)?;
                    saw_response = true;
                }
            }
            Event::End(_) => {
                let name = path.pop().unwrap_or_default();
                if name == "Message"
                    && path.len() == 1
                    && let Some(m) = current.take()
                {
                    let body = m.body.trim().to_string();
                    if !body.is_empty() {
                        out.push(TwimlMessage { to: m.to, body });
                    }
                }
            }
            Event::Text(t) => {
                if let Some(m) = current.as_mut()
                    && path.last().is_some_and(|n| n == "Message" || n == "Body")
                {
                    let text = t.decode()?;
                    m.body.push_str(&text);
                }
            }
            Event::GeneralRef(r) => {
                if let Some(m) = current.as_mut() {
                    match r.resolve_char_ref()? {
                        Some(c) => m.body.push(c),
                        None => {
                            let name = r.decode()?;
                            let text = quick_xml::escape::resolve_predefined_entity(&name)
                                .ok_or_else(|| TwimlError::Entity(name.to_string()))?;
                            m.body.push_str(text);
                        }
                    }
                }
            }
            Event::CData(c) => {
                if let Some(m) = current.as_mut() {
                    m.body.push_str(&String::from_utf8_lossy(&c));
                }
            }
            Event::Eof => {
                if let Some(open) = path.last() {
                    return Err(TwimlError::NotClosed(open.clone()));
                }
                break;
            }
            _ => {}
        }
    }
    if !saw_response {
        return Err(TwimlError::NoResponse);
    }
    Ok(out)
}

fn root_is_response(name: &str) -> Result<(), TwimlError> {
    if name == "Response" {
        Ok(())
    } else {
        Err(TwimlError::Root(name.to_owned()))
    }
}

fn attribute(
    e: &quick_xml::events::BytesStart<'_>,
    name: &[u8],
) -> Result<Option<String>, TwimlError> {
    for a in e.attributes() {
        let a = a?;
        if a.key.as_ref() == name {
            let v = a.normalized_value(quick_xml::XmlVersion::Implicit1_0)?;
            return Ok(Some(v.into_owned()));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn signature_matches_twilios_own_example() {
        // The example of Twilio's security documentation; the value is what the `twilio`
        // Python library's RequestValidator computes for it.
        let params = pairs(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]);
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert_eq!(
            signature("12345", url, &params),
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        );
        assert!(signature_matches(
            "12345",
            url,
            &params,
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        ));
        assert!(!signature_matches(
            "12346",
            url,
            &params,
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        ));
    }

    #[test]
    fn sids_turn_back_into_ids() {
        let id = ulid::Ulid::generate().to_string();
        let sid = sid_of(&id);
        assert_eq!(sid.len(), 34);
        assert!(sid.starts_with("SM"));
        assert_eq!(id_of(&sid).as_deref(), Some(id.as_str()));
        assert_eq!(id_of("SMnothex"), None);
        assert_eq!(id_of("XX0123456789abcdef0123456789abcdef"), None);
    }

    #[test]
    fn twiml_answers() {
        let m = twiml_messages(
            r#"<?xml version="1.0" encoding="UTF-8"?>
            <Response><Message>Thanks &amp; see you</Message>
            <Message to="+12025550199"><Body>To the office</Body></Message></Response>"#,
        )
        .unwrap();
        assert_eq!(
            m,
            vec![
                TwimlMessage {
                    to: None,
                    body: "Thanks & see you".into()
                },
                TwimlMessage {
                    to: Some("+12025550199".into()),
                    body: "To the office".into()
                }
            ]
        );
        assert_eq!(twiml_messages("<Response/>").unwrap(), vec![]);
        assert_eq!(twiml_messages("").unwrap(), vec![]);
        assert_eq!(twiml_messages("<Response></Response>").unwrap(), vec![]);
        let e = twiml_messages("<html>no</html>").unwrap_err();
        assert!(matches!(&e, TwimlError::Root(r) if r == "html"), "{e:?}");
        assert_eq!(
            e.to_string(),
            "not TwiML: the root element is <html>, not <Response>"
        );
        assert!(matches!(twiml_messages("OK"), Err(TwimlError::NoResponse)));
        assert!(matches!(
            twiml_messages("<Response><Message>open"),
            Err(TwimlError::NotClosed(m)) if m == "Message"
        ));
        assert!(matches!(
            twiml_messages("<Response><Message>&bogus;</Message></Response>"),
            Err(TwimlError::Entity(n)) if n == "bogus"
        ));
    }

    #[test]
    fn form_round_trip() {
        let p = pairs(&[("Body", "Hi & bye = 100%"), ("To", "+12025550123")]);
        assert_eq!(parse_form(&form_body(&p)), p);
    }
}
