//! docs/config.md and config/smsgate.toml against the parser. The keys are asked of the
//! parser itself: a table given an unknown key is refused with the list of the keys it
//! accepts (`deny_unknown_fields`), so a key added to any section is found here without
//! this test being touched.

use std::collections::BTreeMap;

use super::*;

const PROBE: &str = "zz_probe_key";

/// The keys a table accepts, when `src` (which puts `PROBE` into it) is refused for that
/// key; `None` when it is refused for anything else or not at all (the table is a map, or
/// not a table).
fn expected(src: &str) -> Option<Vec<String>> {
    let e = toml::from_str::<Config>(src).err()?.to_string();
    let rest = e
        .lines()
        .find_map(|l| l.split_once(&format!("unknown field `{PROBE}`, expected ")))?
        .1;
    // "one of `a`, `b`", "`a` or `b`" or "`a`": the names are between backticks.
    Some(
        rest.split('`')
            .skip(1)
            .step_by(2)
            .map(String::from)
            .collect(),
    )
}

/// `expected` of a file with the one required table and then `body`.
fn accepted_keys(body: &str) -> Option<Vec<String>> {
    expected(&format!("[storage]\npath = \"/tmp/x\"\n{body}"))
}

/// Every table the parser reads, by its TOML header (`[http]`, `[[modems]]`,
/// `[[reminders.schedule]]`), with the keys it accepts; a table that takes any key (a map
/// such as `[templates]`) has none.
fn parser_tables() -> BTreeMap<String, Vec<String>> {
    let sections = expected(&format!("{PROBE} = 1\n[storage]\npath = \"/tmp/x\"\n"))
        .expect("the top level refuses unknown keys");
    let mut tables = BTreeMap::new();
    for section in sections {
        // `[storage]` is already open: its probe goes straight in.
        let as_table = if section == "storage" {
            format!("{PROBE} = 1\n")
        } else {
            format!("[{section}]\n{PROBE} = 1\n")
        };
        let (header, keys, opener) = if let Some(k) = accepted_keys(&as_table) {
            (format!("[{section}]"), k, String::new())
        } else if let Some(k) = accepted_keys(&format!("[[{section}]]\n{PROBE} = 1\n")) {
            (format!("[[{section}]]"), k, format!("[[{section}]]\n"))
        } else {
            (format!("[{section}]"), Vec::new(), String::new())
        };
        let mut leaves = Vec::new();
        for key in keys {
            // A key that is itself a table, or an array of tables, of known keys.
            let table = format!("[{section}.{key}]");
            let array = format!("[[{section}.{key}]]");
            if let Some(k) = accepted_keys(&format!("{opener}{table}\n{PROBE} = 1\n")) {
                tables.insert(table, k);
            } else if let Some(k) = accepted_keys(&format!("{opener}{array}\n{PROBE} = 1\n")) {
                tables.insert(array, k);
            } else {
                leaves.push(key);
            }
        }
        tables.insert(header, leaves);
    }
    tables
}

fn read(path: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A TOML table header alone on a line (`[http]`, `[[modems]]`), as written.
fn header(line: &str) -> Option<String> {
    let t = line.trim();
    let name = t.trim_start_matches('[').trim_end_matches(']');
    let ok = t.starts_with('[')
        && !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.');
    ok.then(|| t.to_string())
}

/// `key` of a line `key = value`.
fn key_of(line: &str) -> Option<&str> {
    let (k, v) = line.split_once('=')?;
    let k = k.trim();
    let ok = k.starts_with(|c: char| c.is_ascii_lowercase())
        && k.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !v.trim().is_empty();
    ok.then_some(k)
}

/// docs/config.md: each table under a heading that names its header in backticks
/// (`` ### `[http]` ``), each key as the first cell of a table row (`` | `listen` | ``).
fn documented() -> BTreeMap<String, Vec<String>> {
    let mut doc: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in read("docs/config.md").lines() {
        if line.starts_with('#') {
            current = line.split('`').skip(1).step_by(2).find_map(header);
            if let Some(h) = &current {
                doc.entry(h.clone()).or_default();
            }
        } else if let (Some(h), Some(cell)) = (&current, line.strip_prefix("| `"))
            && let Some((key, _)) = cell.split_once('`')
        {
            doc.entry(h.clone()).or_default().push(key.to_string());
        }
    }
    doc
}

/// Every key the parser accepts is in docs/config.md, under its table's heading, and every
/// key documented there for a table the parser reads is one it accepts.
#[test]
fn every_key_is_in_the_config_reference() {
    let doc = documented();
    let (mut missing, mut unknown) = (Vec::new(), Vec::new());
    for (table, keys) in parser_tables() {
        let Some(documented) = doc.get(&table) else {
            missing.push(format!("{table} (a heading naming `{table}`)"));
            continue;
        };
        missing.extend(
            keys.iter()
                .filter(|k| !documented.contains(k))
                .map(|k| format!("{table} {k}")),
        );
        if !keys.is_empty() {
            unknown.extend(
                documented
                    .iter()
                    .filter(|k| !keys.contains(k))
                    .map(|k| format!("{table} {k}")),
            );
        }
    }
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "docs/config.md lacks (a row | `key` | under the table's heading): {missing:#?}\n\
         and documents keys the parser does not accept: {unknown:#?}"
    );
}

/// The shipped example names every key too, set or commented out (`# key = value`), and
/// it still parses with every commented-out key and header set.
#[test]
fn every_key_is_in_the_shipped_example() {
    let sample = read("config/smsgate.toml");
    let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut uncommented = String::new();
    let mut current = String::new();
    for line in sample.lines() {
        let (active, commented) = match line.strip_prefix('#') {
            Some(rest) => (false, rest.strip_prefix(' ').unwrap_or(rest)),
            None => (true, line),
        };
        if let Some(h) = header(commented) {
            current = h;
        } else if let Some(k) = key_of(commented) {
            found
                .entry(current.clone())
                .or_default()
                .push(k.to_string());
        } else if !active {
            continue;
        }
        uncommented.push_str(commented);
        uncommented.push('\n');
    }
    if let Err(e) = toml::from_str::<Config>(&uncommented) {
        panic!("config/smsgate.toml with its commented-out keys set does not parse: {e}");
    }
    let mut missing = Vec::new();
    for (table, keys) in parser_tables() {
        if !found.contains_key(&table) {
            missing.push(table.clone());
        }
        for k in keys {
            if !found.get(&table).is_some_and(|f| f.contains(&k)) {
                missing.push(format!("{table} {k}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "config/smsgate.toml does not name (set, or as `# key = value`): {missing:#?}"
    );
}

#[test]
fn the_parser_is_asked_for_its_keys() {
    let t = parser_tables();
    assert!(t["[http]"].contains(&"listen".to_string()));
    assert!(t["[[modems]]"].contains(&"port".to_string()));
    assert!(t["[[reminders.schedule]]"].contains(&"offset".to_string()));
    assert!(t["[templates]"].is_empty());
    assert!(t.values().map(Vec::len).sum::<usize>() > 60);
}
