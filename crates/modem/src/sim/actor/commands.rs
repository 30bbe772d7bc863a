//! The AT command handlers: V.250 basic commands, TS 27.007 / 27.005 extended ones, the SIM's
//! PIN and PUK, USSD, and `AT+CMGS` / `AT+CMGW` with the PDU that completes them.

use std::time::Duration;

use super::input::{Line, PduKind};
use super::{Actor, Event};
use crate::sim::at::{Arg, Cmd, Failure, Op};
use crate::sim::state::{Cnmi, Mem, REC_UNREAD, STO_UNSENT, Settings, SimLock, tpdu_len};
use crate::sms::{Address, Pdu, decode, parse_hex};

/// The TE character sets `AT+CSCS` accepts (TS 27.007 §5.5).
const CHARSETS: [&str; 3] = ["GSM", "IRA", "UCS2"];
/// The longest `AT+CMGS=<length>`: a TPDU is at most 164 octets (TS 23.040 §9.2.2.2).
const MAX_TPDU: usize = 164;

/// What one command of a line did.
pub(super) enum Step {
    /// Done; these information lines (one block) go before the final result.
    Ok(Vec<String>),
    /// Failed: the line stops here.
    Fail(Failure),
    /// `AT+CMGS`/`AT+CMGW`: the prompt was sent, the PDU comes next.
    Prompt,
}

/// Something to do after the final `OK` of a line.
pub(super) enum After {
    /// `ATZ`: boot URCs again (when configured).
    BootUrcs,
    /// `AT+CFUN=1,1`: reboot.
    Reboot,
    /// `AT+CNMI=` with `<mode>` > 0: flush (or drop) the buffered indications.
    CnmiBuffer { flush: bool },
    /// Something may have freed room or readied the modem: deliver held-back messages.
    Deliver,
}

impl Actor {
    pub(super) fn registered(&self) -> bool {
        self.cfun == 1 && self.sim == SimLock::Ready
    }

    pub(super) fn registration_changed(&mut self, before: bool) {
        let now = self.registered();
        if before != now && self.settings.creg > 0 {
            let stat = if now { 1 } else { 0 };
            self.urc(&format!("+CREG: {stat}"));
        }
    }

    pub(super) fn cpin_line(&self) -> String {
        match self.sim {
            SimLock::Ready => "+CPIN: READY".into(),
            SimLock::Pin { .. } => "+CPIN: SIM PIN".into(),
            SimLock::Puk => "+CPIN: SIM PUK".into(),
        }
    }

    /// 27.007 commands that need an unlocked SIM.
    fn need_sim_cme(&self) -> Result<(), Failure> {
        match self.sim {
            SimLock::Ready => Ok(()),
            SimLock::Pin { .. } => Err(Failure::Cme(11)),
            SimLock::Puk => Err(Failure::Cme(12)),
        }
    }

    /// 27.005 commands: need an unlocked SIM and, with boot URCs, `SMS Ready`.
    pub(super) fn need_sms(&self) -> Result<(), Failure> {
        match self.sim {
            SimLock::Pin { .. } => Err(Failure::Cms(311)),
            SimLock::Puk => Err(Failure::Cms(316)),
            SimLock::Ready if !self.sms_ready => Err(Failure::Cms(314)),
            SimLock::Ready => Ok(()),
        }
    }

    pub(super) fn execute(&mut self, cmd: Cmd) -> Step {
        let r = match cmd {
            Cmd::Basic { name, value, query } => self.basic(&name, value, query),
            Cmd::Extended { name, op } => return self.extended(&name, op),
        };
        match r {
            Ok(lines) => Step::Ok(lines),
            Err(f) => Step::Fail(f),
        }
    }

    fn basic(
        &mut self,
        name: &str,
        value: Option<u32>,
        query: bool,
    ) -> Result<Vec<String>, Failure> {
        match name {
            "E" => match value.unwrap_or(0) {
                0 => self.settings.echo = false,
                1 => self.settings.echo = true,
                _ => return Err(Failure::Error),
            },
            "Z" => {
                self.settings = Settings::defaults(self.cfg.echo);
                if self.cfg.boot_urcs {
                    self.after.push(After::BootUrcs);
                }
            }
            "&F" => self.settings = Settings::defaults(self.cfg.echo),
            "I" => {
                return Ok(vec![
                    self.cfg.manufacturer.clone(),
                    self.cfg.model.clone(),
                    format!("Revision: {}", self.cfg.revision),
                ]);
            }
            // Result code format, quiet mode, DTR/DCD handling, hook: accepted and ignored.
            "V" | "Q" | "X" | "H" | "&C" | "&D" | "&K" | "&W" | "&S" => {}
            n if n.starts_with('S') => {
                if query {
                    let v = match n {
                        "S3" => 13,
                        "S4" => 10,
                        "S5" => 8,
                        _ => 0,
                    };
                    return Ok(vec![format!("{v:03}")]);
                }
            }
            _ => return Err(Failure::Error),
        }
        Ok(Vec::new())
    }

    fn extended(&mut self, name: &str, op: Op) -> Step {
        let r = match name {
            "+CMGS" => return self.cmgs(op, PduKind::Send),
            "+CMGW" => return self.cmgs(op, PduKind::Write(STO_UNSENT)),
            _ => self.simple(name, op),
        };
        match r {
            Ok(lines) => Step::Ok(lines),
            Err(f) => Step::Fail(f),
        }
    }

    fn simple(&mut self, name: &str, op: Op) -> Result<Vec<String>, Failure> {
        let num = |args: &[Arg], i: usize| args.get(i).and_then(Arg::num);
        let cfg = &self.cfg;
        match (name, &op) {
            ("+CMEE", Op::Read) => Ok(vec![format!("+CMEE: {}", self.settings.cmee)]),
            ("+CMEE", Op::Test) => Ok(vec!["+CMEE: (0-2)".into()]),
            ("+CMEE", Op::Set(a)) => match num(a, 0) {
                Some(n @ 0..=2) => {
                    self.settings.cmee = n as u8;
                    Ok(Vec::new())
                }
                _ => Err(Failure::Cme(50)),
            },
            ("+CGMI" | "+GMI", Op::Exec) => Ok(vec![cfg.manufacturer.clone()]),
            ("+CGMM" | "+GMM", Op::Exec) => Ok(vec![cfg.model.clone()]),
            ("+CGMR" | "+GMR", Op::Exec) => Ok(vec![cfg.revision.clone()]),
            ("+CGSN" | "+GSN", Op::Exec) => Ok(vec![cfg.imei.clone()]),
            (
                "+CGMI" | "+GMI" | "+CGMM" | "+GMM" | "+CGMR" | "+GMR" | "+CGSN" | "+GSN",
                Op::Test,
            ) => Ok(Vec::new()),
            ("+CIMI", Op::Exec) => {
                self.need_sim_cme()?;
                Ok(vec![cfg.imsi.clone()])
            }
            ("+CNUM", Op::Exec) => {
                self.need_sim_cme()?;
                let ty = if cfg.own_number.starts_with('+') {
                    145
                } else {
                    129
                };
                Ok(vec![format!("+CNUM: \"\",\"{}\",{ty}", cfg.own_number)])
            }
            ("+CFUN", Op::Read) => Ok(vec![format!("+CFUN: {}", self.cfun)]),
            ("+CFUN", Op::Test) => Ok(vec!["+CFUN: (0,1,4),(0,1)".into()]),
            ("+CFUN", Op::Set(a)) => {
                let fun = match num(a, 0) {
                    Some(f @ (0 | 1 | 4)) => f as u8,
                    _ => return Err(Failure::Cme(50)),
                };
                if num(a, 1) == Some(1) {
                    self.after.push(After::Reboot);
                    return Ok(Vec::new());
                }
                let before = self.registered();
                self.cfun = if fun == 4 { 0 } else { fun };
                self.registration_changed(before);
                self.after.push(After::Deliver);
                Ok(Vec::new())
            }
            ("+CPIN", Op::Read) => Ok(vec![self.cpin_line()]),
            ("+CPIN", Op::Test) => Ok(Vec::new()),
            ("+CPIN", Op::Set(a)) => self.cpin(a),
            ("+CMGF", Op::Read) => Ok(vec![format!("+CMGF: {}", self.settings.cmgf)]),
            ("+CMGF", Op::Test) => Ok(vec!["+CMGF: (0)".into()]),
            ("+CMGF", Op::Set(a)) => match num(a, 0) {
                Some(0) => Ok(Vec::new()),
                // Text mode is not simulated: only PDU mode matters to smsgate.
                _ => Err(Failure::Cms(303)),
            },
            ("+CSMS", Op::Read) => Ok(vec![format!("+CSMS: {},1,1,1", self.settings.csms)]),
            ("+CSMS", Op::Test) => Ok(vec!["+CSMS: (0,1)".into()]),
            ("+CSMS", Op::Set(a)) => match num(a, 0) {
                Some(s @ 0..=1) => {
                    self.settings.csms = s as u8;
                    Ok(vec!["+CSMS: 1,1,1".into()])
                }
                _ => Err(Failure::Cms(303)),
            },
            ("+CNMI", Op::Read) => {
                let c = self.settings.cnmi;
                Ok(vec![format!(
                    "+CNMI: {},{},{},{},{}",
                    c.mode, c.mt, c.bm, c.ds, c.bfr
                )])
            }
            ("+CNMI", Op::Test) => Ok(vec!["+CNMI: (0-3),(0-3),(0,2),(0-2),(0,1)".into()]),
            ("+CNMI", Op::Set(a)) => {
                let v = |i: usize, max: u32| -> Result<u8, Failure> {
                    match a.get(i) {
                        None => Ok(0),
                        Some(arg) if arg.text.is_empty() => Ok(0),
                        Some(arg) => match arg.num() {
                            Some(n) if n <= max => Ok(n as u8),
                            _ => Err(Failure::Cms(303)),
                        },
                    }
                };
                let cnmi = Cnmi {
                    mode: v(0, 3)?,
                    mt: v(1, 3)?,
                    bm: v(2, 3)?,
                    ds: v(3, 2)?,
                    bfr: v(4, 1)?,
                };
                if cnmi.bm == 1 || cnmi.bm == 3 {
                    return Err(Failure::Cms(303));
                }
                self.settings.cnmi = cnmi;
                if cnmi.mode > 0 {
                    self.after.push(After::CnmiBuffer {
                        flush: cnmi.bfr == 0,
                    });
                }
                self.after.push(After::Deliver);
                Ok(Vec::new())
            }
            ("+CPMS", Op::Read) => {
                self.need_sms()?;
                let full = self.shared.lock().knobs.storage_full;
                let mut s = self.shared.lock();
                let parts: Vec<String> = self
                    .settings
                    .mem
                    .iter()
                    .map(|&m| {
                        let st = s.stores.get_mut(m);
                        let used = if full { st.capacity() } else { st.used() };
                        format!("\"{}\",{},{}", m.name(), used, st.capacity())
                    })
                    .collect();
                Ok(vec![format!("+CPMS: {}", parts.join(","))])
            }
            ("+CPMS", Op::Test) => Ok(vec![
                "+CPMS: (\"SM\",\"ME\",\"SR\"),(\"SM\",\"ME\"),(\"SM\",\"ME\")".into(),
            ]),
            ("+CPMS", Op::Set(a)) => {
                self.need_sms()?;
                if a.is_empty() || a.len() > 3 {
                    return Err(Failure::Cms(302));
                }
                let mut mem = self.settings.mem;
                for (i, arg) in a.iter().enumerate() {
                    let m = Mem::parse(&arg.text).ok_or(Failure::Cms(302))?;
                    if i > 0 && m == Mem::Sr {
                        return Err(Failure::Cms(302));
                    }
                    mem[i] = m;
                }
                self.settings.mem = mem;
                let full = self.shared.lock().knobs.storage_full;
                let mut s = self.shared.lock();
                let parts: Vec<String> = mem
                    .iter()
                    .map(|&m| {
                        let st = s.stores.get_mut(m);
                        let used = if full { st.capacity() } else { st.used() };
                        format!("{},{}", used, st.capacity())
                    })
                    .collect();
                Ok(vec![format!("+CPMS: {}", parts.join(","))])
            }
            ("+CREG", Op::Read) => {
                let stat = if self.registered() { 1 } else { 0 };
                Ok(vec![match self.settings.creg {
                    2 if stat == 1 => format!("+CREG: 2,{stat},\"00C3\",\"0000A1B2\",7"),
                    n => format!("+CREG: {n},{stat}"),
                }])
            }
            ("+CREG", Op::Test) => Ok(vec!["+CREG: (0-2)".into()]),
            // TS 27.007 §10.1.20: packet-domain registration, the same network as `+CREG`.
            // Gammu asks for it to read the network state and gives up on that without it.
            ("+CGREG", Op::Read) => {
                let stat = if self.registered() { 1 } else { 0 };
                Ok(vec![match self.settings.cgreg {
                    2 if stat == 1 => format!("+CGREG: 2,{stat},\"00C3\",\"0000A1B2\",7"),
                    n => format!("+CGREG: {n},{stat}"),
                }])
            }
            ("+CGREG", Op::Test) => Ok(vec!["+CGREG: (0-2)".into()]),
            ("+CGREG", Op::Set(a)) => match num(a, 0) {
                Some(n @ 0..=2) => {
                    self.settings.cgreg = n as u8;
                    Ok(Vec::new())
                }
                _ => Err(Failure::Cme(50)),
            },
            ("+CREG", Op::Set(a)) => match num(a, 0) {
                Some(n @ 0..=2) => {
                    self.settings.creg = n as u8;
                    Ok(Vec::new())
                }
                _ => Err(Failure::Cme(50)),
            },
            ("+COPS", Op::Read) => Ok(vec![if self.registered() {
                format!("+COPS: 0,0,\"{}\",7", cfg.operator)
            } else {
                "+COPS: 0".into()
            }]),
            ("+COPS", Op::Test) => Ok(vec![format!(
                "+COPS: (2,\"{0}\",\"{0}\",\"00101\",7),,(0-4),(0-2)",
                cfg.operator
            )]),
            ("+COPS", Op::Set(_)) => Ok(Vec::new()),
            ("+CSQ", Op::Exec) => Ok(vec![if self.cfun == 1 {
                "+CSQ: 20,99".into()
            } else {
                "+CSQ: 99,99".into()
            }]),
            ("+CSQ", Op::Test) => Ok(vec!["+CSQ: (0-31,99),(0-7,99)".into()]),
            ("+CUSD", Op::Test) => Ok(vec!["+CUSD: (0-2)".into()]),
            ("+CUSD", Op::Read) => Ok(vec!["+CUSD: 1".into()]),
            ("+CUSD", Op::Set(a)) => self.cusd(a),
            ("+CSCA", Op::Read) => {
                self.need_sms()?;
                let smsc = self.shared.lock().stores.smsc.clone();
                let ty = if smsc.starts_with('+') { 145 } else { 129 };
                Ok(vec![format!("+CSCA: \"{smsc}\",{ty}")])
            }
            ("+CSCA", Op::Test) => Ok(Vec::new()),
            ("+CSCA", Op::Set(a)) => {
                self.need_sms()?;
                let smsc = a.first().map(|a| a.text.clone()).unwrap_or_default();
                if !smsc.is_empty() && Address::parse_number("smsc", &smsc).is_err() {
                    return Err(Failure::Cms(304));
                }
                self.shared.lock().stores.smsc = smsc;
                Ok(Vec::new())
            }
            ("+CMMS", Op::Read) => Ok(vec![format!("+CMMS: {}", self.settings.cmms)]),
            ("+CMMS", Op::Test) => Ok(vec!["+CMMS: (0-2)".into()]),
            ("+CMMS", Op::Set(a)) => match num(a, 0) {
                Some(n @ 0..=2) => {
                    self.settings.cmms = n as u8;
                    Ok(Vec::new())
                }
                _ => Err(Failure::Cms(303)),
            },
            ("+CNMA", Op::Exec | Op::Set(_)) => {
                if self.unacked.pop_front().is_some() {
                    Ok(Vec::new())
                } else {
                    Err(Failure::Cms(340))
                }
            }
            ("+CNMA", Op::Test) => Ok(vec!["+CNMA: (0-2)".into()]),
            ("+CMGR", Op::Set(a)) => self.cmgr(num(a, 0)),
            ("+CMGL", Op::Exec) => self.cmgl(Some(u32::from(REC_UNREAD))),
            ("+CMGL", Op::Set(a)) => self.cmgl(num(a, 0)),
            ("+CMGL", Op::Test) => Ok(vec!["+CMGL: (0-4)".into()]),
            ("+CMGD", Op::Set(a)) => self.cmgd(num(a, 0), a.get(1).map(|f| f.num())),
            ("+CMGD", Op::Test) => {
                self.need_sms()?;
                let mem = self.settings.mem[0];
                let mut s = self.shared.lock();
                let st = s.stores.get_mut(mem);
                let used: Vec<String> = st.hex_list().iter().map(|(i, _)| i.to_string()).collect();
                Ok(vec![format!("+CMGD: ({}),(0-4)", used.join(","))])
            }
            ("+CMGS" | "+CMGW", Op::Test) => Ok(Vec::new()),
            // TS 27.005 §3.1: PDU mode ignores the TE character set, but clients set and read
            // it (Gammu picks its text encoding from the test command's list).
            ("+CSCS", Op::Read) => Ok(vec![format!("+CSCS: \"{}\"", self.settings.cscs)]),
            ("+CSCS", Op::Test) => Ok(vec![format!(
                "+CSCS: ({})",
                CHARSETS
                    .iter()
                    .map(|c| format!("\"{c}\""))
                    .collect::<Vec<_>>()
                    .join(",")
            )]),
            ("+CSCS", Op::Set(a)) => {
                let wanted = a.first().map(|a| a.text.to_ascii_uppercase());
                match CHARSETS.iter().find(|c| Some(**c) == wanted.as_deref()) {
                    Some(c) => {
                        self.settings.cscs = c;
                        Ok(Vec::new())
                    }
                    None => Err(Failure::Cme(4)),
                }
            }
            ("+CSMP" | "^CURC" | "+CSCLK" | "+IPR" | "+IFC" | "+CLIP" | "+CRC", Op::Set(_)) => {
                Ok(Vec::new())
            }
            // USSD and everything else: not a modem feature smsgate needs.
            _ => Err(Failure::Error),
        }
    }

    /// `AT+CUSD=1,"<code>"[,<dcs>]`: OK at once, the network's answer a moment later as a
    /// `+CUSD:` URC. `*100#` reports the balance; other codes are not supported (`+CUSD: 4`).
    /// The code may also come as packed GSM 7-bit in hex, the way some Huawei firmwares want it.
    fn cusd(&mut self, a: &[Arg]) -> Result<Vec<String>, Failure> {
        if self.sim != SimLock::Ready || self.cfun != 1 {
            return Err(Failure::Cme(30));
        }
        match a.first().and_then(Arg::num) {
            Some(0 | 2) => return Ok(Vec::new()),
            Some(1) => {}
            _ => return Err(Failure::Cme(4)),
        }
        // TS 27.007 §7.15: without `<str>` the command only sets the result code presentation
        // (`AT+CUSD=1` is how Gammu enables it); nothing goes to the network, nothing comes back.
        let Some(raw) = a.get(1).map(|a| a.text.clone()) else {
            return Ok(Vec::new());
        };
        let code = if !raw.is_empty()
            && raw.len() % 2 == 0
            && raw.chars().all(|c| c.is_ascii_hexdigit())
            && !raw.contains(['*', '#'])
        {
            crate::modem::ussd::unpack_hex(&raw).unwrap_or(raw)
        } else {
            raw
        };
        let urc = if code.trim_end_matches('\r') == "*100#" {
            let balance = self.shared.lock().knobs.balance.clone();
            format!("+CUSD: 0,\"Balance: {balance} USD. Valid until 31.12.2027.\",15")
        } else {
            "+CUSD: 4".to_string()
        };
        self.schedule(Duration::from_millis(50), Event::Ussd { urc });
        Ok(Vec::new())
    }

    fn cpin(&mut self, a: &[Arg]) -> Result<Vec<String>, Failure> {
        let given = a.first().map(|a| a.text.clone()).unwrap_or_default();
        let before = self.registered();
        match self.sim.clone() {
            // No PIN pending: entering one is not allowed (TS 27.007 §8.3).
            SimLock::Ready => return Err(Failure::Cme(3)),
            SimLock::Pin { tries } => {
                if self.pin.as_deref() == Some(given.as_str()) {
                    self.sim = SimLock::Ready;
                } else if tries <= 1 {
                    self.sim = SimLock::Puk;
                    return Err(Failure::Cme(16));
                } else {
                    self.sim = SimLock::Pin { tries: tries - 1 };
                    return Err(Failure::Cme(16));
                }
            }
            SimLock::Puk => {
                let Some(new_pin) = a.get(1) else {
                    return Err(Failure::Cme(12));
                };
                if given != self.cfg.puk {
                    return Err(Failure::Cme(16));
                }
                self.pin = Some(new_pin.text.clone());
                self.sim = SimLock::Ready;
            }
        }
        self.registration_changed(before);
        if self.cfg.boot_urcs && !self.sms_ready {
            self.urc("+CPIN: READY");
            let epoch = self.epoch;
            self.schedule(self.cfg.boot_delay, Event::SmsReady { epoch });
        }
        self.after.push(After::Deliver);
        Ok(Vec::new())
    }

    fn cmgs(&mut self, op: Op, kind: PduKind) -> Step {
        let Op::Set(a) = op else {
            return match op {
                Op::Test => Step::Ok(Vec::new()),
                _ => Step::Fail(Failure::Error),
            };
        };
        let declared = match a.first().and_then(Arg::num) {
            Some(n) if n >= 1 && n as usize <= MAX_TPDU => n as usize,
            _ => return Step::Fail(Failure::Cms(304)),
        };
        let kind = match (kind, a.get(1).map(Arg::num)) {
            (PduKind::Write(_), Some(Some(stat @ 0..=3))) => PduKind::Write(stat as u8),
            (PduKind::Write(_), Some(_)) => return Step::Fail(Failure::Cms(304)),
            (k, _) => k,
        };
        if let Err(f) = self.need_sms() {
            return Step::Fail(f);
        }
        let prompt = format!("\r\n{}", self.cfg.prompt);
        self.emit(prompt.as_bytes());
        self.line = Line::Pdu {
            kind,
            declared,
            hex: Vec::new(),
            bad: false,
        };
        self.prompts += 1;
        if let Some(timeout) = self.cfg.prompt_timeout {
            let (epoch, prompt) = (self.epoch, self.prompts);
            self.schedule(timeout, Event::PromptTimeout { epoch, prompt });
        }
        Step::Prompt
    }

    /// The PDU after the prompt is complete (Ctrl-Z).
    pub(super) fn pdu_done(&mut self, kind: PduKind, declared: usize, hex: &[u8], bad: bool) {
        let octets = match std::str::from_utf8(hex).ok().map(parse_hex) {
            Some(Ok(o)) if !bad => o,
            _ => return self.final_result(Err(Failure::Cms(304))),
        };
        let smsc_len = octets.first().map_or(0, |&l| usize::from(l));
        // TS 27.005 §3.1: <length> counts the TPDU only, not the SMSC field.
        if octets.len() <= smsc_len + 1 || tpdu_len(&octets) != declared {
            return self.final_result(Err(Failure::Cms(304)));
        }
        let pdu = decode(&octets, true);
        match kind {
            PduKind::Write(stat) => {
                if pdu.is_err() {
                    return self.final_result(Err(Failure::Cms(304)));
                }
                let mem = self.settings.mem[1];
                let full = self.shared.lock().knobs.storage_full;
                let index = if full {
                    None
                } else {
                    self.shared.lock().stores.get_mut(mem).insert(stat, octets)
                };
                match index {
                    Some(i) => self.respond(&[vec![format!("+CMGW: {i}")]], Ok(())),
                    None => self.final_result(Err(Failure::Cms(322))),
                }
            }
            PduKind::Send => {
                let submit = match pdu {
                    Ok(Pdu::Submit(s)) => s,
                    _ => return self.final_result(Err(Failure::Cms(304))),
                };
                if let Err(f) = self.need_sms() {
                    return self.final_result(Err(f));
                }
                let outcome = self.decide(smsc_len == 0, submit);
                let latency = self.shared.lock().knobs.latency;
                self.busy = true;
                let epoch = self.epoch;
                self.schedule_always(latency, Event::SendDone { epoch, outcome });
            }
        }
    }
}
