//! Send windows: the hours of the recipient's day in which a text may go out, in their time
//! zone, less quiet dates (public holidays) and quiet weekdays. Also the local-time arithmetic of
//! plans: "10:00 on the due date minus 7 days, in America/New_York" as an instant, the same
//! wall-clock time on both sides of a daylight-saving change.

use std::collections::BTreeSet;

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc, Weekday,
};
use chrono_tz::Tz;

pub use crate::domain::WindowSpec;

/// A send window, a quiet day, a time, a time zone or an offset that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    /// A quiet date not written `YYYY-MM-DD`.
    #[error("quiet date {0:?} is not YYYY-MM-DD")]
    QuietDate(String),
    /// Not a weekday name.
    #[error("{0:?} is not a weekday (mon, tue, … sun)")]
    Weekday(String),
    /// Seven quiet weekdays.
    #[error("every weekday is quiet: nothing could ever be sent")]
    AllQuiet,
    /// Not `HH:MM` or `HH:MM:SS`.
    #[error("{0:?} is not a time of day such as \"08:00\"")]
    Time(String),
    /// Not an IANA time zone name.
    #[error("{0:?} is not an IANA time zone such as \"America/New_York\"")]
    Timezone(String),
    /// Not an offset in days or weeks.
    #[error("{0:?} is not an offset in days such as \"-7d\", \"0d\" or \"+3d\"")]
    Offset(String),
    /// An offset of more than 366 days.
    #[error("{0:?} is more than a year from the due date")]
    OffsetTooFar(String),
    /// A window that closes before (or when) it opens.
    #[error("the window must open before it closes ({start} to {end})")]
    Order {
        /// Opens at, as given.
        start: String,
        /// Closes at, as given.
        end: String,
    },
}

/// Why this machine's time zone cannot be told.
#[derive(Debug, thiserror::Error)]
pub enum LocalTimezoneError {
    /// `TZ` names no zone and the system says none.
    #[error("{0}")]
    System(#[source] iana_time_zone::GetTimezoneError),
    /// The system names a zone that is not in the IANA database.
    #[error(transparent)]
    Unknown(#[from] WindowError),
}

/// A checked send window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// Opens at (local).
    pub start: NaiveTime,
    /// Closes at (local).
    pub end: NaiveTime,
    /// The recipient's time zone.
    pub tz: Tz,
}

/// Days on which nothing with a send window goes out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QuietDays {
    /// Dates (public holidays), in the recipient's local calendar.
    pub dates: BTreeSet<NaiveDate>,
    /// Weekdays (e.g. Sunday).
    pub weekdays: Vec<Weekday>,
}

impl QuietDays {
    /// Parses `YYYY-MM-DD` dates and weekday names (`sun`, `Sunday`).
    pub fn parse(dates: &[String], weekdays: &[String]) -> Result<QuietDays, WindowError> {
        let mut q = QuietDays::default();
        for d in dates {
            q.dates.insert(
                NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d")
                    .map_err(|_| WindowError::QuietDate(d.clone()))?,
            );
        }
        for w in weekdays {
            let day: Weekday = w
                .trim()
                .parse()
                .map_err(|_| WindowError::Weekday(w.clone()))?;
            if !q.weekdays.contains(&day) {
                q.weekdays.push(day);
            }
        }
        if q.weekdays.len() >= 7 {
            return Err(WindowError::AllQuiet);
        }
        Ok(q)
    }

    /// Whether nothing goes out on this local date.
    pub fn is_quiet(&self, d: NaiveDate) -> bool {
        self.dates.contains(&d) || self.weekdays.contains(&d.weekday())
    }
}

/// Parses `HH:MM` (or `HH:MM:SS`).
pub fn parse_time(s: &str) -> Result<NaiveTime, WindowError> {
    NaiveTime::parse_from_str(s.trim(), "%H:%M")
        .or_else(|_| NaiveTime::parse_from_str(s.trim(), "%H:%M:%S"))
        .map_err(|_| WindowError::Time(s.to_owned()))
}

/// Parses an IANA time zone name (`America/New_York`, `Europe/Paris`, `UTC`).
pub fn timezone(s: &str) -> Result<Tz, WindowError> {
    s.trim()
        .parse::<Tz>()
        .map_err(|_| WindowError::Timezone(s.to_owned()))
}

/// This machine's time zone (`/etc/localtime`, `TZ`), or `UTC` when it cannot be told.
pub fn system_timezone() -> String {
    local_timezone()
        .map(|tz| tz.name().to_string())
        .unwrap_or_else(|_| "UTC".into())
}

/// This machine's time zone: `TZ` when it names an IANA zone (`Europe/Paris`, `:Europe/Paris`),
/// else the zone `/etc/localtime` points at; why not, when neither tells.
pub fn local_timezone() -> Result<Tz, LocalTimezoneError> {
    pick_timezone(
        std::env::var("TZ").ok().as_deref(),
        iana_time_zone::get_timezone(),
    )
}

fn pick_timezone(
    tz_env: Option<&str>,
    system: Result<String, iana_time_zone::GetTimezoneError>,
) -> Result<Tz, LocalTimezoneError> {
    if let Some(tz) = tz_env
        .map(|t| t.trim_start_matches(':'))
        .and_then(|t| timezone(t).ok())
    {
        return Ok(tz);
    }
    let name = system.map_err(LocalTimezoneError::System)?;
    Ok(timezone(&name)?)
}

/// A plan step's offset from the due date in whole days: `-7d`, `0d`, `+3d` (also `-1w`).
pub fn parse_offset(s: &str) -> Result<i64, WindowError> {
    let t = s.trim();
    let bad = || WindowError::Offset(s.to_owned());
    let (sign, rest) = match t.as_bytes().first() {
        Some(b'-') => (-1, &t[1..]),
        Some(b'+') => (1, &t[1..]),
        _ => (1, t),
    };
    // The unit is the last character, whatever its width in bytes.
    let split = rest.char_indices().last().map_or(0, |(i, _)| i);
    let (num, unit) = rest.split_at(split);
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: i64 = num.parse().map_err(|_| bad())?;
    let days = match unit {
        "d" | "D" => n,
        "w" | "W" => n * 7,
        _ => return Err(bad()),
    };
    if days.abs() > 366 {
        return Err(WindowError::OffsetTooFar(s.to_owned()));
    }
    Ok(sign * days)
}

/// The instant a local wall-clock time happens. A time skipped by a daylight-saving jump
/// (02:30 on the spring-forward night) is taken as the same time an hour later; a time that
/// happens twice (the autumn night) as its first occurrence.
pub fn local_instant(tz: Tz, date: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
    let naive = date.and_time(time);
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.with_timezone(&Utc),
        LocalResult::None => {
            let later = naive + Duration::hours(1);
            match tz.from_local_datetime(&later) {
                LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.with_timezone(&Utc),
                // No zone skips two hours; fall back to reading the time as UTC offset-free.
                LocalResult::None => Utc.from_utc_datetime(&naive),
            }
        }
    }
}

/// The local date of an instant in a zone.
pub fn local_date(tz: Tz, t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&tz).date_naive()
}

impl Window {
    /// From its stored form.
    pub fn from_spec(spec: &WindowSpec) -> Result<Window, WindowError> {
        let w = Window {
            start: parse_time(&spec.start)?,
            end: parse_time(&spec.end)?,
            tz: timezone(&spec.timezone)?,
        };
        if w.start >= w.end {
            return Err(WindowError::Order {
                start: spec.start.clone(),
                end: spec.end.clone(),
            });
        }
        Ok(w)
    }

    /// Whether `t` is inside the window on a day that is not quiet.
    pub fn contains(&self, t: DateTime<Utc>, quiet: &QuietDays) -> bool {
        self.next_open(t, quiet) == t
    }

    /// `t` when it is inside the window, else the next time the window opens (skipping quiet
    /// days).
    pub fn next_open(&self, t: DateTime<Utc>, quiet: &QuietDays) -> DateTime<Utc> {
        let mut day = local_date(self.tz, t);
        // Quiet weekdays leave at least one open day a week; quiet dates are finite. Two
        // years of days is far more than either can take.
        for _ in 0..800 {
            if !quiet.is_quiet(day) {
                let open = local_instant(self.tz, day, self.start);
                let close = local_instant(self.tz, day, self.end);
                if t < open {
                    return open;
                }
                if t < close {
                    return t;
                }
            }
            match day.succ_opt() {
                Some(d) => day = d,
                None => break,
            }
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_zone_is_tz_then_the_system_s() {
        let paris = || Ok("Europe/Paris".to_string());
        assert_eq!(
            pick_timezone(Some(":America/New_York"), paris()).ok(),
            Some(Tz::America__New_York)
        );
        assert_eq!(pick_timezone(None, paris()).ok(), Some(Tz::Europe__Paris));
        // A POSIX rule is not a zone name: the system's zone then.
        assert_eq!(
            pick_timezone(Some("CET-1CEST"), paris()).ok(),
            Some(Tz::Europe__Paris)
        );
        let none = iana_time_zone::GetTimezoneError::OsError;
        assert!(matches!(
            pick_timezone(None, Err(none)),
            Err(LocalTimezoneError::System(_))
        ));
        assert!(matches!(
            pick_timezone(None, Ok("Mars/Olympus".into())),
            Err(LocalTimezoneError::Unknown(WindowError::Timezone(z))) if z == "Mars/Olympus"
        ));
    }

    fn ny() -> Window {
        Window::from_spec(&WindowSpec {
            start: "08:00".into(),
            end: "21:00".into(),
            timezone: "America/New_York".into(),
        })
        .unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn inside_the_window_is_now_outside_is_the_next_opening() {
        let w = ny();
        let q = QuietDays::default();
        // 12:00 EST is inside.
        let noon = utc("2026-12-01T17:00:00Z");
        assert_eq!(w.next_open(noon, &q), noon);
        assert!(w.contains(noon, &q));
        // 23:00 EST goes to 08:00 EST the next day.
        assert_eq!(
            w.next_open(utc("2026-12-02T04:00:00Z"), &q),
            utc("2026-12-02T13:00:00Z")
        );
        // 06:00 EST goes to 08:00 the same day.
        assert_eq!(
            w.next_open(utc("2026-12-01T11:00:00Z"), &q),
            utc("2026-12-01T13:00:00Z")
        );
        // 21:00 sharp is closed.
        assert_eq!(
            w.next_open(utc("2026-12-02T02:00:00Z"), &q),
            utc("2026-12-02T13:00:00Z")
        );
    }

    #[test]
    fn quiet_days_are_skipped() {
        let w = ny();
        let q = QuietDays::parse(&["2026-12-25".into()], &["sun".into()]).unwrap();
        // Thursday Dec 24, 22:00 EST: Friday 25 is a holiday, Saturday 26 opens.
        assert_eq!(
            w.next_open(utc("2026-12-25T03:00:00Z"), &q),
            utc("2026-12-26T13:00:00Z")
        );
        // Saturday Dec 26, 22:00: Sunday is quiet, Monday 28 opens.
        assert_eq!(
            w.next_open(utc("2026-12-27T03:00:00Z"), &q),
            utc("2026-12-28T13:00:00Z")
        );
        assert!(
            QuietDays::parse(
                &[],
                &["mon", "tue", "wed", "thu", "fri", "sat", "sun"].map(String::from)
            )
            .is_err_and(|e| e == WindowError::AllQuiet)
        );
        assert_eq!(
            QuietDays::parse(&["25/12/2026".into()], &[]),
            Err(WindowError::QuietDate("25/12/2026".into()))
        );
    }

    #[test]
    fn local_times_keep_their_wall_clock_across_dst() {
        let tz = timezone("America/New_York").unwrap();
        let ten = parse_time("10:00").unwrap();
        // Before and after the end of DST (2026-11-01).
        let before = local_instant(tz, NaiveDate::from_ymd_opt(2026, 10, 29).unwrap(), ten);
        let after = local_instant(tz, NaiveDate::from_ymd_opt(2026, 11, 8).unwrap(), ten);
        assert_eq!(before, utc("2026-10-29T14:00:00Z"));
        assert_eq!(after, utc("2026-11-08T15:00:00Z"));
        // 02:30 does not exist on 2026-03-08: taken as 03:30 EDT.
        let gap = local_instant(
            tz,
            NaiveDate::from_ymd_opt(2026, 3, 8).unwrap(),
            parse_time("02:30").unwrap(),
        );
        assert_eq!(gap, utc("2026-03-08T07:30:00Z"));
        // 01:30 happens twice on 2026-11-01: the first (EDT).
        let twice = local_instant(
            tz,
            NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
            parse_time("01:30").unwrap(),
        );
        assert_eq!(twice, utc("2026-11-01T05:30:00Z"));
    }

    #[test]
    fn offsets_and_bad_input() {
        assert_eq!(parse_offset("-7d"), Ok(-7));
        assert_eq!(parse_offset("0d"), Ok(0));
        assert_eq!(parse_offset("+3d"), Ok(3));
        assert_eq!(parse_offset("10d"), Ok(10));
        assert_eq!(parse_offset("-2w"), Ok(-14));
        for bad in [
            "", "d", "-7", "7h", "+-3d", "x3d", "400d", "\u{80}", "5é", "-Å", "+",
        ] {
            assert!(parse_offset(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_offset("400d"),
            Err(WindowError::OffsetTooFar("400d".into()))
        );
        assert_eq!(
            timezone("Mars/Olympus"),
            Err(WindowError::Timezone("Mars/Olympus".into()))
        );
        assert_eq!(
            timezone("Mars/Olympus").map_err(|e| e.to_string()),
            Err("\"Mars/Olympus\" is not an IANA time zone such as \"America/New_York\"".into())
        );
        assert!(parse_time("25:00").is_err());
        let bad = WindowSpec {
            start: "21:00".into(),
            end: "08:00".into(),
            timezone: "UTC".into(),
        };
        assert!(matches!(
            Window::from_spec(&bad),
            Err(WindowError::Order { .. })
        ));
        assert_eq!(
            Window::from_spec(&bad).map_err(|e| e.to_string()),
            Err("the window must open before it closes (21:00 to 08:00)".into())
        );
    }

    proptest::proptest! {
        /// Whatever a client sends as an offset, a time or a window, the answer is a value or
        /// an error, never a panic.
        #[test]
        fn any_text_parses_or_is_refused(t in "\\PC{0,12}") {
            let _ = parse_offset(&t);
            let _ = parse_time(&t);
            let _ = timezone(&t);
        }
    }
}
