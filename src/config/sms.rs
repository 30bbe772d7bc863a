//! `[sms]`: message defaults (region, parts, reports, validity, language tables).

use serde::Deserialize;

use std::time::Duration;

/// `[sms]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsConfig {
    /// Region for numbers written without `+` (ISO 3166 code, e.g. "US", "GB").
    pub default_region: Option<String>,
    /// Most parts one text may take.
    #[serde(default = "default_max_parts")]
    pub max_parts: usize,
    /// Ask for delivery reports unless a message says otherwise.
    #[serde(default = "super::default_true")]
    pub status_report: bool,
    /// TP-VP validity period for sent messages (e.g. "3d"); the SMSC's default when absent.
    #[serde(default, with = "humantime_serde")]
    pub validity: Option<Duration>,
    /// National language tables the encoder may use ("turkish", "spanish", "portuguese").
    #[serde(default)]
    pub national_languages: Vec<String>,
}

impl Default for SmsConfig {
    fn default() -> Self {
        SmsConfig {
            default_region: None,
            max_parts: default_max_parts(),
            status_report: true,
            validity: None,
            national_languages: Vec::new(),
        }
    }
}

fn default_max_parts() -> usize {
    crate::sms::DEFAULT_MAX_PARTS
}
