//! From a request to an invoice's plan and the messages of its steps; and the later changes:
//! paid, payment failed, rescheduled, cancelled. Pure decisions over a snapshot: the store
//! applies them in one transaction ([`crate::store::plans`]).
//!
//! - `request`: the bodies of the endpoints and the checks of their variables.
//! - `schedule`: step offsets, local planned times, the send window, expiries.
//! - `text`: template sources, render variables, and the message of a step.
//! - `create`: a new plan and its messages from a request.
//! - `change`: paid, payment failed, patch, cancel.

mod change;
mod create;
mod request;
mod schedule;
mod text;

pub use change::{Outcome, Refused, cancel, paid, patch, payment_failed};
pub use create::build;
pub use request::{
    Amount, NewPlan, Paid, PaymentFailed, PlanPatch, Problems, RESERVED_VARS, WindowTimes,
};
pub use text::{Origin, template_source};

use request::check_vars;

use chrono::{DateTime, Utc};

use super::config::Policy;
use crate::domain::MessageRules;
use crate::store::Store;

/// What plan logic needs: policy, defaults, the store (templates), the time and the caller.
pub struct Ctx<'a> {
    /// Reminder policy.
    pub policy: &'a Policy,
    /// The rules new messages are made by.
    pub rules: &'a MessageRules,
    /// The API's own address, where callback URLs may not point.
    pub own_address: Option<std::net::SocketAddr>,
    /// Where callback URLs may point.
    pub outbound: &'a crate::outbound::OutboundPolicy,
    /// Templates set through the API.
    pub store: &'a Store,
    /// Now.
    pub now: DateTime<Utc>,
    /// The API key.
    pub caller: &'a str,
}
