//! The modem pool: which modem may take which message, and when.
//!
//! Every modem has a worker that pulls the next due message it may take, so whichever modem is
//! free first gets the work. What a modem may take:
//!
//! - its routing: `prefixes` (the recipient's number starts with one of them) and `only_for`
//!   (`reminders`, `messages`, `replies`);
//! - its limits: at most `max_per_minute` messages in any 60 seconds and `max_per_day` since
//!   local midnight (operators' fair-use rules); a modem at a limit takes nothing until it
//!   frees up;
//! - the sticky sender: a follow-up goes through the modem that last texted the number (the
//!   customer sees one number, and the answer lands on the SIM that expects it) while that
//!   modem is available; when it is not, another takes over and the history says so;
//! - quarantine: a modem that went down three times within ten minutes takes nothing for a
//!   while (one minute, doubling up to 30 at each new quarantine; back to one minute after
//!   half an hour without a fall), so a flapping modem does not eat retries.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::modem::{ModemHandle, ModemState};
use crate::store::{Message, Status, Store};

/// What a message is, for `only_for`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Traffic {
    /// Steps of reminder plans (`/v1/reminders`).
    Reminders,
    /// Messages posted to `/v1/messages`.
    Messages,
    /// Texts the gateway sends itself (opt-out confirmations).
    Replies,
}

impl Traffic {
    /// The name used in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Traffic::Reminders => "reminders",
            Traffic::Messages => "messages",
            Traffic::Replies => "replies",
        }
    }

    /// What `m` is.
    pub fn of(m: &Message) -> Traffic {
        if m.reminder.is_some() {
            Traffic::Reminders
        } else if m.is_from_gateway() {
            Traffic::Replies
        } else {
            Traffic::Messages
        }
    }
}

/// A modem's routing and limits (`[[modems]]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModemPolicy {
    /// Most messages in any 60 seconds.
    pub max_per_minute: Option<u32>,
    /// Most messages since local midnight.
    pub max_per_day: Option<u32>,
    /// Only numbers starting with one of these (E.164, e.g. `+1`); empty: any.
    pub prefixes: Vec<String>,
    /// Falls within ten minutes that quarantine it; `None`: 3; `Some(0)`: never.
    pub quarantine_after: Option<u32>,
    /// Only this traffic; empty: any.
    pub only_for: Vec<Traffic>,
}

impl ModemPolicy {
    /// Whether the routing lets this modem send `traffic` to `to`.
    pub fn routes(&self, to: &str, traffic: Traffic) -> bool {
        (self.prefixes.is_empty() || self.prefixes.iter().any(|p| to.starts_with(p.as_str())))
            && (self.only_for.is_empty() || self.only_for.contains(&traffic))
    }
}

/// Falls within ten minutes that quarantine a modem (unless its `quarantine_after` says otherwise).
const FLAPS: usize = 3;
const FLAP_WINDOW: Duration = Duration::from_secs(600);
const FIRST_QUARANTINE: Duration = Duration::from_secs(60);
const LONGEST_QUARANTINE: Duration = Duration::from_secs(1800);
/// Recipients whose sticky modem is remembered in memory (the store answers for the rest).
const STICKY_CACHE: usize = 65_536;

struct Member {
    handle: ModemHandle,
    policy: ModemPolicy,
    state: Mutex<MemberState>,
}

#[derive(Default)]
struct MemberState {
    /// Sends in the last minute.
    minute: VecDeque<Instant>,
    /// Sends since local midnight of that day.
    day: Option<(NaiveDate, u64)>,
    /// When it went down lately.
    falls: VecDeque<Instant>,
    was_up: bool,
    quarantined_until: Option<Instant>,
    quarantined_until_utc: Option<DateTime<Utc>>,
    next_quarantine: Option<Duration>,
    balance: Option<BalanceView>,
}

/// The last prepaid balance check (`balance_ussd`).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct BalanceView {
    /// When it was asked.
    pub checked_at: DateTime<Utc>,
    /// The operator's answer.
    pub text: Option<String>,
    /// The amount read from it.
    pub amount: Option<f64>,
    /// Below `balance_low`.
    pub low: bool,
    /// Why the check failed, when it did (the last good answer stays).
    pub error: Option<String>,
}

/// Why a modem takes nothing now, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pause {
    /// It went down too often lately.
    Quarantined(Instant),
    /// `max_per_minute` reached.
    MinuteLimit(Instant),
    /// `max_per_day` reached (until local midnight).
    DayLimit(DateTime<Utc>),
}

/// What the API shows of a modem's place in the pool.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct PoolView {
    /// Messages sent since local midnight.
    pub sent_today: u64,
    /// Messages sent in the last 60 seconds.
    pub sent_last_minute: u64,
    /// `max_per_minute`.
    pub max_per_minute: Option<u32>,
    /// `max_per_day`.
    pub max_per_day: Option<u32>,
    /// `prefixes`.
    pub prefixes: Vec<String>,
    /// `only_for`.
    pub only_for: Vec<Traffic>,
    /// Takes no work until then: it went down too often lately.
    pub quarantined_until: Option<DateTime<Utc>>,
    /// `quarantined`, `minute_limit`, `day_limit`, or none when it takes work.
    pub paused: Option<String>,
    /// When the pause ends and it takes work again (a rest's or a limit's end).
    pub paused_until: Option<DateTime<Utc>>,
    /// The last prepaid balance check, when `balance_ussd` is set.
    pub balance: Option<BalanceView>,
}

/// Whether a modem sends now, in one word, and until when it does not: what decides sending,
/// shown by the admin page, `GET /v1/modems` and `smsgate status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Sending {
    /// Up and taking work.
    Up,
    /// Up, but resting after going down too often (`quarantine_after`): it takes no work
    /// until the rest ends.
    Resting,
    /// Up, but at its `max_per_minute` or `max_per_day` limit until it frees up.
    Limited,
    /// Not up (connecting, recovering, down or stopped): it sends nothing.
    Down,
}

impl Sending {
    /// The word in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Sending::Up => "up",
            Sending::Resting => "resting",
            Sending::Limited => "limited",
            Sending::Down => "down",
        }
    }
}

/// Whether the modems of the pool can send now, as seen at one instant: what a waiting message
/// that is due waits for when none can.
#[derive(Debug, Clone, Default)]
pub struct Gate {
    /// Each modem: whether it sends, and until when it does not.
    pub modems: Vec<(String, Sending, Option<DateTime<Utc>>)>,
}

impl Gate {
    /// `None` when some modem sends now; otherwise why none does and the earliest time one
    /// takes work again (`None` when that depends on a modem coming back up).
    pub fn blocked(&self) -> Option<(Sending, Option<DateTime<Utc>>)> {
        if self.modems.is_empty() || self.modems.iter().any(|(_, s, _)| *s == Sending::Up) {
            return None;
        }
        let waiting = |want: Sending| {
            self.modems
                .iter()
                .filter(|(_, s, _)| *s == want)
                .filter_map(|(_, _, t)| *t)
                .min()
        };
        if let Some(t) = waiting(Sending::Resting) {
            // A modem at its limit may free up before the rest ends.
            let until = waiting(Sending::Limited).map_or(t, |l| l.min(t));
            return Some((Sending::Resting, Some(until)));
        }
        if let Some(t) = waiting(Sending::Limited) {
            return Some((Sending::Limited, Some(t)));
        }
        Some((Sending::Down, None))
    }
}

impl Pause {
    /// When it ends, on the wall clock (`now` is the same instant as `Instant::now()`).
    fn until(&self, now: DateTime<Utc>, quarantined_until: Option<DateTime<Utc>>) -> DateTime<Utc> {
        let later = |i: &Instant| {
            now + chrono::Duration::from_std(i.saturating_duration_since(Instant::now()))
                .unwrap_or_default()
        };
        match self {
            Pause::Quarantined(i) => quarantined_until.unwrap_or_else(|| later(i)),
            Pause::MinuteLimit(i) => later(i),
            Pause::DayLimit(t) => *t,
        }
    }
}

/// The modems of the gateway and what each may take.
pub struct Pool {
    members: RwLock<BTreeMap<String, Arc<Member>>>,
    sticky: quick_cache::sync::Cache<String, String>,
    store: Store,
    tz: chrono_tz::Tz,
}

impl Pool {
    /// An empty pool; "today" is in `tz`.
    pub fn new(store: Store, tz: chrono_tz::Tz) -> Pool {
        Pool {
            members: RwLock::new(BTreeMap::new()),
            sticky: quick_cache::sync::Cache::new(STICKY_CACHE),
            store,
            tz,
        }
    }

    fn member(&self, name: &str) -> Option<Arc<Member>> {
        self.members
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    /// Adds (or replaces) a modem.
    pub fn add(&self, handle: ModemHandle, policy: ModemPolicy) {
        let name = handle.name().to_string();
        let was_up = handle.status().state == ModemState::Up;
        let m = Arc::new(Member {
            handle,
            policy,
            state: Mutex::new(MemberState {
                was_up,
                ..MemberState::default()
            }),
        });
        self.members
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name, m);
    }

    /// New routing and limits for a running modem (its counts stay).
    pub fn set_policy(&self, name: &str, policy: ModemPolicy) {
        let mut members = self.members.write().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = members.get_mut(name) {
            let st = std::mem::take(&mut *m.state.lock().unwrap_or_else(|e| e.into_inner()));
            *m = Arc::new(Member {
                handle: m.handle.clone(),
                policy,
                state: Mutex::new(st),
            });
        }
    }

    /// Records a balance check of `name`.
    pub fn set_balance(&self, name: &str, b: BalanceView) {
        if let Some(m) = self.member(name) {
            m.state.lock().unwrap_or_else(|e| e.into_inner()).balance = Some(b);
        }
    }

    /// The last balance check of `name`.
    pub fn balance(&self, name: &str) -> Option<BalanceView> {
        self.member(name)?
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .balance
            .clone()
    }

    /// Removes a modem.
    pub fn remove(&self, name: &str) {
        self.members
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
    }

    /// The modems, by name.
    pub fn handles(&self) -> Vec<ModemHandle> {
        self.members
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(|m| m.handle.clone())
            .collect()
    }

    /// Whether any modem's routing takes `traffic` to `to` (else it would wait for ever).
    pub fn routable(&self, to: &str, traffic: Traffic) -> bool {
        let members = self.members.read().unwrap_or_else(|e| e.into_inner());
        members.is_empty() || members.values().any(|m| m.policy.routes(to, traffic))
    }

    /// Sends since local midnight, counted from the store once a day, then in memory.
    fn sent_today(&self, name: &str, st: &mut MemberState, now: DateTime<Utc>) -> u64 {
        let today = now.with_timezone(&self.tz).date_naive();
        match st.day {
            Some((d, n)) if d == today => n,
            _ => {
                let midnight =
                    crate::reminders::window::local_instant(self.tz, today, chrono::NaiveTime::MIN);
                let n = self
                    .store
                    .hourly(midnight, now)
                    .map(|h| {
                        h.iter()
                            .filter(|c| c.modem == name && c.hour >= midnight)
                            .map(|c| c.sent)
                            .sum()
                    })
                    .unwrap_or(0);
                st.day = Some((today, n));
                n
            }
        }
    }

    /// Why `name` takes nothing now, if it does not.
    pub fn paused(&self, name: &str, now: DateTime<Utc>) -> Option<Pause> {
        let m = self.member(name)?;
        let mut st = m.state.lock().unwrap_or_else(|e| e.into_inner());
        let t = Instant::now();
        if let Some(q) = st.quarantined_until {
            if q > t {
                return Some(Pause::Quarantined(q));
            }
            st.quarantined_until = None;
            st.quarantined_until_utc = None;
        }
        while st
            .minute
            .front()
            .is_some_and(|s| t.duration_since(*s) >= Duration::from_secs(60))
        {
            st.minute.pop_front();
        }
        if let (Some(max), Some(first)) = (m.policy.max_per_minute, st.minute.front())
            && st.minute.len() >= max as usize
        {
            return Some(Pause::MinuteLimit(*first + Duration::from_secs(60)));
        }
        if let Some(max) = m.policy.max_per_day
            && self.sent_today(name, &mut st, now) >= u64::from(max)
        {
            let tomorrow = now.with_timezone(&self.tz).date_naive() + chrono::Duration::days(1);
            return Some(Pause::DayLimit(crate::reminders::window::local_instant(
                self.tz,
                tomorrow,
                chrono::NaiveTime::MIN,
            )));
        }
        None
    }

    /// Whether `name` is up and takes work now.
    pub fn available(&self, name: &str, now: DateTime<Utc>) -> bool {
        self.member(name)
            .is_some_and(|m| m.handle.status().state == ModemState::Up)
            && self.paused(name, now).is_none()
    }

    /// The modem that last texted `to` (or, when none did, that last heard from it).
    pub fn sticky_of(&self, to: &str) -> Option<String> {
        if let Some(v) = self.sticky.get(to) {
            return Some(v);
        }
        let sent = self.store.messages_to(to, 20).ok().and_then(|ms| {
            ms.into_iter()
                .filter(|m| m.sent_at.is_some() || m.status == Status::Unknown)
                .max_by_key(|m| m.sent_at.unwrap_or(m.updated_at))
                .and_then(|m| m.modem)
        });
        let found = sent.or_else(|| {
            self.store
                .list_inbound(&crate::store::inbound::InboundFilter {
                    from: Some(to.to_string()),
                    limit: 1,
                    ..Default::default()
                })
                .ok()
                .and_then(|v| v.into_iter().next())
                .map(|i| i.modem)
        });
        // Only a found modem is remembered: a number nobody texted yet may text in any time.
        if let Some(f) = &found {
            self.sticky.insert(to.to_string(), f.clone());
        }
        found
    }

    /// `to` was texted through `modem`.
    pub fn texted(&self, to: &str, modem: &str) {
        self.sticky.insert(to.to_string(), modem.to_string());
    }

    /// Whether the sticky modem `name` keeps its numbers: up, and neither quarantined nor at
    /// its daily limit (a minute's limit is only a short wait).
    fn keeps_its_numbers(&self, name: &str, now: DateTime<Utc>) -> bool {
        self.member(name)
            .is_some_and(|m| m.handle.status().state == ModemState::Up)
            && !matches!(
                self.paused(name, now),
                Some(Pause::Quarantined(_) | Pause::DayLimit(_))
            )
    }

    /// Whether `me` may take `m` now, and the sticky modem it takes over from when it is not
    /// the one that last texted the number.
    pub fn may_take(&self, me: &str, m: &Message, now: DateTime<Utc>) -> Option<Option<String>> {
        let member = self.member(me)?;
        let traffic = Traffic::of(m);
        if !member.policy.routes(&m.to, traffic) {
            return None;
        }
        // A message bound to one modem (a Twilio `From`) waits for it, while it is configured.
        if let Some(wanted) = m.twilio.as_ref().and_then(|t| t.modem.as_deref()) {
            if wanted == me {
                return Some(None);
            }
            if self.member(wanted).is_some() {
                return None;
            }
        }
        if self.members.read().unwrap_or_else(|e| e.into_inner()).len() < 2 {
            return Some(None);
        }
        match self.sticky_of(&m.to) {
            Some(owner) if owner != me => {
                let owner_routes = self
                    .member(&owner)
                    .is_some_and(|o| o.policy.routes(&m.to, traffic));
                if owner_routes && self.keeps_its_numbers(&owner, now) {
                    None
                } else {
                    Some(owner_routes.then_some(owner))
                }
            }
            _ => Some(None),
        }
    }

    /// `me` sent a message.
    pub fn sent(&self, me: &str, now: DateTime<Utc>) {
        let Some(m) = self.member(me) else { return };
        let mut st = m.state.lock().unwrap_or_else(|e| e.into_inner());
        st.minute.push_back(Instant::now());
        self.sent_today(me, &mut st, now);
        if let Some((_, n)) = st.day.as_mut() {
            *n += 1;
        }
    }

    /// `me` changed state; true when this fall put it in quarantine.
    pub fn observe(&self, me: &str, state: ModemState, now: DateTime<Utc>) -> bool {
        let Some(m) = self.member(me) else {
            return false;
        };
        let mut st = m.state.lock().unwrap_or_else(|e| e.into_inner());
        let up = state == ModemState::Up;
        let fell = st.was_up && !up;
        st.was_up = up;
        if !fell {
            return false;
        }
        let t = Instant::now();
        if st
            .falls
            .back()
            .is_some_and(|last| t.duration_since(*last) > 3 * FLAP_WINDOW)
        {
            // Half an hour without a fall: the next quarantine starts short again.
            st.next_quarantine = None;
        }
        st.falls.push_back(t);
        while st
            .falls
            .front()
            .is_some_and(|f| t.duration_since(*f) > FLAP_WINDOW)
        {
            st.falls.pop_front();
        }
        let flaps = m.policy.quarantine_after.map_or(FLAPS, |n| n as usize);
        if flaps == 0 || st.falls.len() < flaps {
            return false;
        }
        let length = st.next_quarantine.unwrap_or(FIRST_QUARANTINE);
        st.next_quarantine = Some((length * 2).min(LONGEST_QUARANTINE));
        st.quarantined_until = Some(t + length);
        st.quarantined_until_utc =
            Some(now + chrono::Duration::from_std(length).unwrap_or_default());
        st.falls.clear();
        tracing::warn!(modem = %me, seconds = length.as_secs(), "modem went down {flaps} times in {} minutes: it takes no work for a while", FLAP_WINDOW.as_secs() / 60);
        true
    }

    /// Whether `name` sends now, and until when it does not.
    pub fn sending(&self, name: &str, now: DateTime<Utc>) -> (Sending, Option<DateTime<Utc>>) {
        let up = self
            .member(name)
            .is_some_and(|m| m.handle.status().state == ModemState::Up);
        if !up {
            return (Sending::Down, None);
        }
        let view = self.view(name, now);
        match view.paused.as_deref() {
            None => (Sending::Up, None),
            Some("quarantined") => (Sending::Resting, view.paused_until),
            Some(_) => (Sending::Limited, view.paused_until),
        }
    }

    /// Whether the pool's modems send now.
    pub fn gate(&self, now: DateTime<Utc>) -> Gate {
        let names: Vec<String> = self
            .members
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        Gate {
            modems: names
                .into_iter()
                .map(|n| {
                    let (s, t) = self.sending(&n, now);
                    (n, s, t)
                })
                .collect(),
        }
    }

    /// What the API shows of `name`.
    pub fn view(&self, name: &str, now: DateTime<Utc>) -> PoolView {
        let paused = self.paused(name, now);
        let Some(m) = self.member(name) else {
            return PoolView::default();
        };
        let mut st = m.state.lock().unwrap_or_else(|e| e.into_inner());
        let paused_until = paused
            .as_ref()
            .map(|p| p.until(now, st.quarantined_until_utc));
        PoolView {
            paused_until,
            sent_today: self.sent_today(name, &mut st, now),
            sent_last_minute: st.minute.len() as u64,
            max_per_minute: m.policy.max_per_minute,
            max_per_day: m.policy.max_per_day,
            prefixes: m.policy.prefixes.clone(),
            only_for: m.policy.only_for.clone(),
            quarantined_until: st.quarantined_until_utc,
            balance: st.balance.clone(),
            paused: paused.map(|p| {
                match p {
                    Pause::Quarantined(_) => "quarantined",
                    Pause::MinuteLimit(_) => "minute_limit",
                    Pause::DayLimit(_) => "day_limit",
                }
                .to_string()
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_by_prefix_and_traffic() {
        let p = ModemPolicy {
            prefixes: vec!["+1".into()],
            only_for: vec![Traffic::Reminders],
            ..ModemPolicy::default()
        };
        assert!(p.routes("+12025550123", Traffic::Reminders));
        assert!(!p.routes("+442071838750", Traffic::Reminders));
        assert!(!p.routes("+12025550123", Traffic::Messages));
        assert!(ModemPolicy::default().routes("+442071838750", Traffic::Replies));
    }
}
