//! TP-Status of an SMS-STATUS-REPORT (TS 23.040 §9.2.3.15).

use serde::Serialize;

/// What a TP-ST value means for the message it reports on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusCategory {
    /// 0x00–0x1F: the transaction is complete (delivered, or forwarded without confirmation).
    Delivered,
    /// 0x20–0x3F: temporary error, the SMSC is still trying; another report will follow.
    Pending,
    /// 0x40–0x7F: permanent error, or a temporary one the SMSC gave up on. Final.
    Failed,
    /// 0x80–0xFF: reserved values.
    Unknown,
}

/// A decoded TP-ST.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Status {
    /// The raw value.
    pub code: u8,
}

impl Status {
    /// Wraps a raw TP-ST value.
    pub fn from_code(code: u8) -> Status {
        Status { code }
    }

    /// The category of the value.
    pub fn category(self) -> StatusCategory {
        match self.code {
            0x00..=0x1F => StatusCategory::Delivered,
            0x20..=0x3F => StatusCategory::Pending,
            0x40..=0x7F => StatusCategory::Failed,
            _ => StatusCategory::Unknown,
        }
    }

    /// The meaning TS 23.040 gives the value, for logs and for a message's failure reason.
    pub fn description(self) -> &'static str {
        match self.code {
            0x00 => "short message received by the recipient",
            0x01 => "forwarded by the SC to the recipient, delivery unconfirmed",
            0x02 => "replaced by the SC",
            0x03..=0x0F => "transaction completed (reserved value)",
            0x10..=0x1F => "transaction completed (SC-specific value)",
            0x20 | 0x60 => "congestion",
            0x21 | 0x61 => "recipient busy",
            0x22 | 0x62 => "no response from recipient",
            0x23 | 0x63 => "service rejected",
            0x24 | 0x44 | 0x64 => "quality of service not available",
            0x25 | 0x65 => "error in recipient",
            0x26..=0x2F | 0x66..=0x6F | 0x4A..=0x4F => "reserved error value",
            0x30..=0x3F | 0x50..=0x5F | 0x70..=0x7F => "SC-specific error",
            0x40 => "remote procedure error",
            0x41 => "incompatible destination",
            0x42 => "connection rejected by recipient",
            0x43 => "not obtainable",
            0x45 => "no interworking available",
            0x46 => "validity period expired",
            0x47 => "deleted by originating SME",
            0x48 => "deleted by SC administration",
            0x49 => "message does not exist",
            _ => "reserved status value",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_follow_the_ranges() {
        let cat = |c| Status::from_code(c).category();
        assert_eq!(cat(0x00), StatusCategory::Delivered);
        assert_eq!(cat(0x1F), StatusCategory::Delivered);
        assert_eq!(cat(0x20), StatusCategory::Pending);
        assert_eq!(cat(0x3F), StatusCategory::Pending);
        assert_eq!(cat(0x46), StatusCategory::Failed);
        assert_eq!(cat(0x60), StatusCategory::Failed);
        assert_eq!(cat(0x7F), StatusCategory::Failed);
        assert_eq!(cat(0x80), StatusCategory::Unknown);
        assert_eq!(
            Status::from_code(0x46).description(),
            "validity period expired"
        );
    }
}
