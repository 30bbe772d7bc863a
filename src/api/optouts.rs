//! `/v1/opt-outs`: numbers that get no messages, kept in step with the billing system's own
//! records. Opting out through the API sends the customer nothing.

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{ApiError, ApiJson, AppState, Caller, FieldError};
use crate::inbound::OptOutRequest;
use crate::store::optout::OptOut;

/// Paging of `GET /v1/opt-outs`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OptOutQuery {
    /// Page size, 1 to 1000 (default 50).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// The previous page's `next_cursor`.
    cursor: Option<String>,
}

/// One page of opted-out numbers.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OptOutPage {
    /// In number order.
    pub opt_outs: Vec<OptOut>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// Body of `POST /v1/opt-outs`: one number or many.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOptOut {
    /// One number (any form; `[sms] default_region` applies without `+`). Give exactly one of
    /// `number` and `numbers`.
    #[serde(default)]
    #[schema(value_type = Option<crate::domain::schema::PhoneNumberInput>)]
    pub number: Option<String>,
    /// Or 1 to 1000 numbers.
    #[serde(default)]
    #[schema(value_type = Option<Vec<crate::domain::schema::PhoneNumberInput>>, min_items = 1, max_items = 1000)]
    pub numbers: Option<Vec<String>>,
    /// Why, for the record: at most 500 bytes (UTF-8).
    #[serde(default)]
    #[schema(max_length = 500)]
    pub note: Option<String>,
}

/// Answer of `POST /v1/opt-outs`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OptOutsAdded {
    /// The opt-out of each number, in request order (an earlier one is kept as it was).
    pub opt_outs: Vec<OptOut>,
    /// How many numbers were not opted out before.
    pub added: usize,
}

/// `GET /v1/opt-outs`
#[utoipa::path(get, path = "/v1/opt-outs", tag = "opt-outs", params(OptOutQuery),
    responses((status = 200, body = OptOutPage), (status = 400, body = super::error::Problem),
        (status = 401, body = super::error::Problem), (status = 422, body = super::error::Problem),
        (status = 503, body = super::error::Problem)),
    security(("bearer" = ["read"])))]
pub async fn list(
    State(state): State<AppState>,
    query: Result<Query<OptOutQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let limit = super::page_limit(q.limit, None)?;
    let page = state.store.list_optouts(q.cursor.as_deref(), limit)?;
    let next_cursor = super::next_cursor(&page, limit, |o| o.number.clone());
    Ok(axum::Json(OptOutPage {
        opt_outs: page,
        next_cursor,
    })
    .into_response())
}

fn number(state: &AppState, field: &str, n: &str) -> Result<String, FieldError> {
    crate::numbers::to_e164(n, state.cfg.messages.default_region.as_deref())
        .map(String::from)
        .map_err(|e| FieldError {
            field: field.to_string(),
            detail: e.to_string(),
        })
}

/// `GET /v1/opt-outs/{number}`: 404 when the number is not opted out.
#[utoipa::path(get, path = "/v1/opt-outs/{number}", tag = "opt-outs",
    params(("number" = crate::domain::schema::PhoneNumberInput, Path, description = "The number (E.164, URL-encoded `+` as %2B)")),
    responses((status = 200, body = OptOut), (status = 401, body = super::error::Problem),
        (status = 404, body = super::error::Problem), (status = 422, body = super::error::Problem),
        (status = 503, body = super::error::Problem)),
    security(("bearer" = ["read"])))]
pub async fn get_one(
    State(state): State<AppState>,
    Path(n): Path<String>,
) -> Result<Response, ApiError> {
    let n = number(&state, "number", &n).map_err(|e| ApiError::validation(vec![e]))?;
    let o = state
        .store
        .optout(&n)?
        .ok_or_else(|| ApiError::not_found(format!("{n} is not opted out")))?;
    Ok(axum::Json(o).into_response())
}

/// `POST /v1/opt-outs`: opts numbers out (no text is sent to them); their waiting messages
/// are cancelled with reason `opted_out`. 201 when any number is new, else 200.
#[utoipa::path(post, path = "/v1/opt-outs", tag = "opt-outs", request_body = NewOptOut,
    responses((status = 201, body = OptOutsAdded), (status = 200, body = OptOutsAdded),
        (status = 400, body = super::error::Problem), (status = 401, body = super::error::Problem),
        (status = 422, body = super::error::Problem), (status = 503, body = super::error::Problem)),
    security(("bearer" = ["optout"])))]
pub async fn add(
    State(state): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let req: NewOptOut = serde_path_to_error::deserialize(&body)
        .map_err(|e| ApiError::field(&e.path().to_string(), e.inner().to_string()))?;
    let given: Vec<(String, String)> = match (&req.number, &req.numbers) {
        (Some(n), None) => vec![("number".into(), n.clone())],
        (None, Some(ns)) if (1..=1000).contains(&ns.len()) => ns
            .iter()
            .enumerate()
            .map(|(i, n)| (format!("numbers[{i}]"), n.clone()))
            .collect(),
        (None, Some(_)) => return Err(ApiError::field("numbers", "must hold 1 to 1000 numbers")),
        _ => {
            return Err(ApiError::field(
                "number",
                "give exactly one of `number` and `numbers`",
            ));
        }
    };
    if req.note.as_ref().is_some_and(|n| n.len() > 500) {
        return Err(ApiError::field("note", "is longer than 500 bytes"));
    }
    let mut numbers = Vec::with_capacity(given.len());
    let mut errors = Vec::new();
    for (field, n) in &given {
        match number(&state, field, n) {
            Ok(n) => numbers.push(n),
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let mut added = 0;
    let mut out = Vec::with_capacity(numbers.len());
    for n in numbers {
        let newly = state
            .inbox
            .opt_out(OptOutRequest {
                number: n.clone(),
                source: "api",
                keyword: None,
                inbound_id: None,
                note: req.note.clone(),
                actor: Some(caller.clone()),
            })
            .await?;
        added += usize::from(newly);
        super::audit::append(
            &state,
            &caller,
            "optout.add",
            Some(&n),
            Some(serde_json::json!({ "newly": newly, "note": req.note })),
        )?;
        if let Some(o) = state.store.optout(&n)? {
            out.push(o);
        }
    }
    state.store.durable().await?;
    let code = if added > 0 {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        code,
        axum::Json(OptOutsAdded {
            opt_outs: out,
            added,
        }),
    )
        .into_response())
}

/// `DELETE /v1/opt-outs/{number}`: the number may get messages again (no text is sent to
/// it); the removed opt-out, 404 when it was not opted out.
#[utoipa::path(delete, path = "/v1/opt-outs/{number}", tag = "opt-outs",
    params(("number" = crate::domain::schema::PhoneNumberInput, Path, description = "The number (E.164, URL-encoded `+` as %2B)")),
    responses((status = 200, body = OptOut), (status = 401, body = super::error::Problem),
        (status = 404, body = super::error::Problem), (status = 422, body = super::error::Problem),
        (status = 503, body = super::error::Problem)),
    security(("bearer" = ["optout"])))]
pub async fn remove(
    State(state): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
    Path(n): Path<String>,
) -> Result<Response, ApiError> {
    let n = number(&state, "number", &n).map_err(|e| ApiError::validation(vec![e]))?;
    let o = state
        .inbox
        .opt_in(&n, "api", None, Some(&caller))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("{n} is not opted out")))?;
    super::audit::record(
        &state,
        &caller,
        "optout.remove",
        Some(&n),
        Some(serde_json::json!({ "opted_out_since": o.opted_out_at })),
    )
    .await?;
    Ok(axum::Json(o).into_response())
}
