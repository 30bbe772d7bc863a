//! `/v1/templates`: the texts reminder plans are rendered from. A template set here overrides
//! the config file's (`[templates]`) and the shipped one of the same name; deleting it brings
//! those back. Plans render their texts when they are made (or rescheduled): changing a
//! template changes the texts of plans made after.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::messages::json_field_error;
use super::{ApiError, ApiJson, AppState, Caller};
use crate::reminders::plan::{Origin, template_source};
use crate::reminders::templates;
use crate::sms::TextPlan;
use crate::store::plans::StoredTemplate;

/// A template as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TemplateView {
    /// Its name.
    pub name: String,
    /// Where the text in effect comes from: `api`, `config` or `default`.
    pub origin: Origin,
    /// The template source (minijinja).
    pub text: String,
    /// The text rendered with sample values.
    pub preview: Preview,
}

/// A sample rendering.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Preview {
    /// The rendered text.
    pub text: String,
    /// `gsm7` or `ucs2`.
    pub encoding: String,
    /// SMS parts.
    pub parts: u8,
    /// Variables the template uses that a plan must bring in `vars` (filled with samples
    /// here).
    pub custom_vars: Vec<String>,
}

/// Every template in effect.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TemplateList {
    /// By name.
    pub templates: Vec<TemplateView>,
}

/// `PUT /v1/templates/{name}` body.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateBody {
    /// The template source: text with `{{ variables }}`, `{% if %}` blocks and the `money` and
    /// `date` filters. At most 4096 bytes (UTF-8); it must render with a plan's variables.
    #[schema(
        example = "Hi {{ name }}, invoice {{ invoice }} for {{ amount | money }} is due {{ due_date | date }}. {{ opt_out_hint }}",
        max_length = 4096
    )]
    pub text: String,
}

/// The variables of a typical plan, for previews and checks.
fn sample_vars(st: &AppState) -> Value {
    let due = st.clock.now().date_naive() + chrono::Duration::days(7);
    json!({
        "name": "Ana",
        "invoice": "INV-1042",
        "amount": "120.50",
        "amount_paid": "120.50",
        "currency": "USD",
        "due_date": due.to_string(),
        "pay_url": "https://pay.example.com/INV-1042",
        "unit": "4B",
        "property": "Elm Court",
        "locale": st.reminders.locale,
        "opt_out_hint": st.reminders.opt_out_hint,
        "days_until_due": 7,
        "days_overdue": 0,
        "failure_reason": "card declined",
    })
}

/// Why a template has no preview.
#[derive(Debug, thiserror::Error)]
enum PreviewError {
    /// It does not compile or render.
    #[error(transparent)]
    Template(#[from] templates::TemplateError),
    /// It renders only whitespace.
    #[error("renders an empty text")]
    Empty,
    /// What it renders cannot go as an SMS.
    #[error("with sample values: {0}")]
    Text(#[source] crate::sms::EncodeError),
}

/// Renders `text` with sample values; the preview, or the problem.
fn preview(st: &AppState, text: &str) -> Result<Preview, PreviewError> {
    let (out, custom_vars) = templates::check(text, &sample_vars(st))?;
    if out.trim().is_empty() {
        return Err(PreviewError::Empty);
    }
    let p = TextPlan::new(
        &out,
        &st.cfg.messages.national_languages,
        st.cfg.messages.max_parts,
    )
    .map_err(PreviewError::Text)?;
    Ok(Preview {
        text: out,
        encoding: p.encoding.as_str().to_string(),
        parts: p.parts.len() as u8,
        custom_vars,
    })
}

fn view_of(st: &AppState, name: &str) -> Result<Option<TemplateView>, ApiError> {
    let Some((text, origin)) = template_source(&st.store, &st.reminders, name)? else {
        return Ok(None);
    };
    let preview = preview(st, &text).unwrap_or_else(|e| Preview {
        text: format!("(does not render: {e})"),
        encoding: String::new(),
        parts: 0,
        custom_vars: Vec::new(),
    });
    Ok(Some(TemplateView {
        name: name.to_string(),
        origin,
        text,
        preview,
    }))
}

/// `GET /v1/templates`
#[utoipa::path(get, path = "/v1/templates", tag = "reminders",
    responses((status = 200, body = TemplateList), (status = 401, body = super::error::Problem),
        (status = 503, body = super::error::Problem)),
    security(("bearer" = ["templates"])))]
pub async fn list(State(st): State<AppState>) -> Result<Response, ApiError> {
    let mut names: std::collections::BTreeSet<String> = templates::DEFAULT_NAMES
        .iter()
        .map(|s| s.to_string())
        .collect();
    names.extend(st.reminders.templates.keys().cloned());
    names.extend(st.store.templates()?.into_iter().map(|(n, _)| n));
    let mut out = Vec::new();
    for n in names {
        if let Some(v) = view_of(&st, &n)? {
            out.push(v);
        }
    }
    Ok(axum::Json(TemplateList { templates: out }).into_response())
}

/// `GET /v1/templates/{name}`
#[utoipa::path(get, path = "/v1/templates/{name}", tag = "reminders",
    params(("name" = crate::domain::schema::TemplateName, Path, description = "Template name")),
    responses((status = 200, body = TemplateView), (status = 401, body = super::error::Problem),
        (status = 404, body = super::error::Problem), (status = 503, body = super::error::Problem)),
    security(("bearer" = ["templates"])))]
pub async fn get_one(
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let v =
        view_of(&st, &name)?.ok_or_else(|| ApiError::not_found(format!("no template {name:?}")))?;
    Ok(axum::Json(v).into_response())
}

/// `PUT /v1/templates/{name}`: checked (syntax, filters, length with sample values) before it
/// is stored.
#[utoipa::path(put, path = "/v1/templates/{name}", tag = "reminders",
    params(("name" = crate::domain::schema::TemplateName, Path, description = "Template name")),
    request_body = TemplateBody,
    responses((status = 200, body = TemplateView), (status = 400, body = super::error::Problem),
        (status = 401, body = super::error::Problem), (status = 422, body = super::error::Problem),
        (status = 503, body = super::error::Problem)),
    security(("bearer" = ["templates"])))]
pub async fn put(
    State(st): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let b: TemplateBody =
        serde_path_to_error::deserialize(&body).map_err(|e| json_field_error(&e, ""))?;
    templates::check_name(&name).map_err(|e| ApiError::field("name", e.to_string()))?;
    if b.text.len() > 4096 {
        return Err(ApiError::field("text", "is longer than 4096 bytes"));
    }
    preview(&st, &b.text).map_err(|e| ApiError::field("text", e.to_string()))?;
    let details = serde_json::json!({ "text": b.text });
    st.store.put_template(
        &name,
        &StoredTemplate {
            text: b.text,
            updated_at: st.clock.now(),
            updated_by: caller.clone(),
        },
    )?;
    super::audit::record(&st, &caller, "template.put", Some(&name), Some(details)).await?;
    tracing::info!(template = %name, "template set");
    let v = view_of(&st, &name)?.ok_or_else(|| ApiError::internal("the template vanished"))?;
    Ok(axum::Json(v).into_response())
}

/// `DELETE /v1/templates/{name}`: removes the template set through the API (the config
/// file's or the shipped one applies again).
#[utoipa::path(delete, path = "/v1/templates/{name}", tag = "reminders",
    params(("name" = crate::domain::schema::TemplateName, Path, description = "Template name")),
    responses((status = 204, description = "Removed"), (status = 401, body = super::error::Problem),
        (status = 404, body = super::error::Problem), (status = 503, body = super::error::Problem)),
    security(("bearer" = ["templates"])))]
pub async fn remove(
    State(st): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    if !st.store.delete_template(&name)? {
        return Err(ApiError::not_found(format!(
            "no template {name:?} was set through the API"
        )));
    }
    super::audit::record(&st, &caller, "template.delete", Some(&name), None).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
