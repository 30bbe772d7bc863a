//! AT command-line syntax (ITU-T V.250 §5) and result codes (TS 27.007 §9, TS 27.005 §3.2.5).
//!
//! A line is `AT` followed by basic commands (`E0`, `&F`, `S0=0`, `Z`) and extended ones
//! (`+CMGS=23`), the extended ones separated by `;`: `ATE0V1+CMEE=1;+CREG?`.

/// What an extended command asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Op {
    /// `AT+CSQ`
    Exec,
    /// `AT+CPIN?`
    Read,
    /// `AT+CNMI=?`
    Test,
    /// `AT+CMGR=3`: the arguments.
    Set(Vec<Arg>),
}

/// One argument of an extended command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Arg {
    /// The text, without quotes.
    pub(crate) text: String,
    /// Whether it was quoted.
    pub(crate) quoted: bool,
}

impl Arg {
    /// The argument as a number, `None` when empty or not a number.
    pub(crate) fn num(&self) -> Option<u32> {
        if self.quoted {
            return None;
        }
        self.text.parse().ok()
    }
}

/// One command of a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cmd {
    /// A basic command: `E` with value `Some(0)`, `&F`, `Z`, `I`, `S0` (value after `=`).
    Basic {
        /// Upper case, with `&` when it has one.
        name: String,
        /// The number after the name (or after `=` for S-registers).
        value: Option<u32>,
        /// `S7?`
        query: bool,
    },
    /// An extended command: `+CMGS`, `^CURC`, `#STN`.
    Extended {
        /// Upper case, prefix included.
        name: String,
        /// What it asks.
        op: Op,
    },
}

/// The longest command line accepted (V.250 asks for at least 40 characters; modems take a few
/// hundred).
pub(crate) const MAX_LINE: usize = 1024;

/// Parses what follows `AT` on a command line. `None`: a syntax error (answer `ERROR`).
pub(crate) fn parse_commands(body: &str) -> Option<Vec<Cmd>> {
    let chars: Vec<char> = body.chars().collect();
    let mut cmds = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == ' ' || c == ';' {
            i += 1;
            continue;
        }
        if matches!(c, '+' | '^' | '#' | '$' | '%' | '*') {
            let start = i;
            i += 1;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '!' | '-' | '.' | '_'))
            {
                i += 1;
            }
            if i == start + 1 {
                return None;
            }
            let name: String = chars[start..i].iter().collect::<String>().to_uppercase();
            let op = if chars.get(i) == Some(&'=') && chars.get(i + 1) == Some(&'?') {
                i += 2;
                Op::Test
            } else if chars.get(i) == Some(&'?') {
                i += 1;
                Op::Read
            } else if chars.get(i) == Some(&'=') {
                i += 1;
                let start = i;
                let mut in_quotes = false;
                while i < chars.len() && (in_quotes || chars[i] != ';') {
                    if chars[i] == '"' {
                        in_quotes = !in_quotes;
                    }
                    i += 1;
                }
                if in_quotes {
                    return None;
                }
                Op::Set(split_args(&chars[start..i].iter().collect::<String>())?)
            } else {
                Op::Exec
            };
            // An extended command ends the line or is followed by `;`.
            while chars.get(i) == Some(&' ') {
                i += 1;
            }
            if i < chars.len() && chars[i] != ';' {
                return None;
            }
            cmds.push(Cmd::Extended { name, op });
            continue;
        }
        let mut name = String::new();
        if c == '&' {
            name.push('&');
            i += 1;
        }
        let letter = chars.get(i).copied().filter(char::is_ascii_alphabetic)?;
        name.push(letter.to_ascii_uppercase());
        i += 1;
        let mut query = false;
        let mut value = None;
        if letter.eq_ignore_ascii_case(&'s') && name == "S" {
            // S-register: S<n>? or S<n>=<v>
            let (reg, next) = digits(&chars, i);
            name.push_str(&reg?.to_string());
            i = next;
            match chars.get(i) {
                Some('?') => {
                    query = true;
                    i += 1;
                }
                Some('=') => {
                    let (v, next) = digits(&chars, i + 1);
                    value = Some(v.unwrap_or(0));
                    i = next;
                }
                _ => return None,
            }
        } else if letter.eq_ignore_ascii_case(&'d') && name == "D" {
            // Dial: the rest of the line is the dial string; a data modem thing we do not do.
            cmds.push(Cmd::Basic {
                name,
                value: None,
                query: false,
            });
            return Some(cmds);
        } else {
            let (v, next) = digits(&chars, i);
            value = v;
            i = next;
        }
        cmds.push(Cmd::Basic { name, value, query });
    }
    Some(cmds)
}

fn digits(chars: &[char], mut i: usize) -> (Option<u32>, usize) {
    let start = i;
    while i < chars.len() && chars[i].is_ascii_digit() {
        i += 1;
    }
    if i == start {
        return (None, i);
    }
    let s: String = chars[start..i].iter().collect();
    (s.parse().ok(), i)
}

/// Splits `1,"SM",,2` into arguments; quotes protect commas. `None` for text after a closing
/// quote.
pub(crate) fn split_args(s: &str) -> Option<Vec<Arg>> {
    let mut args = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut in_quotes = false;
    let mut closed = false;
    for c in s.chars() {
        if in_quotes {
            if c == '"' {
                in_quotes = false;
                closed = true;
            } else {
                cur.push(c);
            }
        } else if c == '"' {
            if quoted || !cur.trim().is_empty() {
                return None;
            }
            cur.clear();
            quoted = true;
            in_quotes = true;
        } else if c == ',' {
            args.push(finish(&cur, quoted));
            cur.clear();
            quoted = false;
            closed = false;
        } else if closed {
            if c != ' ' {
                return None;
            }
        } else {
            cur.push(c);
        }
    }
    args.push(finish(&cur, quoted));
    Some(args)
}

fn finish(cur: &str, quoted: bool) -> Arg {
    Arg {
        text: if quoted {
            cur.to_string()
        } else {
            cur.trim().to_string()
        },
        quoted,
    }
}

/// A failed command's final result code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Plain `ERROR` (syntax, unknown command).
    Error,
    /// `+CME ERROR: <n>` (TS 27.007 §9.2), shown as `ERROR` with `AT+CMEE=0`.
    Cme(u16),
    /// `+CMS ERROR: <n>` (TS 27.005 §3.2.5).
    Cms(u16),
}

impl Failure {
    /// The final result line for the current `AT+CMEE` setting.
    pub(crate) fn line(self, cmee: u8, cms_ignores_cmee: bool) -> String {
        match self {
            Failure::Error => "ERROR".into(),
            Failure::Cme(n) => match cmee {
                0 => "ERROR".into(),
                1 => format!("+CME ERROR: {n}"),
                _ => format!("+CME ERROR: {}", cme_text(n)),
            },
            Failure::Cms(n) => match cmee {
                0 if !cms_ignores_cmee => "ERROR".into(),
                2 => format!("+CMS ERROR: {}", cms_text(n)),
                _ => format!("+CMS ERROR: {n}"),
            },
        }
    }
}

/// Verbose `+CME ERROR` text: the same table the driver reads errors with.
fn cme_text(n: u16) -> &'static str {
    crate::modem::error::cme_description(n)
}

/// Verbose `+CMS ERROR` text (TS 27.005 §3.2.5): the driver's table.
fn cms_text(n: u16) -> &'static str {
    crate::modem::CmsError { code: n }.description()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(name: &str, op: Op) -> Cmd {
        Cmd::Extended {
            name: name.into(),
            op,
        }
    }

    #[test]
    fn parses_basic_and_extended_commands() {
        let cmds = parse_commands("E0V1&D2S0=0+cmee=1;+CREG?;+CNMI=?").unwrap();
        assert_eq!(
            cmds,
            vec![
                Cmd::Basic {
                    name: "E".into(),
                    value: Some(0),
                    query: false
                },
                Cmd::Basic {
                    name: "V".into(),
                    value: Some(1),
                    query: false
                },
                Cmd::Basic {
                    name: "&D".into(),
                    value: Some(2),
                    query: false
                },
                Cmd::Basic {
                    name: "S0".into(),
                    value: Some(0),
                    query: false
                },
                ext(
                    "+CMEE",
                    Op::Set(vec![Arg {
                        text: "1".into(),
                        quoted: false
                    }])
                ),
                ext("+CREG", Op::Read),
                ext("+CNMI", Op::Test),
            ]
        );
        assert_eq!(parse_commands("").unwrap(), vec![]);
        assert!(parse_commands("+CSQ?x").is_none());
        assert!(parse_commands("+CPIN=\"12").is_none());
        assert!(parse_commands("!").is_none());
    }

    #[test]
    fn splits_quoted_arguments() {
        let args = split_args("\"SM\", \"a,b\" ,,3").unwrap();
        let texts: Vec<_> = args.iter().map(|a| (a.text.as_str(), a.quoted)).collect();
        assert_eq!(
            texts,
            vec![("SM", true), ("a,b", true), ("", false), ("3", false)]
        );
        assert_eq!(args[3].num(), Some(3));
        assert!(split_args("\"a\"b").is_none());
    }

    #[test]
    fn error_lines_follow_cmee() {
        assert_eq!(Failure::Cms(304).line(0, false), "ERROR");
        assert_eq!(Failure::Cms(304).line(0, true), "+CMS ERROR: 304");
        assert_eq!(Failure::Cms(304).line(1, false), "+CMS ERROR: 304");
        assert_eq!(
            Failure::Cms(304).line(2, false),
            "+CMS ERROR: invalid PDU mode parameter"
        );
        assert_eq!(Failure::Cme(16).line(0, true), "ERROR");
        assert_eq!(Failure::Cme(16).line(1, false), "+CME ERROR: 16");
        assert_eq!(
            Failure::Cme(16).line(2, false),
            "+CME ERROR: incorrect password"
        );
    }
}
