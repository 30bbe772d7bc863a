//! Parsers of command-line values: times (`--send-at`, `--since`), `KEY=VALUE` pairs and JSON
//! objects.

use serde_json::Value;

pub(super) fn parse_rfc3339(s: &str) -> Result<String, String> {
    chrono::DateTime::parse_from_rfc3339(s.trim())
        .map(|_| s.trim().to_string())
        .map_err(|e| format!("{e} (RFC 3339, e.g. 2026-11-28T15:00:00-05:00)"))
}

/// A point in time as a person writes it, as RFC 3339: RFC 3339 itself; a date (midnight, this
/// machine's time zone); a date and time without offset (this machine's time zone); or a
/// duration back from now (`90m`, `1h`, `2d`).
pub(super) fn parse_since(s: &str) -> Result<String, String> {
    use chrono::{Local, NaiveDate, NaiveDateTime, TimeZone};
    let s = s.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.to_rfc3339());
    }
    let local = |n: NaiveDateTime| {
        Local
            .from_local_datetime(&n)
            .earliest()
            .map(|t| t.to_rfc3339())
            .ok_or_else(|| format!("{s} does not exist in this time zone"))
    };
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return local(d.and_time(chrono::NaiveTime::MIN));
    }
    for f in [
        "%Y-%m-%d %H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%dT%H:%M:%S",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(s, f) {
            return local(n);
        }
    }
    if let Ok(d) = humantime::parse_duration(s)
        && let Ok(d) = chrono::Duration::from_std(d)
        && let Some(t) = chrono::Utc::now().checked_sub_signed(d)
    {
        return Ok(t.to_rfc3339());
    }
    Err(format!(
        "{s:?} is not a time: give RFC 3339 (2026-11-28T15:00:00-05:00), a date (2026-11-28), a date and time (2026-11-28 15:00), or how long ago (1h, 2d)"
    ))
}

pub(super) fn parse_pair(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err("expected KEY=VALUE".into()),
    }
}

pub(super) fn parse_object(s: &str) -> Result<Value, String> {
    match serde_json::from_str::<Value>(s) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err("must be a JSON object, e.g. '{\"invoice\":\"INV-1042\"}'".into()),
        Err(e) => Err(format!("not JSON: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_and_objects_are_checked() {
        assert_eq!(
            parse_pair("1=call_me").unwrap(),
            ("1".to_string(), "call_me".to_string())
        );
        assert_eq!(
            parse_pair("note=a=b").unwrap(),
            ("note".to_string(), "a=b".to_string())
        );
        assert!(parse_pair("nokey").is_err());
        assert!(parse_pair("=x").is_err());
        assert!(parse_object(r#"{"invoice":"INV-1"}"#).is_ok());
        assert!(parse_object("[1]").is_err());
        assert!(parse_object("{").is_err());
        assert!(parse_rfc3339("2026-11-28T15:00:00-05:00").is_ok());
        assert!(parse_rfc3339("2026-11-28 15:00").is_err());
        for ok in [
            "2026-11-28T15:00:00-05:00",
            "2026-12-06",
            "2026-12-06 15:00",
            "1h",
            "2d",
        ] {
            let t = parse_since(ok).unwrap();
            assert!(
                chrono::DateTime::parse_from_rfc3339(&t).is_ok(),
                "{ok} -> {t}"
            );
        }
        let hour_ago = chrono::DateTime::parse_from_rfc3339(&parse_since("1h").unwrap()).unwrap();
        let off = chrono::Utc::now()
            .signed_duration_since(hour_ago)
            .num_seconds();
        assert!((3590..=3610).contains(&off), "{off}");
        assert!(parse_since("yesterday-ish").is_err());
    }
}
