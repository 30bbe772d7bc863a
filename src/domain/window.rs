//! A send window as a message keeps it.

use serde::{Deserialize, Serialize};

/// A send window as stored with a message: local start and end times and the time zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WindowSpec {
    /// Local time the window opens, `HH:MM`.
    #[schema(example = "08:00")]
    pub start: String,
    /// Local time the window closes, `HH:MM` (after `start`).
    #[schema(example = "21:00")]
    pub end: String,
    /// IANA time zone of the recipient.
    #[schema(example = "America/New_York")]
    pub timezone: String,
}
