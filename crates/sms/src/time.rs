//! Time fields: the service centre time stamp (TP-SCTS, TS 23.040 §9.2.3.11), the discharge time
//! (TP-DT, §9.2.3.13), and the validity period (TP-VP, §9.2.3.12).

use std::time::Duration;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, Timelike};

use super::error::{DecodeError, EncodeError};

fn bcd(b: u8) -> Option<u32> {
    // Semi-octets are swapped: the low nibble is the tens digit.
    let tens = b & 0x0F;
    let units = b >> 4;
    (tens <= 9 && units <= 9).then(|| u32::from(tens) * 10 + u32::from(units))
}

fn to_bcd(v: u32) -> u8 {
    let v = (v % 100) as u8;
    (v % 10) << 4 | (v / 10)
}

/// Decodes a 7-octet time stamp: YY MM DD hh mm ss TZ, each swapped BCD; TZ in quarter hours
/// with the sign in bit 3 (TS 23.040 §9.2.3.11). Two-digit years 90–99 are read as 1990–1999,
/// everything else as 20xx (decoders disagree on the century; keep the modem's receive time too).
pub fn decode_timestamp(
    octets: &[u8],
    field: &'static str,
    offset: usize,
) -> Result<DateTime<FixedOffset>, DecodeError> {
    let invalid = |detail: String| DecodeError::Invalid {
        field,
        offset,
        detail,
    };
    let [yy, mo, dd, hh, mi, ss, tz] = <[u8; 7]>::try_from(octets)
        .map_err(|_| invalid(format!("{} octets, a time stamp has 7", octets.len())))?;
    let mut v = [0u32; 6];
    for (i, b) in [yy, mo, dd, hh, mi, ss].into_iter().enumerate() {
        v[i] =
            bcd(b).ok_or_else(|| invalid(format!("octet {i} ({b:02X}) is not two BCD digits")))?;
    }
    let year = if v[0] >= 90 { 1900 + v[0] } else { 2000 + v[0] };
    let date = NaiveDate::from_ymd_opt(year as i32, v[1], v[2])
        .ok_or_else(|| invalid(format!("no such date {year:04}-{:02}-{:02}", v[1], v[2])))?;
    let datetime = date
        .and_hms_opt(v[3], v[4], v[5])
        .ok_or_else(|| invalid(format!("no such time {:02}:{:02}:{:02}", v[3], v[4], v[5])))?;
    let negative = tz & 0x08 != 0;
    let quarters =
        bcd(tz & 0xF7).ok_or_else(|| invalid(format!("time zone {tz:02X} is not BCD")))?;
    let seconds = quarters as i32 * 15 * 60;
    let zone = if negative {
        FixedOffset::west_opt(seconds)
    } else {
        FixedOffset::east_opt(seconds)
    }
    .ok_or_else(|| invalid(format!("time zone of {quarters} quarter hours")))?;
    datetime
        .and_local_timezone(zone)
        .single()
        .ok_or_else(|| invalid("time stamp not representable".into()))
}

/// Encodes a time stamp in the TP-SCTS format (used by the simulator for SMS-DELIVER).
pub fn encode_timestamp(t: &DateTime<FixedOffset>) -> [u8; 7] {
    let offset = t.offset().local_minus_utc();
    let quarters = (offset.unsigned_abs() / 900).min(79);
    let mut tz = to_bcd(quarters);
    if offset < 0 {
        tz |= 0x08;
    }
    [
        to_bcd(t.year().rem_euclid(100) as u32),
        to_bcd(t.month()),
        to_bcd(t.day()),
        to_bcd(t.hour()),
        to_bcd(t.minute()),
        to_bcd(t.second()),
        tz,
    ]
}

/// Encodes a relative validity period (TP-VPF = 10). The period is rounded up to the next value
/// TP-VP can express, so a message never expires earlier than asked (TS 23.040 §9.2.3.12.1).
pub fn encode_relative_validity(d: Duration) -> Result<u8, EncodeError> {
    let secs = d.as_secs();
    let minutes = secs.div_ceil(60);
    let v = if minutes <= 12 * 60 {
        // 0..=143: (v + 1) × 5 minutes
        minutes.div_ceil(5).max(1) - 1
    } else if minutes <= 24 * 60 {
        // 144..=167: 12 hours + (v − 143) × 30 minutes
        143 + (minutes - 12 * 60).div_ceil(30)
    } else if secs <= 30 * 86_400 {
        // 168..=196: (v − 166) days
        166 + secs.div_ceil(86_400)
    } else if secs <= 63 * 7 * 86_400 {
        // 197..=255: (v − 192) weeks
        (192 + secs.div_ceil(7 * 86_400)).max(197)
    } else {
        return Err(EncodeError::Validity { seconds: secs });
    };
    Ok(v as u8)
}

/// Decodes a relative validity period octet into seconds (TS 23.040 §9.2.3.12.1).
pub fn decode_relative_validity(v: u8) -> u64 {
    let v = u64::from(v);
    match v {
        0..=143 => (v + 1) * 5 * 60,
        144..=167 => 12 * 3600 + (v - 143) * 30 * 60,
        168..=196 => (v - 166) * 86_400,
        _ => (v - 192) * 7 * 86_400,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_known_timestamp() {
        // 2002-08-26 19:37:41 +02:00 → 20 80 62 91 73 14 80 (TZ 08 → 8 quarters)
        let t =
            decode_timestamp(&[0x20, 0x80, 0x62, 0x91, 0x73, 0x14, 0x80], "TP-SCTS", 0).unwrap();
        assert_eq!(t.to_rfc3339(), "2002-08-26T19:37:41+02:00");
        assert_eq!(
            encode_timestamp(&t),
            [0x20, 0x80, 0x62, 0x91, 0x73, 0x14, 0x80]
        );
    }

    #[test]
    fn negative_zone() {
        // −05:00 = 20 quarters: tens 2 with sign bit → 0x0A, units 0 → high nibble 0.
        let t =
            decode_timestamp(&[0x62, 0x11, 0x32, 0x80, 0x00, 0x00, 0x0A], "TP-SCTS", 0).unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-23T08:00:00-05:00");
        assert_eq!(encode_timestamp(&t)[6], 0x0A);
    }

    #[test]
    fn rejects_impossible_dates_and_bad_bcd() {
        assert!(decode_timestamp(&[0x20, 0x31, 0x62, 0x91, 0x73, 0x14, 0x80], "x", 0).is_err());
        assert!(decode_timestamp(&[0x2A, 0x80, 0x62, 0x91, 0x73, 0x14, 0x80], "x", 0).is_err());
        assert!(decode_timestamp(&[0x20, 0x80, 0x62, 0x91, 0x73, 0x14, 0xF0], "x", 0).is_err());
        assert!(decode_timestamp(&[0x20, 0x80], "x", 0).is_err());
    }

    #[test]
    fn relative_validity_boundaries() {
        let h = |x: u64| Duration::from_secs(x * 3600);
        assert_eq!(encode_relative_validity(Duration::from_secs(1)).unwrap(), 0);
        assert_eq!(
            encode_relative_validity(Duration::from_secs(300)).unwrap(),
            0
        );
        assert_eq!(
            encode_relative_validity(Duration::from_secs(301)).unwrap(),
            1
        );
        assert_eq!(encode_relative_validity(h(12)).unwrap(), 143);
        assert_eq!(encode_relative_validity(h(24)).unwrap(), 167);
        assert_eq!(encode_relative_validity(h(72)).unwrap(), 169);
        assert_eq!(encode_relative_validity(h(24 * 30)).unwrap(), 196);
        assert_eq!(encode_relative_validity(h(24 * 31)).unwrap(), 197);
        assert_eq!(encode_relative_validity(h(24 * 7 * 63)).unwrap(), 255);
        assert!(encode_relative_validity(h(24 * 7 * 64)).is_err());
        for v in 0..=255u8 {
            let secs = decode_relative_validity(v);
            assert_eq!(
                encode_relative_validity(Duration::from_secs(secs)).unwrap(),
                v,
                "v={v}"
            );
        }
    }
}
