//! Reminder plans: templates, schedules and send windows.
//!
//! - [`templates`]: named texts rendered with minijinja, with `money` and `date` filters that
//!   follow the locale; the shipped defaults for each step of a dunning cycle.
//! - [`window`]: send windows in the recipient's time zone, quiet days, and the local-time
//!   arithmetic of schedules (daylight-saving safe).
//! - [`config`]: `[reminders]`, `[send_window]`, `[caps]`, `[templates]` and the checked
//!   [`Policy`] the API and the dispatcher share.
//! - [`plan`]: from a request to a plan and its messages; payment, reschedule, cancel.
//! - [`precheck`]: the signed "does this still apply?" question asked before a step goes out.

pub mod config;
pub mod plan;
pub mod precheck;
pub mod templates;
pub mod window;

pub use config::Policy;
