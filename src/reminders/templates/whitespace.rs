//! Whitespace as SMS wants it: every Unicode space as a plain one, runs collapsed, lines
//! trimmed, and a full stop doubled by an abbreviation written once.

/// Every Unicode space (no-break, narrow no-break, thin, ideographic, …) as a plain space: one
/// character outside the GSM 7-bit alphabet makes the whole SMS UCS-2.
pub(super) fn plain_spaces(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_whitespace() { ' ' } else { c })
        .collect()
}

/// One line with every run of whitespace as one plain space, trimmed.
pub(super) fn collapse_spaces(line: &str) -> String {
    line.split(char::is_whitespace)
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `..` after a letter and before a space or the end of the line (an abbreviation such as `déc.`
/// ending a sentence) as one full stop; an ellipsis is left alone.
fn single_full_stops(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let mut out = String::with_capacity(line.len());
    for (i, &c) in chars.iter().enumerate() {
        let doubled = c == '.'
            && i >= 2
            && chars[i - 1] == '.'
            && chars[i - 2].is_alphabetic()
            && chars.get(i + 1).is_none_or(|n| n.is_whitespace());
        if !doubled {
            out.push(c);
        }
    }
    out
}

pub(super) fn tidy(text: &str) -> String {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let lines: Vec<String> = text
        .split('\n')
        .map(|line| single_full_stops(&collapse_spaces(line)))
        .collect();
    let first = lines.iter().position(|l| !l.is_empty());
    let last = lines.iter().rposition(|l| !l.is_empty());
    match (first, last) {
        (Some(first), Some(last)) => lines[first..=last].join("\n"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reminders::templates::render;
    use serde_json::json;

    #[test]
    fn whitespace_is_tidied() {
        let text = render(
            "\n\n  Hi \t {{ name }},  \n\n  bye\u{a0}now  \n\n",
            &json!({"name": "Ana"}),
        )
        .unwrap();
        assert_eq!(text, "Hi Ana,\n\nbye now");
        let text = render("{% if a %}\n  A\n{% endif %}\nB", &json!({"a": true})).unwrap();
        assert_eq!(text, "A\nB");
        assert_eq!(tidy("1 déc.. Wait... ok.."), "1 déc. Wait... ok.");
    }
}
