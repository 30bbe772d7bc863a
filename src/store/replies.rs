//! What reply matching and opt-outs read: the messages to a number, and the inbound messages
//! not yet acted on.

use chrono::{DateTime, Utc};

use super::inbound::InboundMessage;
use super::{Message, SledStore, Status, StoreError, decode, decode_message, encode, id_key};

/// How many of a number's most recent messages reply matching looks at.
pub(crate) const SCAN_PER_NUMBER: usize = 1000;

/// Of a number's `recent` messages, the one an answer at `now` belongs to (see
/// [`SledStore::reply_target`]). Shared by both backends.
pub(crate) fn reply_target_among(
    recent: Vec<Message>,
    now: DateTime<Utc>,
    window: chrono::Duration,
    unanswered: bool,
    except: Option<&str>,
) -> Option<Message> {
    let since = now - window;
    recent
        .into_iter()
        .filter(|m| {
            m.reply_options.as_ref().is_some_and(|o| !o.is_empty())
                && matches!(m.status, Status::Sent | Status::Delivered)
                && m.sent_at.is_some_and(|t| t >= since && t <= now)
                && (!unanswered || m.replies.is_empty())
                && except != Some(m.id.as_str())
        })
        .max_by_key(|m| (m.sent_at, m.id.clone()))
}

impl SledStore {
    /// A number's messages, newest first, at most `limit`.
    pub fn messages_to(&self, to: &str, limit: usize) -> Result<Vec<Message>, StoreError> {
        let mut prefix = to.as_bytes().to_vec();
        prefix.push(0xFF);
        let n = prefix.len();
        let mut out = Vec::new();
        for r in self.inner.to.scan_prefix(prefix).rev() {
            let (k, _) = r?;
            let Some(id) = k.get(n..n + 16) else {
                continue;
            };
            if let Some(v) = self.inner.messages.get(id)? {
                out.push(decode_message(id, &v)?);
                if out.len() == limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// The numbers messages went to whose last `n` digits (at least 7) are those of `sender`, at
    /// most `max` of them. Reads the keys of the recipient index: for the rare sender that does
    /// not read as a number.
    pub fn numbers_ending_like(
        &self,
        sender: &str,
        n: usize,
        max: usize,
    ) -> Result<Vec<String>, StoreError> {
        let mut out: Vec<String> = Vec::new();
        for k in self.inner.to.iter().keys() {
            let k = k?;
            let Some(end) = k.iter().position(|b| *b == 0xFF) else {
                continue;
            };
            let number = String::from_utf8_lossy(&k[..end]);
            if out.last().is_some_and(|l| *l == number) {
                continue;
            }
            if crate::numbers::same_trailing_digits(&number, sender, n) {
                out.push(number.into_owned());
                if out.len() == max {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// The message an answer from `to` at `now` belongs to: of the messages with
    /// `reply_options` that went out to it (sent or delivered) within `window` before `now`,
    /// the one sent last. With `unanswered`, only one without replies yet; `except` is left out.
    pub fn reply_target(
        &self,
        to: &str,
        now: DateTime<Utc>,
        window: chrono::Duration,
        unanswered: bool,
        except: Option<&str>,
    ) -> Result<Option<Message>, StoreError> {
        let recent = self.messages_to(to, SCAN_PER_NUMBER)?;
        Ok(reply_target_among(recent, now, window, unanswered, except))
    }

    /// Inbound messages stored but not yet acted on, oldest first.
    pub fn pending_inbound(&self) -> Result<Vec<InboundMessage>, StoreError> {
        let _w = self.writing();
        let mut out = Vec::new();
        for k in self.inner.inbound_pending.iter().keys() {
            let k = k?;
            match self.inner.inbound.get(&k)? {
                Some(v) => out.push(decode(&k, &v)?),
                None => {
                    self.inner.inbound_pending.remove(&k)?;
                }
            }
        }
        Ok(out)
    }

    /// Records what was done with an inbound message (see [`InboundMessage::handling`]) and
    /// the message it answers; it is no longer pending.
    pub fn inbound_handled(
        &self,
        id: &str,
        handling: &str,
        in_reply_to: Option<&str>,
    ) -> Result<Option<InboundMessage>, StoreError> {
        let _w = self.writing();
        use sled::Transactional;
        let Some(key) = id_key(id) else {
            return Ok(None);
        };
        let r = (&self.inner.inbound, &self.inner.inbound_pending).transaction(|(ti, tp)| {
            tp.remove(&key[..])?;
            let Some(v) = ti.get(key)? else {
                return Ok(None);
            };
            let mut m: InboundMessage = decode(&key, &v).map_err(super::abort)?;
            m.handling = Some(handling.to_string());
            m.in_reply_to = in_reply_to.map(str::to_string);
            ti.insert(&key[..], encode(&m).map_err(super::abort)?)?;
            Ok::<_, super::Tx>(Some(m))
        })?;
        Ok(r)
    }
}
