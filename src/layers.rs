//! The layers of the crate, declared once, and the test that keeps imports going downhill.
//!
//! ```text
//! app       cli, server, fleet, config            wiring, the command line
//! http      api, dashboard, connections           the HTTP server and its pages
//! services  dispatch, inbound, reports, reminders, webhook, twilio, retention
//! adapters  store, modem, sim, outbound, metrics  sled, the serial line, outbound HTTP, Prometheus
//! domain    domain, numbers, replies      the gateway's own vocabulary, no I/O
//! base      sms, util, tls, systemd               the codec and small helpers
//! ```
//!
//! `sms` is the crate `smsgate-sms`, `modem` and `sim` the crate `smsgate-modem` (see
//! `crates/`): Cargo keeps those from importing the daemon; they are listed here for the
//! daemon's own imports of them.
//!
//! A module may use its own layer and those below it. The test reads every `crate::…` and
//! `super::…` path of `src/` outside `#[cfg(test)]` code and fails on an import from a higher
//! layer, naming the file and the line. [`KNOWN_UPHILL`] would list an exception by the pair of
//! modules it joins (none today); an entry that no longer occurs fails the test too.

/// Every top module and its layer, lowest first.
pub const LAYERS: &[(&str, &[&str])] = &[
    ("base", &["sms", "util", "tls", "systemd"]),
    ("domain", &["domain", "numbers", "replies"]),
    (
        "adapters",
        &["store", "modem", "sim", "outbound", "metrics"],
    ),
    (
        "services",
        &[
            "dispatch",
            "inbound",
            "reports",
            "reminders",
            "webhook",
            "twilio",
            "retention",
        ],
    ),
    ("http", &["api", "dashboard", "connections"]),
    ("app", &["cli", "server", "fleet", "config"]),
];

/// Imports that go uphill, as (importing module, imported module). Empty: every import goes
/// downhill. An entry may be added only with the reason it cannot be avoided yet.
pub const KNOWN_UPHILL: &[(&str, &str)] = &[];

/// The layer index of a top module, `None` for one not declared.
pub fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, ms)| ms.contains(&module))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};

    /// One import: the file, its line, the importing and the imported top module.
    #[derive(Debug)]
    struct Import {
        file: String,
        line: usize,
        from: String,
        to: String,
        text: String,
    }

    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                rust_files(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }

    /// The module path of a file under `src/` (`store/mod.rs` → `[store]`, `store/keys.rs` →
    /// `[store, keys]`).
    fn module_path(rel: &Path) -> Vec<String> {
        let mut parts: Vec<String> = rel
            .iter()
            .map(|c| c.to_string_lossy().trim_end_matches(".rs").to_string())
            .collect();
        if parts.last().is_some_and(|l| l == "mod") {
            parts.pop();
        }
        parts
    }

    /// The text with `#[cfg(test)]` items blanked (their lines kept, so line numbers hold).
    fn without_tests(src: &str) -> String {
        let mut out = String::with_capacity(src.len());
        let bytes = src.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if src[i..].starts_with("#[cfg(test)]") {
                // Blank up to the end of the item: its first `;` before any `{`, or its
                // matching `}`.
                let mut j = i;
                let mut depth = 0usize;
                let mut opened = false;
                while j < bytes.len() {
                    match bytes[j] {
                        b'{' => {
                            depth += 1;
                            opened = true;
                        }
                        b'}' => {
                            depth = depth.saturating_sub(1);
                            if opened && depth == 0 {
                                j += 1;
                                break;
                            }
                        }
                        b';' if !opened => {
                            j += 1;
                            break;
                        }
                        _ => {}
                    }
                    j += 1;
                }
                out.extend(
                    src[i..j]
                        .chars()
                        .map(|c| if c == '\n' { '\n' } else { ' ' }),
                );
                i = j;
            } else {
                let c = src[i..].chars().next().unwrap();
                out.push(c);
                i += c.len_utf8();
            }
        }
        out
    }

    /// Every `crate::x` and `super::…::x` path of a file, resolved to its top module.
    fn imports_of(rel: &Path, src: &str) -> Vec<Import> {
        let here = module_path(rel);
        let from = here.first().cloned().unwrap_or_default();
        let mut out = Vec::new();
        for (n, line) in without_tests(src).lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            let mut rest = code;
            while let Some(k) = [rest.find("crate::"), rest.find("super::")]
                .into_iter()
                .flatten()
                .min()
            {
                let at = &rest[k..];
                let target = if let Some(path) = at.strip_prefix("crate::") {
                    path.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .next()
                        .map(str::to_string)
                } else {
                    // `super::super::x`: climb from this module.
                    let mut up = 0;
                    let mut tail = at;
                    while let Some(t) = tail.strip_prefix("super::") {
                        up += 1;
                        tail = t;
                    }
                    let name = tail
                        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .next()
                        .unwrap_or("");
                    let base = here.len().saturating_sub(up);
                    if base == 0 {
                        Some(name.to_string())
                    } else {
                        here.first().cloned()
                    }
                };
                if let Some(to) = target
                    && !to.is_empty()
                    && to != from
                {
                    out.push(Import {
                        file: rel.display().to_string(),
                        line: n + 1,
                        from: from.clone(),
                        to,
                        text: line.trim().to_string(),
                    });
                }
                rest = &rest[k + 7..];
            }
        }
        out
    }

    fn all_imports() -> Vec<Import> {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        files.sort();
        let mut out = Vec::new();
        for f in files {
            let rel = f.strip_prefix(&src).unwrap().to_path_buf();
            let top = module_path(&rel);
            // The crate root and the binary wire everything; test files are tests.
            if matches!(top.first().map(String::as_str), Some("lib" | "main"))
                || rel
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().ends_with("tests.rs"))
            {
                continue;
            }
            out.extend(imports_of(&rel, &std::fs::read_to_string(&f).unwrap()));
        }
        out
    }

    #[test]
    fn every_module_has_a_layer() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
        let declared: Vec<&str> = lib
            .lines()
            .filter_map(|l| l.trim().strip_prefix("pub mod "))
            .map(|l| l.trim_end_matches(';'))
            .filter(|m| *m != "layers")
            .collect();
        assert!(declared.len() > 10, "{declared:?}");
        for m in declared {
            assert!(layer_of(m).is_some(), "module `{m}` has no layer in LAYERS");
        }
    }

    #[test]
    fn imports_go_downhill() {
        let imports = all_imports();
        assert!(imports.len() > 100, "the reader found too few imports");
        let mut uphill = Vec::new();
        let mut seen = BTreeSet::new();
        for i in &imports {
            let (Some(a), Some(b)) = (layer_of(&i.from), layer_of(&i.to)) else {
                continue;
            };
            if b > a {
                seen.insert((i.from.as_str(), i.to.as_str()));
                if !KNOWN_UPHILL.contains(&(i.from.as_str(), i.to.as_str())) {
                    uphill.push(format!(
                        "{}:{}: {} ({}) imports {} ({}): {}",
                        i.file, i.line, i.from, LAYERS[a].0, i.to, LAYERS[b].0, i.text
                    ));
                }
            }
        }
        assert!(
            uphill.is_empty(),
            "imports from a higher layer (see src/layers.rs):\n{}",
            uphill.join("\n")
        );
        let stale: Vec<_> = KNOWN_UPHILL
            .iter()
            .filter(|p| !seen.contains(&(p.0, p.1)))
            .collect();
        assert!(
            stale.is_empty(),
            "KNOWN_UPHILL lists pairs that no longer import uphill; remove them: {stale:?}"
        );
    }

    /// The public items of a store file whose signature names a sled type: the `pub` (not
    /// `pub(super)`, not `pub(crate)`) functions, types and fields, up to their body.
    fn sled_in_public_signatures(src: &str) -> Vec<String> {
        let code = without_tests(src);
        let mut out = Vec::new();
        for (n, line) in code.lines().enumerate() {
            let t = line.trim_start();
            if !t.starts_with("pub ") {
                continue;
            }
            // The signature runs to its body or its end.
            let start: usize = code.lines().take(n).map(|l| l.len() + 1).sum();
            let rest = &code[start..];
            let end = rest.find(['{', ';']).unwrap_or(rest.len());
            let sig = &rest[..end];
            if sig.contains("sled::") || sig.contains("sled ") {
                out.push(format!("{}: {}", n + 1, t.trim()));
            }
        }
        out
    }

    #[test]
    fn sled_stays_inside_the_store() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        let mut found = Vec::new();
        for f in files {
            let rel = f.strip_prefix(&src).unwrap().to_path_buf();
            let text = std::fs::read_to_string(&f).unwrap();
            if rel.starts_with("store") {
                for hit in sled_in_public_signatures(&text) {
                    found.push(format!("{}:{hit}", rel.display()));
                }
                continue;
            }
            for (n, line) in without_tests(&text).lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                if code.contains("sled::") || code.contains("use sled") {
                    found.push(format!("{}:{}: {}", rel.display(), n + 1, line.trim()));
                }
            }
        }
        assert!(
            found.is_empty(),
            "sled types outside the store or in its public signatures (another backend could \
             not stand behind them):\n{}",
            found.join("\n")
        );
        // The reader itself: a public function taking a tree is seen, a private one is not.
        let bad = "pub fn f(t: &sled::Tree) -> u8 {\n    0\n}\nfn g(t: &sled::Tree) {}\n";
        assert_eq!(sled_in_public_signatures(bad).len(), 1);
    }

    #[test]
    fn the_reader_sees_paths_and_skips_tests() {
        let src = "use crate::store::Store;\nfn f() { super::super::api::x(); }\n#[cfg(test)]\nmod tests {\n    use crate::server::X;\n}\n";
        let found = imports_of(Path::new("dispatch/rules.rs"), src);
        let to: Vec<_> = found.iter().map(|i| (i.to.as_str(), i.line)).collect();
        assert_eq!(to, [("store", 1), ("api", 2)]);
        // `super::x` inside a folder stays in the folder.
        assert!(imports_of(Path::new("store/keys.rs"), "use super::model::M;\n").is_empty());
    }
}
