//! # smsgate
//!
//! A self-hosted SMS gateway: a billing system posts payment reminders over HTTP, smsgate keeps
//! them durably, sends them through a USB GSM/LTE modem with AT commands at the right time, and
//! turns the customer's replies and the network's delivery reports into signed callbacks.
//!
//! ## Map of the crate
//! - [`sms`]: the SMS codec. Text → SMS-SUBMIT PDUs (GSM 7-bit or UCS-2, segmentation with
//!   concatenation headers) and received PDUs (SMS-DELIVER, SMS-STATUS-REPORT) → text. Pure.
//! - [`webhook`]: signed callbacks (Standard Webhooks) from a durable outbox in the store:
//!   retries with backoff, per-message ordering, dead deliveries kept for a retry on demand.
//! - [`outbound`]: where the gateway's own HTTP requests (webhooks, Twilio callbacks,
//!   prechecks) may go: never loopback, link-local or metadata addresses, checked on the URL
//!   and again on every address a name resolves to; `[outbound] allow`/`deny`.
//! - [`inbound`]: what is done with a received message: opt-out keywords obeyed, answers
//!   matched to the message that asked, the rest passed on as `inbound.unmatched`.
//! - [`reminders`]: reminder plans: an invoice's schedule of texts rendered from templates,
//!   in the recipient's local time and send window, with per-recipient caps and a precheck.
//! - [`replies`]: what an inbound text means: an opt-out keyword or an answer to a message's
//!   `reply_options`.
//! - [`reports`]: delivery reports (`+CDS` / `+CDSI`) matched to the parts of sent messages by
//!   modem, TP-MR, recipient and recency ([`store::reports`]), then deleted from the SIM.
//! - [`numbers`]: phone numbers: what the API accepts and what the network sends, in one E.164
//!   form.
//! - [`util`]: secrets from the operating system's random source.
//! - [`metrics`]: Prometheus metrics for `GET /metrics`.
//! - [`connections`]: the HTTP server's accept loop: header and body timeouts, a connection
//!   limit that closes idle connections first, the peer's address on every request.
//! - [`systemd`]: `READY`/`STOPPING` notifications and the watchdog, fed while the dispatcher
//!   is alive.
//! - [`tls`]: the TLS of every HTTP client the crate makes (rustls with *ring*).
//! - [`cli`]: the command-line tools built on the library (`smsgate pdu encode|decode`), and
//!   the client of a running daemon's HTTP API (`smsgate status|send|messages|tail …`).
//!
//! ## Data flow
//! ```text
//! billing system ──HTTP──▶ api ──▶ store ──▶ dispatcher ──▶ modem ──AT/serial──▶ GSM modem
//!                                                 sms::encode_submit ┘   └ sms::decode (+CMT, +CDS)
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
pub mod cli;
pub mod config;
pub mod connections;
pub mod dashboard;
pub mod dispatch;
pub mod fleet;
pub mod inbound;
pub mod metrics;
pub mod modem;
pub mod numbers;
pub mod outbound;
pub mod reminders;
pub mod replies;
pub mod reports;
pub mod server;
pub mod sim;
pub mod sms;
pub mod store;
pub mod systemd;
pub mod tls;
pub mod twilio;
pub mod util;
pub mod webhook;
