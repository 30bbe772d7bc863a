//! The OpenAPI 3 document. The tests generate it from the handlers' annotations and the types
//! they send and receive (so it cannot describe a field the server does not have) and keep
//! `docs/openapi.json` equal to it; the daemon serves that file at `/openapi.json`.
//!
//! Why the file and not the generator at run time: the document changes only when the code
//! does (and then the test fails), so the daemon need not assemble it from the annotations on
//! each request, and the release build need not optimise `#[derive(OpenApi)]`'s one function
//! that builds every operation and schema of the document.

#[cfg(test)]
use crate::domain::schema;
#[cfg(test)]
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
#[cfg(test)]
use utoipa::{Modify, OpenApi};

#[cfg(test)]
use super::{
    admin, audit, backup, dashboard, demo, erasure, error, events, history, inbound, messages,
    optouts, reminders, reports, system, templates, ussd, webhooks,
};

/// The document as served: `docs/openapi.json`, which the tests keep byte for byte equal to
/// the document the annotations generate.
pub const DOCUMENT: &str = include_str!("../../docs/openapi.json");

/// The document, as the annotations describe it.
#[cfg(test)]
#[derive(OpenApi)]
#[openapi(
    info(title = "smsgate", description = "Self-hosted SMS gateway: queue, send and track SMS through your own GSM modem.\n\nEach operation's `bearer` security requirement names the one scope it needs (`send`, `read`, `templates`, `optout`, `modems`, `admin` or `metrics`); a key holding `admin`, or configured without `scopes`, may call every operation. A key without the scope gets 403 `urn:smsgate:problem:forbidden`."),
    paths(
        messages::create, messages::create_batch, messages::list, messages::get_one,
        messages::cancel, messages::requeue, history::one, history::export,
        reminders::create, reminders::list, reminders::get_one, reminders::patch,
        reminders::cancel, reminders::paid, reminders::payment_failed,
        templates::list, templates::get_one, templates::put, templates::remove,
        inbound::list, inbound::get_one,
        optouts::list, optouts::get_one, optouts::add, optouts::remove,
        reports::unmatched,
        system::modems, ussd::ussd, system::stats, admin::reload, backup::backup, audit::list, erasure::erase, dashboard::summary, dashboard::search, system::metrics, events::stream, webhooks::failed, webhooks::retry,
        system::healthz, system::readyz,
        demo::phone, demo::reply,
    ),
    components(schemas(error::Problem, error::FieldError, history::Format,
        schema::PhoneNumberInput, schema::TimeZone, schema::Currency, schema::LocalTime,
        schema::DurationText, schema::ReplyOptions, schema::IdCursor, schema::CallbackUrl,
        schema::AmountText, schema::AmountNumber, schema::DayOffset, schema::TemplateName,
        schema::UssdCode, schema::Locale, schema::TemplateVars)),
    modifiers(&BearerAuth),
    tags(
        (name = "messages", description = "Send and track messages"),
        (name = "reminders", description = "Invoice reminder plans and their templates"),
        (name = "inbound", description = "Messages customers sent"),
        (name = "opt-outs", description = "Numbers that get no messages"),
        (name = "reports", description = "Delivery reports that matched no sent message"),
        (name = "gateway", description = "Modems and queue"),
        (name = "webhooks", description = "Event deliveries that failed"),
        (name = "health", description = "Liveness and readiness, without a token"),
        (name = "demo", description = "`smsgate demo` only: the simulated customers' phones (404 elsewhere)"),
    )
)]
pub struct ApiDoc;

#[cfg(test)]
struct BearerAuth;

#[cfg(test)]
impl Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Errors as the server sends them: every problem answer is `application/problem+json`, and
/// every operation that takes a body may answer 400 (malformed JSON), 413 (too large), 415 (not
/// JSON) and 422 (invalid), all problem details.
#[cfg(test)]
fn problem_responses(doc: &mut serde_json::Value) {
    const PROBLEM: &str = "#/components/schemas/Problem";
    let problem = || serde_json::json!({"application/problem+json": {"schema": {"$ref": PROBLEM}}});
    let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) else {
        return;
    };
    for item in paths.values_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for op in item.values_mut() {
            let takes_body = op.get("requestBody").is_some();
            let Some(responses) = op.get_mut("responses").and_then(|r| r.as_object_mut()) else {
                continue;
            };
            for resp in responses.values_mut() {
                let Some(content) = resp.get_mut("content").and_then(|c| c.as_object_mut()) else {
                    continue;
                };
                let is_problem = content
                    .get("application/json")
                    .and_then(|j| j.pointer("/schema/$ref"))
                    .and_then(|r| r.as_str())
                    == Some(PROBLEM);
                if is_problem && let Some(v) = content.remove("application/json") {
                    content.insert("application/problem+json".into(), v);
                }
            }
            if op.get("security").is_some() {
                let scope = scope_of(op);
                // Wrong credentials are counted per client address: past the limit every
                // request with credentials from it is refused for a while, whatever the route.
                let r = op.get_mut("responses").and_then(|r| r.as_object_mut());
                if let Some(responses) = r {
                    if let Some(scope) = scope {
                        responses.entry("403").or_insert_with(|| {
                            serde_json::json!({
                                "description": format!("The API key holds neither the scope `{scope}` nor `admin` (`urn:smsgate:problem:forbidden`)"),
                                "content": problem()
                            })
                        });
                    }
                    responses.entry("429").or_insert_with(|| {
                        serde_json::json!({
                            "description": "Too many wrong credentials from this address (or, on an export, too many exports running)",
                            "headers": {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}},
                            "content": problem()
                        })
                    });
                }
            }
            let Some(responses) = op.get_mut("responses").and_then(|r| r.as_object_mut()) else {
                continue;
            };
            if takes_body {
                for (code, what) in [
                    ("400", "Malformed JSON"),
                    ("413", "Body too large"),
                    ("415", "Body not sent as application/json"),
                    ("422", "Invalid request"),
                ] {
                    responses.entry(code).or_insert_with(
                        || serde_json::json!({"description": what, "content": problem()}),
                    );
                }
            }
        }
    }
}

/// The scope an operation documents in its `bearer` security requirement.
#[cfg(test)]
fn scope_of(op: &serde_json::Value) -> Option<String> {
    op["security"]
        .as_array()?
        .iter()
        .find_map(|r| r["bearer"].as_array()?.first()?.as_str().map(str::to_owned))
}

/// An optional body (`Option<T>` in `request_body`) is one that may be left out, not one that
/// may be JSON `null` (which the server refuses): its schema is `T`, and `required` stays false.
#[cfg(test)]
fn optional_bodies(doc: &mut serde_json::Value) {
    let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) else {
        return;
    };
    for op in paths
        .values_mut()
        .filter_map(|i| i.as_object_mut())
        .flat_map(|i| i.values_mut())
    {
        let Some(schema) = op.pointer_mut("/requestBody/content/application~1json/schema") else {
            continue;
        };
        let not_null = schema["oneOf"].as_array().and_then(|variants| {
            let rest: Vec<&serde_json::Value> =
                variants.iter().filter(|v| v["type"] != "null").collect();
            (variants.len() == 2 && rest.len() == 1).then(|| rest[0].clone())
        });
        if let Some(t) = not_null {
            *schema = t;
        }
    }
}

/// The document as pretty JSON, with the crate's version.
#[cfg(test)]
fn document_json() -> String {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    let Ok(mut value) = serde_json::to_value(&doc) else {
        return "{}".to_string();
    };
    problem_responses(&mut value);
    optional_bodies(&mut value);
    serde_json::to_string_pretty(&value).unwrap_or_else(|_| "{}".to_string())
}

/// `GET /openapi.json`
pub async fn serve() -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        DOCUMENT,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed copy in docs/ must match what the code generates. To refresh it after an
    /// API change: `SMSGATE_UPDATE_OPENAPI=1 cargo test --lib openapi`.
    #[test]
    fn committed_openapi_document_matches_the_code() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.json");
        let generated = document_json();
        if std::env::var_os("SMSGATE_UPDATE_OPENAPI").is_some() {
            std::fs::write(&path, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "docs/openapi.json is out of date: run SMSGATE_UPDATE_OPENAPI=1 cargo test --lib openapi"
        );
        let v: serde_json::Value = serde_json::from_str(&generated).unwrap();
        for p in [
            "/v1/messages",
            "/v1/messages/batch",
            "/v1/messages/{id}",
            "/v1/messages/{id}/cancel",
            "/v1/messages/{id}/requeue",
            "/v1/modems",
            "/v1/stats",
            "/v1/reports/unmatched",
            "/healthz",
            "/readyz",
        ] {
            assert!(v["paths"][p].is_object(), "{p} documented");
        }
        assert!(v["components"]["schemas"]["MessageView"]["properties"]["status"].is_object());
        assert!(v["components"]["securitySchemes"]["bearer"].is_object());
        // A schema-only type and a struct of the same name would share one entry, the last
        // written winning: the demo's phone and the number a request gives stay apart.
        let schemas = &v["components"]["schemas"];
        assert!(schemas["PhoneNumber"]["properties"]["received"].is_object());
        let paid = &v["paths"]["/v1/reminders/{id}/paid"]["post"]["requestBody"];
        assert_ne!(paid["required"], true, "a body that may be left out");
        assert_eq!(
            paid["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/Paid"
        );
        assert_eq!(schemas["PhoneNumberInput"]["format"], "phone");
        assert_eq!(
            v["paths"]["/v1/messages"]["get"]["parameters"][1]["schema"]["$ref"],
            "#/components/schemas/PhoneNumberInput"
        );
    }

    /// Each operation documents the one scope the authentication asks of it, and every route
    /// the authentication knows is documented: the document and the enforcement cannot drift.
    #[test]
    fn every_operation_documents_the_scope_it_is_checked_for() {
        let doc: serde_json::Value = serde_json::from_str(DOCUMENT).unwrap();
        let mut documented = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let method: axum::http::Method = method.to_uppercase().parse().unwrap();
                if op.get("security").is_none() {
                    assert!(
                        path == "/healthz" || path == "/readyz",
                        "{method} {path} has no security requirement"
                    );
                    continue;
                }
                let scope = scope_of(op).unwrap_or_else(|| panic!("{method} {path}: no scope"));
                let needed = super::super::required_scope(&method, path);
                assert_eq!(
                    Some(scope.as_str()),
                    needed.map(|s| s.as_str()),
                    "{method} {path}"
                );
                assert!(
                    op["responses"]["403"].is_object(),
                    "{method} {path} documents its 403"
                );
                documented.push((method.to_string(), path.clone()));
            }
        }
        for (method, route, _) in super::super::keys::route_scopes() {
            assert!(
                documented.contains(&(method.to_string(), route.to_string())),
                "{method} {route} has a scope but is not in the document"
            );
        }
    }

    /// `/openapi.json` answers with the generated document itself, as JSON.
    #[tokio::test]
    async fn the_served_document_is_the_generated_one() {
        let resp = serve().await;
        assert_eq!(
            resp.headers()[axum::http::header::CONTENT_TYPE],
            "application/json"
        );
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        assert!(
            body == document_json().as_bytes(),
            "docs/openapi.json is out of date: run SMSGATE_UPDATE_OPENAPI=1 cargo test --lib openapi"
        );
    }
}

/// `docs/api-reference.md`, rendered from this document (and checked against it) by the tests.
#[cfg(test)]
#[path = "openapi_md.rs"]
mod openapi_md;
