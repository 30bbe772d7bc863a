//! What the driver knows about a modem (identity, SIM, network, signal, storage), and the parsing
//! of the answers that tell it. Parsers are forgiving: a field a modem garbles becomes `None`.

use serde::Serialize;

/// The driver's view of one modem, published on every change.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ModemStatus {
    /// The configured name.
    pub name: String,
    /// The configured port.
    pub port: String,
    /// `connecting`, `initialising`, `up`, `recovering`, `down` or `stopped`.
    pub state: ModemState,
    /// The last error, in words; cleared once the modem works again (a part sent, or a health
    /// probe answered while it is up).
    pub last_error: Option<String>,
    /// When the last error happened.
    pub last_error_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Identity and network facts, as far as the modem told them.
    pub info: ModemInfo,
    /// Message parts sent since start.
    pub sent_parts: u64,
    /// Parts that failed since start.
    pub failed_parts: u64,
    /// Inbound messages and status reports read since start.
    pub received: u64,
    /// Slots of the SIM holding a phone's own texts (SMS-SUBMIT, SMS-COMMAND), left alone
    /// unless `[inbound] purge_foreign` is set: room the SIM does not have for customers.
    pub foreign_messages: u32,
}

/// Where the driver is with a modem.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ModemState {
    /// Opening the port.
    #[default]
    Connecting,
    /// Running the init sequence.
    Initialising,
    /// Ready to send.
    Up,
    /// A command timed out; trying to get the modem to answer again.
    Recovering,
    /// Not usable now (port missing, SIM locked, not answering); see `last_error`.
    Down,
    /// The driver stopped.
    Stopped,
}

impl ModemState {
    /// The state's name as used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ModemState::Connecting => "connecting",
            ModemState::Initialising => "initialising",
            ModemState::Up => "up",
            ModemState::Recovering => "recovering",
            ModemState::Down => "down",
            ModemState::Stopped => "stopped",
        }
    }
}

/// Identity, SIM and network facts.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ModemInfo {
    /// `AT+CGMI`.
    pub manufacturer: Option<String>,
    /// `AT+CGMM`.
    pub model: Option<String>,
    /// `AT+CGMR`.
    pub revision: Option<String>,
    /// `AT+CGSN`.
    pub imei: Option<String>,
    /// `AT+CIMI`.
    pub imsi: Option<String>,
    /// `AT+CNUM`, when the SIM knows its own number.
    pub own_number: Option<String>,
    /// `AT+CPIN?`: `READY`, `SIM PIN`, `SIM PUK`, …
    pub sim: Option<String>,
    /// `AT+COPS?`: the operator's name.
    pub operator: Option<String>,
    /// `AT+CREG?`.
    pub registration: Option<Registration>,
    /// `AT+CSQ`.
    pub signal: Option<Signal>,
    /// `AT+CSCA?`: the SMS service centre.
    pub smsc: Option<String>,
    /// `AT+CPMS?`: the message store and its use.
    pub storage: Option<Storage>,
    /// The `AT+CNMI` setting the modem accepted.
    pub cnmi: Option<String>,
    /// `AT+CMMS=2` accepted (link kept up between sends).
    pub cmms: bool,
}

/// Network registration (TS 27.007 §7.2 `<stat>`).
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Registration {
    /// 0: not registered, not searching.
    NotRegistered,
    /// 1: registered, home network.
    Home,
    /// 2: searching.
    Searching,
    /// 3: registration denied.
    Denied,
    /// 4: unknown.
    Unknown,
    /// 5: registered, roaming.
    Roaming,
    /// 6: registered for SMS only, home network.
    HomeSmsOnly,
    /// 7: registered for SMS only, roaming.
    RoamingSmsOnly,
    /// 8 and above: emergency only and other states.
    Other,
}

impl Registration {
    /// From `<stat>`.
    pub fn from_stat(stat: u8) -> Registration {
        match stat {
            0 => Registration::NotRegistered,
            1 => Registration::Home,
            2 => Registration::Searching,
            3 => Registration::Denied,
            4 => Registration::Unknown,
            5 => Registration::Roaming,
            6 => Registration::HomeSmsOnly,
            7 => Registration::RoamingSmsOnly,
            _ => Registration::Other,
        }
    }

    /// Whether the modem can send now.
    pub fn is_registered(self) -> bool {
        matches!(
            self,
            Registration::Home
                | Registration::Roaming
                | Registration::HomeSmsOnly
                | Registration::RoamingSmsOnly
        )
    }

    /// In words.
    pub fn as_str(self) -> &'static str {
        match self {
            Registration::NotRegistered => "not registered",
            Registration::Home => "registered (home)",
            Registration::Searching => "searching",
            Registration::Denied => "registration denied",
            Registration::Unknown => "unknown",
            Registration::Roaming => "registered (roaming)",
            Registration::HomeSmsOnly => "registered for SMS (home)",
            Registration::RoamingSmsOnly => "registered for SMS (roaming)",
            Registration::Other => "other",
        }
    }
}

/// Signal strength from `+CSQ: <rssi>,<ber>` (TS 27.007 §8.5).
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Signal {
    /// 0–31, or 99 for unknown.
    pub rssi: u8,
    /// dBm: −113 + 2·rssi; `None` when unknown.
    pub dbm: Option<i16>,
    /// 0–5 bars, the way phones show it.
    pub bars: u8,
}

impl Signal {
    /// From the `<rssi>` value.
    pub fn from_rssi(rssi: u8) -> Signal {
        let dbm = (rssi <= 31).then(|| -113 + 2 * i16::from(rssi));
        let bars = match dbm {
            None => 0,
            Some(d) if d >= -73 => 5,
            Some(d) if d >= -83 => 4,
            Some(d) if d >= -93 => 3,
            Some(d) if d >= -103 => 2,
            Some(d) if d >= -111 => 1,
            Some(_) => 0,
        };
        Signal { rssi, dbm, bars }
    }
}

/// Use of the message store (`+CPMS`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Storage {
    /// The memory read from (`SM`, `ME`, `MT`).
    pub memory: Option<String>,
    /// Slots used.
    pub used: u32,
    /// Slots in all.
    pub total: u32,
}

/// Splits an argument list on commas outside quotes, unquoting the fields.
pub fn fields(args: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in args.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur).trim().to_string()),
            _ => cur.push(c),
        }
    }
    out.push(cur.trim().to_string());
    out
}

/// `+CSQ: 20,99` → signal.
pub fn parse_csq(args: &str) -> Option<Signal> {
    let rssi = fields(args).first()?.parse::<u8>().ok()?;
    Some(Signal::from_rssi(rssi))
}

/// `+COPS: 0,0,"Operator",7` → `Operator`.
pub fn parse_cops(args: &str) -> Option<String> {
    fields(args).get(2).filter(|s| !s.is_empty()).cloned()
}

/// `+CPMS: "SM",3,30,"SM",3,30,"SM",3,30` (query) or `+CPMS: 3,30,3,30,3,30` (set).
pub fn parse_cpms(args: &str) -> Option<Storage> {
    let f = fields(args);
    let first_is_mem = f.first()?.parse::<u32>().is_err();
    let (memory, used, total) = if first_is_mem {
        (f.first().cloned(), f.get(1)?, f.get(2)?)
    } else {
        (None, f.first()?, f.get(1)?)
    };
    Some(Storage {
        memory,
        used: used.parse().ok()?,
        total: total.parse().ok()?,
    })
}

/// `+CNUM: "","+15551234567",145` → the number.
pub fn parse_cnum(args: &str) -> Option<String> {
    fields(args).get(1).filter(|s| !s.is_empty()).cloned()
}

/// `+CSCA: "+15550000000",145` → the number (empty → `None`).
pub fn parse_csca(args: &str) -> Option<String> {
    fields(args).first().filter(|s| !s.is_empty()).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal() {
        let s = parse_csq("20,99").unwrap();
        assert_eq!((s.rssi, s.dbm, s.bars), (20, Some(-73), 5));
        assert_eq!(parse_csq("99,99").unwrap().dbm, None);
        assert_eq!(parse_csq("5,0").unwrap().bars, 2); // -103 dBm
        assert_eq!(parse_csq("3,0").unwrap().bars, 1); // -107 dBm
        assert_eq!(parse_csq("garbage"), None);
    }

    #[test]
    fn operator_storage_numbers() {
        assert_eq!(
            parse_cops("0,0,\"T-Mobile\",7").as_deref(),
            Some("T-Mobile")
        );
        assert_eq!(parse_cops("0"), None);
        let s = parse_cpms("\"SM\",3,30,\"SM\",3,30,\"SM\",3,30").unwrap();
        assert_eq!((s.memory.as_deref(), s.used, s.total), (Some("SM"), 3, 30));
        let s = parse_cpms("3,30,3,30,3,30").unwrap();
        assert_eq!((s.used, s.total), (3, 30));
        assert_eq!(
            parse_cnum("\"\",\"+15551234567\",145").as_deref(),
            Some("+15551234567")
        );
        assert_eq!(
            parse_csca("\"+15550000000\",145").as_deref(),
            Some("+15550000000")
        );
        assert_eq!(parse_csca("\"\",129"), None);
        assert_eq!(fields("\"a,b\",c"), vec!["a,b", "c"]);
    }
}
