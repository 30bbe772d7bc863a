//! `docs/api-reference.md`, rendered from the OpenAPI document: every path and method with its
//! parameters, request body and responses, then every schema with its fields. A test compares
//! the committed file with what the code generates, so the reference cannot drift from the
//! handlers; `SMSGATE_UPDATE_OPENAPI=1 cargo test --lib openapi` writes it again.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde_json::Value;

/// Methods in the order they are listed under one path.
const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// The whole reference as Markdown.
pub fn render(doc: &Value) -> String {
    let r = Renderer { doc };
    r.document()
}

struct Renderer<'a> {
    doc: &'a Value,
}

/// One operation: its path, method and description.
struct Op<'a> {
    path: &'a str,
    method: &'a str,
    op: &'a Value,
}

impl Op<'_> {
    fn title(&self) -> String {
        format!("`{} {}`", self.method.to_uppercase(), self.path)
    }
}

impl<'a> Renderer<'a> {
    fn schemas(&self) -> Option<&'a serde_json::Map<String, Value>> {
        self.doc["components"]["schemas"].as_object()
    }

    /// The operations, each under the first of its tags, in the order the document lists the
    /// tags (operations without a known tag last).
    fn grouped(&self) -> Vec<(String, String, Vec<Op<'a>>)> {
        let mut paths: Vec<(&String, &Value)> = self.doc["paths"]
            .as_object()
            .map(|m| m.iter().collect())
            .unwrap_or_default();
        paths.sort_by(|a, b| a.0.cmp(b.0));
        let mut ops = Vec::new();
        for (path, item) in paths {
            for method in METHODS {
                if let Some(op) = item.get(method) {
                    ops.push(Op { path, method, op });
                }
            }
        }
        let mut groups: Vec<(String, String, Vec<Op<'a>>)> = self.doc["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| {
                (
                    str_of(&t["name"]).to_string(),
                    str_of(&t["description"]).to_string(),
                    Vec::new(),
                )
            })
            .collect();
        for op in ops {
            let tag = op.op["tags"][0].as_str().unwrap_or("");
            match groups.iter_mut().find(|g| g.0 == tag) {
                Some(g) => g.2.push(op),
                None => {
                    let name = if tag.is_empty() { "other" } else { tag };
                    match groups.iter_mut().find(|g| g.0 == name) {
                        Some(g) => g.2.push(op),
                        None => groups.push((name.to_string(), String::new(), vec![op])),
                    }
                }
            }
        }
        groups.retain(|g| !g.2.is_empty());
        groups
    }

    fn document(&self) -> String {
        let mut out = String::new();
        let info = &self.doc["info"];
        let _ = writeln!(out, "# API reference\n");
        let _ = writeln!(
            out,
            "Every path, parameter, request body, response and schema of the smsgate HTTP API \
             {}, generated from the OpenAPI {} document ([openapi.json](openapi.json), also served \
             at `GET /openapi.json`). Do not edit it by hand: `src/api/openapi_md.rs` writes it, and \
             a test fails when it no longer matches the code (`SMSGATE_UPDATE_OPENAPI=1 cargo test \
             --lib openapi` writes it again). [api.md](api.md) is the guide, with examples and what \
             happens behind each call.\n",
            str_of(&info["version"]),
            str_of(&self.doc["openapi"]),
        );
        let _ = writeln!(
            out,
            "Operations marked **Token** need `Authorization: Bearer <token>` (a token of \
             `[[api_keys]]`) whose key holds the scope named (or `admin`; a key configured \
             without `scopes` holds every scope), else 403. Errors are `application/problem+json` with the \
             [`Problem`](#problem) schema; [api.md](api.md#errors) lists their `type`s.\n"
        );
        let groups = self.grouped();
        let _ = writeln!(out, "## Operations\n");
        for (tag, description, ops) in &groups {
            let _ = write!(out, "- **{tag}**");
            if !description.is_empty() {
                let _ = write!(out, ": {description}");
            }
            let _ = writeln!(out);
            for op in ops {
                let _ = write!(out, "  - [{}](#{})", op.title(), anchor(&op.title()));
                match one_line(first_sentence(str_of(&op.op["summary"]))) {
                    s if s.is_empty() => {
                        let _ = writeln!(out);
                    }
                    s => {
                        let _ = writeln!(out, ": {s}");
                    }
                }
            }
        }
        let _ = writeln!(out);
        for (tag, description, ops) in &groups {
            let _ = writeln!(out, "## {tag}\n");
            if !description.is_empty() {
                let _ = writeln!(out, "{description}.\n");
            }
            for op in ops {
                self.operation(&mut out, op);
            }
        }
        self.all_schemas(&mut out);
        // No two blank lines in a row, one newline at the end.
        while out.contains("\n\n\n") {
            out = out.replace("\n\n\n", "\n\n");
        }
        while out.ends_with("\n\n") {
            out.pop();
        }
        out
    }

    fn operation(&self, out: &mut String, op: &Op<'_>) {
        let o = op.op;
        let _ = writeln!(out, "### {}\n", op.title());
        // A summary that only repeats the heading is left out.
        let summary = str_of(&o["summary"]);
        if !after_title(summary).is_empty() {
            let _ = writeln!(out, "{summary}\n");
        }
        let description = str_of(&o["description"]);
        if !description.is_empty() {
            let _ = writeln!(out, "{description}\n");
        }
        let bearer = o["security"]
            .as_array()
            .and_then(|s| s.iter().find_map(|r| r.get("bearer")));
        let scope = bearer
            .and_then(|b| b.as_array())
            .and_then(|b| b.first())
            .and_then(|b| b.as_str());
        let _ = match (bearer, scope) {
            (Some(_), Some(scope)) => writeln!(
                out,
                "**Token** needed, with scope **`{scope}`** (or `admin`).\n"
            ),
            (Some(_), None) => writeln!(out, "**Token** needed.\n"),
            (None, _) => writeln!(out, "No token needed.\n"),
        };
        if let Some(params) = o["parameters"].as_array().filter(|p| !p.is_empty()) {
            let _ = writeln!(out, "Parameters:\n");
            let _ = writeln!(out, "| name | in | type | required | description |");
            let _ = writeln!(out, "|---|---|---|---|---|");
            for p in params {
                let _ = writeln!(
                    out,
                    "| `{}` | {} | {} | {} | {} |",
                    str_of(&p["name"]),
                    str_of(&p["in"]),
                    cell(&self.type_of(&p["schema"])),
                    if p["required"].as_bool() == Some(true) {
                        "yes"
                    } else {
                        "no"
                    },
                    cell(&with_example(str_of(&p["description"]), &p["schema"]))
                );
            }
            let _ = writeln!(out);
        }
        if let Some(body) = o.get("requestBody") {
            let required = body["required"].as_bool() == Some(true);
            for (ctype, media) in body["content"].as_object().into_iter().flatten() {
                let schema = &media["schema"];
                let (inner, nullable) = unwrap_nullable(schema);
                let _ = writeln!(
                    out,
                    "Request body (`{ctype}`, {}): {}.\n",
                    if required && !nullable {
                        "required"
                    } else {
                        "optional"
                    },
                    self.type_of(inner)
                );
                self.schema_body(out, self.resolve(inner), false);
            }
        }
        let _ = writeln!(out, "Responses:\n");
        let _ = writeln!(out, "| status | description | body |");
        let _ = writeln!(out, "|---|---|---|");
        let mut codes: Vec<(&String, &Value)> = o["responses"]
            .as_object()
            .map(|m| m.iter().collect())
            .unwrap_or_default();
        codes.sort_by(|a, b| a.0.cmp(b.0));
        for (code, resp) in codes {
            let mut description = str_of(&resp["description"]).to_string();
            if description.is_empty() {
                description = reason(code).to_string();
            }
            let bodies: Vec<String> = resp["content"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(ctype, media)| match media.get("schema") {
                    Some(s) if ctype == "application/json" => self.type_of(s),
                    Some(s) => format!("`{ctype}`: {}", self.type_of(s)),
                    None => format!("`{ctype}`"),
                })
                .collect();
            let _ = writeln!(
                out,
                "| {code} | {} | {} |",
                cell(&description),
                cell(&bodies.join("; "))
            );
        }
        let _ = writeln!(out);
    }

    fn all_schemas(&self, out: &mut String) {
        let Some(schemas) = self.schemas() else {
            return;
        };
        let _ = writeln!(out, "## Schemas\n");
        let names: BTreeSet<&String> = schemas.keys().collect();
        for name in names {
            let _ = writeln!(out, "### `{name}`\n");
            self.schema_body(out, &schemas[name.as_str()], true);
        }
    }

    /// What a schema is: its description (when `describe`), then its fields, values, variants
    /// or type.
    fn schema_body(&self, out: &mut String, s: &Value, describe: bool) {
        let description = str_of(&s["description"]);
        if describe && !description.is_empty() {
            let _ = writeln!(out, "{description}\n");
        }
        if let Some(parts) = s["allOf"].as_array() {
            for part in parts {
                if part.get("$ref").is_some() {
                    let _ = writeln!(out, "Every field of {}, and:\n", self.type_of(part));
                } else {
                    self.schema_body(out, part, true);
                }
            }
        } else if let Some(variants) = s["oneOf"].as_array() {
            let _ = writeln!(out, "One of:\n");
            for (i, v) in variants.iter().enumerate() {
                if v.get("properties").is_some() {
                    let d = str_of(&v["description"]);
                    let _ = writeln!(
                        out,
                        "{}. an object{}\n",
                        i + 1,
                        if d.is_empty() {
                            String::new()
                        } else {
                            format!(": {}", one_line(d))
                        }
                    );
                    self.fields(out, v);
                } else {
                    let _ = writeln!(
                        out,
                        "{}. {}{}",
                        i + 1,
                        self.type_of(v),
                        match str_of(&v["description"]) {
                            "" => String::new(),
                            d => format!(": {}", one_line(d)),
                        }
                    );
                }
            }
            let _ = writeln!(out);
        } else if s.get("properties").is_some() {
            self.fields(out, s);
        } else if let Some(values) = s["enum"].as_array() {
            let _ = writeln!(out, "A string, one of: {}.\n", enum_values(values));
        } else if s.get("$ref").is_none() {
            let _ = writeln!(out, "Type: {}.\n", self.type_of(s));
            let stated = rules(s);
            if !stated.is_empty() {
                let _ = writeln!(out, "Accepted: {}.\n", stated.join("; "));
            }
            if let Some(key) = s.get("propertyNames") {
                let _ = writeln!(out, "Keys: {}.\n", rules(key).join("; "));
            }
            if s["additionalProperties"].is_object() {
                let values = rules(&s["additionalProperties"]);
                if !values.is_empty() {
                    let _ = writeln!(out, "Values: {}.\n", values.join("; "));
                }
            }
        }
    }

    /// The table of an object's fields: required ones first, in the document's order, then
    /// the others by name. Inline objects add rows for their own fields (`field.sub`).
    fn fields(&self, out: &mut String, s: &Value) {
        let _ = writeln!(out, "| field | type | required | description |");
        let _ = writeln!(out, "|---|---|---|---|");
        self.field_rows(out, s, "");
        let _ = writeln!(out);
        if s["additionalProperties"] == Value::Bool(false) {
            let _ = writeln!(out, "Other fields are refused.\n");
        }
    }

    fn field_rows(&self, out: &mut String, s: &Value, prefix: &str) {
        let Some(props) = s["properties"].as_object() else {
            return;
        };
        let required: Vec<&str> = s["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter(|r| props.contains_key(*r))
            .collect();
        let mut others: Vec<&String> = props
            .keys()
            .filter(|k| !required.contains(&k.as_str()))
            .collect();
        others.sort();
        let order = required
            .iter()
            .copied()
            .chain(others.iter().map(|k| k.as_str()));
        for name in order {
            let p = &props[name];
            let (inner, _) = unwrap_nullable(p);
            let description = match str_of(&p["description"]) {
                "" => str_of(&inner["description"]),
                d => d,
            };
            let _ = writeln!(
                out,
                "| `{prefix}{name}` | {} | {} | {} |",
                cell(&self.type_of(p)),
                if required.contains(&name) {
                    "yes"
                } else {
                    "no"
                },
                cell(&with_example(description, inner))
            );
            if inner.get("properties").is_some() {
                self.field_rows(out, inner, &format!("{prefix}{name}."));
            }
        }
    }

    /// A schema's `$ref` target, or the schema itself.
    fn resolve(&self, s: &'a Value) -> &'a Value {
        s["$ref"]
            .as_str()
            .and_then(|r| r.strip_prefix("#/components/schemas/"))
            .and_then(|name| self.schemas().and_then(|m| m.get(name)))
            .unwrap_or(s)
    }

    /// A schema's type in a few words: `string (date-time) or null`, `array of [Event](#event)`.
    fn type_of(&self, s: &Value) -> String {
        if let Some(r) = s["$ref"].as_str() {
            let name = r.rsplit('/').next().unwrap_or(r);
            return if self.schemas().is_some_and(|m| m.contains_key(name)) {
                format!("[`{name}`](#{})", anchor(name))
            } else {
                format!("`{name}`")
            };
        }
        if let Some(variants) = s["oneOf"].as_array().or(s["anyOf"].as_array()) {
            let (inner, nullable) = unwrap_nullable(s);
            if nullable {
                return format!("{} or null", self.type_of(inner));
            }
            return variants
                .iter()
                .map(|v| self.type_of(v))
                .collect::<Vec<_>>()
                .join(" or ");
        }
        if let Some(parts) = s["allOf"].as_array() {
            return parts
                .iter()
                .map(|v| self.type_of(v))
                .collect::<Vec<_>>()
                .join(" and ");
        }
        let types: Vec<&str> = match &s["type"] {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if types.is_empty() {
            return if s.get("properties").is_some() {
                "object".into()
            } else {
                "any".into()
            };
        }
        let words: Vec<String> = types
            .iter()
            .map(|t| match *t {
                "array" => format!("array of {}", self.type_of(&s["items"])),
                "object" => match &s["additionalProperties"] {
                    Value::Object(_) => format!(
                        "object of {} values",
                        self.type_of(&s["additionalProperties"])
                    ),
                    _ => "object".into(),
                },
                "string" => match (s["enum"].as_array(), s["format"].as_str()) {
                    (Some(values), _) => format!("string: {}", enum_values(values)),
                    (None, Some(f)) => format!("string ({f})"),
                    (None, None) => "string".into(),
                },
                other => other.to_string(),
            })
            .collect();
        words.join(" or ")
    }
}

/// `oneOf: [null, X]` (utoipa's `Option<X>` of a named type) as `(X, true)`, else `(s, false)`.
fn unwrap_nullable(s: &Value) -> (&Value, bool) {
    if let Some(v) = s["oneOf"].as_array()
        && v.len() == 2
    {
        let is_null = |x: &Value| x["type"] == "null";
        if is_null(&v[0]) {
            return (&v[1], true);
        }
        if is_null(&v[1]) {
            return (&v[0], true);
        }
    }
    (s, false)
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

fn enum_values(values: &[Value]) -> String {
    values
        .iter()
        .map(|v| match v {
            Value::String(s) => format!("`{s}`"),
            other => format!("`{other}`"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A description with the schema's example, if it has one.
fn with_example(description: &str, s: &Value) -> String {
    let mut text = description.to_string();
    let stated = rules(s);
    if !stated.is_empty() {
        let sep = if text.is_empty() { "" } else { " " };
        text = format!("{text}{sep}Accepted: {}.", stated.join("; "));
    }
    let example = match &s["example"] {
        Value::Null => return text,
        Value::String(e) => e.clone(),
        other => other.to_string(),
    };
    let sep = if text.is_empty() { "" } else { " " };
    format!("{text}{sep}Example: `{example}`.")
}

/// The limits a schema states, in words: lengths, ranges, counts and the pattern.
fn rules(s: &Value) -> Vec<String> {
    let range = |min: &str, max: &str, unit: &str| {
        let (lo, hi) = (&s[min], &s[max]);
        let unit = if unit.is_empty() {
            String::new()
        } else {
            format!(" {unit}")
        };
        match (lo.is_null(), hi.is_null()) {
            (false, false) => Some(format!("{lo} to {hi}{unit}")),
            (false, true) if lo == 1 => Some(format!("at least 1{}", unit.trim_end_matches('s'))),
            (false, true) => Some(format!("at least {lo}{unit}")),
            (true, false) => Some(format!("at most {hi}{unit}")),
            (true, true) => None,
        }
    };
    let mut out: Vec<String> = [
        range("minLength", "maxLength", "characters"),
        range("minimum", "maximum", ""),
        range("minItems", "maxItems", "items"),
        range("minProperties", "maxProperties", "entries"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if let Some(p) = s["pattern"].as_str() {
        out.push(format!("matches `{p}`"));
    }
    out
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A table cell: one line, pipes escaped.
fn cell(s: &str) -> String {
    one_line(s).replace('|', "\\|")
}

/// A summary without the `` `METHOD /path` `` it may start with, and the `:` or `.` after it.
fn after_title(summary: &str) -> &str {
    let s = summary.trim();
    let rest = match s.strip_prefix('`').and_then(|r| r.split_once('`')) {
        Some((_, rest)) => rest,
        None => s,
    };
    rest.trim_start_matches([':', '.']).trim()
}

/// The first sentence of a summary, after its title.
fn first_sentence(summary: &str) -> &str {
    let s = after_title(summary);
    match s.find(". ") {
        Some(i) => &s[..=i],
        None => s,
    }
}

/// The anchor GitHub gives a heading: lower case, punctuation other than `-` and `_` dropped,
/// spaces as `-`.
fn anchor(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The reason phrase of a status code, for responses documented without a description.
fn reason(code: &str) -> &'static str {
    match code {
        "200" => "OK",
        "201" => "Created",
        "202" => "Accepted",
        "204" => "No Content",
        "400" => "Bad Request",
        "401" => "Unauthorized",
        "404" => "Not Found",
        "409" => "Conflict",
        "413" => "Content Too Large",
        "415" => "Unsupported Media Type",
        "422" => "Unprocessable Content",
        "500" => "Internal Server Error",
        "503" => "Service Unavailable",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed reference in docs/ must match what the code's OpenAPI document renders
    /// to. To refresh it after an API change: `SMSGATE_UPDATE_OPENAPI=1 cargo test --lib
    /// openapi`.
    #[test]
    fn committed_api_reference_matches_the_openapi_document() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/api-reference.md");
        let doc: Value = serde_json::from_str(&super::super::document_json()).unwrap();
        let generated = render(&doc);
        if std::env::var_os("SMSGATE_UPDATE_OPENAPI").is_some() {
            std::fs::write(&path, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "docs/api-reference.md is out of date: run SMSGATE_UPDATE_OPENAPI=1 cargo test --lib openapi"
        );
    }

    #[test]
    fn every_operation_and_schema_is_in_the_reference() {
        let doc: Value = serde_json::from_str(&super::super::document_json()).unwrap();
        let md = render(&doc);
        let mut operations = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                assert!(METHODS.contains(&method.as_str()), "{method} {path}");
                let heading = format!("### `{} {path}`\n", method.to_uppercase());
                assert!(md.contains(&heading), "{heading}");
                operations += 1;
            }
        }
        assert!(operations > 30, "{operations}");
        for name in doc["components"]["schemas"].as_object().unwrap().keys() {
            assert!(md.contains(&format!("### `{name}`\n")), "{name}");
        }
        // The request body's fields, with their types and whether they are required.
        assert!(md.contains("| `to` | string | yes |"), "NewMessage.to");
        assert!(md.contains("| `send_at` | string (date-time) or null | no |"));
        assert!(md.contains("| 201 | Accepted and on disk | [`MessageView`](#messageview) |"));
    }

    #[test]
    fn anchors_and_summaries() {
        assert_eq!(
            anchor("`POST /v1/messages/{id}/cancel`"),
            "post-v1messagesidcancel"
        );
        assert_eq!(anchor("MessageView"), "messageview");
        assert_eq!(
            first_sentence("`GET /v1/messages?status=`: newest first."),
            "newest first."
        );
        assert_eq!(first_sentence("`POST /v1/messages`"), "");
        assert_eq!(first_sentence("`GET /v1/inbound/{id}`."), "");
        assert_eq!(first_sentence("A thing. More."), "A thing.");
        assert_eq!(cell("a|b\nc"), "a\\|b c");
    }
}
