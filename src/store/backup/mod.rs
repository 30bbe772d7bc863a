//! A whole store at once, while the daemon is stopped (`smsgate store check|export|import|compact`).

mod check;

pub use check::*;
