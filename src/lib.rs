//! # smsgate
//!
//! A self-hosted SMS gateway: a billing system posts payment reminders over HTTP, smsgate keeps
//! them durably, sends them through a USB GSM/LTE modem with AT commands at the right time, and
//! turns the customer's replies and the network's delivery reports into signed callbacks.
//!
//! ## Map of the crate, in layers
//! Each layer uses only itself and the layers below it; `src/layers.rs` declares the layers and
//! its test keeps imports going downhill.
//!
//! **base**
//! - [`sms`]: the SMS codec: text ⇄ SMS-SUBMIT / SMS-DELIVER / SMS-STATUS-REPORT PDUs. Pure.
//!   A crate of its own, `smsgate-sms` (`crates/sms/`).
//! - [`util`]: secrets from the operating system's random source, constant-time comparison.
//! - [`tls`]: the TLS of every HTTP client the crate makes (rustls with *ring*).
//! - [`systemd`]: `READY`/`STOPPING` notifications and the watchdog.
//!
//! **domain**
//! - [`domain`]: the message and its status, the moves of its life (cancel, claim, a send's
//!   outcome, a delivery report…), the rules a new message is made by, the send window and
//!   Twilio link a message keeps.
//! - [`numbers`]: phone numbers: what the API accepts and what the network sends, in E.164.
//! - [`replies`]: what an inbound text means: an opt-out keyword or an answer to a message's
//!   `reply_options`.
//!
//! **adapters**
//! - [`store`]: the durable store (embedded sled, or PostgreSQL shared by several gateways):
//!   messages, history, plans, inbound, reports, outbox, opt-outs, with group commit.
//! - [`modem`]: the modem driver: one actor per serial port speaking AT commands.
//! - [`sim`]: the built-in modem simulator on a pseudo-terminal. With [`modem`], a crate of its
//!   own, `smsgate-modem` (`crates/modem/`), which uses only the codec.
//! - [`outbound`]: where the gateway's own HTTP requests may go (URL and address policy).
//! - [`metrics`]: Prometheus metrics for `GET /metrics`.
//!
//! **services**
//! - [`dispatch`]: the scheduler: due messages to free modems, send rules, holds, retries.
//! - [`inbound`]: received texts: opt-outs obeyed, answers matched, the rest passed on.
//! - [`reports`]: delivery reports matched to the parts of sent messages.
//! - [`reminders`]: reminder plans: an invoice's texts from templates, in local time and window.
//! - [`webhook`]: signed callbacks from the durable outbox, retried, ordered per message.
//! - [`twilio`]: the Twilio-compatible API's protocol and its status callbacks.
//! - [`retention`]: the sweep that removes what is kept past its period (`[retention]`).
//!
//! **http**
//! - [`api`]: the HTTP API (`/v1`), its authentication, the scope each route needs, and its
//!   OpenAPI document.
//! - [`dashboard`]: the admin page's sessions and assets.
//! - [`connections`]: the accept loop: header and body timeouts, a connection limit.
//!
//! **app**
//! - [`config`]: the configuration file, checked whole at start.
//! - [`fleet`]: the modems' workers, started, reloaded and stopped.
//! - [`server`]: the gateway wired together (`Gateway::run`).
//! - [`cli`]: the command line: `serve`, `demo`, `simulate`, the codec tools and the client of
//!   a running daemon's API.
//!
//! ## Data flow
//! ```text
//! billing system ──HTTP──▶ api ──▶ store ──▶ dispatcher ──▶ modem ──AT/serial──▶ GSM modem
//!                                                 sms::encode_submit ┘   └ sms::decode (+CMT, +CDS)
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub use smsgate_modem::{modem, sim};
pub use smsgate_sms as sms;

pub mod api;
pub mod cli;
pub mod config;
pub mod connections;
pub mod dashboard;
pub mod dispatch;
pub mod domain;
pub mod fleet;
pub mod inbound;
pub mod metrics;
pub mod numbers;
pub mod outbound;
pub mod reminders;
pub mod replies;
pub mod reports;
pub mod retention;
pub mod server;
pub mod store;
pub mod systemd;
pub mod tls;
pub mod twilio;
pub mod util;
pub mod webhook;

#[cfg(test)]
mod layers;
