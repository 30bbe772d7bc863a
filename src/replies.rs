//! What an inbound text means: an opt-out keyword (`STOP`, `START`, `HELP`), or an answer to a
//! message's `reply_options`, read the forgiving way people type (`1`, ` 1 `, `1.`, `"1"`, `#1`,
//! `one`, any case).
//!
//! The configuration sections `[replies]` and `[optout]` live here too.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

/// `[replies]`: how answers are matched to the messages that asked.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepliesConfig {
    /// How long after a message was sent an answer is still matched to it (e.g. "7d").
    #[serde(default = "default_window", with = "humantime_serde")]
    pub window: Duration,
    /// Hold a second message with `reply_options` to a number while an earlier one to the same
    /// number is still unanswered within its window, so that a "1" cannot mean either. When
    /// false, both go out and an answer goes to the most recent one.
    #[serde(default = "default_true")]
    pub hold_ambiguous: bool,
    /// Words read as an option, e.g. `one = "1"` (compared without case).
    #[serde(default = "default_aliases")]
    pub aliases: BTreeMap<String, String>,
}

impl Default for RepliesConfig {
    fn default() -> Self {
        RepliesConfig {
            window: default_window(),
            hold_ambiguous: true,
            aliases: default_aliases(),
        }
    }
}

fn default_window() -> Duration {
    Duration::from_secs(7 * 24 * 3600)
}

fn default_true() -> bool {
    true
}

fn default_aliases() -> BTreeMap<String, String> {
    [
        "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    ]
    .iter()
    .enumerate()
    .map(|(i, w)| ((*w).to_string(), (i + 1).to_string()))
    .collect()
}

/// `[optout]`: the keywords that opt a number out and back in, and the texts sent back.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptOutConfig {
    /// A whole message of one of these opts the number out.
    #[serde(default = "default_stop_words")]
    pub stop_words: Vec<String>,
    /// A whole message of one of these opts an opted-out number back in.
    #[serde(default = "default_start_words")]
    pub start_words: Vec<String>,
    /// A whole message of one of these gets `help_reply`.
    #[serde(default = "default_help_words")]
    pub help_words: Vec<String>,
    /// Sent once when a number opts out ("" sends nothing).
    #[serde(default = "default_stop_reply")]
    pub stop_reply: String,
    /// Sent once when a number opts back in ("" sends nothing).
    #[serde(default = "default_start_reply")]
    pub start_reply: String,
    /// Sent for a help keyword ("" sends nothing).
    #[serde(default = "default_help_reply")]
    pub help_reply: String,
    /// At most one automatic answer of each kind (help, opt-out confirmation, opt-in
    /// confirmation) per number per interval: a customer texting HELP or STOP/START in a loop
    /// gets at most three texts an interval, and never crowds out reminders. The keywords
    /// themselves are always obeyed.
    #[serde(default = "default_auto_reply_interval", with = "humantime_serde")]
    pub auto_reply_interval: std::time::Duration,
}

fn default_auto_reply_interval() -> std::time::Duration {
    std::time::Duration::from_secs(3600)
}

impl Default for OptOutConfig {
    fn default() -> Self {
        OptOutConfig {
            stop_words: default_stop_words(),
            start_words: default_start_words(),
            help_words: default_help_words(),
            stop_reply: default_stop_reply(),
            start_reply: default_start_reply(),
            help_reply: default_help_reply(),
            auto_reply_interval: default_auto_reply_interval(),
        }
    }
}

fn words(w: &[&str]) -> Vec<String> {
    w.iter().map(|s| (*s).to_string()).collect()
}

fn default_stop_words() -> Vec<String> {
    words(&[
        "STOP",
        "STOPALL",
        "UNSUBSCRIBE",
        "CANCEL",
        "END",
        "QUIT",
        "REVOKE",
        "OPTOUT",
    ])
}

fn default_start_words() -> Vec<String> {
    words(&["START", "UNSTOP", "YES"])
}

fn default_help_words() -> Vec<String> {
    words(&["HELP", "INFO"])
}

fn default_stop_reply() -> String {
    "You have been unsubscribed and will get no more messages from this number. Reply START to subscribe again.".into()
}

fn default_start_reply() -> String {
    "You are subscribed again. Reply STOP to unsubscribe.".into()
}

fn default_help_reply() -> String {
    "Reply STOP to unsubscribe, START to subscribe again.".into()
}

/// What is wrong with `[optout]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptOutConfigError {
    /// A keyword that normalises to nothing.
    #[error("{key}: {word:?} has no letters or digits")]
    Empty {
        /// `stop_words`, `start_words` or `help_words`.
        key: &'static str,
        /// The keyword.
        word: String,
    },
    /// A keyword in two lists.
    #[error("{0:?} is in more than one keyword list")]
    Repeated(String),
}

impl OptOutConfigError {
    /// The key the problem is in; `None` when it spans the lists.
    pub fn key(&self) -> Option<&'static str> {
        match self {
            OptOutConfigError::Empty { key, .. } => Some(key),
            OptOutConfigError::Repeated(_) => None,
        }
    }

    /// What is wrong, without the key.
    pub fn detail(&self) -> String {
        match self {
            OptOutConfigError::Empty { word, .. } => format!("{word:?} has no letters or digits"),
            OptOutConfigError::Repeated(_) => self.to_string(),
        }
    }
}

impl OptOutConfig {
    /// Checks the section; the error names the key.
    pub fn validate(&self) -> Result<(), OptOutConfigError> {
        for (key, list) in [
            ("stop_words", &self.stop_words),
            ("start_words", &self.start_words),
            ("help_words", &self.help_words),
        ] {
            if let Some(w) = list.iter().find(|w| normalise(w).is_empty()) {
                return Err(OptOutConfigError::Empty {
                    key,
                    word: w.clone(),
                });
            }
        }
        let lists = [&self.stop_words, &self.start_words, &self.help_words];
        for (i, a) in lists.iter().enumerate() {
            for b in lists.iter().skip(i + 1) {
                if let Some(w) = a
                    .iter()
                    .find(|w| b.iter().any(|x| normalise(x) == normalise(w)))
                {
                    return Err(OptOutConfigError::Repeated(w.clone()));
                }
            }
        }
        Ok(())
    }

    /// The keyword a whole message is, if any.
    pub fn keyword(&self, text: &str) -> Option<Keyword> {
        let t = normalise(text);
        if t.is_empty() {
            return None;
        }
        let has = |list: &[String]| list.iter().any(|w| normalise(w) == t);
        if has(&self.stop_words) {
            Some(Keyword::Stop)
        } else if has(&self.start_words) {
            Some(Keyword::Start)
        } else if has(&self.help_words) {
            Some(Keyword::Help)
        } else {
            None
        }
    }
}

/// An opt-out keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyword {
    /// Opt out.
    Stop,
    /// Opt back in.
    Start,
    /// Send the help text.
    Help,
}

/// A text as compared: no surrounding spaces, punctuation, quotes or symbols (`#1`, `"1"`,
/// `1.`, `STOP!`), inner runs of space as one, lower case.
pub fn normalise(text: &str) -> String {
    let t = text.trim_matches(|c: char| !c.is_alphanumeric());
    let mut out = String::with_capacity(t.len());
    let mut space = false;
    for c in t.chars() {
        if c.is_whitespace() {
            space = true;
            continue;
        }
        if space && !out.is_empty() {
            out.push(' ');
        }
        space = false;
        out.extend(c.to_lowercase());
    }
    out
}

/// What is wrong with `[replies]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RepliesConfigError {
    /// A zero `window`.
    #[error("window: must be more than 0s")]
    NoWindow,
    /// A `window` longer than a year.
    #[error("window: must be at most a year")]
    WindowTooLong,
    /// An alias that normalises to nothing.
    #[error("aliases: {0:?} has no letters or digits")]
    EmptyAlias(String),
}

impl RepliesConfigError {
    /// The key the problem is in.
    pub fn key(&self) -> &'static str {
        match self {
            RepliesConfigError::NoWindow | RepliesConfigError::WindowTooLong => "window",
            RepliesConfigError::EmptyAlias(_) => "aliases",
        }
    }

    /// What is wrong, without the key.
    pub fn detail(&self) -> String {
        match self {
            RepliesConfigError::NoWindow => "must be more than 0s".into(),
            RepliesConfigError::WindowTooLong => "must be at most a year".into(),
            RepliesConfigError::EmptyAlias(w) => format!("{w:?} has no letters or digits"),
        }
    }
}

impl RepliesConfig {
    /// Checks the section; the error names the key.
    pub fn validate(&self) -> Result<(), RepliesConfigError> {
        if self.window.is_zero() {
            return Err(RepliesConfigError::NoWindow);
        }
        if self.window > Duration::from_secs(366 * 24 * 3600) {
            return Err(RepliesConfigError::WindowTooLong);
        }
        if let Some((w, _)) = self.aliases.iter().find(|(w, _)| normalise(w).is_empty()) {
            return Err(RepliesConfigError::EmptyAlias(w.clone()));
        }
        Ok(())
    }

    /// Which of `options` (e.g. `{"1": "call_me"}`) a text names: its key, or `None` when it
    /// names none of them. An option's key, or a configured alias of it, is the whole text.
    pub fn choice(&self, text: &str, options: &BTreeMap<String, String>) -> Option<String> {
        let t = normalise(text);
        if t.is_empty() {
            return None;
        }
        if let Some(k) = options.keys().find(|k| normalise(k) == t) {
            return Some(k.clone());
        }
        let aliased = self
            .aliases
            .iter()
            .find(|(w, _)| normalise(w) == t)
            .map(|(_, k)| normalise(k))?;
        options.keys().find(|k| normalise(k) == aliased).cloned()
    }
}

/// One problem with a message's `reply_options`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyOptionProblem {
    /// None, or more than 10.
    #[error("must have 1 to 10 entries")]
    Count,
    /// A key or an action of the wrong length, or a key with no letter or digit.
    #[error("{0:?}: keys of 1–20 characters with a letter or digit, actions of 1–64 characters")]
    Entry(String),
    /// A key that reads the same as another once normalised.
    #[error("{0:?}: another key reads the same (case and punctuation are ignored)")]
    SameKey(String),
}

/// Every problem with a message's `reply_options`, in words joined by `; `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct ReplyOptionsError(pub Vec<ReplyOptionProblem>);

/// Checks a message's `reply_options`: 1 to 10 entries, keys that read differently once
/// normalised (case and punctuation ignored), actions of 1–64 characters. Every problem found.
pub fn reply_options_problems(opts: &BTreeMap<String, String>) -> Result<(), ReplyOptionsError> {
    let mut problems = Vec::new();
    if opts.is_empty() || opts.len() > 10 {
        problems.push(ReplyOptionProblem::Count);
    }
    let mut seen = std::collections::HashSet::new();
    for (k, v) in opts {
        let n = normalise(k);
        if n.is_empty() || k.len() > 20 || v.trim().is_empty() || v.len() > 64 {
            problems.push(ReplyOptionProblem::Entry(k.clone()));
        } else if !seen.insert(n) {
            problems.push(ReplyOptionProblem::SameKey(k.clone()));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ReplyOptionsError(problems))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> BTreeMap<String, String> {
        [("1", "call_me"), ("2", "pay_minimum")]
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    #[test]
    fn choices_are_read_the_way_people_type() {
        let r = RepliesConfig::default();
        let o = options();
        for t in [
            "1", " 1 ", "1.", "\"1\"", "#1", "one", "ONE", "One!", "(1)", "“1”", "1\n",
        ] {
            assert_eq!(r.choice(t, &o).as_deref(), Some("1"), "{t:?}");
        }
        assert_eq!(r.choice("2", &o).as_deref(), Some("2"));
        assert_eq!(r.choice("Two", &o).as_deref(), Some("2"));
        for t in ["3", "three", "12", "1 2", "call me", "", "  ", "?"] {
            assert_eq!(r.choice(t, &o), None, "{t:?}");
        }
        // Words only where configured.
        let none = RepliesConfig {
            aliases: BTreeMap::new(),
            ..RepliesConfig::default()
        };
        assert_eq!(none.choice("one", &o), None);
        // Keys that are words match without case.
        let yn: BTreeMap<String, String> = [("Y".to_string(), "confirm".to_string())].into();
        assert_eq!(r.choice(" y. ", &yn).as_deref(), Some("Y"));
    }

    #[test]
    fn keywords_are_whole_messages_in_any_case() {
        let c = OptOutConfig::default();
        for t in [
            "STOP", "stop", " Stop. ", "STOP!", "\"stop\"", "OptOut", "end",
        ] {
            assert_eq!(c.keyword(t), Some(Keyword::Stop), "{t:?}");
        }
        for t in ["start", "UNSTOP", "yes"] {
            assert_eq!(c.keyword(t), Some(Keyword::Start), "{t:?}");
        }
        assert_eq!(c.keyword("help?"), Some(Keyword::Help));
        assert_eq!(c.keyword("INFO"), Some(Keyword::Help));
        for t in ["please stop", "stop it", "stopp", "1", "", "don't stop"] {
            assert_eq!(c.keyword(t), None, "{t:?}");
        }
        let custom = OptOutConfig {
            stop_words: vec!["ARRET".into()],
            ..OptOutConfig::default()
        };
        assert_eq!(custom.keyword("arret"), Some(Keyword::Stop));
        assert_eq!(custom.keyword("stop"), None);
    }

    #[test]
    fn sections_are_checked() {
        assert!(OptOutConfig::default().validate().is_ok());
        assert!(RepliesConfig::default().validate().is_ok());
        let clash = OptOutConfig {
            start_words: vec!["stop".into()],
            ..OptOutConfig::default()
        };
        let e = clash.validate().unwrap_err();
        assert!(matches!(e, OptOutConfigError::Repeated(_)), "{e:?}");
        assert!(e.to_string().contains("more than one"));
        assert_eq!(e.key(), None);
        let empty = OptOutConfig {
            help_words: vec!["?!".into()],
            ..OptOutConfig::default()
        };
        let e = empty.validate().unwrap_err();
        assert_eq!(e.key(), Some("help_words"));
        assert!(e.to_string().starts_with("help_words: "), "{e}");
        let zero = RepliesConfig {
            window: Duration::ZERO,
            ..RepliesConfig::default()
        };
        let e = zero.validate().unwrap_err();
        assert_eq!(e, RepliesConfigError::NoWindow);
        assert_eq!(
            (e.key(), e.detail().as_str()),
            ("window", "must be more than 0s")
        );
    }

    #[test]
    fn reply_options_name_every_problem() {
        let mut opts = options();
        opts.insert("#1".into(), "again".into());
        opts.insert("3".into(), String::new());
        let e = reply_options_problems(&opts).unwrap_err();
        assert_eq!(
            e.0,
            [
                ReplyOptionProblem::SameKey("1".into()),
                ReplyOptionProblem::Entry("3".into()),
            ]
        );
        assert!(e.to_string().starts_with(
            "\"1\": another key reads the same (case and punctuation are ignored); \"3\": keys of"
        ));
        assert_eq!(
            reply_options_problems(&BTreeMap::new()),
            Err(ReplyOptionsError(vec![ReplyOptionProblem::Count]))
        );
    }

    #[test]
    fn normalising() {
        assert_eq!(normalise("  Hello,   World!  "), "hello, world");
        assert_eq!(normalise("#1"), "1");
        assert_eq!(normalise("...."), "");
    }
}
